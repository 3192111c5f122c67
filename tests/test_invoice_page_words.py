"""The invoice page, the refund form and the history in the words of the clinic's manual: per-line
Refund this line / Credit this line, the refunded value under each line's Sub total, a totals
block that adds up, Change keeping every choice, the approved limits up front, history
sentences, and the cancel refusal that says what is true."""

import re
from decimal import Decimal
from html.parser import HTMLParser

from django.template import Context, Template
from django.urls import reverse
from django.utils.html import escape, strip_tags

from approvals.gate import LINE_NOT_APPROVED
from approvals.services import refund_request_create, request_approve
from audit.models import Action, AuditEvent
from billing.breakdown import LINE_NOT_ON_INVOICE, LINE_NOTHING_LEFT, CreditLineInput
from billing.models import InvoiceStatus
from billing.rules import CANCEL_NOTHING_LEFT, cancellation_refusal
from billing.templatetags.history import SENTENCES
from desk.actions import REFUND_REQUEST
from refunds.services import credit_note_create, invoice_cancel

from .conftest import ledger_state
from .factories import DisputeReasonFactory

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


def test_a_fully_refunded_invoice_shows_net_paid_without_a_minus(client, clerk, make_invoice,
                                                                  pay, reason):
    invoice = make_invoice()
    pay(invoice, "28.700")
    credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)
    client.force_login(clerk)

    rows = dict(totals(invoice_page(client, invoice).content.decode()))

    assert rows["Net paid (paid less refunded)"] == "0.000 OMR"


def test_without_credits_or_refunds_the_totals_stay_short(client, clerk, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "10.000")
    client.force_login(clerk)

    html = invoice_page(client, invoice).content.decode()

    assert [label for label, _ in totals(html)] == [
        "Subtotal (without tax)", "Tax", "Total", "Paid", "Balance due"]
    assert "they do not reduce the balance again" not in html


# -- history in the clinic's words ---------------------------------------------------------------

def named(user, first, last):
    user.first_name, user.last_name = first, last
    user.save(update_fields=["first_name", "last_name"])
    return user


def history_rows(html: str) -> list[str]:
    return [" ".join(strip_tags(row).split()) for row in
            re.findall(r'<div class="history-sentence">(.*?)</div>', html, re.S)]


# A typical event of each action, as the services write them (docs/rules.md §6).
TYPICAL_EVENTS = {
    Action.ACCOUNT_CREATED: {"object_repr": "Aisha Al-Balushi (P00001)",
                             "data": {"number": "P00001"}},
    Action.INVOICE_CREATED: {"amount": D("28.700"), "to_state": "draft"},
    Action.INVOICE_ISSUED: {"amount": D("28.700"), "data": {"number": "INV-MUSCAT-000001"}},
    Action.INVOICE_DISCARDED: {"amount": D("28.700"), "data": {"lines": 2}},
    Action.INVOICE_CANCELLED: {"amount": D("28.700"), "remarks": "Wrong patient",
                               "data": {"number": "CN-MUSCAT-000002", "kind": "cancellation",
                                        "reason": "Invoice cancelled"}},
    Action.PAYMENT_RECORDED: {"amount": D("40.430"), "data": {"method": "Cash",
                                                              "reference": "R-12"}},
    Action.CREDIT_NOTE_ISSUED: {"amount": D("5.000"), "remarks": "Billed twice",
                                "data": {"number": "CN-MUSCAT-000001", "kind": "credit",
                                         "reason": "Duplicate charge"}},
    Action.REFUND_CREATED: {"amount": D("18.000"), "to_state": "pending",
                            "object_repr": "Refund 18.000 OMR to Card",
                            "data": {"method": "Card", "credit_note": "CN-MUSCAT-000001"}},
    Action.REFUND_SUCCEEDED: {"amount": D("18.000"), "actor": None,
                              "object_repr": "Refund 18.000 OMR to Card",
                              "data": {"gateway": "sandbox", "reference": "re_1"}},
    Action.REFUND_FAILED: {"amount": D("18.000"), "actor": None, "remarks": "Card expired",
                           "object_repr": "Refund 18.000 OMR to Card"},
    Action.REFUND_RETRIED: {"amount": D("18.000"), "object_repr": "Refund 18.000 OMR to Card"},
    Action.REFUND_PAID_OUT: {"amount": D("5.250"), "object_repr": "Refund 5.250 OMR to Cash"},
    Action.REQUEST_SUBMITTED: {"amount": D("18.000"), "remarks": "Charged twice",
                               "object_repr": "Invoice Refund Request #3",
                               "data": {"kind": "refund"}},
    Action.REQUEST_APPROVED: {"object_repr": "Invoice Refund Request #3"},
    Action.REQUEST_REJECTED: {"object_repr": "Invoice Cancellation Request #4",
                              "remarks": "Treatment was given"},
    Action.REQUEST_WITHDRAWN: {"object_repr": "Invoice Refund Request #3"},
    Action.REQUEST_COMPLETED: {"amount": D("18.900"), "object_repr": "Invoice Refund Request #3",
                               "data": {"credit_note": "CN-MUSCAT-000001"}},
    Action.REQUEST_EXPIRED: {"actor": None, "object_repr": "Invoice Refund Request #3",
                             "data": {"days": 14, "expires_at": "2026-12-14T09:00:00+00:00"}},
    Action.REQUEST_REMINDED: {"actor": None, "object_repr": "Invoice Cancellation Request #4",
                              "data": {"hours": 25, "reminder_hours": 24}},
    Action.REQUEST_ESCALATED: {"actor": None, "object_repr": "Invoice Refund Request #3",
                               "data": {"hours": 1, "reminder_hours": 1}},
    Action.REQUEST_STALE: {"object_repr": "Invoice Refund Request #3", "amount": D("10.500"),
                           "data": {"cause": "a payment was recorded", "round": 2}},
}

