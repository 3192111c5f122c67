"""The Stripe refund adapter, against a local stand-in for Stripe's refund endpoints
(`POST /v1/refunds`, `GET /v1/refunds`) served from a thread on 127.0.0.1."""

import json
import socket
import threading
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe as stripe_sdk
from django.test import override_settings

from billing.models import Payment, PaymentMethodKind
from refunds.gateways import GatewayUnavailable, gateway_for
from refunds.gateways.stripe import NO_REFERENCE, NOT_CONFIGURED, StripeGateway, stripe_amount

from .factories import ClinicFactory, PaymentMethodFactory

D = Decimal
API_KEY = "sk_test_dummy"
KEY = "5f0c6b8e-3a52-4a0e-9a57-1d1f7a3c2b10"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    form: dict  # the form body of a POST, the query of a GET


class StripeStandIn:
    """Answers like Stripe's refund endpoints. Tests set `status`, `failure_reason` or
    `error` = (http status, Stripe error object) to choose the next answers."""

    def __init__(self):
        self.seen: list[Seen] = []
        self.refunds: list[dict] = []  # every refund made, newest first (as Stripe lists them)
        self.answers: dict[str, tuple[int, dict]] = {}  # idempotency key -> first answer
        self.status = "succeeded"
        self.failure_reason = None
        self.error: tuple[int, dict] | None = None
        self.hide_from_list = False  # a refund made by a request still in flight elsewhere
        self.page_size = 100
        self.ids = count(1)
        self.lock = threading.Lock()
        self.port = 0

    @property
    def posts(self):
        return [s for s in self.seen if s.method == "POST"]

    def create(self, form: dict, key: str) -> tuple[int, dict]:
        with self.lock:
            if key in self.answers:  # Stripe replays the first answer to a key
                return self.answers[key]
            if self.error:
                answer = self.error
            else:
                refund = {
                    "id": f"re_standin{next(self.ids):04d}",
                    "object": "refund",
                    "amount": int(form["amount"]),
                    "currency": "omr",
                    "status": self.status,
                    "payment_intent": form.get("payment_intent"),
                    "charge": form.get("charge") or "ch_standin",
                    "failure_reason": self.failure_reason,
                    "metadata": {k[len("metadata["):-1]: v for k, v in form.items()
                                 if k.startswith("metadata[")},
                    "reason": None,
                    "created": 1700000000,
                }
                self.refunds.insert(0, refund)
                answer = (200, refund)
            self.answers[key] = answer
            return answer

    def list(self, query: dict) -> tuple[int, dict]:
        with self.lock:
            found = [] if self.hide_from_list else [
                r for r in self.refunds
                if all(r.get(f) == query[f] for f in ("payment_intent", "charge") if f in query)
            ]
        if "starting_after" in query:
            ids = [r["id"] for r in found]
            found = found[ids.index(query["starting_after"]) + 1:]
        page = found[:self.page_size]
        return 200, {"object": "list", "url": "/v1/refunds", "data": page,
                     "has_more": len(found) > len(page)}


class Handler(BaseHTTPRequestHandler):
    def _answer(self, method, form):
        stand_in = self.server.stand_in
        path = urlsplit(self.path).path
        stand_in.seen.append(Seen(method, path, dict(self.headers.items()), form))
        if path != "/v1/refunds":
            code, body = 404, {"error": {"type": "invalid_request_error",
                                         "message": f"Unrecognized request URL ({path})."}}
        elif method == "POST":
            code, body = stand_in.create(form, self.headers.get("Idempotency-Key", ""))
        else:
            code, body = stand_in.list(form)
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_standin{len(stand_in.seen)}")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self._answer("POST", dict(parse_qsl(body, keep_blank_values=True)))

    def do_GET(self):
        self._answer("GET", dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True)))

    def log_message(self, format, *args):  # quiet
        pass


@pytest.fixture
def no_proxy(monkeypatch):
    # requests honours proxy variables; 127.0.0.1 must never go through a proxy.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    # Keep the SDK from writing its telemetry id under the home directory during tests.
    monkeypatch.setattr(stripe_sdk, "enable_telemetry", False)


