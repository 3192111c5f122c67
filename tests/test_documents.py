"""Documents: the credit note and the invoice as PDF downloads (WeasyPrint), and the invoice
page's print rendering.

The PDF's text is read from WeasyPrint's laid-out pages (no PDF text extractor is installed):
the same HTML and the same layout that `write_pdf()` turns into the downloaded bytes."""

import logging.config
import re
import socket
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from weasyprint.formatting_structure import boxes

from approvals.services import refund_request_create, request_approve
from billing import pdf
from billing.models import Invoice
from billing.pdf import FetchRefused, StaticFilesFetcher, html_document
from config.settings import base
from desk.documents import INVOICE_TEMPLATE, invoice_document_context
from refunds.documents import CREDIT_NOTE_TEMPLATE, credit_note_document_context
from refunds.models import Refund
from refunds.services import credit_note_create, invoice_cancel

D = Decimal
BASE_URL = "http://testserver/"


# -- reading a document ----------------------------------------------------------------------------

def _children(box):
    return getattr(box, "children", None) or []


def _text_of(box) -> str:
    if isinstance(box, boxes.TextBox):
        return box.text
    return "".join(_text_of(child) for child in _children(box))


def _lines(box):
    """Each laid-out line of text, top to bottom; a table row as one line, its cells separated
    by " | " (a cell's own lines by a space)."""
    if isinstance(box, boxes.TableRowBox):
        yield " | ".join(" ".join(_lines(cell)) for cell in _children(box))
        return
    if isinstance(box, boxes.LineBox):
        yield _text_of(box)
        return
    for child in _children(box):
        yield from _lines(child)


def _text_boxes(box):
    if isinstance(box, boxes.TextBox):
        yield box
    for child in _children(box):
        yield from _text_boxes(child)


def laid_out(template, context):
    return html_document(template, context, base_url=BASE_URL).render()


def document_lines(document) -> list[str]:
    return [line for page in document.pages for line in _lines(page._page_box)]


def credit_note_lines(note) -> list[str]:
    return document_lines(laid_out(CREDIT_NOTE_TEMPLATE, credit_note_document_context(note)))


def invoice_lines(invoice) -> list[str]:
    invoice = Invoice.objects.get(pk=invoice.pk)
    return document_lines(laid_out(INVOICE_TEMPLATE, invoice_document_context(invoice)))


def assert_pdf_download(response, filename):
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response.content.startswith(b"%PDF-")
    assert response.content.rstrip().endswith(b"%%EOF")


def cn_pdf_url(note):
    return reverse("refunds:credit_note_pdf", args=[note.pk])


def invoice_pdf_url(invoice):
    return reverse("desk:invoice_pdf", args=[invoice.pk])


@pytest.fixture
def named_clerk(clerk):
    clerk.first_name, clerk.last_name = "Maryam", "Al-Hinai"
    clerk.save(update_fields=["first_name", "last_name"])
    return clerk


@pytest.fixture
def refunded(make_invoice, pay, reason, named_clerk, clinic):
    """A paid invoice of Muscat Clinic (28.700 OMR), refunded in full to cash."""
    clinic.address = "Way 3021, Al Khuwair\nMuscat"
    clinic.tax_registration_number = "OM1100123456"
    clinic.save(update_fields=["address", "tax_registration_number"])
    invoice = make_invoice()
    pay(invoice, "28.700")
    return credit_note_create(invoice=invoice, full=True, dispute_reason=reason,
                              actor=named_clerk, remarks="Charged twice")


# -- the credit note -------------------------------------------------------------------------------

def test_the_credit_note_downloads_as_a_pdf_named_after_its_number(client, clerk, refunded):
    client.force_login(clerk)

    response = client.get(cn_pdf_url(refunded))

    assert_pdf_download(response, "CN-MUSCAT-000001.pdf")


