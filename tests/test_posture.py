"""What the application refuses whoever asks: repeated failed log-ins and token requests (per
username or client, per address), content from anywhere but itself (Content-Security-Policy),
copies of money pages kept by browsers or proxies, free text beyond its bound, oversize form
bodies."""

import re
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse

from billing.breakdown import CreditLineInput
from billing.text import REMARKS_MAX_LENGTH, REMARKS_TOO_LONG
from refunds.services import credit_note_create, invoice_cancel

from .api_helpers import WRITE, api_token, gql_response
from .conftest import ledger_state
from .factories import DisputeReasonFactory, set_policy
from .test_api_auth import TOKEN_URL, basic, create_client

LOGIN = "/accounts/login/"
LIMIT = settings.AXES_FAILURE_LIMIT


def log_in(client, username, password, address="10.1.1.1"):
    return client.post(LOGIN, {"username": username, "password": password},
                       REMOTE_ADDR=address)


@pytest.fixture
def staff(clerk):
    clerk.set_password("right-password-1")
    clerk.save()
    return clerk


def test_failed_log_ins_lock_that_username_from_that_address(client, staff):
    for _ in range(LIMIT - 1):
        assert log_in(client, "clerk", "wrong").status_code == 200  # the form, with its error
    assert log_in(client, "clerk", "wrong").status_code == 429
    # then even the right password waits out the cool-off, with a plain page
    locked = log_in(client, "clerk", "right-password-1")
    assert locked.status_code == 429
    assert "too many failed log-ins for this username from this computer" in (
        locked.content.decode())
    assert "Try again in 15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lockout_reads_the_same_whether_or_not_the_username_exists(client, staff):
    for username in ("clerk", "nobody-here"):
        for _ in range(LIMIT):
            log_in(client, username, "wrong")
    known, unknown = log_in(client, "clerk", "x"), log_in(client, "nobody-here", "x")
    assert known.status_code == unknown.status_code == 429
    assert known.content.decode().replace("clerk", "") == (
        unknown.content.decode().replace("nobody-here", ""))


def test_another_address_or_another_username_is_not_locked_out(client, staff, approver):
    approver.set_password("right-password-2")
    approver.save()
    for _ in range(LIMIT):
        log_in(client, "clerk", "wrong")
    # the clinic's other staff behind the same address still log in
    assert log_in(client, "approver", "right-password-2").status_code == 302
    client.logout()
    # and the same username from another address too
    assert log_in(client, "clerk", "right-password-1", address="10.9.9.9").status_code == 302


def test_a_successful_log_in_clears_the_failures(client, staff):
    for _ in range(LIMIT - 1):
        log_in(client, "clerk", "wrong")
    assert log_in(client, "clerk", "right-password-1").status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        log_in(client, "clerk", "wrong")
    assert log_in(client, "clerk", "right-password-1").status_code == 302


def token_request(client, client_id, client_secret, *, REMOTE_ADDR):
    return client.post(TOKEN_URL, data="grant_type=client_credentials",
                       content_type="application/x-www-form-urlencoded",
                       HTTP_AUTHORIZATION=basic(client_id, client_secret),
                       REMOTE_ADDR=REMOTE_ADDR)


def test_failed_token_requests_lock_that_client_from_that_address(client, clerk):
    client_id, secret, _ = create_client("clerk")
    for _ in range(LIMIT - 1):
        assert token_request(client, client_id, "wrong-secret",
                             REMOTE_ADDR="10.2.2.2").status_code == 401
    assert token_request(client, client_id, "wrong-secret",
                         REMOTE_ADDR="10.2.2.2").status_code == 429
    refused = token_request(client, client_id, secret, REMOTE_ADDR="10.2.2.2")
    assert refused.status_code == 429
    assert refused.json()["error"] == "slow_down"
    assert refused["Cache-Control"] == "no-store"
    # the secret is never what was recorded
    [attempt] = AccessAttempt.objects.all()
    assert (attempt.username, attempt.ip_address) == (f"api-client:{client_id}", "10.2.2.2")
    assert "wrong-secret" not in attempt.post_data
    # from another address the client still gets its token
    assert token_request(client, client_id, secret, REMOTE_ADDR="10.3.3.3").status_code == 200


