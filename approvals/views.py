from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from billing.exceptions import BusinessRuleError
from billing.forms import lines_asked_for
from billing.pagination import CappedPaginator
from billing.selectors import invoice_get_for_user

from .forms import (
    ApproveForm,
    CancellationRequestForm,
    RefundRequestForm,
    RejectForm,
    RequestFilterForm,
)
from .models import RequestStatus
from .rules import APPROVED_ALREADY_BY_YOU, decision_refusal, withdraw_refusal
from .selectors import (
    frozen_breakdown_rows,
    request_counts_by_status,
    request_get_for_user,
    request_history,
    request_search,
)
from .services import (
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
    request_withdraw,
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
    form = RequestFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    narrowing = {
        "date_from": filters.get("date_from"),
        "date_to": filters.get("date_to"),
        "search": filters.get("q") or "",
    }
    status = filters.get("status") or ""
    requests = request_search(user=request.user, status=status, **narrowing)
    page = CappedPaginator(requests, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    counts = request_counts_by_status(user=request.user, **narrowing)
    return render(request, "approvals/queue.html", {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        # a request opened from here returns to these filters and this page once decided
        "detail_suffix": f"?{urlencode({'back': request.GET.urlencode()})}" if request.GET else "",
        "counts": counts,
        "pills": _status_pills(query, counts, status),
    })


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
