// Admin panel scripts: the shared activation dialog, live provisioning progress and live
// vendor-import progress. Everything here enhances server-rendered pages that also work
// without JavaScript (links to full pages, "Refresh" links).
(function () {
  "use strict";

  // --- activation dialog opened from a merchant row: point the form at that merchant ---
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest('a[data-open-dialog="activate-dialog"]');
    if (!a) return;
    var d = document.getElementById("activate-dialog");
    if (!d) return;
    var f = d.querySelector("form");
    if (f && a.getAttribute("href")) f.setAttribute("action", a.getAttribute("href"));
    var t = d.querySelector("[data-activate-title]");
    if (t && a.dataset.activateName) t.textContent = a.dataset.activateName;
    var sub = d.querySelector('input[name="subdomain"]');
    if (sub) { sub.value = a.dataset.activateHandle || ""; sub.dispatchEvent(new Event("input")); }
  }, true);

  var STEP_CLASS = { completed: "done", in_progress: "running", failed: "failed" };
  var STEP_ICON = { completed: "\u2713", failed: "\u2715", in_progress: "\u2026" };

  // --- provisioning progress ---
  function provisioning(box) {
    var url = box.dataset.provisioningUrl;
    var merchant = box.dataset.merchantId;
    var timer = null, busy = false;
    function render(p) {
      document.getElementById("provisioning-status").textContent = p.status_label;
      document.getElementById("provisioning-total").textContent = p.total_label;
      var list = document.getElementById("provisioning-steps");
      p.steps.forEach(function (s, i) {
        var li = list.querySelector('li[data-step="' + s.name + '"]');
        if (!li) {
          li = document.createElement("li");
          li.dataset.step = s.name;
          li.innerHTML = '<span class="icon" aria-hidden="true"></span><span class="step-label"></span> <span class="step-status"></span> <span class="step-duration muted"></span>';
          list.appendChild(li);
        }
        li.dataset.status = s.status;
        li.className = STEP_CLASS[s.status] || "";
        li.querySelector(".icon").textContent = STEP_ICON[s.status] || String(i + 1);
        li.querySelector(".step-label").textContent = s.label;
        li.querySelector(".step-status").textContent = s.status_label;
        li.querySelector(".step-duration").textContent = s.duration_ms == null ? "" : s.duration_ms + " ms";
        var err = li.querySelector(".error");
        if (s.error) {
          if (!err) { err = document.createElement("span"); err.className = "error"; li.appendChild(err); }
          err.textContent = s.error;
        } else if (err) { err.remove(); }
      });
      var failure = document.getElementById("provisioning-failure");
      if (failure) {
        failure.hidden = p.status !== "failed";
        var e = document.getElementById("provisioning-error");
        if (e) e.textContent = p.error || "";
      }
      if (p.done) {
        box.dataset.done = "1";
        if (timer) { clearInterval(timer); timer = null; }
        if (p.status === "completed") window.Souk.toast("Provisioning completed in " + p.total_ms + " ms");
      }
    }
    function refresh() {
      if (busy) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(render)
        .catch(function () {})
        .then(function () { busy = false; });
    }
    document.addEventListener("souk:event", function (e) {
      var ev = e.detail || {}, d = ev.data || {};
      if (ev.type !== "merchant.provisioning_updated" && ev.type !== "merchant.activated") return;
      if (ev.tenant_id === merchant || d.merchant_id === merchant || d.id === merchant) refresh();
    });
    if (box.dataset.done !== "1") {
      // Events make it instant; the poll is the fallback while the socket connects.
      timer = setInterval(refresh, 1000);
      refresh();
    }
  }

  // --- vendor import progress: how many created merchants finished provisioning ---
  function importProgress(box) {
    var url = box.dataset.importProgressUrl;
    var created = parseInt(box.dataset.created || "0", 10);
    var timer = null;
    function refresh() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          var out = document.getElementById("import-provisioned");
          if (out) out.textContent = "Provisioned: " + j.provisioned + " of " + j.created;
          var bar = document.getElementById("import-progress");
          if (bar) bar.value = j.provisioned;
          Object.keys(j.statuses || {}).forEach(function (id) {
            var cell = document.querySelector('[data-merchant-status="' + id + '"] .badge');
            var s = j.statuses[id] || "deleted";
            if (cell) { cell.textContent = s; cell.className = "badge badge-" + s; }
          });
          if (j.provisioned >= j.created && timer) { clearInterval(timer); timer = null; }
        })
        .catch(function () {});
    }
    if (created > 0) {
      timer = setInterval(refresh, 2000);
      refresh();
      document.addEventListener("souk:event", function (e) {
        if ((e.detail || {}).type === "merchant.activated") refresh();
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-provisioning-url]").forEach(provisioning);
    document.querySelectorAll("[data-import-progress-url]").forEach(importProgress);
  });
})();
