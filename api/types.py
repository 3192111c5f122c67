"""GraphQL types. Names and fields follow the billing API integrators know; money is a Decimal
serialised as a string with the currency's places ("28.700" for OMR, "28.70" for USD)."""

import datetime
import uuid
from decimal import Decimal
from enum import Enum

import strawberry
import strawberry_django
from strawberry.scalars import JSON

from approvals import models as approval_models
from approvals.rules import clinic_policy
from billing import models as billing
from billing.money import quantum
from refunds import models as refund_models


def _money(amount: Decimal | None, currency: str) -> Decimal | None:
    return None if amount is None else amount.quantize(quantum(currency))


def money(attr: str, *, currency: str = "currency", description: str | None = None):
    """A money field: `attr` of the object in the currency found at the path `currency`."""
    path = currency.split(".")

    def resolve(root) -> Decimal:
        code = root
        for step in path:
            code = getattr(code, step)
        return _money(getattr(root, attr), code)

    return strawberry_django.field(resolver=resolve, description=description)


def _percentage(value: Decimal) -> Decimal:
    """Without trailing zeros: 5.0000 → 5, 12.5000 → 12.5, 2.000 → 2 (never 1E+1)."""
    return Decimal(format(value.normalize(), "f"))


def _id(value) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


def _enum_of(choices: type, name: str) -> type[Enum]:
    """The GraphQL enum of a model's choices: the same states, named in upper case, so the API
    can never drift from the models."""
    return strawberry.enum(Enum(name, {value.upper(): value for value in choices.values}),
                           name=name)


PolicyEnum = _enum_of(billing.Policy, "Policy")
PaymentMethodKindEnum = _enum_of(billing.PaymentMethodKind, "PaymentMethodKind")
InvoiceStatusEnum = _enum_of(billing.InvoiceStatus, "InvoiceStatus")
RefundStatusEnum = _enum_of(refund_models.RefundStatus, "RefundStatus")
RequestKindEnum = _enum_of(approval_models.RequestKind, "FinancialRequestKind")
RequestStatusEnum = _enum_of(approval_models.RequestStatus, "FinancialRequestStatus")
CreditNoteKindEnum = _enum_of(refund_models.CreditNoteKind, "CreditNoteKind")


@strawberry_django.type(billing.Clinic, name="Clinic")
class ClinicType:
    id: strawberry.ID
    code: str
    name: str
    timezone: str

    @strawberry_django.field
    def currency_id(self, root: billing.Clinic) -> str:
        return root.currency

    @strawberry_django.field(description=(
        "APPROVAL when some refund or credit can need an approver under the clinic's approval "
        "rules (approvalRules says which), else DIRECT."))
    def refund_policy(self, root: billing.Clinic) -> PolicyEnum:
        return PolicyEnum(clinic_policy(root, approval_models.RequestKind.REFUND))

    @strawberry_django.field(description=(
        "APPROVAL when some cancellation can need an approver under the clinic's approval "
        "rules, else DIRECT."))
    def cancellation_policy(self, root: billing.Clinic) -> PolicyEnum:
        return PolicyEnum(clinic_policy(root, approval_models.RequestKind.CANCELLATION))


@strawberry_django.type(billing.TaxRate, name="TaxRate")
class TaxRateType:
    id: strawberry.ID
    name: str
    is_active: bool

    @strawberry_django.field
    def percentage(self, root: billing.TaxRate) -> Decimal:
        return _percentage(root.percentage)


@strawberry_django.type(billing.PaymentMethod, name="PaymentMethod")
class PaymentMethodType:
    id: strawberry.ID
    name: str
    is_active: bool

    @strawberry_django.field
    def kind(self, root: billing.PaymentMethod) -> PaymentMethodKindEnum:
        return PaymentMethodKindEnum(root.kind)


@strawberry_django.type(billing.DisputeReason, name="DisputeReason")
class DisputeReasonType:
    id: strawberry.ID
    name: str
    is_active: bool


