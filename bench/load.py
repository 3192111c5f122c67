"""The bench database loader: a realistic clinic-group ledger of N invoices, set-based SQL only.

How it works
------------
* The database is a bench-only one (see `bench_database_url`): dropped, created and migrated with
  `manage.py migrate`, so every table, constraint, trigger and index the migrations define is
  there while the rows arrive (nothing is dropped or disabled; indexes added by later migrations
  are maintained during the load, which is what a real ledger pays too).
* Reference rows (8 clinics, users, groups, tax rates, services, payment methods, dispute
  reasons) are a few dozen plain INSERTs.
* Everything else is derived from one deterministic plan: a temporary table with one row per
  invoice, computed by `INSERT … SELECT … FROM generate_series` from a hash of the invoice id
  (`hashint8extended`), so the same N always gives the same ledger. Invoices, lines, payments,
  credit notes, refunds, requests and audit events are then `INSERT … SELECT` from the plan,
  in chunks (one transaction each, for the progress bar and bounded memory), with explicit ids
  that follow time; identity sequences are moved past them at the end.
* Money is computed in SQL exactly as billing/money.py does: net = round(quantity × price),
  tax = round(net × rate), total = net + tax, rounded to the currency's places with PostgreSQL's
  round(numeric, places), which rounds half away from zero (= half-up for these positive
  amounts). Invoice totals are sums of lines; credit notes credit whole lines (so the tax
  credited is the line's tax, as the cumulative rounding rule gives for a full credit).
* Numbering follows billing/numbering.py: `INV-{code}-000001`, gapless per clinic in creation
  order, drafts without a number; credit notes `CN-{code}-…` gapless per clinic in issue order;
  each clinic's billing_numberseries.last_value is the highest sequence used.
* The database checks every constraint as rows arrive (check constraints, unique constraints,
  the one-open-request rule, requester ≠ decider, deferred foreign keys at each commit); the
  loader satisfies them by construction and fails loudly otherwise.

The shape, for N invoices
-------------------------
* 8 clinics (two in 3-decimal currencies: OMR, KWD), shares of N from 10% to 16%; refunds need
  approval in MUSCAT, KUWAIT and DUBAI, cancellations in MUSCAT, KUWAIT and LONDON.
* N/4 patient accounts. 1% of them are named "… Al-Balushi" (COMMON_FRAGMENT), about six
  "… Wolstenholme" (RARE_FRAGMENT); no other name contains either fragment.
* created_at spread evenly over three years (ending a day before the load), increasing with id.
* Each invoice has 3 lines of distinct services, quantity 1–3, the clinic's tax rate (5%, 8.25%,
  4.81%, 20%, 13%) or exempt.
* Status: invoices of the last 30 days are often drafts (5%), issued (25%) or partially paid
  (10%); older ones mostly paid (90%), 2.5% issued and 1.5% partially paid; 2% partially
  refunded (line 1 refunded), 2% refunded, 1% credited, 1% cancelled, each with its credit note,
  credit note lines, refund (to the single payment; manual refunds paid out after two weeks,
  the latest twelve per clinic still awaiting payout; gateway refunds succeeded, 3% failed) and
  running totals on lines, payments and the invoice. 10% of paid invoices were paid in two
  payments. Payment methods: cash 35%, card terminal 30%, bank transfer 15%, online card
  (sandbox gateway) 20%.
* N/100 financial requests: ~N/500 waiting (`requested`, 2,000 at N = 1,000,000, at least 30) on
  the newest paid (refund) or issued (cancellation, a fifth) invoices of the approval clinics, 8%
  rejected, 4% withdrawn, 1% approved and not yet carried out; the rest `completed`, each the
  dispute of one of the newest credit notes in the approval clinics (older credit notes there
  predate the approval policy: no dispute). Half the waiting refund requests propose a line.
  Requests are made by the clinic's clerk and decided by bench_approver.
* Audit events: invoice.created for every invoice, invoice.issued, payment.recorded,
  credit_note.issued / invoice.cancelled, refund.created and its outcome, and the requests'
  submitted / approved / rejected / withdrawn / completed — about 3 per invoice. Request ids
  are 32 hex digits that grow with time (so the loader appends to their index).

Users (all with unusable passwords; the benchmark signs them in through Django's session engine):
bench_approver (Billing staff + Financial approvers, every clinic), bench_clerk (Billing staff,
AUSTIN only, also AUSTIN's clerk), bench_api (Billing staff, every clinic: owner of the API
client) and clerk_<code> (Billing staff, one clinic) for the other clinics.

Run on its own: `DATABASE_URL=postgres://…/name BENCH_INVOICES=20000 python -m bench.load`
loads `name_bench` (see bench.run for the whole benchmark).
"""

import datetime
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

REPO = Path(__file__).resolve().parent.parent
CI_DATABASE = "clinic_billing_ci"
BENCH_SUFFIXES = ("_bench", "_bench_small")

COMMON_FRAGMENT = "Balushi"
RARE_FRAGMENT = "Wolstenholme"

# code, name, currency, places, time zone, refund policy, cancellation policy, share of
# invoices, standard tax (name, percentage), phone prefix
CLINICS = [
    ("MUSCAT", "Muscat Family Clinic", "OMR", 3, "Asia/Muscat", "approval", "approval", 16,
     ("VAT 5%", "5"), "+968"),
    ("KUWAIT", "Kuwait City Polyclinic", "KWD", 3, "Asia/Kuwait", "approval", "approval", 10,
     ("VAT 5%", "5"), "+965"),
    ("DUBAI", "Dubai Marina Clinic", "AED", 2, "Asia/Dubai", "approval", "direct", 14,
     ("VAT 5%", "5"), "+971"),
    ("AUSTIN", "Austin Health Partners", "USD", 2, "America/Chicago", "direct", "direct", 16,
     ("Sales tax 8.25%", "8.25"), "+1"),
    ("DALLAS", "Dallas Family Medicine", "USD", 2, "America/Chicago", "direct", "direct", 12,
     ("Sales tax 8.25%", "8.25"), "+1"),
    ("DENVER", "Denver Mountain Clinic", "USD", 2, "America/Denver", "direct", "direct", 10,
     ("Sales tax 4.81%", "4.81"), "+1"),
    ("LONDON", "London Bridge Clinic", "GBP", 2, "Europe/London", "direct", "approval", 12,
     ("VAT 20%", "20"), "+44"),
    ("TORONTO", "Toronto Harbourfront Clinic", "CAD", 2, "America/Toronto", "direct", "direct",
     10, ("HST 13%", "13"), "+1"),
]
ONE_CLINIC_CLERK_CLINIC = "AUSTIN"

# code, name, USD price, OMR price, taxed
SERVICES = [
    ("GP-CONS", "General consultation", "120.00", "15.000", True),
    ("SP-CONS", "Specialist consultation", "240.00", "35.000", True),
    ("FOLLOW", "Follow-up visit", "75.00", "8.500", True),
    ("CBC", "Complete blood count", "38.50", "6.750", True),
    ("LIPID", "Lipid panel", "52.25", "9.125", True),
    ("XR-CHEST", "Chest X-ray", "165.00", "22.000", True),
    ("US-ABD", "Abdominal ultrasound", "310.00", "40.000", True),
    ("ECG", "Electrocardiogram (ECG)", "89.99", "12.333", True),
    ("PHYSIO", "Physiotherapy session", "110.00", "18.000", True),
    ("DENT-CLN", "Dental cleaning", "145.00", "25.000", True),
    ("VACC-FLU", "Influenza vaccination", "45.00", "7.000", False),
    ("DRESS", "Wound dressing", "32.50", "4.125", True),
]
# from USD (or, for KWD, from OMR)
PRICE_FACTORS = {"AED": Decimal("3.67"), "GBP": Decimal("0.79"), "CAD": Decimal("1.37"),
                 "KWD": Decimal("0.8")}

PAYMENT_METHODS = [("Cash", "manual", ""), ("Card terminal", "manual", ""),
                   ("Bank transfer", "manual", ""), ("Online card", "gateway", "sandbox")]
DISPUTE_REASONS = ["Billing error", "Duplicate charge", "Service not rendered",
                   "Patient dissatisfaction", "Insurance adjustment"]
CANCELLATION_REASON = "Invoice cancelled"  # refunds.services.CANCELLATION_REASON

