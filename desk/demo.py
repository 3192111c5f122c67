"""Demo data: two clinics, their staff, catalogue and invoices in every state reachable so far.
Every step looks before it writes, so running it again changes nothing."""

import datetime
import random
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalRule, Approvers, FinancialRequest, RequestKind
from approvals.rules import approvers_needed, may_need_approval
from approvals.services import (
    RuleSpec,
    approval_rules_set,
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
    request_withdraw,
)
from billing import roles
from billing.breakdown import CreditLineInput
from billing.models import (
    Account,
    Clinic,
    DisputeReason,
    Invoice,
    PaymentMethod,
    PaymentMethodKind,
    Service,
    TaxRate,
)
from billing.money import quantum
from billing.services import LineInput, invoice_create, invoice_issue, payment_record
from refunds.models import CreditNote
from refunds.services import (
    credit_note_create,
    invoice_cancel,
    refund_mark_paid_out,
)

D = Decimal

CLINICS = [
    {"code": "MUSCAT", "name": "Muscat Family Clinic", "currency": "OMR", "timezone": "Asia/Muscat",
     "address": "Way 3021, Al Khuwair, Muscat, Oman"},
    {"code": "AUSTIN", "name": "Austin Health Partners", "currency": "USD",
     "timezone": "America/Chicago", "address": "1200 Barton Springs Rd, Austin, TX"},
]

# The clinics' approval rules (a contract the demo and integrators rely on), tried in order:
# (approvers, from, up to, reasons). MUSCAT: a refund or credit under 5.000 OMR is carried out
# directly, from 5.000 up to 100.000 needs one approver, above 100.000 two, and "Duplicate
# charge" needs at least one whatever the amount; cancellations need one. AUSTIN: direct.
APPROVAL_RULES = {
    ("MUSCAT", RequestKind.REFUND): [
        (Approvers.ONE, None, "100.000", ["Duplicate charge"]),
        (Approvers.NONE, None, "4.999", []),
        (Approvers.ONE, "5.000", "100.000", []),
        (Approvers.TWO, "100.001", None, []),
    ],
    ("MUSCAT", RequestKind.CANCELLATION): [(Approvers.ONE, None, None, [])],
    ("AUSTIN", RequestKind.REFUND): [(Approvers.NONE, None, None, [])],
    ("AUSTIN", RequestKind.CANCELLATION): [(Approvers.NONE, None, None, [])],
}

# username: (first name, last name, group or None for superuser, clinic codes)
USERS = {
    "clerk": ("Maryam", "Al-Hinai", roles.BILLING_STAFF, ["MUSCAT", "AUSTIN"]),
    "clerk2": ("Daniel", "Reyes", roles.BILLING_STAFF, ["MUSCAT", "AUSTIN"]),
    "approver": ("Salim", "Al-Rawahi", roles.FINANCIAL_APPROVERS, ["MUSCAT", "AUSTIN"]),
    "austin_clerk": ("Emily", "Carter", roles.BILLING_STAFF, ["AUSTIN"]),
    "admin": ("Billing", "Administrator", None, ["MUSCAT", "AUSTIN"]),
}

DISPUTE_REASONS = ["Billing error", "Duplicate charge", "Service not rendered",
                   "Patient dissatisfaction", "Insurance adjustment"]

# code, name, price in each clinic's currency, taxed (VAT 5%) or exempt
SERVICES = [
    ("GP-CONS", "General consultation", {"OMR": "15.000", "USD": "120.00"}, True),
    ("SP-CONS", "Specialist consultation", {"OMR": "35.000", "USD": "240.00"}, True),
    ("FOLLOW", "Follow-up visit", {"OMR": "8.500", "USD": "75.00"}, True),
    ("CBC", "Complete blood count", {"OMR": "6.750", "USD": "38.50"}, True),
    ("LIPID", "Lipid panel", {"OMR": "9.125", "USD": "52.25"}, True),
    ("XR-CHEST", "Chest X-ray", {"OMR": "22.000", "USD": "165.00"}, True),
    ("US-ABD", "Abdominal ultrasound", {"OMR": "40.000", "USD": "310.00"}, True),
    ("ECG", "Electrocardiogram (ECG)", {"OMR": "12.333", "USD": "89.99"}, True),
    ("PHYSIO", "Physiotherapy session", {"OMR": "18.000", "USD": "110.00"}, True),
    ("DENT-CLN", "Dental cleaning", {"OMR": "25.000", "USD": "145.00"}, True),
    ("VACC-FLU", "Influenza vaccination", {"OMR": "7.000", "USD": "45.00"}, False),
    ("DRESS", "Wound dressing", {"OMR": "4.125", "USD": "32.50"}, True),
]

