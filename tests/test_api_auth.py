"""API authentication end to end: create_api_client → POST /o/token/ (client credentials) →
POST /graphql/ with the bearer token. Tokens act as the application's owner and carry only the
client's scopes; anything but a valid token (or a signed-in session with its CSRF token) is
refused with 401 before the schema runs."""

import base64
import hashlib
import json
from datetime import timedelta
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from api.models import ApiClient
from api.views import INVALID_TOKEN, UNAUTHENTICATED
from audit.models import Action, AuditEvent
from refunds.models import CreditNote

from .api_helpers import GRAPHQL_URL, api_application, api_token, gql, gql_response
from .factories import ClinicFactory, DisputeReasonFactory, clerk_factory

TOKEN_URL = "/o/token/"
CLINICS = "{ clinics { id code } }"
INVOICE = "query($id: ID!) { invoice(id: $id) { id number } }"
REFUND = """
mutation($invoiceId: ID!, $disputeReasonId: ID!) {
  invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId) {
    creditNote { id }
    errors
  }
}"""

AccessToken = get_access_token_model()
Application = get_application_model()


def create_client(username, scopes="billing:read billing:write", name="Lab integration"):
    """create_api_client as an integrator runs it: (client_id, client_secret, all stdout)."""
    out = StringIO()
    call_command("create_api_client", "--user", username, "--scopes", scopes, "--name", name,
                 stdout=out)
    output = out.getvalue()
    credentials = json.loads(output.strip().splitlines()[-1])
    assert set(credentials) == {"client_id", "client_secret"}
    return credentials["client_id"], credentials["client_secret"], output


def basic(client_id, client_secret):
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def token_request(client, client_id, client_secret, **fields):
    data = {"grant_type": "client_credentials", **fields}
    return client.post(TOKEN_URL, data=urlencode(data),
                       content_type="application/x-www-form-urlencoded",
                       HTTP_AUTHORIZATION=basic(client_id, client_secret))


def stored(raw_token):
    """The AccessToken row of a raw token (stored hashed at rest: looked up by checksum)."""
    checksum = hashlib.sha256(raw_token.encode()).hexdigest()
    return AccessToken.objects.get(token_checksum=checksum)


def assert_401(response, message):
    assert response.status_code == 401
    assert response.json() == {"errors": [{"message": message}]}
    assert response["WWW-Authenticate"].startswith('Bearer realm="api"')


# -- create_api_client → /o/token/ → /graphql/ -----------------------------------------------------

@pytest.mark.django_db
def test_a_client_gets_a_token_with_its_scopes_acting_as_its_owner(client, clerk, clinic,
                                                                   other_clinic):
    client_id, client_secret, output = create_client("clerk", name="Lab integration")
    application = Application.objects.get(client_id=client_id)
    assert application.user == clerk
    assert application.name == "Lab integration"
    assert application.client_type == Application.CLIENT_CONFIDENTIAL
    assert application.authorization_grant_type == Application.GRANT_CLIENT_CREDENTIALS
    assert application.client_secret != client_secret  # stored hashed, shown only once
    assert client_secret not in output.splitlines()[0]

    response = token_request(client, client_id, client_secret)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert sorted(body["scope"].split()) == ["billing:read", "billing:write"]
    assert body["expires_in"] > 0
    token = stored(body["access_token"])
    assert token.user == clerk  # client-credentials tokens act as the application's owner
    assert token.application == application
    assert sorted(token.scope.split()) == ["billing:read", "billing:write"]

    data = gql(client, body["access_token"], CLINICS)
    assert data == {"data": {"clinics": [{"id": str(clinic.pk), "code": "MUSCAT"}]}}
    assert other_clinic.code not in json.dumps(data)


@pytest.mark.django_db
def test_a_client_may_ask_for_fewer_of_its_scopes(client, clerk):
    client_id, client_secret, _ = create_client("clerk")
    response = token_request(client, client_id, client_secret, scope="billing:read")
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "billing:read"


