"""Reads for the Financial Approval screens. Every query starts from `visible_to`, so a user sees
only the requests of their clinics."""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from audit.models import AuditEvent
from billing.models import Invoice
from billing.selectors import spellings, visible_to

from .models import OPEN_STATUSES, FinancialRequest, RequestApproval, RequestKind, RequestStatus
from .rules import APPROVE_PERMISSION


def with_awaiting_approval(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Each invoice carries `awaiting_approval`: a request on it waits for a decision."""
    return invoices.annotate(awaiting_approval=Exists(FinancialRequest.objects.filter(
        invoice=OuterRef("pk"), status=RequestStatus.REQUESTED)))


def with_open_request_states(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Each invoice carries `awaiting_approval` (a request on it waits for a decision) and
    `approved_not_carried_out` (a request on it was approved and nobody has carried it out
    yet): one EXISTS each, so a list shows both badges without a query per row."""
    return with_awaiting_approval(invoices).annotate(
        approved_not_carried_out=Exists(FinancialRequest.objects.filter(
            invoice=OuterRef("pk"), status=RequestStatus.APPROVED)))


def requests_for_user(*, user) -> QuerySet[FinancialRequest]:
    """Every request of the user's clinics, newest first, with what a list row shows."""
    return visible_to(FinancialRequest.objects.all(), user=user).select_related(
        "clinic", "invoice", "invoice__account", "requested_by", "decided_by",
    ).order_by("-requested_at", "-pk")


# The queue's orders: {value: (label, ordering)}. An old request frozen no breakdown (its
# amount is unknown): it comes after those with an amount, either way round.
REQUEST_SORTS = {
    "newest": ("Newest first", ("-requested_at", "-pk")),
    "oldest": ("Oldest first", ("requested_at", "pk")),
    "largest": ("Largest amount first", (F("frozen_total").desc(nulls_last=True), "-pk")),
    "smallest": ("Smallest amount first", (F("frozen_total").asc(nulls_last=True), "pk")),
}
DEFAULT_SORT = "newest"


def _filtered(requests: QuerySet, *, user, date_from: datetime.date | None,
              date_to: datetime.date | None, search: str, kind: str = "",
              clinic_id: int | None = None) -> QuerySet:
    if kind:
        requests = requests.filter(kind=kind)
    if clinic_id:
        # one of the user's own clinics (the filter form offers no other): `requests` already
        # starts from the user's clinics, so another id finds nothing
        requests = requests.filter(clinic_id=clinic_id)
    if date_from:
        requests = requests.filter(requested_at__date__gte=date_from)
    if date_to:
        requests = requests.filter(requested_at__date__lte=date_to)
    if search := (search or "").strip():
        # A whole invoice number (one per clinic at most) is found through its unique index; a
        # fragment is checked on the requests' own invoices (a queue holds far fewer requests
        # than the ledger holds invoices).
        whole = list(visible_to(Invoice.objects.all(), user=user)
                     .filter(number__in=spellings(search)).values_list("pk", flat=True))
        requests = requests.filter(invoice__in=whole) if whole else requests.filter(
            invoice__number__icontains=search)
    return requests


def request_search(*, user, status: str = "", date_from: datetime.date | None = None,
                   date_to: datetime.date | None = None, search: str = "", kind: str = "",
                   clinic_id: int | None = None,
                   sort: str = DEFAULT_SORT) -> QuerySet[FinancialRequest]:
    """The queue: by status, kind, clinic (one of the user's), requested date (inclusive, in the
    site's time zone) and invoice number; newest first unless `sort` says otherwise
    (REQUEST_SORTS)."""
    requests = _filtered(requests_for_user(user=user), user=user, date_from=date_from,
                         date_to=date_to, search=search, kind=kind, clinic_id=clinic_id)
    if status:
        requests = requests.filter(status=status)
    _, ordering = REQUEST_SORTS.get(sort or DEFAULT_SORT, REQUEST_SORTS[DEFAULT_SORT])
    # "1 of 2 approvals" and whether the user may decide, on every row
    return requests.order_by(*ordering).prefetch_related("approvals")


def request_export(*, user, **filters) -> QuerySet[FinancialRequest]:
    """The queue's requests as request_search finds them, for a CSV export: each carries
    `approvals_given` (its approvals in the current round) instead of the prefetched approvals,
    so the export is one query however many rows it has, and can be read in chunks."""
    given = (RequestApproval.objects.filter(request=OuterRef("pk"),
                                            round=OuterRef("approval_round"))
             .order_by().values("request").annotate(n=Count("pk")).values("n"))
    return (request_search(user=user, **filters).prefetch_related(None)
            .annotate(approvals_given=Coalesce(Subquery(given), 0)))


def request_counts_by_status(*, user, date_from: datetime.date | None = None,
                             date_to: datetime.date | None = None, search: str = "",
                             kind: str = "", clinic_id: int | None = None) -> dict[str, int]:
    """{status: how many} over the user's clinics, after the kind, clinic, date and invoice
    filters; every status is present, with 0 when none."""
    requests = _filtered(visible_to(FinancialRequest.objects.all(), user=user), user=user,
                         date_from=date_from, date_to=date_to, search=search, kind=kind,
                         clinic_id=clinic_id)
    counts = dict(requests.order_by().values_list("status").annotate(n=Count("pk")))
    return {status: counts.get(status, 0) for status in RequestStatus.values}


# Permissions are Django's own (the log-in lockout backend in front of it holds none).
PERMISSIONS_BACKEND = "django.contrib.auth.backends.ModelBackend"


def requests_awaiting(*, user) -> QuerySet[FinancialRequest]:
    """Requests waiting for a decision that this user may take: a member of the clinic holding
    the approval permission, who did not submit them. One query: the permission is checked by
    the authentication backend's own SQL (`with_perm`)."""
    if not (user and user.is_authenticated):
        return FinancialRequest.objects.none()
    holds_permission = get_user_model().objects.with_perm(
        APPROVE_PERMISSION, backend=PERMISSIONS_BACKEND).filter(pk=user.pk)
    return (
        requests_for_user(user=user)
        .filter(status=RequestStatus.REQUESTED)
        .exclude(requested_by=user)
        .exclude(Exists(RequestApproval.objects.filter(request=OuterRef("pk"),
                                                       approved_by=user)))
        .filter(Exists(holds_permission))
    )


def request_get_for_user(*, user, pk) -> FinancialRequest:
    """The request, or 404 when it does not exist or belongs to a clinic the user is not in."""
    try:
        return requests_for_user(user=user).get(pk=pk)
    except (FinancialRequest.DoesNotExist, ValueError, TypeError):
        raise Http404("No such request in your clinics.") from None


def request_history(*, financial_request: FinancialRequest) -> list[AuditEvent]:
    """The request's audit events (submitted, decided, withdrawn, completed), oldest first."""
    return list(
        AuditEvent.objects.filter(
            content_type__app_label="approvals", content_type__model="financialrequest",
            object_id=str(financial_request.pk),
        ).select_related("actor").order_by("occurred_at", "pk")
    )


def my_decided_requests(*, user, limit: int = 10) -> list[FinancialRequest]:
    """The user's own requests that were approved or rejected, latest decision first."""
    return list(requests_for_user(user=user).filter(
        requested_by=user, status__in=[RequestStatus.APPROVED, RequestStatus.REJECTED],
    ).order_by("-decided_at", "-pk")[:limit])


def approved_request_lines(*, invoice: Invoice) -> dict[int, Decimal]:
    """{line id: amount without tax} of the invoice's approved refund request, if the request
    proposed lines: only those lines can be credited, each up to its amount, so the refund form
    starts from exactly what was approved and says so."""
    approved = FinancialRequest.objects.filter(
        invoice=invoice, kind=RequestKind.REFUND, status=RequestStatus.APPROVED).first()
    if approved is None:
        return {}
    if approved.frozen_breakdown:
        return {part["line"]: Decimal(part["net"]) for part in approved.frozen_breakdown["lines"]}
    return {line.invoice_line_id: line.amount for line in approved.lines.all()}


@dataclass(frozen=True)
class FrozenLine:
    description: str
    net: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class FrozenBreakdown:
    """A request's frozen breakdown, its amounts as Decimals, for the screens."""

    currency: str
    lines: list[FrozenLine]
    net: Decimal
    tax: Decimal
    total: Decimal
    reduces_balance: Decimal
    paid_back: Decimal
    refunds: list[tuple[str, Decimal]]  # (payment method, amount)


# How long a request has waited against its clinic's approval_reminder_hours (H): within H; past
# H (its approvers were reminded); past 2H (it went to the billing administrators). The same
# moments as the reminder job's (approvals/housekeeping.py): a request waiting exactly H is due.
WAITING_IN_TIME, WAITING_OVERDUE, WAITING_LONG_OVERDUE = 0, 1, 2


def waiting_overdue(financial_request: FinancialRequest, *, now: datetime.datetime) -> int:
    """WAITING_IN_TIME, WAITING_OVERDUE or WAITING_LONG_OVERDUE; a request no longer waiting
    for a decision is in time (nothing is late on it)."""
    if financial_request.status != RequestStatus.REQUESTED:
        return WAITING_IN_TIME
    hours = datetime.timedelta(hours=financial_request.clinic.approval_reminder_hours)
    waited = now - financial_request.requested_at
    if waited >= 2 * hours:
        return WAITING_LONG_OVERDUE
    if waited >= hours:
        return WAITING_OVERDUE
    return WAITING_IN_TIME


def frozen_breakdown_rows(financial_request: FinancialRequest) -> FrozenBreakdown | None:
    frozen = financial_request.frozen_breakdown
    if not frozen:
        return None
    return FrozenBreakdown(
        currency=frozen["currency"],
        lines=[FrozenLine(p["description"], Decimal(p["net"]), Decimal(p["tax"]),
                          Decimal(p["total"])) for p in frozen["lines"]],
        net=Decimal(frozen["net"]), tax=Decimal(frozen["tax"]), total=Decimal(frozen["total"]),
        reduces_balance=Decimal(frozen["reduces_balance"]),
        paid_back=Decimal(frozen["paid_back"]),
        refunds=[(r["method"], Decimal(r["amount"])) for r in frozen["refunds"]])


def approved_request_proposed(*, invoice: Invoice) -> bool:
    """Whether the invoice's approved refund request proposed its own lines (then the refund
    form starts with exactly those ticked); a whole refund's approval leaves the choice to
    staff, within its limits."""
    return FinancialRequest.objects.filter(
        invoice=invoice, kind=RequestKind.REFUND, status=RequestStatus.APPROVED,
        lines__isnull=False).exists()


def open_requests_for_invoice(*, invoice: Invoice):
    """Requests waiting for a decision or approved and not yet carried out: shown as a banner."""
    return list(FinancialRequest.objects.filter(invoice=invoice, status__in=OPEN_STATUSES)
                .select_related("requested_by", "decided_by").order_by("pk"))
