"""Invoices made for the browser tests through the services, with amounts the tests can name,
on top of the demo data."""

from decimal import Decimal

from django.contrib.auth import get_user_model

from billing.models import Account, Clinic, Service
from billing.services import LineInput, invoice_create, payment_record

D = Decimal


def person(username: str):
    return get_user_model().objects.get(username=username)


def demo_invoice(clinic_code: str, services: list[str], *, paid: bool = False,
                 account_name: str | None = None):
    """An issued invoice of the demo clinic with one line per catalogue service code, paid in
    full in cash when asked; made by the demo's first clerk."""
    clinic = Clinic.objects.get(code=clinic_code)
    clerk = person("clerk" if clinic_code == "MUSCAT" else "austin_clerk")
    accounts = Account.objects.filter(clinic=clinic).order_by("pk")
    account = accounts.get(name=account_name) if account_name else accounts.first()
    lines = [LineInput(quantity=D(1), service=Service.objects.get(clinic=clinic, code=code))
             for code in services]
    invoice = invoice_create(clinic=clinic, account=account, lines=lines, actor=clerk,
                             issue=True)
    if paid:
        method = clinic.payment_methods.get(name="Cash")
        payment_record(invoice=invoice, amount=invoice.total, method=method, actor=clerk)
    invoice.refresh_from_db()
    return invoice