EXPECTED_SENTENCES = {
    Action.ACCOUNT_CREATED: "Patient account Aisha Al-Balushi (P00001) opened by Maryam Al-Hinai",
    Action.INVOICE_CREATED: "Invoice created by Maryam Al-Hinai — 28.700 OMR",
    Action.INVOICE_ISSUED: "Invoice INV-MUSCAT-000001 issued by Maryam Al-Hinai — 28.700 OMR",
    Action.INVOICE_DISCARDED: "Draft discarded by Maryam Al-Hinai — 28.700 OMR",
    Action.INVOICE_CANCELLED: ("Invoice cancelled by Maryam Al-Hinai — credit note "
                               "CN-MUSCAT-000002 — 28.700 OMR — “Wrong patient”"),
    Action.PAYMENT_RECORDED: ("Payment of 40.430 OMR recorded by Maryam Al-Hinai — Cash — "
                              "reference R-12"),
    Action.CREDIT_NOTE_ISSUED: ("Credit note CN-MUSCAT-000001 issued by Maryam Al-Hinai — "
                                "5.000 OMR — Duplicate charge — “Billed twice”"),
    Action.REFUND_CREATED: ("Refund of 18.000 OMR to Card by Maryam Al-Hinai — "
                            "sent to the gateway"),
    Action.REFUND_SUCCEEDED: "Refund of 18.000 OMR to Card confirmed by the gateway — "
                             "reference re_1",
    Action.REFUND_FAILED: "Refund of 18.000 OMR to Card declined by the gateway — “Card expired”",
    Action.REFUND_RETRIED: ("Refund of 18.000 OMR to Card sent to the gateway again by "
                            "Maryam Al-Hinai"),
    Action.REFUND_PAID_OUT: "Refund of 5.250 OMR to Cash paid out by Maryam Al-Hinai",
    Action.REQUEST_SUBMITTED: ("Refund request submitted by Maryam Al-Hinai — 18.000 OMR — "
                               "“Charged twice”"),
    Action.REQUEST_APPROVED: "Refund request approved by Maryam Al-Hinai",
    Action.REQUEST_REJECTED: ("Cancellation request rejected by Maryam Al-Hinai — "
                              "“Treatment was given”"),
    Action.REQUEST_WITHDRAWN: "Refund request withdrawn by Maryam Al-Hinai",
    Action.REQUEST_COMPLETED: ("Refund request carried out by Maryam Al-Hinai — credit note "
                               "CN-MUSCAT-000001 — 18.900 OMR"),
    Action.REQUEST_EXPIRED: ("Refund request expired: approved but not carried out within "
                             "14 days"),
    Action.REQUEST_REMINDED: ("Cancellation request still waiting after 25 hours: approvers "
                              "reminded"),
    Action.REQUEST_ESCALATED: ("Refund request still waiting after 1 hour: passed to the billing "
                               "administrators"),
    Action.REQUEST_STALE: ("Refund request needs its approvers again: a payment was recorded — "
                           "10.500 OMR"),
}


