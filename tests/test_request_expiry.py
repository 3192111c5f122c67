"""Approved requests expire, waiting requests remind and escalate (docs/rules.md §5.6): an
approved request not carried out within its clinic's approval_expiry_days becomes Expired and
frees its invoice; a request waiting longer than the clinic's approval_reminder_hours emails the
approvers once, and after twice as long the billing administrators once. The jobs take `now`,
so each test freezes the clock by passing it."""

import datetime
import importlib
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import dateformat, timezone

from approvals import housekeeping
from approvals import tasks as approval_tasks
from approvals.housekeeping import requests_expire, requests_remind
from approvals.models import OPEN_STATUSES, FinancialRequest, RequestKind, RequestStatus
from approvals.rules import (
    NEEDS_REFUND_REQUEST,
    REQUEST_NOT_APPROVED,
    REQUEST_PAST_EXPIRY,
    request_refusal,
)
from approvals.services import (
    cancellation_request_create,
    refund_request_create,
    request_approve,
    request_reject,
    request_withdraw,
)
from audit.models import Action, AuditEvent
from billing.breakdown import CreditLineInput
from billing.models import Policy
from billing.roles import BILLING_ADMINISTRATORS, BILLING_STAFF, FINANCIAL_APPROVERS
from desk.actions import invoice_actions
from refunds.services import credit_note_create

from .api_helpers import gql
from .factories import UserFactory, set_policy
from .test_approval_admin import clinic_form as admin_clinic_form
from .test_approval_admin import existing_rules

D = Decimal
HOUR = datetime.timedelta(hours=1)
SECOND = datetime.timedelta(seconds=1)


@pytest.fixture
def invoice(approval_clinic, make_invoice, pay):
    """An issued invoice (28.700 OMR), paid in cash, of a clinic where refunds need approval."""
    invoice = make_invoice()
    pay(invoice, "28.700")
    return invoice


@pytest.fixture
def approved(invoice, clerk, approver):
    """A refund request for the whole invoice, approved and not yet carried out."""
    request = refund_request_create(invoice=invoice, remarks="Charged twice", actor=clerk)
    return request_approve(financial_request=request, actor=approver, remarks="Agreed")


@pytest.fixture
def waiting(invoice, clerk):
    """A refund request waiting for a decision."""
    return refund_request_create(invoice=invoice, remarks="Charged twice", actor=clerk)


def events_of(request, action):
    return list(AuditEvent.objects.filter(
        content_type__model="financialrequest", object_id=str(request.pk), action=action,
    ).order_by("pk"))


def fresh(request):
    return FinancialRequest.objects.get(pk=request.pk)


def shown(moment) -> str:
    """A date and time as the screens show it."""
    return dateformat.format(timezone.localtime(moment), "j M Y H:i T")


# -- settings per clinic ---------------------------------------------------------------------------

def test_a_clinic_gives_approved_requests_14_days_and_reminds_after_24_hours(clinic):
    assert (clinic.approval_expiry_days, clinic.approval_reminder_hours) == (14, 24)


@pytest.mark.parametrize("field", ["approval_expiry_days", "approval_reminder_hours"])
def test_the_database_refuses_zero_days_or_hours(clinic, field):
    setattr(clinic, field, 0)
    with pytest.raises(IntegrityError), transaction.atomic():
        clinic.save(update_fields=[field])


def clinic_form(clinic, boss, **changes):
    """The clinic's admin change form as posted, its approval rules unchanged."""
    return {**admin_clinic_form(clinic, [boss], existing_rules(clinic)), **changes}


def test_an_administrator_sets_expiry_and_reminders_in_the_clinic_admin(client, clinic):
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True, clinics=[clinic])
    client.force_login(boss)
    url = reverse("admin:billing_clinic_change", args=[clinic.pk])
    page = client.get(url).content.decode()
    assert "Expiry and reminders" in page
    assert 'name="approval_expiry_days"' in page
    assert 'name="approval_reminder_hours"' in page
    assert "An approved request not carried out within this many days expires." in page

    response = client.post(url, clinic_form(clinic, boss, approval_expiry_days=7,
                                            approval_reminder_hours=4))

    assert response.status_code == 302
    clinic.refresh_from_db()
    assert (clinic.approval_expiry_days, clinic.approval_reminder_hours) == (7, 4)


