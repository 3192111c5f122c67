"""What the benchmark asks for: one definition of each round's requests and checks, used by the
HTTP rounds (bench.run) and by the query counts (bench.django_side), plus the sample data both
pick from the database with psycopg."""

import json
import os
import uuid
from dataclasses import dataclass

import psycopg

from .load import COMMON_FRAGMENT, RARE_FRAGMENT

APPROVER = "bench_approver"  # member of every clinic, Billing staff + Financial approvers
ONE_CLINIC_CLERK = "bench_clerk"  # Billing staff of AUSTIN only
API_USER = "bench_api"  # owner of the API client (Billing staff, every clinic)
API_SCOPES = "billing:read billing:write"
# the refund rounds: direct-refund clinics (no approval, so no request is needed), refunds to
# manual payment methods only (no gateway call after commit); with 8 clients, two per clinic
REFUND_CLINICS = ["AUSTIN", "DALLAS", "LONDON", "TORONTO"]

# Each refund mutation carries its own Idempotency-Key, as docs/api.md asks integrations to do
# (BENCH_REFUND_IDEMPOTENCY=0 sends none, to see what the key costs).
REFUND_IDEMPOTENCY = os.environ.get("BENCH_REFUND_IDEMPOTENCY", "1").strip().lower() not in {
    "0", "false", "no", "off"}

