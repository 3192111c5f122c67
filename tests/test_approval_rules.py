"""Approval rules by amount and reason (docs/rules.md §5): a clinic's ordered rules for each
kind of action; the first whose range (the credit note's total, both ends included) and reasons
match decides whether the action goes directly or needs one or two approvers. The services, the
More Action menu, the breakdown and the API all decide through the same lookup."""

from decimal import Decimal

import pytest
from django.urls import reverse

from approvals.models import Approvers, FinancialRequest, RequestKind
from approvals.rules import (
    AMOUNT_NEEDS_CANCELLATION_REQUEST,
    AMOUNT_NEEDS_REFUND_REQUEST,
    approval_rule_for,
    approvers_needed,
    clinic_policy,
)
from approvals.services import (
    NO_APPROVAL_NEEDED,
    RuleSpec,
    approval_rules_set,
    cancellation_request_create,
    refund_request_create,
)
from audit.models import Action, AuditEvent
from billing.breakdown import CreditLineInput
from billing.models import Clinic, Policy
from desk.actions import invoice_actions
from desk.demo import seed_demo
from refunds.services import credit_note_create, invoice_cancel

from .api_helpers import gql
from .factories import ClinicFactory, DisputeReasonFactory, TaxRateFactory

D = Decimal


def tiered(clinic, *, duplicate=None, low="4.999", high="100.000", next_="100.001"):
    """The demo's refund rules: under 5 directly, up to 100 one approver, above two; with
    `duplicate` (a reason), that reason needs one whatever the amount (up to 100)."""
    rules = []
    if duplicate is not None:
        rules.append(RuleSpec(Approvers.ONE, None, D(high), (duplicate,)))
    rules += [RuleSpec(Approvers.NONE, None, D(low)),
              RuleSpec(Approvers.ONE, D(low) + D(next_) - D(high), D(high)),
              RuleSpec(Approvers.TWO, D(next_), None)]
    approval_rules_set(clinic=clinic, kind=RequestKind.REFUND, rules=rules)
    return Clinic.objects.get(pk=clinic.pk)


# -- the lookup ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("currency", "edges"), [
    ("OMR", {"4.999": 0, "5.000": 1, "100.000": 1, "100.001": 2}),
    ("USD", {"4.99": 0, "5.00": 1, "100.00": 1, "100.01": 2}),
    ("JPY", {"4": 0, "5": 1, "100": 1, "101": 2}),
])
def test_rules_match_at_the_edges_of_their_ranges_in_each_currencys_places(db, currency, edges):
    # given rules written in the currency's own places
    clinic = ClinicFactory(code=f"C{currency}", currency=currency)
    low, five, hundred, above = sorted(edges, key=D)
    approval_rules_set(clinic=clinic, kind=RequestKind.REFUND, rules=[
        RuleSpec(Approvers.NONE, None, D(low)),
        RuleSpec(Approvers.ONE, D(five), D(hundred)),
        RuleSpec(Approvers.TWO, D(above), None),
    ])
    clinic = Clinic.objects.get(pk=clinic.pk)
    # then each edge falls on the side its rule says, both ends included
    assert {amount: approvers_needed(clinic, RequestKind.REFUND, amount=D(amount))
            for amount in edges} == edges


def test_a_reason_rule_needs_an_approver_whatever_the_amount(clinic):
    duplicate = DisputeReasonFactory(name="Duplicate charge")
    other = DisputeReasonFactory(name="Billing error")
    clinic = tiered(clinic, duplicate=duplicate)

    assert approvers_needed(clinic, RequestKind.REFUND, amount=D("0.500"), reason=duplicate) == 1
    assert approvers_needed(clinic, RequestKind.REFUND, amount=D("0.500"), reason=other) == 0
    assert approvers_needed(clinic, RequestKind.REFUND, amount=D("0.500")) == 0
    # above its range the amount rules decide: two approvers
    assert approvers_needed(clinic, RequestKind.REFUND, amount=D("150.000"),
                            reason=duplicate) == 2