def test_failed_token_requests_for_an_unknown_client_are_counted_too(client, db):
    for _ in range(LIMIT):
        token_request(client, "no-such-client", "x", REMOTE_ADDR="10.4.4.4")
    assert token_request(client, "no-such-client", "x",
                         REMOTE_ADDR="10.4.4.4").status_code == 429


# -- headers ---------------------------------------------------------------------------------------

def test_pages_forbid_content_from_anywhere_else(client, clerk, make_invoice):
    client.force_login(clerk)
    invoice = make_invoice()
    for url in (reverse("home"), reverse("desk:invoice_detail", args=[invoice.pk]), LOGIN):
        policy = client.get(url)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe" not in policy


TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_no_template_carries_inline_script_or_style():
    # The policy forbids them: they would simply not run.
    found = []
    for path in TEMPLATES.rglob("*.html"):
        if path.name == "graphiql.html":
            continue  # a development page with its own, looser policy (api.views)
        html = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) or "<style" in html:
            found.append(f"{path}: inline <script> or <style>")
        if re.search(r"\s(on[a-z]+|style)\s*=", html) or "javascript:" in html:
            found.append(f"{path}: event handler, style attribute or javascript: URL")
    assert found == []


def test_money_pages_and_api_answers_are_not_kept_by_browsers_or_proxies(
        client, clerk, make_invoice):
    client.force_login(clerk)
    invoice = make_invoice()
    assert client.get(reverse("desk:invoice_detail", args=[invoice.pk]))[
        "Cache-Control"] == "no-store"
    response = gql_response(client, api_token(clerk, WRITE), "{ clinics { code } }")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


# -- bounds -------------------------------------------------------------------------------------

TOO_LONG = "x" * (REMARKS_MAX_LENGTH + 1)
BOUND = REMARKS_TOO_LONG.format(limit=REMARKS_MAX_LENGTH)


def test_remarks_on_a_refund_are_bounded(make_invoice, pay, clerk):
    from billing.exceptions import BusinessRuleError

    invoice = make_invoice()
    pay(invoice, "28.700")
    before = ledger_state()
    with pytest.raises(BusinessRuleError, match=BOUND):
        credit_note_create(invoice=invoice, lines=[CreditLineInput(invoice.lines.first())],
                           dispute_reason=DisputeReasonFactory(), actor=clerk, remarks=TOO_LONG)
    assert ledger_state() == before


def test_remarks_on_a_cancellation_are_bounded(make_invoice, clerk):
    from billing.exceptions import BusinessRuleError

    invoice = make_invoice()
    before = ledger_state()
    with pytest.raises(BusinessRuleError, match=BOUND):
        invoice_cancel(invoice=invoice, remarks=TOO_LONG, actor=clerk)
    assert ledger_state() == before