LINE_FIELDS = "id description quantity unitPrice taxRate net tax total creditedNet creditedTax"
PAYMENT_FIELDS = "id amount refundedAmount receivedAt reference paymentMethod { name kind }"
API_INVOICES = (
    "query Invoices($first: Int!) { invoices(first: $first) { id number status currencyId "
    "issueDate total amountPaid balanceDue account { id name number } "
    f"lines {{ {LINE_FIELDS} }} payments {{ {PAYMENT_FIELDS} }} }} }}"
)
API_INVOICE = (
    "query Invoice($id: ID!) { invoice(id: $id) { id number status currencyId issueDate "
    "subtotal taxAmount total amountPaid amountRefunded amountCredited balanceDue "
    f"account {{ id name number }} lines {{ {LINE_FIELDS} }} payments {{ {PAYMENT_FIELDS} }} "
    "creditNotes { id number kind amount } refunds { id amount status } } }"
)
API_REFUND = (
    "mutation invoiceRefund($invoiceId: ID!, $disputeReasonId: ID!) { "
    "invoiceRefund(invoiceId: $invoiceId, disputeReasonId: $disputeReasonId) { creditNote { "
    "id number amount subtotal taxAmount amountApplied amountUnapplied currencyId "
    "creditedInvoiceId entityId accountId disputeReasonId disputeId isCredit isLegacy issuedAt "
    "uuid warrenId createdAt updatedAt description } errors } }"
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    user: str | None = None  # session of this user (web) — or None with api=True
    api: bool = False  # Bearer token of the API client
    body: bytes | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    kind: str  # web, api, refund, sql, baseline


CASES = [
    Case("list", "Invoice list /billing/invoices/", "web"),
    Case("search_exact", "Search exact number ?q=INV-…", "web"),
    Case("search_common", f"Search common fragment ?q={COMMON_FRAGMENT}", "web"),
    Case("search_rare", f"Search rare fragment ?q={RARE_FRAGMENT}", "web"),
    Case("status", "Status filter ?status=partially_paid", "web"),
    Case("invoice_page", "Invoice page /billing/invoices/<id>/", "web"),
    Case("queue", "Approval queue /approvals/?status=requested", "web"),
    Case("home_approver", "Home / (approver, 8 clinics)", "web"),
    Case("home_clerk", "Home / (clerk, 1 clinic)", "web"),
    Case("api_invoices", "API invoices(first: 50)", "api"),
    Case("api_invoice", "API invoice(id)", "api"),
    Case("api_refund", "API invoiceRefund mutation", "refund"),
    Case("sql_refund", "Raw SQL refund transaction", "sql"),
    Case("baseline", "Django baseline view (1 query)", "baseline"),
]
CASE_BY_KEY = {case.key: case for case in CASES}


def graphql(query: str, variables: dict) -> bytes:
    return json.dumps({"query": query, "variables": variables}).encode()


def request_for(key: str, samples: dict, i: int, *, refund_invoice: int | None = None) -> Request:
    """The i-th request of a round (ids and numbers vary with i)."""
    ids = samples["invoice_ids"]
    numbers = samples["invoice_numbers"]
    if key == "list":
        return Request("GET", "/billing/invoices/", APPROVER)
    if key == "search_exact":
        return Request("GET", f"/billing/invoices/?q={numbers[i % len(numbers)]}", APPROVER)
    if key == "search_common":
        return Request("GET", f"/billing/invoices/?q={COMMON_FRAGMENT}", APPROVER)
    if key == "search_rare":
        return Request("GET", f"/billing/invoices/?q={RARE_FRAGMENT}", APPROVER)
    if key == "status":
        return Request("GET", "/billing/invoices/?status=partially_paid", APPROVER)
    if key == "invoice_page":
        return Request("GET", f"/billing/invoices/{ids[i % len(ids)]}/", APPROVER)
    if key == "queue":
        return Request("GET", "/approvals/?status=requested", APPROVER)
    if key == "home_approver":
        return Request("GET", "/", APPROVER)
    if key == "home_clerk":
        return Request("GET", "/", ONE_CLINIC_CLERK)
    if key == "api_invoices":
        return Request("POST", "/graphql/", api=True, body=graphql(API_INVOICES, {"first": 50}))
    if key == "api_invoice":
        return Request("POST", "/graphql/", api=True,
                       body=graphql(API_INVOICE, {"id": str(ids[i % len(ids)])}))
    if key == "api_refund":
        return Request("POST", "/graphql/", api=True,
                       body=graphql(API_REFUND, {"invoiceId": str(refund_invoice),
                                                 "disputeReasonId": str(samples["reason_id"])}),
                       idempotency_key=str(uuid.uuid4()) if REFUND_IDEMPOTENCY else None)
    if key == "baseline":
        return Request("GET", f"/baseline/invoices/{ids[i % len(ids)]}/", APPROVER)
    raise ValueError(key)


def check(key: str, status: int, body: bytes, request: Request) -> str | None:
    """None when the response is what the round expects, else what is wrong."""
    if status != 200:
        return f"HTTP {status}"
    if key in ("api_invoices", "api_invoice", "api_refund"):
        try:
            payload = json.loads(body)
        except ValueError:
            return "response is not JSON"
        if payload.get("errors"):
            return f"GraphQL errors: {payload['errors']!r:.200}"
        data = payload.get("data") or {}
        if key == "api_invoices" and not data.get("invoices"):
            return "no invoices"
        if key == "api_invoice" and not data.get("invoice"):
            return "invoice is null"
        if key == "api_refund":
            result = data.get("invoiceRefund") or {}
            if result.get("errors") != []:
                return f"payload errors: {result.get('errors')!r:.200}"
            if not result.get("creditNote"):
                return "no credit note"
        return None
    if key == "search_exact":
        number = request.path.rsplit("=", 1)[1]
        if number.encode() not in body:
            return f"{number} not in the page"
    if key == "search_rare" and RARE_FRAGMENT.encode() not in body:
        return f"{RARE_FRAGMENT} not in the page"
    if key == "search_common" and COMMON_FRAGMENT.encode() not in body:
        return f"{COMMON_FRAGMENT} not in the page"
    if key == "baseline" and not body.startswith(b"INV-") and body != b"":
        return "unexpected body"
    return None


# -- sample data ---------------------------------------------------------------------------------

REFUNDABLE_SQL = """
SELECT i.id FROM billing_invoice i JOIN billing_clinic c ON c.id = i.clinic_id
WHERE c.code = %(code)s AND i.status = 'paid'
  AND NOT EXISTS (SELECT 1 FROM approvals_approvalrule r
                  WHERE r.clinic_id = c.id AND r.kind = 'refund' AND r.approvers <> 'none')
  AND i.amount_refunded = 0 AND i.amount_credited = 0
  AND NOT EXISTS (SELECT 1 FROM billing_payment p JOIN billing_paymentmethod m ON m.id = p.method_id
                  WHERE p.invoice_id = i.id AND m.kind <> 'manual')
  AND NOT EXISTS (SELECT 1 FROM refunds_creditnote n WHERE n.invoice_id = i.id)
  AND NOT EXISTS (SELECT 1 FROM approvals_financialrequest r WHERE r.invoice_id = i.id
                  AND r.status IN ('requested', 'approved'))
  AND (NOT %(single)s OR (SELECT count(*) FROM billing_payment p WHERE p.invoice_id = i.id) = 1)
ORDER BY i.id DESC LIMIT %(limit)s
"""


def refundable_invoices(conn, code: str, limit: int, *, single: bool = False) -> list[int]:
    """Fresh paid invoices of a direct-refund clinic, paid only by manual methods (with one
    payment only if `single`), newest first: each can take one full refund without a gateway
    call."""
    return [row[0] for row in conn.execute(REFUNDABLE_SQL,
                                           {"code": code, "limit": limit, "single": single})]


def pick_samples(conn: psycopg.Connection, *, size: int = 500) -> dict:
    """Invoice ids and numbers spread over the ledger, the dispute reason, and one reference
    invoice of the same shape at every size (refunded in AUSTIN: a payment, a credit note, a
    refund awaiting payout, its history) whose page and API answer are counted."""
    n = conn.execute("SELECT count(*) FROM billing_invoice").fetchone()[0]
    share = min(100.0, 100.0 * size * 4 / max(n, 1))
    rows = conn.execute(
        "SELECT id, number FROM billing_invoice TABLESAMPLE BERNOULLI (%s) REPEATABLE (7) "
        "WHERE number IS NOT NULL", (share,)).fetchall()
    step = max(1, len(rows) // size)
    rows = rows[::step][:size]
    # the reference invoice: refunded in AUSTIN, one manual payment, its refund awaiting payout
    # (the newest twelve per clinic are, at any size), lowest id; else any refunded invoice
    reference = conn.execute(
        """SELECT i.id, i.number FROM billing_invoice i JOIN billing_clinic c ON c.id = i.clinic_id
           WHERE c.code = 'AUSTIN' AND i.status = 'refunded'
             AND (SELECT count(*) FROM billing_payment p WHERE p.invoice_id = i.id) = 1
             AND EXISTS (SELECT 1 FROM refunds_refund r WHERE r.invoice_id = i.id
                         AND r.status = 'awaiting_payout')
           ORDER BY i.id LIMIT 1""").fetchone() or conn.execute(
        """SELECT id, number FROM billing_invoice WHERE status = 'refunded'
           ORDER BY id LIMIT 1""").fetchone()
    reason = conn.execute(
        "SELECT id FROM billing_disputereason WHERE name = 'Billing error'").fetchone()
    return {
        "invoices": n,
        "invoice_ids": [r[0] for r in rows],
        "invoice_numbers": [r[1] for r in rows],
        "reference_id": reference[0],
        "reference_number": reference[1],
        "reason_id": reason[0],
    }
