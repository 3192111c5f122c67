"""Reads. Every query a screen or the API makes about clinic data starts from `visible_to`."""

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from .models import Clinic, Invoice


def visible_to(queryset: QuerySet, *, user, clinic_path: str = "clinic") -> QuerySet:
    """Restrict any queryset to the clinics the user belongs to (nothing for anonymous users)."""
    if not (user and user.is_authenticated and user.is_active):
        return queryset.none()
    if queryset.model is Clinic:
        return queryset.filter(members=user)
    return queryset.filter(**{f"{clinic_path}__members": user})


def clinics_for_user(*, user) -> QuerySet[Clinic]:
    return visible_to(Clinic.objects.all(), user=user)


def is_member(*, user, clinic: Clinic) -> bool:
    return clinics_for_user(user=user).filter(pk=clinic.pk).exists()


def invoices_for_user(*, user) -> QuerySet[Invoice]:
    return visible_to(Invoice.objects.all(), user=user).select_related("clinic", "account")


def invoice_get_for_user(*, user, pk) -> Invoice:
    """The invoice, or 404 when it does not exist or belongs to a clinic the user is not in."""
    try:
        return invoices_for_user(user=user).get(pk=pk)
    except (Invoice.DoesNotExist, ValueError, TypeError):
        raise Http404("No such invoice in your clinics.") from None


def invoice_search(*, user, search: str = "", status: str = "", clinic_id=None,
                   date_from=None, date_to=None) -> QuerySet[Invoice]:
    """The invoice list: by number, patient name or number; by status, clinic and issue date.
    Each invoice carries `awaiting_approval`: a request on it waits for a decision."""
    from approvals.models import FinancialRequest, RequestStatus

    invoices = invoices_for_user(user=user).annotate(awaiting_approval=Exists(
        FinancialRequest.objects.filter(invoice=OuterRef("pk"), status=RequestStatus.REQUESTED)))
    if search := search.strip():
        invoices = invoices.filter(
            Q(number__icontains=search)
            | Q(account__name__icontains=search)
            | Q(account__number__icontains=search)
        )
    if status:
        invoices = invoices.filter(status=status)
    if clinic_id:
        invoices = invoices.filter(clinic_id=clinic_id)
    if date_from:
        invoices = invoices.filter(issue_date__gte=date_from)
    if date_to:
        invoices = invoices.filter(issue_date__lte=date_to)
    return invoices
