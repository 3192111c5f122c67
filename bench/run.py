"""`make bench`: how fast the screens and the API answer on a large ledger, on this machine.

Method
------
1. Databases. From DATABASE_URL (PostgreSQL) the benchmark derives two bench-only databases:
   `<name>_bench` (BENCH_INVOICES invoices, default 1,000,000) and `<name>_bench_small`
   (BENCH_SMALL_INVOICES, default 2,000). Each is dropped, created, migrated with
   `manage.py migrate` and loaded by bench.load (set-based SQL, see its docstring), then
   ANALYZEd; the load time is printed. The database named in DATABASE_URL itself is never
   touched, nor `clinic_billing_ci`. BENCH_SKIP_LOAD=1 reuses loaded bench databases (they are
   still migrated, so new migrations apply).
2. Serving. `collectstatic` into a temporary STATIC_ROOT, then gunicorn as the README runs it in
   production (config/gunicorn.py) with BENCH_WORKERS sync workers (default: one per core, as
   suits a machine whose cores PostgreSQL and the load generator share) on a free
   127.0.0.1 port, settings bench.settings = config.settings.production (DEBUG off, persistent
   connections with
   DATABASE_CONN_MAX_AGE, a random DJANGO_SECRET_KEY). Every request carries
   `X-Forwarded-Proto: https`, as behind the TLS proxy production expects. A second gunicorn
   serves bench.baseline_app (one Django view, one indexed query) with the same settings,
   database and worker count. Both are stopped at the end whatever happens.
3. Authentication. Web pages: session cookies made by Django's own login for bench_approver
   (8 clinics, approver) and bench_clerk (1 clinic). API: a client made with the
   `create_api_client` command (bench_api, scopes billing:read billing:write) and a
   client-credentials token from POST /o/token/.
4. Rounds. Each round: a few warm-up requests, BENCH_REQUESTS (default 200) sequential requests
   (p50, p95), then BENCH_CONCURRENT_REQUESTS (default 2 × BENCH_REQUESTS) requests from 8
   client threads, each with its own HTTP connection (gunicorn's sync workers close it after each
   response; http.client reconnects), for requests/s and p95. A phase stops early after
   BENCH_MAX_SECONDS (default 120; 0 = never) and says so (`capped`). Every response is checked
   (HTTP 200; GraphQL without top-level errors and with an empty payload `errors`); failures are
   counted and reported, never dropped. The 1-minute load average is recorded at the end of each
   round. Ids and invoice numbers vary across requests.
   The refund rounds refund fresh, fully paid invoices of the direct-refund clinics AUSTIN,
   DALLAS, LONDON and TORONTO paid by manual methods (no gateway call): sequentially round-robin
   over the four, and with 8 clients two clients per clinic — different clinics mostly, but
   pairs contend for the same clinic's credit-note number series, as in a clinic group. Each
   mutation carries its own Idempotency-Key, as docs/api.md asks integrations to do
   (BENCH_REFUND_IDEMPOTENCY=0: none). The raw-SQL
   baseline runs the same refund as one hand-written transaction over psycopg (lock the invoice
   and its payments, read the lines, take the number, insert the credit note, its lines, the
   refund and two audit events, update lines, payment and invoice, commit) on other invoices
   picked the same way, at 1 and 8 clients; it commits, so it satisfies every constraint.
5. Query counts. After the rounds (gunicorn stopped), bench.django_side counts the SQL queries
   of one request of each web page and API operation with CaptureQueriesContext, on the large
   and on the small database (the same reference invoice shape on both).
6. Output: a table, then as the last line one JSON object with every figure, the ratios, the
   query counts, the load averages and `targets` (each true/false, and `all_met`). A round with
   failures meets no target.

Environment: DATABASE_URL (required), BENCH_INVOICES, BENCH_SMALL_INVOICES, BENCH_REQUESTS,
BENCH_CONCURRENT_REQUESTS, BENCH_CLIENTS (8), BENCH_WORKERS, BENCH_MAX_SECONDS, BENCH_SKIP_LOAD,
BENCH_REFUND_IDEMPOTENCY.
The harness's own client threads run on the same 2 cores as gunicorn and PostgreSQL.
"""

import abc
import base64
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg

from . import load as loader
from .cases import (
    API_SCOPES,
    API_USER,
    APPROVER,
    CASE_BY_KEY,
    CASES,
    ONE_CLINIC_CLERK,
    REFUND_CLINICS,
    REFUND_IDEMPOTENCY,
    Request,
    check,
    pick_samples,
    refundable_invoices,
    request_for,
)

