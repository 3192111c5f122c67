"""The three roles of the billing office, as Django groups with their permissions."""

BILLING_STAFF = "Billing staff"
FINANCIAL_APPROVERS = "Financial approvers"
BILLING_ADMINISTRATORS = "Billing administrators"

_CONFIGURATION = ["clinic", "account", "taxrate", "service", "paymentmethod", "disputereason",
                  "numberseries"]

# group -> {app_label: [codename, ...]}
ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    BILLING_STAFF: {
        "billing": [
            "view_invoice", "add_invoice", "issue_invoice", "record_payment", "refund_invoice",
            "credit_invoice", "cancel_invoice", "view_account", "add_account", "change_account",
            "view_payment", "view_service", "view_taxrate", "view_paymentmethod",
            "view_disputereason",
        ],
    },
    FINANCIAL_APPROVERS: {
        "billing": ["view_invoice", "view_account", "view_payment", "view_disputereason"],
    },
    BILLING_ADMINISTRATORS: {
        "billing": [f"{verb}_{model}" for model in _CONFIGURATION
                    for verb in ("view", "add", "change")]
        + ["view_invoice", "change_invoice", "view_payment"],
        "audit": ["view_auditevent"],
        "auth": ["view_user", "add_user", "change_user", "view_group", "change_group"],
    },
}

# Added with Financial Approval (approvals migration 0002).
APPROVAL_ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    BILLING_STAFF: {
        "approvals": ["add_financialrequest", "view_financialrequest"],
        "refunds": ["view_creditnote", "view_refund"],
    },
    FINANCIAL_APPROVERS: {
        "approvals": ["approve_financialrequest", "view_financialrequest"],
        "refunds": ["view_creditnote", "view_refund"],
    },
    BILLING_ADMINISTRATORS: {
        "approvals": ["view_financialrequest"],
        "refunds": ["view_creditnote", "view_refund"],
    },
}


def all_role_permissions() -> dict[str, dict[str, list[str]]]:
    """Every role's permissions as the migrations leave them."""
    merged: dict[str, dict[str, list[str]]] = {}
    for roles in (ROLE_PERMISSIONS, APPROVAL_ROLE_PERMISSIONS):
        for group, by_app in roles.items():
            for app_label, codenames in by_app.items():
                merged.setdefault(group, {}).setdefault(app_label, []).extend(codenames)
    return merged


def grant_role_permissions(apps, roles: dict[str, dict[str, list[str]]]) -> None:
    """Create the groups and add the permissions (for use in data migrations)."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; make sure they exist now.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, apps=apps, verbosity=0)

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for group_name, by_app in roles.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        for app_label, codenames in by_app.items():
            permissions = list(permission_model.objects.filter(
                content_type__app_label=app_label, codename__in=codenames
            ))
            missing = set(codenames) - {p.codename for p in permissions}
            if missing:
                raise RuntimeError(f"Unknown permissions for {group_name}: {sorted(missing)}")
            group.permissions.add(*permissions)
