"""A minimal Django page for comparison: what one request costs the stack itself.

Served by its own gunicorn (`gunicorn bench.baseline_app:application`) with the same settings
(bench.settings = production), database, environment and worker count as the app; only the
URLconf is this module's: one signed-in view that runs one indexed query,
`Invoice.objects.filter(pk=…).values_list("number").first()`. With the session and user lookups
of the authentication middleware that is 3 queries per request, and the same middleware
(security, whitenoise, sessions, CSRF, auth, messages, audit context) as every app page."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
application = get_wsgi_application()  # django.setup() with the production settings

from django.conf import settings  # noqa: E402 - after setup
from django.contrib.auth import views as auth_views  # noqa: E402
from django.contrib.auth.decorators import login_required  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from billing.models import Invoice  # noqa: E402


@login_required
def invoice_number(request, pk):
    number = Invoice.objects.filter(pk=pk).values_list("number", flat=True).first()
    return HttpResponse(number or "", content_type="text/plain; charset=utf-8")


urlpatterns = [
    path("baseline/invoices/<int:pk>/", invoice_number),
    # where login_required sends a signed-out visitor (LOGIN_URL = "login"), as in the app
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
]

# Only the URLconf differs from the app's settings.
settings.ROOT_URLCONF = __name__
