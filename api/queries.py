"""Read-only queries, all limited to the caller's clinics (billing:read)."""

import strawberry
from django.conf import settings
from django.db.models import Prefetch
from graphql import GraphQLError
from strawberry import Info
from strawberry.types.nodes import SelectedField

from approvals.models import FinancialRequest, RequestKind
from approvals.rules import approval_rules
from billing.models import Clinic, DisputeReason, Invoice, Payment, PaymentMethod, TaxRate
from billing.selectors import invoice_search, visible_to
from refunds.models import CreditNote

from .lookups import object_id, user_of, visible_requests
from .permissions import needs
from .types import (
    ApprovalRuleType,
    ClinicType,
    CreditNoteType,
    DisputeReasonType,
    FinancialRequestType,
    InvoiceStatusEnum,
    InvoiceType,
    PaymentMethodType,
    RequestStatusEnum,
    TaxRateType,
)

OFFSET_TOO_FAR = (
    "`offset` is at most {limit:,}: narrow the list with clinicId, status or search instead."
)


def _int(value) -> int | None:
    return object_id(value)


def _page(first: int, offset: int) -> tuple[int, int]:
    """`first` within 0..API_MAX_PAGE_SIZE; an offset beyond API_MAX_OFFSET is refused (walking
    that far down a clinic group's ledger is slow and no screen needs it)."""
    if offset > settings.API_MAX_OFFSET:
        raise GraphQLError(OFFSET_TOO_FAR.format(limit=settings.API_MAX_OFFSET))
    return max(0, min(first, settings.API_MAX_PAGE_SIZE)), max(0, offset)


# What each list field of an Invoice needs read with it (one query each, whatever the page size).
INVOICE_RELATIONS = {
    "lines": "lines",
    "payments": Prefetch("payments", queryset=Payment.objects.select_related("method")),
    "creditNotes": "credit_notes__lines",
    "refunds": "refunds",
    "openRequests": Prefetch("requests", queryset=FinancialRequest.objects.select_related(
        "requested_by", "decided_by", "credit_note").prefetch_related(
            "approvals__approved_by")),
}


def with_invoice_details(invoices, *, selected: set[str] | None = None):
    """What an Invoice selection shows, in a fixed number of queries: the relations among
    `selected` (GraphQL field names), or all of them."""
    return invoices.select_related("clinic", "account").prefetch_related(*(
        prefetch for field, prefetch in INVOICE_RELATIONS.items()
        if selected is None or field in selected
    ))


def selected_fields(info: Info) -> set[str]:
    """The names of the fields selected on this field's objects, fragments included."""
    names: set[str] = set()

    def collect(selections) -> None:
        for selection in selections:
            if isinstance(selection, SelectedField):
                names.add(selection.name)
            else:  # a fragment, named or inline
                collect(selection.selections)

    for field in info.selected_fields:
        collect(field.selections)
    return names


def with_note_details(notes):
    return notes.prefetch_related("lines")


def with_request_details(requests):
    """What a FinancialRequest selection shows, in a fixed number of queries."""
    return requests.select_related("requested_by", "decided_by", "credit_note").prefetch_related(
        "approvals__approved_by")


def _clinics(info: Info) -> list[ClinicType]:
    return list(visible_to(Clinic.objects.all(), user=user_of(info)).order_by("code"))


def _tax_rates(info: Info, clinic_id: strawberry.ID) -> list[TaxRateType]:
    return list(visible_to(TaxRate.objects.all(), user=user_of(info))
                .filter(clinic_id=_int(clinic_id)).order_by("name"))


def _payment_methods(info: Info, clinic_id: strawberry.ID) -> list[PaymentMethodType]:
    return list(visible_to(PaymentMethod.objects.all(), user=user_of(info))
                .filter(clinic_id=_int(clinic_id)).order_by("name"))