@pytest.fixture
def stand_in(no_proxy):
    stand_in = StripeStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.stand_in = stand_in
    stand_in.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        with override_settings(STRIPE_API_KEY=API_KEY,
                               STRIPE_API_BASE=f"http://127.0.0.1:{stand_in.port}",
                               STRIPE_MAX_NETWORK_RETRIES=0, STRIPE_TIMEOUT_SECONDS=5):
            yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def stripe_payment(reference="pi_3PtestABC123", amount="50.000"):
    """An unsaved payment by a Stripe gateway method: the adapter only reads its reference."""
    method = PaymentMethodFactory.build(clinic=ClinicFactory.build(), name="Stripe",
                                        kind=PaymentMethodKind.GATEWAY, gateway="stripe")
    return Payment(method=method, amount=D(amount), reference=reference)


def refund(payment=None, amount="12.340", currency="OMR", key=KEY, retry=0):
    return StripeGateway().refund(payment=payment or stripe_payment(), amount=D(amount),
                                  currency=currency, idempotency_key=key, retry=retry)


def card_error(message="Your card was declined.", code="card_declined"):
    return 402, {"error": {"type": "card_error", "message": message, "code": code}}


def test_gateway_for_stripe_is_the_stripe_adapter():
    assert isinstance(gateway_for("stripe"), StripeGateway)


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("12.345", "OMR", 12345), ("12.340", "OMR", 12340), ("0.001", "KWD", 1),
    ("10.50", "USD", 1050), ("10.5", "USD", 1050), ("0.01", "EUR", 1),
    ("500", "JPY", 500), ("1234567", "KRW", 1234567),
    ("500", "ISK", 50000),  # Stripe still counts ISK in hundredths
])
def test_stripe_amount_is_an_integer_of_minor_units(amount, currency, minor):
    result = stripe_amount(D(amount), currency)
    assert result == minor
    assert type(result) is int


@pytest.mark.parametrize(("amount", "currency"), [
    ("12.3456", "OMR"), ("10.505", "USD"), ("500.5", "JPY"), ("0", "USD"), ("-1.00", "USD"),
])
def test_stripe_amount_refuses_what_is_no_amount_of_the_currency(amount, currency):
    with pytest.raises(ValueError):
        stripe_amount(D(amount), currency)


def test_success_with_a_payment_intent(stand_in):
    result = refund(stripe_payment("pi_3PtestABC123"), amount="12.340", currency="OMR")

    assert result.status == "succeeded"
    assert result.reference == "re_standin0001"
    assert result.failure_reason == ""
    lookup, post = stand_in.seen
    assert (lookup.method, lookup.path) == ("GET", "/v1/refunds")
    assert lookup.form == {"payment_intent": "pi_3PtestABC123", "limit": "100"}
    assert (post.method, post.path) == ("POST", "/v1/refunds")
    assert post.form == {"payment_intent": "pi_3PtestABC123", "amount": "12340",
                         "metadata[idempotency_key]": KEY, "metadata[refund_key]": KEY}
    assert post.headers["Idempotency-Key"] == KEY
    assert post.headers["Authorization"] == f"Bearer {API_KEY}"
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(("amount", "currency", "sent"), [
    ("10.50", "USD", "1050"), ("500", "JPY", "500"), ("7.250", "KWD", "7250"),
    ("3000", "ISK", "300000"),
])
def test_the_amount_is_sent_in_minor_units(stand_in, amount, currency, sent):
    assert refund(amount=amount, currency=currency).status == "succeeded"
    assert stand_in.posts[0].form["amount"] == sent
    assert "currency" not in stand_in.posts[0].form


def test_three_decimal_amounts_stripe_cannot_take_fail_without_a_request(stand_in):
    # Stripe takes BHD/JOD/KWD/OMR/TND amounts only with a last digit of 0.
    result = refund(amount="12.345", currency="OMR")

    assert result.status == "failed"
    assert result.failure_reason == (
        "Stripe only refunds OMR in steps of 0.010 OMR; refund 12.345 OMR by hand.")
    assert stand_in.seen == []


