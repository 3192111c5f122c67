from django.db import migrations

from billing.roles import grant_role_permissions

# What this migration adds to the roles.
APPROVAL_ROLE_PERMISSIONS = {
    "Billing staff": {
        "approvals": ["add_financialrequest", "view_financialrequest"],
        "refunds": ["view_creditnote", "view_refund"],
    },
    "Financial approvers": {
        "approvals": ["approve_financialrequest", "view_financialrequest"],
        "refunds": ["view_creditnote", "view_refund"],
    },
    "Billing administrators": {
        "approvals": ["view_financialrequest"],
        "refunds": ["view_creditnote", "view_refund"],
    },
}


def grant(apps, schema_editor):
    grant_role_permissions(apps, APPROVAL_ROLE_PERMISSIONS)


def revoke(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for group_name, by_app in APPROVAL_ROLE_PERMISSIONS.items():
        group = group_model.objects.filter(name=group_name).first()
        if group is None:
            continue
        for app_label, codenames in by_app.items():
            group.permissions.remove(*permission_model.objects.filter(
                content_type__app_label=app_label, codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0001_initial"),
        ("billing", "0002_roles"),
        ("refunds", "0002_creditnote_dispute"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
