"""Who may reach what: every URL of the URLconf and every field of the GraphQL schema, for every
persona, with the outcome each one must get.

The URLs are walked from `django.urls.get_resolver()` and the operations from the schema, so a
new view, mutation or query without a row in the matrices below fails
`test_every_url_has_an_entry`, `test_every_mutation_has_an_entry` or
`test_every_query_has_an_entry`, naming it. The Django admin is walked down to its index only
(its own pages are the admin's permission system, tested in test_*_admin.py). Of the OAuth2
toolkit only the token and revocation endpoints are mounted; anything else mounted under /o/
shows up here. List pages must also show our clinic's rows to its members and not to the
outsider.

Web personas: `anonymous`; `clerk` (billing staff of the clinic); `outsider` (billing staff of
another clinic); `approver` (financial approver of the clinic); `requester` (a member who is both
staff and approver and submitted the request being looked at: only on the URLs of a request);
`admin` (a superuser, member of the clinic, as the demo's admin); `billing_admin` (the Billing
administrators role, staff, member of the clinic).

Outcomes of a request:
- ok: 200, or a redirect to a page other than a login page; a GET changes nothing;
- login: a redirect to a login page that comes back here (`?next=`);
- forbidden (403), not_found (404: another clinic's object looks absent), method (405),
  unauthorized (401), bad_request (400); each of them changes nothing;
- done: a POST with a valid body that was carried out (a redirect, something changed);
- refused: a POST with a valid body that a member of the clinic may not make: the page comes
  back (200) or redirects with a plain sentence saying why, and nothing changed.
POSTs send a valid body, so `refused`, `not_found`... are not just a form rejecting empty input.

API columns (each mutation): no token → 401; a token with every scope but the one the mutation
needs → the field is null and the error names the scope; a token of another clinic's client →
the payload's error says the object was not found; a member of the clinic without the
permission → the payload's error says why; a member allowed to → it is done. (A bulk decision
answers for each request in its `outcomes`: their errors are its sentences, their requests its
objects.) Each query: no
token → 401; no `billing:read` → the error names it; another clinic's token → none of our rows;
our clerk's token → our rows. Nothing changes in any refused cell.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib import messages
from django.contrib.messages import get_messages
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from oauth2_provider.models import get_access_token_model, get_application_model

from api.lookups import NOT_FOUND as NOT_IN_YOUR_CLINICS
from api.views import UNAUTHENTICATED
from approvals.models import ApprovalRule
from approvals.rules import OWN_REQUEST, WITHDRAW_NOT_REQUESTER
from approvals.services import NOT_FOUND as REQUEST_NOT_FOUND
from approvals.services import refund_request_create
from billing.access import NO_PERMISSION
from billing.models import Policy
from billing.roles import BILLING_ADMINISTRATORS, BILLING_STAFF, FINANCIAL_APPROVERS
from refunds.models import Refund
from refunds.services import credit_note_create, invoice_cancel

from .api_helpers import api_application, api_state, api_token, gql_response
from .factories import UserFactory, set_policy

ANONYMOUS, CLERK, OUTSIDER, APPROVER, REQUESTER, ADMIN, BILLING_ADMIN = (
    "anonymous", "clerk", "outsider", "approver", "requester", "admin", "billing_admin")
PERSONAS = (ANONYMOUS, CLERK, OUTSIDER, APPROVER, ADMIN, BILLING_ADMIN)

OK, LOGIN, FORBIDDEN, NOT_FOUND, METHOD, UNAUTHORIZED, BAD_REQUEST, DONE, REFUSED = (
    "ok", "login", "forbidden", "not_found", "method", "unauthorized", "bad_request", "done",
    "refused")
BY_STATUS = {200: OK, 400: BAD_REQUEST, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND,
             405: METHOD}
OUTCOMES = {"GET": {OK, LOGIN, FORBIDDEN, NOT_FOUND, METHOD, UNAUTHORIZED, BAD_REQUEST}}
OUTCOMES["POST"] = OUTCOMES["GET"] | {DONE, REFUSED}
ALL_SCOPES = "billing:read billing:write approvals:write"


def cells(*, anonymous, clerk, outsider, approver, admin, billing_admin, requester=None):
    """The outcome for each persona (every one named, so none is forgotten)."""
    row = {ANONYMOUS: anonymous, CLERK: clerk, OUTSIDER: outsider, APPROVER: approver,
           ADMIN: admin, BILLING_ADMIN: billing_admin}
    if requester is not None:
        row[REQUESTER] = requester
    return row


def members(outcome, *, anonymous=LOGIN, outsider=NOT_FOUND, **others):
    """`outcome` for every signed-in member of the clinic, unless named otherwise."""
    row = {CLERK: outcome, APPROVER: outcome, ADMIN: outcome, BILLING_ADMIN: outcome, **others}
    return cells(anonymous=anonymous, outsider=outsider, **row)


def everyone(outcome):
    return cells(**dict.fromkeys(PERSONAS, outcome))


def signed_in(outcome, *, anonymous=LOGIN):
    return cells(**{**dict.fromkeys(PERSONAS, outcome), ANONYMOUS: anonymous})


# -- the data a cell needs, made on first use ------------------------------------------------------

class World:
    """The clinic's personas and objects. Each test builds only what its cell touches."""

    def __init__(self, request):
        self._request = request

    def _fixture(self, name):
        return self._request.getfixturevalue(name)

    def user(self, persona):
        return None if persona == ANONYMOUS else getattr(self, persona)

    @cached_property
    def clinic(self):
        return self._fixture("clinic")

    @cached_property
    def clerk(self):
        return self._fixture("clerk")

    @cached_property
    def outsider(self):
        return self._fixture("outsider")

    @cached_property
    def approver(self):
        return self._fixture("approver")

    @cached_property
    def requester(self):
        self._fixture("roles")
        return UserFactory(username="requester", groups=[BILLING_STAFF, FINANCIAL_APPROVERS],
                           clinics=[self.clinic])

    @cached_property
    def admin(self):
        return UserFactory(username="admin", is_staff=True, is_superuser=True,
                           clinics=[self.clinic])

    @cached_property
    def billing_admin(self):
        self._fixture("roles")
        return UserFactory(username="billing_admin", is_staff=True,
                           groups=[BILLING_ADMINISTRATORS], clinics=[self.clinic])

    @cached_property
    def cash(self):
        return self._fixture("cash")

    @cached_property
    def vat(self):
        return self._fixture("vat")

    @cached_property
    def account(self):
        return self._fixture("account")

    @cached_property
    def reason(self):
        return self._fixture("reason")

    def _invoice(self, *, issue=True, paid=None, reference=""):
        invoice = self._fixture("make_invoice")(issue=issue)
        if paid is not None:
            self._fixture("pay")(invoice, "28.700", method=paid, reference=reference)
        return invoice

    def needs_approval(self):
        set_policy(self.clinic, refund=Policy.APPROVAL, cancellation=Policy.APPROVAL)

    @cached_property
    def invoice(self):
        """Issued, nothing paid (28.700 OMR)."""
        return self._invoice()

    @cached_property
    def paid_invoice(self):
        return self._invoice(paid=self.cash)

    @cached_property
    def draft(self):
        return self._invoice(issue=False)

    @cached_property
    def credit_note(self):
        """A full refund of a cash-paid invoice; its refund waits to be paid out."""
        return credit_note_create(full=True, invoice=self._invoice(paid=self.cash),
                                  dispute_reason=self.reason,
                              actor=self.clerk)

    @cached_property
    def cancellation(self):
        """The credit note of a cancelled invoice."""
        return invoice_cancel(invoice=self.invoice, remarks="Wrong patient", actor=self.clerk)

    @cached_property
    def awaiting_refund(self):
        return self.credit_note.refunds.get()

    @cached_property
    def failed_refund(self):
        """A card refund the gateway declined."""
        invoice = self._invoice(paid=self._fixture("online_card"), reference="fail_card")
        note = credit_note_create(full=True, invoice=invoice, dispute_reason=self.reason,
                                  actor=self.clerk)
        refund = note.refunds.get()
        Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.FAILED, attempts=1)
        return refund

    @cached_property
    def request(self):
        """An Invoice Refund Request of a paid invoice, submitted by `requester`."""
        self.needs_approval()
        return refund_request_create(invoice=self.paid_invoice, remarks="Charged twice",
                                     actor=self.requester)

    @cached_property
    def integration(self):
        """The clerk's API client, as create_api_client makes it."""
        return api_application(self.clerk, "billing:read billing:write")

    @cached_property
    def integration_token(self):
        api_token(self.clerk, "billing:read", application=self.integration)
        return get_access_token_model().objects.get(application=self.integration)

    def token(self, persona, scopes=ALL_SCOPES):
        return api_token(self.user(persona), scopes)