def test_the_clinic_admin_refuses_zero_days(client, clinic):
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True, clinics=[clinic])
    client.force_login(boss)
    url = reverse("admin:billing_clinic_change", args=[clinic.pk])

    response = client.post(url, clinic_form(clinic, boss, approval_expiry_days=0))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["approval_expiry_days"] == [
        "Ensure this value is greater than or equal to 1."]
    clinic.refresh_from_db()
    assert clinic.approval_expiry_days == 14


# -- expiry ----------------------------------------------------------------------------------------

def test_approval_sets_the_expiry_from_the_clinics_days(approval_clinic, invoice, clerk,
                                                        approver):
    approval_clinic.approval_expiry_days = 3
    approval_clinic.save(update_fields=["approval_expiry_days"])
    request = refund_request_create(invoice=invoice, remarks="Charged twice", actor=clerk)
    assert request.expires_at is None

    request = request_approve(financial_request=request, actor=approver)

    assert fresh(request).expires_at == request.decided_at + datetime.timedelta(days=3)


def test_the_approval_email_tells_the_requester_when_it_expires(
        waiting, approver, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = request_approve(financial_request=waiting, actor=approver)

    [mail] = mailoutbox
    assert (f"It expires on {shown(request.expires_at)} if it is not carried out by then."
            in mail.body)


def test_a_rejected_request_gets_no_expiry(waiting, approver):
    request_reject(financial_request=waiting, actor=approver, remarks="No")
    assert fresh(waiting).expires_at is None


def test_an_approved_request_expires_at_its_expiry_not_a_second_before(approved):
    assert requests_expire(now=approved.expires_at - SECOND) == 0
    assert fresh(approved).status == RequestStatus.APPROVED

    assert requests_expire(now=approved.expires_at) == 1

    assert fresh(approved).status == RequestStatus.EXPIRED
    assert RequestStatus.EXPIRED not in OPEN_STATUSES


def test_expiry_is_an_audit_event_of_the_system(approved):
    requests_expire(now=approved.expires_at)

    [event] = events_of(approved, Action.REQUEST_EXPIRED)
    assert (event.actor, event.actor_username, event.from_state, event.to_state) == (
        None, "", "approved", "expired")
    assert (event.clinic_id, event.invoice_id) == (approved.clinic_id, approved.invoice_id)
    assert event.data["days"] == 14


def test_a_second_run_expires_nothing_more(approved):
    later = approved.expires_at + HOUR
    assert requests_expire(now=later) == 1
    assert requests_expire(now=later) == 0
    assert len(events_of(approved, Action.REQUEST_EXPIRED)) == 1


def test_requests_that_ended_otherwise_never_expire(invoice, approval_clinic, make_invoice, pay,
                                                    clerk, approver, reason):
    # given a completed, a rejected and a withdrawn request
    completed = request_approve(
        financial_request=refund_request_create(invoice=invoice, remarks="A", actor=clerk),
        actor=approver)
    credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)
    rejected = refund_request_create(invoice=make_invoice(), remarks="B", actor=clerk)
    request_reject(financial_request=rejected, actor=approver, remarks="No")
    withdrawn = cancellation_request_create(invoice=make_invoice(), remarks="C", actor=clerk)
    request_withdraw(financial_request=withdrawn, actor=clerk)

    # when the job runs a year later, then none of them expires
    assert requests_expire(now=timezone.now() + datetime.timedelta(days=365)) == 0
    assert [fresh(r).status for r in (completed, rejected, withdrawn)] == [
        RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN]


def test_a_request_carried_out_after_it_was_listed_is_left_alone(approved, invoice, clerk,
                                                                 reason, monkeypatch):
    # given the job listed the approved request, and staff carried it out before it was locked
    listed = FinancialRequest.objects.filter(pk=approved.pk)
    monkeypatch.setattr(housekeeping, "requests_due_to_expire", lambda now: listed)
    credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)

    # when the job reaches it, then it checks it again under the lock and leaves it alone
    assert requests_expire(now=approved.expires_at) == 0
    assert fresh(approved).status == RequestStatus.COMPLETED
    assert events_of(approved, Action.REQUEST_EXPIRED) == []