PATIENTS = {
    "MUSCAT": ["Aisha Al-Balushi", "Mohammed Al-Harthy", "Fatma Al-Siyabi", "Khalid Al-Lawati",
               "Noor Al-Zadjali", "Said Al-Mahrouqi", "Huda Al-Kindi", "Ahmed Al-Busaidi",
               "Zainab Al-Farsi", "Yousuf Al-Amri", "Maha Al-Hosni", "Hamad Al-Shukaili"],
    "AUSTIN": ["Olivia Martinez", "James Thompson", "Sophia Nguyen", "Michael Johnson",
               "Ava Williams", "Ethan Brown", "Isabella Garcia", "Noah Davis",
               "Mia Robinson", "Liam Walker", "Charlotte Hall", "Benjamin Lee"],
}

INVOICES_PER_CLINIC = 30
# how the demo invoices of each clinic end up: (state, how many)
INVOICE_PLAN = [("draft", 4), ("issued", 8), ("partially_paid", 6), ("paid", 12)]


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        if n:
            self.created[what] = self.created.get(what, 0) + n


def seed_demo(*, password: str | None = None) -> SeedReport:
    report = SeedReport()
    with transaction.atomic():
        clinics = {spec["code"]: _clinic(spec, report) for spec in CLINICS}
        for name in DISPUTE_REASONS:
            _, made = DisputeReason.objects.get_or_create(name=name)
            report.count("dispute reasons", made)
        users = {name: _user(name, spec, clinics, password, report)
                 for name, spec in USERS.items()}
        for (code, kind), rules in APPROVAL_RULES.items():
            _approval_rules(clinics[code], kind, rules, report)
        for clinic in clinics.values():
            _catalogue(clinic, report)
            _invoices(clinic, users, report)
            _refund_scenarios(clinic, users, report)
            _request_scenarios(clinic, users, report)
    return report


def _clinic(spec: dict, report: SeedReport) -> Clinic:
    clinic, made = Clinic.objects.get_or_create(code=spec["code"], defaults=spec)
    report.count("clinics", made)
    return clinic


def _approval_rules(clinic: Clinic, kind: str, rules, report: SeedReport) -> None:
    """Set the rules unless the clinic has rules of this kind an administrator wrote (or the
    migration made from its old policy and the demo has since replaced)."""
    wanted = [RuleSpec(approvers, D(low) if low else None, D(high) if high else None,
                       tuple(DisputeReason.objects.get_or_create(name=name)[0]
                             for name in reasons))
              for approvers, low, high, reasons in rules]
    existing = [RuleSpec(rule.approvers, rule.amount_from, rule.amount_up_to,
                         tuple(rule.reasons.all()))
                for rule in ApprovalRule.objects.filter(clinic=clinic, kind=kind)
                .order_by("position").prefetch_related("reasons")]
    if existing != wanted:
        approval_rules_set(clinic=clinic, kind=kind, rules=wanted)
        report.count("approval rules", len(wanted))


def _user(username, spec, clinics, password, report) -> User:
    first, last, group, clinic_codes = spec
    user, made = User.objects.get_or_create(
        username=username,
        defaults={"first_name": first, "last_name": last,
                  "email": f"{username}@clinic.example", "is_staff": group is None,
                  "is_superuser": group is None},
    )
    if made or password:
        chosen = password or secrets.token_urlsafe(9)
        if made or not user.check_password(chosen):
            user.set_password(chosen)
            user.save(update_fields=["password"])
        if made:
            report.passwords[username] = chosen
    report.count("users", made)
    if group:
        user.groups.add(Group.objects.get(name=group))
    for code in clinic_codes:
        clinics[code].members.add(user)
    return user


def _catalogue(clinic: Clinic, report: SeedReport) -> None:
    vat, made = TaxRate.objects.get_or_create(clinic=clinic, name="VAT 5%",
                                              defaults={"percentage": D("5")})
    report.count("tax rates", made)
    exempt, made = TaxRate.objects.get_or_create(clinic=clinic, name="Exempt",
                                                 defaults={"percentage": D("0")})
    report.count("tax rates", made)
    for code, name, prices, taxed in SERVICES:
        _, made = Service.objects.get_or_create(
            clinic=clinic, code=code,
            defaults={"name": name, "unit_price": D(prices[clinic.currency]),
                      "tax_rate": vat if taxed else exempt},
        )
        report.count("services", made)
    for name, kind, gateway in [("Cash", PaymentMethodKind.MANUAL, ""),
                                ("Card terminal", PaymentMethodKind.MANUAL, ""),
                                ("Bank transfer", PaymentMethodKind.MANUAL, ""),
                                ("Online card", PaymentMethodKind.GATEWAY, "sandbox")]:
        _, made = PaymentMethod.objects.get_or_create(
            clinic=clinic, name=name, defaults={"kind": kind, "gateway": gateway}
        )
        report.count("payment methods", made)


