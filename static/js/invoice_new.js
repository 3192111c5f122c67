// The New invoice screen: "Add line" copies the formset's empty row, and only the part of the
// patient's details that the chosen option uses is shown. Without it the page still works: a
// few empty rows are offered, and both parts are shown.
(function () {
  "use strict";

  var form = document.querySelector("form[data-invoice-form]");
  if (!form) return;

  var template = document.getElementById("invoice-line-template");
  var rows = document.getElementById("invoice-lines");
  var total = form.querySelector("input[name='lines-TOTAL_FORMS']");
  var most = form.querySelector("input[name='lines-MAX_NUM_FORMS']");
  var addLine = form.querySelector("[data-action='add-line']");
  if (template && rows && total && most && addLine) {
    var limit = parseInt(most.value, 10);
    addLine.hidden = false;
    addLine.disabled = parseInt(total.value, 10) >= limit;
    addLine.addEventListener("click", function () {
      var index = parseInt(total.value, 10);
      if (index >= limit) return;
      rows.insertAdjacentHTML("beforeend", template.innerHTML
        .replace(/__prefix__/g, String(index))
        .replace(/__number__/g, String(index + 1)));
      total.value = String(index + 1);
      addLine.disabled = index + 1 >= limit;
      var first = rows.lastElementChild && rows.lastElementChild.querySelector("select, input");
      if (first) first.focus();
    });
  }

  var choices = form.querySelectorAll("input[data-patient-choice]");
  var sections = form.querySelectorAll("[data-patient-section]");
  function showChosen() {
    var chosen = form.querySelector("input[data-patient-choice]:checked");
    if (!chosen) return;
    sections.forEach(function (section) {
      section.hidden = section.dataset.patientSection !== chosen.value;
    });
  }
  choices.forEach(function (choice) { choice.addEventListener("change", showChosen); });
  showChosen();

  // Enter in a field would press the form's first button, Find patient, and quietly show the
  // page again: Enter finds the patient only from the search field, and elsewhere does nothing.
  var find = form.querySelector("button[name='action'][value='find']");
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.target.tagName !== "INPUT") return;
    if (event.target.type === "submit" || event.target.type === "button") return;
    event.preventDefault();
    if (find && event.target.closest("[data-patient-section='existing']")) find.click();
  });
})();