@strawberry_django.type(billing.Account, name="Account")
class AccountType:
    id: strawberry.ID
    name: str
    number: str
    email: str
    phone: str

    @strawberry_django.field
    def entity_id(self, root: billing.Account) -> strawberry.ID:
        return _id(root.clinic_id)


@strawberry_django.type(billing.InvoiceLine, name="InvoiceLine")
class InvoiceLineType:
    id: strawberry.ID
    description: str

    @strawberry_django.field
    def quantity(self, root: billing.InvoiceLine) -> Decimal:
        return _percentage(root.quantity)

    @strawberry_django.field(description="Tax rate of the line in percent (a snapshot).")
    def tax_rate(self, root: billing.InvoiceLine) -> Decimal:
        return _percentage(root.tax_percentage)

    unit_price: Decimal = money("unit_price", currency="invoice.currency")
    net: Decimal = money("net", currency="invoice.currency")
    tax: Decimal = money("tax", currency="invoice.currency")
    total: Decimal = money("total", currency="invoice.currency")
    credited_net: Decimal = money("credited_net", currency="invoice.currency",
                                  description="Net (without tax) credited or refunded so far.")
    credited_tax: Decimal = money(
        "credited_tax", currency="invoice.currency", description="Tax credited or refunded so far.")


@strawberry_django.type(billing.Payment, name="Payment")
class PaymentType:
    id: strawberry.ID
    reference: str
    received_at: datetime.datetime
    payment_method: PaymentMethodType = strawberry_django.field(field_name="method")

    amount: Decimal = money("amount", currency="invoice.currency")
    refunded_amount: Decimal = money("amount_refunded", currency="invoice.currency")

    @strawberry_django.field
    def invoice_id(self, root: billing.Payment) -> strawberry.ID:
        return _id(root.invoice_id)


@strawberry_django.type(refund_models.Refund, name="Refund")
class RefundType:
    id: strawberry.ID
    gateway_reference: str
    failure_reason: str
    created_at: datetime.datetime

    amount: Decimal = money("amount")

    @strawberry_django.field
    def currency_id(self, root: refund_models.Refund) -> str:
        return root.currency

    @strawberry_django.field
    def status(self, root: refund_models.Refund) -> RefundStatusEnum:
        return RefundStatusEnum(root.status)

    @strawberry_django.field
    def payment_id(self, root: refund_models.Refund) -> strawberry.ID:
        return _id(root.payment_id)

    @strawberry_django.field
    def credit_note_id(self, root: refund_models.Refund) -> strawberry.ID:
        return _id(root.credit_note_id)

    @strawberry_django.field
    def invoice_id(self, root: refund_models.Refund) -> strawberry.ID:
        return _id(root.invoice_id)


@strawberry_django.type(refund_models.CreditNoteLine, name="CreditNoteLine")
class CreditNoteLineType:
    id: strawberry.ID

    @strawberry_django.field
    def invoice_line_id(self, root: refund_models.CreditNoteLine) -> strawberry.ID:
        return _id(root.invoice_line_id)

    net: Decimal = money("net", currency="credit_note.currency")
    tax: Decimal = money("tax", currency="credit_note.currency")
    total: Decimal = money("total", currency="credit_note.currency")