def test_the_credit_note_pdf_shows_what_the_printed_page_shows(refunded):
    lines = credit_note_lines(refunded)
    text = "\n".join(lines)

    for expected in [
        "Credit note", "CN-MUSCAT-000001", "Muscat Clinic", "Way 3021, Al Khuwair", "Muscat",
        "Tax no. OM1100123456",
        "Aisha Al-Balushi", "Account P00001", refunded.invoice.number, "Billing error",
        "Remarks: Charged twice",
    ]:
        assert expected in text, expected
    # each line with its net, tax and total, on one row
    assert "Item 1 | VAT 5% | 20.000 OMR | 1.000 OMR | 21.000 OMR" in lines
    assert "Item 2 | VAT 5% | 7.333 OMR | 0.367 OMR | 7.700 OMR" in lines
    # the totals, and what reduced the balance against what was paid back, said once
    assert "Subtotal | 27.333 OMR" in lines
    assert "Tax | 1.367 OMR" in lines
    assert "Total credited | 28.700 OMR" in lines
    assert "of which reduced the balance due | 0.000 OMR" in lines
    assert "of which refunded | 28.700 OMR" in lines
    assert "Refunded 28.700 OMR to Cash." in lines
    # who issued it, by full name, and when
    assert any(line.startswith("Issued by Maryam Al-Hinai on ") for line in lines), lines
    assert "clerk" not in text


def test_the_credit_note_pdf_shows_no_refund_state(refunded, online_card, make_invoice, pay,
                                                   reason, clerk):
    # a cash refund waiting to be paid out, and a card refund the gateway declined
    by_card = make_invoice()
    pay(by_card, "28.700", method=online_card, reference="fail_card")
    declined = credit_note_create(invoice=by_card, full=True, dispute_reason=reason, actor=clerk)
    Refund.objects.filter(credit_note=declined).update(status=Refund.Status.FAILED, attempts=1)

    for note in (refunded, declined):
        text = "\n".join(credit_note_lines(note)).lower()
        for status in Refund.Status:
            assert status.label.lower() not in text, (note, status)
        assert "mark it paid out" not in text


def test_the_credit_note_pdf_names_who_approved_it(client, approval_clinic, make_invoice, pay,
                                                   reason, named_clerk, approver):
    approver.first_name, approver.last_name = "Salim", "Al-Rawahi"
    approver.save(update_fields=["first_name", "last_name"])
    invoice = make_invoice()
    pay(invoice, "28.700")
    request = refund_request_create(invoice=invoice, remarks="Charged twice", actor=named_clerk)
    request_approve(financial_request=request, actor=approver, remarks="Receipts checked")
    note = credit_note_create(invoice=invoice, full=True, dispute_reason=reason,
                              actor=named_clerk)

    lines = credit_note_lines(note)

    assert any(line.startswith("Approved by Salim Al-Rawahi on ")
               and line.endswith(f"(request #{request.pk}).") for line in lines), lines


def test_another_clinics_credit_note_pdf_is_not_found(client, outsider, refunded):
    client.force_login(outsider)

    assert client.get(cn_pdf_url(refunded)).status_code == 404
    # the same answer as its printable page
    assert client.get(reverse("refunds:credit_note_detail", args=[refunded.pk])).status_code == 404


def test_a_missing_credit_note_pdf_is_not_found(client, clerk, refunded):
    client.force_login(clerk)
    assert client.get(reverse("refunds:credit_note_pdf", args=[refunded.pk + 1000])
                      ).status_code == 404


def test_the_credit_note_pdf_asks_an_anonymous_visitor_to_sign_in(client, refunded):
    url = cn_pdf_url(refunded)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_the_credit_note_page_offers_the_pdf(client, clerk, refunded):
    client.force_login(clerk)

    html = client.get(reverse("refunds:credit_note_detail", args=[refunded.pk])).content.decode()

    assert f'href="{cn_pdf_url(refunded)}">Download PDF</a>' in html


# -- the invoice -----------------------------------------------------------------------------------

def test_the_invoice_downloads_as_a_pdf_named_after_its_number(client, clerk, make_invoice):
    invoice = make_invoice()
    client.force_login(clerk)

    response = client.get(invoice_pdf_url(invoice))

    assert_pdf_download(response, f"{invoice.number}.pdf")


def test_the_invoice_pdf_shows_its_lines_and_totals(make_invoice, pay, clerk):
    invoice = make_invoice()
    pay(invoice, "10.000")

    lines = invoice_lines(invoice)
    text = "\n".join(lines)

    assert "Invoice" in lines
    assert invoice.number in lines
    for expected in ["Muscat Clinic", "Aisha Al-Balushi", "Account P00001", "Partially paid"]:
        assert expected in text, expected
    assert "Item 1 | 2 | 10.000 OMR | VAT 5% | 20.000 OMR | 1.000 OMR | 21.000 OMR" in lines
    assert "Total | 28.700 OMR" in lines
    assert "less payments received | −10.000 OMR" in lines
    assert "Balance due | 18.700 OMR" in lines
    assert "DRAFT" not in text


