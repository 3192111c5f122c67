"""The Financial Approval screen (docs/rules.md §7): each row's amount and frozen breakdown, its
age against the clinic's reminder time, the orders and the kind and clinic filters, bulk
decisions with an outcome per request, and the CSV export of what the filters show."""

import csv
import datetime
import io
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib import messages
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals import views
from approvals.forms import BULK_REJECT_REMARKS, NOT_A_REQUEST, NOTHING_SELECTED
from approvals.models import Approvers, FinancialRequest, RequestKind, RequestStatus
from approvals.rules import ALREADY_DECIDED, OWN_REQUEST
from approvals.services import (
    NOT_FOUND,
    RuleSpec,
    approval_rules_set,
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
)
from audit.models import Action, AuditEvent
from billing.access import NO_PERMISSION
from billing.forms import NOT_YOUR_CLINIC
from billing.models import Policy
from billing.services import LineInput, invoice_create

from .conftest import ledger_state
from .factories import (
    AccountFactory,
    ClinicFactory,
    TaxRateFactory,
    approver_factory,
    set_policy,
)

D = Decimal
QUEUE = reverse("approvals:queue")
BULK = reverse("approvals:bulk_decide")
CSV_URL = reverse("approvals:queue_csv")


def listed(response):
    return [item.pk for item in response.context["page"].object_list]


def messages_of(response):
    return [(message.level, str(message)) for message in get_messages(response.wsgi_request)]


def rows_html(response) -> dict[int, str]:
    """{request id: the HTML of its row}."""
    page = response.content.decode()
    rows = {}
    for chunk in page.split('<tr class="clickable"')[1:]:
        pk = int(re.search(r'href="/approvals/(\d+)/', chunk).group(1))
        rows[pk] = chunk.split("\n    </tr>", 1)[0]
    return rows


def statuses():
    return dict(FinancialRequest.objects.values_list("pk", "status"))


@pytest.fixture
def as_approver(client, approver):
    client.force_login(approver)
    return client


@pytest.fixture
def paid_refund_request(approval_clinic, make_invoice, pay, clerk):
    """refund request of a paid invoice of one line (quantity 1 at `price`, 5% VAT)."""

    def make(price="10.000", *, remarks="Charged twice"):
        invoice = make_invoice([("1", price)])
        pay(invoice, str((D(price) * D("1.05")).quantize(D("0.001"))))
        return refund_request_create(invoice=invoice, remarks=remarks, actor=clerk)

    return make


@pytest.fixture
def second_approver(clinic, roles):
    return approver_factory(username="approver2", clinics=[clinic], first_name="Aisha",
                            last_name="Al-Said")


@pytest.fixture
def austin_request(other_clinic, outsider):
    """A cancellation request of the Austin clinic (USD), submitted by its clerk."""
    set_policy(other_clinic, cancellation=Policy.APPROVAL)
    invoice = invoice_create(
        clinic=other_clinic, account=AccountFactory(clinic=other_clinic, name="John Doe"),
        actor=outsider, issue=True,
        lines=[LineInput(description="Visit", quantity=D("1"), unit_price=D("120.00"),
                         tax_rate=TaxRateFactory(clinic=other_clinic))])
    return cancellation_request_create(invoice=invoice, remarks="Wrong patient", actor=outsider)


# -- amount and breakdown ----------------------------------------------------------------------

def test_each_row_shows_the_amount_and_its_frozen_breakdown_to_expand(
        as_approver, approval_clinic, make_invoice, pay, clerk):
    # given a paid invoice (2 × 10.000 and 1 × 7.333, 5% VAT) and its whole refund requested
    invoice = make_invoice()
    pay(invoice, "28.700")
    request = refund_request_create(invoice=invoice, remarks="Charged twice", actor=clerk)

    row = rows_html(as_approver.get(QUEUE))[request.pk]

    # then the row shows the amount, and the breakdown approved opens under it
    assert re.search(r'<details class="frozen-breakdown"><summary>28\.700 OMR', row)
    shown = re.sub(r"<[^>]+>", "", row)
    for text in ("Item 1", "net 20.000 OMR · tax 1.000 OMR · total 21.000 OMR", "Item 2",
                 "net 7.333 OMR · tax 0.367 OMR · total 7.700 OMR", "Credit note",
                 "net 27.333 OMR · tax 1.367 OMR · total 28.700 OMR",
                 "Reduces the balance due", "Paid back to the payer28.700 OMR",
                 "to the Cash payment: 28.700 OMR"):
        assert text in shown, text
    # no table inside the queue's table: its rows stay the requests'
    assert "<table" not in row