def test_a_megabyte_of_remarks_through_the_api_is_a_plain_message(client, clerk, make_invoice,
                                                                   pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    before = ledger_state()
    response = gql_response(client, api_token(clerk, WRITE), """
        mutation ($id: ID!, $reason: ID!, $remarks: String!) {
          invoiceRefund(invoiceId: $id, disputeReasonId: $reason, remarks: $remarks) {
            errors } }""", {"id": str(invoice.pk), "reason": str(DisputeReasonFactory().pk),
                            "remarks": "x" * 200_000})
    assert response.json()["data"]["invoiceRefund"]["errors"] == [BOUND]
    assert ledger_state() == before


def test_an_oversize_form_body_is_a_400_and_changes_nothing(client, clerk, make_invoice, cash):
    client.force_login(clerk)
    invoice = make_invoice()
    before = ledger_state()
    response = client.post(reverse("billing:payment_create", args=[invoice.pk]), {
        "method": cash.pk, "amount": "1.000", "reference": "x" * (600 * 1024)})
    assert response.status_code == 400
    assert "larger or longer than any form" in response.content.decode()
    assert ledger_state() == before


def test_a_token_issued_to_another_user_than_the_clients_owner_is_refused(client, clerk,
                                                                           approver):
    # A client acts as the user it belongs to; a token naming anyone else (as an authorisation
    # flow would issue) is not accepted, so a clerk's client cannot act as an approver.
    from oauth2_provider.models import get_access_token_model

    from .api_helpers import api_application

    application = api_application(clerk, "billing:read approvals:write")
    raw = api_token(clerk, "billing:read approvals:write", application=application)
    get_access_token_model().objects.filter(application=application).update(user=approver)
    response = gql_response(client, raw, "{ clinics { code } }")
    assert response.status_code == 401


def test_the_oauth_self_service_pages_are_not_mounted(client, clerk):
    client.force_login(clerk)
    for url in ("/o/applications/", "/o/applications/register/", "/o/authorize/",
                "/o/authorized_tokens/", "/o/device/"):
        assert client.get(url).status_code == 404, url


# -- what the fuzz tests found ---------------------------------------------------------------------

def test_remarks_with_a_nul_character_are_refused_plainly(make_invoice, clerk):
    from billing.exceptions import BusinessRuleError
    from billing.text import REMARKS_CONTROL

    invoice = make_invoice()
    before = ledger_state()
    with pytest.raises(BusinessRuleError, match=re.escape(REMARKS_CONTROL)):
        invoice_cancel(invoice=invoice, remarks="Wrong\x00 patient", actor=clerk)
    assert ledger_state() == before


def test_an_approval_whose_remarks_do_not_validate_is_not_decided(client, clerk, approver,
                                                                  clinic, make_invoice, pay):
    from approvals.models import RequestStatus
    from approvals.services import refund_request_create

    set_policy(clinic, refund="approval")
    clinic.save()
    invoice = make_invoice()
    pay(invoice, "28.700")
    request = refund_request_create(invoice=invoice, remarks="Charged twice", actor=clerk)
    client.force_login(approver)
    response = client.post(reverse("approvals:request_approve", args=[request.pk]),
                           {"remarks": "Receipts checked\x00"}, follow=True)
    request.refresh_from_db()
    assert request.status == RequestStatus.REQUESTED
    assert "Null characters are not allowed." in response.content.decode()


def test_the_credit_note_search_with_a_nul_character_is_a_plain_page(client, clerk):
    client.force_login(clerk)
    response = client.get(reverse("refunds:credit_note_list"), {"q": "a\x00b", "kind": "\x00"})
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()


@pytest.mark.parametrize("respelled", [" {pk}", "{pk} ", "+{pk}", "٠{pk}", "1_{pk}"])
def test_a_line_id_is_read_exactly_as_sent(client, clerk, make_invoice, pay, respelled):
    invoice = make_invoice()
    pay(invoice, "28.700")
    line = invoice.lines.order_by("position").first()
    before = ledger_state()
    body = gql_response(client, api_token(clerk, WRITE), """
        mutation ($i: ID!, $r: ID!, $l: [CreditNoteLineInput!]!) {
          creditNoteCreate(invoiceId: $i, disputeReasonId: $r, lines: $l) {
            creditNote { id } errors } }""", {
        "i": str(invoice.pk), "r": str(DisputeReasonFactory().pk),
        "l": [{"invoiceLineId": respelled.format(pk=line.pk), "amount": "5.000"}]}).json()
    assert body["data"]["creditNoteCreate"]["creditNote"] is None
    assert body["data"]["creditNoteCreate"]["errors"][0].startswith("That line is not on")
    assert ledger_state() == before