def test_the_invoice_pdf_totals_add_up_as_written_after_a_refund(make_invoice, pay, reason, clerk):
    # total − credit notes − payments + paid back = balance due: no money leaves twice
    invoice = make_invoice()
    pay(invoice, "28.700")
    credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)

    lines = invoice_lines(invoice)

    totals = lines[lines.index("Total | 28.700 OMR"):]
    assert totals[:4] == ["Total | 28.700 OMR", "less credit notes | −28.700 OMR",
                          "less payments received | −28.700 OMR",
                          "plus payments refunded | +28.700 OMR"]
    assert "Balance due | 0.000 OMR" in totals
    # the refunded value under each line's total
    assert ("Item 1 | 2 | 10.000 OMR | VAT 5% | 20.000 OMR | 1.000 OMR | 21.000 OMR "
            "Refunded 21.000 OMR") in lines


def test_a_draft_invoice_pdf_is_named_by_its_id_and_marked_draft(client, clerk, make_invoice):
    draft = make_invoice(issue=False)
    client.force_login(clerk)

    response = client.get(invoice_pdf_url(draft))

    assert_pdf_download(response, f"draft-{draft.pk}.pdf")
    text = "\n".join(invoice_lines(draft))
    assert "Draft invoice" in text
    assert "DRAFT: this invoice has not been issued." in text
    assert "DRAFT" in invoice_lines(draft)  # the mark across the page


def test_a_cancelled_invoice_pdf_says_so(make_invoice, clerk):
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Wrong patient", actor=clerk)

    lines = invoice_lines(invoice)

    assert "CANCELLED" in lines
    assert any(line.startswith("CANCELLED: this invoice was cancelled") for line in lines)


def test_another_clinics_invoice_pdf_is_not_found(client, outsider, make_invoice):
    invoice = make_invoice()
    client.force_login(outsider)

    assert client.get(invoice_pdf_url(invoice)).status_code == 404
    assert client.get(reverse("desk:invoice_detail", args=[invoice.pk])).status_code == 404


def test_the_invoice_pdf_asks_an_anonymous_visitor_to_sign_in(client, make_invoice):
    url = invoice_pdf_url(make_invoice())

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_long_amounts_stay_whole_and_on_the_page(make_invoice):
    # about the largest amounts an invoice takes: all inside the sheet, no number cut in two (when
    # the sheet is too narrow, only the currency code goes under its number)
    invoice = make_invoice([("9", "999999999.999"), ("1", "7.333")])
    assert invoice.money(invoice.total) == "9,450,000,007.691 OMR"

    document = laid_out(INVOICE_TEMPLATE, invoice_document_context(invoice))

    numbers = []
    for page in document.pages:
        sheet = page._page_box
        right_edge = sheet.content_box_x() + sheet.width
        texts = list(_text_boxes(_children(sheet)[0]))  # the page's content, not its footer
        assert [(box.text, box.position_x + box.width) for box in texts
                if box.position_x + box.width > right_edge + 0.5] == [], right_edge
        numbers += [token for box in texts for token in re.findall(r"[\d,.]*\d[\d,.]*", box.text)
                    if "," in token or "." in token]
    assert {"999,999,999.999", "8,999,999,999.991", "450,000,000.000", "9,449,999,999.991",
            "9,000,000,007.324", "9,450,000,007.691"} <= set(numbers)
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*\.\d{3}", number) for number in numbers), numbers


# -- the invoice page, printed ---------------------------------------------------------------------

