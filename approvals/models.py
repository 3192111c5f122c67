from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django_fsm import FSMField, FSMModelMixin, transition

from billing.models import Clinic, DisputeReason, Invoice, InvoiceLine, MoneyField
from billing.money import format_money, has_currency_places, minor_units
from billing.text import REMARKS_MAX_LENGTH


class RequestKind(models.TextChoices):
    REFUND = "refund", "Invoice Refund Request"
    CANCELLATION = "cancellation", "Invoice Cancellation Request"


class RequestStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    COMPLETED = "completed", "Completed"
    # approved, but not carried out within the clinic's approval_expiry_days; no longer open,
    # so the invoice is free for a new request
    EXPIRED = "expired", "Expired"


OPEN_STATUSES = [RequestStatus.REQUESTED, RequestStatus.APPROVED]


class FinancialRequest(FSMModelMixin, models.Model):
    """An Invoice Refund or Cancellation Request, for clinics whose policy needs approval.
    Someone other than the requester decides it; carrying it out consumes it (`completed`).
    The credit note it authorised points back at it (CreditNote.approval_request)."""

    Kind = RequestKind
    Status = RequestStatus

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="requests")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="requests")
    kind = models.CharField(max_length=20, choices=RequestKind)
    status = FSMField(max_length=20, choices=RequestStatus, default=RequestStatus.REQUESTED,
                      protected=True)
    remarks = models.TextField(max_length=REMARKS_MAX_LENGTH)
    # the dispute reason a refund request is for: the clinic's approval rules may depend on it
    dispute_reason = models.ForeignKey(DisputeReason, null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="+")
    # how many different approvers must approve it, from the clinic's rule when it was submitted
    approvals_needed = models.PositiveSmallIntegerField(default=1)
    # what the approvers approve: the credit note's breakdown when the request was submitted (or
    # last confirmed): lines, net, tax, total, the part reducing the balance, the part paid back
    # and to which payments (billing.breakdown.Breakdown.frozen)
    frozen_breakdown = models.JSONField(null=True, blank=True, editable=False)
    frozen_total = MoneyField(null=True, blank=True, editable=False)
    # the invoice changed so that the breakdown would differ: its approvers confirm the new one
    # in a new round of approvals before it can be carried out
    stale = models.BooleanField(default=False)
    approval_round = models.PositiveSmallIntegerField(default=1)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="financial_requests"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_remarks = models.TextField(max_length=REMARKS_MAX_LENGTH, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    # set on approval (decided_at + the clinic's approval_expiry_days); approvals/housekeeping.py
    # expires it after that, and reminds or escalates a request left waiting
    expires_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        permissions = [("approve_financialrequest", "Can approve or reject financial requests")]
        indexes = [
            models.Index(fields=["clinic", "status"]),  # the queue's counts per status
            models.Index(fields=["-requested_at", "-id"], name="request_newest_idx"),
            # the queue filtered by status, and Home's "waiting for your decision" (by age)
            models.Index(fields=["status", "-requested_at", "-id"],
                         name="request_status_newest_idx"),
            models.Index(fields=["requested_by", "-decided_at", "-id"],
                         condition=Q(status__in=[RequestStatus.APPROVED, RequestStatus.REJECTED]),
                         name="request_decided_mine_idx"),
            # the expiry job: approved requests past their expiry (the reminder job walks the
            # waiting ones by age through request_status_newest_idx)
            models.Index(fields=["expires_at"], condition=Q(status=RequestStatus.APPROVED),
                         name="request_approved_expiry_idx"),
            # (the queue by amount: PostgreSQL indexes of migration 0009, which SQLite cannot
            # express)
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "kind"], condition=Q(status__in=OPEN_STATUSES),
                name="one_open_request_per_invoice_and_kind",
                violation_error_message="This invoice already has an open request of this kind.",
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="request_not_decided_by_requester",
            ),
            models.CheckConstraint(condition=~Q(remarks=""), name="request_remarks_required"),
            models.CheckConstraint(condition=Q(approvals_needed__in=[1, 2]),
                                   name="request_one_or_two_approvers"),
            models.CheckConstraint(
                condition=~Q(status=RequestStatus.REJECTED) | ~Q(decision_remarks=""),
                name="request_rejection_has_remarks",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    # -- transitions: guards and the new state only; services lock, save and audit -------------

    @transition(field=status, source=RequestStatus.REQUESTED, target=RequestStatus.APPROVED,
                custom={"admin": False})
    def approve(self):
        pass

    @transition(field=status, source=RequestStatus.REQUESTED, target=RequestStatus.REJECTED,
                custom={"admin": False})
    def reject(self):
        pass

    @transition(field=status, source=RequestStatus.REQUESTED, target=RequestStatus.WITHDRAWN,
                custom={"admin": False})
    def withdraw(self):
        pass

    @transition(field=status, source=RequestStatus.APPROVED, target=RequestStatus.COMPLETED,
                custom={"admin": False})
    def complete(self):
        pass

    @transition(field=status, source=RequestStatus.APPROVED, target=RequestStatus.EXPIRED,
                custom={"admin": False})
    def expire(self):
        pass

    @transition(field=status, source=[RequestStatus.REQUESTED, RequestStatus.APPROVED],
                target=RequestStatus.REQUESTED, custom={"admin": False})
    def go_stale(self):
        """The invoice changed so that the breakdown would differ: approved afresh."""

    @property
    def days_to_carry_out(self) -> int | None:
        """The days an approved request was given to be carried out before it expires."""
        if self.expires_at is None or self.decided_at is None:
            return None
        return round((self.expires_at - self.decided_at).total_seconds() / 86400)


class FinancialRequestLine(models.Model):
    """A line and amount (without tax) a refund request proposes; the approver approves exactly
    these, and the refund carried out may not exceed them."""

    request = models.ForeignKey(FinancialRequest, on_delete=models.CASCADE, related_name="lines")
    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="+")
    amount = MoneyField()

    class Meta:
        ordering = ["request", "invoice_line__position", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="request_line_amount_positive"),
            models.UniqueConstraint(fields=["request", "invoice_line"],
                                    name="request_line_once_per_line"),
        ]

    def __str__(self):
        return f"{self.invoice_line.description}: {self.amount}"


