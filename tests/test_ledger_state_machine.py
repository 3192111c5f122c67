"""The whole ledger of a clinic as a state machine: a few invoices, cash and a card through the
sandbox gateway, billing staff, approvers and outsiders doing whatever they like in any order —
payments, refunds, credits, cancellations, requests and their decisions, gateway answers,
retries and payouts — with sensible and senseless arguments alike.

Every call either succeeds or is refused with a BusinessRuleError that leaves the ledger exactly
as it was; anything else fails the test. After every step the ledger's invariants hold
(docs/rules.md §2.6): no negative balance, no line credited beyond its net or tax, no payment
refunded beyond its amount, statuses that follow the amounts, gapless numbers, an audit trail
that replays every state, at most one open request per invoice and kind.

The clinic's approval rules change as they go (docs/rules.md §5): one rule for everything, or
rules tiered by the credit note's total (and reason), so a request may need two approvers. What
must, or may, go through is decided with the product's own lookup, approvers_needed(), for the
total of the credit note the action would produce. A request needing two stays requested after
the first approval, and the second must come from someone else; an approved request shows
exactly what carrying it out would move, or, once a payment or credit note changed that, is
stale: requested again until its approvers confirm the new breakdown.

Each example runs in a savepoint rolled back at its end, so examples never see each other.
On PostgreSQL (CI) it runs 200 examples; on SQLite a short run keeps `make test` quick."""

import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from functools import partial

import pytest
from django.conf import settings as django_settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import F
from django.test import TestCase, override_settings
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from approvals.models import (
    OPEN_STATUSES,
    REMARKS_MAX_LENGTH,
    Approvers,
    FinancialRequest,
    FinancialRequestLine,
    RequestApproval,
    RequestKind,
    RequestStatus,
)
from approvals.rules import approvers_needed
from approvals.services import (
    RuleSpec,
    approval_rules_set,
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
    request_withdraw,
)
from audit.models import Action, AuditEvent
from billing import queueing
from billing.breakdown import CreditLineInput
from billing.exceptions import BusinessRuleError
from billing.models import (
    OPEN_FOR_PAYMENT,
    Account,
    Clinic,
    DisputeReason,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    NumberSeries,
    Payment,
)
from billing.money import round_money
from billing.roles import BILLING_STAFF, FINANCIAL_APPROVERS
from billing.services import LineInput, invoice_create, invoice_issue, payment_record
from refunds import tasks as refund_tasks
from refunds.gateways import GatewayRefundResult, GatewayUnavailable
from refunds.gateways.sandbox import SandboxGateway
from refunds.models import CreditNote, CreditNoteKind, CreditNoteLine, Refund, RefundStatus
from refunds.services import (
    credit_note_create,
    invoice_cancel,
    refund_mark_paid_out,
    refund_retry,
    refunds_reconcile,
)

from .conftest import ledger_state
from .factories import (
    DisputeReasonFactory,
    PaymentMethodFactory,
    TaxRateFactory,
    UserFactory,
    approver_factory,
)

D = Decimal
ZERO = D("0")
UNIT = D("0.001")  # the clinic bills in OMR

ON_POSTGRES_OR_CI = bool(os.environ.get("CI")) or connection.vendor == "postgresql"