def test_a_charge_reference_is_sent_as_charge(stand_in):
    result = refund(stripe_payment("ch_3PtestXYZ789"))

    assert result.status == "succeeded"
    assert stand_in.seen[0].form == {"charge": "ch_3PtestXYZ789", "limit": "100"}
    form = stand_in.posts[0].form
    assert form["charge"] == "ch_3PtestXYZ789"
    assert "payment_intent" not in form


def test_the_same_key_again_gives_the_same_refund_and_no_second_refund(stand_in):
    first = refund()
    again = refund()

    assert again == first
    assert len(stand_in.refunds) == 1
    # The second call found the refund by its key, even once Stripe has forgotten the key.
    assert [s.method for s in stand_in.seen] == ["GET", "POST", "GET"]


def test_a_retry_racing_the_first_request_is_deduplicated_by_the_idempotency_key(stand_in):
    stand_in.hide_from_list = True  # the lookup runs before the first refund shows
    first = refund()
    again = refund()

    assert again == first
    assert len(stand_in.refunds) == 1
    assert [p.headers["Idempotency-Key"] for p in stand_in.posts] == [KEY, KEY]


def test_a_refund_made_earlier_is_found_across_pages(stand_in):
    stand_in.page_size = 1
    mine = refund(key="key-mine")
    refund(key="key-later")  # listed first: Stripe lists the newest first

    assert refund(key="key-mine") == mine
    assert len(stand_in.refunds) == 2
    last_lookup = [s for s in stand_in.seen if s.method == "GET"][-2:]
    assert last_lookup[1].form["starting_after"] == "re_standin0002"


def test_a_different_key_makes_a_new_refund(stand_in):
    first = refund(key="key-one")
    second = refund(key="key-two")

    assert first.reference != second.reference
    assert len(stand_in.refunds) == 2


def test_a_refund_under_the_key_for_another_amount_is_left_for_a_person(stand_in):
    refund(amount="12.340")

    with pytest.raises(GatewayUnavailable, match="different amount"):
        refund(amount="10.000")
    assert len(stand_in.refunds) == 1


@pytest.mark.parametrize("status", ["pending", "requires_action"])
def test_pending(stand_in, status):
    stand_in.status = status
    result = refund()

    assert result.status == "pending"
    assert result.reference == "re_standin0001"


def test_pending_then_settled_is_seen_on_the_next_call(stand_in):
    stand_in.status = "pending"
    assert refund().status == "pending"
    stand_in.refunds[0]["status"] = "succeeded"  # Stripe settles it later

    result = refund()
    assert (result.status, result.reference) == ("succeeded", "re_standin0001")
    assert len(stand_in.posts) == 1


def test_failed_with_stripes_failure_reason_in_plain_words(stand_in):
    stand_in.status = "failed"
    stand_in.failure_reason = "expired_or_canceled_card"
    result = refund()

    assert result.status == "failed"
    assert result.reference == "re_standin0001"
    assert result.failure_reason == (
        "The card has expired or was cancelled; refund it another way.")


def test_failed_with_an_unknown_failure_reason(stand_in):
    stand_in.status = "failed"
    stand_in.failure_reason = "something_new"

    assert refund().failure_reason == "Stripe could not complete the refund (something_new)."


def test_canceled_is_failed(stand_in):
    stand_in.status = "canceled"
    result = refund()

    assert (result.status, result.failure_reason) == (
        "failed", "The refund was cancelled in Stripe.")


def test_card_error_is_failed_with_the_message(stand_in):
    stand_in.error = card_error("Your card was declined.")
    result = refund()

    assert result.status == "failed"
    assert result.reference == ""
    assert result.failure_reason == "The card issuer declined the refund: Your card was declined."


def test_invalid_request_is_failed_with_the_message(stand_in):
    stand_in.error = (400, {"error": {
        "type": "invalid_request_error", "code": "charge_already_refunded",
        "message": "Charge ch_3PtestXYZ789 has already been refunded."}})
    result = refund()

    assert result.status == "failed"
    assert result.failure_reason == (
        "Stripe refused the refund: Charge ch_3PtestXYZ789 has already been refunded.")


def test_a_stored_error_is_replayed_for_the_same_key(stand_in):
    stand_in.error = card_error("Your card was declined.")
    first = refund()
    stand_in.error = None

    assert refund() == first  # Stripe replays the first answer to the key
    assert refund(key="a-new-key").status == "succeeded"


