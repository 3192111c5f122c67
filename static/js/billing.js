// Behaviour for the billing screens. Kept out of the pages so the Content-Security-Policy can
// forbid inline script.
(function () {
  "use strict";

  // A click anywhere on a row opens it; links and controls inside the row keep their own target.
  document.querySelectorAll("tr.clickable[data-href]").forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input, select, textarea, label")) return;
      window.location.href = row.dataset.href;
    });
  });

  // Print buttons.
  document.querySelectorAll("[data-action='print']").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
