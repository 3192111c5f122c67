// The Financial Approval queue (templates/approvals/queue.html). Kept out of the page so the
// Content-Security-Policy can forbid inline script.
//
//   form#bulk-decision                 the queue's table and the bulk decision buttons
//   input[type=checkbox][name=request] one per row the user may decide
//   [data-select-all]                  holds #select-all-requests; hidden until this script runs
//                                      (without JavaScript each row is ticked by hand)
//   #bulk-selected-count               "3 selected", read out politely as it changes
//
// "Select all on this page" ticks or clears every row's box; it shows as partly ticked while
// some are.
(function () {
  "use strict";

  var form = document.getElementById("bulk-decision");
  var all = document.getElementById("select-all-requests");
  if (!form || !all) return;
  var boxes = Array.prototype.slice.call(
    form.querySelectorAll("input[type=checkbox][name=request]"));
  var count = document.getElementById("bulk-selected-count");
  var holder = form.querySelector("[data-select-all]");
  if (holder) holder.hidden = false;

  function ticked() {
    return boxes.filter(function (box) { return box.checked; }).length;
  }

  function update() {
    var n = ticked();
    all.checked = n > 0 && n === boxes.length;
    all.indeterminate = n > 0 && n < boxes.length;
    if (count) count.textContent = n ? n + " selected" : "";
  }

  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
    update();
  });
  boxes.forEach(function (box) { box.addEventListener("change", update); });
  update();  // boxes the browser kept ticked on going back to the page
})();
