"""The invoice page, the refund form and the history in the words of the clinic's manual: per-line
Refund this line / Credit this line, the refunded value under each line's Sub total, a totals
block that adds up, Change keeping every choice, the approved limits up front, history
sentences, and the cancel refusal that says what is true."""

import re
from decimal import Decimal

from django.urls import reverse
from django.utils.html import strip_tags

from billing.breakdown import CreditLineInput
from billing.models import InvoiceStatus
from refunds.services import credit_note_create

D = Decimal


def invoice_page(client, invoice):
    page = client.get(reverse("desk:invoice_detail", args=[invoice.pk]))
    assert page.status_code == 200
    return page


def totals(html: str) -> list[tuple[str, str]]:
    """The totals block, row by row: [(label, figure)]."""
    foot = html[html.index("<tfoot>"):html.index("</tfoot>")]
    rows = re.findall(r"<th[^>]*>(.*?)</th><td class=\"money\">(.*?)</td>", foot)
    return [(strip_tags(label), strip_tags(figure)) for label, figure in rows]


def lines_of(invoice):
    return list(invoice.lines.order_by("position"))


# -- the line total is the manual's "Sub total", with what was refunded or credited under it ------

def test_the_line_total_column_is_called_sub_total(client, clerk, make_invoice):
    client.force_login(clerk)
    html = invoice_page(client, make_invoice()).content.decode()
    head = html[html.index("<thead>"):html.index("</thead>")]
    assert '<th class="money">Sub total</th>' in head
    assert ">Total<" not in head


def test_what_was_refunded_and_credited_shows_under_each_lines_sub_total(
        client, clerk, make_invoice, pay, reason):
    invoice = make_invoice()
    line_a, line_b = lines_of(invoice)
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b, D("5.000"))],
                       dispute_reason=reason, actor=clerk)  # nothing paid: a credit
    pay(invoice, "23.450")
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("10.000"))],
                       dispute_reason=reason, actor=clerk)  # all paid: a refund
    client.force_login(clerk)

    html = invoice_page(client, invoice).content.decode()

    row_a = html[html.index("<td>Item 1"):html.index("<td>Item 2")]
    row_b = html[html.index("<td>Item 2"):html.index("</tbody>")]
    assert '<div class="line-credit">Refunded 10.500 OMR</div>' in row_a
    assert "Credited" not in row_a
    assert '<div class="line-credit">Credited 5.250 OMR</div>' in row_b
    assert "Refunded" not in row_b


# -- the totals block adds up and never counts a refund twice --------------------------------------

def test_the_totals_add_up_with_a_credit_and_a_refund(client, clerk, make_invoice, pay, reason):
    invoice = make_invoice()  # 28.700 OMR
    line_a, line_b = lines_of(invoice)
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)],  # 7.700, nothing paid
                       dispute_reason=reason, actor=clerk)
    pay(invoice, "21.000")
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                       dispute_reason=reason, actor=clerk)  # 5.250 paid back
    invoice.refresh_from_db()
    client.force_login(clerk)

    html = invoice_page(client, invoice).content.decode()

    assert totals(html) == [
        ("Subtotal (without tax)", "27.333 OMR"),
        ("Tax", "1.367 OMR"),
        ("Total", "28.700 OMR"),
        ("Credited (credit notes)", "−12.950 OMR"),
        ("Total after credits", "15.750 OMR"),
        ("Paid", "21.000 OMR"),
        ("of which paid back to the patient (Refunded)", "5.250 OMR"),
        ("Net paid (paid less refunded)", "−15.750 OMR"),
        ("Balance due", "0.000 OMR"),
    ]
    # Total − Credited − (Paid − Refunded) = Balance due
    assert (D("28.700") - D("12.950") - (D("21.000") - D("5.250"))
            == invoice.balance_due == D("0.000"))
    assert ("Refunds are paid back from the credit notes above; they do not reduce the balance "
            "again.") in html


def test_without_credits_or_refunds_the_totals_stay_short(client, clerk, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "10.000")
    client.force_login(clerk)

    html = invoice_page(client, invoice).content.decode()

    assert [label for label, _ in totals(html)] == [
        "Subtotal (without tax)", "Tax", "Total", "Paid", "Balance due"]
    assert "they do not reduce the balance again" not in html