FIRST_NAMES = [
    "Aisha", "Mohammed", "Fatma", "Khalid", "Noor", "Said", "Huda", "Ahmed", "Zainab", "Yousuf",
    "Maha", "Hamad", "Mariam", "Omar", "Layla", "Salim", "Reem", "Tariq", "Amal", "Hassan",
    "Olivia", "James", "Sophia", "Michael", "Ava", "Ethan", "Isabella", "Noah", "Mia", "Liam",
    "Charlotte", "Benjamin", "Emma", "Lucas", "Grace", "Daniel", "Chloe", "Samuel", "Hannah",
    "David", "Priya", "Arjun", "Ananya", "Rohan", "Sofia", "Mateo", "Valentina", "Diego",
    "Camila", "Javier", "Wei", "Mei", "Hiroshi", "Yuki", "Fiona", "Connor", "Aoife", "Oliver",
    "Amelia", "Jack", "Emily", "Harry", "Isla", "George", "Sara", "Youssef", "Nadia", "Karim",
]
LAST_NAMES = [
    "Al-Harthy", "Al-Siyabi", "Al-Lawati", "Al-Zadjali", "Al-Mahrouqi", "Al-Kindi", "Al-Busaidi",
    "Al-Farsi", "Al-Amri", "Al-Hosni", "Al-Shukaili", "Al-Rawahi", "Al-Hinai", "Al-Maskari",
    "Al-Riyami", "Al-Saadi", "Al-Jabri", "Al-Mutairi", "Al-Azmi", "Al-Rashidi", "Haddad",
    "Khoury", "Mansour", "Martinez", "Thompson", "Nguyen", "Johnson", "Williams", "Brown",
    "Garcia", "Davis", "Robinson", "Walker", "Hall", "Lee", "Smith", "Jones", "Miller", "Wilson",
    "Moore", "Taylor", "Anderson", "Thomas", "Jackson", "White", "Harris", "Clark", "Lewis",
    "Young", "King", "Wright", "Lopez", "Hill", "Scott", "Green", "Adams", "Baker", "Gonzalez",
    "Nelson", "Carter", "Mitchell", "Perez", "Roberts", "Turner", "Phillips", "Campbell",
    "Parker", "Evans", "Edwards", "Collins", "Stewart", "Sanchez", "Morris", "Rogers", "Reed",
    "Cook", "Morgan", "Bell", "Murphy", "Patel", "Shah", "Singh", "Kumar", "Chen", "Wang",
    "Tanaka", "Kim", "O'Brien", "MacDonald", "Tremblay", "Gagnon", "Roy",
]

BILLING_STAFF = "Billing staff"  # billing.roles
FINANCIAL_APPROVERS = "Financial approvers"

REFUND_REMARKS = ["Patient asked for a refund.", "Charged twice for the same visit.",
                  "Service not provided.", "Insurance covered the visit after all.",
                  "Charged at the wrong rate."]
CANCEL_REMARKS = ["Invoice raised for the wrong patient.", "Visit cancelled by the patient.",
                  "Duplicate invoice."]
REQUEST_REMARKS = ["Patient was charged twice for the blood test.",
                   "X-ray repeated because of a technical fault.",
                   "Insurance covered the consultation after all.",
                   "Patient unhappy with waiting time.",
                   "Refund of the dressing: patient found the receipt."]
CANCEL_REQUEST_REMARKS = ["Appointment was booked for the wrong patient.",
                          "Visit did not take place."]


def _check_fragments() -> None:
    for name in FIRST_NAMES + LAST_NAMES:
        for fragment in (COMMON_FRAGMENT, RARE_FRAGMENT):
            if fragment.lower() in name.lower():
                raise RuntimeError(f"{name!r} contains the search fragment {fragment!r}.")


_check_fragments()


# -- databases -----------------------------------------------------------------------------------

def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql", "pgsql")


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def bench_database_url(url: str, suffix: str = "_bench") -> str:
    """DATABASE_URL with its database name + suffix (`clinic_billing` → `clinic_billing_bench`).
    A name that already ends with the suffix is used as given."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise ValueError("DATABASE_URL names no database.")
    if not name.endswith(suffix):
        name += suffix
    return urlunsplit(parts._replace(path="/" + name))


def _ensure_bench_name(name: str) -> None:
    if name == CI_DATABASE or not name.endswith(BENCH_SUFFIXES):
        raise RuntimeError(f"Refusing to touch database {name!r}: only *_bench databases are "
                           "dropped and loaded by the benchmark.")


def recreate_database(url: str) -> None:
    """Drop and create the bench-only database named in `url`."""
    name = database_name(url)
    _ensure_bench_name(name)
    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        ident = psycopg.sql.Identifier(name)
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(ident))


def database_exists(url: str) -> bool:
    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (database_name(url),)).fetchone() is not None


def django_env(url: str, **extra: str) -> dict[str, str]:
    """Environment for manage.py / gunicorn on the bench database, production settings."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        "PYTHONPATH": str(REPO),
    })
    env.update(extra)
    return env


def migrate(url: str) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                   cwd=REPO, env=django_env(url), check=True)


def loaded_invoices(url: str) -> int | None:
    """How many invoices a previous load left (None when it is not a bench ledger)."""
    try:
        with psycopg.connect(url) as conn:
            found = conn.execute(
                "SELECT count(*) FROM billing_clinic WHERE code = ANY(%s)",
                ([c[0] for c in CLINICS],)).fetchone()[0]
            if found != len(CLINICS):
                return None
            return conn.execute("SELECT count(*) FROM billing_invoice").fetchone()[0]
    except psycopg.Error:
        return None


# -- progress ------------------------------------------------------------------------------------