def test_a_request_that_froze_no_amount_shows_a_dash(as_approver, paid_refund_request):
    old = paid_refund_request()
    FinancialRequest.objects.filter(pk=old.pk).update(frozen_total=None, frozen_breakdown=None)

    row = rows_html(as_approver.get(QUEUE))[old.pk]

    assert "frozen-breakdown" not in row
    assert re.search(r'<td class="money request-amount"><span class="text-secondary"[^>]*>—', row)


def test_a_stale_request_says_it_needs_approval_again(as_approver, paid_refund_request):
    fresh, stale = paid_refund_request(), paid_refund_request("20.000")
    FinancialRequest.objects.filter(pk=stale.pk).update(stale=True)

    rows = rows_html(as_approver.get(QUEUE))

    assert "Changed: needs approval again" in rows[stale.pk]
    assert "Changed: needs approval again" not in rows[fresh.pk]


# -- age against the clinic's reminder time ----------------------------------------------------

def _age_cell(row: str) -> str:
    return re.search(r'<td class="request-age">(.*?)</td>', row, re.S).group(1)


@pytest.mark.parametrize(("waited", "colour", "word"), [
    (datetime.timedelta(hours=10, seconds=-1), None, None),
    (datetime.timedelta(hours=10), "text-warning-emphasis", "overdue"),
    (datetime.timedelta(hours=19, minutes=59), "text-warning-emphasis", "overdue"),
    (datetime.timedelta(hours=20), "text-danger-emphasis", "long overdue"),
])
def test_the_age_is_coloured_and_worded_against_the_clinic_reminder_time(
        as_approver, approval_clinic, paid_refund_request, waited, colour, word):
    # given a clinic that reminds its approvers after 10 hours
    approval_clinic.approval_reminder_hours = 10
    approval_clinic.save(update_fields=["approval_reminder_hours"])
    request = paid_refund_request()
    FinancialRequest.objects.filter(pk=request.pk).update(requested_at=timezone.now() - waited)

    cell = _age_cell(rows_html(as_approver.get(QUEUE))[request.pk])

    if colour is None:
        assert "emphasis" not in cell and "overdue" not in cell
    else:
        assert colour in cell
        # not by colour alone: a word says it, and the title why
        assert f'<span class="small text-nowrap">{word}</span>' in cell
        assert "Muscat Clinic&#x27;s reminder time (10 hours)" in cell


def test_a_decided_request_is_never_overdue(as_approver, approver, paid_refund_request):
    request = paid_refund_request()
    request_approve(financial_request=request, actor=approver)
    FinancialRequest.objects.filter(pk=request.pk).update(
        requested_at=timezone.now() - datetime.timedelta(days=3))

    cell = _age_cell(rows_html(as_approver.get(QUEUE))[request.pk])

    assert "emphasis" not in cell and "overdue" not in cell
    assert "3\xa0days" in cell


# -- sort --------------------------------------------------------------------------------------

@pytest.fixture
def four_requests(paid_refund_request):
    """Requests of 21.000, 5.250 and 52.500 OMR, made in that order an hour apart, and an old
    one that froze no amount, made first."""
    made = {name: paid_refund_request(price) for name, price in
            [("unknown", "1.000"), ("middle", "20.000"), ("small", "5.000"),
             ("large", "50.000")]}
    FinancialRequest.objects.filter(pk=made["unknown"].pk).update(frozen_total=None,
                                                                  frozen_breakdown=None)
    start = timezone.now() - datetime.timedelta(days=1)
    for hour, request in enumerate(made.values()):
        FinancialRequest.objects.filter(pk=request.pk).update(
            requested_at=start + datetime.timedelta(hours=hour))
    return {name: request.pk for name, request in made.items()}


