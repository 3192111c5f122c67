"""The worked examples of docs/rules.md §3, carried out through the GraphQL API only."""

from decimal import Decimal

import pytest

from .api_helpers import WRITE, api_token, gql, mutate
from .factories import AccountFactory, PaymentMethodFactory, TaxRateFactory

D = Decimal

INVOICE_CREATE = """
mutation ($accountId: ID!, $lines: [InvoiceLineInput!]!) {
  invoiceCreate(accountId: $accountId, lines: $lines) {
    invoice { id total lines { id net tax total } }
    errors
  }
}
"""
PAYMENT_CREATE = """
mutation ($invoiceId: ID!, $amount: Decimal!, $paymentMethodId: ID!, $reference: String) {
  paymentCreate(invoiceId: $invoiceId, amount: $amount, paymentMethodId: $paymentMethodId,
                reference: $reference) {
    invoice { status balanceDue }
    errors
  }
}
"""
CREDIT_NOTE_CREATE = """
mutation ($invoiceId: ID!, $disputeReasonId: ID!, $lines: [CreditNoteLineInput!]!) {
  creditNoteCreate(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId, lines: $lines) {
    creditNote { amount subtotal taxAmount amountApplied amountUnapplied
                 lines { net tax total } }
    errors
  }
}
"""
INVOICE_REFUND = """
mutation ($invoiceId: ID!, $disputeReasonId: ID!) {
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId) {
    creditNote { amount subtotal taxAmount amountApplied amountUnapplied
                 lines { net tax total } }
    errors
  }
}
"""
INVOICE = """
query ($id: ID!) {
  invoice(id: $id) {
    status total amountPaid amountRefunded amountCredited balanceDue
    lines { creditedNet creditedTax }
    refunds { amount status }
  }
}
"""


class Api:
    """The calls an integration makes, as one user with billing:read and billing:write."""

    def __init__(self, client, user, reason):
        self.client, self.token, self.reason = client, api_token(user, WRITE), reason

    def invoice_create(self, account, rate, lines):
        payload = mutate(self.client, self.token, INVOICE_CREATE, {
            "accountId": str(account.pk),
            "lines": [{"description": description, "quantity": quantity, "unitPrice": price,
                       "taxRateId": str(rate.pk)} for description, quantity, price in lines],
        }, "invoiceCreate")
        assert payload["errors"] == []
        return payload["invoice"]

    def pay(self, invoice, amount, method, reference=""):
        payload = mutate(self.client, self.token, PAYMENT_CREATE, {
            "invoiceId": invoice["id"], "amount": amount, "paymentMethodId": str(method.pk),
            "reference": reference}, "paymentCreate")
        assert payload["errors"] == []
        return payload["invoice"]

    def credit(self, invoice, line, amount=None):
        payload = mutate(self.client, self.token, CREDIT_NOTE_CREATE, {
            "invoiceId": invoice["id"], "disputeReasonId": str(self.reason.pk),
            "lines": [{"invoiceLineId": line["id"], "amount": amount}]}, "creditNoteCreate")
        assert payload["errors"] == []
        return payload["creditNote"]

    def refund_in_full(self, invoice):
        payload = mutate(self.client, self.token, INVOICE_REFUND, {
            "invoiceId": invoice["id"], "disputeReasonId": str(self.reason.pk)},
            "invoiceRefund")
        assert payload["errors"] == []
        return payload["creditNote"]

    def invoice(self, invoice):
        result = gql(self.client, self.token, INVOICE, {"id": invoice["id"]})
        assert "errors" not in result, result
        return result["data"]["invoice"]


@pytest.fixture
def api(client, clerk, reason):
    return Api(client, clerk, reason)


@pytest.fixture
def invoice(api, account, vat):
    """Line A 2 × 10.000 and line B 1 × 7.333, both at VAT 5%: total 28.700 OMR."""
    invoice = api.invoice_create(account, vat, [("Consultation", "2", "10.000"),
                                                ("Dressing", "1", "7.333")])
    assert invoice["total"] == "28.700"
    assert [(line["net"], line["tax"], line["total"]) for line in invoice["lines"]] == [
        ("20.000", "1.000", "21.000"), ("7.333", "0.367", "7.700")]
    return invoice


