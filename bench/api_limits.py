"""What the most expensive API request still accepted costs, at a clinic group's scale.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_billing python -m bench.api_limits

Runs against the bench ledger `make bench` loads (`<name>_bench`, a million invoices; load it
first), in one process with the served settings (bench.settings = production) through Django's
test client, so the figures are the application's own time without HTTP. For each document:
the median and the worst of BENCH_REPEAT runs (default 7) after one warm-up, and the median as a
multiple of a baseline measured in the same run (`{ clinics { id } }`, the cheapest request).
Refused documents are timed too: a refusal must be cheap.

Prints a table, then one JSON line with every figure.
"""

import json
import os
import statistics
import sys
import time

from . import load as loader
from .cases import API_USER

LIMIT_SECONDS = 1.0
INVOICE_FIELDS = """
  id number status currencyId entityId accountId subtotal taxAmount total amountPaid
  amountRefunded amountCredited balanceDue
  account { id name number }
  lines { id description quantity unitPrice taxRate net tax total creditedNet creditedTax }
  payments { id amount refundedAmount paymentMethod { id name } }
  creditNotes { id number kind amount lines { invoiceLineId net tax total } }
  refunds { id amount status }
  openRequests { id kind status }
"""


def one(field: str, selection: str) -> str:
    return "{ " + field + " { " + selection + " } }"


def aliases(n: int, field: str, selection: str) -> str:
    return "{ " + " ".join(f"a{i}: {field} {{ {selection} }}" for i in range(n)) + " }"


def fan_out(levels: int, width: int) -> str:
    """Fragments that spread each other: width^levels selections if nothing bounded them."""
    fragments = [f"fragment F{levels} on Query {{ clinics {{ id name }} }}"]
    for level in range(levels - 1, -1, -1):
        spreads = " ".join(f"...F{level + 1}" for _ in range(width))
        fragments.append(f"fragment F{level} on Query {{ {spreads} }}")
    return "{ ...F0 } " + " ".join(fragments)


def documents(limits: dict) -> list[tuple[str, str, bool]]:
    """(name, document, expected to be accepted)."""
    max_aliases, max_tokens = limits["aliases"], limits["tokens"]
    page, offset = limits["page"], limits["offset"]
    repeated = "{ clinics { " + " ".join(["name"] * (max_tokens - 10)) + " } }"
    return [
        ("baseline: { clinics { id } }", "{ clinics { id } }", True),
        ("invoices(first: 55) with every field",
         one("invoices(first: 55)", INVOICE_FIELDS), True),
        (f"invoices(first: {page}) with every field (refused)",
         one(f"invoices(first: {page})", INVOICE_FIELDS), False),
        (f"{max_aliases} aliases x invoices(first: {page}) {{ id number status total "
         "balanceDue }", aliases(max_aliases, f"invoices(first: {page})",
                                 "id number status total balanceDue"), True),
        (f"{max_aliases} aliases x invoices(first: 35) with lines",
         aliases(max_aliases, "invoices(first: 35)", "id number lines { id net tax total }"),
         True),
        (f"{max_aliases} aliases x invoices(first: {page}) with every field (refused)",
         aliases(max_aliases, f"invoices(first: {page})", INVOICE_FIELDS), False),
        (f"{max_aliases} aliases x invoices(search: \"al\", first: {page})",
         aliases(max_aliases, f'invoices(search: "al", first: {page})', "id number"), True),
        (f"{max_aliases} aliases x invoices(search: \"Wolsten\", first: {page})",
         aliases(max_aliases, f'invoices(search: "Wolsten", first: {page})', "id number"), True),
        (f"invoices(offset: {offset}, first: {page})",
         one(f"invoices(offset: {offset}, first: {page})", "id number"), True),
        (f"{max_aliases} aliases x financialRequests(offset: {offset}, first: {page})",
         aliases(max_aliases, f"financialRequests(offset: {offset}, first: {page})",
                 "id status"), True),
        (f"one field repeated to {max_tokens - 10} tokens (refused)", repeated, False),
        ("fragment fan-out 2^10", fan_out(10, 2), True),
        (f"{max_aliases + 1} aliases (refused)", aliases(max_aliases + 1, "clinics", "id"), False),
        ("100 aliases x invoices(first: 50) (refused)",
         aliases(100, "invoices(first: 50)", "id number"), False),
        ("5,000 aliases x clinics (refused)", aliases(5000, "clinics", "name"), False),
        ("fragment fan-out 4^12 (refused)", fan_out(12, 4), False),
        (f"offset {offset + 1} (refused)",
         one(f"invoices(offset: {offset + 1})", "id"), False),
    ]


def main() -> None:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to the PostgreSQL server, as for make bench.")
    url = loader.bench_database_url(base)
    if not loader.loaded_invoices(url):
        sys.exit(f"{loader.database_name(url)} holds no bench ledger: run make bench first.")
    loader.migrate(url)
    os.environ.update(loader.django_env(url, DJANGO_ALLOWED_HOSTS="testserver"))
    import logging

    import django

    django.setup()
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)  # refusals, expected
    from django.conf import settings
    from django.test import Client

    from .django_side import api_token

    repeat = int(os.environ.get("BENCH_REPEAT", "7"))
    limits = {"aliases": settings.API_MAX_ALIASES, "tokens": settings.API_MAX_QUERY_TOKENS,
              "page": settings.API_MAX_PAGE_SIZE, "offset": settings.API_MAX_OFFSET}
    client = Client()
    token = api_token(client, API_USER, "billing:read")

    def send(document: str):
        started = time.perf_counter()
        response = client.post("/graphql/", json.dumps({"query": document}),
                               content_type="application/json", secure=True,
                               HTTP_AUTHORIZATION=f"Bearer {token}")
        return time.perf_counter() - started, response

    rows = []
    for name, document, accepted in documents(limits):
        send(document)  # warm: parsed, validated and cached as integrations' documents are
        times, body = [], None
        for _ in range(repeat):
            seconds, response = send(document)
            times.append(seconds)
            body = response.json()
        refused = body.get("data") is None and bool(body.get("errors"))
        rows.append({"case": name, "accepted": not refused, "expected_accepted": accepted,
                     "median_ms": statistics.median(times) * 1000,
                     "max_ms": max(times) * 1000,
                     "message": body["errors"][0]["message"][:90] if refused else ""})
    baseline = rows[0]["median_ms"]
    print(f"{'document':62} {'answer':9} {'median':>9} {'worst':>9} {'x base':>8}")
    for row in rows:
        row["ratio"] = row["median_ms"] / baseline
        answer = "answered" if row["accepted"] else "refused"
        print(f"{row['case'][:62]:62} {answer:9} {row['median_ms']:8.1f}ms "
              f"{row['max_ms']:8.1f}ms {row['ratio']:8.1f}")
        if row["message"]:
            print(f"{'':62}   {row['message']}")
    slowest = max(row["max_ms"] for row in rows)
    wrong = [row["case"] for row in rows if row["accepted"] != row["expected_accepted"]]
    print(f"Slowest single request: {slowest:.0f} ms (target: under {LIMIT_SECONDS * 1000:.0f} "
          f"ms); load average {os.getloadavg()[0]:.2f}.")
    if wrong:
        print(f"Not answered as expected: {', '.join(wrong)}")
    print(json.dumps({"limits": limits, "repeat": repeat, "rows": rows,
                      "slowest_ms": slowest, "within_target": slowest < LIMIT_SECONDS * 1000,
                      "unexpected": wrong}, separators=(",", ":")))


if __name__ == "__main__":
    main()
