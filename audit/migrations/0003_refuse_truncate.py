"""On PostgreSQL the database also refuses to empty the audit table with TRUNCATE (UPDATE and
DELETE are refused row by row since 0002).

A test run empties its own database between tests with TRUNCATE: its connections set
`audit.allow_truncate` (config/settings/test.py). Nothing else sets it."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION audit_event_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('audit.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_truncate();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event;
DROP FUNCTION IF EXISTS audit_event_refuse_truncate();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [migrations.RunPython(install, uninstall)]
