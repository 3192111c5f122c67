"""The API contract, frozen: the schema's SDL must equal tests/snapshots/schema.graphql, so any
change to names, types, arguments or enums is made on purpose. To accept a deliberate change:

    UPDATE_SCHEMA_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_api_schema.py

and review the diff of tests/snapshots/schema.graphql with the change."""

import difflib
import os
from pathlib import Path

import pytest
from graphql import build_schema as sdl_schema
from graphql import get_named_type, parse, validate

from api.schema import schema

SNAPSHOT = Path(__file__).parent / "snapshots" / "schema.graphql"
UPDATE = "UPDATE_SCHEMA_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_api_schema.py"

# docs/rules.md §8, word for word.
RULES_INVOICE_REFUND = """
mutation invoiceRefund($invoiceId: ID!, $disputeReasonId: ID!) {
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId) {
    creditNote { id number amount subtotal taxAmount amountApplied amountUnapplied currencyId creditedInvoiceId entityId accountId disputeReasonId disputeId isCredit isLegacy issuedAt uuid warrenId createdAt updatedAt description }
    errors
  }
}
"""  # noqa: E501


def sdl() -> str:
    return str(schema).rstrip("\n") + "\n"


@pytest.fixture(scope="module")
def contract():
    """The served schema, read back from its SDL."""
    return sdl_schema(sdl())


def test_the_schema_matches_the_snapshot():
    current = sdl()
    if os.environ.get("UPDATE_SCHEMA_SNAPSHOT") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), f"No schema snapshot yet: create it with\n    {UPDATE}"
    recorded = SNAPSHOT.read_text()
    if current != recorded:
        diff = "".join(difflib.unified_diff(
            recorded.splitlines(keepends=True), current.splitlines(keepends=True),
            fromfile="tests/snapshots/schema.graphql", tofile="api.schema.schema"))
        pytest.fail("The GraphQL schema changed: integrators see this contract. If the change "
                    f"is deliberate, update the snapshot with\n    {UPDATE}\nand commit it "
                    f"with the change.\n\n{diff}", pytrace=False)


def test_the_design_invoice_refund_document_is_valid():
    assert validate(sdl_schema(sdl()), parse(RULES_INVOICE_REFUND)) == []


def _args(field) -> dict[str, str]:
    return {name: str(arg.type) for name, arg in field.args.items()}


def test_invoice_refund_takes_the_design_arguments(contract):
    field = contract.mutation_type.fields["invoiceRefund"]
    args = _args(field)
    assert (args["invoiceId"], args["disputeReasonId"]) == ("ID!", "ID!")
    required = [name for name, arg in field.args.items()
                if str(arg.type).endswith("!") and arg.ast_node.default_value is None]
    assert required == ["invoiceId", "disputeReasonId"]
    assert get_named_type(field.type).name == "InvoiceRefundPayload"
    payload = contract.get_type("InvoiceRefundPayload").fields
    assert str(payload["creditNote"].type) == "CreditNote"
    assert str(payload["errors"].type) == "[String!]!"
    assert "invoiceRefund(invoiceId: ID!, disputeReasonId: ID!" in sdl()


def test_credit_note_has_the_design_fields(contract):
    fields = contract.get_type("CreditNote").fields
    expected = {
        "id": "ID!", "number": "String!", "amount": "Decimal!", "subtotal": "Decimal!",
        "taxAmount": "Decimal!", "amountApplied": "Decimal!", "amountUnapplied": "Decimal!",
        "currencyId": "String!", "creditedInvoiceId": "ID!", "entityId": "ID!",
        "accountId": "ID!", "disputeReasonId": "ID!", "disputeId": "ID",
        "isCredit": "Boolean!", "isLegacy": "Boolean!", "issuedAt": "DateTime!",
        "uuid": "UUID!", "warrenId": "String", "createdAt": "DateTime!",
        "updatedAt": "DateTime!", "description": "String!",
    }
    assert {name: str(fields[name].type) for name in expected if name in fields} == expected


def test_the_queries_of_the_issue(contract):
    query = contract.query_type.fields
    assert {name: _args(field) for name, field in query.items()} == {
        "clinics": {},
        "taxRates": {"clinicId": "ID!"},
        "paymentMethods": {"clinicId": "ID!"},
        "disputeReasons": {},
        "invoice": {"id": "ID!"},
        "invoices": {"clinicId": "ID", "search": "String", "status": "InvoiceStatus",
                     "first": "Int!", "offset": "Int!"},
        "creditNote": {"id": "ID!"},
        "creditNotes": {"invoiceId": "ID!"},
        "financialRequests": {"clinicId": "ID", "status": "FinancialRequestStatus",
                              "first": "Int!", "offset": "Int!"},
        "approvalRules": {"clinicId": "ID!"},
    }
    assert "first: Int! = 50, offset: Int! = 0" in sdl()


def test_the_mutations(contract):
    assert set(contract.mutation_type.fields) == {
        "accountCreate", "invoiceCreate", "paymentCreate", "invoiceRefund", "creditNoteCreate",
        "invoiceCancel", "invoiceRefundRequestCreate", "invoiceCancellationRequestCreate",
        "financialRequestApprove", "financialRequestReject", "financialRequestWithdraw",
        "financialRequestsApprove", "financialRequestsReject", "refundRetry",
        "refundMarkPaidOut",
    }
    for name, field in contract.mutation_type.fields.items():
        payload = get_named_type(field.type)  # every mutation returns a payload …
        assert str(payload.fields["errors"].type) == "[String!]!", name  # … with errors


@pytest.mark.parametrize("enum, values", [
    ("InvoiceStatus", ["DRAFT", "ISSUED", "PARTIALLY_PAID", "PAID", "PARTIALLY_REFUNDED",
                       "REFUNDED", "CREDITED", "CANCELLED"]),
    ("FinancialRequestStatus", ["REQUESTED", "APPROVED", "REJECTED", "WITHDRAWN", "COMPLETED",
                                "EXPIRED"]),
    ("FinancialRequestKind", ["REFUND", "CANCELLATION"]),
    ("RefundStatus", ["PENDING", "SUCCEEDED", "FAILED", "AWAITING_PAYOUT", "PAID_OUT"]),
    ("CreditNoteKind", ["REFUND", "CREDIT", "CANCELLATION"]),
    ("Policy", ["DIRECT", "APPROVAL"]),
    ("PaymentMethodKind", ["MANUAL", "GATEWAY"]),
])
def test_enum_values(contract, enum, values):
    assert list(contract.get_type(enum).values) == values


def test_money_is_a_decimal_scalar_never_a_float(contract):
    floats = [f"{type_name}.{field_name}"
              for type_name, graphql_type in contract.type_map.items()
              if not type_name.startswith("__") and hasattr(graphql_type, "fields")
              for field_name, field in graphql_type.fields.items()
              if "Float" in str(field.type)]
    assert floats == []
    assert str(contract.get_type("Invoice").fields["total"].type) == "Decimal!"