@strawberry_django.type(refund_models.CreditNote, name="CreditNote")
class CreditNoteType:
    id: strawberry.ID
    number: str
    uuid: uuid.UUID
    is_credit: bool
    is_legacy: bool
    description: str
    issued_at: datetime.datetime
    created_at: datetime.datetime
    updated_at: datetime.datetime
    lines: list[CreditNoteLineType]

    @strawberry_django.field
    def kind(self, root: refund_models.CreditNote) -> CreditNoteKindEnum:
        return CreditNoteKindEnum(root.kind)

    amount: Decimal = money("amount")
    subtotal: Decimal = money("subtotal")
    tax_amount: Decimal = money("tax_amount")
    amount_applied: Decimal = money(
        "amount_applied", description="The part that reduced the invoice's balance due.")

    amount_unapplied: Decimal = money(
        "amount_unapplied", description="The part refunded to the payer.")

    @strawberry_django.field
    def currency_id(self, root: refund_models.CreditNote) -> str:
        return root.currency

    @strawberry_django.field
    def credited_invoice_id(self, root: refund_models.CreditNote) -> strawberry.ID:
        return _id(root.invoice_id)

    @strawberry_django.field
    def entity_id(self, root: refund_models.CreditNote) -> strawberry.ID:
        return _id(root.clinic_id)

    @strawberry_django.field
    def account_id(self, root: refund_models.CreditNote) -> strawberry.ID:
        return _id(root.account_id)

    @strawberry_django.field
    def dispute_reason_id(self, root: refund_models.CreditNote) -> strawberry.ID:
        return _id(root.dispute_reason_id)

    @strawberry_django.field(description="The approved request that authorised it, if any.")
    def dispute_id(self, root: refund_models.CreditNote) -> strawberry.ID | None:
        return _id(root.approval_request_id)

    @strawberry_django.field(description="External reference, may be empty.")
    def warren_id(self, root: refund_models.CreditNote) -> str | None:
        return root.warren_id or None


@strawberry.type(name="RequestApproval")
class RequestApprovalType:
    by: str = strawberry.field(description="Username of the approver.")
    at: datetime.datetime
    remarks: str


ApproversEnum = _enum_of(approval_models.Approvers, "Approvers")


@strawberry_django.type(approval_models.ApprovalRule, name="ApprovalRule")
class ApprovalRuleType:
    """One of a clinic's ordered approval rules: the first whose range (the credit note's
    total, both ends included; null = open) and dispute reasons (empty = any) match decides."""

    id: strawberry.ID
    position: int

    @strawberry_django.field
    def kind(self, root: approval_models.ApprovalRule) -> RequestKindEnum:
        return RequestKindEnum(root.kind)

    @strawberry_django.field
    def amount_from(self, root: approval_models.ApprovalRule) -> Decimal | None:
        return _money(root.amount_from, root.clinic.currency)

    @strawberry_django.field
    def amount_up_to(self, root: approval_models.ApprovalRule) -> Decimal | None:
        return _money(root.amount_up_to, root.clinic.currency)

    @strawberry_django.field(description="Names of the dispute reasons it is limited to.")
    def reasons(self, root: approval_models.ApprovalRule) -> list[str]:
        return [reason.name for reason in root.reasons.all()]

    @strawberry_django.field
    def approvers(self, root: approval_models.ApprovalRule) -> ApproversEnum:
        return ApproversEnum(root.approvers)

    @strawberry_django.field(description="0, 1 or 2.")
    def approvals_needed(self, root: approval_models.ApprovalRule) -> int:
        return root.approvers_needed