# Random on every run, CI included (Hypothesis' own "ci" profile would derandomize); a failure
# prints its steps and a @reproduce_failure blob, to put on the Ledger class to replay it.
MACHINE_SETTINGS = settings(
    max_examples=200 if ON_POSTGRES_OR_CI else 25,
    stateful_step_count=25,
    deadline=None,
    database=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def mostly(right: list, wrong: list, times: int = 3):
    """Each right choice `times` as likely as each wrong one: most calls should go through."""
    return st.sampled_from(right * times + wrong)


# -- who acts -------------------------------------------------------------------------------------

STAFF = frozenset({"clerk", "clerk2", "dual"})  # billing staff of the clinic
APPROVERS = frozenset({"approver", "approver2", "dual"})  # financial approvers of the clinic
# "dual" is both; "outsider" (billing staff) and "other_approver" belong to another clinic
staff_mostly = mostly(["clerk", "clerk", "clerk2", "dual"],
                      ["approver", "approver2", "outsider", "other_approver"], times=5)
approvers_mostly = mostly(["approver", "approver", "approver2", "dual"],
                          ["clerk", "clerk2", "outsider", "other_approver"], times=5)
anyone = st.sampled_from(["clerk", "clerk2", "dual", "approver", "outsider"])

# -- what they enter ------------------------------------------------------------------------------

# How an amount is chosen against what is left (a balance due, a line's creditable net):
# all of it, a part, the smallest unit, and the refused ones: more, zero, negative, 4 decimals.
WRONG_AMOUNTS = ["over", "zero", "negative", "places"]
amount_kinds = mostly(["all", "part", "part", "unit"], WRONG_AMOUNTS, times=4)
fractions = st.integers(1, 999)
# The n-th (modulo) invoice, request or refund: mostly among those the rule is meant for.
picks = st.tuples(mostly([True], [False]), st.integers(0, 7))
payment_picks = st.none() | st.integers(0, 7)

REMARKS_OK = "Patient was overcharged"
remarks = mostly([REMARKS_OK], ["", "   ", "x" * (REMARKS_MAX_LENGTH + 1)], times=12)
approval_remarks = mostly(["Checked with the patient", ""], ["x" * (REMARKS_MAX_LENGTH + 1)])
rejection_remarks = mostly(["Not supported by the visit notes"],
                           ["", "   ", "x" * (REMARKS_MAX_LENGTH + 1)], times=6)
# The sandbox answers by the payment's reference: `fail…` declined, `pending…` stays pending.
references = st.sampled_from(["ch_3PqR", "fail_card_declined", "ch_3PqR", "pending_slow_bank"])
methods = mostly(["card", "cash"], ["foreign", "retired"], times=4)
reasons = mostly(["active"], ["inactive", "none"], times=12)
# (which lines, by bit mask; how each amount is chosen, "rest" leaving it out for all that
# remains; the fraction for "part"; a flaw: a line twice, a line of another invoice, or a wrong
# amount on the first line)
line_choices = st.tuples(
    st.integers(1, 7),
    st.lists(st.sampled_from(["rest", "rest", "part", "part", "unit"]), min_size=3, max_size=3),
    fractions,
    mostly([None], ["twice", "foreign", *WRONG_AMOUNTS], times=16),
)

# Invoices with something left to refund or credit.
CREDITABLE = [InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID,
              InvoiceStatus.PARTIALLY_REFUNDED]

# -- the clinic's approval rules (docs/rules.md §5.1) ---------------------------------------------

# One rule for everything (needing no approver, one or two), or rules tiered by the credit note's
# total: none up to `low`, one up to `high`, two above. `low` and `high` are drawn in thousandths
# of OMR (the currency's places), around the totals the invoices below come to. Sometimes the
# middle tier is left out (a gap: no rule matches, so one approver), and sometimes a first rule
# asks one approver up to `high` for the "active" reason, as MUSCAT does for "Duplicate charge".
RULE_SHAPES = {"direct": Approvers.NONE, "approval": Approvers.ONE, "two": Approvers.TWO}


def rule_plans(shapes: list[str]):
    return st.tuples(st.sampled_from(shapes), st.integers(0, 80_000), st.integers(0, 80_000),
                     st.booleans(), st.booleans())


# A refund request names no reason, the "active" one, or a retired one (refused).
request_reasons = mostly(["none", "none", "active"], ["inactive"], times=4)


def amount_of(kind: str, left: Decimal, fraction: int) -> Decimal:
    part = max(UNIT, (left * fraction / 1000).quantize(UNIT, rounding=ROUND_DOWN))
    return {
        "all": left,
        "part": part,
        "unit": UNIT,
        "over": left + UNIT,
        "zero": ZERO,
        "negative": -UNIT * fraction,
        "places": part + D("0.0005"),
    }[kind]


def within(amount: Decimal, left: Decimal) -> bool:
    """A valid amount: more than zero, at most what is left, in whole thousandths."""
    return ZERO < amount <= left and amount == amount.quantize(UNIT)


def credit_of(parts: list) -> tuple[list, Decimal]:
    """[(line pk, net, tax)] of crediting `net` on each (line, net) of `parts`, and the credit
    note's total, which the approval rules are matched against: each line's tax by cumulative
    rounding (docs/rules.md §3.2), as the invariants below state it."""
    rows = [(line.pk, net,
             round_money((line.credited_net + net) * line.rate, "OMR") - line.credited_tax)
            for line, net in parts]
    return rows, sum((net + tax for _, net, tax in rows), ZERO)


def whole_parts(invoice: Invoice) -> list:
    """Everything still creditable on the invoice: a full refund, a whole request, a
    cancellation."""
    return [(line, line.creditable_net) for line in invoice.lines.order_by("position", "pk")
            if line.creditable_net > 0]


def planned_parts(requested: list) -> list:
    """The (line, net) of a valid plan of CreditLineInputs (None: all that remains)."""
    return [(item.invoice_line, item.invoice_line.creditable_net if item.amount is None
             else item.amount) for item in requested]


line_specs = st.tuples(
    st.sampled_from(["1", "2", "3", "0.5", "1.250", "0.333"]),  # quantity
    st.one_of(st.just(0), st.integers(1, 60_000)),  # unit price in thousandths of OMR
    st.sampled_from(["0", "5", "15"]),  # VAT %
)
invoice_plans = st.tuples(
    st.lists(line_specs, min_size=1, max_size=3),
    st.sampled_from([True, True, True, True, False]),  # issued, or left a draft
    st.sampled_from(["unpaid", "unpaid", "part", "all"]),  # paid before the day starts
    st.sampled_from(["card", "cash"]),
    references,
    fractions,
)


# The sandbox as it is (answers by the payment's reference), declining everything, or down.
GATEWAY_MOODS = ["sandbox", "declined", "unavailable"]


class ScriptedSandbox(SandboxGateway):
    """The sandbox gateway, which can also be told to decline every refund or to be down."""

    answer = "sandbox"

    def refund(self, **kwargs):
        if ScriptedSandbox.answer == "unavailable":
            raise GatewayUnavailable("The sandbox gateway did not answer.")
        if ScriptedSandbox.answer == "declined":
            return GatewayRefundResult(status="failed",
                                       failure_reason="Declined by the card issuer (scripted).")
        return super().refund(**kwargs)


@dataclass
class World:
    """What every example shares: the clinic, its people, rates, methods and reasons."""

    clinic_id: int
    account: Account
    users: dict
    rates: dict
    methods: dict
    reasons: dict


# -- what the ledger looks like -------------------------------------------------------------------


def snapshot() -> dict:
    """ledger_state() and the requests: what a refused call must leave as it was."""
    state = ledger_state()
    state["requests"] = list(FinancialRequest.objects.order_by("pk").values_list(
        "pk", "status", "decided_by", "decision_remarks", "completed_by", "stale",
        "approval_round", "frozen_total"))
    # the first of two approvals changes nothing else: it is a row of its own
    state["approvals"] = list(RequestApproval.objects.order_by("pk").values_list(
        "pk", "request", "round", "step", "approved_by"))
    state["request_lines"] = list(FinancialRequestLine.objects.order_by("pk").values_list(
        "pk", "request", "invoice_line", "amount"))
    state["refund_details"] = list(Refund.objects.order_by("pk").values_list(
        "pk", "retries", "gateway_reference", "failure_reason", "paid_out_by"))
    return state


def without_audit(state: dict) -> dict:
    state = {**state, "counts": dict(state["counts"])}
    state.pop("last_event")
    state["counts"].pop("AuditEvent")
    return state


def money_moves(state: dict) -> dict:
    """The part of a snapshot that records money: what deciding a request must not touch."""
    return {key: state[key] for key in ("lines", "payments", "refunds", "invoices", "series")} | {
        "counts": {k: v for k, v in state["counts"].items() if k != "AuditEvent"}}


def expected_status(invoice: Invoice) -> str:
    """The status the amounts call for (billing.models: settle, apply_credit)."""
    if invoice.amount_refunded > 0:
        if invoice.amount_credited == invoice.total:
            return InvoiceStatus.REFUNDED
        return InvoiceStatus.PARTIALLY_REFUNDED
    if invoice.balance_due == 0:
        return InvoiceStatus.PAID if invoice.amount_paid > 0 else InvoiceStatus.CREDITED
    return InvoiceStatus.PARTIALLY_PAID if invoice.amount_paid > 0 else InvoiceStatus.ISSUED


def chain_of(events: list, label: str) -> str:
    """The state an object's audit events lead to; each one starts where the previous ended."""
    state = ""
    for e in events:
        assert e.from_state == state, (
            f"{label}: audit event {e.action} starts at {e.from_state!r}, not at {state!r}")
        state = e.to_state
    return state


def breakdown_now(request: FinancialRequest, invoice: Invoice, lines: dict):
    """What carrying out the request would credit now, worked out here: its frozen lines and
    amounts (everything still creditable for a whole refund or a cancellation), as
    ([(line pk, net, tax)], total, paid back); None when it could not be carried out at all."""
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED):
        return None
    if request.kind == RequestKind.CANCELLATION or not request.lines.exists():
        parts = [(line, line.creditable_net) for line in lines.values()
                 if line.creditable_net > 0]
    else:
        parts = [(lines[part["line"]], D(part["net"]))
                 for part in request.frozen_breakdown["lines"]]
        if any(net > line.creditable_net for line, net in parts):
            return None
    rows, total = credit_of(parts)
    paid_back = max(ZERO, total - invoice.balance_due)
    if not parts or total > invoice.total - invoice.amount_credited or (
            paid_back > invoice.net_paid):
        return None
    return sorted(rows), total, paid_back


def frozen_of(request: FinancialRequest):
    """The request's frozen breakdown in the same terms as breakdown_now."""
    frozen = request.frozen_breakdown
    return (sorted((part["line"], D(part["net"]), D(part["tax"])) for part in frozen["lines"]),
            D(frozen["total"]), D(frozen["paid_back"]))