def test_the_first_matching_rule_wins(clinic):
    approval_rules_set(clinic=clinic, kind=RequestKind.REFUND, rules=[
        RuleSpec(Approvers.TWO, D("10.000"), None), RuleSpec(Approvers.NONE)])
    clinic = Clinic.objects.get(pk=clinic.pk)
    assert approvers_needed(clinic, RequestKind.REFUND, amount=D("10.000")) == 2
    assert approvers_needed(clinic, RequestKind.REFUND, amount=D("9.999")) == 0


def test_an_amount_no_rule_matches_needs_one_approver(clinic):
    # given rules that leave a gap above 4.999
    approval_rules_set(clinic=clinic, kind=RequestKind.REFUND,
                       rules=[RuleSpec(Approvers.NONE, None, D("4.999"))])
    clinic = Clinic.objects.get(pk=clinic.pk)
    assert approval_rule_for(clinic, RequestKind.REFUND, amount=D("50.000")) is None
    assert approvers_needed(clinic, RequestKind.REFUND, amount=D("50.000")) == 1
    assert clinic_policy(clinic, RequestKind.REFUND) == Policy.APPROVAL


def test_a_clinic_without_rules_needs_an_approver(clinic):
    approval_rules_set(clinic=clinic, kind=RequestKind.CANCELLATION, rules=[])
    clinic = Clinic.objects.get(pk=clinic.pk)
    assert approvers_needed(clinic, RequestKind.CANCELLATION, amount=D("1.000")) == 1


@pytest.mark.parametrize(("rule", "message"), [
    (RuleSpec(Approvers.ONE, D("5.0001")), "OMR amounts have 3 decimals at most."),
    (RuleSpec(Approvers.ONE, D("10.000"), D("5.000")), "“Up to” must not be below “from”."),
])
def test_a_rule_that_makes_no_sense_is_refused(clinic, rule, message):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as excinfo:
        approval_rules_set(clinic=clinic, kind=RequestKind.REFUND, rules=[rule])
    assert message in str(excinfo.value)
    # nothing was replaced: the clinic's rule for everything stands
    assert clinic_policy(Clinic.objects.get(pk=clinic.pk), RequestKind.REFUND) == Policy.DIRECT


def test_usd_rules_keep_to_two_decimals(db):
    from django.core.exceptions import ValidationError

    clinic = ClinicFactory(code="AUS", currency="USD")
    with pytest.raises(ValidationError, match=r"USD amounts have 2 decimals at most\."):
        approval_rules_set(clinic=clinic, kind=RequestKind.REFUND,
                           rules=[RuleSpec(Approvers.ONE, D("5.001"))])


# -- each outcome through the services ------------------------------------------------------------

@pytest.fixture
def exempt(clinic):
    """A tax rate of 0%: a line's total is its price, so totals land exactly on the edges."""
    return TaxRateFactory(clinic=clinic, name="Exempt", percentage=D("0"))


@pytest.fixture
def invoice_of(make_invoice, exempt, pay):
    def make(*prices, paid=True):
        invoice = make_invoice([("1", price) for price in prices], tax_rate=exempt)
        if paid:
            pay(invoice, str(invoice.total))
            invoice.refresh_from_db()
        return invoice
    return make


def test_a_small_refund_goes_directly_and_its_event_names_the_rule(clinic, invoice_of, clerk,
                                                                   reason):
    clinic = tiered(clinic)
    invoice = invoice_of("4.999", "20.000")
    small = invoice.lines.order_by("position").first()

    note = credit_note_create(invoice=invoice, lines=[CreditLineInput(small)],
                              dispute_reason=reason, actor=clerk)

    assert note.amount == D("4.999")
    assert note.approval_request is None
    event = AuditEvent.objects.get(action=Action.CREDIT_NOTE_ISSUED, object_id=str(note.pk))
    assert event.data["approval_rule"] == (
        "Invoice Refund Request rule 1: up to 4.999 OMR: no approval")


def test_a_mid_sized_refund_without_a_request_is_refused_with_the_amount(
        clinic, invoice_of, clerk, reason, refused):
    clinic = tiered(clinic)
    invoice = invoice_of("5.000", "1.000")
    line = invoice.lines.order_by("position").first()

    with refused(AMOUNT_NEEDS_REFUND_REQUEST.format(
            clinic=clinic.name, amount="5.000 OMR", approvers="one approver", reason="")):
        credit_note_create(invoice=invoice, lines=[CreditLineInput(line)],
                           dispute_reason=reason, actor=clerk)


