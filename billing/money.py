"""Money arithmetic: Decimal only, rounded half-up to each currency's minor unit (ISO 4217)."""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Digits after the decimal point per ISO 4217 currency. Clinics may only use currencies listed here.
MINOR_UNITS: dict[str, int] = {
    # three decimals: common for clinics in the Gulf and North Africa
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # no decimals
    "CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "PYG": 0, "UGX": 0, "VND": 0, "XAF": 0, "XOF": 0,
    # two decimals
    "AED": 2, "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EGP": 2,
    "EUR": 2, "GBP": 2, "HKD": 2, "INR": 2, "KES": 2, "MAD": 2, "MXN": 2, "MYR": 2, "NGN": 2,
    "NOK": 2, "NZD": 2, "PHP": 2, "PKR": 2, "PLN": 2, "QAR": 2, "SAR": 2, "SEK": 2, "SGD": 2,
    "THB": 2, "TRY": 2, "USD": 2, "ZAR": 2,
}

CURRENCY_CHOICES = [(code, code) for code in sorted(MINOR_UNITS)]

# Storage: wide enough for 3-decimal currencies and large clinic totals.
MONEY_MAX_DIGITS = 14
MONEY_DECIMAL_PLACES = 3
# Every stored amount is below this (99,999,999,999.999 at most).
MONEY_LIMIT = Decimal(10) ** (MONEY_MAX_DIGITS - MONEY_DECIMAL_PLACES)
# Line quantities: up to 9,999,999.999.
QUANTITY_LIMIT = Decimal(10) ** 7

ZERO = Decimal("0")


def minor_units(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(f"Unknown currency {currency!r}.") from None


def quantum(currency: str) -> Decimal:
    """The smallest amount of the currency: 0.001 OMR, 0.01 USD, 1 JPY."""
    return Decimal(1).scaleb(-minor_units(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (Python's own default is half-even)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"Money must be a Decimal, got {type(amount).__name__}.")
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def has_currency_places(amount: Decimal, currency: str) -> bool:
    """True when the amount needs no more decimal places than the currency has."""
    try:
        return amount == amount.quantize(quantum(currency))
    except InvalidOperation:
        return False


def format_money(amount: Decimal | None, currency: str) -> str:
    """'12.500 OMR', '1,250.00 USD': always the currency's number of places."""
    if amount is None:
        return ""
    places = minor_units(currency)
    return f"{round_money(amount, currency):,.{places}f} {currency}"


def line_amounts(
    *, quantity: Decimal, unit_price: Decimal, rate: Decimal, currency: str
) -> tuple[Decimal, Decimal, Decimal]:
    """A line's (net, tax, total): net = round(quantity × price), tax = round(net × rate)."""
    net = round_money(quantity * unit_price, currency)
    tax = round_money(net * rate, currency)
    return net, tax, net + tax


# -- Reading amounts typed by people or sent by integrations ---------------------------------------

# Every amount a person or an integration may enter is below this, in any currency.
AMOUNT_ENTRY_LIMIT = Decimal(10) ** 9
# Longer input is not an amount anyone types (and is not worth reading further).
AMOUNT_MAX_CHARACTERS = 40
# ASCII digits, at most one point, an optional leading minus (read only to say "greater than
# zero", "-0" included). No spaces, signs, underscores, thousands separators, exponents or
# other scripts' digits: Python's Decimal() accepts all of those, and `1_0` would be ten.
_AMOUNT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

AMOUNT_MISSING = "Enter an amount."
AMOUNT_NOT_A_NUMBER = (
    "Enter the amount with the digits 0-9 and a point for decimals, e.g. 12.500: "
    "no spaces, commas or other characters."
)
AMOUNT_NEGATIVE = "Enter an amount greater than zero."
AMOUNT_TOO_MANY_PLACES = "Amounts have at most {places} decimals."
AMOUNT_TOO_LARGE = "Enter an amount below {limit}."


class AmountError(ValueError):
    """An entered amount that is not one: `message` is what the person or integration is told."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def amount_limit_text(currency: str | None = None) -> str:
    """'1,000,000,000.000 OMR'; without a currency, '1,000,000,000'."""
    if currency is None:
        return f"{AMOUNT_ENTRY_LIMIT:,}"
    return format_money(AMOUNT_ENTRY_LIMIT, currency)


def parse_amount(text: str, *, currency: str | None = None,
                 places: int | None = MONEY_DECIMAL_PLACES,
                 refuse_negative: bool = True) -> Decimal:
    """The exact Decimal that `text` writes, or AmountError with a plain message.

    Zero is returned as zero: whether it is allowed is the caller's rule. Trailing zeros after
    the point are kept out of the count of decimals (10.500 has one place that matters).
    `places=None` and `refuse_negative=False` leave those two checks to a service whose message
    names the line or the currency (the API does that); the magnitude is always checked here."""
    if not isinstance(text, str):
        raise AmountError(AMOUNT_NOT_A_NUMBER)
    if text == "":
        raise AmountError(AMOUNT_MISSING)
    if len(text) > AMOUNT_MAX_CHARACTERS:
        digits = text.removeprefix("-")
        if digits.isascii() and digits.isdigit():
            raise AmountError(AMOUNT_TOO_LARGE.format(limit=amount_limit_text(currency)))
        raise AmountError(AMOUNT_NOT_A_NUMBER)
    if not _AMOUNT.fullmatch(text):
        raise AmountError(AMOUNT_NOT_A_NUMBER)
    if refuse_negative and text.startswith("-"):
        raise AmountError(AMOUNT_NEGATIVE)
    amount = Decimal(text)
    if abs(amount) >= AMOUNT_ENTRY_LIMIT:
        raise AmountError(AMOUNT_TOO_LARGE.format(limit=amount_limit_text(currency)))
    if places is not None and amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise AmountError(AMOUNT_TOO_MANY_PLACES.format(places=places))
    return amount
