"""The GraphiQL page: on for developers (local settings) when its npm packages are installed,
off by default and always in production, and never loading anything from a CDN."""

import pytest
from django.conf import settings
from django.test.utils import override_settings

from api.views import graphiql_available

from .test_api_queries import _production_setting

installed = pytest.mark.skipif(
    not all(path.is_dir() for path in settings.GRAPHIQL_ASSETS.values()),
    reason="the GraphiQL npm packages are not installed (make install runs npm ci)",
)


@installed
@override_settings(API_GRAPHIQL=True)
def test_a_signed_in_user_gets_graphiql_from_the_apps_own_static_files(client, clerk):
    client.force_login(clerk)
    page = client.get("/graphql/")
    assert page.status_code == 200
    html = page.content.decode()
    for asset in ["graphiql/graphiql.min.js", "graphiql/graphiql.min.css",
                  "react/react.production.min.js", "react-dom/react-dom.production.min.js"]:
        assert f"/static/{asset}" in html
    assert not any(cdn in html for cdn in ["unpkg", "jsdelivr", "cdn.", "esm.sh", "https://"])
    assert 'data-csrf-token=' in html  # it talks to /graphql/ as the signed-in user


@installed
@override_settings(API_GRAPHIQL=True)
def test_graphiql_asks_an_anonymous_visitor_to_log_in(client, db):
    response = client.get("/graphql/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/graphql/")


@override_settings(API_GRAPHIQL=False)
def test_graphiql_is_off_unless_asked_for(client, clerk):
    client.force_login(clerk)
    assert not graphiql_available()
    assert client.get("/graphql/").status_code == 405


def test_graphiql_is_off_in_production():
    assert _production_setting("API_GRAPHIQL") == "False"
    assert _production_setting("API_GRAPHIQL", API_GRAPHIQL="true") == "False"