def test_a_request_for_what_needs_no_approval_is_refused(clinic, invoice_of, clerk, refused):
    clinic = tiered(clinic)
    invoice = invoice_of("3.000", "20.000")
    small = invoice.lines.order_by("position").first()

    with refused(NO_APPROVAL_NEEDED.format(
            what="refund or credit", amount="3.000 OMR", clinic=clinic.name,
            rule="up to 4.999 OMR: no approval")):
        refund_request_create(invoice=invoice, remarks="Small correction", actor=clerk,
                              lines=[CreditLineInput(small)])


@pytest.mark.parametrize(("prices", "needed"), [
    (("5.000",), 1), (("60.000", "40.000"), 1), (("60.000", "40.001"), 2)])
def test_a_request_records_how_many_approvers_its_amount_needs(clinic, invoice_of, clerk,
                                                               prices, needed):
    clinic = tiered(clinic)
    invoice = invoice_of(*prices)

    request = refund_request_create(invoice=invoice, remarks="Refund the visit", actor=clerk)

    assert request.approvals_needed == needed
    event = AuditEvent.objects.get(action=Action.REQUEST_SUBMITTED, object_id=str(request.pk))
    assert event.data["approvals_needed"] == needed


def test_a_duplicate_charge_request_needs_an_approver_even_when_small(clinic, invoice_of, clerk,
                                                                      refused):
    duplicate = DisputeReasonFactory(name="Duplicate charge")
    clinic = tiered(clinic, duplicate=duplicate)
    invoice = invoice_of("0.500", "20.000")
    small = invoice.lines.order_by("position").first()

    # carried out directly: refused, the reason named
    with refused(AMOUNT_NEEDS_REFUND_REQUEST.format(
            clinic=clinic.name, amount="0.500 OMR", approvers="one approver",
            reason=" for “Duplicate charge”")):
        credit_note_create(invoice=invoice, lines=[CreditLineInput(small)],
                           dispute_reason=duplicate, actor=clerk)
    # asked for: one approver
    request = refund_request_create(invoice=invoice, remarks="Charged twice", actor=clerk,
                                    lines=[CreditLineInput(small)], dispute_reason=duplicate)
    assert (request.approvals_needed, request.dispute_reason) == (1, duplicate)


def test_cancellation_rules_by_amount(clinic, invoice_of, clerk, refused):
    approval_rules_set(clinic=clinic, kind=RequestKind.CANCELLATION, rules=[
        RuleSpec(Approvers.NONE, None, D("9.999")), RuleSpec(Approvers.ONE)])
    small, large = invoice_of("9.999", paid=False), invoice_of("10.000", paid=False)
    another_small = invoice_of("9.999", paid=False)

    invoice_cancel(invoice=small, remarks="Booked twice", actor=clerk)
    with refused(AMOUNT_NEEDS_CANCELLATION_REQUEST.format(
            clinic=clinic.name, amount="10.000 OMR", approvers="one approver")):
        invoice_cancel(invoice=large, remarks="Booked twice", actor=clerk)
    assert cancellation_request_create(invoice=large, remarks="Booked twice",
                                       actor=clerk).approvals_needed == 1
    with refused(NO_APPROVAL_NEEDED.format(
            what="cancellation", amount="9.999 OMR", clinic=clinic.name,
            rule="up to 9.999 OMR: no approval")):
        cancellation_request_create(invoice=another_small, remarks="Booked twice", actor=clerk)


# -- the screens ----------------------------------------------------------------------------------

def test_the_menu_decides_by_the_same_rules(clinic, invoice_of, clerk):
    clinic = tiered(clinic)
    invoice = invoice_of("20.000")
    invoice.clinic = clinic
    menu = {action.label: action for action in invoice_actions(invoice=invoice, user=clerk)}

    # the full refund's amount is known: 20.000 needs one approver
    assert menu["Refund"].refusal == AMOUNT_NEEDS_REFUND_REQUEST.format(
        clinic=clinic.name, amount="20.000 OMR", approvers="one approver", reason="")
    # lines may be credited directly as long as the total stays under 5.000
    assert menu["Credit lines"].enabled
    assert menu["Invoice Refund Request"].enabled


