"""Amounts typed on the screens or sent through the API are read exactly as written, or refused
with a plain message: ASCII digits and one point only. Python's Decimal() would also read
"1_0" as ten, " 5 " as five, Arabic-Indic or fullwidth digits, and exponents."""

import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.forms import PaymentForm
from billing.money import (
    AMOUNT_MISSING,
    AMOUNT_NEGATIVE,
    AMOUNT_NOT_A_NUMBER,
    AMOUNT_TOO_LARGE,
    AMOUNT_TOO_MANY_PLACES,
    AmountError,
    parse_amount,
)
from refunds.models import CreditNote

from .api_helpers import gql_response
from .conftest import ledger_state
from .factories import DisputeReasonFactory, set_policy

D = Decimal
LIMIT_OMR = AMOUNT_TOO_LARGE.format(limit="1,000,000,000.000 OMR")


@pytest.mark.parametrize(("text", "value"), [
    ("10", D("10")), ("10.5", D("10.5")), ("0.001", D("0.001")), (".5", D("0.5")),
    ("5.", D("5")), ("0", D("0")), ("12.34500", D("12.345")), ("999999999.999", D("999999999.999")),
])
def test_an_amount_in_ascii_digits_is_read_exactly(text, value):
    assert parse_amount(text) == value


@pytest.mark.parametrize(("text", "message"), [
    ("", AMOUNT_MISSING),
    ("1_0", AMOUNT_NOT_A_NUMBER),  # Decimal("1_0") is 10
    (" 10", AMOUNT_NOT_A_NUMBER), ("10 ", AMOUNT_NOT_A_NUMBER), ("10\n", AMOUNT_NOT_A_NUMBER),
    ("١٠", AMOUNT_NOT_A_NUMBER),  # Arabic-Indic digits
    ("۱۰", AMOUNT_NOT_A_NUMBER),  # Extended Arabic-Indic (Persian, Urdu) digits
    ("１０", AMOUNT_NOT_A_NUMBER),  # fullwidth digits
    ("१०", AMOUNT_NOT_A_NUMBER),  # Devanagari digits
    ("1e5", AMOUNT_NOT_A_NUMBER), ("1E+2", AMOUNT_NOT_A_NUMBER), ("1e309", AMOUNT_NOT_A_NUMBER),
    ("+5", AMOUNT_NOT_A_NUMBER), ("1,000", AMOUNT_NOT_A_NUMBER), ("1.2.3", AMOUNT_NOT_A_NUMBER),
    ("NaN", AMOUNT_NOT_A_NUMBER), ("Infinity", AMOUNT_NOT_A_NUMBER), (".", AMOUNT_NOT_A_NUMBER),
    ("-", AMOUNT_NOT_A_NUMBER), ("0x10", AMOUNT_NOT_A_NUMBER),
    ("-5", AMOUNT_NEGATIVE), ("-0", AMOUNT_NEGATIVE), ("-0.001", AMOUNT_NEGATIVE),
    ("12.3456", AMOUNT_TOO_MANY_PLACES.format(places=3)),
    ("1000000000", LIMIT_OMR), ("1000000000.000", LIMIT_OMR),
    ("9" * 32, LIMIT_OMR), ("9" * 5000, LIMIT_OMR),
])
def test_anything_else_is_refused_with_a_plain_message(text, message):
    with pytest.raises(AmountError) as refused:
        parse_amount(text, currency="OMR")
    assert refused.value.message == message


def test_the_limit_is_said_in_the_currency_entered():
    with pytest.raises(AmountError) as refused:
        parse_amount("1000000000", currency="USD")
    assert refused.value.message == "Enter an amount below 1,000,000,000.00 USD."


def test_the_api_leaves_sign_and_decimals_to_the_services_but_not_the_magnitude():
    assert parse_amount("-1.0001", places=None, refuse_negative=False) == D("-1.0001")
    with pytest.raises(AmountError):
        parse_amount("-1000000000", places=None, refuse_negative=False)


# Intended reading of a string: ASCII digits with at most one point, optional minus, nothing else.
PLAIN = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.text(max_size=50),
    st.text(alphabet="0123456789.-_ e+,١٠１", max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.from_regex(PLAIN, fullmatch=True),
))
def test_any_string_is_either_its_exact_value_or_a_plain_refusal(text):
    try:
        value = parse_amount(text)
    except AmountError as refused:
        assert refused.message in {
            AMOUNT_MISSING, AMOUNT_NOT_A_NUMBER, AMOUNT_NEGATIVE,
            AMOUNT_TOO_MANY_PLACES.format(places=3),
            AMOUNT_TOO_LARGE.format(limit="1,000,000,000"),
        }
        if PLAIN.fullmatch(text) and not text.startswith("-"):
            # a well-formed amount is refused only for its size or its decimals
            intended = Decimal(text)
            assert intended >= 10**9 or intended != intended.quantize(D("0.001"))
        return
    assert PLAIN.fullmatch(text) and not text.startswith("-")
    assert value == Decimal(text) and 0 <= value < 10**9
    assert value == value.quantize(D("0.001"))


