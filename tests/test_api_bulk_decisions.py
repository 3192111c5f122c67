"""financialRequestsApprove / financialRequestsReject: an approver decides several requests in
one call (approvals:write), each in its own transaction with its own outcome, in the order the
ids were given; one refused leaves the others decided. At most API_MAX_BULK_IDS ids a call."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from api.cost import TOO_COSTLY
from api.payloads import NO_REQUESTS, TOO_MANY_REQUESTS
from approvals.models import Approvers, FinancialRequest, RequestKind, RequestStatus
from approvals.rules import ALREADY_DECIDED, OWN_REQUEST
from approvals.services import NOT_FOUND as REQUEST_NOT_FOUND
from approvals.services import (
    REJECT_REMARKS,
    RuleSpec,
    approval_rules_set,
    refund_request_create,
    request_approve,
)
from audit.models import Action, AuditEvent
from billing.access import NO_PERMISSION
from billing.roles import BILLING_STAFF, FINANCIAL_APPROVERS

from .api_helpers import (
    APPROVE,
    api_state,
    api_token,
    audit_trail,
    gql,
    gql_response,
    mutate,
    mutate_without_scope,
    request_of_other_clinic,
)
from .factories import UserFactory

D = Decimal

OUTCOME_FIELDS = """
  outcomes {
    requestId ok error
    financialRequest { id status decidedBy decisionRemarks approvalsNeeded approvals { by } }
  }
  approved rejected errors