def test_the_breakdown_refuses_what_needs_approval_and_shows_what_does_not(
        client, clinic, invoice_of, clerk, reason):
    clinic = tiered(clinic)
    invoice = invoice_of("20.000")
    line = invoice.lines.get()
    client.force_login(clerk)
    url = reverse("refunds:credit_note_create", args=[invoice.pk])

    def preview(amount):
        return client.post(url, {f"line_{line.pk}": "on", f"amount_{line.pk}": amount,
                                 "dispute_reason": reason.pk, "action": "preview"})

    refused = preview("5.000").content.decode()
    assert "needs one approver: submit an Invoice Refund Request first." in refused
    assert "Refund now" not in refused
    shown = preview("4.999").content.decode()
    assert "Refund now" in shown
    assert not invoice.credit_notes.exists()


def test_the_refund_request_form_records_the_dispute_reason(client, clinic, invoice_of, clerk):
    duplicate = DisputeReasonFactory(name="Duplicate charge")
    clinic = tiered(clinic, duplicate=duplicate)
    invoice = invoice_of("0.500", "20.000")
    client.force_login(clerk)

    response = client.post(reverse("approvals:refund_request_create", args=[invoice.pk]), {
        "remarks": "Charged twice", "dispute_reason": duplicate.pk,
        f"line_{invoice.lines.order_by('position').first().pk}": "on"})

    assert response.status_code == 302
    request = FinancialRequest.objects.get(invoice=invoice)
    assert (request.dispute_reason, request.approvals_needed) == (duplicate, 1)


def test_home_sums_up_each_clinics_rules(client, clinic, clerk):
    tiered(clinic)
    client.force_login(clerk)
    page = client.get(reverse("home")).content.decode()
    assert "Refunds: by amount and reason · Cancellations: direct" in page


# -- the API ---------------------------------------------------------------------------------------

def test_integrators_read_the_rules_and_the_policy_they_add_up_to(client, clinic, read_token):
    duplicate = DisputeReasonFactory(name="Duplicate charge")
    tiered(clinic, duplicate=duplicate)

    body = gql(client, read_token, """query($id: ID!) {
        approvalRules(clinicId: $id) { kind position amountFrom amountUpTo reasons approvers
                                       approvalsNeeded }
        clinics { refundPolicy cancellationPolicy } }""", {"id": str(clinic.pk)})

    assert body["data"]["approvalRules"] == [
        {"kind": "REFUND", "position": 1, "amountFrom": None, "amountUpTo": "100.000",
         "reasons": ["Duplicate charge"], "approvers": "ONE", "approvalsNeeded": 1},
        {"kind": "REFUND", "position": 2, "amountFrom": None, "amountUpTo": "4.999",
         "reasons": [], "approvers": "NONE", "approvalsNeeded": 0},
        {"kind": "REFUND", "position": 3, "amountFrom": "5.000", "amountUpTo": "100.000",
         "reasons": [], "approvers": "ONE", "approvalsNeeded": 1},
        {"kind": "REFUND", "position": 4, "amountFrom": "100.001", "amountUpTo": None,
         "reasons": [], "approvers": "TWO", "approvalsNeeded": 2},
        {"kind": "CANCELLATION", "position": 1, "amountFrom": None, "amountUpTo": None,
         "reasons": [], "approvers": "NONE", "approvalsNeeded": 0},
    ]
    assert body["data"]["clinics"] == [{"refundPolicy": "APPROVAL",
                                        "cancellationPolicy": "DIRECT"}]


def test_another_clinics_rules_are_not_shown(client, other_clinic, read_token):
    body = gql(client, read_token, "query($id: ID!) { approvalRules(clinicId: $id) { id } }",
               {"id": str(other_clinic.pk)})
    assert body["data"]["approvalRules"] == []