@pytest.fixture
def world(request, db):
    return World(request)


def snapshot() -> dict:
    """Everything a refused request must leave as it was: the ledger, accounts, requests,
    refunds (api_state), and the OAuth2 applications and tokens."""
    applications = get_application_model().objects.order_by("pk").values_list(
        "pk", "user_id", "client_id", "client_secret", "client_type", "authorization_grant_type",
        "redirect_uris", "name")
    return {**api_state(), "applications": list(applications),
            "tokens": get_access_token_model().objects.count()}


# -- the web matrix --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """How to reach one URL name and what each persona gets, per HTTP method."""

    kwargs: Callable[[World], dict] = lambda w: {}
    GET: dict = field(default_factory=dict)
    POST: dict = field(default_factory=dict)
    data: Callable[[World], dict] = lambda w: {}
    json: bool = False  # send `data` as a JSON body
    shows: Callable[[World], str] | None = None  # text of our clinic's rows on a list page
    prepare: Callable[[World], None] = lambda w: None


def invoice_pk(attribute):
    return lambda w: {"pk": getattr(w, attribute).pk}


def approval_mode(w):
    w.needs_approval()


def credit_line_a(w):
    invoice = w.paid_invoice
    line = invoice.lines.order_by("position").first()
    return {"action": "confirm", f"line_{line.pk}": "on", f"amount_{line.pk}": "5.000",
            "dispute_reason": w.reason.pk, "payment": "", "remarks": "Charged twice"}