"""
APPROVE_MANY = f"""
mutation ($requestIds: [ID!]!, $remarks: String!) {{
  financialRequestsApprove(requestIds: $requestIds, remarks: $remarks) {{ {OUTCOME_FIELDS} }}
}}
"""
REJECT_MANY = f"""
mutation ($requestIds: [ID!]!, $remarks: String!) {{
  financialRequestsReject(requestIds: $requestIds, remarks: $remarks) {{ {OUTCOME_FIELDS} }}
}}
"""
CANNOT_DECIDE = NO_PERMISSION.format(action="approve or reject financial requests")


@pytest.fixture
def rules(approval_clinic):
    """Refunds from 100.000 OMR need two approvers, smaller ones one."""
    approval_rules_set(clinic=approval_clinic, kind=RequestKind.REFUND, rules=[
        RuleSpec(Approvers.TWO, amount_from=D("100.000")), RuleSpec(Approvers.ONE)])
    return approval_clinic


@pytest.fixture
def waiting(rules, make_invoice, clerk):
    """waiting(n): n refund requests by the clerk (28.700 OMR each, one approver)."""

    def make(count=1):
        return [refund_request_create(invoice=make_invoice(), remarks=f"Request {n}",
                                      actor=clerk) for n in range(count)]

    return make


@pytest.fixture
def head(rules, roles):
    """Billing staff and financial approver of the clinic: decides others' requests, never
    their own."""
    return UserFactory(username="head", clinics=[rules],
                       groups=[BILLING_STAFF, FINANCIAL_APPROVERS])


@pytest.fixture
def head_token(head):
    return api_token(head, APPROVE)


def ids(*requests):
    return [str(request.pk) for request in requests]


def approve_many(client, token, request_ids, remarks=""):
    return mutate(client, token, APPROVE_MANY, {"requestIds": request_ids, "remarks": remarks},
                  "financialRequestsApprove")


def reject_many(client, token, request_ids, remarks):
    return mutate(client, token, REJECT_MANY, {"requestIds": request_ids, "remarks": remarks},
                  "financialRequestsReject")


def status_of(request):
    request.refresh_from_db()
    return request.status


def refused(request_id, error):
    return {"requestId": request_id, "ok": False, "error": error, "financialRequest": None}


def test_each_request_gets_its_own_outcome_in_the_order_given(
        client, head, head_token, waiting, make_invoice, approver, other_invoice, outsider):
    # given: one to approve, one approved already, one the head submitted, one of another
    # clinic, and one that needs two approvers
    to_approve, decided_already = waiting(2)
    request_approve(financial_request=decided_already, actor=approver)
    own = refund_request_create(invoice=make_invoice(actor=head), remarks="Mine", actor=head)
    elsewhere = request_of_other_clinic(other_invoice, outsider)
    large = refund_request_create(invoice=make_invoice([("1", "200.000")]), remarks="Large",
                                  actor=to_approve.requested_by)
    assert large.approvals_needed == 2

    payload = approve_many(client, head_token, [
        *ids(to_approve, decided_already, own, elsewhere), "not-an-id", *ids(large)],
        remarks="Checked")

    assert payload["outcomes"] == [
        {"requestId": str(to_approve.pk), "ok": True, "error": None, "financialRequest": {
            "id": str(to_approve.pk), "status": "APPROVED", "decidedBy": "head",
            "decisionRemarks": "Checked", "approvalsNeeded": 1,
            "approvals": [{"by": "head"}]}},
        refused(str(decided_already.pk),
                ALREADY_DECIDED.format(who="approver", status="approved")),
        refused(str(own.pk), OWN_REQUEST),
        refused(str(elsewhere.pk), REQUEST_NOT_FOUND.format(pk=elsewhere.pk)),
        refused("not-an-id", "Request #not-an-id is not one of your clinics' requests."),
        {"requestId": str(large.pk), "ok": True, "error": None, "financialRequest": {
            "id": str(large.pk), "status": "REQUESTED", "decidedBy": None,
            "decisionRemarks": "", "approvalsNeeded": 2, "approvals": [{"by": "head"}]}},
    ]
    # the two-approver request got its first approval only: not counted as approved
    assert (payload["approved"], payload["rejected"], payload["errors"]) == (1, 0, [])
    assert [status_of(r) for r in (to_approve, decided_already, own, elsewhere, large)] == [
        RequestStatus.APPROVED, RequestStatus.APPROVED, RequestStatus.REQUESTED,
        RequestStatus.REQUESTED, RequestStatus.REQUESTED]
    assert audit_trail(to_approve)[-1][:3] == (Action.REQUEST_APPROVED, "requested", "approved")
    assert audit_trail(large)[-1][:3] == (Action.REQUEST_APPROVED, "requested", "requested")
    assert audit_trail(own)[-1][0] == Action.REQUEST_SUBMITTED


def test_one_refusal_leaves_the_others_decided(client, head, head_token, waiting,
                                               make_invoice):
    first, last = waiting(2)
    own = refund_request_create(invoice=make_invoice(actor=head), remarks="Mine", actor=head)

    payload = approve_many(client, head_token, ids(first, own, last))

    assert [o["ok"] for o in payload["outcomes"]] == [True, False, True]
    assert payload["approved"] == 2
    assert [status_of(r) for r in (first, own, last)] == [
        RequestStatus.APPROVED, RequestStatus.REQUESTED, RequestStatus.APPROVED]


@pytest.mark.parametrize("malformed", ["abc", "0", "-1", " 1", "1_0", "١",
                                       "99999999999999999999999"])
def test_an_id_that_is_not_a_row_id_is_one_refused_outcome_never_a_graphql_error(
        client, approver_token, waiting, malformed):
    [request] = waiting(1)

    payload = approve_many(client, approver_token, [malformed, str(request.pk)])

    assert payload["outcomes"][0] == refused(
        malformed, REQUEST_NOT_FOUND.format(pk=malformed))
    assert payload["outcomes"][1]["ok"] is True
    assert payload["approved"] == 1


def test_a_repeated_id_is_decided_once_and_answered_once(client, approver_token, waiting):
    first, second = waiting(2)

    payload = approve_many(client, approver_token, ids(first, second, first, first))

    assert [(o["requestId"], o["ok"]) for o in payload["outcomes"]] == [
        (str(first.pk), True), (str(second.pk), True)]
    assert payload["approved"] == 2
    assert [event[0] for event in audit_trail(first)].count(Action.REQUEST_APPROVED) == 1


def test_an_approver_rejects_several_with_one_remark(client, approver_token, waiting):
    requests = waiting(2)

    payload = reject_many(client, approver_token, ids(*requests), " Not covered ")

    assert [(o["ok"], o["financialRequest"]["status"], o["financialRequest"]["decisionRemarks"])
            for o in payload["outcomes"]] == [(True, "REJECTED", "Not covered")] * 2
    assert (payload["approved"], payload["rejected"], payload["errors"]) == (0, 2, [])
    assert [audit_trail(r)[-1][:3] for r in requests] == [
        (Action.REQUEST_REJECTED, "requested", "rejected")] * 2


@pytest.mark.parametrize("remarks", ["", "   "])
def test_a_rejection_without_remarks_is_refused_for_each_and_changes_nothing(
        client, approver_token, waiting, remarks):
    requests = waiting(2)
    before = api_state()

    payload = reject_many(client, approver_token, ids(*requests), remarks)

    assert payload["outcomes"] == [refused(str(r.pk), REJECT_REMARKS) for r in requests]
    assert (payload["rejected"], payload["errors"]) == (0, [])
    assert api_state() == before


def test_at_most_api_max_bulk_ids_a_call_and_nothing_is_decided_beyond(
        client, approver_token, waiting):
    assert settings.API_MAX_BULK_IDS == 100
    requests = waiting(3)
    before = api_state()

    with override_settings(API_MAX_BULK_IDS=2):
        payload = approve_many(client, approver_token, ids(*requests))

    assert payload == {"outcomes": [], "approved": 0, "rejected": 0,
                       "errors": [TOO_MANY_REQUESTS.format(limit=2, count=3)]}
    assert api_state() == before
    # repeated ids count once
    with override_settings(API_MAX_BULK_IDS=2):
        payload = approve_many(client, approver_token, ids(*requests[:2], requests[0]))
    assert payload["approved"] == 2


def test_the_default_cap_is_100_ids(client, approver_token, db):
    payload = approve_many(client, approver_token, [str(n) for n in range(1, 102)])

    assert payload["errors"] == [TOO_MANY_REQUESTS.format(limit=100, count=101)]
    assert payload["outcomes"] == []
    payload = approve_many(client, approver_token, [str(n) for n in range(1, 101)])
    assert payload["errors"] == [] and len(payload["outcomes"]) == 100


def test_no_ids_is_a_plain_error(client, approver_token, db):
    payload = approve_many(client, approver_token, [])

    assert payload == {"outcomes": [], "approved": 0, "rejected": 0, "errors": [NO_REQUESTS]}


@pytest.mark.parametrize("document", [APPROVE_MANY, REJECT_MANY])
def test_it_needs_the_approvals_write_scope(client, approver, waiting, document):
    requests = waiting(2)

    mutate_without_scope(client, api_token(approver, "billing:read billing:write"), document,
                         {"requestIds": ids(*requests), "remarks": "Checked"},
                         "approvals:write")


def test_a_user_without_the_approval_permission_is_refused_for_each(client, clerk2, waiting):
    requests = waiting(2)
    token = api_token(clerk2, "billing:read billing:write approvals:write")
    before = api_state()

    payload = approve_many(client, token, ids(*requests))

    assert payload["outcomes"] == [refused(str(r.pk), CANNOT_DECIDE) for r in requests]
    assert api_state() == before


def test_a_retry_with_the_same_idempotency_key_decides_nothing_twice(client, approver_token,
                                                                     waiting):
    requests = waiting(2)
    variables = {"requestIds": ids(*requests), "remarks": "Checked"}
    first = gql_response(client, approver_token, APPROVE_MANY, variables,
                         HTTP_IDEMPOTENCY_KEY="bulk-1")
    events = AuditEvent.objects.count()

    retry = gql_response(client, approver_token, APPROVE_MANY, variables,
                         HTTP_IDEMPOTENCY_KEY="bulk-1")

    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert first.json()["data"]["financialRequestsApprove"]["approved"] == 2
    assert AuditEvent.objects.count() == events


# -- what a call costs -----------------------------------------------------------------------------

MINIMAL = """
mutation ($requestIds: [ID!]!) {
  financialRequestsApprove(requestIds: $requestIds) { outcomes { requestId ok } errors }
}
"""
RICH = """
mutation ($requestIds: [ID!]!) {
  financialRequestsApprove(requestIds: $requestIds) {
    outcomes { requestId ok financialRequest {
      id status requestedBy decidedBy creditNoteId approvals { by at remarks } } }
    errors
  }
}
"""


def statements(client, token, document, requests) -> int:
    with CaptureQueriesContext(connection) as captured:
        result = gql(client, token, document, {"requestIds": ids(*requests)})
    assert all(o["ok"] for o in result["data"]["financialRequestsApprove"]["outcomes"]), result
    return len(captured.captured_queries)


def test_showing_the_decided_requests_costs_the_same_for_one_or_three(client, approver_token,
                                                                      waiting):
    requests = waiting(9)
    statements(client, approver_token, RICH, requests[:1])  # warms the caches

    one = (statements(client, approver_token, RICH, requests[1:2])
           - statements(client, approver_token, MINIMAL, requests[2:3]))
    three = (statements(client, approver_token, RICH, requests[3:6])
             - statements(client, approver_token, MINIMAL, requests[6:9]))

    assert three == one


def test_the_outcomes_count_as_many_as_a_call_may_decide_in_the_cost_of_a_document(
        client, approver_token, db):
    selection = ("outcomes { requestId ok error financialRequest { id kind status invoiceId "
                 "remarks requestedBy decidedBy decisionRemarks creditNoteId } } errors")
    one = f"mutation {{ a: financialRequestsApprove(requestIds: []) {{ {selection} }} }}"
    assert "errors" not in gql(client, approver_token, one)
    seven = "mutation { " + " ".join(
        f"a{n}: financialRequestsApprove(requestIds: []) {{ {selection} }}"
        for n in range(7)) + " }"

    result = gql(client, approver_token, seven)

    assert [e["message"] for e in result["errors"]] == [
        TOO_COSTLY.format(cost=7 * (1 + (1 + 100 * (3 + 1 + 9)) + 1), limit=8_000)]
    assert FinancialRequest.objects.count() == 0