def _invoices(clinic: Clinic, users: dict[str, User], report: SeedReport) -> None:
    if Invoice.objects.filter(clinic=clinic).exists():
        return  # demo invoices were made on an earlier run
    rng = random.Random(f"demo-{clinic.code}")  # noqa: S311 - demo data, not security
    staff = [users["clerk"], users["clerk2"]] + (
        [users["austin_clerk"]] if clinic.code == "AUSTIN" else []
    )
    accounts = []
    for n, name in enumerate(PATIENTS[clinic.code], start=1):
        account, made = Account.objects.get_or_create(
            clinic=clinic, number=f"{clinic.code[:3]}-{n:05d}",
            defaults={"name": name, "phone": f"+{rng.randint(10**9, 10**10 - 1)}"},
        )
        report.count("accounts", made)
        accounts.append(account)
    services = list(Service.objects.filter(clinic=clinic).select_related("tax_rate"))
    methods = {m.name: m for m in PaymentMethod.objects.filter(clinic=clinic)}
    today = timezone.now().date()

    plan = [state for state, n in INVOICE_PLAN for _ in range(n)]
    rng.shuffle(plan)
    # issue oldest first so numbers follow issue dates
    ages = sorted((rng.randint(1, 120) for _ in plan), reverse=True)
    for state, age in zip(plan, ages, strict=True):
        actor = rng.choice(staff)
        lines = [LineInput(service=service, quantity=D(rng.choice(["1", "1", "1", "2", "3"])))
                 for service in rng.sample(services, rng.randint(1, 4))]
        invoice = invoice_create(clinic=clinic, account=rng.choice(accounts), lines=lines,
                                 actor=actor)
        report.count("invoices")
        if state == "draft":
            continue
        issued_on = today - datetime.timedelta(days=age)
        invoice = invoice_issue(invoice=invoice, actor=actor, issue_date=issued_on)
        if state == "issued":
            continue
        method = methods[rng.choice(["Cash", "Card terminal", "Bank transfer", "Online card"])]
        received = timezone.make_aware(
            datetime.datetime.combine(issued_on, datetime.time(9 + rng.randint(0, 8), 15))
        )
        if state == "paid":
            amount = invoice.balance_due
        else:
            share = D(rng.choice(["0.25", "0.4", "0.5", "0.6"]))
            amount = max(quantum(clinic.currency), (invoice.total * share).quantize(
                quantum(clinic.currency)))
        reference = f"ch_demo_{rng.getrandbits(48):012x}" if method.is_gateway else (
            f"RCPT-{rng.randint(10000, 99999)}" if method.name == "Cash" else ""
        )
        payment_record(invoice=invoice, method=method, amount=amount, actor=actor,
                       reference=reference, received_at=received)
        report.count("payments")


# Refunds, credits and cancellations: (story, how it is paid, what happens next)
REFUND_SCENARIOS = [
    ("cash, one line partly refunded, payout awaiting", ("Cash", "RCPT-"), "refund_line"),
    ("cash, one line refunded and paid out", ("Cash", "RCPT-"), "refund_line_paid_out"),
    ("card terminal, fully refunded and paid out", ("Card terminal", ""), "full_refund_paid_out"),
    ("online card, fully refunded through the gateway", ("Online card", "ch_demo_"), "full_refund"),
    ("online card, gateway refund declined", ("Online card", "fail_demo_"), "full_refund"),
    ("online card, gateway refund still pending", ("Online card", "pending_demo_"), "full_refund"),
    ("mostly paid in cash, largest line credited beyond the balance", ("Cash", "part"),
     "credit_largest"),
    ("unpaid, one line credited", (None, ""), "credit_line"),
    ("unpaid, every line credited", (None, ""), "credit_all"),
    ("unpaid, cancelled", (None, ""), "cancel"),
    ("unpaid, cancelled after a partial credit", (None, ""), "credit_then_cancel"),
]


