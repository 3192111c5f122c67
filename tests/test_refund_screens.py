"""The refund, credit and cancel screens, the More Action menu, credit notes and the register."""

from decimal import Decimal

from django.urls import reverse
from django.utils.html import escape

from approvals.rules import NEEDS_CANCELLATION_REQUEST, NEEDS_REFUND_REQUEST
from approvals.services import refund_request_create, request_approve
from billing.breakdown import NO_LINES, CreditLineInput
from billing.models import DisputeReason, Invoice, InvoiceStatus, Policy
from billing.rules import CANCEL_PAID, NOTHING_PAID, NOTHING_TO_PAY
from refunds.models import CreditNote, RefundStatus
from refunds.services import (
    CANCELLATION_REASON,
    REASON_FOR_CANCELLATIONS,
    credit_note_create,
    invoice_cancel,
)

from .conftest import ledger_state
from .factories import set_policy

D = Decimal


def menu(client, invoice):
    page = client.get(reverse("desk:invoice_detail", args=[invoice.pk]))
    assert page.status_code == 200
    return [action.label for action in page.context["actions"] if action.enabled]


def refused_actions(client, invoice) -> dict[str, str]:
    """{label: reason} of the menu's actions shown disabled."""
    page = client.get(reverse("desk:invoice_detail", args=[invoice.pk]))
    return {action.label: action.refusal for action in page.context["actions"]
            if not action.enabled}


def form_data(invoice, reason, ticks, **extra):
    data = {"dispute_reason": reason.pk, "payment": "", "remarks": "Patient overcharged"}
    for line, amount in ticks:
        data[f"line_{line.pk}"] = "on"
        data[f"amount_{line.pk}"] = amount
    data.update(extra)
    return data


def test_more_action_offers_what_a_direct_clinic_allows(client, clerk, make_invoice, pay):
    client.force_login(clerk)
    unpaid = make_invoice()
    assert menu(client, unpaid) == ["Record payment", "Credit lines", "Cancel Invoice"]
    paid = make_invoice()
    pay(paid, "28.700")
    assert menu(client, paid) == ["Refund", "Credit lines"]
    draft = make_invoice(issue=False)
    assert menu(client, draft) == ["Issue invoice", "Discard draft"]


def test_more_action_offers_requests_where_approval_is_needed(
    client, clinic, clerk, approver, make_invoice, pay
):
    set_policy(clinic, refund=Policy.APPROVAL, cancellation=Policy.APPROVAL)
    clinic.save()
    client.force_login(clerk)
    invoice = make_invoice()
    pay(invoice, "10.000")
    assert menu(client, invoice) == ["Record payment", "Invoice Refund Request"]

    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
    page = client.get(reverse("desk:invoice_detail", args=[invoice.pk]))
    assert "is waiting for a financial approver" in page.content.decode()
    assert menu(client, invoice)[-1] == "Record payment"
    listing = client.get(reverse("desk:invoice_list"))
    assert "Awaiting approval" in listing.content.decode()

    request_approve(financial_request=request, actor=approver)
    assert menu(client, invoice) == ["Record payment", "Refund", "Credit lines"]


def test_an_action_this_invoice_does_not_allow_is_shown_disabled_with_the_reason(
        client, clerk, make_invoice, pay):
    client.force_login(clerk)
    paid = make_invoice()
    pay(paid, "28.700")

    refused = refused_actions(client, paid)

    assert refused == {
        "Record payment": NOTHING_TO_PAY.format(invoice=paid),
        "Cancel Invoice": CANCEL_PAID.format(amount="28.700 OMR", invoice=paid),
    }
    html = client.get(reverse("desk:invoice_detail", args=[paid.pk])).content.decode()
    assert escape(refused["Cancel Invoice"]) in html
    # a disabled action links nowhere
    assert reverse("refunds:invoice_cancel", args=[paid.pk]) not in html


