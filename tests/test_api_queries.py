"""The read side of the API (billing:read): every query sees only the caller's clinics; money is
a string with the currency's places; enums are upper case; lists page with first/offset; the
invoice list costs the same number of SQL queries for 5 rows as for 50; depth is limited and
introspection can be switched off (it is off in production)."""

import os
import subprocess
import sys
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from approvals.services import refund_request_create
from billing.breakdown import CreditLineInput
from billing.models import DisputeReason, Policy
from refunds.services import credit_note_create

from .api_helpers import api_token, gql, gql_response
from .factories import (
    AccountFactory,
    DisputeReasonFactory,
    PaymentMethodFactory,
    TaxRateFactory,
    set_policy,
)

D = Decimal


@pytest.fixture
def austin(other_clinic, outsider):
    """AUSTIN (USD), where only `outsider` works: a tax rate, a patient, a cash method."""
    return SimpleNamespace(
        clinic=other_clinic,
        vat=TaxRateFactory(clinic=other_clinic, name="Sales tax 5%", percentage=D("5")),
        account=AccountFactory(clinic=other_clinic, name="Austin Patient", number="A00001"),
        cash=PaymentMethodFactory(clinic=other_clinic, name="Cash"),
    )


@pytest.fixture
def austin_invoice(make_invoice, pay, austin, outsider):
    invoice = make_invoice((("2", "10.00"), ("1", "7.33")), inv_clinic=austin.clinic,
                           inv_account=austin.account, tax_rate=austin.vat, actor=outsider)
    pay(invoice, "28.70", method=austin.cash, actor=outsider)
    return invoice


def ids(items):
    return [item["id"] for item in items]


# -- each query sees the caller's clinics only -----------------------------------------------------

@pytest.mark.django_db
def test_clinics_lists_only_the_callers_clinics(client, read_token, clinic, other_clinic):
    body = gql(client, read_token, "{ clinics { id code name currencyId timezone refundPolicy "
                              "cancellationPolicy } }")
    assert body == {"data": {"clinics": [{
        "id": str(clinic.pk), "code": "MUSCAT", "name": "Muscat Clinic", "currencyId": "OMR",
        "timezone": clinic.timezone, "refundPolicy": "DIRECT", "cancellationPolicy": "DIRECT",
    }]}}


@pytest.mark.django_db
def test_policies_are_upper_case_enums(client, read_token, approval_clinic):
    body = gql(client, read_token, "{ clinics { refundPolicy cancellationPolicy } }")
    assert body["data"]["clinics"] == [{"refundPolicy": "APPROVAL",
                                        "cancellationPolicy": "APPROVAL"}]


@pytest.mark.django_db
def test_tax_rates_of_the_callers_clinic_only(client, read_token, clinic, vat, austin):
    TaxRateFactory(clinic=clinic, name="Reduced 12.5%", percentage=D("12.5"))
    query = "query($c: ID!) { taxRates(clinicId: $c) { id name percentage isActive } }"
    mine = gql(client, read_token, query, {"c": str(clinic.pk)})["data"]["taxRates"]
    assert [(r["name"], r["percentage"], r["isActive"]) for r in mine] == [
        ("Reduced 12.5%", "12.5", True), ("VAT 5%", "5", True)]
    assert gql(client, read_token, query, {"c": str(austin.clinic.pk)}) == {
        "data": {"taxRates": []}}
    assert gql(client, read_token, query, {"c": "nope"}) == {"data": {"taxRates": []}}


@pytest.mark.django_db
def test_payment_methods_of_the_callers_clinic_only(client, read_token, clinic, cash, austin):
    PaymentMethodFactory(clinic=clinic, name="Online card", kind="gateway", gateway="sandbox")
    query = "query($c: ID!) { paymentMethods(clinicId: $c) { id name kind isActive } }"
    mine = gql(client, read_token, query, {"c": str(clinic.pk)})["data"]["paymentMethods"]
    assert [(m["name"], m["kind"]) for m in mine] == [("Cash", "MANUAL"),
                                                      ("Online card", "GATEWAY")]
    assert gql(client, read_token, query, {"c": str(austin.clinic.pk)}) == {
        "data": {"paymentMethods": []}}