# -- the machine ----------------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    world: World  # set by the test

    def __init__(self):
        super().__init__()
        self._example = transaction.atomic()
        self._example.__enter__()
        ScriptedSandbox.answer = "sandbox"
        self.invoice_ids: list[int] = []
        self.draft_ids: list[int] = []
        self.payment_ids: list[int] = []
        self.request_ids: list[int] = []
        self.approved_ids: list[int] = []  # requests approved and not yet carried out
        self.refund_ids: list[int] = []
        # the ledger as the last step left it (only the rules write, the invariants only read)
        self.known: dict | None = None

    def teardown(self):
        ScriptedSandbox.answer = "sandbox"
        transaction.set_rollback(True)
        self._example.__exit__(None, None, None)

    # -- helpers --------------------------------------------------------------------------------

    def user(self, name):
        return self.world.users[name]

    def refresh_ids(self):
        clinic = self.world.clinic_id
        self.invoice_ids = list(Invoice.objects.filter(clinic=clinic).order_by("pk")
                                .values_list("pk", flat=True))
        self.draft_ids = list(Invoice.objects.filter(clinic=clinic, status=InvoiceStatus.DRAFT)
                              .order_by("pk").values_list("pk", flat=True))
        self.payment_ids = list(Payment.objects.filter(invoice__clinic=clinic).order_by("pk")
                                .values_list("pk", flat=True))
        self.request_ids = list(FinancialRequest.objects.filter(clinic=clinic).order_by("pk")
                                .values_list("pk", flat=True))
        self.approved_ids = list(FinancialRequest.objects.filter(
            clinic=clinic, status=RequestStatus.APPROVED).values_list("pk", flat=True))
        self.refund_ids = list(Refund.objects.filter(invoice__clinic=clinic).order_by("pk")
                               .values_list("pk", flat=True))

    @staticmethod
    def choose(queryset, pick, ids, **aim):
        """The pick-th (modulo) row of those the rule aims at, if any and if the pick aims;
        else of all of them (`ids`)."""
        aimed, n = pick
        if aimed:
            among = list(queryset.filter(**aim).order_by("pk").values_list("pk", flat=True))
            if among:
                return queryset.get(pk=among[n % len(among)])
        return queryset.get(pk=ids[n % len(ids)])

    def invoice(self, pick, **aim) -> Invoice:
        return self.choose(Invoice.objects.filter(clinic=self.world.clinic_id)
                           .select_related("clinic"), pick, self.invoice_ids, **aim)

    def payment(self, pick) -> Payment | None:
        if pick is None or not self.payment_ids:
            return None
        return Payment.objects.get(pk=self.payment_ids[pick % len(self.payment_ids)])

    def request(self, pick, **aim) -> FinancialRequest:
        return self.choose(FinancialRequest.objects.select_related("requested_by"), pick,
                           self.request_ids, **aim)

    def refund(self, pick, **aim) -> Refund:
        return self.choose(Refund.objects.select_related("payment"), pick, self.refund_ids,
                           **aim)

    def needed(self, kind, amount: Decimal, reason_key: str = "none") -> int:
        """How many approvers the clinic's rules ask for a credit note of `amount` (its total)
        for the reason: the very lookup the services, the menu and the API make."""
        return approvers_needed(Clinic.objects.get(pk=self.world.clinic_id), kind,
                                amount=amount, reason=self.world.reasons[reason_key])

    def authorised(self, invoice, kind, amount: Decimal, reason_key: str = "none") -> bool:
        """Whether a credit note of `amount` may go through without naming a request: its rule
        needs no approver, or the invoice's open request of the kind is approved (not stale) by
        as many approvers as the rule needs."""
        needed = self.needed(kind, amount, reason_key)
        request = self.open_request(invoice, kind)
        return needed == 0 or (request is not None and request.status == RequestStatus.APPROVED
                               and request.approvals_needed >= needed)

    def set_rules(self, kind, plan):
        """The billing administrator's rules for `kind` (rule_plans)."""
        shape, low, high, gap, for_reason = plan
        if shape in RULE_SHAPES:
            rules = [RuleSpec(RULE_SHAPES[shape])]
        else:
            low, high = sorted((low * UNIT, high * UNIT))
            rules = [RuleSpec(Approvers.ONE, None, high, (self.world.reasons["active"],))
                     ] if for_reason else []
            rules.append(RuleSpec(Approvers.NONE, None, low))
            if not gap and low + UNIT <= high:
                rules.append(RuleSpec(Approvers.ONE, low + UNIT, high))
            rules.append(RuleSpec(Approvers.TWO, high + UNIT, None))
        approval_rules_set(clinic=Clinic.objects.get(pk=self.world.clinic_id), kind=kind,
                           rules=rules)
        note(f"{kind} rules: " + "; ".join(
            f"{r.approvers} {r.amount_from}..{r.amount_up_to}{' (reason)' if r.reasons else ''}"
            for r in rules))

    def open_request(self, invoice, kind):
        return FinancialRequest.objects.filter(invoice=invoice, kind=kind,
                                               status__in=OPEN_STATUSES).first()

    def plan_lines(self, invoice, choice):
        """The lines as staff would tick them, and whether every cap holds."""
        mask, kinds, fraction, flaw = choice
        lines = list(invoice.lines.order_by("position", "pk"))
        chosen = [line for n, line in enumerate(lines) if mask >> n & 1] or lines[:1]
        requested, valid = [], True
        for n, (line, kind) in enumerate(zip(chosen, kinds, strict=False)):
            if n == 0 and flaw in WRONG_AMOUNTS:
                kind = flaw
            if kind == "rest":
                requested.append(CreditLineInput(line))
                valid = valid and line.creditable_net > 0
            else:
                amount = amount_of(kind, line.creditable_net, fraction)
                requested.append(CreditLineInput(line, amount))
                valid = valid and within(amount, line.creditable_net)
        if flaw == "twice":
            requested.append(requested[0])
            valid = False
        elif flaw == "foreign":
            foreign = (InvoiceLine.objects.filter(invoice__clinic=self.world.clinic_id)
                       .exclude(invoice=invoice).order_by("pk").first())
            if foreign is not None:
                requested.append(CreditLineInput(foreign))
                valid = False
        return requested, valid

    def attempt(self, label, actor, call, *, may_succeed=True, must_succeed=False,
                moves_money=True):
        """Make the call. Refused: nothing changed. Done: something changed, and was audited."""
        before = self.known or snapshot()
        try:
            with TestCase.captureOnCommitCallbacks() as callbacks:
                result = call()
        except BusinessRuleError as refusal:
            note(f"{label} by {actor}: refused: {refusal.message}")
            event(f"{label}: refused")
            assert not must_succeed, f"{label} by {actor} was refused: {refusal.message}"
            self.known = snapshot()
            assert self.known == before, f"{label} by {actor} was refused, yet changed the ledger"
            return None
        note(f"{label} by {actor}: done")
        event(f"{label}: done")
        assert may_succeed, f"{label} by {actor} should have been refused"
        after = self.known = snapshot()
        completed = [status for _, status, *_ in after["requests"]].count(
            RequestStatus.COMPLETED)
        if completed > [status for _, status, *_ in before["requests"]].count(
                RequestStatus.COMPLETED):
            event(f"{label}: carried out an approved request")
        # an approved request sent back to requested went stale: a new round of approvals
        was = {pk: (status, approval_round) for pk, status, *_, approval_round, _ in
               before["requests"]}
        for pk, status, *_, stale, approval_round, _ in after["requests"]:
            if pk in was and was[pk][0] == RequestStatus.APPROVED != status:
                event(f"{label}: an approved request went {status}")
                if status == RequestStatus.REQUESTED:
                    assert stale and approval_round == was[pk][1] + 1, (
                        f"{label}: request {pk} went back to requested without going stale")
        assert without_audit(after) != without_audit(before), f"{label} changed nothing"
        assert after["counts"]["AuditEvent"] > before["counts"]["AuditEvent"], (
            f"{label} by {actor} changed the ledger without an audit event")
        if not moves_money:
            assert money_moves(after) == money_moves(before), f"{label} moved money"
        # then the commit: emails go out, gateway refunds are sent
        watched = self.gateway_watch([
            callback.args[1][0] for callback in callbacks
            if isinstance(callback, partial) and callback.func is queueing._queue
            and callback.args[0] is refund_tasks.refund_send])
        for callback in callbacks:
            callback()
        self.gateway_check(watched)
        self.refresh_ids()
        return result

    # -- the day starts ---------------------------------------------------------------------------

    @initialize(plans=st.lists(invoice_plans, min_size=2, max_size=4),
                refund_rules=rule_plans(["direct", "approval", "two", "tiered", "tiered"]),
                cancellation_rules=rule_plans(["direct", "approval", "two", "tiered"]))
    def open_the_books(self, plans, refund_rules, cancellation_rules):
        clinic = Clinic.objects.get(pk=self.world.clinic_id)
        self.set_rules(RequestKind.REFUND, refund_rules)
        self.set_rules(RequestKind.CANCELLATION, cancellation_rules)
        clerk = self.user("clerk")
        for specs, issue, paid, method, reference, fraction in plans:
            lines = [
                LineInput(description=f"Item {n}", quantity=D(quantity),
                          unit_price=max(D(price), D(1000) if n == 1 else ZERO) * UNIT,
                          tax_rate=self.world.rates[rate])
                for n, (quantity, price, rate) in enumerate(specs, start=1)
            ]
            invoice = invoice_create(clinic=clinic, account=self.world.account, lines=lines,
                                     actor=clerk, issue=issue)
            if issue and paid != "unpaid":
                amount = amount_of(paid, invoice.balance_due, fraction)
                payment_record(invoice=invoice, method=self.world.methods[method],
                               amount=amount, actor=clerk,
                               reference=reference if method == "card" else "R-1")
        self.refresh_ids()

    # -- money in ---------------------------------------------------------------------------------

    @rule(actor=staff_mostly, pick=picks, method=methods, kind=amount_kinds,
          fraction=fractions, reference=references)
    def record_payment(self, actor, pick, method, kind, fraction, reference):
        invoice = self.invoice(pick, status__in=OPEN_FOR_PAYMENT)
        amount = amount_of(kind, invoice.balance_due, fraction)
        must = (actor in STAFF and method in ("cash", "card")
                and invoice.status in OPEN_FOR_PAYMENT and within(amount, invoice.balance_due))
        self.attempt(
            "record payment", actor,
            lambda: payment_record(invoice=invoice, method=self.world.methods[method],
                                   amount=amount, actor=self.user(actor), reference=reference),
            may_succeed=actor in STAFF, must_succeed=must)

    @precondition(lambda self: self.approved_ids)
    @rule(actor=staff_mostly, pick=picks, kind=amount_kinds, fraction=fractions)
    def pay_under_an_approval(self, actor, pick, kind, fraction):
        """A payment on the invoice of a request approved and not yet carried out: where it
        changes the credit note the request would produce (what it pays back), the request goes
        stale, requested again until its approvers confirm the new breakdown; where it does not,
        the request stays approved (docs/rules.md §5.4)."""
        request = self.request(pick, status=RequestStatus.APPROVED,
                               invoice__status__in=OPEN_FOR_PAYMENT)
        invoice = Invoice.objects.get(pk=request.invoice_id)
        amount = amount_of(kind, invoice.balance_due, fraction)
        paid = self.attempt(
            "payment under an approval", actor,
            lambda: payment_record(invoice=invoice, method=self.world.methods["cash"],
                                   amount=amount, actor=self.user(actor), reference="R-2"),
            may_succeed=actor in STAFF,
            must_succeed=(actor in STAFF and invoice.status in OPEN_FOR_PAYMENT
                          and within(amount, invoice.balance_due)))
        if paid is None or request.status != RequestStatus.APPROVED:
            return
        lines = {line.pk: line for line in invoice.lines.order_by("position", "pk")}
        now = breakdown_now(request, Invoice.objects.get(pk=invoice.pk), lines)
        changed = now != frozen_of(request)
        request.refresh_from_db()
        event(f"payment under an approval: {'stale' if changed else 'unchanged'}")
        assert (request.status, request.stale) == (
            (RequestStatus.REQUESTED, True) if changed else (RequestStatus.APPROVED, False)), (
            f"{request} is {request.status} (stale: {request.stale}) after a payment that "
            f"{'changed' if changed else 'did not change'} its breakdown")

    @precondition(lambda self: self.draft_ids)
    @rule(actor=staff_mostly, pick=picks)
    def issue_draft(self, actor, pick):
        invoice = self.invoice(pick, status=InvoiceStatus.DRAFT)
        self.attempt("issue", actor,
                     lambda: invoice_issue(invoice=invoice, actor=self.user(actor)),
                     may_succeed=actor in STAFF,
                     must_succeed=actor in STAFF and invoice.status == InvoiceStatus.DRAFT)

    # -- requests and decisions -----------------------------------------------------------------

    @rule(actor=staff_mostly, pick=picks, lines=st.none() | line_choices, text=remarks,
          why=request_reasons)
    def submit_refund_request(self, actor, pick, lines, text, why):
        invoice = self.invoice(pick, status__in=CREDITABLE)
        requested, valid = (None, True) if lines is None else self.plan_lines(invoice, lines)
        # the rules decide by the credit note the request describes: a request for one that
        # needs no approver is refused (it is carried out directly), else it needs 1 or 2
        _, total = credit_of(whole_parts(invoice) if requested is None
                             else planned_parts(requested) if valid else [])
        needed = self.needed(RequestKind.REFUND, total, why)
        must = (actor in STAFF and valid and text == REMARKS_OK and why != "inactive"
                and needed > 0
                and invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED)
                and invoice.amount_credited < invoice.total
                and self.open_request(invoice, RequestKind.REFUND) is None)
        submitted = self.attempt(
            "refund request", actor,
            lambda: refund_request_create(invoice=invoice, remarks=text, actor=self.user(actor),
                                          lines=requested,
                                          dispute_reason=self.world.reasons[why]),
            may_succeed=actor in STAFF and not (valid and needed == 0), must_succeed=must,
            moves_money=False)
        if submitted is not None and valid:
            event(f"refund request needs {submitted.approvals_needed}")
            assert submitted.frozen_total == total, f"{submitted} froze another total"
            assert submitted.approvals_needed == needed, (
                f"{submitted} needs {submitted.approvals_needed} approvers; the rules say {needed}")

    @rule(actor=staff_mostly, pick=picks, text=remarks)
    def submit_cancellation_request(self, actor, pick, text):
        invoice = self.invoice(pick, status=InvoiceStatus.ISSUED)
        _, total = credit_of(whole_parts(invoice))
        needed = self.needed(RequestKind.CANCELLATION, total)
        must = (actor in STAFF and text == REMARKS_OK and needed > 0
                and invoice.status == InvoiceStatus.ISSUED and invoice.net_paid == 0
                and self.open_request(invoice, RequestKind.CANCELLATION) is None)
        submitted = self.attempt(
            "cancellation request", actor,
            lambda: cancellation_request_create(invoice=invoice, remarks=text,
                                                actor=self.user(actor)),
            may_succeed=actor in STAFF and needed > 0, must_succeed=must, moves_money=False)
        if submitted is not None:
            assert submitted.approvals_needed == needed


    @staticmethod
    def approvers_so_far(request) -> list[str]:
        """Who has approved the request in its current round (a stale request starts a new
        one: its approvers confirm the new breakdown)."""
        return [approval.approved_by.username for approval in request.approvals.filter(
            round=request.approval_round).select_related("approved_by").order_by("step")]

    @precondition(lambda self: self.request_ids)
    @rule(actor=approvers_mostly, pick=picks, text=approval_remarks)
    def approve(self, actor, pick, text):
        """One approval. A request needing two stays requested after the first ("1 of 2"); the
        second must come from someone else, and only then is it approved."""
        request = self.request(pick, status=RequestStatus.REQUESTED)
        so_far = self.approvers_so_far(request)
        own = request.requested_by.username == actor
        may = actor in APPROVERS and not own and actor not in so_far
        decided = self.attempt(
            "approve", actor,
            lambda: request_approve(financial_request=request, actor=self.user(actor),
                                    remarks=text),
            may_succeed=may, moves_money=False,
            must_succeed=(may and request.status == RequestStatus.REQUESTED
                          and len(text.strip()) <= REMARKS_MAX_LENGTH))
        if decided is not None:
            given = len(so_far) + 1
            event(f"approve: {given} of {request.approvals_needed}")
            assert self.approvers_so_far(decided) == [*so_far, actor]
            assert decided.status == (RequestStatus.APPROVED if given == request.approvals_needed
                                      else RequestStatus.REQUESTED), (
                f"{decided} is {decided.status} after {given} of {request.approvals_needed}")
            assert not (decided.status == RequestStatus.APPROVED and decided.stale)

    @precondition(lambda self: self.request_ids)
    @rule(actor=approvers_mostly, pick=picks, text=rejection_remarks)
    def reject(self, actor, pick, text):
        """A rejection by any approver who has not approved it ends the request."""
        request = self.request(pick, status=RequestStatus.REQUESTED)
        own = request.requested_by.username == actor
        may = actor in APPROVERS and not own and actor not in self.approvers_so_far(request)
        self.attempt(
            "reject", actor,
            lambda: request_reject(financial_request=request, actor=self.user(actor), remarks=text),
            may_succeed=may, moves_money=False,
            must_succeed=(may and request.status == RequestStatus.REQUESTED
                          and 0 < len(text.strip()) <= REMARKS_MAX_LENGTH))

    @precondition(lambda self: self.request_ids)
    @rule(actor=anyone, pick=picks)
    def withdraw(self, actor, pick):
        request = self.request(pick, status=RequestStatus.REQUESTED)
        own = request.requested_by.username == actor
        self.attempt(
            "withdraw", actor,
            lambda: request_withdraw(financial_request=request, actor=self.user(actor)),
            may_succeed=own, moves_money=False,
            must_succeed=own and request.status == RequestStatus.REQUESTED)

    @precondition(lambda self: self.request_ids)
    @rule(actor=staff_mostly, pick=picks,
          how=st.sampled_from(["as approved", "as approved", "rest", "over", "less",
                               "another invoice"]),
          fraction=fractions)
    def carry_out_request(self, actor, pick, how, fraction):
        """Carry out a request, approved or not, as approved or beyond it. Ready: approved by
        as many approvers as it needs (a stale one, whose invoice changed since, is requested
        again until its approvers confirm the new breakdown, so never ready), and enough: it had
        as many approvers as the rules ask now for the credit note carried out."""
        request = self.request(pick, status=RequestStatus.APPROVED)
        invoice = Invoice.objects.get(pk=request.invoice_id)
        target = invoice
        if how == "another invoice":
            target = Invoice.objects.filter(clinic=self.world.clinic_id).exclude(
                pk=invoice.pk).order_by("pk").first()
        reason = self.world.reasons["active"]
        user = self.user(actor)
        ready = (actor in STAFF and request.status == RequestStatus.APPROVED
                 and not request.stale and target.pk == invoice.pk)

        def enough(kind, parts, reason_key):
            _, total = credit_of(parts)
            return request.approvals_needed >= self.needed(kind, total, reason_key)

        if request.kind == RequestKind.CANCELLATION:
            ready = ready and enough(RequestKind.CANCELLATION, whole_parts(invoice), "none")
            self.attempt(
                "carry out cancellation", actor,
                lambda: invoice_cancel(invoice=target, remarks="Approved cancellation",
                                       actor=user, approval_request=request),
                may_succeed=ready,
                must_succeed=(ready and invoice.status == InvoiceStatus.ISSUED
                              and invoice.net_paid == 0
                              and self.open_request(invoice, RequestKind.REFUND) is None))
            return
        approved = list(request.lines.order_by("pk").select_related("invoice_line"))
        if not approved:
            if how in ("as approved", "another invoice"):
                remaining = [line for line in invoice.lines.all() if line.creditable_net > 0]
                ready = ready and enough(RequestKind.REFUND, whole_parts(invoice), "active")
                self.attempt(
                    "carry out full refund", actor,
                    lambda: credit_note_create(full=True, invoice=target, dispute_reason=reason,
                                               actor=user,
                                           approval_request=request),
                    may_succeed=ready,
                    must_succeed=(ready and invoice.status != InvoiceStatus.CANCELLED
                                  and bool(remaining) and invoice.net_paid > 0))
                return
            lines = [CreditLineInput(line) for line in invoice.lines.all()]
            if how in ("less", "over"):
                lines = lines[:1]
        else:
            amounts = {
                "as approved": lambda a: a.amount,
                "another invoice": lambda a: a.amount,
                "rest": lambda a: None,
                "over": lambda a: a.amount + UNIT,
                "less": lambda a: amount_of("part", a.amount, fraction),
            }[how]
            lines = [CreditLineInput(a.invoice_line, amounts(a)) for a in approved]
        left = {line.pk: line.creditable_net for line in invoice.lines.all()}
        limits = {a.invoice_line_id: a.amount for a in approved}
        valid = all(
            (left[pk] > 0 and (not limits or left[pk] <= limits[pk])) if amount is None
            else within(amount, left[pk]) and (not limits or amount <= limits[pk])
            for pk, amount in ((item.invoice_line.pk, item.amount) for item in lines))
        ready = ready and (not valid or enough(RequestKind.REFUND, planned_parts(lines), "active"))
        self.attempt(
            "carry out refund request", actor,
            lambda: credit_note_create(invoice=target, lines=lines, dispute_reason=reason,
                                       actor=user, approval_request=request),
            may_succeed=ready,
            must_succeed=ready and valid and invoice.status != InvoiceStatus.CANCELLED)

    # -- refunds, credits, cancellation ----------------------------------------------------------

    # Carried out directly, without naming a request: it must go through where the rule for
    # its credit note (total and reason) needs no approver, and may only where that is so or
    # the invoice's open request is approved by as many approvers as the rule needs.

    @rule(actor=staff_mostly, pick=picks, payment=payment_picks, why=reasons)
    def full_refund(self, actor, pick, payment, why):
        invoice = self.invoice(pick, amount_paid__gt=F("amount_refunded"))
        chosen = self.payment(payment)
        remaining = [line for line in invoice.lines.all() if line.creditable_net > 0]
        _, total = credit_of(whole_parts(invoice))
        must = (actor in STAFF and chosen is None and why == "active"
                and self.needed(RequestKind.REFUND, total, why) == 0
                and invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED)
                and bool(remaining) and invoice.net_paid > 0)
        self.attempt(
            "full refund", actor,
            lambda: credit_note_create(full=True, invoice=invoice,
                                       dispute_reason=self.world.reasons[why],
                                   actor=self.user(actor), payment=chosen),
            may_succeed=actor in STAFF and self.authorised(invoice, RequestKind.REFUND, total,
                                                           why),
            must_succeed=must)

    @rule(actor=staff_mostly, pick=picks, lines=line_choices, payment=payment_picks,
          why=reasons)
    def credit_lines(self, actor, pick, lines, payment, why):
        invoice = self.invoice(pick, status__in=CREDITABLE)
        requested, valid = self.plan_lines(invoice, lines)
        chosen = self.payment(payment)
        _, total = credit_of(planned_parts(requested) if valid else [])
        must = (actor in STAFF and valid and why == "active"
                and (chosen is None
                     or (chosen.invoice_id == invoice.pk and chosen.refundable > 0))
                and self.needed(RequestKind.REFUND, total, why) == 0
                and invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED))
        self.attempt(
            "credit lines", actor,
            lambda: credit_note_create(invoice=invoice, lines=requested,
                                       dispute_reason=self.world.reasons[why],
                                       actor=self.user(actor), payment=chosen),
            may_succeed=actor in STAFF and (
                not valid or self.authorised(invoice, RequestKind.REFUND, total, why)),
            must_succeed=must)

    @rule(actor=staff_mostly, pick=picks, size=st.sampled_from(["unit", "part", "part"]),
          fraction=fractions)
    def credit_a_little(self, actor, pick, size, fraction):
        """A small credit on one line, again and again (docs/rules.md §3: the tax of each is the
        cumulative rounding difference, never more than the line carries)."""
        lines = InvoiceLine.objects.filter(invoice__clinic=self.world.clinic_id)
        line = self.choose(lines.select_related("invoice"), pick,
                           list(lines.order_by("pk").values_list("pk", flat=True)),
                           invoice__status__in=CREDITABLE, credited_net__lt=F("net"))
        amount = min(UNIT if size == "unit" else amount_of("part", line.net, fraction // 10 + 1),
                     max(line.creditable_net, UNIT))
        invoice = line.invoice
        valid = within(amount, line.creditable_net)
        _, total = credit_of([(line, amount)] if valid else [])
        must = (actor in STAFF and valid
                and self.needed(RequestKind.REFUND, total, "active") == 0
                and invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED))
        self.attempt(
            "credit a little", actor,
            lambda: credit_note_create(invoice=invoice, lines=[CreditLineInput(line, amount)],
                                       dispute_reason=self.world.reasons["active"],
                                       actor=self.user(actor)),
            may_succeed=actor in STAFF and (
                not valid or self.authorised(invoice, RequestKind.REFUND, total, "active")),
            must_succeed=must)

    @rule(actor=staff_mostly, pick=picks, text=remarks,
          why=st.sampled_from(["none", "none", "active", "inactive"]))
    def cancel(self, actor, pick, text, why):
        invoice = self.invoice(pick, status=InvoiceStatus.ISSUED, amount_paid=0)
        # a cancellation credits everything still creditable; the rules see no reason for it
        _, total = credit_of(whole_parts(invoice))
        must = (actor in STAFF and text == REMARKS_OK and why != "inactive"
                and self.needed(RequestKind.CANCELLATION, total) == 0
                and invoice.status == InvoiceStatus.ISSUED and invoice.net_paid == 0
                and self.open_request(invoice, RequestKind.REFUND) is None)
        self.attempt(
            "cancel", actor,
            lambda: invoice_cancel(invoice=invoice, remarks=text, actor=self.user(actor),
                                   dispute_reason=self.world.reasons[why]),
            may_succeed=actor in STAFF and self.authorised(
                invoice, RequestKind.CANCELLATION, total),
            must_succeed=must)

    # -- after commit: the gateway answers; staff retry and pay out -------------------------------

    @rule(mood=st.sampled_from(GATEWAY_MOODS))
    def gateway_changes(self, mood):
        """From now on the gateway answers as the sandbox does, declines everything, or is down."""
        ScriptedSandbox.answer = mood
        note(f"the gateway is now: {mood}")

    @precondition(lambda self: self.refund_ids)
    @rule(which=st.sampled_from(["every pending refund", "one refund"]), pick=picks)
    def reconcile(self, which, pick):
        """reconcile_refunds sends again what is left pending; or one refund is sent again,
        pending or not (a repeated call must change nothing)."""
        if which == "one refund":
            targets = [self.refund(pick, status=RefundStatus.PENDING).pk]
        else:
            targets = list(Refund.objects.filter(status=RefundStatus.PENDING)
                           .values_list("pk", flat=True))
        before = self.known or snapshot()
        sent = self.gateway_watch(targets)
        if which == "one refund":
            refund_tasks.refund_send.delay(targets[0])  # as a redelivered task would
        else:
            refunds_reconcile(older_than_seconds=0)
        changed = self.gateway_check(sent)
        if not changed and (ScriptedSandbox.answer == "unavailable" or all(
                status != RefundStatus.PENDING for status, _ in sent[0].values())):
            assert snapshot() == before, "a refund not waiting for the gateway changed"

    def gateway_watch(self, refund_ids) -> tuple[dict, int]:
        """The refunds about to be sent (status, payment reference) and the audit count."""
        refunds = Refund.objects.filter(pk__in=refund_ids).select_related("payment")
        return ({r.pk: (r.status, r.payment.reference) for r in refunds},
                AuditEvent.objects.count())

    def gateway_check(self, watched) -> int:
        """Each refund sent is where the gateway's answer puts it, and each move is audited."""
        refunds, events = watched
        mood = ScriptedSandbox.answer
        changed = 0
        for pk, (status, reference) in refunds.items():
            now = Refund.objects.get(pk=pk).status
            expected = status
            if status == RefundStatus.PENDING and mood != "unavailable":
                if mood == "declined" or reference.lower().startswith("fail"):
                    expected = RefundStatus.FAILED
                elif not reference.lower().startswith("pending"):
                    expected = RefundStatus.SUCCEEDED
            event(f"gateway ({mood}): {status} -> {now}")
            assert now == expected, f"refund {pk}: the gateway is {mood}, yet it is {now}"
            changed += now != status
        assert AuditEvent.objects.count() == events + changed, "a gateway answer is not audited"
        if refunds:
            self.known = None
        return changed

    @precondition(lambda self: self.refund_ids)
    @rule(actor=staff_mostly, pick=picks, action=st.sampled_from(["retry", "mark paid out"]),
          text=st.sampled_from(["", "Paid back at the desk"]))
    def follow_up_refund(self, actor, pick, action, text):
        """Staff send a declined gateway refund again, or say they paid a manual one out."""
        user = self.user(actor)
        if action == "retry":
            refund = self.refund(pick, status=RefundStatus.FAILED)
            call = partial(refund_retry, refund=refund, actor=user)
            ready = refund.status == RefundStatus.FAILED
        else:
            refund = self.refund(pick, status=RefundStatus.AWAITING_PAYOUT)
            call = partial(refund_mark_paid_out, refund=refund, actor=user, remarks=text)
            ready = refund.status == RefundStatus.AWAITING_PAYOUT
        self.attempt(action, actor, call, may_succeed=actor in STAFF,
                     must_succeed=actor in STAFF and ready)

    # -- the billing administrator changes the clinic's rules ------------------------------------

    @rule(kind=st.sampled_from(RequestKind.values),
          plan=rule_plans(["direct", "approval", "two", "tiered", "tiered"]))
    def switch_policy(self, kind, plan):
        """Requests already submitted keep the approvers they were asked for; what is carried
        out is matched against the rules of the moment."""
        self.set_rules(kind, plan)

    # -- invariants, after every step -------------------------------------------------------------

    @invariant()
    def amounts_stay_within_their_caps(self):
        clinic = self.world.clinic_id
        invoices = list(Invoice.objects.filter(clinic=clinic))
        lines = list(InvoiceLine.objects.filter(invoice__clinic=clinic))
        payments = list(Payment.objects.filter(invoice__clinic=clinic))
        notes = list(CreditNote.objects.filter(clinic=clinic))
        note_lines = list(CreditNoteLine.objects.filter(credit_note__clinic=clinic))
        refunds = list(Refund.objects.filter(invoice__clinic=clinic))

        def total(rows, key, field):
            sums = defaultdict(lambda: ZERO)
            for row in rows:
                sums[getattr(row, key)] += getattr(row, field)
            return sums

        for line in lines:
            assert ZERO <= line.credited_net <= line.net, f"line {line.pk} over-credited (net)"
            assert ZERO <= line.credited_tax <= line.tax, f"line {line.pk} over-credited (tax)"
            assert line.credited_tax == round_money(line.credited_net * line.rate, "OMR"), (
                f"line {line.pk}: tax credited is not the rounded tax of the net credited")
        credited_net = total(note_lines, "invoice_line_id", "net")
        credited_tax = total(note_lines, "invoice_line_id", "tax")
        for line in lines:
            assert (credited_net[line.pk], credited_tax[line.pk]) == (
                line.credited_net, line.credited_tax), f"line {line.pk}: credit notes disagree"

        refunded = total(refunds, "payment_id", "amount")
        for payment in payments:
            assert ZERO <= payment.amount_refunded <= payment.amount, (
                f"payment {payment.pk} refunded beyond its amount")
            assert refunded[payment.pk] == payment.amount_refunded

        paid = total(payments, "invoice_id", "amount")
        refunds_by_invoice = total(refunds, "invoice_id", "amount")
        credited = total(notes, "invoice_id", "amount")
        unapplied = total(notes, "invoice_id", "amount_unapplied")
        for invoice in invoices:
            assert invoice.balance_due >= ZERO, f"{invoice}: balance due {invoice.balance_due}"
            assert invoice.amount_refunded <= invoice.amount_paid
            assert invoice.amount_credited <= invoice.total
            assert invoice.amount_paid == paid[invoice.pk]
            assert invoice.amount_refunded == refunds_by_invoice[invoice.pk] == unapplied[
                invoice.pk]
            assert invoice.amount_credited == credited[invoice.pk]

        for credit_note in notes:
            parts = [p for p in note_lines if p.credit_note_id == credit_note.pk]
            assert parts, f"{credit_note} has no lines"
            assert credit_note.subtotal == sum((p.net for p in parts), ZERO)
            assert credit_note.tax_amount == sum((p.tax for p in parts), ZERO)
            assert credit_note.amount == credit_note.subtotal + credit_note.tax_amount
            assert credit_note.amount == credit_note.amount_applied + credit_note.amount_unapplied
            assert credit_note.is_credit == (credit_note.amount_unapplied == 0)
            paid_back = sum((r.amount for r in refunds if r.credit_note_id == credit_note.pk),
                            ZERO)
            assert paid_back == credit_note.amount_unapplied

        by_pk = {p.pk: p for p in payments}
        for refund in refunds:
            assert by_pk[refund.payment_id].invoice_id == refund.invoice_id
            gateway = by_pk[refund.payment_id].method.is_gateway
            assert refund.status in (
                (RefundStatus.PENDING, RefundStatus.SUCCEEDED, RefundStatus.FAILED) if gateway
                else (RefundStatus.AWAITING_PAYOUT, RefundStatus.PAID_OUT))

    @invariant()
    def statuses_follow_the_amounts(self):
        cancellations = Counter(CreditNote.objects.filter(
            clinic=self.world.clinic_id, kind=CreditNoteKind.CANCELLATION)
            .values_list("invoice_id", flat=True))
        for invoice in Invoice.objects.filter(clinic=self.world.clinic_id):
            if invoice.status == InvoiceStatus.DRAFT:
                assert invoice.number is None and invoice.sequence is None
                assert invoice.amount_paid == invoice.amount_credited == ZERO
            elif invoice.status == InvoiceStatus.CANCELLED:
                assert invoice.net_paid == 0, f"{invoice} cancelled with money on it"
                assert invoice.amount_credited == invoice.total, f"{invoice} cancelled in part"
                assert cancellations[invoice.pk] == 1
            else:
                assert invoice.number is not None
                assert invoice.status == expected_status(invoice), (
                    f"{invoice} is {invoice.status}; its amounts say {expected_status(invoice)}")
                assert cancellations[invoice.pk] == 0

    @invariant()
    def numbers_are_gapless(self):
        clinic = self.world.clinic_id
        documents = {
            NumberSeries.Kind.INVOICE: Invoice.objects.filter(clinic=clinic, number__isnull=False),
            NumberSeries.Kind.CREDIT_NOTE: CreditNote.objects.filter(clinic=clinic),
        }
        series = {s.kind: s for s in NumberSeries.objects.filter(clinic=clinic)}
        for kind, queryset in documents.items():
            numbered = sorted(queryset.values_list("sequence", "number"))
            if kind not in series:
                assert numbered == []
                continue
            s = series[kind]
            assert numbered == [(n, f"{s.prefix}{n:0{s.padding}d}")
                                for n in range(1, s.last_value + 1)], f"{kind} numbers have gaps"

    @invariant()
    def every_change_is_audited(self):
        clinic = self.world.clinic_id
        types = ContentType.objects.get_for_models(Invoice, Payment, CreditNote, Refund,
                                                   FinancialRequest)
        by_object = defaultdict(list)
        invoice_events = defaultdict(list)
        for e in AuditEvent.objects.filter(clinic=clinic).order_by("pk"):
            by_object[e.content_type_id, e.object_id].append(e)
            if e.action in (Action.INVOICE_CREATED, Action.INVOICE_ISSUED, Action.PAYMENT_RECORDED,
                            Action.CREDIT_NOTE_ISSUED, Action.INVOICE_CANCELLED):
                invoice_events[e.invoice_id].append(e)

        def events_of(model, pk):
            return by_object[types[model].pk, str(pk)]

        for invoice in Invoice.objects.filter(clinic=clinic):
            assert chain_of(invoice_events[invoice.pk], str(invoice)) == invoice.status, (
                f"{invoice}: its audit trail does not end at {invoice.status}")
        for payment in Payment.objects.filter(invoice__clinic=clinic):
            assert [(e.action, e.amount) for e in events_of(Payment, payment.pk)] == [
                (Action.PAYMENT_RECORDED, payment.amount)]
        for credit_note in CreditNote.objects.filter(clinic=clinic).select_related("created_by"):
            action = (Action.INVOICE_CANCELLED if credit_note.kind == CreditNoteKind.CANCELLATION
                      else Action.CREDIT_NOTE_ISSUED)
            assert [(e.action, e.amount, e.data["number"], e.actor_username)
                    for e in events_of(CreditNote, credit_note.pk)] == [
                (action, credit_note.amount, credit_note.number,
                 credit_note.created_by.username)], f"{credit_note} is not audited"
        for refund in Refund.objects.filter(invoice__clinic=clinic):
            events = events_of(Refund, refund.pk)
            assert events and events[0].action == Action.REFUND_CREATED
            assert events[0].amount == refund.amount
            assert chain_of(events, str(refund)) == refund.status, (
                f"refund {refund.pk}: its audit trail does not end at {refund.status}")
        for request in FinancialRequest.objects.filter(clinic=clinic):
            events = events_of(FinancialRequest, request.pk)
            assert events and events[0].action == Action.REQUEST_SUBMITTED
            assert chain_of(events, str(request)) == request.status, (
                f"{request}: its audit trail does not end at {request.status}")

    @invariant()
    def requests_are_consistent(self):
        requests = list(FinancialRequest.objects.filter(clinic=self.world.clinic_id))
        open_ones = Counter((r.invoice_id, r.kind) for r in requests if r.status in OPEN_STATUSES)
        assert all(n == 1 for n in open_ones.values()), f"several open requests: {open_ones}"
        notes = {n.approval_request_id: n for n in CreditNote.objects.filter(
            clinic=self.world.clinic_id, approval_request__isnull=False)}
        invoices = {i.pk: i for i in Invoice.objects.filter(clinic=self.world.clinic_id)}
        for request in requests:
            assert request.decided_by_id != request.requested_by_id
            if invoices[request.invoice_id].status == InvoiceStatus.CANCELLED:
                assert not (request.kind == RequestKind.REFUND and request.is_open), (
                    f"{request} is open on a cancelled invoice")
            credit_note = notes.get(request.pk)
            if request.status != RequestStatus.COMPLETED:
                assert credit_note is None, f"{request} authorised {credit_note} unfinished"
                continue
            assert credit_note is not None, f"{request} completed without a credit note"
            assert credit_note.invoice_id == request.invoice_id
            assert (credit_note.kind == CreditNoteKind.CANCELLATION) == (
                request.kind == RequestKind.CANCELLATION)
            approved = {line.invoice_line_id: line.amount for line in request.lines.all()}
            if approved:
                for part in credit_note.lines.all():
                    assert part.net <= approved[part.invoice_line_id], (
                        f"{credit_note} credits more than {request} approved")
            if not request.frozen_breakdown:
                continue
            # approve exactly what was shown: no line, net or payback beyond the breakdown the
            # approvers last confirmed
            shown, _, paid_back = frozen_of(request)
            shown = {pk: net for pk, net, _ in shown}
            for part in credit_note.lines.all():
                assert part.net <= shown.get(part.invoice_line_id, ZERO), (
                    f"{credit_note} credits more than {request} showed")
            assert credit_note.amount_unapplied <= paid_back, (
                f"{credit_note} pays back more than {request} showed")

    @invariant()
    def approvals_are_counted(self):
        """The approvals of each request's current round come from different approvers of the
        clinic, never its requester, one step after another: a request is approved (then
        carried out, or expired) only with as many as it needs, and waits, or was rejected or
        withdrawn, with fewer. A stale request is never approved until they confirm it."""
        clinic = self.world.clinic_id
        rounds = defaultdict(list)
        for approval in RequestApproval.objects.filter(request__clinic=clinic).select_related(
                "approved_by").order_by("request", "round", "step"):
            rounds[approval.request_id, approval.round].append(approval)
        for request in FinancialRequest.objects.filter(clinic=clinic).select_related(
                "requested_by", "decided_by"):
            given = rounds[request.pk, request.approval_round]
            names = [approval.approved_by.username for approval in given]
            assert request.approvals_needed in (1, 2)
            assert [approval.step for approval in given] == list(range(1, len(given) + 1))
            assert len(set(names)) == len(names), f"{request}: approved twice by one: {names}"
            assert request.requested_by.username not in names, f"{request}: own approval"
            assert set(names) <= APPROVERS, f"{request}: approved by {names}"
            if request.status in (RequestStatus.APPROVED, RequestStatus.COMPLETED,
                                  RequestStatus.EXPIRED):
                assert len(given) == request.approvals_needed, (
                    f"{request} is {request.status} with {len(given)} of "
                    f"{request.approvals_needed} approvals")
                assert request.decided_by.username == names[-1]
                assert not request.stale, f"{request} is {request.status} yet stale"
            else:
                assert len(given) < request.approvals_needed, (
                    f"{request} is {request.status} with {len(given)} of "
                    f"{request.approvals_needed} approvals")

    @invariant()
    def approved_requests_show_what_would_move(self):
        """An approved request's frozen breakdown is what carrying it out would credit and pay
        back now: a payment or credit note since its approval either left that as it was or
        made the request stale, requested again (docs/rules.md §5.4)."""
        clinic = self.world.clinic_id
        approved = list(FinancialRequest.objects.filter(
            clinic=clinic, status=RequestStatus.APPROVED).exclude(frozen_breakdown=None))
        if not approved:
            return
        invoices = {i.pk: i for i in Invoice.objects.filter(clinic=clinic)}
        lines = defaultdict(dict)
        for line in InvoiceLine.objects.filter(invoice__clinic=clinic).order_by("position", "pk"):
            lines[line.invoice_id][line.pk] = line
        for request in approved:
            now = breakdown_now(request, invoices[request.invoice_id],
                                lines[request.invoice_id])
            if now is None:  # approved although nothing of it can be carried out any more
                continue
            assert frozen_of(request) == now, (
                f"{request} shows {frozen_of(request)} but would now credit {now}")