@pytest.mark.django_db
def test_the_token_endpoint_refuses_a_scope_the_client_lacks(client, clerk):
    client_id, client_secret, _ = create_client("clerk", scopes="billing:read billing:write")
    response = token_request(client, client_id, client_secret,
                             scope="billing:read approvals:write")
    assert 400 <= response.status_code < 500
    assert response.json()["error"] == "invalid_scope"
    assert not AccessToken.objects.exists()


@pytest.mark.django_db
def test_the_token_endpoint_refuses_a_wrong_secret(client, clerk):
    client_id, _, _ = create_client("clerk")
    response = token_request(client, client_id, "not-the-secret")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


# -- create_api_client refusals --------------------------------------------------------------------

def _clients_state():
    return Application.objects.count(), ApiClient.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("username, scopes", [
    ("nobody", "billing:read"),  # unknown user
    ("clerk", "billing:read billing:delete"),  # unknown scope
    ("clerk", "   "),  # no scope at all
])
def test_create_api_client_refuses_and_creates_nothing(clerk, username, scopes):
    before = _clients_state()
    with pytest.raises(CommandError):
        call_command("create_api_client", "--user", username, "--scopes", scopes,
                     stdout=StringIO())
    assert _clients_state() == before


@pytest.mark.django_db
def test_create_api_client_refuses_an_inactive_user(clerk):
    clerk.is_active = False
    clerk.save(update_fields=["is_active"])
    with pytest.raises(CommandError):
        call_command("create_api_client", "--user", "clerk", "--scopes", "billing:read",
                     stdout=StringIO())
    assert _clients_state() == (0, 0)


# -- 401 -------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_no_token_and_no_session_is_401(client):
    assert_401(gql_response(client, None, CLINICS), UNAUTHENTICATED)


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer ", "bearer garbage"])
def test_a_token_that_does_not_exist_is_401(client, clerk, header):
    response = gql_response(client, None, CLINICS, HTTP_AUTHORIZATION=header)
    assert_401(response, INVALID_TOKEN)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.django_db
def test_an_expired_token_is_401(client, clerk):
    token = api_token(clerk, "billing:read", expires_in=-60)
    assert stored(token).expires < timezone.now()
    response = gql_response(client, token, CLINICS)
    assert_401(response, INVALID_TOKEN)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.django_db
def test_a_revoked_token_is_401(client, clerk):
    token = api_token(clerk, "billing:read")
    assert gql_response(client, token, CLINICS).status_code == 200
    stored(token).delete()
    assert_401(gql_response(client, token, CLINICS), INVALID_TOKEN)


@pytest.mark.django_db
def test_a_token_revoked_through_the_revoke_endpoint_is_401(client, clerk):
    client_id, client_secret, _ = create_client("clerk")
    token = token_request(client, client_id, client_secret).json()["access_token"]
    assert gql_response(client, token, CLINICS).status_code == 200
    response = client.post("/o/revoke_token/", data=urlencode({"token": token}),
                           content_type="application/x-www-form-urlencoded",
                           HTTP_AUTHORIZATION=basic(client_id, client_secret))
    assert response.status_code == 200
    assert_401(gql_response(client, token, CLINICS), INVALID_TOKEN)


@pytest.mark.django_db
def test_a_token_of_an_inactive_user_is_401(client, clerk):
    token = api_token(clerk, "billing:read")
    clerk.is_active = False
    clerk.save(update_fields=["is_active"])
    assert_401(gql_response(client, token, CLINICS), INVALID_TOKEN)


@pytest.mark.django_db
def test_a_token_in_the_query_string_is_not_accepted(client, clerk):
    """Only the Authorization header carries a token (RFC 9700: none in URLs)."""
    token = api_token(clerk, "billing:read")
    response = client.post(f"{GRAPHQL_URL}?access_token={token}",
                           data=json.dumps({"query": CLINICS}), content_type="application/json")
    assert_401(response, UNAUTHENTICATED)


@pytest.mark.django_db
def test_a_bad_token_is_401_even_with_a_signed_in_session(client, clerk):
    """A bearer header is never silently replaced by the browser session."""
    client.force_login(clerk)
    assert_401(gql_response(client, "garbage", CLINICS), INVALID_TOKEN)


