"""The billing office's pages that bring billing, approvals and refunds together."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers

from approvals.models import RequestKind
from approvals.rules import policy_summary
from approvals.selectors import (
    my_decided_requests,
    open_requests_for_invoice,
    requests_awaiting,
    with_open_request_states,
)
from audit.selectors import audit_events_for_invoice
from billing.forms import InvoiceFilterForm
from billing.models import OPEN_FOR_PAYMENT, InvoiceStatus
from billing.pagination import SEARCH_COUNT_CAP, CappedPaginator, count_capped
from billing.selectors import (
    SEARCH_MIN_FRAGMENT,
    clinics_for_user,
    invoice_get_for_user,
    invoice_search,
    invoices_for_user,
)
from refunds.selectors import (
    credit_notes_for_invoice,
    line_credit_summary,
    refunds_for_invoice,
    refunds_needing_attention,
    refunds_sending,
)

from .actions import invoice_actions, line_actions, refund_actions

PAGE_SIZE = 25


def _with_rule_summaries(clinics):
    """Each clinic with its approval rules in a few words (Home's "Your clinics")."""
    clinics = list(clinics)
    for clinic in clinics:
        clinic.refund_rules = policy_summary(clinic, RequestKind.REFUND)
        clinic.cancellation_rules = policy_summary(clinic, RequestKind.CANCELLATION)
    return clinics


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
        "refunds_sending": refunds_sending(user=request.user)[:10],
        "clinics": _with_rule_summaries(clinics_for_user(user=request.user)),
        "open_invoices": open_invoices[:10],
        "open_count": count_capped(open_invoices),
        "drafts": invoices_for_user(user=request.user).filter(
            status=InvoiceStatus.DRAFT, created_by=request.user
        )[:10],
    })


@login_required
def invoice_list(request):
    """Billing > Invoice: search and filters; a row is selected, then More Action (filled in by
    `invoice_actions_menu`) acts on it."""
    form = InvoiceFilterForm(request.GET or None, user=request.user)
    filters = form.cleaned_data if form.is_valid() else {}
    clinic = filters.get("clinic")
    invoices = with_open_request_states(invoice_search(
        user=request.user,
        search=filters.get("q") or "",
        status=filters.get("status") or "",
        clinic_id=clinic.pk if clinic else None,
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
    ))
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
def invoice_actions_menu(request, pk):
    """The More Action items of one invoice, for the invoice list's menu (fetched by htmx when a
    row is selected): the same entries as on the invoice page. Anything but an htmx request is
    sent to the invoice page, where the same menu is."""
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    if not request.htmx:
        response = redirect("desk:invoice_detail", pk=invoice.pk)
    else:
        response = render(request, "desk/invoice_actions.html", {
            "invoice": invoice,
            "actions": invoice_actions(invoice=invoice, user=request.user),
        })
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
def invoice_detail(request, pk):
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    credits = line_credit_summary(invoice=invoice)
    lines = list(invoice.lines.all())
    payments = list(invoice.payments.select_related("method", "recorded_by"))
    actions = invoice_actions(invoice=invoice, user=request.user)
    buttons = line_actions(invoice=invoice, lines=lines, payments=payments, menu=actions,
                           user=request.user)
    for line in lines:
        line.credit_summary = credits.get(line.pk, [])
        line.action = buttons.get(line.pk)
    refunds = refunds_for_invoice(invoice=invoice)
    for refund in refunds:
        refund.actions = refund_actions(refund=refund, user=request.user)
    return render(request, "billing/invoice_detail.html", {
        "invoice": invoice,
        "lines": lines,
        "actions": actions,
        "open_requests": open_requests_for_invoice(invoice=invoice),
        "credit_notes": credit_notes_for_invoice(invoice=invoice),
        "refunds": refunds,
        "payments": payments,
        "history": audit_events_for_invoice(invoice=invoice),
    })