def test_expiry_frees_the_invoice_for_a_new_request(approved, invoice, clerk):
    requests_expire(now=approved.expires_at)

    assert request_refusal(invoice, RequestKind.REFUND, clerk) is None
    again = refund_request_create(invoice=invoice, remarks="Still charged twice", actor=clerk)
    assert again.status == RequestStatus.REQUESTED  # the unique index allows it


def test_the_more_action_menu_offers_a_new_request_once_the_old_one_expired(approved, invoice,
                                                                            clerk):
    def request_action():
        [action] = [a for a in invoice_actions(invoice=invoice, user=clerk)
                    if a.label == "Invoice Refund Request"]
        return action

    assert not request_action().enabled  # the approved request is still open
    requests_expire(now=approved.expires_at)
    assert request_action().enabled


def test_an_expired_request_cannot_be_carried_out(approved, invoice, clerk, reason, refused):
    requests_expire(now=approved.expires_at)
    approved.refresh_from_db()

    # found on the invoice: there is none open any more
    with refused(NEEDS_REFUND_REQUEST.format(clinic=invoice.clinic.name)):
        credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk)
    # named: it says what became of it
    message = REQUEST_NOT_APPROVED.format(request=approved, status="expired")
    assert message == (f"Invoice Refund Request #{approved.pk} is expired, not approved: it "
                       "cannot be carried out.")
    with refused(message):
        credit_note_create(invoice=invoice, full=True, dispute_reason=reason, actor=clerk,
                           approval_request=approved)


def test_existing_approved_requests_get_the_default_expiry(approved):
    # given a request approved before expiry existed
    FinancialRequest.objects.filter(pk=approved.pk).update(expires_at=None)
    migration = importlib.import_module(
        "approvals.migrations.0007_expiry_of_approved_requests")

    migration.set_expiry(django_apps, None)

    assert fresh(approved).expires_at == approved.decided_at + datetime.timedelta(days=14)


# -- reminders and escalation ----------------------------------------------------------------------

@pytest.fixture
def dual(clinic, roles):
    """A member who is both billing staff and financial approver, with an email address."""
    return UserFactory(username="dual", groups=[BILLING_STAFF, FINANCIAL_APPROVERS],
                       clinics=[clinic])


@pytest.fixture
def administrators(clinic, other_clinic, roles):
    """Billing administrators of the clinic (one without an email address), a superuser member,
    and an administrator and a superuser who are not members."""
    return {
        "admin": UserFactory(username="admin", groups=[BILLING_ADMINISTRATORS],
                             clinics=[clinic]),
        "no_email": UserFactory(username="admin2", email="", groups=[BILLING_ADMINISTRATORS],
                                clinics=[clinic]),
        "root": UserFactory(username="root", is_superuser=True, clinics=[clinic]),
        "elsewhere": UserFactory(username="admin3", groups=[BILLING_ADMINISTRATORS],
                                 clinics=[other_clinic]),
        "root_elsewhere": UserFactory(username="root2", is_superuser=True),
    }