def on_the_request(w):
    return {"pk": w.request.pk}


def new_invoice_of_the_account(w):
    """Issue an invoice of one free line to the clinic's patient."""
    return {"account": w.account.pk, "action": "issue", "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "100", "lines-0-description": "Visit",
            "lines-0-quantity": "1", "lines-0-unit_price": "10.000",
            "lines-0-tax_rate": w.vat.pk}


POST_ONLY = signed_in(METHOD)
POST_ONLY_WITH_REQUESTER = {**POST_ONLY, REQUESTER: METHOD}

WEB: dict[str, Page] = {
    # -- the billing screens
    "home": Page(GET=signed_in(OK), shows=lambda w: w.invoice.number),
    "desk:invoice_list": Page(GET=signed_in(OK), shows=lambda w: w.invoice.number),
    "desk:invoice_detail": Page(invoice_pk("invoice"), GET=members(OK)),
    "desk:invoice_pdf": Page(invoice_pk("invoice"), GET=members(OK)),
    "desk:invoice_actions": Page(invoice_pk("invoice"), GET=members(OK)),
    "desk:invoice_new": Page(
        GET=signed_in(OK, anonymous=LOGIN) | {APPROVER: FORBIDDEN, BILLING_ADMIN: FORBIDDEN},
        # the outsider bills from their own clinic, and our patient is not one of its accounts
        POST=members(FORBIDDEN, clerk=DONE, admin=DONE, outsider=REFUSED),
        data=new_invoice_of_the_account),
    "desk:invoice_issue": Page(
        invoice_pk("draft"), GET=POST_ONLY, POST=members(REFUSED, clerk=DONE, admin=DONE)),
    "desk:patient_list": Page(GET=signed_in(OK), shows=lambda w: w.account.number),
    "desk:patient_detail": Page(lambda w: {"pk": w.account.pk}, GET=members(OK)),
    "billing:payment_create": Page(
        invoice_pk("invoice"),
        GET=members(OK),
        POST=members(REFUSED, clerk=DONE, admin=DONE),
        data=lambda w: {"method": w.cash.pk, "amount": "1.000", "reference": "R-1",
                        "received_at": "2030-01-02T09:30"}),
    "billing:invoice_discard": Page(
        invoice_pk("draft"), GET=POST_ONLY, POST=members(REFUSED, clerk=DONE, admin=DONE)),
    "refunds:credit_note_create": Page(
        invoice_pk("paid_invoice"),
        GET=members(OK),
        POST=members(REFUSED, clerk=DONE, admin=DONE),
        data=credit_line_a),
    "refunds:invoice_cancel": Page(
        invoice_pk("invoice"),
        GET=members(OK),
        POST=members(REFUSED, clerk=DONE, admin=DONE),
        data=lambda w: {"remarks": "Wrong patient"}),
    "refunds:cancelled_register": Page(GET=signed_in(OK),
                                      shows=lambda w: w.cancellation.number),
    "refunds:credit_note_list": Page(GET=signed_in(OK), shows=lambda w: w.credit_note.number),
    "refunds:credit_note_detail": Page(lambda w: {"pk": w.credit_note.pk}, GET=members(OK)),
    "refunds:credit_note_pdf": Page(lambda w: {"pk": w.credit_note.pk}, GET=members(OK)),
    "refunds:refund_paid_out": Page(
        lambda w: {"pk": w.awaiting_refund.pk},
        GET=POST_ONLY,
        POST=members(REFUSED, clerk=DONE, admin=DONE),
        data=lambda w: {"remarks": "Paid back in cash"}),
    "refunds:refund_retry": Page(
        lambda w: {"pk": w.failed_refund.pk},
        GET=POST_ONLY,
        POST=members(REFUSED, clerk=DONE, admin=DONE)),
    # -- Financial Approval
    "approvals:queue": Page(GET=signed_in(OK), shows=lambda w: w.request.invoice.number),
    "approvals:queue_csv": Page(GET=signed_in(OK), shows=lambda w: w.request.invoice.number),
    # one request ticked on the queue: another clinic's is reported as not one of yours
    "approvals:bulk_decide": Page(
        GET=POST_ONLY,
        POST=members(REFUSED, approver=DONE, admin=DONE, outsider=REFUSED),
        data=lambda w: {"request": w.request.pk, "decision": "approve",
                        "remarks": "Checked the receipts"}),
    "approvals:request_detail": Page(on_the_request, GET=members(OK, requester=OK)),
    "approvals:request_approve": Page(
        on_the_request,
        GET=POST_ONLY_WITH_REQUESTER,
        POST=members(REFUSED, approver=DONE, admin=DONE, requester=REFUSED),
        data=lambda w: {"remarks": "Checked the receipts"}),
    "approvals:request_reject": Page(
        on_the_request,
        GET=POST_ONLY_WITH_REQUESTER,
        POST=members(REFUSED, approver=DONE, admin=DONE, requester=REFUSED),
        data=lambda w: {"remarks": "Not covered by the refund policy"}),
    "approvals:request_withdraw": Page(
        on_the_request,
        GET=POST_ONLY_WITH_REQUESTER,
        POST=members(REFUSED, requester=DONE)),
    "approvals:refund_request_create": Page(
        lambda w: {"invoice_pk": w.paid_invoice.pk},
        GET=members(OK),
        POST=members(REFUSED, clerk=DONE, admin=DONE),
        data=lambda w: {"remarks": "Charged twice"},
        prepare=approval_mode),
    "approvals:cancellation_request_create": Page(
        lambda w: {"invoice_pk": w.invoice.pk},
        GET=members(OK),
        POST=members(REFUSED, clerk=DONE, admin=DONE),
        data=lambda w: {"remarks": "Wrong patient"},
        prepare=approval_mode),
    # -- signing in and out, the API endpoint, the admin
    "login": Page(GET=everyone(OK)),
    "logout": Page(GET=everyone(METHOD), POST=everyone(OK)),
    "graphql": Page(GET=everyone(METHOD), POST=signed_in(OK, anonymous=UNAUTHORIZED),
                    data=lambda w: {"query": "{ clinics { id } }"}, json=True),
    "admin:index": Page(GET=members(LOGIN, outsider=LOGIN, admin=OK, billing_admin=OK)),
    # -- OAuth2 for integrations: the token endpoint and revocation only
    "oauth2_provider:token": Page(GET=everyone(METHOD)),
    "oauth2_provider:revoke-token": Page(GET=everyone(METHOD)),
    # -- the health check load balancers call: no login, no data, GET only
    "healthz": Page(GET=everyone(OK), POST=everyone(METHOD)),
}


