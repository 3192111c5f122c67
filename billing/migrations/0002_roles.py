from django.db import migrations

from billing.roles import grant_role_permissions

# The roles as this migration made them (later migrations add to them).
ROLE_PERMISSIONS = {'Billing staff': {'billing': ['view_invoice',
                               'add_invoice',
                               'issue_invoice',
                               'record_payment',
                               'refund_invoice',
                               'credit_invoice',
                               'cancel_invoice',
                               'view_account',
                               'add_account',
                               'change_account',
                               'view_payment',
                               'view_service',
                               'view_taxrate',
                               'view_paymentmethod',
                               'view_disputereason']},
 'Financial approvers': {'billing': ['view_invoice',
                                     'view_account',
                                     'view_payment',
                                     'view_disputereason']},
 'Billing administrators': {'billing': ['view_clinic',
                                        'add_clinic',
                                        'change_clinic',
                                        'view_account',
                                        'add_account',
                                        'change_account',
                                        'view_taxrate',
                                        'add_taxrate',
                                        'change_taxrate',
                                        'view_service',
                                        'add_service',
                                        'change_service',
                                        'view_paymentmethod',
                                        'add_paymentmethod',
                                        'change_paymentmethod',
                                        'view_disputereason',
                                        'add_disputereason',
                                        'change_disputereason',
                                        'view_numberseries',
                                        'add_numberseries',
                                        'change_numberseries',
                                        'view_invoice',
                                        'change_invoice',
                                        'view_payment'],
                            'audit': ['view_auditevent'],
                            'auth': ['view_user',
                                     'add_user',
                                     'change_user',
                                     'view_group',
                                     'change_group']}}


def create_roles(apps, schema_editor):
    grant_role_permissions(apps, ROLE_PERMISSIONS)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("audit", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
