"""Web and API workers keep their database connection between requests (a new connection per
request costs about three times the throughput) and check it before using it again, so a
connection the server dropped (a restart, a failover, an administrator) costs a reconnection,
not a failed request."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.db import close_old_connections, connection

from .conftest import requires_postgres


def test_servers_keep_their_connections_and_check_them_before_use():
    # CI sets DATABASE_CONN_MAX_AGE=0 for its own runs; a server without it keeps connections.
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_CONN_MAX_AGE"}
    shown = subprocess.run(
        [sys.executable, "-c", "from config.settings import base; "
         "db = base.DATABASES['default']; print(db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS'])"],
        env=environment, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert shown == ["600", "True"]


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_by_the_server_costs_a_reconnection_not_a_failed_request():
    kept = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 600
    try:
        # given a worker's persistent connection, used by a first request
        close_old_connections()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            first_pid = cursor.fetchone()[0]
        # when the server terminates it between two requests
        with psycopg.connect(_dsn(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [first_pid])
        # then the next request starts (Django's request_started hook runs this) and its
        # first query runs on a new connection
        close_old_connections()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] != first_pid
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = kept
        connection.close()


def _dsn() -> str:
    db = settings.DATABASES["default"]
    return (f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} "
            f"user={db['USER']} dbname=postgres")