def walked_url_names() -> dict[str, str]:
    """{qualified url name: route} of every pattern, the admin down to its index. An unnamed
    pattern is listed under its route."""
    found: dict[str, str] = {}

    def walk(patterns, prefix="", namespaces=()):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                inner = (*namespaces, pattern.namespace) if pattern.namespace else namespaces
                walk(pattern.url_patterns, route, inner)
                continue
            assert isinstance(pattern, URLPattern)
            name = ":".join((*namespaces, pattern.name)) if pattern.name else f"<{route}>"
            if namespaces[:1] == ("admin",) and name != "admin:index":
                continue
            found[name] = route

    walk(get_resolver().url_patterns)
    return found


def test_every_url_has_an_entry():
    walked = walked_url_names()
    missing = sorted(f"{name} ({route})" for name, route in walked.items() if name not in WEB)
    gone = sorted(set(WEB) - set(walked))
    assert not missing, f"URLs without an entry in the authorization matrix: {missing}"
    assert not gone, f"Entries whose URL no longer exists: {gone}"


def test_every_entry_names_every_persona():
    for name, page in WEB.items():
        about_a_request = page.kwargs is on_the_request
        for method, row in (("GET", page.GET), ("POST", page.POST)):
            if not row:
                continue
            expected = {*PERSONAS, REQUESTER} if about_a_request else set(PERSONAS)
            assert set(row) == expected, (name, method)
            assert set(row.values()) <= OUTCOMES[method], (name, method)
        assert page.GET, f"{name}: every URL says what a GET gets"


WEB_CELLS = [
    pytest.param(name, persona, method, id=f"{name}-{persona}-{method}")
    for name, page in WEB.items()
    for method, row in (("GET", page.GET), ("POST", page.POST))
    for persona in row
]


