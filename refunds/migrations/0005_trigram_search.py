"""On PostgreSQL, a fragment of a credit-note number is searched through a trigram index on
UPPER(number), the expression `icontains` compiles to (pg_trgm is enabled by billing 0004)."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS credit_note_number_trgm_idx ON refunds_creditnote "
            "USING gin (UPPER(number) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS credit_note_number_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [("refunds", "0004_list_indexes"), ("billing", "0004_trigram_search")]

    operations = [migrations.RunPython(create, drop)]