@pytest.mark.django_db
def test_a_401_changes_nothing(client, clerk, make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    reason = DisputeReasonFactory()
    response = gql_response(client, "garbage", REFUND,
                            {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)})
    assert response.status_code == 401
    assert not CreditNote.objects.exists()


# -- CSRF: cookie sessions need it, bearer requests do not -----------------------------------------

def _post(client, **extra):
    return client.post(GRAPHQL_URL, data=json.dumps({"query": CLINICS}),
                       content_type="application/json", **extra)


@pytest.mark.django_db
def test_a_session_without_a_csrf_token_is_403(clerk):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clerk)
    response = _post(browser)
    assert response.status_code == 403


@pytest.mark.django_db
def test_a_session_with_its_csrf_token_is_served(clerk, clinic):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clerk)
    assert browser.get("/accounts/login/").status_code == 200  # sets the csrftoken cookie
    csrf = browser.cookies["csrftoken"].value
    response = _post(browser, HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200, response.content
    assert response.json() == {"data": {"clinics": [{"id": str(clinic.pk), "code": "MUSCAT"}]}}


@pytest.mark.django_db
def test_a_session_with_a_wrong_csrf_token_is_403(clerk):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clerk)
    browser.get("/accounts/login/")
    response = _post(browser, HTTP_X_CSRFTOKEN="x" * 32)
    assert response.status_code == 403


@pytest.mark.django_db
def test_a_bearer_request_needs_no_csrf_token(clerk, clinic):
    integrator = Client(enforce_csrf_checks=True)
    token = api_token(clerk, "billing:read")
    response = gql_response(integrator, token, CLINICS)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["clinics"] == [{"id": str(clinic.pk), "code": "MUSCAT"}]


@pytest.mark.django_db
def test_a_bearer_mutation_needs_no_csrf_token(clerk, make_invoice, pay):
    integrator = Client(enforce_csrf_checks=True)
    invoice = make_invoice()
    pay(invoice, "28.700")
    reason = DisputeReasonFactory()
    token = api_token(clerk, "billing:read billing:write")
    response = gql_response(integrator, token, REFUND,
                            {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)})
    assert response.status_code == 200, response.content
    assert response.json()["data"]["invoiceRefund"]["errors"] == []
    assert CreditNote.objects.filter(invoice=invoice).count() == 1


@pytest.mark.django_db
def test_an_api_change_is_audited_as_the_owner_from_the_client(client, clerk, make_invoice,
                                                                pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    reason = DisputeReasonFactory()
    application = api_application(clerk, "billing:read billing:write")
    token = api_token(clerk, "billing:read billing:write", application=application)
    body = gql(client, token, REFUND,
               {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)})
    assert body["data"]["invoiceRefund"]["errors"] == []
    event = AuditEvent.objects.get(action=Action.CREDIT_NOTE_ISSUED)
    assert event.actor == clerk
    assert event.client == f"api:{application.client_id}"


# -- scopes and clinics ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_token_without_billing_read_cannot_query(client, clerk, clinic):
    token = api_token(clerk, "billing:write")
    body = gql(client, token, CLINICS)
    assert body["data"] is None
    assert len(body["errors"]) == 1
    assert "billing:read" in body["errors"][0]["message"]
    assert body["errors"][0]["path"] == ["clinics"]


@pytest.mark.django_db
def test_a_token_without_billing_write_cannot_refund_and_nothing_changes(client, clerk,
                                                                          make_invoice, pay):
    invoice = make_invoice()
    pay(invoice, "28.700")
    reason = DisputeReasonFactory()
    token = api_token(clerk, "billing:read approvals:write")
    body = gql(client, token, REFUND,
               {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)})
    assert (body["data"] or {}).get("invoiceRefund") is None
    assert len(body["errors"]) == 1
    assert "billing:write" in body["errors"][0]["message"]
    assert body["errors"][0]["path"] == ["invoiceRefund"]
    assert not CreditNote.objects.exists()


