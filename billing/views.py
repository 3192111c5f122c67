from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from .exceptions import BusinessRuleError
from .forms import PaymentForm
from .selectors import invoice_get_for_user
from .services import invoice_discard, payment_record


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
            return redirect("desk:invoice_detail", pk=invoice.pk)
    return render(request, "billing/payment_form.html", {"invoice": invoice, "form": form})


@login_required
@require_POST
def invoice_discard_view(request, pk):
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    try:
        invoice_discard(invoice=invoice, actor=request.user)
    except BusinessRuleError as error:
        messages.error(request, error.message)
        return redirect("desk:invoice_detail", pk=invoice.pk)
    messages.success(request, "The draft was discarded.")
    return redirect("desk:invoice_list")