@pytest.mark.django_db
def test_dispute_reasons_are_the_active_ones(client, read_token):
    DisputeReason.objects.all().delete()
    DisputeReasonFactory(name="Billing error")
    DisputeReasonFactory(name="Duplicate payment")
    DisputeReason.objects.create(name="Retired reason", is_active=False)
    body = gql(client, read_token, "{ disputeReasons { id name isActive } }")
    assert [(r["name"], r["isActive"]) for r in body["data"]["disputeReasons"]] == [
        ("Billing error", True), ("Duplicate payment", True)]


@pytest.mark.django_db
def test_invoice_by_id_only_in_the_callers_clinics(client, read_token, make_invoice, pay,
                                                   austin_invoice):
    invoice = make_invoice()
    pay(invoice, "28.700")
    query = "query($id: ID!) { invoice(id: $id) { id number status total } }"
    assert gql(client, read_token, query, {"id": str(invoice.pk)}) == {"data": {"invoice": {
        "id": str(invoice.pk), "number": invoice.number, "status": "PAID", "total": "28.700"}}}
    assert gql(client, read_token, query, {"id": str(austin_invoice.pk)}) == {
        "data": {"invoice": None}}
    assert gql(client, read_token, query, {"id": "999999"}) == {"data": {"invoice": None}}
    assert gql(client, read_token, query, {"id": "not-a-number"}) == {"data": {"invoice": None}}


@pytest.mark.django_db
def test_credit_notes_only_in_the_callers_clinics(client, read_token, clerk, make_invoice, pay,
                                                  reason, outsider, austin_invoice):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line_a = invoice.lines.order_by("pk").first()
    note = credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                              dispute_reason=reason, actor=clerk)
    theirs = credit_note_create(full=True, invoice=austin_invoice, dispute_reason=reason,
                                actor=outsider)

    one = ("query($id: ID!) { creditNote(id: $id) { id number kind amount subtotal taxAmount "
           "amountApplied amountUnapplied currencyId creditedInvoiceId entityId "
           "disputeReasonId disputeId isCredit lines { invoiceLineId net tax total } } }")
    body = gql(client, read_token, one, {"id": str(note.pk)})
    assert body["data"]["creditNote"] == {
        "id": str(note.pk), "number": note.number, "kind": "REFUND", "amount": "5.250",
        "subtotal": "5.000", "taxAmount": "0.250", "amountApplied": "0.000",
        "amountUnapplied": "5.250", "currencyId": "OMR", "creditedInvoiceId": str(invoice.pk),
        "entityId": str(invoice.clinic_id), "disputeReasonId": str(reason.pk),
        "disputeId": None, "isCredit": note.is_credit,
        "lines": [{"invoiceLineId": str(line_a.pk), "net": "5.000", "tax": "0.250",
                   "total": "5.250"}],
    }
    assert gql(client, read_token, one, {"id": str(theirs.pk)}) == {"data": {"creditNote": None}}

    many = "query($i: ID!) { creditNotes(invoiceId: $i) { id } }"
    assert gql(client, read_token, many, {"i": str(invoice.pk)}) == {
        "data": {"creditNotes": [{"id": str(note.pk)}]}}
    assert gql(client, read_token, many, {"i": str(austin_invoice.pk)}) == {
        "data": {"creditNotes": []}}


