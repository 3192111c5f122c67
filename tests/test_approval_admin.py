"""Admin: requests are read there with their history (they are submitted and decided on the
Financial Approval screen); an administrator sets each clinic's approval policy."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from approvals.models import FinancialRequest, RequestStatus
from approvals.services import refund_request_create, request_approve, request_reject
from audit.models import Action
from billing.models import Clinic, Policy

from .factories import UserFactory


@pytest.fixture
def admin_user(clinic):
    return UserFactory(username="boss", is_staff=True, is_superuser=True, clinics=[clinic])


@pytest.fixture
def decided(approval_clinic, make_invoice, clerk, approver):
    """A refund request submitted by the clerk and approved by the approver."""
    request = refund_request_create(invoice=make_invoice(), remarks="Patient was overcharged",
                                    actor=clerk)
    return request_approve(financial_request=request, actor=approver, remarks="Agreed")


def test_an_administrator_reads_requests_and_their_history(client, admin_user, decided):
    client.force_login(admin_user)

    changelist = client.get(reverse("admin:approvals_financialrequest_changelist"))
    change = client.get(reverse("admin:approvals_financialrequest_change", args=[decided.pk]))

    assert changelist.status_code == 200
    assert decided.invoice.number in changelist.content.decode()
    assert change.status_code == 200
    page = change.content.decode()
    assert "request.submitted by clerk: “Patient was overcharged”" in page
    assert "request.approved by approver: “Agreed”" in page
    assert page.index(Action.REQUEST_SUBMITTED) < page.index(Action.REQUEST_APPROVED)


def test_the_request_changelist_filters_by_status(client, admin_user, decided, make_invoice,
                                                  clerk, approver):
    rejected = refund_request_create(invoice=make_invoice(), remarks="Charged twice", actor=clerk)
    request_reject(financial_request=rejected, actor=approver, remarks="It was not")
    client.force_login(admin_user)

    response = client.get(reverse("admin:approvals_financialrequest_changelist"),
                          {"status__exact": RequestStatus.REJECTED})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [rejected]


def test_requests_cannot_be_added_changed_or_deleted_in_the_admin(client, admin_user, decided):
    client.force_login(admin_user)

    assert client.get(reverse("admin:approvals_financialrequest_add")).status_code == 403
    response = client.post(
        reverse("admin:approvals_financialrequest_change", args=[decided.pk]),
        {"status": RequestStatus.REJECTED, "remarks": "Changed", "decision_remarks": "Changed"})
    assert response.status_code == 403
    delete = reverse("admin:approvals_financialrequest_delete", args=[decided.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    decided.refresh_from_db()
    assert (decided.status, decided.remarks) == (RequestStatus.APPROVED, "Patient was overcharged")
    assert FinancialRequest.objects.count() == 1


def test_an_administrator_switches_a_clinic_to_approval(client, admin_user, clinic, clerk):
    # given a clinic whose refunds and cancellations are direct
    assert (clinic.refund_policy, clinic.cancellation_policy) == (Policy.DIRECT, Policy.DIRECT)
    client.force_login(admin_user)
    url = reverse("admin:billing_clinic_change", args=[clinic.pk])
    assert "Approval policy" in client.get(url).content.decode()

    # when the administrator sets refunds to "approval" on the change form
    response = client.post(url, {
        "code": clinic.code, "name": clinic.name, "currency": clinic.currency,
        "timezone": clinic.timezone, "address": "", "tax_registration_number": "",
        "refund_policy": Policy.APPROVAL, "cancellation_policy": Policy.DIRECT,
        "approval_expiry_days": 14, "approval_reminder_hours": 24,
        "members": [admin_user.pk, clerk.pk],
    })

    # then the clinic's refunds need approval, its cancellations stay direct
    assert response.status_code == 302, response.context["adminform"].form.errors
    clinic.refresh_from_db()
    assert (clinic.refund_policy, clinic.cancellation_policy) == (Policy.APPROVAL, Policy.DIRECT)
    assert set(clinic.members.all()) == {admin_user, clerk}
    assert LogEntry.objects.filter(object_id=str(clinic.pk), action_flag=CHANGE).exists()


def test_the_clinic_form_refuses_an_unknown_policy(client, admin_user, clinic):
    client.force_login(admin_user)
    url = reverse("admin:billing_clinic_change", args=[clinic.pk])

    response = client.post(url, {
        "code": clinic.code, "name": clinic.name, "currency": clinic.currency,
        "timezone": clinic.timezone, "refund_policy": "sometimes",
        "cancellation_policy": Policy.DIRECT, "members": [admin_user.pk],
    })

    assert response.status_code == 200
    assert "refund_policy" in response.context["adminform"].form.errors
    assert Clinic.objects.get(pk=clinic.pk).refund_policy == Policy.DIRECT
