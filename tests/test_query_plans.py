"""Every list and search a clerk or an integration uses all day is answered by an index on the
invoice, account and request tables (docs/rules.md §9: no page may scan or count the whole ledger).

Each page is requested as staff would, every SQL statement it runs is captured and run again
under EXPLAIN ANALYZE on PostgreSQL with sequential scans switched off (a small test table is
always cheapest to scan, so the planner must show an index path if one exists). A statement
fails the test when, on one of the ledger's large tables, a part of its plan that ran still
needed a sequential scan, or walked a whole index without a condition to sort or aggregate what
it read."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import FinancialRequest, RequestKind, RequestStatus
from billing.models import Account, Invoice, InvoiceStatus
from billing.roles import all_role_permissions, grant_role_permissions
from refunds.models import CreditNote, CreditNoteKind

from .api_helpers import api_token, gql_response
from .conftest import requires_postgres
from .factories import ClinicFactory, DisputeReasonFactory, approver_factory, clerk_factory

pytestmark = [requires_postgres, pytest.mark.django_db]

LARGE_TABLES = {"billing_invoice", "billing_account", "approvals_financialrequest",
                "refunds_creditnote"}
JOINED_TABLES = {"billing_invoiceline", "billing_payment", "billing_paymentmethod",
                 "billing_clinic", "billing_clinic_members"}
# Plan nodes that consume everything below them before giving a row back.
BLOCKING = {"Sort", "Incremental Sort", "Aggregate", "Hash", "Materialize", "SetOp", "Unique"}
# In proportions like a clinic group's: two invoices per patient, a common surname on one
# patient in a hundred, a rare one on a handful.
INVOICES = 6000
ACCOUNTS = 3000

STATUS_MIX = [InvoiceStatus.PAID] * 6 + [
    InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.CANCELLED,
    InvoiceStatus.DRAFT,
]
SURNAMES = ["Al-Harthy", "Smith", "Nguyen", "Okafor", "Haddad", "Rahman", "Silva", "Kowalski"]


def _surname(n: int) -> str:
    if n % 100 == 7:
        return "Al-Balushi"
    if n % 1000 == 3:
        return "Zawawi"
    return f"{SURNAMES[n % len(SURNAMES)]}{n % 97}"


@pytest.fixture(scope="module")
def ledger_rows(django_db_setup, django_db_blocker):
    """A few thousand invoices over a group of ten clinics, one request in a hundred invoices,
    and a member of two of the clinics. Set-based inserts, then fresh statistics.

    Built once for the module, in a transaction rolled back when the module ends; each test
    runs in a savepoint inside it (pytest-django's own), so none sees another's changes. The
    clinics and people are the conftest fixtures' own, which find them by code and username."""
    with django_db_blocker.unblock(), transaction.atomic():
        roles = all_role_permissions()
        if Group.objects.filter(name__in=roles).count() != len(roles):
            grant_role_permissions(django_apps, roles)
        clinic = ClinicFactory(code="MUSCAT", name="Muscat Clinic", currency="OMR")
        other_clinic = ClinicFactory(code="AUSTIN", name="Austin Clinic", currency="USD",
                                     timezone="America/Chicago")
        clerk = clerk_factory(username="clerk", clinics=[clinic])
        approver = approver_factory(username="approver", clinics=[clinic])
        yield _ledger_build(clinic, other_clinic, clerk, approver)
        transaction.set_rollback(True)


@pytest.fixture
def ledger(ledger_rows, db):
    return ledger_rows


def _ledger_build(clinic, other_clinic, clerk, approver):
    group_member = clerk_factory(username="group_member", clinics=[clinic, other_clinic])
    clinics = [clinic, other_clinic] + [ClinicFactory(code=f"GROUP{n}") for n in range(8)]
    accounts = Account.objects.bulk_create([
        Account(clinic=clinics[n % len(clinics)], number=f"P{n:06d}",
                name=f"Patient {_surname(n)}")
        for n in range(ACCOUNTS)
    ])
    ten = Decimal("10.000")
    invoices = []
    for n in range(INVOICES):
        account = accounts[n % ACCOUNTS]
        status = STATUS_MIX[n % len(STATUS_MIX)]
        paid = {InvoiceStatus.PAID: Decimal("10.500"),
                InvoiceStatus.PARTIALLY_PAID: Decimal("5.000")}.get(status, Decimal(0))
        invoices.append(Invoice(
            clinic_id=account.clinic_id, account=account, currency="OMR",
            number=None if status == InvoiceStatus.DRAFT else f"INV-{n:06d}",
            sequence=None if status == InvoiceStatus.DRAFT else n + 1,
            issue_date=None if status == InvoiceStatus.DRAFT
            else timezone.localdate() - timedelta(days=n % 700),
            status=status, subtotal=ten, tax_amount=Decimal("0.500"), total=Decimal("10.500"),
            amount_paid=paid,
            amount_credited=Decimal("10.500") if status == InvoiceStatus.CANCELLED else 0,
            created_by=clerk,
        ))
    invoices = Invoice.objects.bulk_create(invoices)
    FinancialRequest.objects.bulk_create([
        FinancialRequest(clinic_id=invoice.clinic_id, invoice=invoice, kind=RequestKind.REFUND,
                         status=RequestStatus.REQUESTED if n % 3 else RequestStatus.WITHDRAWN,
                         remarks="Patient asked for a refund.", requested_by=clerk)
        for n, invoice in enumerate(invoices[::50])
        if invoice.status == InvoiceStatus.PAID
    ])
    reason = DisputeReasonFactory(name="Billing error")
    CreditNote.objects.bulk_create([
        CreditNote(clinic_id=invoice.clinic_id, invoice=invoice, account_id=invoice.account_id,
                   currency="OMR", number=f"CN-{n:06d}", sequence=n + 1,
                   kind=CreditNoteKind.CANCELLATION if invoice.status == InvoiceStatus.CANCELLED
                   else CreditNoteKind.CREDIT, subtotal=ten,
                   tax_amount=Decimal("0.500"), amount=Decimal("10.500"),
                   amount_applied=Decimal("10.500"), amount_unapplied=0,
                   dispute_reason=reason, created_by=clerk,
                   issued_at=timezone.now() - timedelta(minutes=n))
        for n, invoice in enumerate(invoices) if invoice.status != InvoiceStatus.DRAFT
    ])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET created_at = now() - id * interval '1 minute'")
        # the tables joined to them too: left unanalysed, their size is guessed from whatever
        # earlier tests left behind, and the plans with it
        cursor.execute(f"ANALYZE {', '.join(sorted(LARGE_TABLES | JOINED_TABLES))}")
    return {"clerk": clerk, "approver": approver, "group_member": group_member,
            "invoice": invoices[120], "account": accounts[10]}  # of `clinic`


def _explain(sql: str) -> tuple[list[str], set[str]]:
    """(what makes the plan read a whole table, the indexes it uses)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    problems, indexes = [], set()

    def walk(node, blocked: bool):
        if node.get("Actual Loops") == 0:
            return  # never run: e.g. behind a one-time filter the user's permissions made false
        kind = node["Node Type"]
        if "Index Name" in node:
            indexes.add(node["Index Name"])
        table = node.get("Relation Name")
        if table in LARGE_TABLES:
            if kind == "Seq Scan":
                problems.append(f"sequential scan of {table}")
            elif (kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node
                  and blocked):
                problems.append(f"whole index {node['Index Name']} read to sort or count")
        if kind == "Limit":
            blocked = False
        elif kind in BLOCKING or kind.endswith("Aggregate"):
            blocked = True
        for child in node.get("Plans", []):
            walk(child, blocked)

    walk(plan[0]["Plan"], blocked=False)
    return problems, indexes


def _plan_problems(sql: str) -> list[str]:
    return _explain(sql)[0]


def _statements_of(fetch) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = fetch()
    assert response.status_code == 200, response.content[:500]
    return [query["sql"] for query in captured.captured_queries
            if query["sql"].lstrip().upper().startswith("SELECT")
            and any(table in query["sql"] for table in LARGE_TABLES)]


def _assert_indexed(fetch):
    """No statement of the page reads a whole ledger table."""
    statements = _statements_of(fetch)
    assert statements, "the page ran no query on the ledger's tables"
    failures = [f"{problems}\n{sql}" for sql in statements if (problems := _plan_problems(sql))]
    assert not failures, "\n\n".join(failures)


PAGES = {
    "invoice list": ("clerk", "/billing/invoices/"),
    "invoice list, several clinics": ("group_member", "/billing/invoices/"),
    "invoice list, page 3": ("clerk", "/billing/invoices/?page=3"),
    "exact invoice number": ("clerk", "/billing/invoices/?q={invoice.number}"),
    "exact number, lower case": ("group_member", "/billing/invoices/?q={invoice_number_lower}"),
    "exact account number": ("clerk", "/billing/invoices/?q={account.number}"),
    "common surname fragment": ("group_member", "/billing/invoices/?q=balush"),
    "rare fragment": ("clerk", "/billing/invoices/?q=zawaw"),
    "status filter": ("group_member", "/billing/invoices/?status=partially_paid"),
    "status and dates": ("clerk", "/billing/invoices/?status=issued&date_from=2020-01-01"),
    "home of a clerk": ("clerk", "/"),
    "home of an approver": ("approver", "/"),
    "approval queue, waiting": ("approver", "/approvals/?status=requested"),
    "approval queue, all": ("group_member", "/approvals/"),
    "approval queue by invoice number": ("approver", "/approvals/?q={invoice.number}"),
    # by amount: read in order from the amount indexes (by status, or across every status)
    "approval queue, waiting, largest first": ("approver",
                                               "/approvals/?status=requested&sort=largest"),
    "approval queue, all, smallest first": ("group_member", "/approvals/?sort=smallest"),
    "approval queue, one clinic's refunds": ("group_member",
                                             "/approvals/?kind=refund&clinic={invoice.clinic_id}"),
    "credit notes": ("group_member", "/billing/credit-notes/"),
    "credit note by number": ("group_member", "/billing/credit-notes/?q=CN-000008"),
    "credit notes by invoice number": ("clerk", "/billing/credit-notes/?q={invoice.number}"),
    "credit notes by patient": ("group_member", "/billing/credit-notes/?q=zawaw"),
    "credit notes by number fragment": ("clerk", "/billing/credit-notes/?q=-00123"),
    "cancelled invoices": ("group_member", "/billing/invoices/cancelled/"),
    "patients": ("clerk", "/billing/patients/"),
    "patients, several clinics": ("group_member", "/billing/patients/"),
    "patient by number": ("clerk", "/billing/patients/?q={account.number}"),
    "patients by surname fragment": ("group_member", "/billing/patients/?q=balush"),
    "a patient's page": ("clerk", "/billing/patients/{account.pk}/"),
}


@pytest.mark.parametrize("page", PAGES)
def test_every_list_and_search_is_answered_by_an_index(client, ledger, page):
    persona, url = PAGES[page]
    url = url.format(invoice_number_lower=ledger["invoice"].number.lower(), **ledger)
    client.force_login(ledger[persona])
    _assert_indexed(lambda: client.get(url))


API_INVOICES = """query($search: String, $clinicId: ID) {
  invoices(first: 50, search: $search, clinicId: $clinicId) {
    id number lines { id net } payments { id amount } } }"""


@pytest.mark.parametrize("search", ["", "INV-000123", "balush"])
@pytest.mark.parametrize("one_clinic", [False, True])
def test_the_api_invoice_list_is_answered_by_an_index(client, ledger, clinic, search,
                                                      one_clinic):
    variables = {"search": search or None, "clinicId": str(clinic.pk) if one_clinic else None}
    token = api_token(ledger["group_member"], "billing:read")
    _assert_indexed(lambda: gql_response(client, token, API_INVOICES, variables))


# Which index a page's plan picks depends on how much data there is (on a test's few thousand
# rows a clinic's whole list is cheap to read); `make bench` shows the choice at a million
# invoices. What must hold at any size: each searched column has an index its search can use.
SEARCHED_COLUMNS = {
    "invoice_number_trgm_idx": lambda c: Invoice.objects.filter(number__icontains="00123"),
    "account_name_trgm_idx": lambda c: Account.objects.filter(name__icontains="balush"),
    "account_number_trgm_idx": lambda c: Account.objects.filter(number__icontains="00123"),
    "credit_note_number_trgm_idx": lambda c: CreditNote.objects.filter(number__icontains="0012"),
    "invoice_number_unique_per_clinic": lambda c: Invoice.objects.filter(
        clinic=c, number__in=["INV-000123", "inv-000123"]),
    "account_number_unique": lambda c: Account.objects.filter(clinic=c, number="P000007"),
    "credit_note_number_unique": lambda c: CreditNote.objects.filter(clinic=c, number="CN-1"),
}


def _drop_the_other_indexes(index: str) -> None:
    """Drop every index of `index`'s table but it (and those backing constraints), so the plan
    shows whether the search can use `index` rather than which index a small table favours.
    Call it inside a savepoint that is rolled back: PostgreSQL's DDL is transactional."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT other.relname FROM pg_index x
            JOIN pg_class other ON other.oid = x.indexrelid
            WHERE x.indrelid = (SELECT indrelid FROM pg_index JOIN pg_class i
                                ON i.oid = pg_index.indexrelid WHERE i.relname = %s)
              AND other.relname <> %s
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        """, [index, index])
        for (other,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{other}"')


@pytest.mark.parametrize("index", SEARCHED_COLUMNS)
def test_each_searched_column_has_an_index_its_search_uses(ledger, clinic, index):
    sql, params = SEARCHED_COLUMNS[index](clinic).values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        sql = cursor.mogrify(sql, params)
    with transaction.atomic():
        _drop_the_other_indexes(index)
        problems, indexes = _explain(sql)
        transaction.set_rollback(True)
    assert not problems
    assert index in indexes


def test_the_plan_check_catches_a_query_no_index_can_answer(ledger):
    # given a search through a column nothing indexes (an invoice's notes)
    sql = "SELECT id FROM billing_invoice WHERE UPPER(notes) LIKE '%X%'"
    # then the check names the scan it would need
    assert _plan_problems(sql) == ["sequential scan of billing_invoice"]


def test_the_plan_check_catches_a_whole_index_read_to_sort(ledger):
    # given a list sorted on a column no index orders (the due date)
    sql = "SELECT id FROM billing_invoice ORDER BY due_date, id LIMIT 25"
    # then the check says the whole table had to be read to sort it
    assert _plan_problems(sql)