# -- the forms ------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["1_0", " 10", "١٠", "1e1", "10,0"])
def test_the_payment_form_refuses_a_lenient_amount(client, clerk, make_invoice, cash, typed):
    invoice = make_invoice()
    client.force_login(clerk)
    before = ledger_state()
    response = client.post(reverse("billing:payment_create", args=[invoice.pk]), {
        "method": cash.pk, "amount": typed, "received_at": "2030-01-02T09:30"})
    assert response.status_code == 200
    assert response.context["form"].errors["amount"] == [AMOUNT_NOT_A_NUMBER]
    assert ledger_state() == before


def test_the_payment_form_says_the_limit_in_the_invoice_currency(make_invoice):
    form = PaymentForm({"amount": "1" + "0" * 31, "method": "", "received_at": ""},
                       invoice=make_invoice())
    assert form.errors["amount"] == [LIMIT_OMR]


@pytest.mark.parametrize(("typed", "message"), [
    ("1_0", AMOUNT_NOT_A_NUMBER), ("５", AMOUNT_NOT_A_NUMBER), ("1e309", AMOUNT_NOT_A_NUMBER),
    ("-1", AMOUNT_NEGATIVE), ("9" * 32, LIMIT_OMR),
])
def test_the_refund_form_refuses_a_lenient_amount(client, clerk, make_invoice, pay, typed,
                                                  message):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line = invoice.lines.order_by("position").first()
    client.force_login(clerk)
    before = ledger_state()
    response = client.post(reverse("refunds:credit_note_create", args=[invoice.pk]), {
        "dispute_reason": DisputeReasonFactory().pk, "payment": "", "remarks": "Overcharged",
        f"line_{line.pk}": "on", f"amount_{line.pk}": typed, "action": "confirm"})
    assert response.status_code == 200
    assert response.context["form"].errors[f"amount_{line.pk}"] == [message]
    assert ledger_state() == before


def test_the_refund_request_form_refuses_a_lenient_amount(client, clerk, make_invoice, pay,
                                                          clinic):
    set_policy(clinic, refund="approval")
    clinic.save()
    invoice = make_invoice()
    pay(invoice, "28.700")
    line = invoice.lines.order_by("position").first()
    client.force_login(clerk)
    before = ledger_state()
    response = client.post(reverse("approvals:refund_request_create", args=[invoice.pk]), {
        "remarks": "Overcharged", f"line_{line.pk}": "on", f"amount_{line.pk}": "1_0"})
    assert response.status_code == 200
    assert response.context["form"].errors[f"amount_{line.pk}"] == [AMOUNT_NOT_A_NUMBER]
    assert ledger_state() == before


# -- the API's Decimal scalar --------------------------------------------------------------------

CREDIT = """
mutation ($invoiceId: ID!, $reasonId: ID!, $lines: [CreditNoteLineInput!]!) {
  creditNoteCreate(invoiceId: $invoiceId, disputeReasonId: $reasonId, lines: $lines) {
    creditNote { id amount } errors
  }
}"""


@pytest.fixture
def credit(client, token, reason, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line = invoice.lines.order_by("position").first()

    def send(amount, *, raw=False):
        if raw:  # the amount as a JSON number, written exactly as given
            body = (f'{{"query": {json.dumps(CREDIT)}, "variables": {{"invoiceId": '
                    f'"{invoice.pk}", "reasonId": "{reason.pk}", "lines": [{{"invoiceLineId": '
                    f'"{line.pk}", "amount": {amount}}}]}}}}')
            return client.post("/graphql/", data=body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {token}")
        return gql_response(client, token, CREDIT, {
            "invoiceId": str(invoice.pk), "reasonId": str(reason.pk),
            "lines": [{"invoiceLineId": str(line.pk), "amount": amount}]})

    return send


@pytest.mark.parametrize(("amount", "message"), [
    ("1_0", AMOUNT_NOT_A_NUMBER), (" 5", AMOUNT_NOT_A_NUMBER), ("٥", AMOUNT_NOT_A_NUMBER),
    ("1e1", AMOUNT_NOT_A_NUMBER), ("9" * 32, AMOUNT_TOO_LARGE.format(limit="1,000,000,000")),
    (True, AMOUNT_NOT_A_NUMBER), ([1], AMOUNT_NOT_A_NUMBER),
])
def test_the_api_refuses_a_lenient_amount_and_changes_nothing(credit, amount, message):
    before = ledger_state()
    response = credit(amount)
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["message"].endswith(message)
    assert ledger_state() == before


@pytest.mark.parametrize("number", ["1e309", "1E1", "NaN", "Infinity", "1" + "0" * 40])
def test_the_api_refuses_a_json_number_that_is_not_an_amount(credit, number):
    before = ledger_state()
    response = credit(number, raw=True)
    body = response.json()
    assert response.status_code in {200, 400}
    assert body["errors"] and "Traceback" not in json.dumps(body)
    assert ledger_state() == before


def test_a_json_number_is_read_as_written_not_as_a_float(credit):
    response = credit("5.1", raw=True)  # float("5.1") * 1.05 would not be 5.355
    payload = response.json()["data"]["creditNoteCreate"]
    assert payload["errors"] == []
    assert CreditNote.objects.get().amount == D("5.355")


def test_the_sign_and_decimals_are_refused_by_the_service_naming_the_line(credit):
    before = ledger_state()
    payload = credit("-1.000").json()["data"]["creditNoteCreate"]
    assert payload["errors"] == ["Enter an amount greater than zero for “Item 1”."]
    assert ledger_state() == before
