import csv
import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.exceptions import BusinessRuleError
from billing.forms import lines_asked_for
from billing.money import minor_units, round_money
from billing.pagination import CappedPaginator
from billing.selectors import invoice_get_for_user

from .forms import (
    ApproveForm,
    BulkDecisionForm,
    CancellationRequestForm,
    RefundRequestForm,
    RejectForm,
    RequestFilterForm,
)
from .models import REMARKS_MAX_LENGTH, RequestStatus
from .rules import APPROVED_ALREADY_BY_YOU, decision_refusal, withdraw_refusal
from .selectors import (
    frozen_breakdown_rows,
    request_counts_by_status,
    request_export,
    request_get_for_user,
    request_history,
    request_search,
    requests_for_user,
)
from .services import (
    DecisionOutcome,
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
    request_withdraw,
    requests_decide_many,
)

PAGE_SIZE = 25


def _queue_filters(text: str) -> str:
    """The queue's filters (`back`), read as a query string and written again, so the address it
    leads back to is always the queue's own."""
    return QueryDict(text or "").urlencode()


def _back_to_queue(request):
    filters = _queue_filters(request.POST.get("back", ""))
    return redirect(reverse("approvals:queue") + (f"?{filters}" if filters else ""))


def _back_to_request(request, financial_request):
    filters = _queue_filters(request.POST.get("back", ""))
    url = reverse("approvals:request_detail", args=[financial_request.pk])
    return redirect(url + (f"?{urlencode({'back': filters})}" if filters else ""))


def _status_pills(query, counts, current):
    """(label, count, link, active) for "All" and each status, keeping the other filters."""
    query = query.copy()
    query.pop("status", None)
    pills = [("All", sum(counts.values()), query.urlencode(), not current)]
    for value, label in RequestStatus.choices:
        query["status"] = value
        pills.append((label, counts[value], query.urlencode(), current == value))
    return pills


