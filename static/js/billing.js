// Behaviour for the billing screens. Kept out of the pages so the Content-Security-Policy can
// forbid inline script.
//
// The invoice list (templates/billing/invoice_list.html), as the clinic's manual describes it:
// "click the invoice row to select it, then click the More Action menu". The markup it relies on
// is stable; the browser tests use the same names:
//
//   table#invoice-table[role=grid]    the invoices of the page
//   tr.invoice-row                    one per invoice; aria-selected "false", or "true" on the one
//                                     selected row (highlighted); attributes:
//     data-invoice-id                 the invoice's id
//     data-invoice-number             its number ("Draft" for a draft)
//     data-href                       its page (desk:invoice_detail)
//     data-actions-url                its More Action entries (desk:invoice_actions; htmx only)
//   button#more-action                More Action: disabled until a row is selected
//   ul#more-action-menu               its dropdown, filled by htmx with the selected invoice's
//                                     entries (the invoice page's own, disabled ones with reasons)
//   #more-action-hint                 "Select an invoice to see its actions", then
//                                     "<number> selected"
//
// A click selects its row (one at a time). The selected row is the table's only tab stop (a
// roving tabindex; the links inside rows leave the tab order); ArrowUp / ArrowDown / Home / End
// move the selection, Space selects the focused row, Enter or a double-click opens the invoice.
// A click on the invoice number follows its link, which is also all there is without JavaScript.
// After each selection the table dispatches "invoice:selected" (detail.row). The menu reads
// "Loading…" until the entries arrive; if they cannot be fetched it offers to open the invoice.
(function () {
  "use strict";

  // A click anywhere on a row opens it; links and controls inside the row keep their own target,
  // and so does a breakdown opened in the row (details).
  document.querySelectorAll("tr.clickable[data-href]").forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input, select, textarea, label, details")) return;
      window.location.href = row.dataset.href;
    });
  });

  // Print buttons.
  document.querySelectorAll("[data-action='print']").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  // -- the invoice list: select a row, then More Action ------------------------------------------
  var table = document.getElementById("invoice-table");
  var button = document.getElementById("more-action");
  var menu = document.getElementById("more-action-menu");
  var hint = document.getElementById("more-action-hint");
  if (!table || !button || !menu || !hint) return;

  var CONTROLS = "a, button, input, select, textarea, label";
  var KEY_DELAY_MS = 150;  // arrow keys held down: fetch the menu of the row they stop on
  var rows = Array.prototype.slice.call(table.querySelectorAll("tr.invoice-row"));
  var loadTimer = null;

  rows.forEach(function (row, index) {
    row.tabIndex = index === 0 ? 0 : -1;
    row.querySelectorAll(CONTROLS).forEach(function (control) { control.tabIndex = -1; });
  });

  function selectedRow() {
    return table.querySelector("tr.invoice-row[aria-selected='true']");
  }

  function showInMenu(text, href) {
    var item = document.createElement("li");
    var content = document.createElement(href ? "a" : "span");
    content.className = href ? "dropdown-item" : "dropdown-item-text text-secondary";
    if (href) content.href = href;
    content.textContent = text;
    item.appendChild(content);
    menu.replaceChildren(item);
  }

  function offerToOpen(row) {
    showInMenu("Open the invoice to see its actions", row.dataset.href);
  }

  // A load that fails for a moment (a 5xx answer, a dropped connection) is tried once more
  // before the menu offers to open the invoice instead.
  var RETRY_MS = 700;
  var retried = null;

  function loadMenu(row, retry) {
    if (row !== selectedRow()) return;
    if (!window.htmx) { offerToOpen(row); return; }
    retried = retry ? row : null;
    window.htmx.ajax("GET", row.dataset.actionsUrl,
                     {source: menu, target: menu, swap: "innerHTML"});
  }

  function select(row, options) {
    options = options || {};
    if (options.focus) row.focus();
    if (row === selectedRow()) {
      // selected already: a click or Space again fetches its menu again (after a failed load)
      if (options.reload) { clearTimeout(loadTimer); loadMenu(row); }
      return;
    }
    rows.forEach(function (other) {
      var chosen = other === row;
      other.setAttribute("aria-selected", chosen ? "true" : "false");
      other.tabIndex = chosen ? 0 : -1;
    });
    hint.textContent = row.dataset.invoiceNumber + " selected";
    button.disabled = false;
    showInMenu("Loading the actions of " + row.dataset.invoiceNumber + "…");
    clearTimeout(loadTimer);
    loadTimer = setTimeout(function () { loadMenu(row); }, options.delay || 0);
    table.dispatchEvent(new CustomEvent("invoice:selected", {bubbles: true, detail: {row: row}}));
  }

  function open(row) {
    window.location.href = row.dataset.href;
  }

  function rowOf(event) {
    var row = event.target.closest("tr.invoice-row");
    return row && table.contains(row) ? row : null;
  }

  table.addEventListener("click", function (event) {
    var row = rowOf(event);
    if (!row || event.target.closest(CONTROLS)) return;
    select(row, {focus: true, reload: true});
  });

  table.addEventListener("dblclick", function (event) {
    var row = rowOf(event);
    if (row && !event.target.closest(CONTROLS)) open(row);
  });

  table.addEventListener("keydown", function (event) {
    var row = rowOf(event);
    if (!row || event.target !== row || event.altKey || event.ctrlKey || event.metaKey) return;
    var index = rows.indexOf(row);
    var next = {
      ArrowDown: rows[Math.min(index + 1, rows.length - 1)],
      ArrowUp: rows[Math.max(index - 1, 0)],
      Home: rows[0],
      End: rows[rows.length - 1],
    }[event.key];
    if (next) {
      event.preventDefault();
      select(next, {focus: true, delay: KEY_DELAY_MS});
    } else if (event.key === " ") {
      event.preventDefault();
      select(row, {focus: true, reload: true});
    } else if (event.key === "Enter") {
      event.preventDefault();
      open(row);
    }
  });

  // Only the selected row's entries are shown: an answer for a row left meanwhile, or one that
  // ended elsewhere (a log-in page after the session expired), is not swapped in.
  menu.addEventListener("htmx:beforeSwap", function (event) {
    var row = selectedRow();
    var asked = event.detail.pathInfo.requestPath;
    var answered = new URL(event.detail.xhr.responseURL, window.location.href).pathname;
    if (!row || asked !== row.dataset.actionsUrl) {
      event.detail.shouldSwap = false;
    } else if (answered !== asked) {
      event.detail.shouldSwap = false;
      offerToOpen(row);
    }
  });

  function failed(event) {
    var row = selectedRow();
    var asked = event.detail.pathInfo && event.detail.pathInfo.requestPath;
    if (!row || asked !== row.dataset.actionsUrl) return;
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (retried !== row && (status === 0 || status >= 500)) {
      clearTimeout(loadTimer);
      loadTimer = setTimeout(function () { loadMenu(row, true); }, RETRY_MS);
      return;
    }
    offerToOpen(row);
  }
  menu.addEventListener("htmx:responseError", failed);
  menu.addEventListener("htmx:sendError", failed);
})();