class Progress:
    """A text progress bar on stderr."""

    def __init__(self, total: float, label: str, width: int = 40):
        self.total, self.label, self.width = total, label, width
        self.done = 0.0
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last_line = 0.0
        self._last_step = self.start
        self.steps: dict[str, float] = {}  # seconds per kind of step

    def advance(self, amount: float, step: str) -> None:
        kind = step.split(" ", 1)[0].rstrip(",")
        now = time.monotonic()
        self.steps[kind] = round(self.steps.get(kind, 0.0) + now - self._last_step, 1)
        self._last_step = now
        self.done = min(self.total, self.done + amount)
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.width)
        line = (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {share:6.1%} "
                f"{now - self.start:6.1f}s {step}")
        if self.tty:
            sys.stderr.write("\r" + line[:120].ljust(120))
        elif now - self._last_line >= 5 or share >= 1.0:
            sys.stderr.write(line + "\n")
            self._last_line = now
        sys.stderr.flush()

    def finish(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


# -- the load ------------------------------------------------------------------------------------

@dataclass
class Shape:
    n: int
    chunk: int = 25_000
    accounts: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return max(min(30, self.n // 50), round(self.n * 0.002))

    @property
    def requests(self) -> int:
        return max(round(self.n / 100), self.pending + 10)


def _price(usd: str, omr: str, currency: str) -> Decimal:
    if currency == "OMR":
        return Decimal(omr)
    if currency == "USD":
        return Decimal(usd)
    if currency == "KWD":
        return (Decimal(omr) * PRICE_FACTORS["KWD"]).quantize(Decimal("0.001"), ROUND_HALF_UP)
    return (Decimal(usd) * PRICE_FACTORS[currency]).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _clinic_case(column: str) -> str:
    """SQL CASE mapping a uniform [0, 1) value to a clinic index by the clinics' shares."""
    total = sum(c[7] for c in CLINICS)
    parts, upto = [], 0
    for i, clinic in enumerate(CLINICS[:-1]):
        upto += clinic[7]
        parts.append(f"WHEN {column} < {upto / total!r} THEN {i}")
    return f"CASE {' '.join(parts)} ELSE {len(CLINICS) - 1} END"


SESSION_SETUP = [
    "SET synchronous_commit = off",
    "SET work_mem = '256MB'",
    "SET maintenance_work_mem = '512MB'",
    "SET temp_buffers = '512MB'",
    "SET jit = off",
    # uniform [0, 1) from (key, salt); inlined by the planner
    """CREATE FUNCTION pg_temp.u(bigint, integer) RETURNS double precision
       LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
       $$ SELECT (hashint8extended($1, $2) & 2147483647)::double precision / 2147483648.0 $$""",
    # the printed number of a document: prefix + zero-padded sequence (billing/numbering.py)
    """CREATE FUNCTION pg_temp.docnum(text, bigint, integer) RETURNS text
       LANGUAGE sql IMMUTABLE AS
       $$ SELECT $1 || CASE WHEN length($2::text) >= $3 THEN $2::text
                            ELSE lpad($2::text, $3, '0') END $$""",
    # format_money without the currency: '1,250.00', '12.500', '1,250'
    """CREATE FUNCTION pg_temp.money(numeric, integer) RETURNS text
       LANGUAGE sql STABLE AS
       $$ SELECT to_char($1, CASE $2 WHEN 3 THEN 'FM999,999,999,990.000'
                                     WHEN 2 THEN 'FM999,999,999,990.00'
                                     ELSE 'FM999,999,999,990' END) $$""",
    # a request id: 32 hex digits growing with (key, part)
    """CREATE FUNCTION pg_temp.rid(bigint, integer) RETURNS text
       LANGUAGE sql IMMUTABLE AS
       $$ SELECT lpad(to_hex($1 * 16 + $2), 32, '0') $$""",
]


def _reference_rows(cur, shape: Shape, now) -> dict:
    """Clinics, users, groups, catalogue, payment methods, dispute reasons; returns ids."""
    cur.execute("SELECT id, name FROM auth_group WHERE name = ANY(%s)",
                ([BILLING_STAFF, FINANCIAL_APPROVERS],))
    groups = {name: pk for pk, name in cur.fetchall()}
    if len(groups) != 2:
        raise RuntimeError("The migrations did not create the groups "
                           f"{BILLING_STAFF!r} and {FINANCIAL_APPROVERS!r}.")
    cur.execute("SELECT app_label || '.' || model, id FROM django_content_type")
    content_types = dict(cur.fetchall())

    clinic_ids = {}
    for code, name, currency, _places, tz, refund, cancel, *_rest in CLINICS:
        cur.execute(
            """INSERT INTO billing_clinic (code, name, currency, timezone, address,
                   tax_registration_number)
               VALUES (%s, %s, %s, %s, '', '') RETURNING id""",
            (code, name, currency, tz))
        clinic_ids[code] = cur.fetchone()[0]
        # its policies as one approval rule for everything of each kind
        for kind, policy in [("refund", refund), ("cancellation", cancel)]:
            cur.execute(
                """INSERT INTO approvals_approvalrule (clinic_id, kind, position, approvers)
                   VALUES (%s, %s, 1, %s)""",
                (clinic_ids[code], kind, "none" if policy == "direct" else "one"))

    def user(username, first, last, group_names, codes):
        cur.execute(
            """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,
                   email, is_staff, is_active, date_joined)
               VALUES (%s, false, %s, %s, %s, %s, false, true, %s) RETURNING id""",
            ("!" + secrets.token_urlsafe(30), username, first, last,
             f"{username}@clinic.example", now))
        pk = cur.fetchone()[0]
        for group in group_names:
            cur.execute("INSERT INTO auth_user_groups (user_id, group_id) VALUES (%s, %s)",
                        (pk, groups[group]))
        for code in codes:
            cur.execute("INSERT INTO billing_clinic_members (clinic_id, user_id) VALUES (%s, %s)",
                        (clinic_ids[code], pk))
        return pk

    all_codes = [c[0] for c in CLINICS]
    users = {
        "bench_approver": user("bench_approver", "Salim", "Al-Rawahi",
                               [BILLING_STAFF, FINANCIAL_APPROVERS], all_codes),
        "bench_clerk": user("bench_clerk", "Emily", "Carter", [BILLING_STAFF],
                            [ONE_CLINIC_CLERK_CLINIC]),
        "bench_api": user("bench_api", "Lab", "Integration", [BILLING_STAFF], all_codes),
    }
    clerks = {}
    for code, *_rest in CLINICS:
        if code == ONE_CLINIC_CLERK_CLINIC:
            clerks[code] = users["bench_clerk"]
        else:
            username = f"clerk_{code.lower()}"
            users[username] = clerks[code] = user(username, "Clerk", code.title(),
                                                  [BILLING_STAFF], [code])

    for name in [*DISPUTE_REASONS, CANCELLATION_REASON]:
        cur.execute("INSERT INTO billing_disputereason (name, is_active) VALUES (%s, true)",
                    (name,))
    cur.execute("SELECT name, id FROM billing_disputereason")
    reasons = dict(cur.fetchall())

    cur.execute("""CREATE TEMP TABLE cl (cidx int PRIMARY KEY, clinic_id bigint, code text,
        currency text, places int, tz text, inv_prefix text, acc_offset bigint, n_acc bigint,
        clerk_id int, clerk_name text, refund_approval bool, cancel_approval bool, phone text,
        method_ids bigint[])""")
    cur.execute("""CREATE TEMP TABLE svc (cidx int, k int, service_id bigint, name text,
        price numeric, tax_rate_id bigint, tax_name text, pct numeric, PRIMARY KEY (cidx, k))""")
    total_share = sum(c[7] for c in CLINICS)
    offset = 0
    for cidx, (code, _name, currency, places, tz, refund, cancel, share, (tax_name, pct),
               phone) in enumerate(CLINICS):
        clinic_id = clinic_ids[code]
        rates = {}
        for rate_name, rate in ((tax_name, pct), ("Exempt", "0")):
            cur.execute("""INSERT INTO billing_taxrate (name, percentage, is_active, clinic_id)
                           VALUES (%s, %s, true, %s) RETURNING id""",
                        (rate_name, Decimal(rate), clinic_id))
            rates[rate_name] = cur.fetchone()[0]
        for k, (scode, sname, usd, omr, taxed) in enumerate(SERVICES):
            rate_name = tax_name if taxed else "Exempt"
            price = _price(usd, omr, currency)
            cur.execute(
                """INSERT INTO billing_service (code, name, unit_price, is_active, clinic_id,
                       tax_rate_id) VALUES (%s, %s, %s, true, %s, %s) RETURNING id""",
                (scode, sname, price, clinic_id, rates[rate_name]))
            cur.execute("INSERT INTO svc VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (cidx, k, cur.fetchone()[0], sname, price, rates[rate_name], rate_name,
                         Decimal(pct) if taxed else Decimal(0)))
        method_ids = []
        for mname, kind, gateway in PAYMENT_METHODS:
            cur.execute("""INSERT INTO billing_paymentmethod (name, kind, gateway, is_active,
                               clinic_id) VALUES (%s, %s, %s, true, %s) RETURNING id""",
                        (mname, kind, gateway, clinic_id))
            method_ids.append(cur.fetchone()[0])
        n_acc = max(25, round(shape.n / 4 * share / total_share))
        shape.accounts[code] = n_acc
        cur.execute("INSERT INTO cl VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "%s, %s)",
                    (cidx, clinic_id, code, currency, places, tz, f"INV-{code}-", offset, n_acc,
                     clerks[code], next(k for k, v in users.items() if v == clerks[code]),
                     refund == "approval", cancel == "approval", phone, method_ids))
        offset += n_acc
    cur.execute("ANALYZE cl")
    cur.execute("ANALYZE svc")
    return {"clinics": clinic_ids, "users": users, "reasons": reasons,
            "content_types": content_types, "accounts_total": offset}


PLAN_SQL = """
CREATE TEMP TABLE plan AS
WITH b AS (
    SELECT g,
           {clinic_case} AS cidx,
           %(start)s::timestamptz
               + make_interval(secs => (g - 1 + 0.9 * pg_temp.u(g, 4)) * %(step)s) AS created_at,
           pg_temp.u(g, 2) AS r_status, pg_temp.u(g, 3) AS r_acc, pg_temp.u(g, 5) AS r_two,
           pg_temp.u(g, 6) AS r_method, pg_temp.u(g, 7) AS r_paydelay,
           pg_temp.u(g, 8) AS r_share, pg_temp.u(g, 9) AS r_cndelay,
           pg_temp.u(g, 10) AS r_reason, pg_temp.u(g, 17) AS r_misc,
           floor(pg_temp.u(g, 11) * 12)::int AS k1,
           1 + floor(pg_temp.u(g, 12) * 11)::int AS sa,
           floor(pg_temp.u(g, 13) * 10)::int AS sb,
           pg_temp.u(g, 14) AS r_q1, pg_temp.u(g, 15) AS r_q2, pg_temp.u(g, 16) AS r_q3
    FROM generate_series(1, %(n)s::bigint) AS g
), s AS (
    SELECT b.*,
           CASE WHEN %(now)s::timestamptz - created_at < interval '30 days' THEN
               CASE WHEN r_status < 0.05 THEN 'draft' WHEN r_status < 0.30 THEN 'issued'
                    WHEN r_status < 0.40 THEN 'partially_paid' WHEN r_status < 0.94 THEN 'paid'
                    WHEN r_status < 0.96 THEN 'partially_refunded'
                    WHEN r_status < 0.98 THEN 'refunded' WHEN r_status < 0.99 THEN 'credited'
                    ELSE 'cancelled' END
           ELSE
               CASE WHEN r_status < 0.025 THEN 'issued' WHEN r_status < 0.04 THEN 'partially_paid'
                    WHEN r_status < 0.94 THEN 'paid' WHEN r_status < 0.96 THEN 'partially_refunded'
                    WHEN r_status < 0.98 THEN 'refunded' WHEN r_status < 0.99 THEN 'credited'
                    ELSE 'cancelled' END
           END AS status,
           (k1 + sa) %% 12 AS k2,
           (k1 + 1 + (sa - 1 + 1 + sb) %% 11) %% 12 AS k3,
           CASE WHEN r_q1 < 0.8 THEN 1 WHEN r_q1 < 0.95 THEN 2 ELSE 3 END::numeric AS q1,
           CASE WHEN r_q2 < 0.8 THEN 1 WHEN r_q2 < 0.95 THEN 2 ELSE 3 END::numeric AS q2,
           CASE WHEN r_q3 < 0.8 THEN 1 WHEN r_q3 < 0.95 THEN 2 ELSE 3 END::numeric AS q3
    FROM b
), l AS (
    SELECT s.g, s.cidx, s.created_at, s.status, s.r_acc, s.r_two, s.r_method, s.r_paydelay,
           s.r_share, s.r_cndelay, s.r_reason, s.r_misc, s.q1, s.q2, s.q3,
           c.clinic_id, c.currency, c.places, c.tz, c.inv_prefix, c.acc_offset, c.n_acc,
           c.clerk_id, c.refund_approval, c.cancel_approval,
           s1.service_id AS sid1, s1.name AS d1, s1.price AS up1, s1.tax_rate_id AS tr1,
           s1.tax_name AS tn1, s1.pct AS pct1,
           s2.service_id AS sid2, s2.name AS d2, s2.price AS up2, s2.tax_rate_id AS tr2,
           s2.tax_name AS tn2, s2.pct AS pct2,
           s3.service_id AS sid3, s3.name AS d3, s3.price AS up3, s3.tax_rate_id AS tr3,
           s3.tax_name AS tn3, s3.pct AS pct3,
           round(s.q1 * s1.price, c.places) AS n1, round(s.q2 * s2.price, c.places) AS n2,
           round(s.q3 * s3.price, c.places) AS n3
    FROM s JOIN cl c USING (cidx)
    JOIN svc s1 ON s1.cidx = s.cidx AND s1.k = s.k1
    JOIN svc s2 ON s2.cidx = s.cidx AND s2.k = s.k2
    JOIN svc s3 ON s3.cidx = s.cidx AND s3.k = s.k3
), t AS (
    SELECT l.*,
           round(n1 * pct1 / 100, places) AS t1, round(n2 * pct2 / 100, places) AS t2,
           round(n3 * pct3 / 100, places) AS t3,
           CASE WHEN status <> 'draft' THEN
               row_number() OVER (PARTITION BY cidx, status = 'draft' ORDER BY g) END AS seq
    FROM l
), m AS (
    SELECT t.*, n1 + t1 AS l1, n2 + t2 AS l2, n3 + t3 AS l3,
           n1 + n2 + n3 AS subtotal, t1 + t2 + t3 AS tax_amount,
           n1 + n2 + n3 + t1 + t2 + t3 AS total,
           status = 'paid' AND r_two < 0.10 AS two,
           CASE WHEN r_method < 0.35 THEN 0 WHEN r_method < 0.65 THEN 1
                WHEN r_method < 0.80 THEN 2 ELSE 3 END AS method1,
           least(created_at + interval '5 minutes'
                     + make_interval(secs => r_paydelay * 10 * 86400),
                 %(now)s::timestamptz - interval '2 minutes') AS pay1_at
    FROM t
), p AS (
    SELECT m.*,
           CASE status
               WHEN 'partially_paid' THEN round(total * (ARRAY[0.25, 0.4, 0.5, 0.6])
                                                [1 + floor(r_share * 4)::int], places)
               WHEN 'paid' THEN CASE WHEN two THEN round(total / 2, places) ELSE total END
               WHEN 'partially_refunded' THEN total
               WHEN 'refunded' THEN total
           END AS p1,
           CASE WHEN two THEN least(pay1_at + make_interval(secs => r_share * 5 * 86400),
                                    %(now)s::timestamptz - interval '2 minutes') END AS pay2_at,
           CASE WHEN status IN ('partially_refunded', 'refunded') THEN
                    least(pay1_at + interval '1 hour'
                              + make_interval(secs => r_cndelay * 20 * 86400),
                          %(now)s::timestamptz - interval '1 minute')
                WHEN status IN ('credited', 'cancelled') THEN
                    least(created_at + interval '1 hour'
                              + make_interval(secs => r_cndelay * 30 * 86400),
                          %(now)s::timestamptz - interval '1 minute')
           END AS cn_at
    FROM m
)
SELECT g, cidx, clinic_id, currency, places, status, created_at,
       CASE WHEN status = 'draft' AND r_misc < 0.2 THEN %(approver)s ELSE clerk_id END
           AS created_by,
       clerk_id, refund_approval, cancel_approval,
       acc_offset + 1 + floor(r_acc * n_acc)::bigint AS account_id,
       seq, CASE WHEN seq IS NOT NULL THEN pg_temp.docnum(inv_prefix, seq, 6) END AS number,
       CASE WHEN seq IS NOT NULL THEN (created_at AT TIME ZONE tz)::date END AS issue_date,
       q1, q2, q3, sid1, sid2, sid3, d1, d2, d3, up1, up2, up3, tr1, tr2, tr3, tn1, tn2, tn3,
       pct1, pct2, pct3, n1, n2, n3, t1, t2, t3, l1, l2, l3, subtotal, tax_amount, total,
       two, method1, CASE WHEN p1 IS NOT NULL THEN pay1_at END AS pay1_at, pay2_at, p1,
       CASE WHEN two THEN total - p1 END AS p2,
       CASE WHEN status IN ('paid', 'partially_refunded', 'refunded') THEN total
            WHEN status = 'partially_paid' THEN p1 ELSE 0 END AS amount_paid,
       CASE status WHEN 'partially_refunded' THEN l1 WHEN 'refunded' THEN total ELSE 0 END
           AS amount_refunded,
       CASE WHEN status = 'partially_refunded' THEN l1
            WHEN status IN ('refunded', 'credited', 'cancelled') THEN total ELSE 0 END
           AS amount_credited,
       cn_at, r_reason, r_misc,
       greatest(created_at + interval '1 second', CASE WHEN p1 IS NOT NULL THEN pay1_at END,
                pay2_at, cn_at) AS updated_at
FROM p
ORDER BY g
"""

PAYS_SQL = """
CREATE TEMP TABLE pays AS
SELECT row_number() OVER (ORDER BY x.g, x.n) AS id, x.*
FROM (
    SELECT p.g, 1 AS n, p.clinic_id, p.currency, p.places, p.p1 AS amount, p.method1 AS midx,
           c.method_ids[p.method1 + 1] AS method_id, p.pay1_at AS received_at,
           p.amount_refunded AS refunded, p.clerk_id AS recorded_by,
           'issued' AS from_state,
           CASE WHEN p.status = 'partially_paid' OR p.two THEN 'partially_paid'
                ELSE 'paid' END AS to_state
    FROM plan p JOIN cl c USING (cidx)
    WHERE p.status IN ('partially_paid', 'paid', 'partially_refunded', 'refunded')
    UNION ALL
    SELECT p.g, 2, p.clinic_id, p.currency, p.places, p.p2, mod(p.method1 + 1, 3),
           c.method_ids[mod(p.method1 + 1, 3) + 1], p.pay2_at, 0, p.clerk_id,
           'partially_paid', 'paid'
    FROM plan p JOIN cl c USING (cidx)
    WHERE p.two
) x
"""

CNS_SQL = """
CREATE TEMP TABLE cns AS
SELECT row_number() OVER (ORDER BY x.issued_at, x.g) AS id,
       row_number() OVER (PARTITION BY x.clinic_id ORDER BY x.issued_at, x.g) AS seq,
       x.*
FROM (
    SELECT p.g, p.cidx, p.clinic_id, p.account_id, p.currency, p.places, p.clerk_id, p.status,
           p.refund_approval, p.cancel_approval, p.cn_at AS issued_at, p.r_reason, p.r_misc,
           p.method1, p.pay1_at, p.created_at,
           CASE p.status WHEN 'cancelled' THEN 'cancellation' WHEN 'credited' THEN 'credit'
                ELSE 'refund' END AS kind,
           CASE WHEN p.status = 'partially_refunded' THEN p.n1 ELSE p.subtotal END AS subtotal,
           CASE WHEN p.status = 'partially_refunded' THEN p.t1 ELSE p.tax_amount END AS tax,
           CASE WHEN p.status = 'partially_refunded' THEN p.l1 ELSE p.total END AS amount,
           CASE WHEN p.status IN ('credited', 'cancelled') THEN p.total ELSE 0 END AS applied,
           CASE WHEN p.status IN ('partially_refunded', 'refunded') THEN p.amount_refunded
                ELSE 0 END AS unapplied,
           CASE WHEN p.status IN ('credited', 'cancelled') THEN 'issued' ELSE 'paid' END
               AS from_state
    FROM plan p
    WHERE p.status IN ('partially_refunded', 'refunded', 'credited', 'cancelled')
) x
"""


def load(url: str, n: int, *, label: str = "load", chunk: int = 25_000) -> dict:
    """Load N invoices into the migrated, empty bench database at `url`. Returns counts."""
    shape = Shape(n=n, chunk=chunk)
    started = time.monotonic()
    chunks = max(1, -(-n // chunk))
    # weights: rough share of the load's time per step
    progress = Progress(total=10 + 10 + chunks * 10 + 12 + 8, label=label)
    with psycopg.connect(url, cursor_factory=psycopg.ClientCursor) as conn, conn.cursor() as cur:
        for statement in SESSION_SETUP:
            cur.execute(statement)
        cur.execute("SELECT date_trunc('minute', now())")
        now = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM billing_invoice")
        if cur.fetchone()[0]:
            raise RuntimeError("The bench database already has invoices: recreate it first.")
        _check_schema(cur)
        ref = _reference_rows(cur, shape, now)
        conn.commit()
        approver = ref["users"]["bench_approver"]
        ct = ref["content_types"]
        progress.advance(1, "reference rows")

        # invoices are spread over three years ending a day ago; patients exist before them
        end = now - _days(1)
        start = end - _years(3)
        cur.execute(
            """INSERT INTO billing_account (id, number, name, email, phone, is_active,
                   created_at, clinic_id)
               SELECT c.acc_offset + i,
                      left(c.code, 3) || '-' || lpad(i::text, 7, '0'),
                      fn.first || ' ' || fn.last,
                      CASE WHEN pg_temp.u(c.acc_offset + i, 31) < 0.35 THEN
                          lower(regexp_replace(fn.first || '.' || fn.last, '[^A-Za-z.]', '',
                                               'g')) || (c.acc_offset + i) || '@example.com'
                      ELSE '' END,
                      c.phone || ' ' || (20000000 + floor(pg_temp.u(c.acc_offset + i, 32)
                                                          * 79999999))::bigint,
                      true,
                      %(start)s::timestamptz - make_interval(secs => (c.n_acc - i) * 60),
                      c.clinic_id
               FROM cl c CROSS JOIN LATERAL generate_series(1, c.n_acc) AS i
               CROSS JOIN LATERAL (SELECT
                   (%(first)s::text[])[1 + floor(pg_temp.u(c.acc_offset + i, 33)
                                                 * %(nfirst)s)::int] AS first,
                   CASE WHEN (c.acc_offset + i) %% %(rare_step)s = 3 THEN %(rare)s
                        WHEN (c.acc_offset + i) %% 100 = 7 THEN %(common)s
                        ELSE (%(last)s::text[])[1 + floor(pg_temp.u(c.acc_offset + i, 34)
                                                          * %(nlast)s)::int] END AS last
               ) fn
               ORDER BY 1""",
            {"start": start - _days(1), "first": FIRST_NAMES, "nfirst": len(FIRST_NAMES),
             "last": LAST_NAMES, "nlast": len(LAST_NAMES),
             "rare_step": max(7, ref["accounts_total"] // 6), "rare": RARE_FRAGMENT,
             "common": f"Al-{COMMON_FRAGMENT}"})
        conn.commit()
        progress.advance(4, "accounts")

        # the plan
        step = (end - start).total_seconds() / n
        cur.execute(PLAN_SQL.format(clinic_case=_clinic_case("pg_temp.u(g, 1)")),
                    {"start": start, "step": step, "n": n, "now": now, "approver": approver})
        cur.execute("CREATE UNIQUE INDEX ON plan (g)")
        cur.execute("ANALYZE plan")
        cur.execute(PAYS_SQL)
        cur.execute("CREATE INDEX ON pays (g)")
        cur.execute("ANALYZE pays")
        cur.execute(CNS_SQL)
        cur.execute("CREATE UNIQUE INDEX ON cns (g)")
        cur.execute("ANALYZE cns")
        conn.commit()
        progress.advance(15, "plan")

        params = {"ct_invoice": ct["billing.invoice"], "ct_payment": ct["billing.payment"],
                  "methods": [m[0] for m in PAYMENT_METHODS]}
        for lo in range(1, n + 1, chunk):
            hi = min(n, lo + chunk - 1)
            _load_chunk(cur, lo, hi, params)
            conn.commit()
            progress.advance(10, f"invoices {hi:,}/{n:,}")

        _load_credit_notes_and_requests(cur, shape, ref, now)
        conn.commit()
        progress.advance(10, "credit notes, refunds, requests")

        _finish(cur, ref)
        conn.commit()
        progress.advance(2, "number series, sequences")
        conn.autocommit = True
        cur.execute("ANALYZE")
        progress.advance(8, "ANALYZE")
        progress.finish()
        counts = {}
        for table in ("billing_account", "billing_invoice", "billing_invoiceline",
                      "billing_payment", "refunds_creditnote", "refunds_creditnoteline",
                      "refunds_refund", "approvals_financialrequest", "audit_event"):
            cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
            counts[table] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM approvals_financialrequest WHERE status = 'requested'")
        counts["pending_requests"] = cur.fetchone()[0]
    return {"seconds": round(time.monotonic() - started, 1), "counts": counts,
            "steps": progress.steps}


def _years(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=365 * n + n // 4)


def _days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


# columns the loader fills, per table: a NOT NULL column without a default that is not listed
# here (added by a later migration) would make the INSERTs fail; say so plainly before loading
LOADED_COLUMNS = {
    "billing_account": {"id", "number", "name", "email", "phone", "is_active", "created_at",
                        "clinic_id"},
    "billing_invoice": {"id", "currency", "number", "sequence", "issue_date", "due_date",
                        "status", "subtotal", "tax_amount", "total", "amount_paid",
                        "amount_refunded", "amount_credited", "notes", "created_at",
                        "updated_at", "account_id", "clinic_id", "created_by_id"},
    "billing_invoiceline": {"id", "position", "description", "quantity", "unit_price",
                            "tax_name", "tax_percentage", "net", "tax", "total", "credited_net",
                            "credited_tax", "invoice_id", "service_id", "tax_rate_id"},
    "billing_payment": {"id", "amount", "amount_refunded", "reference", "received_at",
                        "created_at", "invoice_id", "recorded_by_id", "method_id"},
    "refunds_creditnote": {"id", "uuid", "currency", "number", "sequence", "kind", "subtotal",
                           "tax_amount", "amount", "amount_applied", "amount_unapplied",
                           "is_credit", "is_legacy", "description", "warren_id", "issued_at",
                           "created_at", "updated_at", "account_id", "clinic_id",
                           "created_by_id", "dispute_reason_id", "invoice_id", "dispute_id"},
    "refunds_creditnoteline": {"id", "net", "tax", "total", "credit_note_id", "invoice_line_id"},
    "refunds_refund": {"id", "idempotency_key", "amount", "currency", "method_name", "gateway",
                       "status", "gateway_reference", "failure_reason", "attempts",
                       "created_at", "updated_at", "completed_at", "created_by_id",
                       "credit_note_id", "invoice_id", "paid_out_by_id", "payment_id",
                       "retries"},
    "approvals_financialrequest": {"id", "kind", "status", "remarks", "requested_at",
                                   "decided_at", "decision_remarks", "completed_at",
                                   "clinic_id", "completed_by_id", "decided_by_id",
                                   "invoice_id", "requested_by_id"},
    "approvals_financialrequestline": {"id", "amount", "request_id", "invoice_line_id"},
    "audit_event": {"id", "occurred_at", "actor_username", "object_id", "object_repr",
                    "action", "from_state", "to_state", "amount", "currency", "remarks",
                    "request_id", "client", "data", "actor_id", "clinic_id",
                    "content_type_id", "invoice_id"},
}


def _check_schema(cur) -> None:
    cur.execute(
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = ANY(%s)
             AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'""",
        (list(LOADED_COLUMNS),))
    missing = [f"{table}.{column}" for table, column in cur.fetchall()
               if column not in LOADED_COLUMNS[table]]
    if missing:
        raise RuntimeError("The schema has required columns the bench loader does not fill: "
                           f"{', '.join(sorted(missing))}. Teach bench/load.py about them.")


CHUNK_SQL = [
    # invoices
    """INSERT INTO billing_invoice (id, currency, number, sequence, issue_date, due_date, status,
           subtotal, tax_amount, total, amount_paid, amount_refunded, amount_credited, notes,
           created_at, updated_at, account_id, clinic_id, created_by_id)
       SELECT g, currency, number, seq, issue_date, issue_date + 30, status, subtotal,
              tax_amount, total, amount_paid, amount_refunded, amount_credited, '', created_at,
              updated_at, account_id, clinic_id, created_by
       FROM plan WHERE g BETWEEN %(lo)s AND %(hi)s ORDER BY g""",
    # lines: line k of invoice g has id 3(g-1)+k; credited whole when a credit note covers it
    """INSERT INTO billing_invoiceline (id, position, description, quantity, unit_price,
           tax_name, tax_percentage, net, tax, total, credited_net, credited_tax, invoice_id,
           service_id, tax_rate_id)
       SELECT 3 * (p.g - 1) + v.k, v.k, v.d, v.q, v.up, v.tn, v.pct, v.n, v.t, v.n + v.t,
              CASE WHEN v.credited THEN v.n ELSE 0 END, CASE WHEN v.credited THEN v.t ELSE 0 END,
              p.g, v.sid, v.tr
       FROM plan p CROSS JOIN LATERAL (VALUES
           (1, p.d1, p.q1, p.up1, p.tn1, p.pct1, p.n1, p.t1, p.sid1, p.tr1,
            p.status IN ('partially_refunded', 'refunded', 'credited', 'cancelled')),
           (2, p.d2, p.q2, p.up2, p.tn2, p.pct2, p.n2, p.t2, p.sid2, p.tr2,
            p.status IN ('refunded', 'credited', 'cancelled')),
           (3, p.d3, p.q3, p.up3, p.tn3, p.pct3, p.n3, p.t3, p.sid3, p.tr3,
            p.status IN ('refunded', 'credited', 'cancelled'))
       ) AS v(k, d, q, up, tn, pct, n, t, sid, tr, credited)
       WHERE p.g BETWEEN %(lo)s AND %(hi)s ORDER BY 1""",
    # payments
    """INSERT INTO billing_payment (id, amount, amount_refunded, reference, received_at,
           created_at, invoice_id, recorded_by_id, method_id)
       SELECT id, amount, refunded,
              CASE midx WHEN 0 THEN 'RCPT-' || lpad((id %% 1000000)::text, 6, '0')
                        WHEN 3 THEN 'ch_bench_' || lpad(to_hex(id), 12, '0') ELSE '' END,
              received_at, received_at, g, recorded_by, method_id
       FROM pays WHERE g BETWEEN %(lo)s AND %(hi)s ORDER BY id""",
    # audit: invoice.created (every invoice), invoice.issued (all but drafts)
    """INSERT INTO audit_event (occurred_at, actor_username, object_id, object_repr, action,
           from_state, to_state, amount, currency, remarks, request_id, client, data, actor_id,
           clinic_id, content_type_id, invoice_id)
       SELECT e.at, u.username, p.g::text, e.repr, e.action, e.from_state, e.to_state, p.total,
              p.currency, '', pg_temp.rid(p.g, e.part), 'web', e.data, p.created_by,
              p.clinic_id, %(ct_invoice)s, p.g
       FROM plan p JOIN auth_user u ON u.id = p.created_by
       CROSS JOIN LATERAL (VALUES
           (1, p.created_at, 'Draft invoice #' || p.g, 'invoice.created', '', 'draft',
            '{}'::jsonb),
           (2, p.created_at + interval '1 second', 'Invoice ' || p.number, 'invoice.issued',
            'draft', 'issued', jsonb_build_object('number', p.number))
       ) AS e(part, at, repr, action, from_state, to_state, data)
       WHERE p.g BETWEEN %(lo)s AND %(hi)s AND (e.part = 1 OR p.status <> 'draft')
       ORDER BY p.g, e.part""",
    # audit: payment.recorded
    """INSERT INTO audit_event (occurred_at, actor_username, object_id, object_repr, action,
           from_state, to_state, amount, currency, remarks, request_id, client, data, actor_id,
           clinic_id, content_type_id, invoice_id)
       SELECT y.received_at, u.username, y.id::text,
              pg_temp.money(y.amount, y.places) || ' ' || y.currency || ' by '
                  || (%(methods)s::text[])[y.midx + 1],
              'payment.recorded', y.from_state, y.to_state, y.amount, y.currency, '',
              pg_temp.rid(y.g, 2 + y.n), 'web',
              jsonb_build_object('method', (%(methods)s::text[])[y.midx + 1],
                                 'reference', ''),
              y.recorded_by, y.clinic_id, %(ct_payment)s, y.g
       FROM pays y JOIN auth_user u ON u.id = y.recorded_by
       WHERE y.g BETWEEN %(lo)s AND %(hi)s ORDER BY y.id""",
]


def _load_chunk(cur, lo: int, hi: int, params: dict) -> None:
    for sql in CHUNK_SQL:
        cur.execute(sql, {**params, "lo": lo, "hi": hi})


def _load_credit_notes_and_requests(cur, shape: Shape, ref: dict, now) -> None:
    approver = ref["users"]["bench_approver"]
    ct = ref["content_types"]
    reasons = ref["reasons"]
    pending = shape.pending
    pending_cancel = pending // 5
    total = shape.requests
    rejected, withdrawn = round(total * 0.08), round(total * 0.04)
    approved = max(1, round(total * 0.01))

    # -- the requests' plan ----------------------------------------------------------------------
    cur.execute("""CREATE TEMP TABLE rq (g bigint, clinic_id bigint, kind text, status text,
        requested_by int, requested_at timestamptz, decided_at timestamptz,
        completed_at timestamptz, cn_id bigint, remarks text, decision_remarks text,
        propose_line bool, line_amount numeric)""")
    # waiting cancellation requests: newest issued invoices of cancellation-approval clinics
    cur.execute(
        """INSERT INTO rq
           SELECT g, clinic_id, 'cancellation', 'requested', clerk_id,
                  least(created_at + make_interval(secs => 3600 + r_misc * 3 * 86400),
                        %(now)s::timestamptz - interval '10 minutes'), NULL, NULL, NULL,
                  (%(cremarks)s::text[])[1 + floor(r_misc * %(ncr)s)::int], '', false, NULL
           FROM plan WHERE status = 'issued' AND cancel_approval AND pg_temp.u(g, 40) < 0.5
           ORDER BY g DESC LIMIT %(limit)s""",
        {"now": now, "cremarks": CANCEL_REQUEST_REMARKS, "ncr": len(CANCEL_REQUEST_REMARKS),
         "limit": pending_cancel})
    # refund requests on paid invoices of refund-approval clinics, newest first: waiting, then
    # rejected, withdrawn, approved (open)
    cur.execute(
        """INSERT INTO rq
           SELECT g, clinic_id, 'refund', st, clerk_id, req_at,
                  CASE WHEN st IN ('rejected', 'approved')
                       THEN least(req_at + make_interval(secs => 1800 + r_misc * 86400),
                                  %(now)s::timestamptz - interval '5 minutes') END,
                  NULL, NULL,
                  (%(remarks)s::text[])[1 + floor(r_misc * %(nr)s)::int],
                  CASE WHEN st = 'rejected' THEN 'Not covered by the clinic''s refund policy.'
                       WHEN st = 'approved' THEN 'Checked with the patient.' ELSE '' END,
                  st = 'requested' AND pg_temp.u(g, 41) < 0.5, n1
           FROM (
               SELECT p.*, row_number() OVER (ORDER BY g DESC) AS rk,
                      least(pay1_at + make_interval(secs => 3600 + r_misc * 3 * 86400),
                            %(now)s::timestamptz - interval '10 minutes') AS req_at
               FROM plan p
               WHERE status = 'paid' AND refund_approval AND pg_temp.u(g, 40) < 0.3
           ) c
           CROSS JOIN LATERAL (SELECT CASE
               WHEN rk <= %(w)s THEN 'requested'
               WHEN rk <= %(w)s + %(rej)s THEN 'rejected'
               WHEN rk <= %(w)s + %(rej)s + %(wd)s THEN 'withdrawn'
               ELSE 'approved' END AS st) s
           WHERE rk <= %(w)s + %(rej)s + %(wd)s + %(ap)s""",
        {"now": now, "remarks": REQUEST_REMARKS, "nr": len(REQUEST_REMARKS),
         "w": pending - min(pending_cancel, _count(cur, "SELECT count(*) FROM rq")),
         "rej": rejected, "wd": withdrawn, "ap": approved})
    # completed: one per newest credit notes in the clinics whose policy needed approval
    completed = max(0, total - _count(cur, "SELECT count(*) FROM rq"))
    cur.execute(
        """INSERT INTO rq
           SELECT g, clinic_id, CASE kind WHEN 'cancellation' THEN 'cancellation'
                                          ELSE 'refund' END,
                  'completed', clerk_id,
                  greatest(issued_at - make_interval(secs => 7200 + r_misc * 2 * 86400),
                           coalesce(pay1_at, created_at)),
                  NULL, issued_at, id,
                  CASE WHEN kind = 'cancellation'
                       THEN (%(cremarks)s::text[])[1 + floor(r_misc * %(ncr)s)::int]
                       ELSE (%(remarks)s::text[])[1 + floor(r_misc * %(nr)s)::int] END,
                  'Approved.', false, NULL
           FROM cns
           WHERE CASE WHEN kind = 'cancellation' THEN cancel_approval ELSE refund_approval END
           ORDER BY issued_at DESC LIMIT %(limit)s""",
        {"remarks": REQUEST_REMARKS, "nr": len(REQUEST_REMARKS),
         "cremarks": CANCEL_REQUEST_REMARKS, "ncr": len(CANCEL_REQUEST_REMARKS),
         "limit": completed})
    cur.execute("""UPDATE rq SET decided_at = requested_at + (completed_at - requested_at) / 2
                   WHERE status = 'completed'""")
    cur.execute("""CREATE TEMP TABLE rqs AS
                   SELECT row_number() OVER (ORDER BY requested_at, g, kind) AS id, rq.*
                   FROM rq""")

    cur.execute(
        """INSERT INTO approvals_financialrequest (id, kind, status, remarks, requested_at,
               decided_at, decision_remarks, completed_at, clinic_id, completed_by_id,
               decided_by_id, invoice_id, requested_by_id)
           SELECT id, kind, status, remarks, requested_at, decided_at, decision_remarks,
                  completed_at, clinic_id,
                  CASE WHEN status = 'completed' THEN requested_by END,
                  CASE WHEN status IN ('approved', 'rejected', 'completed')
                       THEN %(approver)s END,
                  g, requested_by
           FROM rqs ORDER BY id""",
        {"approver": approver})
    cur.execute(
        """INSERT INTO approvals_financialrequestline (amount, request_id, invoice_line_id)
           SELECT line_amount, id, 3 * (g - 1) + 1 FROM rqs WHERE propose_line ORDER BY id""")

    # -- credit notes, their lines, refunds ------------------------------------------------------
    cur.execute(
        """INSERT INTO refunds_creditnote (id, uuid, currency, number, sequence, kind, subtotal,
               tax_amount, amount, amount_applied, amount_unapplied, is_credit, is_legacy,
               description, warren_id, issued_at, created_at, updated_at, account_id,
               clinic_id, created_by_id, dispute_reason_id, invoice_id, dispute_id)
           SELECT c.id, md5('bench-cn-' || c.id)::uuid, c.currency,
                  pg_temp.docnum('CN-' || cl.code || '-', c.seq, 6), c.seq, c.kind,
                  c.subtotal, c.tax, c.amount, c.applied, c.unapplied, c.unapplied = 0, false,
                  CASE WHEN c.kind = 'cancellation'
                       THEN (%(cremarks)s::text[])[1 + floor(c.r_misc * %(ncr)s)::int]
                       ELSE (%(remarks)s::text[])[1 + floor(c.r_misc * %(nr)s)::int] END,
                  '', c.issued_at, c.issued_at, c.issued_at, c.account_id, c.clinic_id,
                  c.clerk_id,
                  CASE WHEN c.kind = 'cancellation' THEN %(cancel_reason)s
                       ELSE (%(reasons)s::bigint[])[1 + floor(c.r_reason * %(nreasons)s)::int]
                  END,
                  c.g, r.id
           FROM cns c JOIN cl USING (cidx) LEFT JOIN rqs r ON r.cn_id = c.id
           ORDER BY c.id""",
        {"remarks": REFUND_REMARKS, "nr": len(REFUND_REMARKS), "cremarks": CANCEL_REMARKS,
         "ncr": len(CANCEL_REMARKS), "cancel_reason": reasons[CANCELLATION_REASON],
         "reasons": [reasons[name] for name in DISPUTE_REASONS],
         "nreasons": len(DISPUTE_REASONS)})
    cur.execute(
        """INSERT INTO refunds_creditnoteline (net, tax, total, credit_note_id, invoice_line_id)
           SELECT v.n, v.t, v.n + v.t, c.id, 3 * (c.g - 1) + v.k
           FROM cns c JOIN plan p USING (g)
           CROSS JOIN LATERAL (VALUES (1, p.n1, p.t1), (2, p.n2, p.t2), (3, p.n3, p.t3))
               AS v(k, n, t)
           WHERE v.k = 1 OR c.status <> 'partially_refunded'
           ORDER BY c.id, v.k""")
    # refunds: to the single payment of the refunded invoice. Manual ones are paid out two
    # weeks on, except the newest twelve per clinic; gateway ones succeeded, 3% failed.
    cur.execute(
        """CREATE TEMP TABLE rfs AS
           SELECT c.id AS cn_id, c.g, c.clinic_id, c.currency, c.places, c.clerk_id,
                  c.unapplied AS amount, c.issued_at, c.method1, y.id AS payment_id,
                  CASE WHEN c.method1 = 3 THEN
                           CASE WHEN c.r_misc < 0.03 THEN 'failed' ELSE 'succeeded' END
                       WHEN c.issued_at > %(now)s::timestamptz - interval '14 days'
                            OR row_number() OVER (PARTITION BY c.clinic_id, c.method1 = 3
                                                  ORDER BY c.issued_at DESC) <= 12
                       THEN 'awaiting_payout' ELSE 'paid_out' END AS status
           FROM cns c JOIN pays y ON y.g = c.g AND y.n = 1
           WHERE c.unapplied > 0""",
        {"now": now})
    cur.execute(
        """INSERT INTO refunds_refund (idempotency_key, amount, currency, method_name, gateway,
               status, gateway_reference, failure_reason, attempts, created_at, updated_at,
               completed_at, created_by_id, credit_note_id, invoice_id, paid_out_by_id,
               payment_id, retries)
           SELECT md5('bench-refund-' || r.cn_id)::uuid, r.amount, r.currency,
                  (%(methods)s::text[])[r.method1 + 1],
                  CASE WHEN r.method1 = 3 THEN 'sandbox' ELSE '' END, r.status,
                  CASE WHEN r.method1 = 3 THEN 're_bench_' || lpad(to_hex(r.cn_id), 12, '0')
                       ELSE '' END,
                  CASE WHEN r.status = 'failed' THEN 'Your card was declined.' ELSE '' END,
                  CASE WHEN r.method1 = 3 THEN 1 ELSE 0 END,
                  r.issued_at, r.issued_at + interval '30 seconds',
                  CASE WHEN r.status = 'succeeded' THEN r.issued_at + interval '2 seconds'
                       WHEN r.status = 'paid_out' THEN r.issued_at + interval '1 day' END,
                  r.clerk_id, r.cn_id, r.g,
                  CASE WHEN r.status = 'paid_out' THEN r.clerk_id END, r.payment_id, 0
           FROM rfs r ORDER BY r.cn_id""",
        {"methods": [m[0] for m in PAYMENT_METHODS]})

    # -- their audit events ----------------------------------------------------------------------
    audit_cols = """INSERT INTO audit_event (occurred_at, actor_username, object_id, object_repr,
        action, from_state, to_state, amount, currency, remarks, request_id, client, data,
        actor_id, clinic_id, content_type_id, invoice_id)"""
    cur.execute(
        audit_cols + """
        SELECT c.issued_at, u.username, c.id::text, 'Credit note ' || n.number,
               CASE WHEN c.kind = 'cancellation' THEN 'invoice.cancelled'
                    ELSE 'credit_note.issued' END,
               c.from_state, c.status, c.amount, c.currency, n.description,
               pg_temp.rid(c.g, 5), 'web',
               jsonb_build_object('number', n.number, 'kind', c.kind,
                                  'applied', c.applied::text, 'refunded', c.unapplied::text),
               c.clerk_id, c.clinic_id, %(ct)s, c.g
        FROM cns c JOIN refunds_creditnote n ON n.id = c.id JOIN auth_user u ON u.id = c.clerk_id
        ORDER BY c.id""",  # noqa: S608 - constant SQL
        {"ct": ct["refunds.creditnote"]})
    cur.execute(
        audit_cols + """
        SELECT e.at, coalesce(u.username, ''), f.id::text,
               'Refund ' || pg_temp.money(f.amount, r.places) || ' ' || f.currency || ' to '
                   || f.method_name,
               e.action, e.from_state, e.to_state, f.amount, f.currency, e.remarks,
               pg_temp.rid(f.invoice_id, e.part), e.client, e.data,
               e.actor, r.clinic_id, %(ct)s, f.invoice_id
        FROM refunds_refund f JOIN rfs r ON r.cn_id = f.credit_note_id
        CROSS JOIN LATERAL (VALUES
            (6, f.created_at, 'refund.created', '',
             CASE WHEN f.gateway = '' THEN 'awaiting_payout' ELSE 'pending' END, '',
             'web', jsonb_build_object('payment', f.payment_id, 'method', f.method_name),
             r.clerk_id),
            (7, coalesce(f.completed_at, f.updated_at), 'refund.' || f.status,
             CASE WHEN f.gateway = '' THEN 'awaiting_payout' ELSE 'pending' END, f.status,
             f.failure_reason,
             CASE WHEN f.gateway = '' THEN 'web' ELSE 'gateway:sandbox' END,
             jsonb_build_object('gateway', f.gateway, 'reference', f.gateway_reference),
             CASE WHEN f.gateway = '' THEN r.clerk_id END)
        ) AS e(part, at, action, from_state, to_state, remarks, client, data, actor)
        LEFT JOIN auth_user u ON u.id = e.actor
        WHERE e.part = 6 OR f.status <> 'awaiting_payout'
        ORDER BY f.id, e.part""",  # noqa: S608 - constant SQL
        {"ct": ct["refunds.refund"]})
    cur.execute(
        audit_cols + """
        SELECT e.at, u.username, r.id::text,
               CASE r.kind WHEN 'refund' THEN 'Invoice Refund Request #'
                           ELSE 'Invoice Cancellation Request #' END || r.id,
               e.action, e.from_state, e.to_state, e.amount, CASE WHEN e.amount IS NULL
                   THEN '' ELSE p.currency END, e.remarks,
               pg_temp.rid(r.g, e.part), 'web', e.data, e.actor, r.clinic_id, %(ct)s, r.g
        FROM rqs r JOIN plan p USING (g)
        CROSS JOIN LATERAL (VALUES
            (8, r.requested_at, 'request.submitted', '', 'requested', r.remarks,
             CASE WHEN r.propose_line THEN r.line_amount END,
             jsonb_build_object('kind', r.kind), r.requested_by),
            (9, r.decided_at,
             CASE WHEN r.status = 'rejected' THEN 'request.rejected'
                  ELSE 'request.approved' END, 'requested',
             CASE WHEN r.status = 'rejected' THEN 'rejected' ELSE 'approved' END,
             r.decision_remarks, NULL::numeric, '{}'::jsonb, %(approver)s),
            (10, least(r.requested_at + interval '1 hour', %(now)s::timestamptz),
             'request.withdrawn', 'requested',
             'withdrawn', '', NULL, '{}'::jsonb, r.requested_by),
            (11, r.completed_at, 'request.completed', 'approved', 'completed', '',
             NULL, '{}'::jsonb, r.requested_by)
        ) AS e(part, at, action, from_state, to_state, remarks, amount, data, actor)
        JOIN auth_user u ON u.id = e.actor
        WHERE e.part = 8
           OR (e.part = 9 AND r.status IN ('approved', 'rejected', 'completed'))
           OR (e.part = 10 AND r.status = 'withdrawn')
           OR (e.part = 11 AND r.status = 'completed')
        ORDER BY r.id, e.part""",  # noqa: S608 - constant SQL
        {"ct": ct["approvals.financialrequest"], "approver": approver, "now": now})


def _count(cur, sql: str) -> int:
    cur.execute(sql)
    return cur.fetchone()[0]


def _finish(cur, ref: dict) -> None:
    """Number series at the highest sequence used; identity sequences past the loaded ids."""
    for code, clinic_id in ref["clinics"].items():
        for kind, prefix, table in (("invoice", "INV", "billing_invoice"),
                                    ("credit_note", "CN", "refunds_creditnote")):
            cur.execute(f"SELECT coalesce(max(sequence), 0) FROM {table} "  # noqa: S608
                        "WHERE clinic_id = %s", (clinic_id,))
            last = cur.fetchone()[0]
            cur.execute("""INSERT INTO billing_numberseries (kind, prefix, padding, last_value,
                               clinic_id) VALUES (%s, %s, 6, %s, %s)""",
                        (kind, f"{prefix}-{code}-", last, clinic_id))
    for table in ("billing_account", "billing_invoice", "billing_invoiceline", "billing_payment",
                  "refunds_creditnote", "approvals_financialrequest"):
        cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")


def prepare(base_url: str, suffix: str, n: int, *, label: str) -> dict:
    """Recreate, migrate and load the bench database `<name><suffix>`; returns load stats."""
    url = bench_database_url(base_url, suffix)
    started = time.monotonic()
    recreate_database(url)
    migrate(url)
    migrated = time.monotonic() - started
    stats = load(url, n, label=label)
    stats["migrate_seconds"] = round(migrated, 1)
    stats["url_database"] = database_name(url)
    return stats


def main() -> None:
    base = os.environ.get("DATABASE_URL", "")
    if not is_postgres_url(base):
        sys.exit("Set DATABASE_URL to a PostgreSQL URL, e.g. "
                 "postgres://postgres@127.0.0.1:5432/clinic_billing")
    n = int(os.environ.get("BENCH_INVOICES", "1000000"))
    stats = prepare(base, os.environ.get("BENCH_SUFFIX", "_bench"), n, label=f"load {n:,}")
    print(stats)


if __name__ == "__main__":
    main()