@pytest.mark.parametrize(("sort", "expected"), [
    ("", ["large", "small", "middle", "unknown"]),
    ("newest", ["large", "small", "middle", "unknown"]),
    ("oldest", ["unknown", "middle", "small", "large"]),
    ("largest", ["large", "middle", "small", "unknown"]),
    ("smallest", ["small", "middle", "large", "unknown"]),
])
def test_the_queue_sorts_by_age_or_amount_unknown_amounts_last(as_approver, four_requests,
                                                               sort, expected):
    response = as_approver.get(QUEUE, {"sort": sort} if sort else {})

    assert listed(response) == [four_requests[name] for name in expected]


def test_the_order_is_kept_by_the_status_pills_and_the_pages(as_approver, four_requests):
    response = as_approver.get(QUEUE, {"sort": "smallest"})
    page = response.content.decode()

    assert 'href="?sort=smallest&amp;status=requested"' in page
    assert '<option value="smallest" selected>Smallest amount first</option>' in page


def test_an_unknown_order_is_refused_plainly_and_the_newest_come_first(as_approver,
                                                                       four_requests):
    response = as_approver.get(QUEUE, {"sort": "price; drop table"})

    assert response.status_code == 200
    assert "Select a valid choice." in response.content.decode()
    assert listed(response)[0] == four_requests["large"]


# -- kind and clinic filters -------------------------------------------------------------------

def test_the_queue_filters_by_kind(as_approver, approval_clinic, make_invoice, pay, clerk):
    paid = make_invoice()
    pay(paid, "28.700")
    refund = refund_request_create(invoice=paid, remarks="Charged twice", actor=clerk)
    cancellation = cancellation_request_create(invoice=make_invoice(), remarks="Wrong patient",
                                               actor=clerk)

    assert listed(as_approver.get(QUEUE, {"kind": "refund"})) == [refund.pk]
    response = as_approver.get(QUEUE, {"kind": "cancellation"})
    assert listed(response) == [cancellation.pk]
    # the counts follow the kind too
    assert response.context["counts"]["requested"] == 1
    assert sorted(listed(as_approver.get(QUEUE, {"kind": ""}))) == sorted(
        [refund.pk, cancellation.pk])


@pytest.fixture
def group_approver(clinic, other_clinic, roles):
    """A financial approver of both clinics."""
    return approver_factory(username="group_approver", clinics=[clinic, other_clinic])


def test_staff_of_several_clinics_filter_by_clinic(client, group_approver, paid_refund_request,
                                                   austin_request):
    muscat = paid_refund_request()
    client.force_login(group_approver)

    everything = client.get(QUEUE)
    assert sorted(listed(everything)) == sorted([muscat.pk, austin_request.pk])
    assert '<select name="clinic" class="form-select" id="id_clinic">' in (
        everything.content.decode())

    response = client.get(QUEUE, {"clinic": austin_request.clinic_id})
    assert listed(response) == [austin_request.pk]
    assert response.context["counts"]["requested"] == 1
    assert listed(client.get(QUEUE, {"clinic": muscat.clinic_id})) == [muscat.pk]


def test_a_clinic_not_mine_is_refused_and_only_my_clinics_are_listed(
        client, approver, paid_refund_request, austin_request):
    # given a third clinic the approver does not belong to either
    ClinicFactory(code="SALALAH")
    muscat = paid_refund_request()
    client.force_login(approver)

    response = client.get(QUEUE, {"clinic": austin_request.clinic_id, "kind": "refund"})

    assert response.status_code == 200
    assert NOT_YOUR_CLINIC in response.content.decode()
    assert listed(response) == [muscat.pk]  # the other filters still hold
    assert "John Doe" not in response.content.decode()
    assert listed(client.get(QUEUE, {"clinic": "not-a-number"})) == [muscat.pk]


def test_staff_of_one_clinic_are_not_offered_a_clinic_choice(as_approver, paid_refund_request):
    paid_refund_request()
    assert 'name="clinic"' not in as_approver.get(QUEUE).content.decode()


