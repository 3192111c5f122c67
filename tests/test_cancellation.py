"""Cancellation (docs/rules.md §4): a credit note for the remaining balance, then `cancelled`."""

from decimal import Decimal

from audit.models import Action, AuditEvent
from billing import rules as billing_rules
from billing.breakdown import CreditLineInput
from billing.models import Invoice, InvoiceStatus
from billing.rules import DISCARD_NOT_DRAFT
from billing.services import invoice_discard
from refunds import services
from refunds.models import CreditNoteKind
from refunds.services import credit_note_create, invoice_cancel

D = Decimal


def test_cancelling_an_unpaid_invoice_credits_its_balance(make_invoice, clerk):
    invoice = make_invoice()

    note = invoice_cancel(invoice=invoice, remarks="Raised for the wrong patient", actor=clerk)

    assert note.kind == CreditNoteKind.CANCELLATION
    assert note.amount == D("28.700") == note.amount_applied
    assert note.amount_unapplied == D("0.000")
    assert note.dispute_reason.name == services.CANCELLATION_REASON
    assert note.description == "Raised for the wrong patient"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CANCELLED
    assert invoice.balance_due == D("0.000")
    assert invoice.number  # numbering stays whole: the invoice keeps its number
    event = AuditEvent.objects.get(action=Action.INVOICE_CANCELLED)
    assert (event.from_state, event.to_state, event.remarks, event.actor) == (
        "issued", "cancelled", "Raised for the wrong patient", clerk)


def test_cancelling_after_a_partial_credit_credits_only_what_remains(make_invoice, clerk,
                                                                     reason):
    invoice = make_invoice()
    line_b = invoice.lines.order_by("position").last()
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_b)], dispute_reason=reason,
                       actor=clerk)

    note = invoice_cancel(invoice=invoice, remarks="Visit cancelled", actor=clerk)

    assert note.amount == D("21.000")
    invoice.refresh_from_db()
    assert invoice.amount_credited == invoice.total
    assert invoice.status == InvoiceStatus.CANCELLED


def test_cancel_is_refused_while_money_paid_is_not_refunded(make_invoice, pay, clerk, refused):
    invoice = make_invoice()
    pay(invoice, "10.000")
    with refused(billing_rules.CANCEL_PAID.format(amount="10.000 OMR", invoice=invoice)):
        invoice_cancel(invoice=invoice, remarks="Duplicate", actor=clerk)


def test_cancel_needs_remarks(make_invoice, clerk, refused):
    invoice = make_invoice()
    with refused(services.CANCEL_REMARKS):
        invoice_cancel(invoice=invoice, remarks="   ", actor=clerk)


def test_a_fully_refunded_invoice_has_nothing_left_to_cancel(make_invoice, pay, clerk, reason,
                                                             refused):
    invoice = make_invoice()
    pay(invoice, "28.700")
    credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
    with refused(billing_rules.CANCEL_NOTHING_LEFT.format(invoice=invoice)):
        invoice_cancel(invoice=invoice, remarks="Duplicate", actor=clerk)


def test_cancel_twice_is_refused(make_invoice, clerk, refused):
    invoice = make_invoice()
    invoice_cancel(invoice=invoice, remarks="Duplicate", actor=clerk)
    with refused(billing_rules.CANCEL_ALREADY.format(invoice=invoice)):
        invoice_cancel(invoice=invoice, remarks="Duplicate", actor=clerk)


def test_a_draft_is_discarded_not_cancelled(make_invoice, clerk, refused):
    draft = make_invoice(issue=False)
    with refused(billing_rules.CANCEL_DRAFT):
        invoice_cancel(invoice=draft, remarks="Not needed", actor=clerk)

    invoice_discard(invoice=draft, actor=clerk)

    assert not Invoice.objects.filter(pk=draft.pk).exists()
    event = AuditEvent.objects.get(action=Action.INVOICE_DISCARDED)
    assert event.invoice_id == draft.pk and event.from_state == "draft"


def test_an_issued_invoice_cannot_be_discarded(make_invoice, clerk, refused):
    invoice = make_invoice()
    with refused(DISCARD_NOT_DRAFT.format(invoice=invoice)):
        invoice_discard(invoice=invoice, actor=clerk)


def test_an_outsider_cannot_cancel(make_invoice, outsider, refused):
    from billing.access import NOT_A_MEMBER

    invoice = make_invoice()
    with refused(NOT_A_MEMBER.format(clinic=invoice.clinic.name)):
        invoice_cancel(invoice=invoice, remarks="Duplicate", actor=outsider)
