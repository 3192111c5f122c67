"""Whatever arrives at /graphql/, the answer is a GraphQL-shaped error with a plain message and
never a 500: bodies that are not one JSON object, invalid UTF-8, deep nesting, oversize bodies,
several operations with none named; and documents beyond the cost limits (tokens, aliases,
page size, offset; depth is in test_api_queries) are refused before anything runs."""

import json

import pytest
from django.test import override_settings

from api.body import (
    NOT_AN_OBJECT,
    NOT_JSON,
    NOT_JSON_CONTENT,
    NOT_UTF8,
    NUL_CHARACTER,
    OPERATION_NAME_NOT_A_STRING,
    QUERY_NOT_A_STRING,
    SEVERAL_OPERATIONS,
    TOO_DEEP,
    TOO_LARGE,
    UNKNOWN_OPERATION,
    VARIABLES_NOT_AN_OBJECT,
)
from api.cost import TOO_COSTLY
from api.queries import OFFSET_TOO_FAR

from .api_helpers import gql_response
from .conftest import ledger_state


@pytest.fixture
def post(client, token):
    def post(body: bytes | str, content_type="application/json", **extra):
        return client.post("/graphql/", data=body, content_type=content_type,
                           HTTP_AUTHORIZATION=f"Bearer {token}", **extra)
    return post


def refused(response, message: str, status: int = 400) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"errors": [{"message": message}]}


QUERY = "{ clinics { name } }"


def nested(levels: int) -> list:
    value: list = [1]
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(("body", "message"), [
    (b"null", NOT_AN_OBJECT),
    (b'"a string"', NOT_AN_OBJECT),
    (b"42", NOT_AN_OBJECT),
    (b"[]", NOT_AN_OBJECT),
    (json.dumps([{"query": QUERY}]).encode(), NOT_AN_OBJECT),
    (b"\xff\xfe{}", NOT_UTF8),
    (b'{"query": "\xc3\x28"}', NOT_UTF8),
    (b"{", NOT_JSON),
    (b'{"query": NaN}', NOT_JSON),
    (b"[" * 100_000 + b"]" * 100_000, TOO_DEEP.format(limit=32)),
    (json.dumps({"query": QUERY, "variables": {"a": nested(31)}}).encode(),
     TOO_DEEP.format(limit=32)),
    (json.dumps({"query": QUERY, "variables": {"remarks": "a\x00b"}}).encode(), NUL_CHARACTER),
    (json.dumps({"query": "{ clinics { name } }\x00"}).encode(), NUL_CHARACTER),
    (json.dumps({"variables": {}}).encode(), QUERY_NOT_A_STRING),
    (json.dumps({"query": ["{ clinics { name } }"]}).encode(), QUERY_NOT_A_STRING),
    (json.dumps({"query": QUERY, "variables": "{}"}).encode(), VARIABLES_NOT_AN_OBJECT),
    (json.dumps({"query": QUERY, "operationName": 1}).encode(), OPERATION_NAME_NOT_A_STRING),
    (json.dumps({"query": "query A { clinics { name } } query B { clinics { code } }"}).encode(),
     SEVERAL_OPERATIONS.format(count=2)),
    (json.dumps({"query": "mutation A { __typename } query B { clinics { code } }"}).encode(),
     SEVERAL_OPERATIONS.format(count=2)),
    (json.dumps({"query": "query A { clinics { name } }", "operationName": "B"}).encode(),
     UNKNOWN_OPERATION.format(name="B")),
])
def test_a_malformed_body_is_a_400_with_a_plain_message_and_changes_nothing(post, body, message):
    before = ledger_state()
    refused(post(body), message)
    assert ledger_state() == before


def test_a_body_that_is_not_json_content_is_refused(post):
    refused(post(json.dumps({"query": QUERY}), content_type="text/plain"), NOT_JSON_CONTENT)


@override_settings(API_MAX_BODY_BYTES=1024)
def test_an_oversize_body_is_refused_before_it_is_read(post):
    body = json.dumps({"query": QUERY, "variables": {"pad": "x" * 2000}})
    refused(post(body), TOO_LARGE.format(limit=1024))


def test_the_body_limit_holds_at_the_default_too(post):
    refused(post(json.dumps({"query": QUERY, "variables": {"pad": "x" * 300_000}})),
            TOO_LARGE.format(limit=256 * 1024))