# -- bulk decisions ----------------------------------------------------------------------------

@pytest.fixture
def mixed(approval_clinic, make_invoice, pay, clerk, approver, second_approver,
          austin_request):
    """Cancellations need one approver, refunds two. Waiting: two cancellations, a refund
    needing two approvals, a cancellation the approver submitted; one cancellation already
    approved by the second approver; and the Austin clinic's request."""
    approval_rules_set(clinic=approval_clinic, kind=RequestKind.REFUND,
                       rules=[RuleSpec(Approvers.TWO)])

    def cancellation(remarks):
        return cancellation_request_create(invoice=make_invoice(), remarks=remarks, actor=clerk)

    first, second = cancellation("No visit"), cancellation("Wrong patient")
    paid = make_invoice()
    pay(paid, "28.700")
    two = refund_request_create(invoice=paid, remarks="Charged twice", actor=clerk)
    own = cancellation("Own")
    FinancialRequest.objects.filter(pk=own.pk).update(requested_by=approver)
    decided = cancellation("Decided")
    request_approve(financial_request=decided, actor=second_approver)
    return {"first": first.pk, "second": second.pk, "two": two.pk, "own": own.pk,
            "decided": decided.pk, "austin": austin_request.pk}


def test_bulk_approval_decides_each_request_and_says_what_became_of_each(as_approver, mixed,
                                                                         approver):
    ids = [mixed[name] for name in ("first", "second", "two", "own", "decided", "austin")]
    filters = "status=requested&sort=oldest"

    response = as_approver.post(BULK, {"request": ids, "decision": "approve",
                                       "remarks": "Checked", "back": filters})

    # back to the queue as it was
    assert response.status_code == 302
    assert response["Location"] == f"{QUEUE}?{filters}"
    # each decided on its own
    now = statuses()
    assert (now[mixed["first"]], now[mixed["second"]]) == (RequestStatus.APPROVED,) * 2
    assert now[mixed["two"]] == RequestStatus.REQUESTED  # 1 of 2
    assert now[mixed["own"]] == RequestStatus.REQUESTED
    assert now[mixed["austin"]] == RequestStatus.REQUESTED
    two = FinancialRequest.objects.get(pk=mixed["two"])
    assert [(a.approved_by, a.remarks) for a in two.approvals.all()] == [(approver, "Checked")]
    assert AuditEvent.objects.filter(
        action=Action.REQUEST_APPROVED, actor=approver,
        object_id__in=[str(mixed[n]) for n in ("first", "second", "two")]).count() == 3
    # one message: what was decided, and each that could not be, with its number and why
    assert messages_of(response) == [(messages.WARNING, (
        f"2 approved, 1 approved (1 of 2 approvals: #{mixed['two']}; it waits for a second, "
        f"different approver), 3 could not be: #{mixed['own']} — {OWN_REQUEST} "
        f"#{mixed['decided']} — "
        f"{ALREADY_DECIDED.format(who='approver2', status='approved')} "
        f"#{mixed['austin']} — {NOT_FOUND.format(pk=mixed['austin'])}"))]


def test_a_bulk_approval_that_all_went_through_says_so(as_approver, mixed):
    response = as_approver.post(BULK, {"request": [mixed["first"], mixed["second"]],
                                       "decision": "approve", "remarks": ""})

    assert messages_of(response) == [(messages.SUCCESS, "2 approved.")]
    assert response["Location"] == QUEUE


def test_bulk_rejection_gives_each_request_the_one_remark(as_approver, mixed, approver):
    response = as_approver.post(BULK, {"request": [mixed["first"], mixed["two"]],
                                       "decision": "reject", "remarks": "Not covered"})

    assert messages_of(response) == [(messages.SUCCESS, "2 rejected.")]
    for name in ("first", "two"):
        request = FinancialRequest.objects.get(pk=mixed[name])
        assert (request.status, request.decided_by, request.decision_remarks) == (
            RequestStatus.REJECTED, approver, "Not covered")