@strawberry_django.type(approval_models.FinancialRequest, name="FinancialRequest")
class FinancialRequestType:
    id: strawberry.ID
    remarks: str
    decision_remarks: str
    requested_at: datetime.datetime
    decided_at: datetime.datetime | None
    expires_at: datetime.datetime | None = strawberry_django.field(
        description="When an approved request expires if it is not carried out by then.")

    @strawberry_django.field
    def kind(self, root: approval_models.FinancialRequest) -> RequestKindEnum:
        return RequestKindEnum(root.kind)

    @strawberry_django.field
    def status(self, root: approval_models.FinancialRequest) -> RequestStatusEnum:
        return RequestStatusEnum(root.status)

    @strawberry_django.field
    def invoice_id(self, root: approval_models.FinancialRequest) -> strawberry.ID:
        return _id(root.invoice_id)

    @strawberry_django.field(description="Username of the requester.")
    def requested_by(self, root: approval_models.FinancialRequest) -> str:
        return root.requested_by.get_username()

    @strawberry_django.field(description="Username of the approver who decided, if decided.")
    def decided_by(self, root: approval_models.FinancialRequest) -> str | None:
        return root.decided_by.get_username() if root.decided_by_id else None

    @strawberry_django.field
    def credit_note_id(self, root: approval_models.FinancialRequest) -> strawberry.ID | None:
        note = getattr(root, "credit_note", None)
        return _id(note.pk) if note is not None else None

    @strawberry_django.field(description=(
        "How many different approvers must approve it (1 or 2), from the clinic's approval "
        "rule when it was submitted."))
    def approvals_needed(self, root: approval_models.FinancialRequest) -> int:
        return root.approvals_needed

    @strawberry_django.field(description="The approvals given so far, oldest first.")
    def approvals(self, root: approval_models.FinancialRequest) -> list[RequestApprovalType]:
        return [RequestApprovalType(by=a.approved_by.get_username(), at=a.approved_at,
                                    remarks=a.remarks) for a in root.approvals.all()
                if a.round == root.approval_round]

    @strawberry_django.field(description=(
        "What the approvers approve: the credit note's breakdown when submitted (or last "
        "confirmed): lines, net, tax, total, reducesBalance, paidBack and the refunds to each "
        "payment; amounts as decimal strings."))
    def frozen_breakdown(self, root: approval_models.FinancialRequest) -> JSON | None:
        frozen = root.frozen_breakdown
        if frozen is None:
            return None
        return {"currency": frozen["currency"],
                "lines": [{"invoiceLineId": str(p["line"]), "description": p["description"],
                           "net": p["net"], "tax": p["tax"], "total": p["total"]}
                          for p in frozen["lines"]],
                "net": frozen["net"], "tax": frozen["tax"], "total": frozen["total"],
                "reducesBalance": frozen["reduces_balance"], "paidBack": frozen["paid_back"],
                "refunds": [{"paymentId": str(r["payment"]), "method": r["method"],
                             "amount": r["amount"]} for r in frozen["refunds"]]}

    @strawberry_django.field(description=(
        "The invoice changed so that the breakdown differs from the one approved: its approvers "
        "must confirm the new breakdown (frozenBreakdown) before it can be carried out."))
    def stale(self, root: approval_models.FinancialRequest) -> bool:
        return root.stale

    @strawberry_django.field
    def dispute_reason_id(self, root: approval_models.FinancialRequest) -> strawberry.ID | None:
        return _id(root.dispute_reason_id)


@strawberry_django.type(billing.Invoice, name="Invoice")
class InvoiceType:
    id: strawberry.ID
    number: str | None
    issue_date: datetime.date | None
    due_date: datetime.date | None
    created_at: datetime.datetime
    lines: list[InvoiceLineType]
    payments: list[PaymentType]
    credit_notes: list[CreditNoteType]
    refunds: list[RefundType]
    account: AccountType

    @strawberry_django.field
    def status(self, root: billing.Invoice) -> InvoiceStatusEnum:
        return InvoiceStatusEnum(root.status)

    @strawberry_django.field
    def currency_id(self, root: billing.Invoice) -> str:
        return root.currency

    @strawberry_django.field
    def entity_id(self, root: billing.Invoice) -> strawberry.ID:
        return _id(root.clinic_id)

    @strawberry_django.field
    def account_id(self, root: billing.Invoice) -> strawberry.ID:
        return _id(root.account_id)

    subtotal: Decimal = money("subtotal")
    tax_amount: Decimal = money("tax_amount")
    total: Decimal = money("total")
    amount_paid: Decimal = money("amount_paid")
    amount_refunded: Decimal = money("amount_refunded")
    amount_credited: Decimal = money("amount_credited")
    balance_due: Decimal = money("balance_due")

    @strawberry_django.field(description="Requests waiting for a decision or approved and not "
                                         "yet carried out.")
    def open_requests(self, root: billing.Invoice) -> list[FinancialRequestType]:
        return [request for request in root.requests.all()
                if request.status in approval_models.OPEN_STATUSES]