def test_a_named_operation_of_several_runs(post):
    body = {"query": "query A { clinics { name } } query B { clinics { code } }",
            "operationName": "B"}
    response = post(json.dumps(body))
    assert response.status_code == 200
    assert response.json() == {"data": {"clinics": [{"code": "MUSCAT"}]}}


def test_an_unauthenticated_malformed_request_is_still_a_401(client):
    response = client.post("/graphql/", data=b"null", content_type="application/json")
    assert response.status_code == 401


def test_an_idempotent_malformed_request_is_refused_and_keeps_no_key(post):
    from api.models import IdempotencyKey

    refused(post(b"[" * 10_000 + b"]" * 10_000, HTTP_IDEMPOTENCY_KEY="k1"),
            TOO_DEEP.format(limit=32))
    assert not IdempotencyKey.objects.exists()


# -- cost limits ----------------------------------------------------------------------------------

def error_messages(response) -> list[str]:
    assert response.status_code == 200
    body = response.json()
    assert body.get("data") is None
    return [error["message"] for error in body["errors"]]


def test_too_many_aliases_are_refused(client, token):
    query = "{ " + " ".join(f"a{n}: clinics {{ name }}" for n in range(16)) + " }"
    assert error_messages(gql_response(client, token, query)) == [
        "16 aliases found. Allowed: 15"]


def test_aliases_inside_fragments_count_too(client, token):
    def fragment(name):
        return f"fragment {name} on Query {{ " + " ".join(
            f"{name}{n}: clinics {{ name }}" for n in range(8)) + " }"

    query = "{ ...F ...G } " + fragment("F") + " " + fragment("G")
    assert error_messages(gql_response(client, token, query)) == [
        "16 aliases found. Allowed: 15"]


def test_a_document_of_too_many_tokens_is_refused(client, token):
    query = "{ clinics { " + " ".join(["name"] * 2100) + " } }"
    [message] = error_messages(gql_response(client, token, query))
    assert "token" in message.lower()


def test_an_offset_too_far_down_the_ledger_is_refused(client, token):
    messages = error_messages(gql_response(client, token,
                                           "{ invoices(offset: 10001) { id } }"))
    assert messages == [OFFSET_TOO_FAR.format(limit=10_000)]


def test_a_large_first_is_capped_not_refused(client, token, make_invoice):
    for _ in range(3):
        make_invoice()
    with override_settings(API_MAX_PAGE_SIZE=2):
        body = gql_response(client, token, "{ invoices(first: 100000) { id } }").json()
    assert len(body["data"]["invoices"]) == 2


@pytest.mark.parametrize("value", ["99999999999999999999999", " 1", "١", "1_0", "-1", "0"])
def test_an_id_that_is_not_a_row_id_is_simply_not_found(client, token, value):
    body = gql_response(client, token, "query ($id: ID!) { invoice(id: $id) { id } }",
                        {"id": value}).json()
    assert body == {"data": {"invoice": None}}


def test_a_document_that_would_resolve_too_many_fields_is_refused_before_it_runs(
        client, token, make_invoice):
    make_invoice()
    fields = "id number total lines { id net tax total creditedNet creditedTax }"
    accepted = gql_response(client, token, f"{{ a: invoices(first: 100) {{ {fields} }} }}")
    assert accepted.status_code == 200 and "errors" not in accepted.json()
    query = "{ " + " ".join(f"a{n}: invoices(first: 100) {{ {fields} }}" for n in range(4)) + " }"
    [message] = error_messages(gql_response(client, token, query))
    assert message == TOO_COSTLY.format(cost=4 * (1 + 100 * (3 + 1 + 3 * 6)), limit=8_000)


def test_a_variable_first_counts_as_the_largest_page(client, token):
    fields = "id lines { id net tax total creditedNet creditedTax description }"
    query = ("query ($n: Int!) { " + " ".join(
        f"a{n}: invoices(first: $n) {{ {fields} }}" for n in range(6)) + " }")
    [message] = error_messages(gql_response(client, token, query, {"n": 1}))
    assert message.startswith("This request asks for too much at once")


def test_fragments_spread_again_and_again_count_every_time(client, token):
    fragments = ["fragment F8 on Query { clinics { id name } }"] + [
        f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} ...F{n + 1} }}" for n in range(8)]
    [message] = error_messages(gql_response(client, token, "{ ...F0 } " + " ".join(fragments)))
    assert message.startswith("This request asks for too much at once")
