"""Money arithmetic: Decimal only, rounded half-up to each currency's minor unit (ISO 4217)."""

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
