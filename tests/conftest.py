"""Personas used across the tests: `clerk` and `approver` belong to the clinic, `outsider`
is billing staff of another clinic."""

import socket
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import connection

from audit.models import AuditEvent
from billing.exceptions import BusinessRuleError
from billing.models import Invoice, InvoiceLine, NumberSeries, Payment, Policy
from billing.roles import all_role_permissions, grant_role_permissions
from billing.services import LineInput, invoice_create, payment_record

from .api_helpers import APPROVE, WRITE, api_token
from .factories import (
    AccountFactory,
    ClinicFactory,
    DisputeReasonFactory,
    PaymentMethodFactory,
    TaxRateFactory,
    approver_factory,
    clerk_factory,
    set_policy,
)

D = Decimal

requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (row locks, triggers); CI runs it with DATABASE_URL set",
)


def _redis_is_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


requires_redis = pytest.mark.skipif(
    not _redis_is_up(), reason="needs Redis on 127.0.0.1:6379 (.ci/run starts it)")


@pytest.fixture
def clinic(db):
    return ClinicFactory(code="MUSCAT", name="Muscat Clinic", currency="OMR")


@pytest.fixture
def other_clinic(db):
    return ClinicFactory(code="AUSTIN", name="Austin Clinic", currency="USD",
                         timezone="America/Chicago")


@pytest.fixture
def roles(db):
    """The role groups the migrations create. A transactional test empties the database when it
    ends (migration data included), so later ones get the groups back from here."""
    roles = all_role_permissions()
    if Group.objects.filter(name__in=roles).count() != len(roles):
        grant_role_permissions(django_apps, roles)


@pytest.fixture
def clerk(clinic, roles):
    return clerk_factory(username="clerk", clinics=[clinic])


@pytest.fixture
def approver(clinic, roles):
    return approver_factory(username="approver", clinics=[clinic])


@pytest.fixture
def outsider(other_clinic, roles):
    return clerk_factory(username="outsider", clinics=[other_clinic])


@pytest.fixture
def vat(clinic):
    return TaxRateFactory(clinic=clinic, name="VAT 5%", percentage=D("5"))


@pytest.fixture
def account(clinic):
    return AccountFactory(clinic=clinic, name="Aisha Al-Balushi", number="P00001")


@pytest.fixture
def cash(clinic):
    return PaymentMethodFactory(clinic=clinic, name="Cash")


@pytest.fixture
def reason(db):
    """The dispute reason "Billing error" (active), for refunds and credit notes."""
    return DisputeReasonFactory(name="Billing error")


@pytest.fixture
def make_invoice(clinic, account, vat, clerk):
    """make_invoice([("2", "10.000"), ("1", "7.333")]) → an issued invoice with those lines."""

    def make(lines=(("2", "10.000"), ("1", "7.333")), *, issue=True, tax_rate=None,
             inv_clinic=None, inv_account=None, actor=None):
        return invoice_create(
            clinic=inv_clinic or clinic,
            account=inv_account or account,
            lines=[
                LineInput(description=f"Item {n}", quantity=D(q), unit_price=D(p),
                          tax_rate=tax_rate or vat)
                for n, (q, p) in enumerate(lines, start=1)
            ],
            actor=actor or clerk,
            issue=issue,
        )

    return make


@pytest.fixture
def pay(clerk, cash):
    def pay(invoice, amount, *, method=None, actor=None, reference=""):
        return payment_record(invoice=invoice, method=method or cash, amount=D(amount),
                              actor=actor or clerk, reference=reference)

    return pay


def ledger_state():
    """Everything a refused service call must leave as it was: row counts, every invoice's
    status, number and amounts, every number series, and the audit trail."""
    from refunds.models import CreditNote, CreditNoteLine, Refund

    return {
        "counts": {model.__name__: model.objects.count()
                   for model in (Invoice, InvoiceLine, Payment, NumberSeries, AuditEvent,
                                 CreditNote, CreditNoteLine, Refund)},
        "lines": list(InvoiceLine.objects.order_by("pk").values_list(
            "pk", "credited_net", "credited_tax")),
        "payments": list(Payment.objects.order_by("pk").values_list("pk", "amount_refunded")),
        "refunds": list(Refund.objects.order_by("pk").values_list("pk", "status", "attempts")),
        "invoices": list(Invoice.objects.order_by("pk").values_list(
            "pk", "status", "number", "sequence", "issue_date", "subtotal", "tax_amount", "total",
            "amount_paid", "amount_refunded", "amount_credited")),
        "series": list(NumberSeries.objects.order_by("pk").values_list("pk", "last_value")),
        "last_event": AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first(),
    }


@pytest.fixture
def refused(db):
    """with refused(MESSAGE): ... → the block raises BusinessRuleError with exactly MESSAGE
    and the database is left unchanged."""

    @contextmanager
    def refused(message):
        before = ledger_state()
        with pytest.raises(BusinessRuleError) as excinfo:
            yield excinfo
        assert excinfo.value.message == message
        assert ledger_state() == before

    return refused


def pytest_configure(config):
    # WhiteNoise warns on every test client request that `collectstatic` has not been run;
    # the tests do not serve static files.
    config.addinivalue_line("filterwarnings", "ignore:No directory at:UserWarning")


def pytest_collection_modifyitems(config, items):
    """Tests marked `slow` first: with `-n auto` one worker starts each at once while the
    others share the rest, instead of one starting late and finishing alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# -- Financial Approval (docs/rules.md §5) ---------------------------------------------------------


@pytest.fixture
def approval_clinic(clinic):
    """The `clinic`, with refunds, credits and cancellations needing an approved request (one
    approval rule for everything of each kind, needing one approver)."""
    set_policy(clinic, refund=Policy.APPROVAL, cancellation=Policy.APPROVAL)
    return clinic


@pytest.fixture
def clerk2(clinic, roles):
    """A second member of the clinic's billing staff."""
    return clerk_factory(username="clerk2", clinics=[clinic])


@pytest.fixture
def other_approver(other_clinic, roles):
    """A financial approver of another clinic."""
    return approver_factory(username="other_approver", clinics=[other_clinic])


# -- GraphQL API (tests/test_api_*.py) -------------------------------------------------------------


@pytest.fixture
def token(clerk):
    """An API access token of the clerk that reads and writes billing (WRITE)."""
    return api_token(clerk, WRITE)


@pytest.fixture
def read_token(clerk):
    """An API access token of the clerk that may only read (billing:read)."""
    return api_token(clerk, "billing:read")


@pytest.fixture
def approver_token(approver):
    """An API access token of the approver that reads billing and decides requests (APPROVE)."""
    return api_token(approver, APPROVE)


@pytest.fixture
def online_card(clinic):
    """A gateway payment method of the clinic, refunded through the sandbox gateway."""
    return PaymentMethodFactory(clinic=clinic, name="Online card", kind="gateway",
                                gateway="sandbox")


@pytest.fixture
def other_invoice(other_clinic, outsider):
    """An issued invoice of another clinic (USD): 2 × 10.00 and 1 × 7.33 at VAT 5%."""
    rate = TaxRateFactory(clinic=other_clinic, name="Sales tax 5%", percentage=D("5"))
    payer = AccountFactory(clinic=other_clinic, name="John Doe", number="A00001")
    return invoice_create(
        clinic=other_clinic, account=payer, actor=outsider, issue=True,
        lines=[LineInput(description="Visit", quantity=D("2"), unit_price=D("10.00"),
                         tax_rate=rate),
               LineInput(description="Lab", quantity=D("1"), unit_price=D("7.33"),
                         tax_rate=rate)],
    )