@login_required
def queue(request):
    form = RequestFilterForm(request.GET or None, user=request.user)
    filters = form.filters()
    requests = request_search(user=request.user, **filters)
    page = CappedPaginator(requests, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    # the counts follow every filter but the status (each pill keeps its number)
    narrowing = {name: value for name, value in filters.items() if name not in ("status", "sort")}
    counts = request_counts_by_status(user=request.user, **narrowing)
    return render(request, "approvals/queue.html", {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        # a request opened from here returns to these filters and this page once decided
        "detail_suffix": f"?{urlencode({'back': request.GET.urlencode()})}" if request.GET else "",
        "back": request.GET.urlencode(),
        "counts": counts,
        "pills": _status_pills(query, counts, filters["status"]),
        # the rows this user may decide get a tick box for a bulk decision
        "decidable": {item.pk for item in page if decision_refusal(item, request.user) is None},
        "csv_max_rows": CSV_MAX_ROWS,
        "remarks_max_length": REMARKS_MAX_LENGTH,
    })


def _bulk_summary(outcomes: list[DecisionOutcome], *, approve: bool) -> str:
    """One message for a bulk decision: how many were decided, and each that could not be,
    with its number and the reason, e.g. "3 approved, 1 could not be: #12 — You submitted this
    request, so someone else must decide it." """
    decided = [outcome for outcome in outcomes if outcome.ok]
    failed = [outcome for outcome in outcomes if not outcome.ok]
    parts = []
    if approve:
        halfway = [outcome for outcome in decided
                   if outcome.financial_request.status == RequestStatus.REQUESTED]
        if fully := len(decided) - len(halfway):
            parts.append(f"{fully} approved")
        if halfway:
            numbers = ", ".join(f"#{outcome.request_id}" for outcome in halfway)
            waits = "it waits" if len(halfway) == 1 else "they wait"
            parts.append(f"{len(halfway)} approved (1 of 2 approvals: {numbers}; {waits} for "
                         "a second, different approver)")
    elif decided:
        parts.append(f"{len(decided)} rejected")
    summary = ", ".join(parts) or f"None {'approved' if approve else 'rejected'}"
    if not failed:
        return f"{summary}."
    reasons = " ".join(f"#{outcome.request_id} — {outcome.refusal}" for outcome in failed)
    return f"{summary}, {len(failed)} could not be: {reasons}"


@login_required
@require_POST
def bulk_decide(request):
    """Approve or reject the requests ticked on the queue, each in its own transaction
    (requests_decide_many), then back to the queue as it was, with one message saying what
    happened to each."""
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return _back_to_queue(request)
    outcomes = requests_decide_many(
        request_ids=form.cleaned_data["request"], actor=request.user, approve=form.approve,
        remarks=form.cleaned_data["remarks"], visible=requests_for_user(user=request.user))
    summary = _bulk_summary(outcomes, approve=form.approve)
    if all(outcome.ok for outcome in outcomes):
        messages.success(request, summary)
    elif any(outcome.ok for outcome in outcomes):
        messages.warning(request, summary)
    else:
        messages.error(request, summary)
    return _back_to_queue(request)


# -- the queue as a spreadsheet ----------------------------------------------------------------

CSV_MAX_ROWS = 50_000
CSV_CHUNK = 2000
CSV_HEADER = [
    "Request", "Kind", "Status", "Clinic", "Invoice", "Patient", "Requested by",
    "Requested at (UTC)", "Age (hours)", "Amount", "Currency", "Approvals given",
    "Approvals needed", "Decided by", "Decided at (UTC)", "Stale", "Remarks",
]
CSV_CAPPED = (
    "More than {limit:,} requests match these filters: only the first {limit:,} are exported. "
    "Narrow the filters (status, kind, clinic or dates) to export the rest."
)
# A spreadsheet reads a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    """A CSV cell a spreadsheet shows as text, never runs (a leading ' keeps a formula inert)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _utc(moment: datetime.datetime | None) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds") if moment else ""


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else ""


def _csv_row(item, *, now: datetime.datetime) -> list[str]:
    currency = item.invoice.currency
    amount = ("" if item.frozen_total is None else
              f"{round_money(item.frozen_total, currency):.{minor_units(currency)}f}")
    return [_cell(value) for value in [
        item.pk, item.get_kind_display(), item.get_status_display(), item.clinic.code,
        item.invoice.number or "Draft", item.invoice.account.name, _name(item.requested_by),
        _utc(item.requested_at), int((now - item.requested_at).total_seconds() // 3600),
        amount, currency, item.approvals_given, item.approvals_needed, _name(item.decided_by),
        _utc(item.decided_at), "yes" if item.stale else "no", item.remarks,
    ]]


class _Echo:
    """csv.writer writes each row here and gets it back, to be streamed."""

    def write(self, value):
        return value


def _csv_lines(requests, *, now: datetime.datetime):
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(CSV_HEADER)  # the mark lets spreadsheets read UTF-8
    for count, item in enumerate(
            requests[:CSV_MAX_ROWS + 1].iterator(chunk_size=CSV_CHUNK), start=1):
        if count > CSV_MAX_ROWS:
            yield writer.writerow([CSV_CAPPED.format(limit=CSV_MAX_ROWS)])
            return
        yield writer.writerow(_csv_row(item, now=now))


@login_required
@require_GET
def queue_csv(request):
    """The requests the queue's filters show (every page, not only one), as CSV: the same
    filters, order and clinics as the queue, at most CSV_MAX_ROWS rows."""
    form = RequestFilterForm(request.GET or None, user=request.user)
    now = timezone.now()
    requests = request_export(user=request.user, **form.filters())
    response = StreamingHttpResponse(_csv_lines(requests, now=now),
                                     content_type="text/csv; charset=utf-8")
    filename = f"financial-approval-{timezone.localtime(now):%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def request_detail(request, pk):
    financial_request = request_get_for_user(user=request.user, pk=pk)
    invoice = financial_request.invoice
    return render(request, "approvals/request_detail.html", {
        "financial_request": financial_request,
        "invoice": invoice,
        "proposed_lines": financial_request.lines.select_related("invoice_line"),
        "history": request_history(financial_request=financial_request),
        "approvals": financial_request.approvals.filter(
            round=financial_request.approval_round).select_related("approved_by"),
        "frozen": frozen_breakdown_rows(financial_request),
        "can_decide": decision_refusal(financial_request, request.user) is None,
        "waiting_note": (APPROVED_ALREADY_BY_YOU if decision_refusal(
            financial_request, request.user) == APPROVED_ALREADY_BY_YOU else ""),
        "can_withdraw": withdraw_refusal(financial_request, request.user) is None,
        # two forms on one page, each with its own `remarks`: distinct ids, the same name
        "approve_form": ApproveForm(auto_id="approve_%s"),
        "reject_form": RejectForm(auto_id="reject_%s"),
        "back": _queue_filters(request.GET.get("back", "")),
    })


def _decide(request, pk, *, form_class, service, outcome: str):
    financial_request = request_get_for_user(user=request.user, pk=pk)
    form = form_class(request.POST)
    if not form.is_valid():
        # e.g. a NUL character in the remarks: say so rather than decide without them
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return _back_to_request(request, financial_request)
    try:
        decided = service(financial_request=financial_request, actor=request.user,
                          remarks=form.cleaned_data.get("remarks", ""))
    except BusinessRuleError as error:
        messages.error(request, error.message)
        return _back_to_request(request, financial_request)
    if decided.status == decided.Status.REQUESTED:  # the first of two approvals
        messages.success(request, (
            f"{financial_request} for {financial_request.invoice}: your approval is 1 of "
            f"{decided.approvals_needed}. It now waits for a second, different approver."))
    else:
        messages.success(request,
                         f"{financial_request} for {financial_request.invoice} {outcome}.")
    return _back_to_queue(request)


@login_required
@require_POST
def request_approve_view(request, pk):
    return _decide(request, pk, form_class=ApproveForm, service=request_approve,
                   outcome="approved")


@login_required
@require_POST
def request_reject_view(request, pk):
    return _decide(request, pk, form_class=RejectForm, service=request_reject,
                   outcome="rejected")


@login_required
@require_POST
def request_withdraw_view(request, pk):
    financial_request = request_get_for_user(user=request.user, pk=pk)
    try:
        request_withdraw(financial_request=financial_request, actor=request.user)
    except BusinessRuleError as error:
        messages.error(request, error.message)
        return redirect("approvals:request_detail", pk=financial_request.pk)
    messages.success(request, f"{financial_request} withdrawn.")
    return redirect("desk:invoice_detail", pk=financial_request.invoice_id)


def _submitted(request, financial_request):
    messages.success(request, f"{financial_request} submitted; a financial approver will "
                              "review it.")
    return redirect("desk:invoice_detail", pk=financial_request.invoice_id)


@login_required
@require_http_methods(["GET", "POST"])
def refund_request_create_view(request, invoice_pk):
    invoice = invoice_get_for_user(user=request.user, pk=invoice_pk)
    lines = list(invoice.lines.all())
    # ?line=<id>: "Refund this line" on the invoice page, where the refund needs approval
    asked, line_refusal = lines_asked_for(invoice=invoice, lines=lines, query=request.GET)
    form = RefundRequestForm(request.POST if request.method == "POST" else None,
                             invoice=invoice, lines=lines, preselect=asked)
    if request.method == "POST" and form.is_valid():
        try:
            financial_request = refund_request_create(
                invoice=invoice, remarks=form.cleaned_data["remarks"], actor=request.user,
                lines=form.proposed_lines(), dispute_reason=form.cleaned_data["dispute_reason"],
            )
        except BusinessRuleError as error:
            form.add_error(None, error.message)
        else:
            return _submitted(request, financial_request)
    return render(request, "approvals/refund_request_form.html", {
        "invoice": invoice, "form": form,
        "line_refusal": line_refusal if request.method == "GET" else None,
    })


@login_required
@require_http_methods(["GET", "POST"])
def cancellation_request_create_view(request, invoice_pk):
    invoice = invoice_get_for_user(user=request.user, pk=invoice_pk)
    form = CancellationRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            financial_request = cancellation_request_create(
                invoice=invoice, remarks=form.cleaned_data["remarks"], actor=request.user,
            )
        except BusinessRuleError as error:
            form.add_error(None, error.message)
        else:
            return _submitted(request, financial_request)
    return render(request, "approvals/cancellation_request_form.html", {
        "invoice": invoice, "form": form,
    })
