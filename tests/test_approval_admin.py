"""Admin: requests are read there with their history (they are submitted and decided on the
Financial Approval screen); an administrator sets each clinic's approval rules."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from approvals.models import ApprovalRule, Approvers, FinancialRequest, RequestKind, RequestStatus
from approvals.rules import approvers_needed, clinic_policy
from approvals.services import refund_request_create, request_approve, request_reject
from audit.models import Action
from billing.models import Clinic, Policy

from .factories import UserFactory

D = Decimal


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


def clinic_form(clinic, members, rules):
    """The clinic's admin change form as posted: its fields and its approval rules inline
    (`rules`: dicts of the rule fields; an `id` for an existing rule)."""
    data = {
        "code": clinic.code, "name": clinic.name, "currency": clinic.currency,
        "timezone": clinic.timezone, "address": "", "tax_registration_number": "",
        "approval_expiry_days": 14, "approval_reminder_hours": 24,
        "members": [m.pk for m in members],
        "approval_rules-TOTAL_FORMS": len(rules),
        "approval_rules-INITIAL_FORMS": sum(1 for rule in rules if rule.get("id")),
        "approval_rules-MIN_NUM_FORMS": 0, "approval_rules-MAX_NUM_FORMS": 1000,
    }
    for n, rule in enumerate(rules):
        for name, value in rule.items():
            data[f"approval_rules-{n}-{name}"] = "" if value is None else value
        data[f"approval_rules-{n}-clinic"] = clinic.pk
    return data


def existing_rules(clinic):
    return [{"id": r.pk, "kind": r.kind, "position": r.position, "amount_from": r.amount_from,
             "amount_up_to": r.amount_up_to, "approvers": r.approvers}
            for r in ApprovalRule.objects.filter(clinic=clinic).order_by("kind", "position")]


def test_an_administrator_sets_a_clinics_approval_rules(client, admin_user, clinic, clerk):
    # given a clinic whose refunds and cancellations are direct (one catch-all rule each)
    assert clinic_policy(clinic, RequestKind.REFUND) == Policy.DIRECT
    client.force_login(admin_user)
    url = reverse("admin:billing_clinic_change", args=[clinic.pk])
    assert "Approval rules" in client.get(url).content.decode()
    rules = existing_rules(clinic)
    refund_rule = next(rule for rule in rules if rule["kind"] == RequestKind.REFUND)

    # when the administrator keeps refunds under 5.000 direct and asks one approver above
    refund_rule.update(amount_up_to="4.999")
    rules.append({"kind": RequestKind.REFUND, "position": 2, "amount_from": "5.000",
                  "amount_up_to": None, "approvers": Approvers.ONE})
    response = client.post(url, clinic_form(clinic, [admin_user, clerk], rules))

    # then the rules are the clinic's, in order; its cancellations stay direct
    assert response.status_code == 302, response.context["inline_admin_formsets"]
    clinic = Clinic.objects.get(pk=clinic.pk)
    assert clinic_policy(clinic, RequestKind.REFUND) == Policy.APPROVAL
    assert clinic_policy(clinic, RequestKind.CANCELLATION) == Policy.DIRECT
    assert approvers_needed(clinic, RequestKind.REFUND, amount=D("4.999")) == 0
    assert approvers_needed(clinic, RequestKind.REFUND, amount=D("5.000")) == 1
    assert set(clinic.members.all()) == {admin_user, clerk}
    assert LogEntry.objects.filter(object_id=str(clinic.pk), action_flag=CHANGE).exists()


@pytest.mark.parametrize(("change", "error"), [
    ({"amount_from": "5.0001"}, "Ensure that there are no more than 3 decimal places."),
    ({"amount_from": "10.000", "amount_up_to": "5.000"}, "“Up to” must not be below “from”."),
    ({"amount_from": "-1.000"}, "The lower limit cannot be negative."),
    ({"approvers": "sometimes"}, "Select a valid choice."),
])
def test_the_clinic_form_refuses_a_rule_that_makes_no_sense(client, admin_user, clinic, change,
                                                            error):
    client.force_login(admin_user)
    url = reverse("admin:billing_clinic_change", args=[clinic.pk])
    rules = existing_rules(clinic)
    rules[0].update(change)

    response = client.post(url, clinic_form(clinic, [admin_user], rules))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert [rule["approvers"] for rule in existing_rules(clinic)] == [
        Approvers.NONE, Approvers.NONE]
    assert ApprovalRule.objects.filter(clinic=clinic, amount_from__isnull=False).count() == 0
