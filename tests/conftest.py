"""Personas used across the tests: `clerk` and `approver` belong to the clinic, `outsider`
is billing staff of another clinic."""

from decimal import Decimal

import pytest
from django.db import connection

from billing.services import LineInput, invoice_create, payment_record

from .factories import (
    AccountFactory,
    ClinicFactory,
    PaymentMethodFactory,
    TaxRateFactory,
    approver_factory,
    clerk_factory,
)

D = Decimal

requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (row locks, triggers); CI runs it with DATABASE_URL set",
)


@pytest.fixture
def clinic(db):
    return ClinicFactory(code="MUSCAT", name="Muscat Clinic", currency="OMR")


@pytest.fixture
def other_clinic(db):
    return ClinicFactory(code="AUSTIN", name="Austin Clinic", currency="USD",
                         timezone="America/Chicago")


@pytest.fixture
def clerk(clinic):
    return clerk_factory(username="clerk", clinics=[clinic])


@pytest.fixture
def approver(clinic):
    return approver_factory(username="approver", clinics=[clinic])


@pytest.fixture
def outsider(other_clinic):
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
