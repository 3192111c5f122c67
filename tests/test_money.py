"""Money: Decimal only, rounded half-up to each currency's minor unit (docs/rules.md §1)."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Invoice
from billing.money import (
    format_money,
    has_currency_places,
    line_amounts,
    minor_units,
    quantum,
    round_money,
)
from billing.services import LineInput, invoice_create

from .factories import AccountFactory, ClinicFactory, TaxRateFactory, clerk_factory

D = Decimal


# -- round_money ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "currency", "expected"), [
    # no decimals
    ("2.5", "JPY", "3"),
    ("3.5", "JPY", "4"),  # half-even would give 4 too; 2.5 is the telling case
    ("2.4999", "JPY", "2"),
    ("-2.5", "JPY", "-3"),
    ("0", "JPY", "0"),
    # two decimals
    ("0.125", "USD", "0.13"),
    ("0.135", "USD", "0.14"),
    ("0.124999", "USD", "0.12"),
    ("-0.125", "USD", "-0.13"),
    ("10", "USD", "10.00"),
    # three decimals
    ("0.0005", "OMR", "0.001"),
    ("0.0025", "OMR", "0.003"),
    ("7.3334", "OMR", "7.333"),
    ("-0.0005", "OMR", "-0.001"),
    ("0.36665", "OMR", "0.367"),
])
def test_it_rounds_half_up_to_the_currency_minor_unit(amount, currency, expected):
    # given an amount with more places than the currency
    # when it is rounded
    rounded = round_money(D(amount), currency)
    # then halves go away from zero and the result has exactly the currency's places
    assert rounded == D(expected)
    assert rounded.as_tuple().exponent == -minor_units(currency)
    assert isinstance(rounded, Decimal)


def test_it_rounds_differently_from_pythons_default_half_even():
    assert round(D("2.5")) == 2  # Python: banker's rounding
    assert round_money(D("2.5"), "JPY") == D("3")
    assert round_money(D("0.125"), "USD") == D("0.13")


def test_round_money_rejects_float():
    with pytest.raises(TypeError, match="Decimal"):
        round_money(0.125, "USD")


def test_round_money_rejects_int():
    with pytest.raises(TypeError):
        round_money(1, "USD")


@pytest.mark.parametrize("call", [
    lambda: round_money(D("1"), "XXX"),
    lambda: quantum("XXX"),
    lambda: minor_units("usd"),
    lambda: has_currency_places(D("1"), "XXX"),
    lambda: format_money(D("1"), "XXX"),
    lambda: line_amounts(quantity=D("1"), unit_price=D("1"), rate=D("0"), currency="XXX"),
])
def test_unknown_currency_raises_value_error(call):
    with pytest.raises(ValueError, match="Unknown currency"):
        call()


# -- quantum, has_currency_places ----------------------------------------------------------------

@pytest.mark.parametrize(("currency", "expected"), [
    ("JPY", "1"), ("USD", "0.01"), ("OMR", "0.001"), ("KWD", "0.001"), ("EUR", "0.01"),
])
def test_quantum_is_the_smallest_amount_of_the_currency(currency, expected):
    assert quantum(currency) == D(expected)
    assert quantum(currency).as_tuple().exponent == -minor_units(currency)


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("12", "JPY", True),
    ("12.0", "JPY", True),
    ("12.5", "JPY", False),
    ("12.34", "USD", True),
    ("12.340", "USD", True),
    ("12.345", "USD", False),
    ("0.001", "USD", False),
    ("7.333", "OMR", True),
    ("7.3330", "OMR", True),
    ("0.0001", "OMR", False),
    ("0", "OMR", True),
    ("-1.25", "USD", True),
    ("NaN", "USD", False),
    ("Infinity", "USD", False),
])
def test_has_currency_places(amount, currency, expected):
    assert has_currency_places(D(amount), currency) is expected


# -- format_money --------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("12.5", "OMR", "12.500 OMR"),
    ("28.701", "OMR", "28.701 OMR"),
    ("0.0005", "OMR", "0.001 OMR"),
    ("1250", "USD", "1,250.00 USD"),
    ("1234567.891", "USD", "1,234,567.89 USD"),
    ("0.125", "USD", "0.13 USD"),
    ("1234.5", "JPY", "1,235 JPY"),
    ("0", "JPY", "0 JPY"),
    ("-1", "OMR", "-1.000 OMR"),
])
def test_format_money_always_shows_the_currency_places(amount, currency, expected):
    assert format_money(D(amount), currency) == expected


def test_format_money_of_none_is_blank():
    assert format_money(None, "OMR") == ""


def test_format_money_rejects_float():
    with pytest.raises(TypeError):
        format_money(12.5, "OMR")


# -- line_amounts (docs/rules.md §1.4) ----------------------------------------------------------

@pytest.mark.parametrize(("quantity", "price", "percentage", "currency", "net", "tax", "total"), [
    ("2", "10.000", "5", "OMR", "20.000", "1.000", "21.000"),
    ("1", "7.333", "5", "OMR", "7.333", "0.367", "7.700"),
    ("3", "0.333", "5", "OMR", "0.999", "0.050", "1.049"),
    ("1.5", "0.01", "0", "USD", "0.02", "0.00", "0.02"),  # 0.015 → 0.02 half-up
    ("1", "10", "15", "JPY", "10", "2", "12"),  # tax 1.5 → 2
    ("0.001", "0.001", "5", "OMR", "0.000", "0.000", "0.000"),
])
def test_line_amounts(quantity, price, percentage, currency, net, tax, total):
    # given a line; when its amounts are computed
    got = line_amounts(quantity=D(quantity), unit_price=D(price),
                       rate=D(percentage) / 100, currency=currency)
    # then net = round(q × p), tax = round(net × rate), total = net + tax
    assert got == (D(net), D(tax), D(total))
    assert all(isinstance(x, Decimal) for x in got)


def test_line_amounts_rejects_float():
    with pytest.raises(TypeError):
        line_amounts(quantity=2.0, unit_price=D("10.000"), rate=D("0.05"), currency="OMR")


# -- property: invoice totals are sums of their lines --------------------------------------------

PERCENTAGES = [D("0"), D("5"), D("15")]


@st.composite
def invoice_lines(draw):
    currency = draw(st.sampled_from(["OMR", "USD", "JPY"]))
    places = minor_units(currency)
    lines = draw(st.lists(
        st.tuples(
            st.decimals(min_value=D("0.001"), max_value=D("999"), places=3),
            st.decimals(min_value=D("0"), max_value=D("99999"), places=places),
            st.sampled_from(PERCENTAGES),
        ),
        min_size=1, max_size=6,
    ))
    return currency, lines


@pytest.mark.django_db
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=invoice_lines())
def test_invoice_totals_are_the_sums_of_their_lines(data):
    # given a clinic in the drawn currency with 0/5/15 % tax rates and a member clerk
    currency, specs = data
    clinic = ClinicFactory(code=f"PROP-{currency}", currency=currency)
    user = clerk_factory(username="prop-clerk", clinics=[clinic])
    account = AccountFactory(clinic=clinic)
    rates = {p: TaxRateFactory(clinic=clinic, name=f"Tax {p}%", percentage=p)
             for p in PERCENTAGES}

    # when an invoice is created through the service
    invoice = invoice_create(
        clinic=clinic, account=account, actor=user,
        lines=[LineInput(description=f"Line {n}", quantity=q, unit_price=p, tax_rate=rates[r])
               for n, (q, p, r) in enumerate(specs, start=1)],
    )

    # then what is stored adds up, to the currency's places, Decimal throughout
    invoice = Invoice.objects.get(pk=invoice.pk)
    lines = list(invoice.lines.all())
    assert len(lines) == len(specs)
    for line, (q, p, r) in zip(lines, specs, strict=True):
        assert (line.net, line.tax, line.total) == line_amounts(
            quantity=q, unit_price=p, rate=r / 100, currency=currency)
        assert has_currency_places(line.net, currency)
        assert has_currency_places(line.tax, currency)
    assert invoice.subtotal == sum((line.net for line in lines), D(0))
    assert invoice.tax_amount == sum((line.tax for line in lines), D(0))
    assert invoice.total == invoice.subtotal + invoice.tax_amount
    assert invoice.currency == currency
    assert all(isinstance(x, Decimal)
               for x in (invoice.subtotal, invoice.tax_amount, invoice.total))