def _approval_rules(info: Info, clinic_id: strawberry.ID) -> list[ApprovalRuleType]:
    """The clinic's rules, refunds first then cancellations, each in order."""
    clinic = visible_to(Clinic.objects.all(), user=user_of(info)).filter(
        pk=_int(clinic_id)).first()
    if clinic is None:
        return []
    return [rule for kind in RequestKind.values for rule in approval_rules(clinic, kind)]


def _dispute_reasons(info: Info) -> list[DisputeReasonType]:
    return list(DisputeReason.objects.filter(is_active=True).order_by("name"))


def _invoice(info: Info, id: strawberry.ID) -> InvoiceType | None:
    invoices = with_invoice_details(visible_to(Invoice.objects.all(), user=user_of(info)),
                                    selected=selected_fields(info))
    return invoices.filter(pk=_int(id)).first()


def _invoices(
    info: Info,
    clinic_id: strawberry.ID | None = None,
    search: str | None = None,
    status: InvoiceStatusEnum | None = None,
    first: int = 50,
    offset: int = 0,
) -> list[InvoiceType]:
    first, offset = _page(first, offset)
    invoices = invoice_search(user=user_of(info), search=search or "",
                              status=status.value if status else "",
                              clinic_id=_int(clinic_id) if clinic_id else None)
    return list(with_invoice_details(invoices, selected=selected_fields(info))
                .order_by("-created_at", "-pk")
                [offset:offset + first])


def _credit_note(info: Info, id: strawberry.ID) -> CreditNoteType | None:
    notes = with_note_details(visible_to(CreditNote.objects.all(), user=user_of(info)))
    return notes.filter(pk=_int(id)).first()


def _credit_notes(info: Info, invoice_id: strawberry.ID) -> list[CreditNoteType]:
    notes = with_note_details(visible_to(CreditNote.objects.all(), user=user_of(info)))
    return list(notes.filter(invoice_id=_int(invoice_id)).order_by("issued_at", "pk"))


def _financial_requests(
    info: Info,
    clinic_id: strawberry.ID | None = None,
    status: RequestStatusEnum | None = None,
    first: int = 50,
    offset: int = 0,
) -> list[FinancialRequestType]:
    first, offset = _page(first, offset)
    requests = with_request_details(visible_requests(info))
    if clinic_id is not None:
        requests = requests.filter(clinic_id=_int(clinic_id))
    if status is not None:
        requests = requests.filter(status=status.value)
    return list(requests.order_by("-requested_at", "-pk")[offset:offset + first])


READ = needs("billing:read")


@strawberry.type
class Query:
    clinics: list[ClinicType] = strawberry.field(resolver=_clinics, extensions=READ)
    tax_rates: list[TaxRateType] = strawberry.field(resolver=_tax_rates, extensions=READ)
    payment_methods: list[PaymentMethodType] = strawberry.field(resolver=_payment_methods,
                                                                extensions=READ)
    dispute_reasons: list[DisputeReasonType] = strawberry.field(resolver=_dispute_reasons,
                                                                extensions=READ)
    approval_rules: list[ApprovalRuleType] = strawberry.field(
        resolver=_approval_rules, extensions=READ,
        description="A clinic's approval rules: what will need one or two approvers.")
    invoice: InvoiceType | None = strawberry.field(resolver=_invoice, extensions=READ)
    invoices: list[InvoiceType] = strawberry.field(
        resolver=_invoices, extensions=READ,
        description=f"Newest first; `first` at most {settings.API_MAX_PAGE_SIZE}.")
    credit_note: CreditNoteType | None = strawberry.field(resolver=_credit_note,
                                                          extensions=READ)
    credit_notes: list[CreditNoteType] = strawberry.field(resolver=_credit_notes,
                                                          extensions=READ)
    financial_requests: list[FinancialRequestType] = strawberry.field(
        resolver=_financial_requests, extensions=READ,
        description=f"Newest first; `first` at most {settings.API_MAX_PAGE_SIZE}.")
