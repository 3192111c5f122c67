from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from billing.exceptions import BusinessRuleError
from billing.selectors import visible_to

from .models import Refund
from .services import refund_mark_paid_out, refund_retry


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
    return redirect("billing:invoice_detail", pk=refund.invoice_id)


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
    return redirect("billing:invoice_detail", pk=refund.invoice_id)
