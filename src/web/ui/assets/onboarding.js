// Onboarding wizard scripts: the live storefront preview of the Branding step. Every
// input with data-preview-var="--color-primary" sets that CSS custom property on the
// preview box as the merchant types or picks a colour (the form itself auto-saves through
// app.js). Without JavaScript the preview shows the saved values.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var preview = document.getElementById("brand-preview");
    if (!preview) return;
    document.querySelectorAll("[data-preview-var]").forEach(function (input) {
      function apply() {
        if (input.value) preview.style.setProperty(input.dataset.previewVar, input.value);
      }
      input.addEventListener("input", apply);
      input.addEventListener("change", apply);
    });
  });
})();