def url_of(name, kwargs) -> str:
    """The URL of a named pattern, or of an unnamed one (listed as <route>) without
    parameters."""
    if name.startswith("<"):
        assert not kwargs and "<" not in name[1:-1], name
        return "/" + name[1:-1]
    return reverse(name, kwargs=kwargs)


def observed(response) -> str:
    if response.status_code in (301, 302, 303, 307, 308):
        location = urlparse(response["Location"])
        login_pages = {reverse("login"), reverse("admin:login")}
        if location.path in login_pages and "next" in parse_qs(location.query):
            return LOGIN
        return OK
    return BY_STATUS.get(response.status_code, str(response.status_code))


def body_of(response) -> str:
    """The page, or a streamed download (the queue's CSV) read to its end."""
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def refusal_sentences(response) -> list[str]:
    """The plain sentences a refused action shows: an error message, or the form's errors."""
    sentences = [str(message) for message in get_messages(response.wsgi_request)
                 if message.level == messages.ERROR]
    context = response.context
    form = context.get("form") if context is not None else None
    if form is not None:
        sentences += list(form.non_field_errors())
    return sentences


@pytest.mark.parametrize(("name", "persona", "method"), WEB_CELLS)
def test_web_matrix(client, world, settings, name, persona, method):
    settings.API_GRAPHIQL = False
    page = WEB[name]
    expected = getattr(page, method)[persona]
    url = url_of(name, page.kwargs(world))
    page.prepare(world)
    user = world.user(persona)
    if user is not None:
        client.force_login(user)
    body = page.data(world) if method == "POST" else None
    ours = page.shows(world) if page.shows and method == "GET" else None
    before = snapshot()

    if method == "GET":
        response = client.get(url)
    elif page.json:
        response = client.post(url, json.dumps(body), content_type="application/json")
    else:
        response = client.post(url, body)

    got = observed(response)
    if expected == DONE:
        assert got == OK, (response.status_code, response.get("Location"))
        assert snapshot() != before, "the action was accepted but changed nothing"
        return
    if expected == REFUSED:
        assert got == OK, (response.status_code, response.get("Location"))
        sentences = refusal_sentences(response)
        assert sentences, "refused without saying why"
        assert all(sentence.endswith(".") for sentence in sentences), sentences
    else:
        assert got == expected, (response.status_code, response.get("Location"))
    if ours and got == OK:
        assert (ours in body_of(response)) is (persona != OUTSIDER), ours
    assert snapshot() == before


# -- the API matrix --------------------------------------------------------------------------------

def no_permission(action):
    return lambda w: NO_PERMISSION.format(action=action)


def payload_answer(payload: dict) -> tuple[list[str], list]:
    """What a payload says: its sentences (`errors`) and its objects (every other field)."""
    return payload["errors"], [value for key, value in payload.items() if key != "errors"]


def outcomes_answer(payload: dict) -> tuple[list[str], list]:
    """What a bulk decision says: the call's errors and each refused request's, and the
    requests of its outcomes."""
    outcomes = payload["outcomes"]
    return ([*payload["errors"], *(o["error"] for o in outcomes if not o["ok"])],
            [o["financialRequest"] for o in outcomes])


def request_not_found(variables: dict) -> str:
    """A bulk decision's outcome for another clinic's request."""
    [request_id] = variables["requestIds"]
    return REQUEST_NOT_FOUND.format(pk=request_id)


@dataclass(frozen=True)
class Mutation:
    """A minimal valid call, the scope it needs, how another clinic's client is told the object
    is not there (what, and the variable naming it; or the sentence, from the variables), who
    of the clinic may not make it (and what they are told), and who may. `answer` reads the
    payload's sentences and objects."""

    document: str
    variables: Callable[[World], dict]
    scope: str
    not_found: tuple[str, str] | Callable[[dict], str]
    refused: dict[str, Callable[[World], str]]
    allowed: str
    prepare: Callable[[World], None] = lambda w: None
    answer: Callable[[dict], tuple[list[str], list]] = payload_answer

    def not_found_message(self, variables: dict) -> str:
        if callable(self.not_found):
            return self.not_found(variables)
        what, variable = self.not_found
        return NOT_IN_YOUR_CLINICS.format(what=what, id=variables[variable])


def first_line(invoice):
    return invoice.lines.order_by("position").first()


