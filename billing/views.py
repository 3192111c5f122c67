from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from approvals.selectors import my_decided_requests, requests_awaiting
from audit.selectors import audit_events_for_invoice
from refunds.selectors import (
    credit_notes_for_invoice,
    line_credit_summary,
    open_requests_for_invoice,
    refunds_for_invoice,
    refunds_needing_attention,
)

from .actions import invoice_actions
from .exceptions import BusinessRuleError
from .forms import InvoiceFilterForm, PaymentForm
from .models import OPEN_FOR_PAYMENT, InvoiceStatus
from .pagination import SEARCH_COUNT_CAP, CappedPaginator, count_capped
from .selectors import (
    SEARCH_MIN_FRAGMENT,
    clinics_for_user,
    invoice_get_for_user,
    invoice_search,
    invoices_for_user,
)
from .services import invoice_discard, payment_record

PAGE_SIZE = 25


@login_required
def home(request):
    """What needs my attention: requests awaiting my decision, my requests' outcomes, refunds
    to pay out or retry, invoices waiting for payment."""
    open_invoices = invoices_for_user(user=request.user).filter(
        status__in=OPEN_FOR_PAYMENT).order_by("issue_date", "pk")
    awaiting = requests_awaiting(user=request.user).select_related(
        "invoice", "invoice__account", "requested_by", "clinic").order_by("requested_at", "pk")
    attention = refunds_needing_attention(user=request.user)
    return render(request, "home.html", {
        "awaiting": awaiting[:10],
        "awaiting_count": awaiting.count(),  # the same figure as the menu badge
        "my_decided": my_decided_requests(user=request.user),
        "refunds_attention": attention[:10],
        "refunds_attention_count": count_capped(attention),
        "clinics": clinics_for_user(user=request.user),
        "open_invoices": open_invoices[:10],
        "open_count": count_capped(open_invoices),
        "drafts": invoices_for_user(user=request.user).filter(
            status=InvoiceStatus.DRAFT, created_by=request.user
        )[:10],
    })


@login_required
def invoice_list(request):
    form = InvoiceFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    invoices = invoice_search(
        user=request.user,
        search=filters.get("q") or "",
        status=filters.get("status") or "",
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
    )
    cap = SEARCH_COUNT_CAP if filters.get("q") else None  # None: the lists' own cap
    page = CappedPaginator(invoices, PAGE_SIZE, cap=cap).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    search = (filters.get("q") or "").strip()
    return render(request, "billing/invoice_list.html", {
        "form": form, "page": page, "query": query.urlencode(),
        "short_search": 0 < len(search) < SEARCH_MIN_FRAGMENT,
        "search_min_fragment": SEARCH_MIN_FRAGMENT,
    })


@login_required
def invoice_detail(request, pk):
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    credits = line_credit_summary(invoice=invoice)
    lines = list(invoice.lines.all())
    for line in lines:
        line.credit_summary = credits.get(line.pk, [])
    return render(request, "billing/invoice_detail.html", {
        "invoice": invoice,
        "lines": lines,
        "actions": invoice_actions(invoice=invoice, user=request.user),
        "open_requests": open_requests_for_invoice(invoice=invoice),
        "credit_notes": credit_notes_for_invoice(invoice=invoice),
        "refunds": refunds_for_invoice(invoice=invoice),
        "payments": invoice.payments.select_related("method", "recorded_by"),
        "history": audit_events_for_invoice(invoice=invoice),
    })


@login_required
@require_http_methods(["GET", "POST"])
def payment_create(request, pk):
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    form = PaymentForm(request.POST or None, invoice=invoice)
    if request.method == "POST" and form.is_valid():
        try:
            payment = payment_record(
                invoice=invoice,
                method=form.cleaned_data["method"],
                amount=form.cleaned_data["amount"],
                reference=form.cleaned_data["reference"],
                received_at=form.cleaned_data["received_at"],
                actor=request.user,
            )
        except BusinessRuleError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Payment of {invoice.money(payment.amount)} recorded.")
            return redirect("billing:invoice_detail", pk=invoice.pk)
    return render(request, "billing/payment_form.html", {"invoice": invoice, "form": form})


@login_required
@require_POST
def invoice_discard_view(request, pk):
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    try:
        invoice_discard(invoice=invoice, actor=request.user)
    except BusinessRuleError as error:
        messages.error(request, error.message)
        return redirect("billing:invoice_detail", pk=invoice.pk)
    messages.success(request, "The draft was discarded.")
    return redirect("billing:invoice_list")