@pytest.mark.parametrize("remarks", ["", "   \n "])
def test_bulk_rejection_without_a_remark_is_refused_and_changes_nothing(as_approver, mixed,
                                                                        remarks):
    before = ledger_state(), statuses()

    response = as_approver.post(BULK, {"request": [mixed["first"], mixed["second"]],
                                       "decision": "reject", "remarks": remarks,
                                       "back": "kind=cancellation"})

    assert response["Location"] == f"{QUEUE}?kind=cancellation"
    assert messages_of(response) == [(messages.ERROR, BULK_REJECT_REMARKS)]
    assert (ledger_state(), statuses()) == before


@pytest.mark.parametrize(("data", "message"), [
    ({"decision": "approve"}, NOTHING_SELECTED),
    ({"decision": "reject", "remarks": "No"}, NOTHING_SELECTED),
    ({"decision": "approve", "request": ["12abc"]}, NOT_A_REQUEST),
    ({"decision": "approve", "request": ["-3"]}, NOT_A_REQUEST),
    ({"decision": "approve", "request": ["99999999999999"]}, NOT_A_REQUEST),
    ({"decision": "approve", "request": ["１２"]}, NOT_A_REQUEST),
    ({"decision": "maybe", "request": ["1"]}, "Choose Approve selected or Reject selected."),
])
def test_a_bulk_decision_without_a_valid_selection_is_refused_plainly(as_approver, mixed,
                                                                      data, message):
    before = ledger_state(), statuses()

    response = as_approver.post(BULK, data)

    assert response.status_code == 302
    assert messages_of(response) == [(messages.ERROR, message)]
    assert (ledger_state(), statuses()) == before


def test_staff_who_may_not_decide_get_no_tick_boxes_and_no_bulk_decision(client, clerk, mixed):
    client.force_login(clerk)
    page = client.get(QUEUE).content.decode()
    assert 'name="request"' not in page
    assert "Approve selected" not in page
    before = ledger_state(), statuses()

    response = client.post(BULK, {"request": [mixed["first"]], "decision": "approve"})

    refusal = NO_PERMISSION.format(action="approve or reject financial requests")
    assert messages_of(response) == [
        (messages.ERROR, f"None approved, 1 could not be: #{mixed['first']} — {refusal}")]
    assert (ledger_state(), statuses()) == before


def test_only_the_rows_i_may_decide_carry_a_tick_box(as_approver, mixed):
    response = as_approver.get(QUEUE)
    rows = rows_html(response)

    boxed = {pk for pk, row in rows.items() if 'name="request"' in row}
    assert boxed == {mixed["first"], mixed["second"], mixed["two"]}
    page = response.content.decode()
    assert f'action="{BULK}"' in page
    assert 'id="select-all-requests"' in page
    assert '<script src="/static/js/approvals.js"></script>' in page


def test_a_request_i_approved_once_has_no_tick_box_until_someone_else_approves(
        as_approver, approver, mixed):
    request_approve(financial_request=FinancialRequest.objects.get(pk=mixed["two"]),
                    actor=approver)
    assert 'name="request"' not in rows_html(as_approver.get(QUEUE))[mixed["two"]]


def test_bulk_decisions_need_a_post(as_approver):
    assert as_approver.get(BULK).status_code == 405


# -- the CSV export ----------------------------------------------------------------------------

def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


HEADER = ["Request", "Kind", "Status", "Clinic", "Invoice", "Patient", "Requested by",
          "Requested at (UTC)", "Age (hours)", "Amount", "Currency", "Approvals given",
          "Approvals needed", "Decided by", "Decided at (UTC)", "Stale", "Remarks"]