@pytest.mark.slow
@pytest.mark.django_db
def test_the_ledger_stays_whole_whatever_anyone_does(
        clinic, account, other_clinic, clerk, clerk2, approver, outsider, other_approver):
    world = World(
        clinic_id=clinic.pk,
        account=account,
        users={
            "clerk": clerk, "clerk2": clerk2, "approver": approver, "outsider": outsider,
            "other_approver": other_approver,
            "approver2": approver_factory(username="approver2", clinics=[clinic]),
            "dual": UserFactory(username="dual", groups=[BILLING_STAFF, FINANCIAL_APPROVERS],
                                clinics=[clinic]),
        },
        rates={r: TaxRateFactory(clinic=clinic, name=f"VAT {r}%", percentage=D(r))
               for r in ("0", "5", "15")},
        methods={
            "cash": PaymentMethodFactory(clinic=clinic, name="Cash"),
            "card": PaymentMethodFactory(clinic=clinic, name="Online card", kind="gateway",
                                         gateway="sandbox"),
            "retired": PaymentMethodFactory(clinic=clinic, name="Cheque", is_active=False),
            "foreign": PaymentMethodFactory(clinic=other_clinic, name="Cash"),
        },
        reasons={
            "active": DisputeReasonFactory(name="Billing error"),
            "inactive": DisputeReason.objects.create(name="Old reason", is_active=False),
            "none": None,
        },
    )

    class Ledger(LedgerMachine):
        pass

    Ledger.world = world
    gateways = {**django_settings.REFUND_GATEWAYS, "sandbox": f"{__name__}.ScriptedSandbox"}
    with override_settings(REFUND_GATEWAYS=gateways):
        run_state_machine_as_test(Ledger, settings=MACHINE_SETTINGS)
