"""The invoice's states, apart from the models so that the rules (billing/rules.py) can name
them and the models' transitions can ask the rules."""

from django.db import models


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    CREDITED = "credited", "Credited"
    CANCELLED = "cancelled", "Cancelled"


# Invoices waiting for payment: Home lists them oldest first, through a partial index.
OPEN_FOR_PAYMENT = [InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID]
