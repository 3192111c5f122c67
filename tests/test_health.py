"""/healthz: what a load balancer and a monitor ask every few seconds."""

from django.db import OperationalError, connection
from django.test import override_settings

from .conftest import requires_redis

REDIS = "redis://127.0.0.1:6379/15"


def test_with_no_broker_the_database_alone_decides(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok",
                               "broker": "not configured (tasks run in the web process)"}
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_a_database_that_cannot_be_reached_answers_503(client, db, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(connection, "cursor", down)
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert "connection refused" not in response.content.decode()


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:9/0")  # nothing listens on port 9
def test_a_broker_that_cannot_be_reached_answers_503(client, db):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok",
                               "broker": "unreachable"}


@requires_redis
@override_settings(CELERY_BROKER_URL=REDIS)
def test_a_reachable_broker_answers_200(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["broker"] == "ok"


def test_it_answers_get_only(client, db):
    assert client.post("/healthz").status_code == 405
