"""What a POST to /graphql/ must look like before any of it is run: a JSON object no larger and
no deeper than the limits, without NUL characters, with a string `query`, an object (or null)
`variables` and a string (or null) `operationName`, naming the operation when the document holds
several. Anything else is refused with HTTP 400 and a GraphQL-shaped `errors` list, never a 500.

JSON numbers are read as Decimal, never float: an amount sent as 0.1 is 0.1."""

import json
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from graphql import GraphQLError, OperationDefinitionNode, parse

NOT_JSON_CONTENT = "Send the request body as JSON, with Content-Type: application/json."
TOO_LARGE = "The request body is larger than {limit:,} bytes; send a smaller request."
NOT_UTF8 = "The request body is not valid UTF-8 text."
NOT_JSON = "The request body is not valid JSON."
TOO_DEEP = "The request body is nested more than {limit} levels deep."
NOT_AN_OBJECT = (
    'The request body must be one JSON object: {"query": "...", "variables": {...}}. '
    "Batches of operations are not accepted."
)
NUL_CHARACTER = "The request holds a NUL character (\\u0000), which no field accepts."
QUERY_NOT_A_STRING = 'Send the GraphQL document as a string in "query".'
VARIABLES_NOT_AN_OBJECT = '"variables" must be a JSON object (or null).'
OPERATION_NAME_NOT_A_STRING = '"operationName" must be a string (or null).'
SEVERAL_OPERATIONS = (
    "The document has {count} operations: name the one to run in \"operationName\"."
)
UNKNOWN_OPERATION = 'The document has no operation named "{name}".'


class MalformedRequest(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(data: str | bytes) -> object:
    """Strict JSON: numbers as Decimal or int, no NaN or Infinity."""
    return json.loads(data, parse_float=Decimal, parse_constant=_refuse_constant)


def _shape(value: object) -> tuple[int, bool]:
    """How deeply arrays and objects nest (a scalar is 0), and whether any string holds a NUL
    character (no field takes one, and PostgreSQL cannot store it); without recursion."""
    deepest, nul, stack = 0, False, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            nul = nul or "\x00" in item
            continue
        if isinstance(item, dict):
            nul = nul or any("\x00" in key for key in item)
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest, nul


@lru_cache(maxsize=256)
def _operation_names(query: str) -> tuple[str | None, ...] | None:
    """The document's operation names, or None when it does not parse (the schema then answers
    with the syntax error). Cached: integrations send the same few documents."""
    try:
        document = parse(query, no_location=True, max_tokens=settings.API_MAX_QUERY_TOKENS)
    except GraphQLError:
        return None
    return tuple(definition.name.value if definition.name else None
                 for definition in document.definitions
                 if isinstance(definition, OperationDefinitionNode))


def check_graphql_body(request: HttpRequest) -> None:
    """Raise MalformedRequest with a plain message unless the body is one runnable request."""
    if request.content_type != "application/json":
        raise MalformedRequest(NOT_JSON_CONTENT)
    limit = settings.API_MAX_BODY_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise MalformedRequest(TOO_LARGE.format(limit=limit))
    try:
        body = request.body
    except RequestDataTooBig:
        raise MalformedRequest(TOO_LARGE.format(limit=limit)) from None
    if len(body) > limit:
        raise MalformedRequest(TOO_LARGE.format(limit=limit))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest(NOT_UTF8) from None
    try:
        data = decode_json(text)
    except RecursionError:
        raise MalformedRequest(TOO_DEEP.format(limit=settings.API_MAX_JSON_DEPTH)) from None
    except ValueError:
        raise MalformedRequest(NOT_JSON) from None
    if not isinstance(data, dict):
        raise MalformedRequest(NOT_AN_OBJECT)
    depth, nul = _shape(data)
    if depth > settings.API_MAX_JSON_DEPTH:
        raise MalformedRequest(TOO_DEEP.format(limit=settings.API_MAX_JSON_DEPTH))
    if nul:
        raise MalformedRequest(NUL_CHARACTER)
    query, variables = data.get("query"), data.get("variables")
    operation_name = data.get("operationName")
    if not isinstance(query, str):
        raise MalformedRequest(QUERY_NOT_A_STRING)
    if not isinstance(variables, dict | None):
        raise MalformedRequest(VARIABLES_NOT_AN_OBJECT)
    if not isinstance(operation_name, str | None):
        raise MalformedRequest(OPERATION_NAME_NOT_A_STRING)
    names = _operation_names(query)
    if names is None:
        return
    if operation_name is None and len(names) > 1:
        raise MalformedRequest(SEVERAL_OPERATIONS.format(count=len(names)))
    if operation_name is not None and operation_name not in names:
        raise MalformedRequest(UNKNOWN_OPERATION.format(name=operation_name))
