from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from approvals.gate import LINE_NOT_APPROVED
from approvals.rules import open_refund_request_refusal
from approvals.selectors import approved_request_lines, approved_request_proposed
from billing.breakdown import payout_instruction
from billing.exceptions import BusinessRuleError
from billing.forms import lines_asked_for
from billing.pagination import CappedPaginator
from billing.rules import cancellation_refusal
from billing.selectors import invoice_get_for_user, visible_to

from .forms import CancelForm, CreditNoteFilterForm, CreditNoteForm
from .models import CreditNote, Refund
from .selectors import credit_note_get_for_user, credit_notes_search
from .services import (
    credit_note_create,
    credit_note_preview,
    invoice_cancel,
    refund_mark_paid_out,
    refund_retry,
)


def _get_refund_for_user(request, pk) -> Refund:
    """The refund, or 404 outside the user's clinics."""
    try:
        return visible_to(Refund.objects.select_related("invoice"), user=request.user,
                          clinic_path="invoice__clinic").get(pk=pk)
    except Refund.DoesNotExist:
        raise Http404("No such refund in your clinics.") from None


@login_required
@require_POST
def refund_paid_out(request, pk):
    refund = _get_refund_for_user(request, pk)
    try:
        refund_mark_paid_out(refund=refund, actor=request.user,
                             remarks=request.POST.get("remarks", ""))
    except BusinessRuleError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{refund} marked as paid out.")
    return redirect("desk:invoice_detail", pk=refund.invoice_id)


@login_required
@require_POST
def refund_retry_view(request, pk):
    refund = _get_refund_for_user(request, pk)
    try:
        refund = refund_retry(refund=refund, actor=request.user)
    except BusinessRuleError as error:
        messages.error(request, error.message)
    else:
        messages.info(request, f"{refund} sent to the gateway again.")
    return redirect("desk:invoice_detail", pk=refund.invoice_id)


@login_required
@require_http_methods(["GET", "POST"])
def credit_note_create_view(request, pk):
    """Refund or credit lines: tick lines and amounts, see the breakdown, confirm."""
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    lines = list(invoice.lines.all())
    approved = approved_request_lines(invoice=invoice)
    preselect, line_refusal = _preselected_lines(
        invoice, lines, request.GET, approved,
        proposed=bool(approved) and approved_request_proposed(invoice=invoice))
    form = CreditNoteForm(request.POST or None, invoice=invoice, lines=lines,
                          preselect=preselect, approved=approved)
    breakdown = None
    full = request.GET.get("full") == "1"  # "Refund" on the More Action menu: the full refund
    # "Change" on the breakdown posts every choice back (hidden): the form shows them again
    changing = request.POST.get("action") == "change"
    if request.method == "POST" and not changing and form.is_valid():
        chosen = form.chosen_lines()
        payment = form.cleaned_data["payment"]
        try:
            if request.POST.get("action") == "confirm":
                note = credit_note_create(
                    invoice=invoice, lines=chosen, payment=payment, actor=request.user,
                    dispute_reason=form.cleaned_data["dispute_reason"],
                    remarks=form.cleaned_data["remarks"], full=full,
                )
            else:
                breakdown = credit_note_preview(
                    invoice=invoice, lines=chosen, payment=payment, actor=request.user,
                    full=full, dispute_reason=form.cleaned_data["dispute_reason"])
        except BusinessRuleError as error:
            form.add_error(None, error.message)
            breakdown = None
        else:
            if breakdown is None:
                _announce(request, note)
                return redirect("desk:invoice_detail", pk=invoice.pk)
    return render(request, "refunds/credit_note_form.html", {
        "invoice": invoice, "form": form, "breakdown": breakdown,
        "full": full,
        # a link naming a line that cannot be ticked: said once, on the form it opened
        "line_refusal": line_refusal if request.method == "GET" else None,
    })


def _preselected_lines(invoice, lines, query, approved, *,
                       proposed: bool) -> tuple[dict, str | None]:
    """What the form starts with, and why a line the link asked for was not ticked (or None).
    ?line=<id> (Refund this line) ticks that line with what remains on it, or with what the
    approval allows; ?full=1 ticks every line with what remains; an approved request with
    proposed lines (`proposed`) ticks exactly those; a whole refund's approval ticks nothing
    (its limits still show)."""
    asked, refusal = lines_asked_for(invoice=invoice, lines=lines, query=query)
    if asked and approved:
        outside = next((line for line in lines if line.pk in asked and line.pk not in approved),
                       None)
        if outside is not None:
            asked, refusal = {}, LINE_NOT_APPROVED.format(line=outside)
        asked = {pk: approved[pk] for pk in asked}
    if asked:
        return asked, None
    if approved and proposed:
        return approved, refusal
    if query.get("full") == "1":
        return ({line.pk: line.creditable_net for line in lines if line.creditable_net > 0},
                refusal)
    return {}, refusal


def _announce(request, note):
    text = f"{note} issued for {note.money(note.amount)}."
    if note.amount_applied:
        text += f" It reduced the balance due by {note.money(note.amount_applied)}."
    messages.success(request, text)
    for refund in note.refunds.all():
        if refund.is_gateway:
            messages.info(request, f"{note.money(refund.amount)} is being refunded to "
                                   f"{refund.method_name}: {refund.get_status_display().lower()}.")
        else:
            messages.warning(request, payout_instruction(refund.amount, refund.currency,
                                                         refund.method_name)
                             + ", then mark it paid out on this page.")


@login_required
@require_http_methods(["GET", "POST"])
def invoice_cancel_view(request, pk):
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    form = CancelForm(request.POST or None)
    # the same rules the More Action menu shows: an invoice that cannot be cancelled is never
    # offered the form (the service still refuses a POST that comes anyway)
    refusal = cancellation_refusal(invoice) or open_refund_request_refusal(invoice)
    if refusal and request.method == "GET":
        return render(request, "refunds/invoice_cancel.html", {"invoice": invoice,
                                                                 "refusal": refusal})
    if request.method == "POST" and form.is_valid():
        try:
            note = invoice_cancel(invoice=invoice, remarks=form.cleaned_data["remarks"],
                                  actor=request.user)
        except BusinessRuleError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"{invoice} cancelled; {note} credits "
                                      f"{note.money(note.amount)}.")
            return redirect("desk:invoice_detail", pk=invoice.pk)
    return render(request, "refunds/invoice_cancel.html", {"invoice": invoice, "form": form})


@login_required
def credit_note_list(request):
    filters = CreditNoteFilterForm(request.GET)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    notes = credit_notes_search(user=request.user, search=chosen.get("q", ""),
                                kind=chosen.get("kind", ""))
    page = CappedPaginator(notes, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "refunds/credit_note_list.html", {
        "page": page, "query": query.urlencode(), "kinds": CreditNote.Kind.choices,
        "q": chosen.get("q", ""), "kind": chosen.get("kind", ""),
        "filter_errors": [e for errors in filters.errors.values() for e in errors],
    })


@login_required
def credit_note_detail(request, pk):
    """The credit note as a printable document."""
    note = credit_note_get_for_user(user=request.user, pk=pk)
    return render(request, "refunds/credit_note_detail.html", {
        "note": note,
        "lines": note.lines.select_related("invoice_line"),
        "refunds": note.refunds.all(),
    })


@login_required
def cancelled_register(request):
    """Who cancelled which invoice, when, and why."""
    notes = credit_notes_search(user=request.user, kind=CreditNote.Kind.CANCELLATION)
    page = CappedPaginator(notes, 25).get_page(request.GET.get("page"))
    return render(request, "refunds/cancelled_register.html", {"page": page})