MUTATIONS: dict[str, Mutation] = {
    "accountCreate": Mutation(
        """mutation($clinicId: ID!, $name: String!, $number: String!) {
             accountCreate(clinicId: $clinicId, name: $name, number: $number) {
               account { id } errors } }""",
        lambda w: {"clinicId": str(w.clinic.pk), "name": "Omar Al-Harthy", "number": "P09999"},
        "billing:write", ("clinic", "clinicId"),
        {APPROVER: no_permission("create accounts")}, CLERK),
    "invoiceCreate": Mutation(
        """mutation($accountId: ID!, $lines: [InvoiceLineInput!]!) {
             invoiceCreate(accountId: $accountId, lines: $lines) { invoice { id } errors } }""",
        lambda w: {"accountId": str(w.account.pk), "lines": [
            {"description": "Visit", "quantity": "1", "unitPrice": "10.000",
             "taxRateId": str(w.vat.pk)}]},
        "billing:write", ("account", "accountId"),
        {APPROVER: no_permission("create invoices")}, CLERK),
    "paymentCreate": Mutation(
        """mutation($invoiceId: ID!, $amount: Decimal!, $paymentMethodId: ID!) {
             paymentCreate(invoiceId: $invoiceId, amount: $amount,
                           paymentMethodId: $paymentMethodId) { payment { id } errors } }""",
        lambda w: {"invoiceId": str(w.invoice.pk), "amount": "1.000",
                   "paymentMethodId": str(w.cash.pk)},
        "billing:write", ("invoice", "invoiceId"),
        {APPROVER: no_permission("record payments")}, CLERK),
    "invoiceRefund": Mutation(
        """mutation($invoiceId: ID!, $disputeReasonId: ID!) {
             invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId) {
               creditNote { id } errors } }""",
        lambda w: {"invoiceId": str(w.paid_invoice.pk), "disputeReasonId": str(w.reason.pk)},
        "billing:write", ("invoice", "invoiceId"),
        {APPROVER: no_permission("refund invoices")}, CLERK),
    "creditNoteCreate": Mutation(
        """mutation($invoiceId: ID!, $disputeReasonId: ID!, $lines: [CreditNoteLineInput!]!) {
             creditNoteCreate(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId,
                              lines: $lines) { creditNote { id } errors } }""",
        lambda w: {"invoiceId": str(w.paid_invoice.pk), "disputeReasonId": str(w.reason.pk),
                   "lines": [{"invoiceLineId": str(first_line(w.paid_invoice).pk),
                              "amount": "5.000"}]},
        "billing:write", ("invoice", "invoiceId"),
        {APPROVER: no_permission("refund invoices")}, CLERK),
    "invoiceCancel": Mutation(
        """mutation($invoiceId: ID!, $remarks: String!) {
             invoiceCancel(invoiceId: $invoiceId, remarks: $remarks) {
               invoice { id } creditNote { id } errors } }""",
        lambda w: {"invoiceId": str(w.invoice.pk), "remarks": "Wrong patient"},
        "billing:write", ("invoice", "invoiceId"),
        {APPROVER: no_permission("cancel invoices")}, CLERK),
    "invoiceRefundRequestCreate": Mutation(
        """mutation($invoiceId: ID!, $remarks: String!) {
             invoiceRefundRequestCreate(invoiceId: $invoiceId, remarks: $remarks) {
               financialRequest { id } errors } }""",
        lambda w: {"invoiceId": str(w.paid_invoice.pk), "remarks": "Charged twice"},
        "billing:write", ("invoice", "invoiceId"),
        {APPROVER: no_permission("submit requests")}, CLERK, prepare=approval_mode),
    "invoiceCancellationRequestCreate": Mutation(
        """mutation($invoiceId: ID!, $remarks: String!) {
             invoiceCancellationRequestCreate(invoiceId: $invoiceId, remarks: $remarks) {
               financialRequest { id } errors } }""",
        lambda w: {"invoiceId": str(w.invoice.pk), "remarks": "Wrong patient"},
        "billing:write", ("invoice", "invoiceId"),
        {APPROVER: no_permission("submit requests")}, CLERK, prepare=approval_mode),
    "financialRequestApprove": Mutation(
        """mutation($requestId: ID!, $remarks: String!) {
             financialRequestApprove(requestId: $requestId, remarks: $remarks) {
               financialRequest { id } errors } }""",
        lambda w: {"requestId": str(w.request.pk), "remarks": "Checked the receipts"},
        "approvals:write", ("financial request", "requestId"),
        {CLERK: no_permission("approve or reject financial requests"),
         REQUESTER: lambda w: OWN_REQUEST}, APPROVER),
    "financialRequestReject": Mutation(
        """mutation($requestId: ID!, $remarks: String!) {
             financialRequestReject(requestId: $requestId, remarks: $remarks) {
               financialRequest { id } errors } }""",
        lambda w: {"requestId": str(w.request.pk), "remarks": "Not covered"},
        "approvals:write", ("financial request", "requestId"),
        {CLERK: no_permission("approve or reject financial requests"),
         REQUESTER: lambda w: OWN_REQUEST}, APPROVER),
    "financialRequestsApprove": Mutation(
        """mutation($requestIds: [ID!]!, $remarks: String!) {
             financialRequestsApprove(requestIds: $requestIds, remarks: $remarks) {
               outcomes { requestId ok error financialRequest { id } } errors } }""",
        lambda w: {"requestIds": [str(w.request.pk)], "remarks": "Checked the receipts"},
        "approvals:write", request_not_found,
        {CLERK: no_permission("approve or reject financial requests"),
         REQUESTER: lambda w: OWN_REQUEST}, APPROVER, answer=outcomes_answer),
    "financialRequestsReject": Mutation(
        """mutation($requestIds: [ID!]!, $remarks: String!) {
             financialRequestsReject(requestIds: $requestIds, remarks: $remarks) {
               outcomes { requestId ok error financialRequest { id } } errors } }""",
        lambda w: {"requestIds": [str(w.request.pk)], "remarks": "Not covered"},
        "approvals:write", request_not_found,
        {CLERK: no_permission("approve or reject financial requests"),
         REQUESTER: lambda w: OWN_REQUEST}, APPROVER, answer=outcomes_answer),
    "financialRequestWithdraw": Mutation(
        """mutation($requestId: ID!) {
             financialRequestWithdraw(requestId: $requestId) {
               financialRequest { id } errors } }""",
        lambda w: {"requestId": str(w.request.pk)},
        "billing:write", ("financial request", "requestId"),
        {CLERK: lambda w: WITHDRAW_NOT_REQUESTER.format(who=w.requester.username)}, REQUESTER),
    "refundRetry": Mutation(
        """mutation($refundId: ID!) {
             refundRetry(refundId: $refundId) { refund { id } errors } }""",
        lambda w: {"refundId": str(w.failed_refund.pk)},
        "billing:write", ("refund", "refundId"),
        {APPROVER: no_permission("refund invoices")}, CLERK),
    "refundMarkPaidOut": Mutation(
        """mutation($refundId: ID!, $remarks: String!) {
             refundMarkPaidOut(refundId: $refundId, remarks: $remarks) {
               refund { id } errors } }""",
        lambda w: {"refundId": str(w.awaiting_refund.pk), "remarks": "Paid back in cash"},
        "billing:write", ("refund", "refundId"),
        {APPROVER: no_permission("refund invoices")}, CLERK),
}