def test_every_audit_action_has_a_sentence(clerk):
    named(clerk, "Maryam", "Al-Hinai")
    assert set(SENTENCES) == set(Action)  # a new action needs its sentence here
    assert set(TYPICAL_EVENTS) == set(Action)
    for action in Action:
        fields = {"actor": clerk, "currency": "OMR", "object_repr": "Invoice INV-MUSCAT-000001",
                  **TYPICAL_EVENTS[action]}
        event = AuditEvent(action=action, actor_username="clerk", **fields)

        html = Template("{% include '_history.html' %}").render(Context({"events": [event]}))

        assert history_rows(html) == [escape(EXPECTED_SENTENCES[action])], action


def test_the_invoice_page_and_the_request_page_tell_the_history_in_sentences(
        client, clerk, approver, approval_clinic, make_invoice, pay, reason, cash):
    named(clerk, "Maryam", "Al-Hinai")
    named(approver, "Salim", "Al-Rawahi")
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, _ = lines_of(invoice)
    request = refund_request_create(invoice=invoice, remarks="Item 1 was charged twice",
                                    actor=clerk, lines=[CreditLineInput(line_a, D("10.000"))])
    request_approve(financial_request=request, actor=approver, remarks="Checked")
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("10.000"))],
                       dispute_reason=reason, actor=clerk, remarks="Duplicate line")

    client.force_login(clerk)
    invoice_rows = history_rows(invoice_page(client, invoice).content.decode())
    client.force_login(approver)
    request_rows = history_rows(client.get(
        reverse("approvals:request_detail", args=[request.pk])).content.decode())

    assert invoice_rows == [  # newest first
        "Refund of 10.500 OMR to Cash by Maryam Al-Hinai — to pay back by hand",
        "Refund request carried out by Maryam Al-Hinai — credit note CN-MUSCAT-000001 — "
        "10.500 OMR",
        "Credit note CN-MUSCAT-000001 issued by Maryam Al-Hinai — 10.500 OMR — Billing error — "
        "“Duplicate line”",
        "Refund request approved by Salim Al-Rawahi — “Checked”",
        "Refund request submitted by Maryam Al-Hinai — 10.000 OMR — “Item 1 was charged twice”",
        "Payment of 28.700 OMR recorded by Maryam Al-Hinai — Cash",
        "Invoice INV-MUSCAT-000001 issued by Maryam Al-Hinai — 28.700 OMR",
        "Invoice created by Maryam Al-Hinai — 28.700 OMR",
    ]
    assert request_rows == [  # oldest first, as the request page always listed them
        "Refund request submitted by Maryam Al-Hinai — 10.000 OMR — “Item 1 was charged twice”",
        "Refund request approved by Salim Al-Rawahi — “Checked”",
        "Refund request carried out by Maryam Al-Hinai — credit note CN-MUSCAT-000001 — "
        "10.500 OMR",
    ]


def test_a_cancellation_reads_as_the_invoice_cancelled(client, clerk, make_invoice):
    named(clerk, "Maryam", "Al-Hinai")
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Raised for the wrong patient", actor=clerk)
    client.force_login(clerk)

    rows = history_rows(invoice_page(client, invoice).content.decode())

    assert rows[0] == ("Invoice cancelled by Maryam Al-Hinai — credit note CN-MUSCAT-000001 — "
                       "28.700 OMR — “Raised for the wrong patient”")


# -- Change on the breakdown keeps every choice ----------------------------------------------------

