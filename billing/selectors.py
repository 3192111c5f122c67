"""Reads. Every query a screen or the API makes about clinic data starts from `visible_to`.

At a clinic group's scale (millions of invoices) every list must be answered by an index: the
clinic filter is a list of values known before the scan (`any_of`), a search tries the unique
numbers before any fragment, and fragments search each column through its own index."""

from decimal import Decimal

from django.db.models import F, Q, QuerySet, Subquery, Sum
from django.http import Http404

from .models import Account, Clinic, Invoice, InvoiceStatus, MoneyField
from .money import ZERO


def member_clinic_ids(*, user) -> Subquery:
    """The ids of the clinics the user belongs to, as a subquery."""
    return Subquery(Clinic.members.through.objects.filter(user_id=user.pk).values("clinic_id"))


def visible_to(queryset: QuerySet, *, user, clinic_path: str = "clinic") -> QuerySet:
    """Restrict any queryset to the clinics the user belongs to (nothing for anonymous users)."""
    if not (user and user.is_authenticated and user.is_active):
        return queryset.none()
    if queryset.model is Clinic:
        return queryset.filter(members=user)
    return queryset.filter(**{f"{clinic_path}__any_of": member_clinic_ids(user=user)})


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


def spellings(search: str) -> list[str]:
    """Numbers are printed in capitals; staff may type them in lower case."""
    return sorted({search, search.upper()})


# Shorter searches match whole numbers only: a fragment of one or two characters is in most
# names, and no index can find it faster than reading them all.
SEARCH_MIN_FRAGMENT = 3

# The rows a search names in another table (patients, invoices) are looked up first and passed
# as values, up to this many, so PostgreSQL knows how many rows they stand for: for a few it
# reads just theirs (an index), for many it walks the newest rows and keeps theirs (a hashed
# lookup). Beyond it the search is so common that walking the newest rows and checking each
# one's own patient or invoice (`otherwise`) finds a page soonest.
ROWS_LOOKED_UP = 5000


def among(field: str, rows: QuerySet, *, otherwise: Q) -> Q:
    """`field` is one of `rows` (see ROWS_LOOKED_UP)."""
    found = list(rows.order_by().values_list("pk", flat=True)[:ROWS_LOOKED_UP + 1])
    if len(found) > ROWS_LOOKED_UP:
        return otherwise
    return Q(**{f"{field}__any_of": found})


def invoice_search(*, user, search: str = "", status: str = "", clinic_id=None,
                   date_from=None, date_to=None) -> QuerySet[Invoice]:
    """The invoice list: by number, patient name or number; by status, clinic and issue date.
    A search that is exactly an invoice or account number finds just that (a unique index);
    otherwise, from 3 characters, it finds every invoice whose number, patient name or patient
    number contains it."""
    invoices = invoices_for_user(user=user)
    if status:
        invoices = invoices.filter(status=status)
    if clinic_id:
        invoices = invoices.filter(clinic_id=clinic_id)
    if date_from:
        invoices = invoices.filter(issue_date__gte=date_from)
    if date_to:
        invoices = invoices.filter(issue_date__lte=date_to)
    if search := search.strip():
        # Each searched column is its own indexed condition on the invoice table (an OR across
        # a join could use no index), and the user's patients are matched first.
        patients = visible_to(Account.objects.all(), user=user)
        whole = spellings(search)
        exact = invoices.filter(Q(number__in=whole) | among(
            "account", patients.filter(number__in=whole), otherwise=Q(account__number__in=whole)))
        if exact.exists() or len(search) < SEARCH_MIN_FRAGMENT:
            return exact
        return invoices.filter(Q(number__icontains=search) | among(
            "account",
            patients.filter(Q(name__icontains=search) | Q(number__icontains=search)),
            otherwise=(Q(account__name__icontains=search)
                       | Q(account__number__icontains=search))))
    return invoices


def accounts_for_user(*, user) -> QuerySet[Account]:
    return visible_to(Account.objects.all(), user=user).select_related("clinic")


def account_get_for_user(*, user, pk) -> Account:
    """The patient account, or 404 when it does not exist or belongs to a clinic the user is
    not in."""
    try:
        return accounts_for_user(user=user).get(pk=pk)
    except (Account.DoesNotExist, ValueError, TypeError):
        raise Http404("No such patient in your clinics.") from None


def account_search(*, user, search: str = "", clinic_id=None) -> QuerySet[Account]:
    """The patient list, by name: a search that is exactly a patient number finds just that
    account (the unique index); otherwise, from 3 characters, every account whose name or
    number contains it."""
    accounts = accounts_for_user(user=user).order_by("name", "pk")
    if clinic_id:
        accounts = accounts.filter(clinic_id=clinic_id)
    if search := search.strip():
        exact = accounts.filter(number__in=spellings(search))
        if exact.exists() or len(search) < SEARCH_MIN_FRAGMENT:
            return exact
        return accounts.filter(Q(name__icontains=search) | Q(number__icontains=search))
    return accounts


def account_open_balance(*, account: Account) -> Decimal:
    """What the patient still owes: the balance due of their issued invoices, summed."""
    owed = Invoice.objects.filter(account=account).exclude(status=InvoiceStatus.DRAFT).aggregate(
        owed=Sum(F("total") - F("amount_credited") - F("amount_paid") + F("amount_refunded"),
                 output_field=MoneyField()))["owed"]
    return owed or ZERO