@pytest.mark.django_db
def test_financial_requests_only_in_the_callers_clinics(client, read_token, clerk, approval_clinic,
                                                        make_invoice, pay, austin,
                                                        austin_invoice, outsider):
    mine_paid = make_invoice()
    pay(mine_paid, "28.700")
    mine = refund_request_create(invoice=mine_paid, remarks="Overcharged", actor=clerk)
    set_policy(austin.clinic, refund=Policy.APPROVAL)
    theirs = refund_request_create(invoice=austin_invoice, remarks="Theirs", actor=outsider)

    query = ("query($c: ID, $s: FinancialRequestStatus) { financialRequests(clinicId: $c, "
             "status: $s) { id kind status invoiceId requestedBy decidedBy creditNoteId "
             "remarks } }")
    expected = [{"id": str(mine.pk), "kind": "REFUND", "status": "REQUESTED",
                 "invoiceId": str(mine_paid.pk), "requestedBy": "clerk", "decidedBy": None,
                 "creditNoteId": None, "remarks": "Overcharged"}]
    assert gql(client, read_token, query)["data"]["financialRequests"] == expected
    assert gql(client, read_token, query, {"c": str(approval_clinic.pk), "s": "REQUESTED"})[
        "data"]["financialRequests"] == expected
    assert gql(client, read_token, query, {"s": "APPROVED"})["data"]["financialRequests"] == []
    assert gql(client, read_token, query, {"c": str(austin.clinic.pk)})[
        "data"]["financialRequests"] == []
    # the outsider sees theirs only
    outsiders = gql(client, api_token(outsider, "billing:read"), query)
    assert ids(outsiders["data"]["financialRequests"]) == [str(theirs.pk)]


def test_an_invoice_shows_its_patient_account(client, read_token, make_invoice, account):
    invoice = make_invoice()
    query = "query($id: ID!) { invoice(id: $id) { accountId account { id name number } } }"
    assert gql(client, read_token, query, {"id": str(invoice.pk)})["data"]["invoice"] == {
        "accountId": str(account.pk),
        "account": {"id": str(account.pk), "name": "Aisha Al-Balushi", "number": "P00001"}}


def test_financial_requests_page_with_first_and_offset(client, read_token, clerk, approval_clinic,
                                                       make_invoice):
    requests = [refund_request_create(invoice=make_invoice(), remarks=f"Request {n}",
                                      actor=clerk) for n in range(3)]
    query = ("query($first: Int!, $offset: Int!) { financialRequests(first: $first, "
             "offset: $offset) { id } }")
    newest_first = [str(request.pk) for request in reversed(requests)]
    page = gql(client, read_token, query, {"first": 2, "offset": 1})["data"]["financialRequests"]
    assert ids(page) == newest_first[1:3]


# -- the invoice list ------------------------------------------------------------------------------

INVOICES = ("query($c: ID, $q: String, $s: InvoiceStatus, $first: Int! = 50, $offset: Int! = 0) "
            "{ invoices(clinicId: $c, search: $q, status: $s, first: $first, offset: $offset) "
            "{ id number status } }")


def listed(client, token, **variables):
    body = gql(client, token, INVOICES, variables)
    assert "errors" not in body, body
    return [int(item["id"]) for item in body["data"]["invoices"]]


@pytest.fixture
def some_invoices(clinic, make_invoice, pay):
    """Five MUSCAT invoices, newest last: a draft, two issued, two paid (the last of another
    patient)."""
    other_patient = AccountFactory(clinic=clinic, name="Salim Al-Harthy", number="P00777")
    draft = make_invoice(issue=False)
    issued = [make_invoice(), make_invoice()]
    paid = [make_invoice(), make_invoice(inv_account=other_patient)]
    for invoice in paid:
        pay(invoice, "28.700")
    return SimpleNamespace(draft=draft, issued=issued, paid=paid, other_patient=other_patient,
                           newest_first=[paid[1].pk, paid[0].pk, issued[1].pk, issued[0].pk,
                                         draft.pk])


@pytest.mark.django_db
def test_invoices_lists_the_callers_clinics_newest_first(client, read_token, some_invoices,
                                                         austin_invoice):
    assert listed(client, read_token) == some_invoices.newest_first