def test_the_csv_lists_what_the_filters_show_with_every_column(
        client, approval_clinic, make_invoice, pay, clerk, approver, second_approver,
        austin_request):
    # given a refund request needing two approvals, approved once, and a rejected cancellation
    approval_rules_set(clinic=approval_clinic, kind=RequestKind.REFUND,
                       rules=[RuleSpec(Approvers.TWO)])
    clerk.first_name, clerk.last_name = "Maryam", "Al-Hinai"
    clerk.save()
    paid = make_invoice()
    pay(paid, "28.700")
    refund = refund_request_create(invoice=paid, remarks="Charged twice", actor=clerk)
    request_approve(financial_request=refund, actor=approver)
    requested_at = datetime.datetime(2025, 3, 1, 8, 30, 15, 500, tzinfo=datetime.UTC)
    FinancialRequest.objects.filter(pk=refund.pk).update(requested_at=requested_at, stale=True)
    cancellation = cancellation_request_create(invoice=make_invoice([("1", "3.000")]),
                                               remarks="Wrong patient", actor=clerk)
    request_reject(financial_request=cancellation, actor=second_approver, remarks="No")
    client.force_login(approver)
    hours = {int((timezone.now() - requested_at).total_seconds() // 3600)}

    response = client.get(CSV_URL, {"sort": "oldest"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="financial-approval-\d{8}-\d{4}\.csv"',
                        response["Content-Disposition"])
    header, *rows = read_csv(response)
    hours.add(int((timezone.now() - requested_at).total_seconds() // 3600))
    assert header == HEADER
    assert int(rows[0][8]) in hours  # age in whole hours, at the time of the export
    assert rows[0][:8] + rows[0][9:] == [
        str(refund.pk), "Invoice Refund Request", "Requested", "MUSCAT", paid.number,
        "Aisha Al-Balushi", "Maryam Al-Hinai", "2025-03-01T08:30:15+00:00",
        "28.700", "OMR", "1", "2", "", "", "yes", "Charged twice"]
    decided = FinancialRequest.objects.get(pk=cancellation.pk)
    assert rows[1][:3] == [str(cancellation.pk), "Invoice Cancellation Request", "Rejected"]
    assert rows[1][9:] == [
        "3.150", "OMR", "0", "1", "Aisha Al-Said",
        decided.decided_at.astimezone(datetime.UTC).isoformat(timespec="seconds"), "no",
        "Wrong patient"]
    assert len(rows) == 2  # nothing of the Austin clinic

    # the filters and order are the queue's
    assert [row[0] for row in read_csv(client.get(CSV_URL, {"status": "rejected"}))[1:]] == [
        str(cancellation.pk)]
    assert [row[0] for row in read_csv(client.get(CSV_URL, {"kind": "refund"}))[1:]] == [
        str(refund.pk)]
    assert [row[0] for row in read_csv(client.get(CSV_URL))[1:]] == [
        str(cancellation.pk), str(refund.pk)]


def test_the_csv_amounts_keep_the_currency_places(client, outsider, austin_request):
    client.force_login(outsider)
    row = read_csv(client.get(CSV_URL))[1]
    assert (row[9], row[10]) == ("126.00", "USD")  # 120.00 and 5% tax


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\tTab", "\rReturn"])
def test_the_csv_keeps_formulas_inert(client, approver, paid_refund_request, text):
    request = paid_refund_request(remarks=f"{text} on the bill")
    request.invoice.account.__class__.objects.filter(pk=request.invoice.account_id).update(
        name=text)
    client.force_login(approver)

    row = read_csv(client.get(CSV_URL))[1]

    assert row[5] == f"'{text}"
    if not text[0].isspace():  # remarks are kept without leading spaces
        assert row[16] == f"'{text} on the bill"
    assert row[0] == str(request.pk)  # ordinary cells are left alone


def test_the_csv_holds_only_my_clinics_requests(client, approver, outsider, paid_refund_request,
                                                austin_request):
    mine = paid_refund_request()
    client.force_login(outsider)
    assert [row[0] for row in read_csv(client.get(CSV_URL))[1:]] == [str(austin_request.pk)]
    # a clinic that is not mine is refused: my own clinics only
    client.force_login(approver)
    assert [row[0] for row in read_csv(client.get(CSV_URL, {
        "clinic": austin_request.clinic_id}))[1:]] == [str(mine.pk)]


def test_the_csv_needs_a_login(client, paid_refund_request):
    paid_refund_request()
    response = client.get(CSV_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_csv_stops_at_its_maximum_and_says_so(client, approver, paid_refund_request,
                                                  monkeypatch):
    monkeypatch.setattr(views, "CSV_MAX_ROWS", 2)
    made = [paid_refund_request() for _ in range(3)]
    client.force_login(approver)

    _, *rows = read_csv(client.get(CSV_URL))

    assert [row[0] for row in rows[:2]] == [str(made[2].pk), str(made[1].pk)]
    assert rows[2] == [views.CSV_CAPPED.format(limit=2)]
    assert rows[2][0].startswith("More than 2 requests match these filters")


def test_the_queue_links_to_the_csv_of_its_filters(as_approver, paid_refund_request):
    paid_refund_request()
    page = as_approver.get(QUEUE, {"kind": "refund", "page": "1"}).content.decode()
    assert f'href="{CSV_URL}?kind=refund"' in page
    assert ">Export CSV</a>" in page


# -- queries -----------------------------------------------------------------------------------

@pytest.fixture
def twenty_five(approval_clinic, make_invoice, pay, clerk, approver):
    """25 waiting requests: cancellations, and refunds needing two approvals, some approved
    once, one stale, one that froze no breakdown."""
    approval_rules_set(clinic=approval_clinic, kind=RequestKind.REFUND,
                       rules=[RuleSpec(Approvers.TWO)])
    made = []
    for n in range(25):
        invoice = make_invoice([("1", f"{n + 1}.000")])
        if n % 2:
            made.append(cancellation_request_create(invoice=invoice, remarks=f"No visit {n}",
                                                    actor=clerk))
            continue
        pay(invoice, str((D(n + 1) * D("1.05")).quantize(D("0.001"))))
        request = refund_request_create(invoice=invoice, remarks=f"Twice {n}", actor=clerk)
        if n % 4 == 0:
            request_approve(financial_request=request, actor=approver)
        made.append(request)
    FinancialRequest.objects.filter(pk=made[0].pk).update(stale=True)
    FinancialRequest.objects.filter(pk=made[1].pk).update(frozen_total=None,
                                                          frozen_breakdown=None)
    return made


def test_the_queue_page_of_25_rows_runs_a_bounded_number_of_queries(
        client, twenty_five, django_assert_max_num_queries):
    second = approver_factory(username="approver2", clinics=[twenty_five[0].clinic])
    client.force_login(second)
    with django_assert_max_num_queries(10):
        response = client.get(QUEUE, {"sort": "largest"})
    assert len(listed(response)) == 25
    # every row decidable by this approver, with approvals prefetched
    assert len(response.context["decidable"]) == 25
    assert "1 of 2 approvals" in response.content.decode()


def _statements(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
    return len(captured.captured_queries)


@pytest.mark.parametrize("url", [QUEUE, f"{QUEUE}?sort=largest&kind=refund", CSV_URL,
                                 f"{CSV_URL}?sort=smallest"])
def test_the_queue_and_its_csv_cost_the_same_with_3_requests_or_25(client, approval_clinic,
                                                                   twenty_five, url):
    client.force_login(approver_factory(username="approver2", clinics=[approval_clinic]))
    many = _statements(client, url)
    FinancialRequest.objects.filter(pk__in=[r.pk for r in twenty_five[3:]]).delete()
    assert _statements(client, url) == many


# -- labels ------------------------------------------------------------------------------------

class _Controls(HTMLParser):
    """The form controls of a page and the labels' `for`."""

    def __init__(self):
        super().__init__()
        self.controls, self.label_for, self._in_label = [], set(), 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self._in_label += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") not in (
                "hidden", "submit"):
            self.controls.append((attrs.get("name"), attrs.get("id")))

    def handle_endtag(self, tag):
        if tag == "label":
            self._in_label -= 1


def test_every_control_of_the_queue_has_a_label_tied_to_it(client, group_approver, mixed):
    client.force_login(group_approver)
    parser = _Controls()
    parser.feed(client.get(QUEUE).content.decode())

    names = {name for name, _ in parser.controls}
    assert {"q", "kind", "clinic", "date_from", "date_to", "sort", "request",
            "remarks"} <= names
    untied = [(name, pk) for name, pk in parser.controls if not pk or pk not in parser.label_for]
    assert untied == []
    ids = [pk for _, pk in parser.controls]
    assert len(ids) == len(set(ids))
