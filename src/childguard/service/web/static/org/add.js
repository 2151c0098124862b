// Owns the registration page's script: files to the worker, progress per photo, signatures
// uploaded in batches to the service. The photos' bytes never leave the browser.

const form = document.getElementById("register");
const progress = document.getElementById("progress");
const rows = progress.querySelector("tbody");
const status = document.getElementById("status");
const summary = document.getElementById("summary");
const BATCH = 20;
// As `protect register` (`childguard.protect.register.IMAGE_SUFFIXES`): photos only.
const SUFFIXES = [
  ".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif",
];

function message(key, value) {
  const text = form.dataset["msg" + key.replace(/(^|_)(\w)/g, (_m, _s, c) => c.toUpperCase())];
  return value === undefined ? text : text.replace("%s", value);
}

function wanted(file) {
  const path = file.webkitRelativePath || file.name;
  if (path.split("/").some((part) => part.startsWith("."))) return false;
  const lower = file.name.toLowerCase();
  return SUFFIXES.some((s) => lower.endsWith(s));
}

function row(name) {
  const tr = document.createElement("tr");
  const file = document.createElement("td");
  const state = document.createElement("td");
  file.textContent = name;
  tr.append(file, state);
  rows.append(tr);
  return {
    set(kind, text) {
      tr.dataset.state = kind;
      state.textContent = text;
    },
    warn(code, text) {
      tr.dataset.warning = code;
      state.textContent += ` (${text})`;
    },
  };
}

function metadata() {
  const out = {};
  const title = document.getElementById("title").value.trim();
  const url = document.getElementById("published_url").value.trim();
  const when = document.getElementById("published_at").value;
  if (title) out.title = title;
  if (url) out.published_url = url;
  if (when) out.published_at = when;
  return out;
}

async function upload(batch, counts) {
  const answer = await fetch(form.dataset.endpoint, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRF-Token": form.dataset.csrf,
    },
    credentials: "same-origin",
    body: JSON.stringify({ photos: batch.map((b) => b.photo) }),
  });
  let body = {};
  try {
    body = await answer.json();
  } catch (_err) {
    body = {};
  }
  if (!answer.ok) {
    const reason = body.detail || body.message || String(answer.status);
    for (const b of batch) b.row.set("failed", message("refused", reason));
    counts.failed += batch.length;
    return;
  }
  const registered = new Set((body.registered || []).map((p) => p.sha256));
  const resigned = new Set((body.resigned || []).map((p) => p.sha256));
  const warnings = new Map((body.warnings || []).map((p) => [p.sha256, p.warning.code]));
  for (const b of batch) {
    if (registered.has(b.photo.sha256)) {
      b.row.set("registered", message("registered"));
      counts.registered += 1;
    } else if (resigned.has(b.photo.sha256)) {
      b.row.set("resigned", message("resigned"));
      counts.resigned += 1;
    } else {
      b.row.set("already", message("already"));
      counts.already += 1;
    }
    const warning = warnings.get(b.photo.sha256);
    if (warning) {
      b.row.warn(warning, message(`warning_${warning.replace("-", "_")}`));
      counts.warned += 1;
    }
  }
}

function showSummary(counts) {
  summary.hidden = false;
  summary.dataset.registered = counts.registered;
  summary.dataset.already = counts.already;
  summary.dataset.resigned = counts.resigned;
  summary.dataset.warned = counts.warned;
  summary.dataset.failed = counts.failed;
  summary.dataset.done = "true";
  summary.textContent = message("summary")
    .replace("%(registered)s", counts.registered)
    .replace("%(already)s", counts.already)
    .replace("%(resigned)s", counts.resigned)
    .replace("%(failed)s", counts.failed)
    + (counts.warned ? ` ${message("warned").replace("%(warned)s", counts.warned)}` : "");
}

async function register(files) {
  rows.replaceChildren();
  progress.hidden = false;
  summary.hidden = true;
  summary.dataset.done = "false";
  status.textContent = message("loading");
  const extra = metadata();
  const counts = { registered: 0, already: 0, resigned: 0, failed: 0, warned: 0 };
  const worker = new Worker(form.dataset.worker, { type: "module" });
  const jobs = new Map();
  let pending = [];
  let uploads = Promise.resolve();
  let left = files.length;
  const flush = () => {
    const batch = pending;
    pending = [];
    if (batch.length) uploads = uploads.then(() => upload(batch, counts));
  };
  const finished = new Promise((resolve) => {
    worker.onmessage = (event) => {
      const data = event.data;
      if (data.ready !== undefined) {
        status.textContent = data.ready ? "" : message("library", data.error);
        return;
      }
      const job = jobs.get(data.id);
      if (data.started) {
        job.row.set("computing", message("computing"));
        return;
      }
      jobs.delete(data.id);
      if (data.ok) {
        job.row.set("computed", message("computed"));
        pending.push({ row: job.row, photo: { ...data.photo, ...extra } });
        if (pending.length >= BATCH) flush();
      } else {
        job.row.set("failed", message("decode", data.error));
        counts.failed += 1;
      }
      left -= 1;
      if (left === 0) resolve();
    };
  });
  files.forEach((file, id) => {
    const r = row(file.webkitRelativePath || file.name);
    r.set("waiting", message("waiting"));
    jobs.set(id, { row: r });
    worker.postMessage({ id, file, name: file.name });
  });
  await finished;
  flush();
  await uploads;
  worker.terminate();
  showSummary(counts);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const picked = [
    ...document.getElementById("photos").files,
    ...document.getElementById("folder").files,
  ];
  const files = picked.filter(wanted);
  if (!files.length) {
    status.textContent = message("no_files");
    return;
  }
  const start = document.getElementById("start");
  start.disabled = true;
  register(files).finally(() => {
    start.disabled = false;
  });
});