@pytest.mark.django_db
def test_invoices_by_clinic(client, read_token, clinic, some_invoices, austin_invoice):
    assert listed(client, read_token, c=str(clinic.pk)) == some_invoices.newest_first
    assert listed(client, read_token, c=str(austin_invoice.clinic_id)) == []


@pytest.mark.django_db
def test_invoices_search_by_number_and_patient(client, read_token, some_invoices, austin_invoice):
    target = some_invoices.issued[0]
    assert listed(client, read_token, q=target.number) == [target.pk]
    assert listed(client, read_token, q="salim") == [some_invoices.paid[1].pk]
    assert listed(client, read_token, q="P00777") == [some_invoices.paid[1].pk]
    assert listed(client, read_token, q=austin_invoice.number) == []
    assert listed(client, read_token, q="Austin Patient") == []


@pytest.mark.django_db
def test_invoices_by_status(client, read_token, some_invoices, austin_invoice):
    assert listed(client, read_token, s="PAID") == [p.pk for p in reversed(some_invoices.paid)]
    assert listed(client, read_token, s="ISSUED") == [i.pk for i in reversed(some_invoices.issued)]
    assert listed(client, read_token, s="DRAFT") == [some_invoices.draft.pk]
    assert listed(client, read_token, s="REFUNDED") == []


@pytest.mark.django_db
def test_invoices_status_must_be_an_enum_value(client, read_token, some_invoices):
    body = gql(client, read_token, INVOICES, {"s": "paid"})
    assert body.get("data") is None
    assert "InvoiceStatus" in body["errors"][0]["message"]


@pytest.mark.django_db
def test_invoices_first_and_offset(client, read_token, some_invoices):
    newest_first = some_invoices.newest_first
    assert listed(client, read_token, first=2) == newest_first[:2]
    assert listed(client, read_token, first=2, offset=2) == newest_first[2:4]
    assert listed(client, read_token, first=2, offset=4) == newest_first[4:]
    assert listed(client, read_token, offset=5) == []
    assert listed(client, read_token, first=0) == []
    assert listed(client, read_token, first=-3, offset=-3) == []  # negative values count as 0


def test_the_page_size_limit_is_100():
    assert settings.API_MAX_PAGE_SIZE == 100


@pytest.mark.django_db
def test_invoices_first_is_capped_at_the_page_size_limit(client, read_token, some_invoices):
    with override_settings(API_MAX_PAGE_SIZE=3):
        assert listed(client, read_token, first=100) == some_invoices.newest_first[:3]
        assert listed(client, read_token, first=3, offset=3) == some_invoices.newest_first[3:]


# -- money, enums, percentages ---------------------------------------------------------------------

INVOICE_MONEY = """query($id: ID!) { invoice(id: $id) {
  status currencyId subtotal taxAmount total amountPaid amountRefunded amountCredited balanceDue
  lines { quantity unitPrice taxRate net tax total creditedNet creditedTax }
  payments { amount refundedAmount paymentMethod { name kind } }
} }"""


