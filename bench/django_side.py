"""The benchmark's steps that need Django, each in its own process with the served settings
(bench.settings = production) and the bench database from DATABASE_URL:

    python -m bench.django_side sessions
        signs the bench users in through Django's own login (test Client.force_login, i.e. the
        configured session engine and auth hash) and prints
        {"cookie_name": "sessionid", "sessions": {"username": session_key, ...}}.

    python -m bench.django_side querycounts
        for every web page and API query of the benchmark, the number of SQL queries one
        request makes, counted with CaptureQueriesContext around django.test.Client (HTTPS,
        signed in as in the HTTP rounds; the API through a client made by create_api_client and
        a token from /o/token/). Prints {"case": count, ...}. The refund mutation refunds one
        fresh invoice of the database, as its round does.
"""

import base64
import io
import json
import os
import sys
from urllib.parse import quote


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def sessions(usernames: list[str]) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    found = {}
    for username in usernames:
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        found[username] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {"cookie_name": settings.SESSION_COOKIE_NAME, "sessions": found}


def api_token(client, username: str, scopes: str) -> str:
    """A client made by the real create_api_client command, and a token from /o/token/."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command("create_api_client", user=username, scopes=scopes,
                 name="bench query counts", stdout=out)
    credentials = json.loads(out.getvalue().strip().splitlines()[-1])
    basic = base64.b64encode(
        f"{quote(credentials['client_id'])}:{quote(credentials['client_secret'])}".encode()
    ).decode()
    response = client.post("/o/token/", {"grant_type": "client_credentials", "scope": scopes},
                           secure=True, HTTP_AUTHORIZATION=f"Basic {basic}")
    if response.status_code != 200:
        raise RuntimeError(f"/o/token/ answered {response.status_code}: {response.content!r}")
    return response.json()["access_token"]


def querycounts() -> dict:
    import psycopg
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from .cases import (
        API_SCOPES,
        API_USER,
        CASES,
        REFUND_CLINICS,
        check,
        pick_samples,
        refundable_invoices,
        request_for,
    )

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        samples = pick_samples(conn, size=50)
        # two of the same shape (one payment): one to warm up, one counted
        refundable = refundable_invoices(conn, REFUND_CLINICS[0], 2, single=True)
    # the same invoice on both sizes: the reference one (refunded in AUSTIN)
    samples["invoice_ids"] = [samples["reference_id"]]
    samples["invoice_numbers"] = [samples["reference_number"]]

    users = get_user_model().objects
    clients = {}
    api_client = Client()
    token = api_token(api_client, API_USER, API_SCOPES)
    counts, problems = {}, {}
    for case in CASES:
        if case.kind in ("sql", "baseline"):
            continue
        if case.kind == "refund" and len(refundable) < 2:
            problems[case.key] = "no refundable invoice left"
            continue
        request = request_for(case.key, samples, 0,
                              refund_invoice=refundable[1] if case.kind == "refund" else None)
        if request.api:
            client, extra = api_client, {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        else:
            if request.user not in clients:
                clients[request.user] = Client()
                clients[request.user].force_login(users.get(username=request.user))
            client, extra = clients[request.user], {}
        # one request first (not counted), as a warm worker would have served before
        _send(client, request_for(case.key, samples, 0, refund_invoice=refundable[0])
              if case.kind == "refund" else request, extra)
        with CaptureQueriesContext(connection) as captured:
            response = _send(client, request, extra)
        problem = check(case.key, response.status_code, response.content, request)
        counts[case.key] = len(captured.captured_queries)
        if problem:
            problems[case.key] = problem
    return {"counts": counts, "problems": problems, "invoices": samples["invoices"]}


def _send(client, request, extra):
    if request.idempotency_key:
        extra = {**extra, "HTTP_IDEMPOTENCY_KEY": request.idempotency_key}
    if request.method == "GET":
        return client.get(request.path, secure=True, **extra)
    return client.post(request.path, data=request.body, content_type="application/json",
                       secure=True, **extra)


def main() -> None:
    _setup()
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "sessions":
        print(json.dumps(sessions(sys.argv[2:])))
    elif command == "querycounts":
        print(json.dumps(querycounts()))
    else:
        sys.exit("usage: python -m bench.django_side sessions USER… | querycounts")


if __name__ == "__main__":
    main()