class _Inputs(HTMLParser):
    """The form's inputs as a browser would post them: {name: value} (ticked boxes only)."""

    def __init__(self):
        super().__init__()
        self.values, self._textarea, self._select = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and name != "csrfmiddlewaretoken":
            kind = attrs.get("type", "text")
            if kind == "checkbox":
                if "checked" in attrs and "disabled" not in attrs:
                    self.values[name] = "on"
            elif kind != "submit":
                self.values[name] = attrs.get("value", "")
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.values[self._select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            if not self.values[self._textarea]:  # browsers drop the newline after <textarea>
                data = data.removeprefix("\n")
            self.values[self._textarea] += data


def posted_by_the_page(html: str) -> dict[str, str]:
    form = html[html.index('<form method="post">'):]  # the page's own form, not the log-out
    parser = _Inputs()
    parser.feed(form[:form.index("</form>")])
    return parser.values


def test_change_on_the_breakdown_returns_to_the_form_with_every_choice_kept(
        client, clerk, make_invoice, pay, reason, cash):
    other_reason = DisputeReasonFactory(name="Duplicate charge")
    invoice = make_invoice()
    first = pay(invoice, "20.000", reference="R-1")
    pay(invoice, "8.700", reference="R-2")
    line_a, line_b = lines_of(invoice)
    client.force_login(clerk)
    url = reverse("refunds:credit_note_create", args=[invoice.pk])
    choices = {
        f"line_{line_a.pk}": "on", f"amount_{line_a.pk}": "5.000",
        f"line_{line_b.pk}": "on", f"amount_{line_b.pk}": "1.500",
        "dispute_reason": str(other_reason.pk), "payment": str(first.pk),
        "remarks": "Charged twice\nfor the same visit",
    }
    breakdown = client.post(url, {**choices, "action": "preview"})
    assert breakdown.context["breakdown"] is not None
    html = breakdown.content.decode()
    assert '<button type="submit" name="action" value="change"' in html
    assert reason.pk != other_reason.pk

    back = client.post(url, {**posted_by_the_page(html), "action": "change"})

    assert back.status_code == 200 and back.context["breakdown"] is None
    kept = posted_by_the_page(back.content.decode())
    assert {name: kept.get(name) for name in choices} == {
        **choices, "remarks": "Charged twice\nfor the same visit"}
    assert ledger_state_unchanged_by(client, url, kept)


def ledger_state_unchanged_by(client, url, data) -> bool:
    """Going back and forth writes nothing: only Refund now does."""
    before = ledger_state()
    client.post(url, {**data, "action": "change"})
    client.post(url, {**data, "action": "preview"})
    return ledger_state() == before


def test_change_keeps_an_unticked_line_unticked(client, clerk, make_invoice, pay, reason):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, line_b = lines_of(invoice)
    client.force_login(clerk)
    url = reverse("refunds:credit_note_create", args=[invoice.pk]) + "?full=1"
    # the full refund starts with every line ticked; staff untick line B
    breakdown = client.post(url, {f"line_{line_a.pk}": "on", f"amount_{line_a.pk}": "20.000",
                                  f"amount_{line_b.pk}": "7.333",
                                  "dispute_reason": reason.pk, "action": "preview"})

    back = client.post(url, {**posted_by_the_page(breakdown.content.decode()),
                             "action": "change"})

    kept = posted_by_the_page(back.content.decode())
    assert kept.get(f"line_{line_a.pk}") == "on"
    assert f"line_{line_b.pk}" not in kept


# -- the form shows each approved line's limit up front --------------------------------------------

def approved_for(invoice, clerk, approver, lines=None):
    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk,
                                    lines=lines)
    return request_approve(financial_request=request, actor=approver)