def _refund_scenarios(clinic: Clinic, users: dict[str, User], report: SeedReport) -> None:
    if CreditNote.objects.filter(clinic=clinic).exists():
        return  # made on an earlier run
    rng = random.Random(f"demo-refunds-{clinic.code}")  # noqa: S311 - demo data
    actor = users["clerk"]
    approve = partial(_approved, clinic=clinic, requester=actor,
                      approvers=[users["approver"], users["admin"]])
    accounts = list(Account.objects.filter(clinic=clinic).order_by("number"))
    services = list(Service.objects.filter(clinic=clinic).order_by("code"))
    reasons = list(DisputeReason.objects.filter(name__in=DISPUTE_REASONS).order_by("name"))
    today = timezone.now().date()
    for n, (_story, (method_name, reference), outcome) in enumerate(REFUND_SCENARIOS):
        lines = [LineInput(service=service, quantity=D("1"))
                 for service in rng.sample(services, 3)]
        invoice = invoice_create(clinic=clinic, account=accounts[n % len(accounts)],
                                 lines=lines, actor=actor)
        invoice = invoice_issue(invoice=invoice, actor=actor,
                                issue_date=today - datetime.timedelta(days=20 - n))
        report.count("invoices")
        if method_name:
            method = PaymentMethod.objects.get(clinic=clinic, name=method_name)
            amount = invoice.total
            if reference == "part":
                amount = (invoice.total * D("0.8")).quantize(quantum(clinic.currency))
                reference = ""
            payment_record(
                invoice=invoice, method=method, amount=amount, actor=actor,
                reference=f"{reference}{rng.getrandbits(40):010x}" if reference else "",
                received_at=timezone.make_aware(datetime.datetime.combine(
                    invoice.issue_date, datetime.time(11, 30))),
            )
            report.count("payments")
        first_line = invoice.lines.order_by("position").first()
        reason = reasons[n % len(reasons)]
        kind = "cancellation" if "cancel" in outcome else "refund"
        if outcome == "credit_then_cancel":
            credit_note_create(invoice=invoice, lines=[CreditLineInput(first_line)],
                               dispute_reason=reason, actor=actor, remarks="Billed twice.",
                               approval_request=approve(invoice, "refund", "Billed twice.",
                                                        reason=reason))
            report.count("credit notes")
        request = approve(invoice, kind, _STORIES[outcome],
                          reason=reason if kind == "refund" else None)
        if outcome in ("refund_line", "refund_line_paid_out"):
            note = credit_note_create(
                invoice=invoice, lines=[CreditLineInput(first_line, (first_line.net / 2).quantize(
                    quantum(clinic.currency)))],
                dispute_reason=reason, actor=actor, remarks="Part of the visit was not done.",
                approval_request=request)
        elif outcome in ("full_refund", "full_refund_paid_out"):
            note = credit_note_create(invoice=invoice, full=True, dispute_reason=reason,
                                      actor=actor, remarks="Patient asked for a refund.",
                                      approval_request=request)
        elif outcome == "credit_largest":
            largest = invoice.lines.order_by("-total").first()
            note = credit_note_create(invoice=invoice, lines=[CreditLineInput(largest)],
                                      dispute_reason=reason, actor=actor,
                                      remarks="Charged at the wrong rate.",
                                      approval_request=request)
        elif outcome == "credit_line":
            note = credit_note_create(invoice=invoice, lines=[CreditLineInput(first_line)],
                                      dispute_reason=reason, actor=actor,
                                      remarks="Service not provided.",
                                      approval_request=request)
        elif outcome == "credit_all":
            note = credit_note_create(invoice=invoice,
                                      lines=[CreditLineInput(line) for line in invoice.lines.all()],
                                      dispute_reason=reason, actor=actor,
                                      remarks="Covered by the clinic's goodwill policy.",
                                      approval_request=request)
        elif outcome == "credit_then_cancel":
            note = invoice_cancel(invoice=invoice, actor=actor,
                                  remarks="Visit cancelled by the patient.",
                                  approval_request=request)
        else:
            note = invoice_cancel(invoice=invoice, actor=actor,
                                  remarks="Invoice raised for the wrong patient.",
                                  approval_request=request)
        report.count("credit notes")
        if outcome.endswith("_paid_out"):
            for refund in note.refunds.all():
                refund_mark_paid_out(refund=refund, actor=actor,
                                     remarks="Paid back at the front desk.")