@pytest.mark.django_db
def test_money_has_the_places_of_the_omr(client, read_token, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.7")
    body = gql(client, read_token, INVOICE_MONEY, {"id": str(invoice.pk)})["data"]["invoice"]
    assert {k: body[k] for k in ("status", "currencyId", "subtotal", "taxAmount", "total",
                                 "amountPaid", "amountRefunded", "amountCredited",
                                 "balanceDue")} == {
        "status": "PAID", "currencyId": "OMR", "subtotal": "27.333", "taxAmount": "1.367",
        "total": "28.700", "amountPaid": "28.700", "amountRefunded": "0.000",
        "amountCredited": "0.000", "balanceDue": "0.000"}
    first_line = body["lines"][0]
    assert {k: first_line[k] for k in ("unitPrice", "taxRate", "net", "tax", "total",
                                       "creditedNet", "creditedTax")} == {
        "unitPrice": "10.000", "taxRate": "5", "net": "20.000", "tax": "1.000",
        "total": "21.000", "creditedNet": "0.000", "creditedTax": "0.000"}
    assert body["payments"] == [{"amount": "28.700", "refundedAmount": "0.000",
                                 "paymentMethod": {"name": "Cash", "kind": "MANUAL"}}]


@pytest.mark.django_db
def test_money_has_the_places_of_the_usd(client, outsider, austin_invoice):
    token = api_token(outsider, "billing:read")
    body = gql(client, token, INVOICE_MONEY, {"id": str(austin_invoice.pk)})["data"]["invoice"]
    assert (body["currencyId"], body["subtotal"], body["taxAmount"], body["total"],
            body["balanceDue"]) == ("USD", "27.33", "1.37", "28.70", "0.00")
    assert [(line["unitPrice"], line["net"], line["tax"], line["total"])
            for line in body["lines"]] == [("10.00", "20.00", "1.00", "21.00"),
                                           ("7.33", "7.33", "0.37", "7.70")]
    assert body["payments"][0]["amount"] == "28.70"


@pytest.mark.django_db
def test_refunded_invoice_statuses_and_refund_enums(client, read_token, clerk, make_invoice, pay,
                                                    reason):
    invoice = make_invoice()
    pay(invoice, "28.700")
    credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
    query = ("query($id: ID!) { invoice(id: $id) { status amountRefunded balanceDue "
             "creditNotes { kind amount } refunds { status amount currencyId } } }")
    body = gql(client, read_token, query, {"id": str(invoice.pk)})["data"]["invoice"]
    assert body == {"status": "REFUNDED", "amountRefunded": "28.700", "balanceDue": "0.000",
                    "creditNotes": [{"kind": "REFUND", "amount": "28.700"}],
                    "refunds": [{"status": "AWAITING_PAYOUT", "amount": "28.700",
                                 "currencyId": "OMR"}]}


# -- SQL queries do not grow with the rows ---------------------------------------------------------

LIST_WITH_DETAILS = """{ invoices(first: 50) {
  id number
  lines { id net }
  payments { id amount paymentMethod { name } }
  creditNotes { id lines { id } }
  refunds { id }
  openRequests { id requestedBy }
} }"""


def _populate(count, *, clinic, clerk, make_invoice, pay, reason):
    """`count` paid or part-paid invoices of 2 lines each; every third with a partial credit
    note (and its refund), every fourth fully refunded, some with an open refund request (asked for
    while the clinic needs approval)."""
    invoices = []
    for n in range(count):
        invoice = make_invoice()
        pay(invoice, "28.700" if n % 2 == 0 else "10.000")
        invoices.append(invoice)
    for n, invoice in enumerate(invoices):
        if n % 4 == 0:
            credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk)
        elif n % 3 == 0:
            line = invoice.lines.order_by("pk").first()
            credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D("15.000"))],
                               dispute_reason=reason, actor=clerk)
    set_policy(clinic, refund=Policy.APPROVAL)
    for n, invoice in enumerate(invoices):
        if n % 5 == 1 and n % 4 != 0:
            refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
    set_policy(clinic, refund=Policy.DIRECT)


def _count_queries(client, token):
    with CaptureQueriesContext(connection) as queries:
        body = gql(client, token, LIST_WITH_DETAILS)
    assert "errors" not in body, body
    return len(queries), body["data"]["invoices"]


