"""POST /graphql/: OAuth2 bearer tokens (client credentials) or a signed-in browser session.

A bearer request needs no CSRF token; a cookie session still does. No token, or an invalid,
expired or revoked one: HTTP 401. Mutations may carry an Idempotency-Key."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.oauth2_backends import get_oauthlib_core
from strawberry.django.views import GraphQLView

from audit.context import audit_context
from billing.faults import fault_message, fault_status, log_fault

from .body import MalformedRequest, check_graphql_body, decode_json
from .idempotency import idempotent

ONLY_POST = "Send GraphQL requests as POST with a JSON body to this address."
UNAUTHENTICATED = (
    "Send a valid access token: Authorization: Bearer <token> (get one from /o/token/)."
)
INVALID_TOKEN = "The access token is invalid, expired or revoked: get a new one from /o/token/."  # noqa: S105 - a message, not a secret


def graphql_error(message: str, *, status: int) -> JsonResponse:
    return JsonResponse({"errors": [{"message": message}]}, status=status)


def fault_response(error: BaseException) -> JsonResponse:
    response = graphql_error(fault_message(error), status=fault_status(error))
    if response.status_code == 503:
        response["Retry-After"] = "1"
    return response


def _unauthorized(message: str, *, error: str = "") -> JsonResponse:
    response = graphql_error(message, status=401)
    response["WWW-Authenticate"] = (
        f'Bearer realm="api", error="{error}"' if error else 'Bearer realm="api"')
    return response


def graphiql_available() -> bool:
    """The GraphiQL page is on and its assets are installed (make install runs npm ci)."""
    return settings.API_GRAPHIQL and all(
        path.is_dir() for path in settings.GRAPHIQL_ASSETS.values())


@csp_update({"style-src": [UNSAFE_INLINE]})
def _graphiql_page(request: HttpRequest) -> HttpResponse:
    # GraphiQL's editor adds its own <style> elements; its scripts are still our static files.
    # A development page only (off unless API_GRAPHIQL, always off in production).
    return render(request, "api/graphiql.html")


def _bearer_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


@method_decorator(csrf_exempt, name="dispatch")
class ApiView(GraphQLView):
    graphql_ide = None  # strawberry's own GraphiQL page loads its code from a CDN
    allow_queries_via_get = False

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)  # numbers as Decimal, never float

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return self._dispatch(request, *args, **kwargs)
        except (Http404, PermissionDenied, SuspiciousOperation):
            raise  # Django's own answers (404, 403, 400)
        except Exception as error:
            # Raised outside an operation (the token lookup, the Idempotency-Key's row, a lost
            # connection): the transaction is gone, so nothing of the request was kept. Said in
            # one plain sentence, never the driver's or Python's text; logged in full.
            log_fault(error, request_id=getattr(request, "request_id", None))
            return fault_response(error)

    def _dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "GET" and graphiql_available():
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            return _graphiql_page(request)
        if request.method != "POST":
            response = graphql_error(ONLY_POST, status=405)
            response["Allow"] = "POST"
            return response
        if _bearer_token(request) is not None:
            valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=[])
            token = oauth_request.access_token if valid else None
            # A client acts as the user it belongs to, never as anyone who might have
            # authorised it: a token for another user is not one of ours.
            user = token and token.application.user
            if token and token.user_id not in (None, token.application.user_id):
                user = None
            if not (user and user.is_active):
                return _unauthorized(INVALID_TOKEN, error="invalid_token")
            request.user = user
            request.api_scopes = frozenset(token.scope.split())
            client = f"api:{token.application.client_id}"
            idempotency_client = f"app:{token.application_id}"
        elif request.user.is_authenticated:
            rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if rejected is not None:
                return rejected
            request.api_scopes = frozenset(settings.API_SCOPES)
            client = "web:graphql"
            idempotency_client = f"user:{request.user.pk}"
        else:
            return _unauthorized(UNAUTHENTICATED)
        try:
            check_graphql_body(request)
        except MalformedRequest as problem:
            return graphql_error(problem.message, status=400)

        def run() -> HttpResponse:
            response = super(ApiView, self).dispatch(request, *args, **kwargs)
            status = getattr(request, "api_fault_status", None)  # set by api.faults
            if status:
                response.status_code = status
                if status == 503:
                    response["Retry-After"] = "1"
            return response

        with audit_context(client=client, request_id=getattr(request, "request_id", None)):
            key = request.headers.get("Idempotency-Key")
            if key and request.method == "POST":
                return idempotent(request=request, key=key, client=idempotency_client, run=run)
            return run()