def test_the_api_refuses_and_records_by_the_same_rules(client, clinic, invoice_of, token,
                                                       reason):
    clinic = tiered(clinic)
    invoice = invoice_of("60.000", "40.001")
    line = invoice.lines.order_by("position").first()

    refused = gql(client, token, """mutation($i: ID!, $l: ID!, $r: ID!) {
        creditNoteCreate(invoiceId: $i, disputeReasonId: $r, lines: [{invoiceLineId: $l}]) {
            creditNote { id } errors } }""",
                  {"i": str(invoice.pk), "l": str(line.pk), "r": str(reason.pk)})
    assert refused["data"]["creditNoteCreate"]["errors"] == [AMOUNT_NEEDS_REFUND_REQUEST.format(
        clinic=clinic.name, amount="60.000 OMR", approvers="one approver", reason="")]

    submitted = gql(client, token, """mutation($i: ID!, $r: ID!) {
        invoiceRefundRequestCreate(invoiceId: $i, remarks: "Refund the visit",
                                   disputeReasonId: $r) {
            financialRequest { status approvalsNeeded approvals { by } disputeReasonId }
            errors } }""", {"i": str(invoice.pk), "r": str(reason.pk)})
    assert submitted["data"]["invoiceRefundRequestCreate"] == {
        "financialRequest": {"status": "REQUESTED", "approvalsNeeded": 2, "approvals": [],
                             "disputeReasonId": str(reason.pk)},
        "errors": []}


# -- the demo -------------------------------------------------------------------------------------

def test_the_demo_clinics_rules_are_the_contract(db, roles):
    seed_demo(password="demo-pass-1")
    muscat, austin = Clinic.objects.get(code="MUSCAT"), Clinic.objects.get(code="AUSTIN")
    duplicate = muscat.approval_rules.get(kind=RequestKind.REFUND, position=1).reasons.get()
    assert duplicate.name == "Duplicate charge"

    refund = {amount: approvers_needed(muscat, RequestKind.REFUND, amount=D(amount))
              for amount in ["0.001", "4.999", "5.000", "100.000", "100.001"]}
    assert refund == {"0.001": 0, "4.999": 0, "5.000": 1, "100.000": 1, "100.001": 2}
    assert approvers_needed(muscat, RequestKind.REFUND, amount=D("0.500"),
                            reason=duplicate) == 1
    assert approvers_needed(muscat, RequestKind.CANCELLATION, amount=D("0.001")) == 1
    assert approvers_needed(austin, RequestKind.REFUND, amount=D("10000")) == 0
    assert approvers_needed(austin, RequestKind.CANCELLATION, amount=D("10000")) == 0

    # run again, nothing changes
    rules = list(muscat.approval_rules.values_list("pk", flat=True))
    seed_demo()
    assert list(muscat.approval_rules.values_list("pk", flat=True)) == rules


# -- the data migration ----------------------------------------------------------------------------

def test_each_clinics_old_policy_becomes_one_rule_for_everything(db):
    """approvals/migrations/0004: direct → a rule needing none, approval → one approver."""
    import importlib
    from types import SimpleNamespace

    from approvals.models import ApprovalRule

    migration = importlib.import_module("approvals.migrations.0004_approval_rules")
    clinics = [ClinicFactory(code="OLDA"), ClinicFactory(code="OLDB")]
    ApprovalRule.objects.filter(clinic__in=clinics).delete()
    # the columns the migration reads, as they were before it
    clinics[0].refund_policy, clinics[0].cancellation_policy = "direct", "approval"
    clinics[1].refund_policy, clinics[1].cancellation_policy = "approval", "direct"
    models = {("billing", "Clinic"): SimpleNamespace(objects=SimpleNamespace(
        all=lambda: clinics)), ("approvals", "ApprovalRule"): ApprovalRule}
    apps = SimpleNamespace(get_model=lambda app, name: models[(app, name)])

    migration.policies_to_rules(apps, None)

    assert {(r.clinic.code, r.kind, r.position, r.approvers, r.amount_from, r.amount_up_to)
            for r in ApprovalRule.objects.filter(clinic__in=clinics)} == {
        ("OLDA", "refund", 1, "none", None, None), ("OLDA", "cancellation", 1, "one", None, None),
        ("OLDB", "refund", 1, "one", None, None), ("OLDB", "cancellation", 1, "none", None, None)}
    old_a = Clinic.objects.get(code="OLDA")
    assert approvers_needed(old_a, RequestKind.REFUND, amount=D("99999")) == 0
    assert approvers_needed(old_a, RequestKind.CANCELLATION, amount=D("0.001")) == 1