def test_the_form_shows_each_approved_lines_limit_and_offers_no_other_line(
        client, clerk, approver, approval_clinic, make_invoice, pay, reason):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, line_b = lines_of(invoice)
    approved_for(invoice, clerk, approver, lines=[CreditLineInput(line_a, D("18.000"))])
    client.force_login(clerk)
    url = reverse("refunds:credit_note_create", args=[invoice.pk])

    html = client.get(url).content.decode()

    row_a = html[html.index(f'id="id_line_{line_a.pk}"'):html.index("Item 2")]
    row_b = html[html.index("Item 2"):html.index("</tbody>")]
    assert "Approved: up to 18.000 OMR" in row_a
    assert f'name="line_{line_b.pk}"' not in row_b and f'name="amount_{line_b.pk}"' not in row_b
    assert escape(LINE_NOT_APPROVED.format(line="Item 2")) in row_b
    assert "Approved: up to" not in row_b


def test_a_line_outside_the_approval_posted_anyway_is_refused_plainly(
        client, clerk, approver, approval_clinic, make_invoice, pay, reason):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, line_b = lines_of(invoice)
    approved_for(invoice, clerk, approver, lines=[CreditLineInput(line_a, D("18.000"))])
    client.force_login(clerk)
    url = reverse("refunds:credit_note_create", args=[invoice.pk])
    before = ledger_state()

    for action in ("preview", "confirm"):
        page = client.post(url, {f"line_{line_a.pk}": "on", f"amount_{line_a.pk}": "5.000",
                                 f"line_{line_b.pk}": "on", f"amount_{line_b.pk}": "1.000",
                                 "dispute_reason": reason.pk, "action": action})
        assert page.status_code == 200
        assert escape(LINE_NOT_APPROVED.format(line="Item 2")) in page.content.decode()
    assert ledger_state() == before


def test_an_approval_without_lines_limits_each_line_to_what_was_left_on_it(
        client, clerk, approver, approval_clinic, make_invoice, pay):
    # the approver approved the whole refund as it stood: every line, all that was left on it
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, line_b = lines_of(invoice)
    approved_for(invoice, clerk, approver)
    client.force_login(clerk)

    html = client.get(reverse("refunds:credit_note_create", args=[invoice.pk])).content.decode()

    assert "Approved: up to 20.000 OMR" in html and "Approved: up to 7.333 OMR" in html
    assert f'name="line_{line_a.pk}"' in html and f'name="line_{line_b.pk}"' in html


