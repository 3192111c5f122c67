"""The API's Decimal scalar reads amounts exactly as the screens do (billing.money.parse_amount).

strawberry's own Decimal hands any value to Decimal(): `"1_0"` is ten, `" 5 "` five, `"1e309"`
a 310-digit number, and a JSON number arrives as a float. Here an amount is a string of ASCII
digits with an optional point ("12.500"), or a JSON number written the same way; the request
body's numbers are read as Decimal, never float (api.views)."""

from decimal import Decimal

import strawberry
from graphql import GraphQLError
from graphql.language import FloatValueNode, IntValueNode, StringValueNode, ValueNode

from billing.money import AMOUNT_NOT_A_NUMBER, AmountError, parse_amount


def parse_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise GraphQLError(AMOUNT_NOT_A_NUMBER)
    try:
        # The sign and the currency's decimals are the services' to refuse, naming the line.
        return parse_amount(str(value), places=None, refuse_negative=False)
    except AmountError as error:
        raise GraphQLError(error.message) from None


def parse_decimal_literal(node: ValueNode, _variables: object = None) -> Decimal:
    # A literal in the document keeps its text: 10.5 and "10.5" are read alike, 1e5 is refused.
    if isinstance(node, StringValueNode | IntValueNode | FloatValueNode):
        return parse_decimal(node.value)
    raise GraphQLError(AMOUNT_NOT_A_NUMBER)


StrictDecimal = strawberry.scalar(
    name="Decimal",
    description="Decimal (fixed-point)",
    serialize=str,
    parse_value=parse_decimal,
    parse_literal=parse_decimal_literal,
)

SCALAR_OVERRIDES = {Decimal: StrictDecimal}