@pytest.mark.django_db
def test_the_invoice_list_costs_the_same_sql_queries_for_5_or_50_rows(
        client, read_token, clinic, clerk, make_invoice, pay, reason, austin_invoice):
    populate = dict(clinic=clinic, clerk=clerk, make_invoice=make_invoice, pay=pay,
                    reason=reason)
    _populate(5, **populate)
    few_queries, few = _count_queries(client, read_token)
    _populate(45, **populate)
    many_queries, many = _count_queries(client, read_token)

    assert len(few) == 5
    assert len(many) == 50
    # the data really has every kind of row the selection asks for
    assert sum(len(i["creditNotes"]) for i in many) > 10
    assert sum(len(i["refunds"]) for i in many) > 10
    assert sum(len(i["openRequests"]) for i in many) == 8
    assert all(len(i["lines"]) == 2 and len(i["payments"]) == 1 for i in many)
    assert all(i["payments"][0]["paymentMethod"] == {"name": "Cash"} for i in many)
    print(f"SQL queries: {few_queries} for 5 invoices, {many_queries} for 50")
    assert many_queries == few_queries


LIST_WITH_EVERY_FIELD = """{ invoices(first: 35) {
  id number status currencyId entityId accountId subtotal taxAmount total amountPaid
  amountRefunded amountCredited balanceDue
  lines { id description quantity taxRate unitPrice net tax total creditedNet creditedTax }
  payments { id reference amount refundedAmount invoiceId paymentMethod { id name kind } }
  creditNotes { id number kind amount subtotal taxAmount amountApplied amountUnapplied
                currencyId creditedInvoiceId entityId accountId disputeReasonId disputeId
                lines { id invoiceLineId net tax total } }
  refunds { id amount currencyId status paymentId creditNoteId invoiceId }
  openRequests { id kind status invoiceId requestedBy decidedBy creditNoteId }
} }"""


@pytest.mark.django_db
def test_every_field_of_the_invoice_list_costs_the_same_sql_queries_for_5_or_35_rows(
        client, read_token, clinic, clerk, make_invoice, pay, reason):
    """Money fields of nested rows read their currency from the parent: still no query per
    row. (35 rows with every field is about the most one request may ask for: api.cost.)"""
    populate = dict(clinic=clinic, clerk=clerk, make_invoice=make_invoice, pay=pay,
                    reason=reason)
    counts = []
    for count in (5, 30):
        _populate(count, **populate)
        with CaptureQueriesContext(connection) as queries:
            body = gql(client, read_token, LIST_WITH_EVERY_FIELD)
        assert "errors" not in body, body
        counts.append(len(queries))
    assert len(body["data"]["invoices"]) == 35
    print(f"SQL queries: {counts}")
    assert counts[0] == counts[1], counts


@pytest.mark.django_db
def test_financial_requests_and_credit_notes_cost_the_same_sql_queries_for_few_or_many(
        client, read_token, clinic, clerk, approver, make_invoice, pay, reason):
    from approvals.services import request_approve

    def add_requests(count):
        set_policy(clinic, refund=Policy.APPROVAL)
        for _ in range(count):
            invoice = make_invoice()
            pay(invoice, "28.700")
            request = refund_request_create(invoice=invoice, remarks="Overcharged", actor=clerk)
            request_approve(financial_request=request, actor=approver)
            credit_note_create(full=True, invoice=invoice, dispute_reason=reason, actor=clerk,
                               approval_request=request)

    requests_query = ("{ financialRequests { id kind status invoiceId requestedBy decidedBy "
                      "creditNoteId } }")
    notes_query = ("query($i: ID!) { creditNotes(invoiceId: $i) { id amount disputeId "
                   "lines { id net tax total } } }")
    counts = []
    for count in (1, 8):
        add_requests(count)
        invoice = make_invoice()
        pay(invoice, "28.700")
        set_policy(clinic, refund=Policy.DIRECT)
        line = invoice.lines.order_by("pk").first()
        for _ in range(count):
            credit_note_create(invoice=invoice, lines=[CreditLineInput(line, D("1.000"))],
                               dispute_reason=reason, actor=clerk)
        with CaptureQueriesContext(connection) as requests_queries:
            requests = gql(client, read_token, requests_query)["data"]["financialRequests"]
        with CaptureQueriesContext(connection) as notes_queries:
            notes = gql(client, read_token, notes_query, {"i": str(invoice.pk)})["data"][
                "creditNotes"]
        assert all(r["decidedBy"] == "approver" and r["creditNoteId"] for r in requests)
        assert len(notes) == count
        counts.append((len(requests_queries), len(notes_queries)))
    assert len(requests) == 9
    print(f"SQL queries: {counts}")
    assert counts[0] == counts[1], counts