REPO = loader.REPO
WARMUP = 5
LIST_ROUNDS = ["list", "search_exact", "search_common", "search_rare", "status",
               "home_approver", "home_clerk"]


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value.replace("_", "").replace(",", "")) if value.strip() else default


@dataclass
class Config:
    base_url: str
    invoices: int
    small_invoices: int
    requests: int
    concurrent_requests: int
    clients: int
    workers: int
    max_seconds: float
    skip_load: bool

    @classmethod
    def from_env(cls) -> "Config":
        base = os.environ.get("DATABASE_URL", "")
        if not loader.is_postgres_url(base):
            sys.exit("make bench needs DATABASE_URL pointing at PostgreSQL, e.g. "
                     "DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_billing make bench")
        requests = env_int("BENCH_REQUESTS", 200)
        return cls(
            base_url=base,
            invoices=env_int("BENCH_INVOICES", 1_000_000),
            small_invoices=env_int("BENCH_SMALL_INVOICES", 2_000),
            requests=requests,
            concurrent_requests=env_int("BENCH_CONCURRENT_REQUESTS", 2 * requests),
            clients=env_int("BENCH_CLIENTS", 8),
            workers=env_int("BENCH_WORKERS", os.cpu_count() or 2),
            max_seconds=float(os.environ.get("BENCH_MAX_SECONDS", "120") or 0),
            skip_load=os.environ.get("BENCH_SKIP_LOAD", "").strip().lower() in
            {"1", "true", "yes", "on"},
        )


# -- databases -----------------------------------------------------------------------------------

def ensure_database(config: Config, suffix: str, n: int, label: str) -> dict:
    url = loader.bench_database_url(config.base_url, suffix)
    if config.skip_load and loader.database_exists(url):
        loader.migrate(url)
        found = loader.loaded_invoices(url)
        if found:
            log(f"{label}: reusing {loader.database_name(url)} ({found:,} invoices), "
                "BENCH_SKIP_LOAD=1")
            return {"url": url, "reused": True, "invoices": found, "seconds": None}
        log(f"{label}: {loader.database_name(url)} holds no bench ledger; loading it")
    log(f"{label}: recreating {loader.database_name(url)} and loading {n:,} invoices")
    stats = loader.prepare(config.base_url, suffix, n, label=label)
    log(f"{label}: loaded {n:,} invoices in {stats['seconds']:.1f} s "
        f"(migrate {stats['migrate_seconds']:.1f} s); rows: "
        + ", ".join(f"{k} {v:,}" for k, v in stats["counts"].items()))
    return {"url": url, "reused": False, "invoices": n, "seconds": stats["seconds"],
            "migrate_seconds": stats["migrate_seconds"], "counts": stats["counts"]}


