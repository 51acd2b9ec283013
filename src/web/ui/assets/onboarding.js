// Onboarding wizard scripts: the live storefront preview of the Branding step. The
// preview is a sandboxed <iframe id="brand-preview"> showing the store's real home page
// rendered with the form's colours and fonts (its data-preview-base URL plus the values
// of every input with data-preview-var as query parameters). As the merchant types or
// picks a colour, the iframe is pointed at the new values, debounced by 300 ms; the form
// itself keeps auto-saving through app.js. Without JavaScript the iframe shows the values
// the page was rendered with (the saved ones).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var frame = document.getElementById("brand-preview");
    if (!frame || frame.tagName !== "IFRAME" || !frame.dataset.previewBase) return;
    var form = frame.closest("form") || document;
    var inputs = form.querySelectorAll("[data-preview-var]");
    var shown = new URL(frame.getAttribute("src") || frame.dataset.previewBase, location.href).href;
    var timer = null;
    function target() {
      var q = new URLSearchParams();
      inputs.forEach(function (input) {
        if (input.name && input.value) q.append(input.name, input.value);
      });
      var s = q.toString();
      return new URL(frame.dataset.previewBase + (s ? "?" + s : ""), location.href).href;
    }
    function refresh() {
      var next = target();
      if (next === shown) return;
      shown = next;
      // replace(): no history entry per change, so Back still leaves the page.
      try {
        frame.contentWindow.location.replace(next);
      } catch (e) {
        frame.src = next;
      }
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    }
    inputs.forEach(function (input) {
      input.addEventListener("input", later);
      input.addEventListener("change", later);
    });
  });
})();