def root_fields(kind: str) -> set[str]:
    from api.schema import schema

    graphql_schema = schema._schema
    root = graphql_schema.mutation_type if kind == "mutation" else graphql_schema.query_type
    return set(root.fields) if root else set()


def test_every_mutation_has_an_entry():
    fields = root_fields("mutation")
    missing, gone = sorted(fields - set(MUTATIONS)), sorted(set(MUTATIONS) - fields)
    assert not missing, f"Mutations without an entry in the authorization matrix: {missing}"
    assert not gone, f"Entries whose mutation no longer exists: {gone}"


NO_TOKEN, MISSING_SCOPE = "no_token", "missing_scope"

MUTATION_CELLS = [
    pytest.param(name, column, id=f"{name}-{column}")
    for name, mutation in MUTATIONS.items()
    for column in (NO_TOKEN, MISSING_SCOPE, OUTSIDER, *mutation.refused, mutation.allowed)
]


def scope_message(scope: str) -> str:
    return f"This operation needs the {scope} scope; ask for a token that has it."


@pytest.mark.parametrize(("name", "column"), MUTATION_CELLS)
def test_api_mutation_matrix(client, world, name, column):
    mutation = MUTATIONS[name]
    variables = mutation.variables(world)
    mutation.prepare(world)
    if column == NO_TOKEN:
        token = None
    elif column == MISSING_SCOPE:
        token = world.token(mutation.allowed, " ".join(
            scope for scope in ALL_SCOPES.split() if scope != mutation.scope))
    else:
        token = world.token(column)
    before = snapshot()

    response = gql_response(client, token, mutation.document, variables)

    if column == NO_TOKEN:
        assert response.status_code == 401
        assert response.json() == {"errors": [{"message": UNAUTHENTICATED}]}
        assert snapshot() == before
        return
    result = response.json()
    if column == MISSING_SCOPE:
        assert result["data"] == {name: None}
        assert [error["message"] for error in result["errors"]] == [
            scope_message(mutation.scope)]
        assert snapshot() == before
        return
    assert "errors" not in result, result
    payload = result["data"][name]
    sentences, objects = mutation.answer(payload)
    assert objects, payload
    if column == mutation.allowed:
        assert sentences == []
        assert all(value is not None for value in objects), payload
        assert snapshot() != before
        return
    if column == OUTSIDER:
        message = mutation.not_found_message(variables)
    else:
        message = mutation.refused[column](world)
    assert sentences == [message]
    assert all(value is None for value in objects), payload
    assert snapshot() == before


