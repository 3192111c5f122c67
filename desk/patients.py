"""The Patients list and a patient's page: the accounts of my clinics, what each one owes, and
their invoices and credit notes."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from billing.pagination import SEARCH_COUNT_CAP, CappedPaginator
from billing.selectors import (
    SEARCH_MIN_FRAGMENT,
    account_get_for_user,
    account_open_balance,
    account_search,
    clinics_for_user,
    invoices_for_user,
)
from refunds.selectors import credit_notes_for_account

from .forms import PatientFilterForm

PAGE_SIZE = 25
# A patient's page lists their newest invoices and credit notes; the invoice and credit note
# lists, searched by the patient's number, hold the rest.
SHOWN_ON_PAGE = 50


@login_required
def patient_list(request):
    clinics = list(clinics_for_user(user=request.user))
    form = PatientFilterForm(request.GET or None, clinics=clinics)
    filters = form.cleaned_data if form.is_valid() else {}
    search = (filters.get("q") or "").strip()
    clinic = filters.get("clinic")
    accounts = account_search(user=request.user, search=search,
                              clinic_id=clinic.pk if clinic else None)
    cap = SEARCH_COUNT_CAP if search else None  # None: the lists' own cap
    page = CappedPaginator(accounts, PAGE_SIZE, cap=cap).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "desk/patient_list.html", {
        "form": form, "page": page, "query": query.urlencode(),
        "several_clinics": len(clinics) > 1,
        "short_search": 0 < len(search) < SEARCH_MIN_FRAGMENT,
        "search_min_fragment": SEARCH_MIN_FRAGMENT,
    })


@login_required
def patient_detail(request, pk):
    account = account_get_for_user(user=request.user, pk=pk)
    invoices = list(invoices_for_user(user=request.user).filter(account=account)
                    .order_by("-created_at", "-pk")[:SHOWN_ON_PAGE + 1])
    credit_notes = list(credit_notes_for_account(account=account)[:SHOWN_ON_PAGE + 1])
    return render(request, "desk/patient_detail.html", {
        "account": account,
        "open_balance": account_open_balance(account=account),
        "invoices": invoices[:SHOWN_ON_PAGE],
        "more_invoices": len(invoices) > SHOWN_ON_PAGE,
        "credit_notes": credit_notes[:SHOWN_ON_PAGE],
        "more_credit_notes": len(credit_notes) > SHOWN_ON_PAGE,
    })