def test_where_approval_is_needed_the_menu_says_which_request_to_submit(
        client, clerk, approval_clinic, make_invoice):
    client.force_login(clerk)
    unpaid = make_invoice()

    assert menu(client, unpaid) == ["Record payment", "Invoice Refund Request",
                                    "Invoice Cancellation Request"]
    assert refused_actions(client, unpaid) == {
        "Refund": NOTHING_PAID.format(invoice=unpaid),
        "Credit lines": NEEDS_REFUND_REQUEST.format(clinic="Muscat Clinic"),
        "Cancel Invoice": NEEDS_CANCELLATION_REQUEST.format(clinic="Muscat Clinic"),
    }


def test_an_approver_is_offered_nothing_to_do_on_an_invoice(client, approver, make_invoice):
    client.force_login(approver)
    assert menu(client, make_invoice()) == []


def test_a_refund_shows_the_breakdown_first_and_writes_nothing(
    client, clerk, make_invoice, pay, reason
):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a = invoice.lines.order_by("position").first()
    client.force_login(clerk)
    url = reverse("refunds:credit_note_create", args=[invoice.pk])

    page = client.get(url + "?full=1")
    assert page.context["form"][f"line_{line_a.pk}"].value() is True
    before = ledger_state()

    preview = client.post(url, form_data(invoice, reason, [(line_a, "5.000")],
                                         action="preview"))

    assert preview.status_code == 200
    html = preview.content.decode()
    assert "Refund now" in html and "5.250 OMR" in html and "you pay it back by hand" in html
    assert preview.context["breakdown"].post_payment == D("5.250")
    assert ledger_state() == before


def test_the_refund_page_is_the_full_refund_and_says_so_when_nothing_was_paid(
    client, clerk, make_invoice, reason
):
    # the form posts back to its own address: ?full=1 is kept, as a browser keeps it
    invoice = make_invoice()
    lines = list(invoice.lines.order_by("position"))
    client.force_login(clerk)
    url = reverse("refunds:credit_note_create", args=[invoice.pk])
    before = ledger_state()

    response = client.post(url + "?full=1", form_data(
        invoice, reason, [(line, str(line.net)) for line in lines], action="preview"))

    # the same refusal as the API's invoiceRefund (billing.rules.refund_refusal)
    assert response.context["form"].non_field_errors() == [
        NOTHING_PAID.format(invoice=invoice)]
    assert ledger_state() == before
    # crediting the same lines is allowed: that is what "Credit lines" is for
    response = client.post(url, form_data(
        invoice, reason, [(line, str(line.net)) for line in lines], action="preview"))
    assert response.context["breakdown"].pre_payment == invoice.total


def test_the_refund_page_with_every_line_unticked_refunds_nothing(
    client, clerk, make_invoice, pay, reason
):
    invoice = make_invoice()
    pay(invoice, "28.700")
    client.force_login(clerk)
    before = ledger_state()

    response = client.post(
        reverse("refunds:credit_note_create", args=[invoice.pk]) + "?full=1",
        form_data(invoice, reason, [], action="confirm"))

    assert response.context["form"].non_field_errors() == [NO_LINES]
    assert ledger_state() == before


def test_refund_now_issues_the_credit_note_and_says_what_to_pay_back(
    client, clerk, make_invoice, pay, reason
):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a = invoice.lines.order_by("position").first()
    client.force_login(clerk)

    response = client.post(reverse("refunds:credit_note_create", args=[invoice.pk]),
                           form_data(invoice, reason, [(line_a, "5.000")], action="confirm"),
                           follow=True)

    note = CreditNote.objects.get()
    assert (note.amount, note.amount_unapplied) == (D("5.250"), D("5.250"))
    assert note.refunds.get().status == RefundStatus.AWAITING_PAYOUT
    html = response.content.decode()
    assert "Pay 5.250 OMR back in cash" in html
    assert response.redirect_chain[-1][0] == reverse("desk:invoice_detail", args=[invoice.pk])