class PrintedText(HTMLParser):
    """The page's text as a browser prints it: without what Bootstrap hides in print
    (.d-print-none), scripts and the head."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []  # per open element: hidden in print?
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        hidden = "d-print-none" in classes or tag in {"script", "head", "style"}
        self.stack.append(hidden or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]) and data.strip():
            self.parts.append(" ".join(data.split()))

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return "\n".join(parser.parts)


def test_the_printed_invoice_page_leaves_out_navigation_actions_and_history(
        client, named_clerk, make_invoice, pay, reason):
    invoice = make_invoice()
    pay(invoice, "28.700")
    credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=named_clerk)
    client.force_login(named_clerk)

    response = client.get(reverse("desk:invoice_detail", args=[invoice.pk]), follow=True)
    html = response.content.decode()
    printed = PrintedText.of(html)

    # on screen: the menu, the actions, the PDF, the history, the payout to-do
    for on_screen in ["Financial Approval", "More Action", "Download PDF", "History",
                      "Mark paid out", "then mark it paid out", "Log out"]:
        assert on_screen in html, on_screen
        assert on_screen not in printed, on_screen
    # on paper: the invoice itself
    for on_paper in [invoice.number, "Aisha Al-Balushi", "Item 1", "Balance due", "0.000 OMR",
                     "Payments", "Credit notes"]:
        assert on_paper in printed, on_paper
    # printed on A4 with the documents' print rules
    assert 'href="/static/css/documents.css" media="print"' in html


def test_the_invoice_page_offers_the_pdf_beside_more_action(client, clerk, make_invoice):
    invoice = make_invoice()
    client.force_login(clerk)

    html = client.get(reverse("desk:invoice_detail", args=[invoice.pk])).content.decode()

    link = f'href="{invoice_pdf_url(invoice)}">Download PDF</a>'
    assert link in html
    assert html.index(link) < html.index(">More Action</button>")


# -- fetching: our static files from disk, nothing else ------------------------------------------

def test_the_fetcher_reads_our_static_files_from_disk(settings):
    fetcher = StaticFilesFetcher(BASE_URL)

    response = fetcher.fetch("http://testserver/static/css/documents.css")

    assert response.content_type == "text/css"
    assert b"@page" in response.read()


@pytest.mark.parametrize("url", [
    "https://example.com/logo.png",
    "http://example.com/static/css/documents.css",   # our path on another host
    "https://testserver/static/css/documents.css",   # another scheme
    "http://testserver/static/../manage.py",
    "http://testserver/static/%2e%2e/config/settings/base.py",
    "http://testserver/static/css/no-such-file.css",
    "http://testserver/admin/",
    "file:///etc/passwd",
    "ftp://example.com/x.css",
    "data:text/css,body{color:red}",
])
def test_the_fetcher_refuses_anything_else(url):
    fetcher = StaticFilesFetcher(BASE_URL)

    with pytest.raises(FetchRefused):
        fetcher.fetch(url)
    assert fetcher.refused == [url]


HOSTILE = """<!doctype html><html><head>
<link rel="stylesheet" href="https://cdn.example.com/bootstrap.css">
<link rel="stylesheet" href="/static/css/documents.css">
<style>@import url("https://fonts.example.com/font.css");
@font-face { font-family: Remote; src: url("https://fonts.example.com/remote.woff2"); }
body { background: url("http://198.51.100.7/track.png"); font-family: Remote; }</style>
</head><body class="document"><h1>Credit note</h1>
<img src="https://example.com/logo.png" alt="logo"><img src="//example.org/pixel.gif" alt="">
</body></html>"""


def test_a_document_linking_remote_files_makes_no_network_request(monkeypatch):
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("a document tried to reach the network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(pdf, "render_to_string", lambda template, context: HOSTILE)

    document = html_document("documents/credit_note.html", {}, base_url=BASE_URL)
    data = document.write_pdf()

    assert data.startswith(b"%PDF-")
    assert attempts == []
    assert sorted(document.url_fetcher.refused) == sorted([
        "https://cdn.example.com/bootstrap.css",
        "https://fonts.example.com/font.css",
        "https://fonts.example.com/remote.woff2",
        "http://198.51.100.7/track.png",
        "https://example.com/logo.png",
        "http://example.org/pixel.gif",
    ])


def test_laying_out_a_pdf_is_not_logged_step_by_step(settings):
    # production logging (config/settings/base.py): WeasyPrint's progress stays out of the logs,
    # its warnings (a refused fetch, CSS it cannot use) do not
    try:
        logging.config.dictConfig(base.LOGGING)
        assert not logging.getLogger("weasyprint.progress").isEnabledFor(logging.INFO)
        assert logging.getLogger("weasyprint").isEnabledFor(logging.WARNING)
        assert logging.getLogger("billing.pdf").isEnabledFor(logging.WARNING)
    finally:
        logging.config.dictConfig(settings.LOGGING)