# -- servers -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A gunicorn started by the benchmark, in its own process group, stopped by its id."""

    def __init__(self, app: str, env: dict, workers: int, logdir: Path, name: str):
        self.port = free_port()
        self.name = name
        self.logfile = logdir / f"{name}.log"
        # the server's own settings file, where the revision measured has one
        config = REPO / "config" / "gunicorn.py"
        self.proc = subprocess.Popen(  # noqa: S603 - our own gunicorn, fixed arguments
            [str(Path(sys.executable).parent / "gunicorn"), app,
             *(["--config", str(config)] if config.exists() else []),
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
             "--worker-class", "sync", "--timeout", "300", "--graceful-timeout", "10",
             "--log-level", "warning"],
            cwd=REPO, env=env, stdout=self.logfile.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", path, headers={"X-Forwarded-Proto": "https"})
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own group: gunicorn + workers
            self.proc.wait(timeout=10)


# -- HTTP ----------------------------------------------------------------------------------------

class Http:
    """One client: its own connection, the session cookies and the API token."""

    def __init__(self, port: int, cookies: dict[str, str], token: str | None):
        self.port, self.cookies, self.token = port, cookies, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def send(self, request: Request) -> tuple[int, bytes]:
        headers = {"X-Forwarded-Proto": "https", "Host": f"127.0.0.1:{self.port}"}
        if request.user:
            headers["Cookie"] = (f"{self.cookies['cookie_name']}="
                                 f"{self.cookies['sessions'][request.user]}")
        if request.api:
            headers["Authorization"] = f"Bearer {self.token}"
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        if request.idempotency_key:
            headers["Idempotency-Key"] = request.idempotency_key
        try:
            self.conn.request(request.method, request.path, body=request.body, headers=headers)
            response = self.conn.getresponse()
            body = response.read()
            if response.will_close:
                self.conn.close()
            return response.status, body
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()


def get_token(port: int, client_id: str, secret: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    basic = base64.b64encode(f"{quote(client_id)}:{quote(secret)}".encode()).decode()
    conn.request("POST", "/o/token/",
                 body=urlencode({"grant_type": "client_credentials", "scope": API_SCOPES}),
                 headers={"Authorization": f"Basic {basic}", "X-Forwarded-Proto": "https",
                          "Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"/o/token/ answered {response.status}: {body[:300]!r}")
    return json.loads(body)["access_token"]


# -- measuring -----------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall: float = 0.0
    capped: bool = False
    planned: int = 0

    @property
    def done(self) -> int:
        return len(self.latencies)

    def summary(self) -> dict:
        ms = [x * 1000 for x in self.latencies]
        return {
            "requests": self.done, "planned": self.planned,
            "p50_ms": _r(statistics.median(ms)) if ms else None,
            "p95_ms": _r(percentile(ms, 0.95)), "mean_ms": _r(statistics.fmean(ms)) if ms else None,
            "max_ms": _r(max(ms)) if ms else None,
            "rps": _r(self.done / self.wall) if self.wall else None,
            "wall_s": _r(self.wall), "failures": len(self.failures),
            "failure_samples": sorted(set(self.failures))[:5], "capped": self.capped,
        }


def _r(value: float | None, places: int = 2) -> float | None:
    return None if value is None else round(value, places)


class Worker(abc.ABC):
    """Something that sends the round's i-th request: over HTTP or raw SQL."""

    @abc.abstractmethod
    def run(self, i: int) -> str | None:
        """Send request i; return a failure, or None."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the worker's connection."""


class HttpWorker(Worker):
    def __init__(self, key: str, http_client: Http, samples: dict, supply: list[int] | None):
        self.key, self.http, self.samples, self.supply = key, http_client, samples, supply

    def run(self, i: int) -> str | None:
        refund_invoice = None
        if self.supply is not None:
            if not self.supply:
                return "no refundable invoice left"
            refund_invoice = self.supply.pop()
        request = request_for(self.key, self.samples, i, refund_invoice=refund_invoice)
        try:
            status, body = self.http.send(request)
        except (OSError, http.client.HTTPException) as error:
            return f"{type(error).__name__}: {error}"
        return check(self.key, status, body, request)

    def close(self) -> None:
        self.http.close()


def run_phase(workers: list[Worker], total: int, max_seconds: float, offset: int) -> Phase:
    """`total` requests spread over the workers (one thread each when more than one)."""
    phase = Phase(planned=total)
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds if max_seconds else None
    quotas = [total // len(workers) + (1 if k < total % len(workers) else 0)
              for k in range(len(workers))]
    barrier = threading.Barrier(len(workers) + 1)

    def loop(k: int, worker: Worker) -> None:
        barrier.wait()
        for j in range(quotas[k]):
            if deadline and time.monotonic() > deadline:
                with lock:
                    phase.capped = True
                return
            started = time.perf_counter()
            try:
                failure = worker.run(offset + k * 100_000 + j)
            except Exception as error:  # a failure to report, not to hide
                failure = f"{type(error).__name__}: {error}"
            elapsed = time.perf_counter() - started
            with lock:
                phase.latencies.append(elapsed)
                if failure:
                    phase.failures.append(failure)

    threads = [threading.Thread(target=loop, args=(k, w), daemon=True)
               for k, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    phase.wall = time.perf_counter() - started
    return phase


@dataclass
class RoundResult:
    key: str
    sequential: Phase
    concurrent: Phase
    warmup_failures: list[str]
    loadavg_end: float
    loadavg_max: float


class LoadSampler:
    """The 1-minute load average, sampled every second."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def mark(self) -> int:
        return len(self.samples)

    def since(self, mark: int) -> float:
        recent = self.samples[mark:] or [os.getloadavg()[0]]
        return max(recent)

    def stop(self) -> None:
        self._stop.set()


def measure(key: str, make_worker, config: Config, sampler: LoadSampler) -> RoundResult:
    """Warm-up, sequential phase, concurrent phase for one round."""
    mark = sampler.mark()
    warm = make_worker(0)
    warmup_failures = []
    for i in range(WARMUP):
        failure = warm.run(900_000 + i)
        if failure:
            warmup_failures.append(failure)
    sequential = run_phase([warm], config.requests, config.max_seconds, 0)
    warm.close()
    workers = [make_worker(k) for k in range(config.clients)]
    concurrent = run_phase(workers, config.concurrent_requests, config.max_seconds, 1_000_000)
    for worker in workers:
        worker.close()
    result = RoundResult(key, sequential, concurrent, warmup_failures,
                         loadavg_end=os.getloadavg()[0], loadavg_max=sampler.since(mark))
    s, c = sequential.summary(), concurrent.summary()
    log(f"  {CASE_BY_KEY[key].label}: p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms "
        f"({s['requests']} req); {config.clients} clients: {c['rps']} req/s, p95 "
        f"{c['p95_ms']} ms ({c['requests']} req); failures {s['failures'] + c['failures']}"
        f"{' (capped)' if sequential.capped or concurrent.capped else ''}; "
        f"load {result.loadavg_end:.2f}")
    return result


# -- the raw-SQL refund --------------------------------------------------------------------------

class SqlRefundWorker(Worker):
    """The refund as one hand-written transaction: what the database alone needs for it."""

    def __init__(self, url: str, supply: list[int], ids: dict):
        self.conn = psycopg.connect(url)
        self.supply, self.ids = supply, ids

    def run(self, i: int) -> str | None:
        if not self.supply:
            return "no refundable invoice left"
        invoice_id = self.supply.pop()
        try:
            self._refund(invoice_id)
        except psycopg.Error as error:
            self.conn.rollback()
            return f"{type(error).__name__}: {error}"
        return None

    def _refund(self, invoice_id: int) -> None:
        conn, ids = self.conn, self.ids
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                """SELECT i.clinic_id, i.account_id, i.currency, i.status, i.total,
                          i.amount_paid, i.amount_refunded, i.amount_credited, i.number
                   FROM billing_invoice i WHERE i.id = %s FOR UPDATE""", (invoice_id,))
            clinic_id, account_id, currency, status, total, paid, refunded, credited, number = (
                cur.fetchone())
            if status not in ("paid", "partially_refunded"):
                raise psycopg.DataError(f"invoice {invoice_id} is {status}")
            cur.execute(
                """SELECT p.id, p.amount, p.amount_refunded, m.name FROM billing_payment p
                   JOIN billing_paymentmethod m ON m.id = p.method_id
                   WHERE p.invoice_id = %s ORDER BY p.id FOR UPDATE OF p""", (invoice_id,))
            payments = cur.fetchall()
            cur.execute(
                """SELECT id, net, tax, credited_net, credited_tax FROM billing_invoiceline
                   WHERE invoice_id = %s ORDER BY position, id""", (invoice_id,))
            lines = [(pk, net - cnet, tax - ctax) for pk, net, tax, cnet, ctax in cur.fetchall()
                     if net - cnet > 0]
            subtotal = sum((line[1] for line in lines), Decimal(0))
            tax = sum((line[2] for line in lines), Decimal(0))
            amount = subtotal + tax
            balance = total - credited - (paid - refunded)
            applied = min(balance, amount)
            unapplied = amount - applied
            cur.execute(
                """UPDATE billing_numberseries SET last_value = last_value + 1
                   WHERE clinic_id = %s AND kind = 'credit_note'
                   RETURNING last_value, prefix, padding""", (clinic_id,))
            sequence, prefix, padding = cur.fetchone()
            note_number = f"{prefix}{sequence:0{padding}d}"
            cur.execute(
                """INSERT INTO refunds_creditnote (uuid, currency, number, sequence, kind,
                       subtotal, tax_amount, amount, amount_applied, amount_unapplied,
                       is_credit, is_legacy, description, warren_id, issued_at, created_at,
                       updated_at, account_id, clinic_id, created_by_id, dispute_reason_id,
                       invoice_id, dispute_id)
                   VALUES (gen_random_uuid(), %s, %s, %s, 'refund', %s, %s, %s, %s, %s, %s,
                           false, '', '', now(), now(), now(), %s, %s, %s, %s, %s, NULL)
                   RETURNING id""",
                (currency, note_number, sequence, subtotal, tax, amount, applied, unapplied,
                 unapplied == 0, account_id, clinic_id, ids["user"], ids["reason"],
                 invoice_id))
            note_id = cur.fetchone()[0]
            cur.executemany(
                """INSERT INTO refunds_creditnoteline (net, tax, total, credit_note_id,
                       invoice_line_id) VALUES (%s, %s, %s, %s, %s)""",
                [(net, t, net + t, note_id, pk) for pk, net, t in lines])
            cur.execute(
                """UPDATE billing_invoiceline SET credited_net = net, credited_tax = tax
                   WHERE invoice_id = %s""", (invoice_id,))
            left = unapplied
            for pk, pay_amount, pay_refunded, method_name in reversed(payments):
                part = min(left, pay_amount - pay_refunded)
                if part <= 0:
                    continue
                left -= part
                cur.execute("UPDATE billing_payment SET amount_refunded = amount_refunded + %s "
                            "WHERE id = %s", (part, pk))
                cur.execute(
                    """INSERT INTO refunds_refund (idempotency_key, amount, currency,
                           method_name, gateway, status, gateway_reference, failure_reason,
                           attempts, retries, created_at, updated_at, created_by_id,
                           credit_note_id, invoice_id, payment_id)
                       VALUES (gen_random_uuid(), %s, %s, %s, '', 'awaiting_payout', '', '',
                               0, 0, now(), now(), %s, %s, %s, %s) RETURNING id""",
                    (part, currency, method_name, ids["user"], note_id, invoice_id, pk))
                refund_id = cur.fetchone()[0]
                cur.execute(
                    """INSERT INTO audit_event (occurred_at, actor_username, object_id,
                           object_repr, action, from_state, to_state, amount, currency, remarks,
                           request_id, client, data, actor_id, clinic_id, content_type_id,
                           invoice_id)
                       VALUES (now(), %s, %s, %s, 'refund.created', '', 'awaiting_payout', %s,
                               %s, '', md5(random()::text), 'sql', '{}', %s, %s, %s, %s)""",
                    (ids["username"], str(refund_id), f"Refund {part} {currency}", part,
                     currency, ids["user"], clinic_id, ids["ct_refund"], invoice_id))
            new_credited = credited + amount
            new_refunded = refunded + unapplied
            new_status = "refunded" if new_credited == total else "partially_refunded"
            cur.execute(
                """INSERT INTO audit_event (occurred_at, actor_username, object_id, object_repr,
                       action, from_state, to_state, amount, currency, remarks, request_id,
                       client, data, actor_id, clinic_id, content_type_id, invoice_id)
                   VALUES (now(), %s, %s, %s, 'credit_note.issued', %s, %s, %s, %s, '',
                           md5(random()::text), 'sql', %s, %s, %s, %s, %s)""",
                (ids["username"], str(note_id), f"Credit note {note_number}", status,
                 new_status, amount, currency,
                 json.dumps({"number": note_number, "invoice": number, "kind": "refund"}),
                 ids["user"], clinic_id, ids["ct_creditnote"], invoice_id))
            cur.execute(
                """UPDATE billing_invoice SET amount_credited = %s, amount_refunded = %s,
                       status = %s, updated_at = now() WHERE id = %s""",
                (new_credited, new_refunded, new_status, invoice_id))

    def close(self) -> None:
        self.conn.close()


# -- the run -------------------------------------------------------------------------------------

def django_json(args: list[str], env: dict) -> dict:
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.django_side", *args], cwd=REPO, env=env,
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.django_side {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def create_api_client(env: dict) -> dict:
    done = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, "manage.py", "create_api_client", "--user", API_USER, "--scopes",
         API_SCOPES, "--name", "bench harness"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"create_api_client failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def refund_supplies(url: str, sequential: int, concurrent: int, clients: int) -> dict:
    """Disjoint lists of fresh invoices per clinic: for the API and the SQL rounds."""
    per_clinic_seq = -(-(sequential + WARMUP) // len(REFUND_CLINICS))
    per_client = -(-concurrent // clients)
    clients_per_clinic = -(-clients // len(REFUND_CLINICS))
    need = per_clinic_seq + per_client * clients_per_clinic
    supplies = {}
    with psycopg.connect(url) as conn:
        for code in REFUND_CLINICS:
            found = refundable_invoices(conn, code, 2 * need)
            supplies[code] = {"api": found[0::2], "sql": found[1::2]}
            if len(found) < 2 * need:
                log(f"  only {len(found)} refundable invoices in {code} (wanted {2 * need}): "
                    "the refund rounds may run short")
    return supplies


class RoundRobin(list):
    """Sequential phase of a refund round: invoices taken from the clinics in turn."""

    def __init__(self, per_clinic: list[list[int]]):
        merged = []
        queues = [list(q) for q in per_clinic]
        while any(queues):
            for q in queues:
                if q:
                    merged.append(q.pop())
        super().__init__(reversed(merged))  # pop() takes from the end


def split_supply(pools: dict, kind: str, config: Config) -> tuple[list, list[list[int]]]:
    """(sequential supply, one supply per concurrent client) from the per-clinic pools."""
    per_clinic_seq = -(-(config.requests + WARMUP) // len(REFUND_CLINICS))
    sequential_parts, rest = [], {}
    for code in REFUND_CLINICS:
        pool = list(pools[code][kind])
        sequential_parts.append(pool[:per_clinic_seq])
        rest[code] = pool[per_clinic_seq:]
    clients = []
    per_client = -(-config.concurrent_requests // config.clients)
    for k in range(config.clients):
        code = REFUND_CLINICS[k % len(REFUND_CLINICS)]
        clients.append(rest[code][:per_client])
        rest[code] = rest[code][per_client:]
    return RoundRobin(sequential_parts), clients


def run(config: Config) -> dict:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    if load_before > 1.5:
        log(f"note: the 1-minute load average is {load_before:.2f} before the benchmark "
            "starts: other jobs share the CPUs and the figures will show it")
    large = ensure_database(config, "_bench", config.invoices, f"load {config.invoices:,}")
    small = ensure_database(config, "_bench_small", config.small_invoices,
                            f"load {config.small_invoices:,}")
    if large["seconds"] is not None:
        print(f"Loaded {config.invoices:,} invoices in {large['seconds']:.1f} s "
              f"(+ migrate {large['migrate_seconds']:.1f} s).", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="clinic-bench-"))
    secret = secrets.token_urlsafe(50)
    extra = {"DJANGO_SECRET_KEY": secret, "BENCH_STATIC_ROOT": str(tmp / "static"),
             "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver"}
    env = loader.django_env(large["url"], **extra)
    small_env = loader.django_env(small["url"], **extra)
    log("collectstatic into a temporary STATIC_ROOT")
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                   cwd=REPO, env=env, check=True)

    cookies = django_json(["sessions", APPROVER, ONE_CLINIC_CLERK], env)
    api_client = create_api_client(env)
    with psycopg.connect(large["url"]) as conn:
        samples = pick_samples(conn)
        sql_ids = {
            "user": conn.execute("SELECT id FROM auth_user WHERE username = %s",
                                 (API_USER,)).fetchone()[0],
            "username": API_USER, "reason": samples["reason_id"],
            "ct_refund": conn.execute("SELECT id FROM django_content_type WHERE "
                                      "app_label = 'refunds' AND model = 'refund'").fetchone()[0],
            "ct_creditnote": conn.execute(
                "SELECT id FROM django_content_type WHERE app_label = 'refunds' "
                "AND model = 'creditnote'").fetchone()[0],
        }
    pools = refund_supplies(large["url"], config.requests, config.concurrent_requests,
                            config.clients)

    sampler = LoadSampler()
    servers: list[Server] = []
    results: dict[str, RoundResult] = {}
    try:
        app = Server("config.wsgi:application", env, config.workers, tmp, "gunicorn-app")
        servers.append(app)
        baseline = Server("bench.baseline_app:application", env, config.workers, tmp,
                          "gunicorn-baseline")
        servers.append(baseline)
        app.wait_ready("/accounts/login/")
        baseline.wait_ready("/baseline/invoices/1/")
        token = get_token(app.port, api_client["client_id"], api_client["client_secret"])
        log(f"serving on 127.0.0.1:{app.port} (app) and :{baseline.port} (baseline), "
            f"{config.workers} sync workers each; N = {samples['invoices']:,}")

        # every worker process imports and connects before anything is timed
        warm = Http(app.port, cookies, token)
        for i in range(2 * config.workers):
            for case in CASES:
                if case.kind in ("web", "api"):
                    with contextlib.suppress(OSError, http.client.HTTPException):
                        warm.send(request_for(case.key, samples, i))
        warm.close()

        for case in CASES:
            log(f"round: {case.label}")
            if case.kind in ("web", "api"):
                results[case.key] = measure(
                    case.key, lambda k, key=case.key: HttpWorker(
                        key, Http(app.port, cookies, token), samples, None),
                    config, sampler)
            elif case.kind == "baseline":
                results[case.key] = measure(
                    case.key, lambda k: HttpWorker(
                        "baseline", Http(baseline.port, cookies, token), samples, None),
                    config, sampler)
            elif case.kind == "refund":
                seq_supply, client_supplies = split_supply(pools, "api", config)
                results[case.key] = measure_refunds(
                    "api_refund", lambda supply: HttpWorker(
                        "api_refund", Http(app.port, cookies, token), samples, supply),
                    seq_supply, client_supplies, config, sampler)
            elif case.kind == "sql":
                seq_supply, client_supplies = split_supply(pools, "sql", config)
                results[case.key] = measure_refunds(
                    "sql_refund", lambda supply: SqlRefundWorker(large["url"], supply, sql_ids),
                    seq_supply, client_supplies, config, sampler)
    except BaseException:
        for server in servers:
            log(f"{server.name} log ({server.logfile}), last lines:\n{server.tail(15)}")
        raise
    finally:
        for server in servers:
            server.stop()
        sampler.stop()
    troubled = [server for server in servers
                if "Traceback" in server.tail(200) or "Error" in server.tail(200)]
    for server in troubled:
        log(f"{server.name} log ({server.logfile}), last lines:\n{server.tail(15)}")

    log("query counts on the large database")
    counts_large = django_json(["querycounts"], env)
    log("query counts on the small database")
    counts_small = django_json(["querycounts"], small_env)
    report = build_report(config, large, small, samples, results, counts_small, counts_large)
    if troubled:
        log(f"gunicorn logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)  # the collected static files and quiet logs
    report["total_seconds"] = round(time.monotonic() - started, 1)
    report["loadavg_before"] = round(load_before, 2)
    return report


def measure_refunds(key: str, make_worker, seq_supply: list[int],
                    client_supplies: list[list[int]], config: Config,
                    sampler: LoadSampler) -> RoundResult:
    """Like measure(), with each worker holding its own invoices to refund."""
    supplies = iter([seq_supply, *client_supplies])
    return measure(key, lambda k: make_worker(next(supplies)), config, sampler)


# -- the report ----------------------------------------------------------------------------------

def build_report(config: Config, large: dict, small: dict, samples: dict,
                 results: dict[str, RoundResult], counts_small: dict, counts_large: dict) -> dict:
    rounds = {}
    page = results.get("invoice_page")
    page_p95 = page.sequential.summary()["p95_ms"] if page else None
    for key, result in results.items():
        s, c = result.sequential.summary(), result.concurrent.summary()
        failures = s["failures"] + c["failures"] + len(result.warmup_failures)
        rounds[key] = {
            "label": CASE_BY_KEY[key].label,
            "requests": s["requests"], "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"],
            "rps_1": s["rps"],
            "concurrent_requests": c["requests"], "clients": config.clients,
            "rps_8": c["rps"], "p95_8_ms": c["p95_ms"], "p50_8_ms": c["p50_ms"],
            "ratio_p95_to_invoice_page": _r(s["p95_ms"] / page_p95)
            if page_p95 and s["p95_ms"] is not None else None,
            "loadavg": _r(result.loadavg_end), "loadavg_max": _r(result.loadavg_max),
            "failures": failures,
            "failure_samples": sorted(set(result.sequential.failures + result.concurrent.failures
                                          + result.warmup_failures))[:5],
            "capped": result.sequential.capped or result.concurrent.capped,
            "queries_small": counts_small["counts"].get(key),
            "queries_large": counts_large["counts"].get(key),
        }
    ratios = {f"{key}_p95_over_invoice_page": r["ratio_p95_to_invoice_page"]
              for key, r in rounds.items()}
    api_rps, sql_rps = (rounds.get("api_refund", {}).get("rps_8"),
                        rounds.get("sql_refund", {}).get("rps_8"))
    ratios["refund_api_rps8_over_raw_sql_rps8"] = (
        _r(api_rps / sql_rps, 3) if api_rps and sql_rps else None)
    ratios["refund_api_rps8_over_baseline_rps8"] = (
        _r(api_rps / rounds["baseline"]["rps_8"], 3)
        if api_rps and rounds.get("baseline", {}).get("rps_8") else None)
    query_counts = {key: {"small": counts_small["counts"].get(key),
                          "large": counts_large["counts"].get(key)}
                    for key in sorted(set(counts_small["counts"]) | set(counts_large["counts"]))}
    return {
        "n": config.invoices if not large.get("reused") else large["invoices"],
        "n_measured": samples["invoices"], "n_small": counts_small.get("invoices"),
        "workers": config.workers, "clients": config.clients,
        "requests": config.requests, "concurrent_requests": config.concurrent_requests,
        "max_seconds_per_phase": config.max_seconds,
        "load_seconds": large.get("seconds"), "migrate_seconds": large.get("migrate_seconds"),
        "small_load_seconds": small.get("seconds"), "reused_database": large.get("reused"),
        "rows": large.get("counts"),
        "databases": {"large": loader.database_name(large["url"]),
                      "small": loader.database_name(small["url"])},
        "refund_clinics": REFUND_CLINICS, "refund_idempotency_key": REFUND_IDEMPOTENCY,
        "rounds": rounds,
        "ratios": ratios,
        "query_counts": query_counts,
        "query_count_problems": {"small": counts_small.get("problems"),
                                 "large": counts_large.get("problems")},
        "loadavg": {key: r["loadavg"] for key, r in rounds.items()},
        "cpus": os.cpu_count(),
        "targets": targets(rounds, ratios, query_counts, counts_small, counts_large),
    }


def targets(rounds: dict, ratios: dict, query_counts: dict, counts_small: dict,
            counts_large: dict) -> dict:
    def ok(key: str) -> bool:
        r = rounds.get(key)
        return bool(r) and r["failures"] == 0 and r["p95_ms"] is not None

    def p95(key: str) -> float:
        return rounds[key]["p95_ms"]

    page = p95("invoice_page") if ok("invoice_page") else None
    found = {}
    for key in LIST_ROUNDS:
        found[f"{key}_p95_le_100ms"] = ok(key) and p95(key) <= 100
        found[f"{key}_p95_le_2x_invoice_page"] = bool(ok(key) and page and p95(key) <= 2 * page)
    found["search_exact_p95_le_1.2x_invoice_page"] = bool(
        ok("search_exact") and page and p95("search_exact") <= 1.2 * page)
    found["queue_p95_le_100ms"] = ok("queue") and p95("queue") <= 100
    found["api_invoices_p95_le_150ms"] = ok("api_invoices") and p95("api_invoices") <= 150
    refund = rounds.get("api_refund")
    ratio = ratios.get("refund_api_rps8_over_raw_sql_rps8")
    found["refund_api_rps8_ge_0.15_raw_sql"] = bool(
        ok("api_refund") and ok("sql_refund") and ratio is not None and ratio >= 0.15)
    found["refund_api_p95_8_le_250ms"] = bool(
        ok("api_refund") and refund["p95_8_ms"] is not None and refund["p95_8_ms"] <= 250)
    found["query_counts_equal_small_large"] = bool(
        query_counts and not counts_small.get("problems") and not counts_large.get("problems")
        and all(v["small"] is not None and v["small"] == v["large"]
                for v in query_counts.values()))
    found["all_met"] = all(found.values())
    return found


def print_table(report: dict) -> None:
    header = (f"{'round':<44} {'req':>5} {'p50 ms':>8} {'p95 ms':>8} {'rps@8':>7} "
              f"{'p95@8 ms':>9} {'p95/page':>8} {'load':>5} {'queries s/l':>11} {'fail':>5}")
    print()
    print(f"N = {report['n']:,} invoices (measured database: {report['n_measured']:,}); "
          f"{report['workers']} gunicorn sync workers; {report['clients']} clients; "
          f"{report['cpus']} CPUs")
    if report["load_seconds"] is not None:
        print(f"load: {report['load_seconds']:.1f} s (+ migrate {report['migrate_seconds']} s)")
    print(header)
    print("-" * len(header))
    for r in report["rounds"].values():
        queries = (f"{_fmt(r['queries_small'])}/{_fmt(r['queries_large'])}"
                   if r["queries_small"] is not None or r["queries_large"] is not None else "-")
        label = r["label"] + (" *" if r["capped"] else "")
        print(f"{label[:44]:<44} {r['requests']:>5} {_fmt(r['p50_ms']):>8} "
              f"{_fmt(r['p95_ms']):>8} {_fmt(r['rps_8']):>7} {_fmt(r['p95_8_ms']):>9} "
              f"{_fmt(r['ratio_p95_to_invoice_page']):>8} {_fmt(r['loadavg']):>5} "
              f"{queries:>11} {r['failures']:>5}")
    if any(r["capped"] for r in report["rounds"].values()):
        print(f"* stopped after BENCH_MAX_SECONDS={report['max_seconds_per_phase']:g} s in a "
              "phase: fewer requests than asked")
    ratio = report["ratios"]["refund_api_rps8_over_raw_sql_rps8"]
    print(f"refund API rps@8 / raw SQL rps@8 = {_fmt(ratio)}")
    for key, r in report["rounds"].items():
        if r["failures"]:
            print(f"FAILURES in {key}: {r['failures']}: {r['failure_samples']}")
    for size, problems in report["query_count_problems"].items():
        if problems:
            print(f"query-count problems ({size}): {problems}")
    print("targets: " + ", ".join(f"{k}={'yes' if v else 'NO'}"
                                  for k, v in report["targets"].items()))


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)


def main() -> None:
    config = Config.from_env()

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    report = run(config)
    print_table(report)
    print(json.dumps(report, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
