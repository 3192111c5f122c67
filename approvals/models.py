from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django_fsm import FSMField, FSMModelMixin, transition

from billing.models import Clinic, Invoice, InvoiceLine, MoneyField
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
