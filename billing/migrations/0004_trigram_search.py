"""On PostgreSQL, searching for a fragment of an invoice number or a patient's name or number
uses trigram indexes (pg_trgm) on the same expression Django's `icontains` compiles to,
UPPER(column). SQLite keeps the plain scan: it holds a single clinic's demo data."""

from django.db import migrations

INDEXES = [
    ("invoice_number_trgm_idx", "billing_invoice", "number"),
    ("account_name_trgm_idx", "billing_account", "name"),
    ("account_number_trgm_idx", "billing_account", "number"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (UPPER({column}) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_list_indexes")]

    operations = [migrations.RunPython(create, drop)]