def test_a_direct_clinic_shows_no_approved_limit(client, clerk, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    client.force_login(clerk)
    html = client.get(reverse("refunds:credit_note_create", args=[invoice.pk])).content.decode()
    assert "Approved: up to" not in html and "not in the approved request" not in html


# -- Refund this line / Credit this line -----------------------------------------------------------

def buttons(client, invoice) -> dict[str, tuple[str, str]]:
    """{line description: (label, url)} of the lines' own buttons on the invoice page."""
    page = invoice_page(client, invoice)
    return {line.description: (line.action.label, line.action.url)
            for line in page.context["lines"] if line.action}


def credit_form_url(invoice, line=None):
    url = reverse("refunds:credit_note_create", args=[invoice.pk])
    return f"{url}?line={line.pk}" if line else url


def ticked(form) -> dict[str, Decimal]:
    """{line description: amount} of the lines a form starts with ticked."""
    return {line.description: amount.value() for line, tick, amount in form.rows()
            if tick.value()}


def test_an_unpaid_invoice_offers_credit_this_line_on_each_line(client, clerk, make_invoice):
    invoice = make_invoice()
    line_a, line_b = lines_of(invoice)
    client.force_login(clerk)

    assert buttons(client, invoice) == {
        "Item 1": ("Credit this line", credit_form_url(invoice, line_a)),
        "Item 2": ("Credit this line", credit_form_url(invoice, line_b)),
    }
    html = invoice_page(client, invoice).content.decode()
    assert ">Credit this line<span class=\"visually-hidden\">: Item 1</span></a>" in html
    assert "Credit lines" in [action.label for action in
                              invoice_page(client, invoice).context["actions"]
                              if action.enabled]  # the tick-several flow stays


def test_a_paid_invoice_offers_refund_this_line(client, clerk, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    client.force_login(clerk)

    assert {label for label, _ in buttons(client, invoice).values()} == {"Refund this line"}


def test_the_label_follows_whether_money_would_go_back(client, clerk, make_invoice, pay):
    invoice = make_invoice()  # 21.000 + 7.700; 18.700 still owed once 10.000 is paid
    pay(invoice, "10.000")
    client.force_login(clerk)

    found = buttons(client, invoice)

    assert found["Item 1"][0] == "Refund this line"  # 21.000 > 18.700: 2.300 goes back
    assert found["Item 2"][0] == "Credit this line"  # 7.700 only reduces what is owed


def test_refund_this_line_opens_the_form_with_that_line_ticked_in_full(
        client, clerk, make_invoice, pay, reason):
    invoice = make_invoice()
    pay(invoice, "28.700")
    client.force_login(clerk)
    _, url = buttons(client, invoice)["Item 2"]

    page = client.get(url)

    assert page.status_code == 200 and page.context["line_refusal"] is None
    assert ticked(page.context["form"]) == {"Item 2": D("7.333")}
    # then Complete refund, Refund now, and the value appears under the line's Sub total
    data = {**posted_by_the_page(page.content.decode()), "dispute_reason": reason.pk}
    assert "Refund now" in client.post(url, {**data, "action": "preview"}).content.decode()
    done = client.post(url, {**data, "action": "confirm"}, follow=True)
    row_b = done.content.decode()
    row_b = row_b[row_b.index("<td>Item 2"):row_b.index("</tbody>")]
    assert '<div class="line-credit">Refunded 7.700 OMR</div>' in row_b


def test_a_fully_credited_line_has_no_button(client, clerk, make_invoice, reason):
    invoice = make_invoice()
    _, line_b = lines_of(invoice)
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                       actor=clerk)
    client.force_login(clerk)

    assert list(buttons(client, invoice)) == ["Item 1"]


def test_no_line_has_a_button_where_the_invoice_cannot_be_credited(
        client, clerk, make_invoice, pay, reason):
    draft = make_invoice(issue=False)
    cancelled = make_invoice()
    invoice_cancel(invoice=cancelled, remarks="Wrong patient", actor=clerk)
    refunded = make_invoice()
    pay(refunded, "28.700")
    credit_note_create(invoice=refunded, full=True, dispute_reason=reason, actor=clerk)
    client.force_login(clerk)

    for invoice in (draft, cancelled, refunded):
        assert buttons(client, invoice) == {}, invoice
        assert "this line" not in invoice_page(client, invoice).content.decode()


def test_an_approver_gets_no_line_buttons(client, approver, make_invoice):
    client.force_login(approver)
    assert buttons(client, make_invoice()) == {}


def test_where_approval_is_needed_the_line_button_opens_the_refund_request(
        client, clerk, approval_clinic, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, _ = lines_of(invoice)
    client.force_login(clerk)
    request_url = reverse("approvals:refund_request_create", args=[invoice.pk])
    menu = {action.key: action for action in invoice_page(client, invoice).context["actions"]}
    assert menu[REFUND_REQUEST].enabled and menu[REFUND_REQUEST].url == request_url

    label, url = buttons(client, invoice)["Item 1"]

    assert (label, url) == ("Refund this line", f"{request_url}?line={line_a.pk}")
    form = client.get(url).context["form"]
    assert ticked(form) == {"Item 1": D("20.000")}


def test_while_a_request_waits_no_line_has_a_button(
        client, clerk, approval_clinic, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
    client.force_login(clerk)

    assert buttons(client, invoice) == {}


def test_with_an_approved_request_only_its_lines_have_a_button_up_to_the_approval(
        client, clerk, approver, approval_clinic, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, _ = lines_of(invoice)
    approved_for(invoice, clerk, approver, lines=[CreditLineInput(line_a, D("18.000"))])
    client.force_login(clerk)

    found = buttons(client, invoice)

    assert found == {"Item 1": ("Refund this line", credit_form_url(invoice, line_a))}
    form = client.get(found["Item 1"][1]).context["form"]
    assert ticked(form) == {"Item 1": D("18.000")}


def test_a_line_link_naming_a_line_that_cannot_be_ticked_is_a_plain_message(
        client, clerk, make_invoice, other_invoice, reason):
    invoice = make_invoice()
    _, line_b = lines_of(invoice)
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                       actor=clerk)
    foreign = other_invoice.lines.first()
    client.force_login(clerk)
    not_on_it = LINE_NOT_ON_INVOICE.format(invoice=invoice)
    before = ledger_state()

    for value, message in [(foreign.pk, not_on_it), ("abc", not_on_it), ("99999999", not_on_it),
                           ("", not_on_it), (line_b.pk, LINE_NOTHING_LEFT.format(line=line_b))]:
        for url in (reverse("refunds:credit_note_create", args=[invoice.pk]),
                    reverse("approvals:refund_request_create", args=[invoice.pk])):
            page = client.get(f"{url}?line={value}")
            assert page.status_code == 200, (url, value)
            assert page.context["line_refusal"] == message, (url, value)
            assert escape(message) in page.content.decode()
            assert ticked(page.context["form"]) == {}, (url, value)
    assert ledger_state() == before


def test_a_line_link_outside_the_approved_request_is_a_plain_message(
        client, clerk, approver, approval_clinic, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, line_b = lines_of(invoice)
    approved_for(invoice, clerk, approver, lines=[CreditLineInput(line_a, D("18.000"))])
    client.force_login(clerk)

    page = client.get(credit_form_url(invoice, line_b))

    assert page.context["line_refusal"] == LINE_NOT_APPROVED.format(line=line_b)
    assert ticked(page.context["form"]) == {"Item 1": D("18.000")}  # what was approved


# -- the cancel refusal says what is true ----------------------------------------------------------

def test_a_paid_invoice_is_told_to_refund_instead_and_a_full_refund_closes_it(
        client, clerk, make_invoice, pay, reason):
    invoice = make_invoice()
    pay(invoice, "10.000")
    client.force_login(clerk)

    refused = {action.label: action.refusal
               for action in invoice_page(client, invoice).context["actions"]}["Cancel Invoice"]

    assert refused == ("Only an invoice nothing has been paid on can be cancelled, and 10.000 OMR "
                       "paid on Invoice INV-MUSCAT-000001 has not been refunded: refund it "
                       "instead. A full refund credits the whole invoice.")
    assert "Refund it first" not in refused
    # what the sentence promises: the full refund credits everything and closes the invoice
    credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.REFUNDED
    assert invoice.amount_credited == invoice.total and invoice.net_paid == 0
    assert cancellation_refusal(invoice) == CANCEL_NOTHING_LEFT.format(invoice=invoice)


def test_the_request_page_shows_the_same_totals(
        client, clerk, approver, approval_clinic, make_invoice, pay, reason):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, _ = lines_of(invoice)
    request = approved_for(invoice, clerk, approver, lines=[CreditLineInput(line_a, D("5.000"))])
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                       dispute_reason=reason, actor=clerk)
    client.force_login(approver)

    html = client.get(reverse("approvals:request_detail", args=[request.pk])).content.decode()

    card = [(strip_tags(label), strip_tags(figure)) for label, figure in re.findall(
        r"<tr><th class=\"ps-3[^\"]*\">(.*?)</th><td class=\"money pe-3\">(.*?)</td></tr>", html)]
    assert card == [
        ("Total", "28.700 OMR"),
        ("Credited (credit notes)", "−5.250 OMR"),
        ("Total after credits", "23.450 OMR"),
        ("Paid", "28.700 OMR"),
        ("of which paid back to the patient (Refunded)", "5.250 OMR"),
        ("Net paid (paid less refunded)", "−23.450 OMR"),
        ("Balance due", "0.000 OMR"),
    ]


def test_a_history_sentence_escapes_what_people_typed_and_keeps_amounts_whole(clerk):
    event = AuditEvent(action=Action.REQUEST_SUBMITTED, actor=clerk, actor_username="clerk",
                       currency="OMR", amount=D("18.000"), data={"kind": "refund"},
                       object_repr="Invoice Refund Request #1",
                       remarks='<script>alert("x")</script> & more')
    html = Template("{% include '_history.html' %}").render(Context({"events": [event]}))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in html
    assert '<span class="text-nowrap">18.000 OMR</span>' in html