@pytest.mark.django_db
def test_a_scope_does_not_give_the_user_a_permission_it_lacks(client, approver, make_invoice,
                                                              pay):
    """A client acts as its user: an approver's client with billing:write still cannot
    refund, and the refusal comes back in the payload with nothing changed."""
    invoice = make_invoice()
    pay(invoice, "28.700")
    reason = DisputeReasonFactory()
    token = api_token(approver, "billing:read billing:write")
    body = gql(client, token, REFUND,
               {"invoiceId": str(invoice.pk), "disputeReasonId": str(reason.pk)})
    payload = body["data"]["invoiceRefund"]
    assert payload["creditNote"] is None
    assert len(payload["errors"]) == 1
    assert "permission" in payload["errors"][0]
    assert not CreditNote.objects.exists()


@pytest.mark.django_db
def test_a_user_who_is_not_a_member_does_not_see_the_clinics_invoice(client, make_invoice,
                                                                     outsider):
    invoice = make_invoice()
    outsiders_token = api_token(outsider, "billing:read")
    body = gql(client, outsiders_token, INVOICE, {"id": str(invoice.pk)})
    assert body == {"data": {"invoice": None}}


@pytest.mark.django_db
def test_a_user_in_no_clinic_sees_no_clinics(client, roles, clinic):
    loner = clerk_factory(username="loner")
    assert gql(client, api_token(loner, "billing:read"), CLINICS) == {"data": {"clinics": []}}


@pytest.mark.django_db
def test_the_token_follows_its_owners_membership(client, clerk, clinic):
    """A client acts as its user: a clinic the user joins later is visible at once."""
    token = api_token(clerk, "billing:read")
    later = ClinicFactory(code="SOHAR", currency="OMR")
    later.members.add(clerk)
    codes = [c["code"] for c in gql(client, token, CLINICS)["data"]["clinics"]]
    assert codes == ["MUSCAT", "SOHAR"]


@pytest.mark.django_db
def test_two_applications_of_one_user_each_get_their_own_tokens(client, clerk):
    first = api_application(clerk, "billing:read")
    second = api_application(clerk, "billing:write")
    assert first.client_id != second.client_id
    token = api_token(clerk, "billing:read", application=first)
    assert gql_response(client, token, CLINICS).status_code == 200


# -- no GraphiQL page, no CDN ----------------------------------------------------------------------

def _assert_no_ide(response):
    assert response.status_code != 200
    content = response.content.decode(errors="replace").lower()
    for cdn in ("cdn", "unpkg", "jsdelivr"):
        assert cdn not in content


@pytest.mark.django_db
def test_get_graphql_is_not_served_anonymously(client):
    _assert_no_ide(client.get(GRAPHQL_URL, HTTP_ACCEPT="text/html"))


@pytest.mark.django_db
def test_get_graphql_is_not_served_to_a_signed_in_browser(client, clerk):
    client.force_login(clerk)
    _assert_no_ide(client.get(GRAPHQL_URL, HTTP_ACCEPT="text/html"))


@pytest.mark.django_db
def test_get_graphql_is_not_served_with_a_token(client, clerk):
    token = api_token(clerk, "billing:read")
    _assert_no_ide(client.get(GRAPHQL_URL, HTTP_ACCEPT="text/html",
                              HTTP_AUTHORIZATION=f"Bearer {token}"))


@pytest.mark.django_db
def test_get_is_answered_405_allow_post(client):
    response = client.get(GRAPHQL_URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


@pytest.mark.django_db
def test_queries_are_not_served_through_get(client, clerk):
    """ApiView says allow_queries_via_get = False: only POST is served."""
    token = api_token(clerk, "billing:read")
    response = client.get(GRAPHQL_URL, {"query": CLINICS}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code != 200, response.content
    client.force_login(clerk)
    response = client.get(GRAPHQL_URL, {"query": CLINICS})
    assert response.status_code != 200, response.content


@pytest.mark.django_db
def test_tokens_last_the_configured_lifetime(client, clerk, settings):
    client_id, client_secret, _ = create_client("clerk")
    body = token_request(client, client_id, client_secret).json()
    configured = settings.OAUTH2_PROVIDER["ACCESS_TOKEN_EXPIRE_SECONDS"]
    assert body["expires_in"] == configured
    token = stored(body["access_token"])
    remaining = token.expires - timezone.now()
    assert timedelta(seconds=configured - 60) < remaining <= timedelta(seconds=configured)
