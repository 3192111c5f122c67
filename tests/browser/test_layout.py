"""The office's screens at the widths clinics' desktops and tablets have (1366 and 1024 pixels):
no table wider than the page (no clipped or scrolled-away columns), and no amount or document
number broken across two lines. At 1366 pixels, axe-core finds no serious or critical
accessibility fault on any of them."""

import pytest

from approvals.models import FinancialRequest
from billing.models import Invoice
from refunds.models import CreditNote

from .conftest import accessibility_violations

# Text that must stay on one line: amounts with their currency, invoice and credit note numbers.
WRAPPED_TEXT = """() => {
  const pattern = /(-?[0-9][0-9,]*\\.[0-9]+ [A-Z]{3})|((INV|CN)-[A-Z]+-[0-9]+)/g;
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.parentElement || !node.parentElement.offsetParent) continue;  // hidden
    for (const match of node.textContent.matchAll(pattern)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (lines.size > 1) broken.push(match[0]);
    }
  }
  return broken;
}"""

OVERFLOWING = """() => {
  const found = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    found.push(`page is ${document.documentElement.scrollWidth}px wide`);
  document.querySelectorAll("table").forEach((table, n) => {
    const box = table.parentElement;
    if (table.offsetParent && table.scrollWidth > box.clientWidth + 1)
      found.push(`table ${n + 1} (${table.querySelector("th")?.textContent.trim()}…) is `
                 + `${table.scrollWidth}px in ${box.clientWidth}px`);
  });
  return found;
}"""


def office_pages():
    invoice = (Invoice.objects.filter(clinic__code="MUSCAT", credit_notes__isnull=False)
               .order_by("pk").first())
    note = CreditNote.objects.filter(invoice__clinic__code="MUSCAT").order_by("pk").first()
    request = FinancialRequest.objects.filter(clinic__code="MUSCAT").order_by("pk").first()
    return {
        "home": "/",
        "invoice-list": "/billing/invoices/",
        "invoice": f"/billing/invoices/{invoice.pk}/",
        "refund-form": f"/billing/invoices/{invoice.pk}/refund/",
        "credit-notes": "/billing/credit-notes/",
        "credit-note": f"/billing/credit-notes/{note.pk}/",
        "cancelled": "/billing/invoices/cancelled/",
        "approvals": "/approvals/?status=",
        "request": f"/approvals/{request.pk}/",
        "new-invoice": "/billing/invoices/new/",
        "patients": "/billing/patients/",
        "patient": f"/billing/patients/{invoice.account_id}/",
    }


@pytest.mark.parametrize("width", [1366, 1024])
def test_tables_fit_and_numbers_do_not_wrap(demo, open_session, width):
    session = open_session(width=width).login("admin")
    problems = []
    for name, path in office_pages().items():
        response = session.goto(path)
        assert response.status == 200, f"{name}: {response.status}"
        problems += [f"{name}: {p}" for p in session.page.evaluate(OVERFLOWING)]
        problems += [f"{name}: '{text}' wraps" for text in session.page.evaluate(WRAPPED_TEXT)]
        if width == 1366:
            problems += [f"{name}: {fault}" for fault in accessibility_violations(session.page)]
        session.screenshot(f"{width}-{name}")
    assert not problems, "\n".join(problems)
