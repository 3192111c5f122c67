"""The number of SQL statements a page or a refund runs does not grow with the data or with the
rows shown (docs/rules.md §9): a page of 2 invoices and a page of 12 cost the same, and so does a
refund of 1 line and one of 6. (How fast each statement is, is the plan test's business.)"""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.services import refund_request_create
from billing.breakdown import CreditLineInput
from billing.services import LineInput, invoice_create
from refunds.services import credit_note_create

from .api_helpers import gql
from .factories import AccountFactory

D = Decimal


def statements(fetch) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = fetch()
    if hasattr(response, "status_code"):
        assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.fixture
def add_invoices(clinic, vat, clerk, pay):
    """add_invoices(n): n paid invoices of n different patients."""
    made = []

    def add(count):
        for _ in range(count):
            account = AccountFactory(clinic=clinic, name=f"Patient Balushi {len(made)}",
                                     number=f"Q{len(made):05d}")
            invoice = invoice_create(
                clinic=clinic, account=account, actor=clerk, issue=True,
                lines=[LineInput(description="Visit", quantity=D(1), unit_price=D("10.000"),
                                 tax_rate=vat)])
            pay(invoice, "10.500")
            made.append(invoice)
        return made

    return add


@pytest.mark.parametrize("url", [
    "/", "/billing/invoices/", "/billing/invoices/?q=balushi",
    "/billing/invoices/?q=INV-MUSCAT-000001", "/billing/invoices/?status=paid",
    "/billing/credit-notes/",
])
def test_a_page_costs_the_same_with_2_rows_or_12(client, clerk, add_invoices, url):
    client.force_login(clerk)
    add_invoices(2)
    few = statements(lambda: client.get(url))
    add_invoices(10)
    assert statements(lambda: client.get(url)) == few


def test_the_approval_queue_and_home_cost_the_same_with_2_requests_or_12(
        client, approval_clinic, clerk, approver, add_invoices):
    client.force_login(approver)
    invoices = add_invoices(12)
    for invoice in invoices[:2]:
        refund_request_create(invoice=invoice, remarks="Patient overcharged", actor=clerk)
    few = [statements(lambda url=url: client.get(url)) for url in ("/", "/approvals/")]
    for invoice in invoices[2:]:
        refund_request_create(invoice=invoice, remarks="Patient overcharged", actor=clerk)
    assert [statements(lambda url=url: client.get(url)) for url in ("/", "/approvals/")] == few


@pytest.fixture
def invoice_of(clinic, account, vat, clerk, pay, reason):
    """invoice_of(n): a paid invoice of n lines, in a clinic that has issued a credit note
    already (the first one also starts the clinic's credit-note series)."""

    def make(count):
        invoice = invoice_create(
            clinic=clinic, account=account, actor=clerk, issue=True,
            lines=[LineInput(description=f"Item {n}", quantity=D(1), unit_price=D("10.000"),
                             tax_rate=vat) for n in range(count)])
        pay(invoice, str(invoice.total))
        return invoice

    credit_note_create(full=True, invoice=make(1), dispute_reason=reason, actor=clerk)
    return make


def test_a_full_refund_costs_the_same_for_1_line_or_6(clerk, reason, invoice_of):
    one, six = invoice_of(1), invoice_of(6)
    cost = [statements(lambda inv=inv: credit_note_create(full=True, invoice=inv,
                                                          dispute_reason=reason,
                                                      actor=clerk)) for inv in (one, six)]
    assert cost[0] == cost[1]


def test_a_line_credit_costs_the_same_for_1_line_or_6(clerk, reason, invoice_of):
    one, six = invoice_of(1), invoice_of(6)
    cost = [
        statements(lambda inv=inv: credit_note_create(
            invoice=inv, lines=[CreditLineInput(line, D("1.000")) for line in inv.lines.all()],
            dispute_reason=reason, actor=clerk))
        for inv in (one, six)
    ]
    assert cost[0] == cost[1]


REFUND = """mutation ($invoiceId: ID!, $disputeReasonId: ID!) {
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId) {
    creditNote { id number amount } errors } }"""


def test_the_refund_mutation_costs_the_same_for_1_line_or_6(client, token, reason, invoice_of):
    cost = []
    for invoice in (invoice_of(1), invoice_of(6)):
        variables = {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)}
        with CaptureQueriesContext(connection) as captured:
            body = gql(client, token, REFUND, variables, HTTP_IDEMPOTENCY_KEY=f"k{invoice.pk}")
        assert body["data"]["invoiceRefund"]["errors"] == []
        cost.append(len(captured.captured_queries))
    assert cost[0] == cost[1]


def test_the_api_invoice_list_reads_only_the_relations_it_shows(client, token, add_invoices):
    add_invoices(3)

    def cost(fields: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            body = gql(client, token, f"{{ invoices(first: 50) {{ id {fields} }} }}")
        assert len(body["data"]["invoices"]) == 3
        return len(captured.captured_queries)

    bare = cost("")
    assert cost("lines { id }") == bare + 1
    assert cost("...on Invoice { payments { id } }") == bare + 1
    # (no invoice has a credit note, so their lines need no query)
    assert cost("lines { id } payments { id } creditNotes { id lines { id } } refunds { id } "
                "openRequests { id }") == bare + 5