def test_a_retry_after_a_decline_is_a_new_attempt_under_a_key_of_its_own(stand_in):
    # given a refund Stripe declined (its answer is remembered under our key)
    stand_in.error = card_error("Your card was declined.")
    assert refund().status == "failed"
    stand_in.error = None
    assert refund().status == "failed"  # the same call is only the same answer again

    # when staff retry it, then Stripe gets a new attempt, still labelled with our key
    retried = refund(retry=1)

    assert retried.status == "succeeded"
    last = stand_in.posts[-1]
    assert last.headers["Idempotency-Key"] == f"{KEY}:retry-1"
    assert last.form["metadata[refund_key]"] == KEY
    # and the retry repeated is still one refund
    assert refund(retry=1) == retried
    assert len(stand_in.refunds) == 1


def test_a_refund_declined_after_creation_is_retried_as_a_new_refund(stand_in):
    stand_in.status = "failed"
    stand_in.failure_reason = "expired_or_canceled_card"
    first = refund()
    assert first.status == "failed"

    stand_in.status = "succeeded"
    retried = refund(retry=1)

    assert retried.status == "succeeded" and retried.reference != first.reference
    assert len(stand_in.refunds) == 2


@pytest.mark.parametrize(("code", "error_type"), [
    (500, "api_error"), (503, "api_error"), (429, "rate_limit_error"),
    (409, "idempotency_error"), (401, "invalid_request_error"),
])
def test_errors_that_may_pass_leave_the_refund_pending(stand_in, code, error_type):
    stand_in.error = (code, {"error": {"type": error_type, "message": f"Invalid API Key "
                                                                      f"provided: {API_KEY}"}})
    with pytest.raises(GatewayUnavailable) as excinfo:
        refund()
    assert API_KEY not in str(excinfo.value)


def test_idempotency_key_reused_with_other_parameters_is_left_for_a_person(stand_in):
    stand_in.error = (400, {"error": {"type": "idempotency_error", "message": "Keys for "
                                      "idempotent requests can only be used with the same "
                                      "parameters they were first used with."}})
    with pytest.raises(GatewayUnavailable, match="different request"):
        refund()


def test_an_error_message_never_echoes_the_api_key(stand_in):
    stand_in.error = (400, {"error": {"type": "invalid_request_error",
                                      "message": f"Something about {API_KEY}."}})
    result = refund()

    assert result.status == "failed"
    assert API_KEY not in result.failure_reason


def test_connection_refused_is_unavailable(no_proxy):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        override_settings(STRIPE_API_KEY=API_KEY, STRIPE_API_BASE=f"http://127.0.0.1:{port}",
                          STRIPE_MAX_NETWORK_RETRIES=0),
        pytest.raises(GatewayUnavailable, match="could not be reached") as excinfo,
    ):
        refund()
    assert API_KEY not in str(excinfo.value)


def test_a_timeout_is_unavailable(stand_in):
    release = threading.Event()
    original = stand_in.list

    def slow_list(query):
        release.wait(2)
        return original(query)

    stand_in.list = slow_list
    try:
        with (
            override_settings(STRIPE_TIMEOUT_SECONDS=0.2),
            pytest.raises(GatewayUnavailable, match="could not be reached"),
        ):
            refund()
    finally:
        release.set()
    assert stand_in.posts == []


@pytest.mark.parametrize("api_key", ["", None])
def test_no_api_key_is_unavailable(stand_in, api_key):
    with override_settings(STRIPE_API_KEY=api_key), pytest.raises(GatewayUnavailable) as excinfo:
        refund()
    assert str(excinfo.value) == NOT_CONFIGURED
    assert stand_in.seen == []


@pytest.mark.parametrize("reference", [
    "", "   ", "RCPT-0042", "re_3PtestABC123", "pi_", "py_3PtestABC123", "pi_12 34", "PI_123",
])
def test_a_reference_that_is_no_stripe_payment_fails_without_a_request(stand_in, reference):
    result = refund(stripe_payment(reference))

    assert result.status == "failed"
    assert result.reference == ""
    assert result.failure_reason == NO_REFERENCE
    assert stand_in.seen == []
