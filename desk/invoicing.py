"""The New invoice screen, and issuing a draft from its page. Both only gather what staff typed
and call the billing services, which check every rule and say why they refuse."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from billing.exceptions import BusinessRuleError
from billing.models import Clinic, Invoice, Service, TaxRate
from billing.selectors import account_get_for_user, account_search, invoice_get_for_user
from billing.services import account_create, invoice_create, invoice_issue

from .forms import NEW, ClinicChoiceForm, InvoiceForm, LineFormSet, lines_in_order

# Patients a search lists at once; past them staff type more of the name or the number.
CANDIDATES_SHOWN = 20


@login_required
@require_http_methods(["GET", "POST"])
def invoice_new(request):
    """Bill an existing or a new patient of one of my clinics: lines from the catalogue or
    free lines, saved as a draft or issued at once. "Find patient" only looks patients up."""
    user = request.user
    if not user.has_perm("billing.add_invoice"):
        raise PermissionDenied
    data = request.POST if request.method == "POST" else None
    named = data if data is not None and "clinic" in data else (
        request.GET if "clinic" in request.GET else None)
    chooser = ClinicChoiceForm(named, user=user)
    preselected = None
    if data is None and request.GET.get("account"):  # from a patient's page
        preselected = account_get_for_user(user=user, pk=request.GET["account"])
        clinic = preselected.clinic
    else:
        clinic = chooser.chosen()
        if clinic is None:
            return render(request, "desk/invoice_clinic.html", {"form": chooser})

    services = list(Service.objects.filter(clinic=clinic, is_active=True).order_by("name", "pk"))
    tax_rates = list(TaxRate.objects.filter(clinic=clinic, is_active=True).order_by("name", "pk"))
    form = InvoiceForm(data, clinic=clinic, can_add_patient=user.has_perm("billing.add_account"),
                       initial={"account": preselected.pk} if preselected else None)
    lines = LineFormSet(lines_in_order(data) if data is not None else None, clinic=clinic,
                        services=services, tax_rates=tax_rates)
    action = data.get("action") if data is not None else None
    checked = data is not None and action != "find"
    if checked and form.is_valid() and lines.is_valid():
        issue = action == "issue"
        try:
            invoice = _invoice_create(clinic=clinic, form=form, lines=lines, actor=user,
                                      issue=issue)
        except BusinessRuleError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"{invoice} issued." if issue else "Draft saved.")
            return redirect("desk:invoice_detail", pk=invoice.pk)

    search = (form["account_search"].value() or "").strip()
    candidates = list(account_search(user=user, search=search, clinic_id=clinic.pk)
                      [:CANDIDATES_SHOWN + 1]) if search else []
    selected = form.selected_account()
    if selected is not None and selected not in candidates:
        candidates.insert(0, selected)
    elif selected is None and action == "find" and len(candidates) == 1:
        selected = candidates[0]  # the one patient found is the one meant
    return render(request, "desk/invoice_new.html", {
        "clinic": clinic,
        "several_clinics": len(chooser.clinics) > 1,
        "form": form,
        "lines": lines,
        "problems": _problems(form, lines) if checked else [],
        "search": search,
        "candidates": candidates[:CANDIDATES_SHOWN],
        "more_candidates": len(candidates) > CANDIDATES_SHOWN,
        "selected": selected,
        "can_issue": user.has_perm("billing.issue_invoice"),
    })


def _problems(form: InvoiceForm, lines) -> list[str]:
    """Why nothing was made, one plain sentence each; those about a line start with its
    number, as the service's own do."""
    problems = list(form.non_field_errors())
    problems += [f"{form[name].label}: {error}" for name, errors in form.errors.items()
                 if name in form.fields for error in errors]
    problems += list(lines.non_form_errors())
    for number, line in enumerate(lines.forms, start=1):
        for error in (error for errors in line.errors.values() for error in errors):
            prefix = f"Line {number}:"
            problems.append(error if error.startswith(prefix)
                            else f"{prefix} {error[:1].lower()}{error[1:]}")
    return problems


def _invoice_create(*, clinic: Clinic, form: InvoiceForm, lines, actor, issue: bool) -> Invoice:
    """A new patient's account and their invoice together: an invoice refused creates no
    account."""
    data = form.cleaned_data
    with transaction.atomic():
        account = data["account"]
        if data["patient"] == NEW:
            account = account_create(clinic=clinic, name=data["new_name"],
                                     number=data["new_number"], email=data["new_email"],
                                     phone=data["new_phone"], actor=actor)
        return invoice_create(clinic=clinic, account=account, lines=lines.line_inputs(),
                              actor=actor, issue=issue, notes=data["notes"],
                              due_date=data["due_date"])


@login_required
@require_POST
def invoice_issue_view(request, pk):
    """Give a draft its number from its page (More Action > Issue invoice)."""
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    try:
        invoice = invoice_issue(invoice=invoice, actor=request.user)
    except BusinessRuleError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{invoice} issued.")
    return redirect("desk:invoice_detail", pk=invoice.pk)