@dataclass(frozen=True)
class Query:
    """A read of the clinic's rows: the ids it answers, and the ids of our clinic's rows it
    would show our clerk. `shared`: rows of no clinic (everyone reads the same)."""

    document: str
    variables: Callable[[World], dict]
    answered: Callable[[dict], set]
    ours: Callable[[World], set]
    shared: bool = False


def ids_of(field_name):
    def answered(data):
        value = data[field_name]
        rows = value if isinstance(value, list) else [value] if value else []
        return {row["id"] for row in rows}

    return answered


QUERIES: dict[str, Query] = {
    "clinics": Query("{ clinics { id } }", lambda w: {}, ids_of("clinics"),
                     lambda w: {str(w.clinic.pk)}),
    "taxRates": Query("query($clinicId: ID!) { taxRates(clinicId: $clinicId) { id } }",
                      lambda w: {"clinicId": str(w.clinic.pk)}, ids_of("taxRates"),
                      lambda w: {str(w.vat.pk)}),
    "paymentMethods": Query(
        "query($clinicId: ID!) { paymentMethods(clinicId: $clinicId) { id } }",
        lambda w: {"clinicId": str(w.clinic.pk)}, ids_of("paymentMethods"),
        lambda w: {str(w.cash.pk)}),
    "disputeReasons": Query("{ disputeReasons { id } }", lambda w: {}, ids_of("disputeReasons"),
                            lambda w: {str(w.reason.pk)}, shared=True),
    "invoice": Query("query($id: ID!) { invoice(id: $id) { id } }",
                     lambda w: {"id": str(w.invoice.pk)}, ids_of("invoice"),
                     lambda w: {str(w.invoice.pk)}),
    "invoices": Query("{ invoices(first: 100) { id } }", lambda w: {}, ids_of("invoices"),
                      lambda w: {str(w.invoice.pk), str(w.credit_note.invoice_id)}),
    "creditNote": Query("query($id: ID!) { creditNote(id: $id) { id } }",
                        lambda w: {"id": str(w.credit_note.pk)}, ids_of("creditNote"),
                        lambda w: {str(w.credit_note.pk)}),
    "creditNotes": Query(
        "query($invoiceId: ID!) { creditNotes(invoiceId: $invoiceId) { id } }",
        lambda w: {"invoiceId": str(w.credit_note.invoice_id)}, ids_of("creditNotes"),
        lambda w: {str(w.credit_note.pk)}),
    "financialRequests": Query("{ financialRequests(first: 100) { id } }", lambda w: {},
                               ids_of("financialRequests"), lambda w: {str(w.request.pk)}),
    "approvalRules": Query(
        "query($clinicId: ID!) { approvalRules(clinicId: $clinicId) { id } }",
        lambda w: {"clinicId": str(w.clinic.pk)}, ids_of("approvalRules"),
        lambda w: {str(pk) for pk in ApprovalRule.objects.filter(clinic=w.clinic)
                   .values_list("pk", flat=True)}),
}


def test_every_query_has_an_entry():
    fields = root_fields("query")
    missing, gone = sorted(fields - set(QUERIES)), sorted(set(QUERIES) - fields)
    assert not missing, f"Queries without an entry in the authorization matrix: {missing}"
    assert not gone, f"Entries whose query no longer exists: {gone}"


QUERY_CELLS = [
    pytest.param(name, column, id=f"{name}-{column}")
    for name in QUERIES
    for column in (NO_TOKEN, MISSING_SCOPE, OUTSIDER, CLERK)
]


@pytest.mark.parametrize(("name", "column"), QUERY_CELLS)
def test_api_query_matrix(client, world, name, column):
    query = QUERIES[name]
    variables = query.variables(world)
    ours = query.ours(world)
    if column == NO_TOKEN:
        token = None
    elif column == MISSING_SCOPE:
        token = world.token(CLERK, "billing:write approvals:write")
    else:
        token = world.token(column)
    before = snapshot()

    response = gql_response(client, token, query.document, variables)

    assert snapshot() == before
    if column == NO_TOKEN:
        assert response.status_code == 401
        assert response.json() == {"errors": [{"message": UNAUTHENTICATED}]}
        return
    result = response.json()
    if column == MISSING_SCOPE:
        assert result.get("data") in (None, {name: None})
        assert [error["message"] for error in result["errors"]] == [scope_message("billing:read")]
        return
    assert "errors" not in result, result
    answered = query.answered(result["data"])
    if column == CLERK or query.shared:
        assert ours <= answered, (ours, answered)
    else:
        assert not ours & answered, (ours, answered)