def test_refunding_5_000_of_line_a_then_the_rest_refunds_exactly_what_was_paid(api, invoice,
                                                                              cash):
    line_a = invoice["lines"][0]
    assert api.pay(invoice, "28.700", cash) == {"status": "PAID", "balanceDue": "0.000"}

    first = api.credit(invoice, line_a, "5.000")

    assert first == {"amount": "5.250", "subtotal": "5.000", "taxAmount": "0.250",
                     "amountApplied": "0.000", "amountUnapplied": "5.250",
                     "lines": [{"net": "5.000", "tax": "0.250", "total": "5.250"}]}
    after_first = api.invoice(invoice)
    assert after_first["lines"][0] == {"creditedNet": "5.000", "creditedTax": "0.250"}
    assert after_first["refunds"] == [{"amount": "5.250", "status": "AWAITING_PAYOUT"}]

    rest = api.refund_in_full(invoice)

    assert rest == {"amount": "23.450", "subtotal": "22.333", "taxAmount": "1.117",
                    "amountApplied": "0.000", "amountUnapplied": "23.450",
                    "lines": [{"net": "15.000", "tax": "0.750", "total": "15.750"},
                              {"net": "7.333", "tax": "0.367", "total": "7.700"}]}
    final = api.invoice(invoice)
    assert {key: final[key] for key in ("status", "amountPaid", "amountRefunded",
                                        "amountCredited", "balanceDue")} == {
        "status": "REFUNDED", "amountPaid": "28.700", "amountRefunded": "28.700",
        "amountCredited": "28.700", "balanceDue": "0.000"}
    assert final["lines"] == [{"creditedNet": "20.000", "creditedTax": "1.000"},
                              {"creditedNet": "7.333", "creditedTax": "0.367"}]


def test_crediting_unpaid_line_b_reduces_the_balance_and_refunds_nothing(api, invoice):
    note = api.credit(invoice, invoice["lines"][1])

    assert note == {"amount": "7.700", "subtotal": "7.333", "taxAmount": "0.367",
                    "amountApplied": "7.700", "amountUnapplied": "0.000",
                    "lines": [{"net": "7.333", "tax": "0.367", "total": "7.700"}]}
    after = api.invoice(invoice)
    assert (after["status"], after["balanceDue"], after["refunds"]) == ("ISSUED", "21.000", [])


def test_crediting_line_a_after_10_000_by_card_refunds_2_300_to_the_card(
        api, invoice, clinic, django_capture_on_commit_callbacks):
    card = PaymentMethodFactory(clinic=clinic, name="Online card", kind="gateway",
                                gateway="sandbox")
    api.pay(invoice, "10.000", card, reference="ch_1")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        note = api.credit(invoice, invoice["lines"][0])

    assert len(callbacks) == 1
    assert note == {"amount": "21.000", "subtotal": "20.000", "taxAmount": "1.000",
                    "amountApplied": "18.700", "amountUnapplied": "2.300",
                    "lines": [{"net": "20.000", "tax": "1.000", "total": "21.000"}]}
    after = api.invoice(invoice)
    assert (after["balanceDue"], after["refunds"]) == (
        "0.000", [{"amount": "2.300", "status": "SUCCEEDED"}])


def test_three_credits_of_a_third_of_a_line_round_the_tax_cumulatively(api, account, vat):
    invoice = api.invoice_create(account, vat, [("Swab", "3", "0.333")])
    line = invoice["lines"][0]
    assert (line["net"], line["tax"]) == ("0.999", "0.050")

    taxes = [api.credit(invoice, line, "0.333")["taxAmount"] for _ in range(3)]

    assert taxes == ["0.017", "0.016", "0.017"]
    assert api.invoice(invoice)["lines"] == [{"creditedNet": "0.999", "creditedTax": "0.050"}]


def test_a_hundred_credits_of_0_010_credit_exactly_the_tax_of_the_line(api, account, vat):
    invoice = api.invoice_create(account, vat, [("Plaster", "1", "1.000")])
    line = invoice["lines"][0]
    assert line["tax"] == "0.050"

    taxes = [D(api.credit(invoice, line, "0.010")["taxAmount"]) for _ in range(100)]

    assert sum(taxes) == D("0.050")
    assert set(taxes) == {D("0.000"), D("0.001")}
    after = api.invoice(invoice)
    assert (after["status"], after["lines"]) == (
        "CREDITED", [{"creditedNet": "1.000", "creditedTax": "0.050"}])


def test_the_first_example_in_usd_has_two_places(client, other_clinic, outsider,
                                                 reason):
    api = Api(client, outsider, reason)
    rate = TaxRateFactory(clinic=other_clinic, name="Sales tax 5%", percentage=D("5"))
    account = AccountFactory(clinic=other_clinic, name="John Doe", number="A00001")
    cash = PaymentMethodFactory(clinic=other_clinic, name="Cash")
    invoice = api.invoice_create(account, rate, [("Visit", "2", "10.00"), ("Lab", "1", "7.33")])
    assert invoice["total"] == "28.70"
    api.pay(invoice, "28.70", cash)

    first = api.credit(invoice, invoice["lines"][0], "5.00")
    rest = api.refund_in_full(invoice)

    assert first == {"amount": "5.25", "subtotal": "5.00", "taxAmount": "0.25",
                     "amountApplied": "0.00", "amountUnapplied": "5.25",
                     "lines": [{"net": "5.00", "tax": "0.25", "total": "5.25"}]}
    assert (rest["amount"], rest["amountUnapplied"]) == ("23.45", "23.45")
    final = api.invoice(invoice)
    assert (final["status"], final["amountRefunded"], final["balanceDue"]) == (
        "REFUNDED", "28.70", "0.00")
