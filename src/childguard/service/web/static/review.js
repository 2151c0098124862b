// The hotline review pages' keyboard shortcuts, derived-label preview and viewing time.
// Vendored, no framework; served by GET /hotline/static/review.js under CSP script-src 'self'.
(function () {
  "use strict";

  var review = document.getElementById("review");
  var csrf = review ? review.getAttribute("data-csrf") : "";

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select") return true;
    if (tag !== "input") return false;
    var kind = (target.getAttribute("type") || "text").toLowerCase();
    return kind === "text" || kind === "number" || kind === "search" || kind === "password";
  }

  function post(url, fields, beacon) {
    var body = new URLSearchParams(fields);
    body.set("csrf_token", csrf);
    if (beacon && navigator.sendBeacon) {
      return navigator.sendBeacon(url, body);
    }
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    });
  }

  // ---- the labels every scheme derives from the facts, asked of the server on change
  var voteForm = document.getElementById("vote-form");

  function showDerived(answer) {
    var outcome = document.getElementById("derived-outcome");
    var table = document.getElementById("derived-labels");
    table.textContent = "";
    if (answer.message) {
      outcome.textContent = answer.message;
      return;
    }
    outcome.textContent = "Outcome: " + answer.outcome;
    answer.labels.forEach(function (label) {
      var row = table.insertRow();
      [label.scheme, label.profile, label.version, label.label].forEach(function (text) {
        row.insertCell().textContent = text;
      });
    });
  }

  function refreshDerived() {
    if (!voteForm) return;
    var data = new FormData(voteForm);
    if (!data.get("age_band") || !data.get("severity")) return;
    var fields = {};
    data.forEach(function (value, key) { if (key !== "csrf_token") fields[key] = value; });
    post("/hotline/labels", fields).then(function (response) {
      return response.json();
    }).then(showDerived).catch(function () {});
  }

  if (voteForm) voteForm.addEventListener("change", refreshDerived);

  function pressFact(key) {
    if (!voteForm) return false;
    var input = voteForm.querySelector('input[data-key="' + key + '"]');
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function submit(form) {
    if (!form) return;
    reportExposure(true);
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  function focusField(id) {
    var field = document.getElementById(id);
    if (field) { field.focus(); return true; }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    if (typing(event.target)) {
      if (key === "Escape") { event.target.blur(); event.preventDefault(); }
      if (key === "Enter" && event.target.id === "note") {
        event.preventDefault();
        submit(voteForm);
      }
      return;  // Enter in the reveal or skip reason submits its own form
    }
    var lower = key.length === 1 ? key.toLowerCase() : key;
    var handled = true;
    if (lower === "Enter") {
      submit(voteForm);
    } else if (lower === "r") {
      handled = focusField("reveal-reason");
    } else if (lower === "k") {
      handled = focusField("skip-reason");
    } else if (lower === "u") {
      submit(document.getElementById("release-form"));
    } else if (lower === "x") {
      var next = document.getElementById("take-next");
      if (next) window.location.href = next.getAttribute("href"); else handled = false;
    } else {
      handled = pressFact(lower);
    }
    if (handled) event.preventDefault();
  });

  // ---- seconds of content on screen, reported every few seconds and on leaving
  if (!review) return;
  var every = parseInt(review.getAttribute("data-report-every"), 10) || 15;
  var cap = parseInt(review.getAttribute("data-cap"), 10) || 0;
  var unsent = 0;
  var reminder = document.getElementById("break-reminder");
  var minutes = document.getElementById("exposure-minutes");

  function reportExposure(leaving) {
    if (unsent <= 0) return;
    var seconds = Math.min(unsent, 3600);
    unsent -= seconds;
    var sent = post("/hotline/exposure", { seconds: String(seconds) }, leaving);
    if (sent && sent.then) {
      sent.then(function (response) { return response.json(); }).then(function (today) {
        if (minutes) minutes.textContent = String(Math.floor(today.seconds / 60));
        if (reminder && (today.break_due || today.remaining_seconds <= 600)) {
          reminder.hidden = false;
        }
        if (cap && today.over_cap) window.location.href = "/hotline/queue";
      }).catch(function () {});
    }
  }

  window.setInterval(function () {
    if (document.visibilityState === "visible") unsent += 1;
    if (unsent >= every) reportExposure(false);
  }, 1000);
  window.addEventListener("pagehide", function () { reportExposure(true); });
})();