def test_a_refused_refund_shows_the_rule_and_writes_nothing(
    client, clerk, make_invoice, pay, reason
):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a = invoice.lines.order_by("position").first()
    client.force_login(clerk)
    before = ledger_state()

    response = client.post(reverse("refunds:credit_note_create", args=[invoice.pk]),
                           form_data(invoice, reason, [(line_a, "25.000")], action="confirm"))

    assert response.status_code == 200
    assert "At most 20.000 OMR (without tax) can still be credited" in response.content.decode()
    assert ledger_state() == before


def test_no_line_ticked_is_a_plain_message(client, clerk, make_invoice, reason):
    invoice = make_invoice()
    client.force_login(clerk)
    response = client.post(reverse("refunds:credit_note_create", args=[invoice.pk]),
                           form_data(invoice, reason, [], action="preview"))
    assert "Choose at least one line to credit." in response.content.decode()


def test_approval_clinic_refund_form_starts_from_the_approved_lines(
    client, clinic, clerk, approver, make_invoice, pay, reason
):
    set_policy(clinic, refund=Policy.APPROVAL)
    clinic.save()
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a, line_b = invoice.lines.order_by("position")
    request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk,
                                    lines=[CreditLineInput(line_b, D("2.000"))])
    request_approve(financial_request=request, actor=approver)
    client.force_login(clerk)
    url = reverse("refunds:credit_note_create", args=[invoice.pk])

    form = client.get(url).context["form"]
    assert form[f"line_{line_b.pk}"].value() is True
    assert form[f"amount_{line_b.pk}"].value() == D("2.000")
    assert form[f"line_{line_a.pk}"].value() is False

    client.post(url, form_data(invoice, reason, [(line_b, "2.000")], action="confirm"))
    request.refresh_from_db()
    assert request.status == "completed"
    assert request.credit_note.amount == D("2.100")


def test_cancel_from_the_screen(client, clerk, make_invoice):
    invoice = make_invoice()
    client.force_login(clerk)
    url = reverse("refunds:invoice_cancel", args=[invoice.pk])
    assert "28.700 OMR" in client.get(url).content.decode()

    blank = client.post(url, {"remarks": ""})
    assert blank.status_code == 200 and Invoice.objects.get().status == InvoiceStatus.ISSUED

    client.post(url, {"remarks": "Raised for the wrong patient"})
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CANCELLED


def test_cancel_with_money_paid_says_to_refund_instead(client, clerk, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "10.000")
    client.force_login(clerk)
    response = client.post(reverse("refunds:invoice_cancel", args=[invoice.pk]),
                           {"remarks": "Duplicate"})
    assert ("10.000 OMR paid on Invoice INV-MUSCAT-000001 has not been refunded: refund it "
            "instead. A full refund credits the whole invoice.") in response.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID


def test_the_cancel_page_never_offers_to_cancel_a_paid_invoice(client, clerk, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "10.000")
    client.force_login(clerk)

    page = client.get(reverse("refunds:invoice_cancel", args=[invoice.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert escape(CANCEL_PAID.format(amount="10.000 OMR", invoice=invoice)) in html
    assert 'name="remarks"' not in html and "Cancel invoice</button>" not in html


def test_a_refund_cannot_carry_the_cancellation_reason(client, clerk, make_invoice, pay,
                                                        refused):
    invoice = make_invoice()
    pay(invoice, "28.700")
    cancelled = DisputeReason.objects.get_or_create(name=CANCELLATION_REASON)[0]
    client.force_login(clerk)

    page = client.get(reverse("refunds:credit_note_create", args=[invoice.pk]))
    assert cancelled not in page.context["form"].fields["dispute_reason"].queryset
    with refused(REASON_FOR_CANCELLATIONS.format(reason="Invoice cancelled")):
        credit_note_create(invoice=invoice, full=True, dispute_reason=cancelled, actor=clerk)


def test_a_draft_is_discarded_from_the_menu(client, clerk, make_invoice):
    draft = make_invoice(issue=False)
    client.force_login(clerk)
    response = client.post(reverse("billing:invoice_discard", args=[draft.pk]))
    assert response.status_code == 302
    assert not Invoice.objects.filter(pk=draft.pk).exists()


def test_credit_notes_list_detail_and_cancelled_register(
    client, clerk, outsider, make_invoice, pay, reason
):
    paid = make_invoice()
    pay(paid, "28.700")
    refund = credit_note_create(full=True, invoice=paid, dispute_reason=reason, actor=clerk)
    cancelled = make_invoice()
    cancellation = invoice_cancel(invoice=cancelled, remarks="Wrong patient", actor=clerk)
    client.force_login(clerk)

    listing = client.get(reverse("refunds:credit_note_list") + "?q=" + paid.number)
    assert [n.pk for n in listing.context["page"]] == [refund.pk]
    document = client.get(reverse("refunds:credit_note_detail", args=[refund.pk]))
    assert "Total credited" in document.content.decode() and "28.700 OMR" in (
        document.content.decode())
    register = client.get(reverse("refunds:cancelled_register"))
    assert [n.pk for n in register.context["page"]] == [cancellation.pk]
    assert "Wrong patient" in register.content.decode()

    client.force_login(outsider)
    assert client.get(reverse("refunds:credit_note_detail", args=[refund.pk])).status_code == 404
    assert list(client.get(reverse("refunds:credit_note_list")).context["page"]) == []


def test_an_outsider_cannot_open_another_clinics_refund_or_cancel_form(
    client, outsider, make_invoice
):
    invoice = make_invoice()
    client.force_login(outsider)
    for name in ["refunds:credit_note_create", "refunds:invoice_cancel"]:
        assert client.get(reverse(name, args=[invoice.pk])).status_code == 404
        assert client.post(reverse(name, args=[invoice.pk]), {}).status_code == 404
    assert client.post(reverse("billing:invoice_discard", args=[invoice.pk])).status_code == 404


def test_credit_notes_are_found_by_number_invoice_number_or_patient(
    client, clerk, make_invoice, pay, reason
):
    # given two refunded invoices of the same patient (Aisha Al-Balushi, P00001)
    notes = []
    for _ in range(2):
        invoice = make_invoice()
        pay(invoice, "28.700")
        notes.append(credit_note_create(full=True, invoice=invoice, dispute_reason=reason,
                                        actor=clerk))
    client.force_login(clerk)

    def found(search):
        page = client.get(reverse("refunds:credit_note_list"), {"q": search}).context["page"]
        return sorted(note.pk for note in page)

    # a whole credit-note or invoice number finds just that credit note, in any case
    assert found(notes[0].number.lower()) == [notes[0].pk]
    assert found(notes[1].invoice.number) == [notes[1].pk]
    # a fragment of 3 characters or more searches numbers and patients
    assert found("balush") == sorted(n.pk for n in notes)
    assert found("CN-MUSCAT-00000") == sorted(n.pk for n in notes)
    # shorter, only whole numbers are found
    assert found("Ai") == []


def test_people_are_shown_by_their_full_name(client, clerk, make_invoice, pay, reason):
    clerk.first_name, clerk.last_name = "Maryam", "Al-Hinai"
    clerk.save(update_fields=["first_name", "last_name"])
    invoice = make_invoice()
    pay(invoice, "28.700")
    credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk,
                       remarks="Billed twice")
    client.force_login(clerk)

    html = client.get(reverse("desk:invoice_detail", args=[invoice.pk])).content.decode()

    assert "“Billed twice” — Maryam Al-Hinai" in html  # the credit note
    assert "<td>Maryam Al-Hinai</td>" in html  # the payment's recorder
    assert "by Maryam Al-Hinai" in html  # the history
    assert ">clerk<" not in html and "by clerk" not in html


def test_the_printed_credit_note_shows_no_refund_state(client, clerk, make_invoice, pay, reason):
    invoice = make_invoice()
    pay(invoice, "28.700")
    note = credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)
    client.force_login(clerk)

    html = client.get(reverse("refunds:credit_note_detail", args=[note.pk])).content.decode()

    # the state is for the screen: a printed document says what was refunded, not where it is
    assert '<span class="d-print-none">(awaiting payout)</span>' in html