def remind(now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return requests_remind(now=now)


def test_a_waiting_request_reminds_at_the_clinics_hours_not_before(
        waiting, approver, mailoutbox, django_capture_on_commit_callbacks):
    due = waiting.requested_at + 24 * HOUR

    assert remind(due - SECOND, django_capture_on_commit_callbacks) == (0, 0)
    assert mailoutbox == []

    assert remind(due, django_capture_on_commit_callbacks) == (1, 0)
    assert fresh(waiting).reminded_at == due
    assert fresh(waiting).escalated_at is None
    assert len(mailoutbox) == 1


def test_it_escalates_at_twice_the_hours_not_before(
        waiting, administrators, mailoutbox, django_capture_on_commit_callbacks):
    remind(waiting.requested_at + 24 * HOUR, django_capture_on_commit_callbacks)
    due = waiting.requested_at + 48 * HOUR

    assert remind(due - SECOND, django_capture_on_commit_callbacks) == (0, 0)
    assert remind(due, django_capture_on_commit_callbacks) == (0, 1)

    assert fresh(waiting).escalated_at == due
    assert len(mailoutbox) == 2


def test_each_is_sent_once_however_often_the_job_runs(
        waiting, administrators, mailoutbox, django_capture_on_commit_callbacks):
    late = waiting.requested_at + 72 * HOUR
    assert remind(late, django_capture_on_commit_callbacks) == (1, 1)  # both at once
    assert remind(late, django_capture_on_commit_callbacks) == (0, 0)
    assert remind(late + 24 * HOUR, django_capture_on_commit_callbacks) == (0, 0)

    assert len(mailoutbox) == 2
    assert len(events_of(waiting, Action.REQUEST_REMINDED)) == 1
    assert len(events_of(waiting, Action.REQUEST_ESCALATED)) == 1


def test_the_reminder_goes_to_the_clinics_approvers_but_not_the_requester(
        invoice, dual, approver, other_approver, mailoutbox, django_capture_on_commit_callbacks):
    # given a request submitted by someone who is an approver too
    request = refund_request_create(invoice=invoice, remarks="Charged twice for X-ray",
                                    actor=dual)
    mailoutbox.clear()

    remind(request.requested_at + 25 * HOUR, django_capture_on_commit_callbacks)

    [mail] = mailoutbox
    assert mail.to == ["approver@clinic.test"]
    assert mail.subject == (f"[MUSCAT] Reminder: Invoice Refund Request for {invoice.number} "
                            "has waited 1 day, 1 hour")
    assert "has waited 1 day, 1 hour for a decision, longer than the 24 hours" in mail.body
    assert "Charged twice for X-ray" in mail.body
    assert f"http://127.0.0.1:8000/approvals/{request.pk}/" in mail.body


def test_the_escalation_goes_to_the_clinics_billing_administrators(
        waiting, invoice, approver, administrators, mailoutbox,
        django_capture_on_commit_callbacks):
    remind(waiting.requested_at + 24 * HOUR, django_capture_on_commit_callbacks)
    mailoutbox.clear()

    remind(waiting.requested_at + 50 * HOUR, django_capture_on_commit_callbacks)

    [mail] = mailoutbox
    assert sorted(mail.to) == ["admin@clinic.test", "root@clinic.test"]
    assert mail.subject == (f"[MUSCAT] Escalated: Invoice Refund Request for {invoice.number} "
                            "has waited 2 days, 2 hours without a decision")
    assert "more than twice the 24 hours Muscat Clinic allows" in mail.body
    assert f"http://127.0.0.1:8000/approvals/{waiting.pk}/" in mail.body


def test_reminders_and_escalations_are_audit_events_of_the_system(
        waiting, django_capture_on_commit_callbacks):
    remind(waiting.requested_at + 49 * HOUR, django_capture_on_commit_callbacks)

    [reminded] = events_of(waiting, Action.REQUEST_REMINDED)
    [escalated] = events_of(waiting, Action.REQUEST_ESCALATED)
    for event in (reminded, escalated):
        # the request keeps waiting: its audit trail still replays requested → requested
        assert (event.actor, event.from_state, event.to_state) == (None, "requested",
                                                                   "requested")
        assert event.data == {"hours": 49, "reminder_hours": 24}
        assert event.invoice_id == waiting.invoice_id


def test_each_clinic_reminds_after_its_own_hours(
        waiting, approval_clinic, other_invoice, outsider, mailoutbox,
        django_capture_on_commit_callbacks):
    # given the clinic reminds after 2 hours, and another clinic after the default 24
    approval_clinic.approval_reminder_hours = 2
    approval_clinic.save(update_fields=["approval_reminder_hours"])
    set_policy(other_invoice.clinic, refund=Policy.APPROVAL)
    theirs = refund_request_create(invoice=other_invoice, remarks="Theirs", actor=outsider)

    # when both have waited 4 hours
    assert remind(waiting.requested_at + 4 * HOUR, django_capture_on_commit_callbacks) == (1, 1)

    # then only the clinic's request was reminded and escalated
    assert fresh(waiting).reminded_at is not None
    assert fresh(theirs).reminded_at is None


@pytest.mark.parametrize("end", ["approve", "reject", "withdraw"])
def test_a_decided_or_withdrawn_request_reminds_nobody(
        end, waiting, clerk, approver, mailoutbox, django_capture_on_commit_callbacks):
    if end == "approve":
        request_approve(financial_request=waiting, actor=approver)
    elif end == "reject":
        request_reject(financial_request=waiting, actor=approver, remarks="No")
    else:
        request_withdraw(financial_request=waiting, actor=clerk)
    mailoutbox.clear()

    assert remind(waiting.requested_at + 72 * HOUR, django_capture_on_commit_callbacks) == (0, 0)
    assert mailoutbox == []


def test_a_request_decided_after_it_was_listed_reminds_nobody(
        waiting, approver, mailoutbox, monkeypatch, django_capture_on_commit_callbacks):
    listed = FinancialRequest.objects.filter(pk=waiting.pk)
    monkeypatch.setattr(housekeeping, "requests_overdue_for_reminder", lambda now: listed)
    request_approve(financial_request=waiting, actor=approver)
    mailoutbox.clear()

    assert remind(waiting.requested_at + 72 * HOUR, django_capture_on_commit_callbacks) == (0, 0)
    assert mailoutbox == []


# -- the periodic jobs: tasks and commands ---------------------------------------------------------

def backdate(request, **moments):
    FinancialRequest.objects.filter(pk=request.pk).update(**moments)


def test_the_expiry_task_runs_the_job(approved):
    backdate(approved, expires_at=timezone.now() - HOUR)

    assert approval_tasks.requests_expire.delay().get() == 1

    [event] = events_of(approved, Action.REQUEST_EXPIRED)
    assert event.client == "task:approvals_expire"


def test_the_reminder_task_runs_the_job(waiting, django_capture_on_commit_callbacks):
    backdate(waiting, requested_at=timezone.now() - 30 * HOUR)

    with django_capture_on_commit_callbacks(execute=True):
        assert tuple(approval_tasks.requests_remind.delay().get()) == (1, 0)

    [event] = events_of(waiting, Action.REQUEST_REMINDED)
    assert event.client == "task:approvals_remind"


def test_beat_runs_both_jobs_every_five_minutes(settings):
    schedule = {entry["task"]: entry["schedule"]
                for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["approvals.requests_expire"] == 300.0
    assert schedule["approvals.requests_remind"] == 300.0
    assert approval_tasks.requests_expire.name == "approvals.requests_expire"
    assert approval_tasks.requests_remind.name == "approvals.requests_remind"


def command_output(name):
    out = StringIO()
    call_command(name, stdout=out)
    return out.getvalue().strip()


def test_the_expiry_command_says_how_many_expired(approved, invoice, make_invoice, pay, clerk,
                                                  approver):
    other = make_invoice()
    pay(other, "28.700")
    second = request_approve(
        financial_request=refund_request_create(invoice=other, remarks="B", actor=clerk),
        actor=approver)
    backdate(approved, expires_at=timezone.now() - HOUR)
    backdate(second, expires_at=timezone.now() - HOUR)

    assert command_output("approvals_expire") == "2 approved requests expired."
    assert command_output("approvals_expire") == "0 approved requests expired."
    [event] = events_of(approved, Action.REQUEST_EXPIRED)
    assert event.client == "command:approvals_expire"


def test_the_reminder_command_says_what_it_did(waiting, approver, mailoutbox,
                                              django_capture_on_commit_callbacks):
    backdate(waiting, requested_at=timezone.now() - 30 * HOUR)

    with django_capture_on_commit_callbacks(execute=True):
        assert command_output("approvals_remind") == (
            "Reminded approvers of 1 request; escalated 0 to billing administrators.")
        assert command_output("approvals_remind") == (
            "Reminded approvers of 0 requests; escalated 0 to billing administrators.")
    assert [mail.to for mail in mailoutbox] == [["approver@clinic.test"]]


# -- screens ---------------------------------------------------------------------------------------

def test_the_request_page_says_when_an_approved_request_expires(client, approved, approver):
    client.force_login(approver)
    page = client.get(reverse("approvals:request_detail", args=[approved.pk])).content.decode()
    assert f"it expires on {shown(approved.expires_at)} if it is not carried out by then" in page


def test_the_invoice_page_says_when_the_approved_request_expires(client, approved, invoice,
                                                                 clerk):
    client.force_login(clerk)
    page = client.get(reverse("desk:invoice_detail", args=[invoice.pk])).content.decode()
    assert (f"it can now be carried out from More Action, and expires on "
            f"{shown(approved.expires_at)}.") in page


def test_the_request_page_explains_an_expired_request(client, approved, approver, clerk):
    requests_expire(now=approved.expires_at)
    client.force_login(clerk)

    page = client.get(reverse("approvals:request_detail", args=[approved.pk])).content.decode()

    decided_on = dateformat.format(timezone.localtime(approved.decided_at), "j M Y")
    assert (f"Expired: approved on {decided_on} but not carried out within 14 days; submit a "
            "new request if it is still needed.") in page
    assert '<span class="badge text-bg-secondary">Expired</span>' in page
    # and its history tells it
    assert "Refund request expired: approved but not carried out within" in page


def test_the_queue_counts_and_shows_expired_requests(client, approved, approver):
    requests_expire(now=approved.expires_at)
    client.force_login(approver)

    response = client.get(reverse("approvals:queue"))
    assert response.context["counts"]["expired"] == 1
    page = response.content.decode()
    assert "?status=expired" in page
    assert '<span class="badge text-bg-secondary">Expired</span>' in page

    only_expired = client.get(reverse("approvals:queue"), {"status": "expired"})
    assert [item.pk for item in only_expired.context["page"].object_list] == [approved.pk]


def test_the_invoice_page_drops_the_banner_of_an_expired_request(client, approved, invoice,
                                                                 clerk):
    requests_expire(now=approved.expires_at)
    client.force_login(clerk)
    page = client.get(reverse("desk:invoice_detail", args=[invoice.pk])).content.decode()
    assert "it can now be carried out from More Action" not in page


# -- API -------------------------------------------------------------------------------------------

REQUEST_QUERY = ("query($s: FinancialRequestStatus) { financialRequests(status: $s) "
                 "{ id status expiresAt } }")


def test_the_api_shows_the_expiry_and_the_expired_status(client, read_token, approved):
    body = gql(client, read_token, REQUEST_QUERY, {"s": "APPROVED"})
    [item] = body["data"]["financialRequests"]
    assert item["status"] == "APPROVED"
    assert datetime.datetime.fromisoformat(item["expiresAt"]) == approved.expires_at

    requests_expire(now=approved.expires_at)

    body = gql(client, read_token, REQUEST_QUERY, {"s": "EXPIRED"})
    assert body["data"]["financialRequests"] == [
        {"id": str(approved.pk), "status": "EXPIRED", "expiresAt": item["expiresAt"]}]


def test_the_api_shows_no_expiry_for_a_waiting_request(client, read_token, waiting):
    body = gql(client, read_token, REQUEST_QUERY)
    assert body["data"]["financialRequests"] == [
        {"id": str(waiting.pk), "status": "REQUESTED", "expiresAt": None}]


def test_the_api_refuses_to_carry_out_an_expired_request(client, token, approved, invoice,
                                                        reason):
    requests_expire(now=approved.expires_at)
    body = gql(client, token, """mutation($i: ID!, $r: ID!) { invoiceRefund(invoiceId: $i,
        disputeReasonId: $r) { creditNote { id } errors } }""",
               {"i": str(invoice.pk), "r": str(reason.pk)})
    assert body["data"]["invoiceRefund"] == {
        "creditNote": None,
        "errors": [NEEDS_REFUND_REQUEST.format(clinic=invoice.clinic.name)]}


def test_a_partial_refund_within_the_approved_lines_is_still_possible_before_expiry(
        approved, invoice, clerk, reason):
    """Expiry changes nothing before its time: the approved request is carried out as usual."""
    line_a = invoice.lines.order_by("position").first()
    credit_note_create(invoice=invoice, lines=[CreditLineInput(line_a, D("5.000"))],
                       dispute_reason=reason, actor=clerk)
    assert requests_expire(now=approved.expires_at) == 0
    assert fresh(approved).status == RequestStatus.COMPLETED


def test_a_request_past_its_expiry_is_refused_before_the_job_marks_it(
        approved, clinic, clerk, reason, refused):
    # given an approved request whose expiry has passed, the job not yet run
    FinancialRequest.objects.filter(pk=approved.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1))
    approved = fresh(approved)
    assert approved.status == RequestStatus.APPROVED
    when = timezone.localtime(approved.expires_at).strftime("%d %b %Y %H:%M %Z")

    with refused(REQUEST_PAST_EXPIRY.format(request=approved, when=when)):
        credit_note_create(invoice=approved.invoice, full=True, dispute_reason=reason,
                           actor=clerk)
