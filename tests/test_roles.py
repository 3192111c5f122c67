"""The three roles exist after migrating, with the permissions that define them."""

import pytest
from django.contrib.auth.models import Group

from billing import roles

from .factories import UserFactory

pytestmark = pytest.mark.django_db


def permissions_of(group_name):
    group = Group.objects.get(name=group_name)
    return {f"{app}.{codename}" for app, codename in
            group.permissions.values_list("content_type__app_label", "codename")}


def test_the_three_groups_exist_after_migrations():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "Billing staff", "Financial approvers", "Billing administrators"}


def test_billing_staff_work_the_invoices():
    perms = permissions_of(roles.BILLING_STAFF)
    assert {"billing.view_invoice", "billing.add_invoice", "billing.issue_invoice",
            "billing.record_payment", "billing.refund_invoice", "billing.credit_invoice",
            "billing.cancel_invoice"} <= perms
    # but do not configure the clinics or read the audit trail
    assert "billing.change_clinic" not in perms
    assert "audit.view_auditevent" not in perms


def test_financial_approvers_see_but_do_not_take_payments():
    perms = permissions_of(roles.FINANCIAL_APPROVERS)
    assert {"billing.view_invoice", "billing.view_payment"} <= perms
    assert not perms & {"billing.record_payment", "billing.add_invoice", "billing.issue_invoice",
                        "billing.refund_invoice", "billing.cancel_invoice"}


def test_billing_administrators_configure_and_read_the_audit_trail():
    perms = permissions_of(roles.BILLING_ADMINISTRATORS)
    assert {"billing.change_clinic", "billing.add_taxrate", "billing.change_paymentmethod",
            "billing.change_numberseries", "audit.view_auditevent", "auth.change_user"} <= perms
    # they administer, they do not bill
    assert not perms & {"billing.record_payment", "billing.add_invoice"}
    # and nobody may change or delete audit events
    assert not perms & {"audit.change_auditevent", "audit.delete_auditevent"}


def test_every_permission_of_billing_roles_was_granted():
    # (later apps' migrations may grant their own permissions to the groups as well)
    for group_name, by_app in roles.ROLE_PERMISSIONS.items():
        expected = {f"{app}.{codename}" for app, codes in by_app.items() for codename in codes}
        assert expected <= permissions_of(group_name), group_name


@pytest.mark.parametrize(("group_name", "can_record"), [
    (roles.BILLING_STAFF, True),
    (roles.FINANCIAL_APPROVERS, False),
    (roles.BILLING_ADMINISTRATORS, False),
])
def test_a_user_gets_the_permissions_of_their_group(group_name, can_record):
    user = UserFactory(username=f"user-{group_name}", groups=[group_name])
    assert user.has_perm("billing.record_payment") is can_record