# -- depth and introspection -----------------------------------------------------------------------

def _nested(depth):
    """{ a { a { … { id } … } } } with `depth` levels of selections."""
    return "{ " + "invoices { " * depth + "id" + " }" * (depth + 1)


@pytest.mark.django_db
def test_a_query_deeper_than_the_limit_is_refused(client, read_token):
    """The schema has no type cycle, so a query the schema accepts never gets this deep: the
    served limiter is shown with a selection deeper than API_MAX_QUERY_DEPTH."""
    limit = settings.API_MAX_QUERY_DEPTH
    response = gql_response(client, read_token, _nested(limit + 2))
    body = response.json()
    assert body.get("data") is None
    messages = [error["message"] for error in body["errors"]]
    assert any(f"exceeds maximum operation depth of {limit}" in m for m in messages), messages


def _context(user):
    return SimpleNamespace(request=SimpleNamespace(user=user,
                                                   api_scopes=frozenset({"billing:read"})))


@pytest.mark.django_db
def test_the_depth_limit_comes_from_the_settings(clerk, make_invoice):
    from api.schema import build_schema

    make_invoice()
    with override_settings(API_MAX_QUERY_DEPTH=1):
        shallow = build_schema(introspection=True)
    ok = shallow.execute_sync("{ clinics { code } }", context_value=_context(clerk))
    assert ok.errors is None
    assert ok.data == {"clinics": [{"code": "MUSCAT"}]}

    too_deep = shallow.execute_sync("{ invoices { lines { id } } }",
                                    context_value=_context(clerk))
    assert too_deep.data is None
    assert [e.message for e in too_deep.errors] == [
        "'anonymous' exceeds maximum operation depth of 1"]

    default = build_schema(introspection=True)
    deep_enough = default.execute_sync("{ invoices { lines { id } } }",
                                       context_value=_context(clerk))
    assert deep_enough.errors is None
    assert len(deep_enough.data["invoices"][0]["lines"]) == 2


INTROSPECTION = "{ __schema { types { name } } }"


def test_introspection_can_be_switched_off():
    from api.schema import build_schema

    result = build_schema(introspection=False).execute_sync(INTROSPECTION)
    assert result.data is None
    assert result.errors
    assert "introspection" in result.errors[0].message.lower()


def test_introspection_can_be_switched_on():
    from api.schema import build_schema

    result = build_schema(introspection=True).execute_sync(INTROSPECTION)
    assert result.errors is None
    assert "Invoice" in [t["name"] for t in result.data["__schema"]["types"]]


@pytest.mark.django_db
def test_the_served_schema_follows_the_introspection_setting(client, read_token):
    body = gql(client, read_token, INTROSPECTION)
    if settings.API_INTROSPECTION:
        assert "errors" not in body
    else:
        assert body.get("data") is None


def _production_setting(name, **env):
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("API_", "DJANGO_SETTINGS"))}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings.production",
                       DJANGO_SECRET_KEY="x" * 50,
                       DATABASE_URL="postgres://billing@db.invalid:5432/billing", **env)
    result = subprocess.run(  # noqa: S603 - our own interpreter, a fixed setting name
        [sys.executable, "-c", f"from django.conf import settings; print(settings.{name})"],
        env=environment, capture_output=True, text=True, timeout=60, cwd=settings.BASE_DIR)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_introspection_is_off_in_production_by_default():
    assert _production_setting("API_INTROSPECTION") == "False"


def test_introspection_may_be_switched_on_in_production():
    assert _production_setting("API_INTROSPECTION", API_INTROSPECTION="true") == "True"
