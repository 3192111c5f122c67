"""Admin: credit notes and refunds are read-only; refund transitions are buttons that go
through the services."""

from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import Action, AuditEvent
from refunds.models import RefundStatus
from refunds.services import credit_note_create

from .factories import DisputeReasonFactory, UserFactory

D = Decimal


@pytest.fixture
def admin_user(clinic):
    return UserFactory(username="boss", is_staff=True, is_superuser=True, clinics=[clinic])


@pytest.fixture
def refunded(make_invoice, pay, clerk):
    invoice = make_invoice()
    pay(invoice, "28.700")
    return credit_note_create(full=True, invoice=invoice, dispute_reason=DisputeReasonFactory(),
                              actor=clerk)


def test_it_shows_credit_notes_and_refunds_read_only(client, admin_user, refunded):
    client.force_login(admin_user)
    refund = refunded.refunds.get()
    for url in [reverse("admin:refunds_creditnote_changelist"),
                reverse("admin:refunds_creditnote_change", args=[refunded.pk]),
                reverse("admin:refunds_refund_changelist"),
                reverse("admin:refunds_refund_change", args=[refund.pk]),
                reverse("admin:billing_invoice_change", args=[refunded.invoice_id]),
                reverse("admin:audit_auditevent_changelist") + "?q=refund"]:
        assert client.get(url).status_code == 200, url
    assert client.get(reverse("admin:refunds_creditnote_add")).status_code == 403


def test_it_marks_a_manual_refund_paid_out_through_the_service(client, admin_user, refunded):
    client.force_login(admin_user)
    refund = refunded.refunds.get()
    assert refund.status == RefundStatus.AWAITING_PAYOUT
    page = client.get(reverse("admin:refunds_refund_change", args=[refund.pk]))
    assert b"Mark paid out" in page.content

    response = client.post(reverse("admin:refunds_refund_change", args=[refund.pk]),
                           {"_fsm_transition_to": "mark_paid_out"})

    assert response.status_code == 302
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PAID_OUT
    assert refund.paid_out_by == admin_user
    assert AuditEvent.objects.filter(action=Action.REFUND_PAID_OUT, actor=admin_user).exists()


def test_it_shows_the_rule_when_the_service_refuses(client, admin_user, refunded, clinic):
    refund = refunded.refunds.get()
    clinic.members.remove(admin_user)
    client.force_login(admin_user)

    response = client.post(reverse("admin:refunds_refund_change", args=[refund.pk]),
                           {"_fsm_transition_to": "mark_paid_out"}, follow=True)

    assert "You are not a member of" in response.content.decode()
    refund.refresh_from_db()
    assert refund.status == RefundStatus.AWAITING_PAYOUT


def test_staff_mark_a_payout_made_from_the_invoice_page(client, clerk, refunded):
    refund = refunded.refunds.get()
    client.force_login(clerk)
    page = client.get(reverse("desk:invoice_detail", args=[refunded.invoice_id]))
    assert "Pay 28.700 OMR back in cash" in page.content.decode()

    response = client.post(reverse("refunds:refund_paid_out", args=[refund.pk]))

    assert response.status_code == 302
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PAID_OUT
    assert AuditEvent.objects.filter(action=Action.REFUND_PAID_OUT, actor=clerk).exists()


def test_an_outsider_cannot_reach_another_clinics_refund(client, outsider, refunded):
    refund = refunded.refunds.get()
    client.force_login(outsider)
    assert client.post(reverse("refunds:refund_paid_out", args=[refund.pk])).status_code == 404
    assert client.post(reverse("refunds:refund_retry", args=[refund.pk])).status_code == 404
    refund.refresh_from_db()
    assert refund.status == RefundStatus.AWAITING_PAYOUT


def test_retrying_a_refund_that_did_not_fail_shows_the_rule(client, clerk, refunded):
    refund = refunded.refunds.get()
    client.force_login(clerk)
    response = client.post(reverse("refunds:refund_retry", args=[refund.pk]), follow=True)
    assert "Only a failed gateway refund can be retried" in response.content.decode()
