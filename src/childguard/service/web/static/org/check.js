// Owns the check-before-publishing page's script: findings per photo and the cleaned copy,
// saved on this device. It makes no request.

import { cleanedCopy, findings } from "./prepublish.js";

const form = document.getElementById("check");
const input = document.getElementById("check-photos");
const results = document.getElementById("results");

function text(key, value) {
  const name = "msg" + key.replace(/(^|_)(\w)/g, (_m, _s, c) => c.toUpperCase());
  const template = form.dataset[name] || key;
  return value === undefined ? template : template.replace("%s", value);
}

function label(category) {
  return form.dataset["finding" + category[0].toUpperCase() + category.slice(1)] || category;
}

function cleanName(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)}-clean${name.slice(dot)}` : `${name}-clean`;
}

async function check(file) {
  const box = document.createElement("section");
  box.className = "result";
  box.dataset.file = file.name;
  const title = document.createElement("h2");
  title.textContent = file.name;
  box.append(title);
  results.append(box);
  let found;
  try {
    found = findings(new Uint8Array(await file.arrayBuffer()));
  } catch (err) {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = text("check_failed", err.message);
    box.append(p);
    box.dataset.state = "failed";
    return;
  }
  const list = document.createElement("ul");
  for (const f of found) {
    const li = document.createElement("li");
    li.className = f.severity === "high" ? "finding" : "";
    li.dataset.category = f.category;
    li.dataset.severity = f.severity;
    li.textContent = `${label(f.category)}: ${f.field} = ${f.value}`;
    list.append(li);
  }
  if (!found.length) {
    const li = document.createElement("li");
    li.textContent = text("nothing_found");
    list.append(li);
  }
  box.append(list);
  const save = document.createElement("button");
  save.type = "button";
  save.className = "save";
  save.textContent = form.dataset.save;
  save.addEventListener("click", async () => {
    const blob = await cleanedCopy(file);
    const left = findings(new Uint8Array(await blob.arrayBuffer()));
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = cleanName(file.name);
    link.click();
    const note = document.createElement("p");
    note.className = "cleaned";
    note.dataset.left = String(left.length);
    note.textContent = left.length ? left.map((f) => f.field).join(", ") : text("clean_done");
    box.append(note);
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  });
  box.append(save);
  box.dataset.state = "checked";
  box.dataset.findings = String(found.length);
}

input.addEventListener("change", async () => {
  results.replaceChildren();
  for (const file of input.files) await check(file);
});