class Approvers(models.TextChoices):
    """What an approval rule asks for the actions it matches."""

    NONE = "none", "None: carried out directly"
    ONE = "one", "One approver"
    TWO = "two", "Two different approvers"


APPROVERS_NEEDED = {Approvers.NONE: 0, Approvers.ONE: 1, Approvers.TWO: 2}
APPROVERS_WORDS = {Approvers.NONE: "no approval", Approvers.ONE: "one approver",
                   Approvers.TWO: "two approvers"}


class ApprovalRule(models.Model):
    """One of a clinic's ordered rules for a kind of action (refund or credit, cancellation):
    the first whose amount range and reasons match the action decides how many approvers it
    needs. The amount is the total of the credit note the action would produce, in the clinic's
    currency; both ends of the range are included ("from 5.000 up to 100.000"), and a missing
    end is open. Without reasons a rule matches any reason; with reasons, only actions carrying
    one of them (a cancellation carries its own, "Invoice cancelled")."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="approval_rules")
    kind = models.CharField(max_length=20, choices=RequestKind)
    position = models.PositiveSmallIntegerField(
        help_text="Rules are tried in this order, lowest first; the first that matches decides.")
    amount_from = MoneyField(
        null=True, blank=True, verbose_name="from (total, included)",
        help_text="Matches credit notes of at least this total. Empty: no lower limit.")
    amount_up_to = MoneyField(
        null=True, blank=True, verbose_name="up to (total, included)",
        help_text="Matches credit notes of at most this total. Empty: no upper limit.")
    reasons = models.ManyToManyField(
        DisputeReason, blank=True, related_name="+",
        help_text="Matches only these dispute reasons. Empty: any reason.")
    approvers = models.CharField(max_length=10, choices=Approvers, verbose_name="needs")

    class Meta:
        ordering = ["clinic", "kind", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "kind", "position"],
                                    name="approval_rule_position_unique",
                                    violation_error_message="Another rule has this position."),
            models.CheckConstraint(
                condition=Q(amount_from__isnull=True) | Q(amount_from__gte=0),
                name="approval_rule_from_not_negative",
                violation_error_message="The lower limit cannot be negative."),
            models.CheckConstraint(
                condition=(Q(amount_from__isnull=True) | Q(amount_up_to__isnull=True)
                           | Q(amount_up_to__gte=F("amount_from"))),
                name="approval_rule_range_ordered",
                violation_error_message="“Up to” must not be below “from”."),
            models.CheckConstraint(condition=Q(approvers__in=Approvers.values),
                                   name="approval_rule_approvers_valid"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} rule {self.position}: {self.describe()}"

    def clean(self):
        if self.clinic_id is None:
            return
        currency = self.clinic.currency
        errors = {
            name: f"{currency} amounts have {minor_units(currency)} decimals at most."
            for name in ["amount_from", "amount_up_to"]
            if getattr(self, name) is not None
            and not has_currency_places(getattr(self, name), currency)
        }
        if errors:
            raise ValidationError(errors)

    @property
    def approvers_needed(self) -> int:
        return APPROVERS_NEEDED[self.approvers]

    @property
    def matches_everything(self) -> bool:
        return (not self.amount_from and self.amount_up_to is None
                and not self.reasons.all())

    def matches(self, *, amount: Decimal, reason: DisputeReason | None) -> bool:
        if self.amount_from is not None and amount < self.amount_from:
            return False
        if self.amount_up_to is not None and amount > self.amount_up_to:
            return False
        reasons = self.reasons.all()  # prefetched by the lookup
        return not reasons or (reason is not None and reason in reasons)

    def describe(self) -> str:
        """'from 5.000 OMR up to 100.000 OMR, for Duplicate charge: one approver'."""
        currency = self.clinic.currency
        parts = []
        if self.amount_from is not None:
            parts.append(f"from {format_money(self.amount_from, currency)}")
        if self.amount_up_to is not None:
            parts.append(f"up to {format_money(self.amount_up_to, currency)}")
        reasons = [reason.name for reason in self.reasons.all()]
        if reasons:
            parts.append("for " + " or ".join(reasons))
        scope = " ".join(parts) if parts else "any amount"
        return f"{scope}: {APPROVERS_WORDS[self.approvers]}"


class RequestApproval(models.Model):
    """One approver's approval of a request. A request needing two stays requested after the
    first; the database itself refuses the same approver twice and the requester."""

    request = models.ForeignKey(FinancialRequest, on_delete=models.CASCADE,
                                related_name="approvals")
    # approvals count per round: a request whose breakdown went stale is approved afresh
    round = models.PositiveSmallIntegerField(default=1)
    step = models.PositiveSmallIntegerField()  # 1, then 2
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    # the request's requester, copied so the database can refuse them as an approver
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    approved_at = models.DateTimeField()
    remarks = models.TextField(max_length=REMARKS_MAX_LENGTH, blank=True)

    class Meta:
        ordering = ["request", "round", "step"]
        constraints = [
            models.UniqueConstraint(fields=["request", "round", "step"],
                                    name="request_approval_step_once",
                                    violation_error_message="This step is approved already."),
            models.UniqueConstraint(
                fields=["request", "round", "approved_by"],
                name="request_approval_once_per_approver",
                violation_error_message="Each approval must come from a different approver."),
            models.CheckConstraint(condition=~Q(approved_by=F("requested_by")),
                                   name="request_approval_not_by_requester"),
            models.CheckConstraint(condition=Q(step__in=[1, 2]), name="request_approval_step"),
        ]

    def __str__(self):
        return f"{self.request} approval {self.step}"
