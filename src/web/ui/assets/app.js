// Souk UI: live events, auto-save, availability checks and dialogs. No framework, no build step.
// Everything here is an enhancement: every form also works without JavaScript.
(function () {
  "use strict";
  var area = document.body.dataset.area;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // --- toasts (announced by the aria-live region) ---
  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast";
    el.textContent = text;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }

  // --- live events: a WebSocket opened with a short-lived ticket, reconnecting with last_event_id ---
  // A page that rendered past events names the newest (data-last-event-id): the socket
  // resumes after it, so nothing committed while the page loaded is lost or shown twice.
  var lastEventId = document.body.dataset.lastEventId || null;
  var retry = 1000;
  function connect() {
    fetch("/" + area + "/ws-ticket", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("ticket " + r.status); return r.json(); })
      .then(function (t) {
        var proto = location.protocol === "https:" ? "wss://" : "ws://";
        var q = "?ticket=" + encodeURIComponent(t.ticket);
        if (lastEventId) q += "&last_event_id=" + encodeURIComponent(lastEventId);
        var extra = document.body.dataset.liveQuery;
        if (extra) q += "&" + extra;
        var ws = new WebSocket(proto + location.host + t.url + q);
        ws.onopen = function () { retry = 1000; document.body.dataset.liveConnected = "1"; };
        ws.onmessage = function (m) {
          var ev;
          try { ev = JSON.parse(m.data); } catch (e) { return; }
          if (ev.id) lastEventId = ev.id;
          document.dispatchEvent(new CustomEvent("souk:event", { detail: ev }));
        };
        ws.onclose = function () {
          document.body.dataset.liveConnected = "";
          setTimeout(connect, retry);
          retry = Math.min(retry * 2, 30000);
        };
      })
      .catch(function () { setTimeout(connect, retry); retry = Math.min(retry * 2, 30000); });
  }
  window.Souk = { toast: toast, csrf: csrf };

  // Default announcements for events every page cares about.
  document.addEventListener("souk:event", function (e) {
    var ev = e.detail, d = ev.data || {};
    if (ev.type === "order.created") toast("New order " + (d.name || ("#" + (d.number || ""))));
    else if (ev.type === "import.completed") toast("Import finished");
    else if (ev.type === "merchant.activated") toast("Merchant activated: " + (d.name || d.handle || ""));
  });

  // --- auto-save: forms with data-autosave post on every change, via fetch ---
  function autosave(form) {
    var status = form.querySelector(".autosave-status");
    var timer = null;
    function save() {
      var body = new URLSearchParams(new FormData(form));
      if (status) status.textContent = "Saving…";
      fetch(form.dataset.autosave || form.action, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
        body: body, credentials: "same-origin"
      }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          form.querySelectorAll("[data-error-for]").forEach(function (p) { p.hidden = true; p.textContent = ""; });
          form.querySelectorAll("[aria-invalid]").forEach(function (i) { i.removeAttribute("aria-invalid"); });
          var errors = (res.body && res.body.errors) || {};
          Object.keys(errors).forEach(function (k) {
            var p = form.querySelector('[data-error-for="' + k + '"]');
            var input = form.querySelector('[name="' + k + '"]');
            if (p) { p.textContent = errors[k]; p.hidden = false; }
            if (input) input.setAttribute("aria-invalid", "true");
          });
          if (status) status.textContent = res.ok ? "All changes saved" : "Not saved: fix the highlighted fields";
          form.dispatchEvent(new CustomEvent("souk:saved", { detail: res.body }));
        })
        .catch(function () { if (status) status.textContent = "Not saved (connection problem); retrying on the next change"; });
    }
    form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(save, 150); });
    form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(save, 800); });
  }

  // --- availability checks: <input data-check-url="/admin/check-subdomain?subdomain="> ---
  function availability(input) {
    var out = document.getElementById(input.dataset.checkOutput);
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (!input.value) { if (out) out.textContent = ""; return; }
        fetch(input.dataset.checkUrl + encodeURIComponent(input.value), { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (j) {
            if (!out) return;
            out.textContent = j.message || (j.available ? "Available" : "Not available");
            out.className = j.available ? "hint ok" : "error";
            input.setAttribute("aria-invalid", j.available ? "false" : "true");
          });
      }, 250);
    });
  }

  // --- dialogs: <button data-open-dialog="id"> ---
  function dialogs() {
    document.querySelectorAll("[data-open-dialog]").forEach(function (b) {
      b.addEventListener("click", function (e) {
        var d = document.getElementById(b.dataset.openDialog);
        if (d && d.showModal) { e.preventDefault(); d.showModal(); var f = d.querySelector("input, select, button"); if (f) f.focus(); }
      });
    });
    document.querySelectorAll("[data-close-dialog]").forEach(function (b) {
      b.addEventListener("click", function () { var d = b.closest("dialog"); if (d) d.close(); });
    });
  }

  // --- confirm before destructive submits: <form data-confirm="Really?"> ---
  function confirms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-autosave]").forEach(autosave);
    document.querySelectorAll("input[data-check-url]").forEach(availability);
    dialogs();
    confirms();
    if (document.body.dataset.live === "1" && window.WebSocket) connect();
  });
})();
