"""POST /o/token/ with failures counted: after API_TOKEN_FAILURE_LIMIT failed requests for one
client id from one address, that pair is refused (HTTP 429) until the cool-off has passed.

The attempts are kept by django-axes, in the same table and with the same cool-off as failed
log-ins (shared by every app server, listed in the admin), under the name "api-client:<id>";
a client id is read from HTTP Basic auth or the form, as the token endpoint reads it."""

import base64
import binascii
from urllib.parse import unquote_plus

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from oauth2_provider import views as oauth2_views

TOO_MANY_FAILURES = (
    "Too many failed token requests for this client from this address. Wait a few minutes, "
    "then check the client id and secret (or ask for a new secret)."
)
FAILED = {400, 401}


def _client_id(request: HttpRequest) -> str:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return unquote_plus(decoded.partition(":")[0])[:100]
    return str(request.POST.get("client_id", ""))[:100]


def _too_many_failures() -> JsonResponse:
    response = JsonResponse({"error": "slow_down", "error_description": TOO_MANY_FAILURES},
                            status=429)
    response["Cache-Control"] = "no-store"
    return response


def lockout_response(request: HttpRequest, original_response, credentials) -> HttpResponse:
    """django-axes' answer once a pair is locked out (AXES_LOCKOUT_CALLABLE): the OAuth2 JSON
    error on the token endpoint, the plain page on the log-in forms."""
    if getattr(request, "resolver_match", None) and request.resolver_match.url_name == "token":
        return _too_many_failures()
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)


class TokenView(oauth2_views.TokenView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        credentials = {"username": f"api-client:{_client_id(request)}"}
        if AxesProxyHandler.is_locked(request, credentials):
            return _too_many_failures()
        response = super().post(request, *args, **kwargs)
        if response.status_code in FAILED:
            AxesProxyHandler.user_login_failed(sender=TokenView, credentials=credentials,
                                               request=request)
        return response