_STORIES = {
    "refund_line": "Part of the visit was not done; refund that part.",
    "refund_line_paid_out": "Part of the visit was not done; refund that part.",
    "full_refund": "Patient asked for a full refund.",
    "full_refund_paid_out": "Patient asked for a full refund.",
    "credit_largest": "Charged at the wrong rate.",
    "credit_line": "Service not provided.",
    "credit_all": "Covered by the clinic's goodwill policy.",
    "cancel": "Invoice raised for the wrong patient.",
    "credit_then_cancel": "Visit cancelled by the patient.",
}


def _approved(invoice, kind, remarks, *, clinic, requester, approvers, reason=None):
    """Where the clinic's rules need approval for the whole of what is left on the invoice: the
    request, approved by as many approvers as it needs. None where none is needed."""
    invoice.refresh_from_db()
    amount = invoice.total - invoice.amount_credited
    if not approvers_needed(clinic, kind, amount=amount, reason=reason):
        return None
    if kind == "refund":
        financial_request = refund_request_create(invoice=invoice, remarks=remarks,
                                                  actor=requester, dispute_reason=reason)
    else:
        financial_request = cancellation_request_create(invoice=invoice, remarks=remarks,
                                                        actor=requester)
    for approver in approvers[:financial_request.approvals_needed]:
        financial_request = request_approve(financial_request=financial_request,
                                            actor=approver, remarks="Checked with the patient.")
    return financial_request


# Requests still open or turned down, on invoices of their own: (kind, status, requester, story)
REQUEST_SCENARIOS = [
    ("refund", "requested", "clerk", "Patient was charged twice for the blood test."),
    ("refund", "requested", "clerk2", "X-ray repeated because of a technical fault."),
    ("cancellation", "requested", "clerk2", "Appointment was booked for the wrong patient."),
    ("refund", "approved", "clerk", "Insurance covered the consultation after all."),
    ("cancellation", "approved", "clerk", "Visit did not take place."),
    ("refund", "rejected", "clerk2", "Patient unhappy with waiting time."),
    ("cancellation", "rejected", "clerk", "Patient wants to pay later."),
    ("refund", "withdrawn", "clerk2", "Refund of the dressing — patient found the receipt."),
]


def _request_scenarios(clinic: Clinic, users: dict[str, User], report: SeedReport) -> None:
    if not (may_need_approval(clinic, RequestKind.REFUND)
            or may_need_approval(clinic, RequestKind.CANCELLATION)):
        return
    if FinancialRequest.objects.filter(
        clinic=clinic, status__in=["requested", "rejected", "withdrawn"]
    ).exists():
        return  # made on an earlier run
    rng = random.Random(f"demo-requests-{clinic.code}")  # noqa: S311 - demo data
    accounts = list(Account.objects.filter(clinic=clinic).order_by("-number"))
    services = list(Service.objects.filter(clinic=clinic).order_by("code"))
    cash = PaymentMethod.objects.get(clinic=clinic, name="Cash")
    duplicate = DisputeReason.objects.get(name="Duplicate charge")
    approver = users["approver"]
    today = timezone.now().date()
    for n, (kind, status, requester_name, story) in enumerate(REQUEST_SCENARIOS):
        requester = users[requester_name]
        invoice = invoice_create(
            clinic=clinic, account=accounts[n % len(accounts)], actor=requester,
            lines=[LineInput(service=s, quantity=D("1")) for s in rng.sample(services, 2)],
        )
        invoice = invoice_issue(invoice=invoice, actor=requester,
                                issue_date=today - datetime.timedelta(days=8 - n))
        report.count("invoices")
        if kind == "refund":
            payment_record(invoice=invoice, method=cash, amount=invoice.total, actor=requester,
                           reference=f"RCPT-{rng.randint(10000, 99999)}",
                           received_at=timezone.make_aware(datetime.datetime.combine(
                               invoice.issue_date, datetime.time(10, 0))))
            report.count("payments")
            line = invoice.lines.order_by("position").first()
            # "Duplicate charge" needs an approver whatever the amount (APPROVAL_RULES)
            request = refund_request_create(invoice=invoice, remarks=story, actor=requester,
                                            lines=[CreditLineInput(line)] if n % 2 else None,
                                            dispute_reason=duplicate)
        else:
            request = cancellation_request_create(invoice=invoice, remarks=story,
                                                  actor=requester)
        if status == "approved":
            for decider in [approver, users["admin"]][:request.approvals_needed]:
                request = request_approve(financial_request=request, actor=decider,
                                          remarks="Approved.")
        elif status == "rejected":
            request_reject(financial_request=request, actor=approver,
                           remarks="Not covered by the clinic's refund policy.")
        elif status == "withdrawn":
            request_withdraw(financial_request=request, actor=requester)
        report.count("requests")
