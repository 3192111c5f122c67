"""On PostgreSQL, the Financial Approval queue sorted by amount — largest or smallest first,
unknown amounts last, by status and across every status — reads its rows in order from these
indexes. SQLite cannot index NULLS LAST (and holds demo data only), so it keeps the sort."""

from django.db import migrations

INDEXES = [
    ("request_status_largest_idx", "status, frozen_total DESC NULLS LAST, id DESC"),
    ("request_status_smallest_idx", "status, frozen_total ASC NULLS LAST, id ASC"),
    ("request_largest_idx", "frozen_total DESC NULLS LAST, id DESC"),
    ("request_smallest_idx", "frozen_total ASC NULLS LAST, id ASC"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, columns in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON approvals_financialrequest ({columns})")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _columns in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("approvals", "0008_frozen_breakdown")]

    operations = [migrations.RunPython(create, drop)]
