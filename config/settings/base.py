"""Settings shared by every environment; everything that differs comes from the environment."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}.") from exc


SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",
    "django_fsm",
    "django_htmx",  # request.htmx, and htmx itself served from its static files
    "strawberry_django",
    "oauth2_provider",
    "axes",
    "audit",
    "billing",
    "approvals",
    "refunds",
    "desk",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "billing.middleware.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "audit.middleware.AuditContextMiddleware",
    "billing.faults.DatabaseFaultMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Failed log-ins (and failed /o/token/ requests, api.token): after AXES_FAILURE_LIMIT failures
# for one username from one address, that pair waits out the cool-off. By username and address
# together, so one clinic behind one address does not lock itself out; the message is the same
# whether or not the username exists.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "api.token.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password", "client_secret"]
AXES_VERBOSE = False

# Content-Security-Policy: this application's own files only. No inline script or style (the
# scripts are in static/js), no CDN, no frames.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],  # Bootstrap draws its icons as data: SVGs
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
    },
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "approvals.context_processors.awaiting_count",
            ],
        },
    },
]

# SQLite by default; PostgreSQL (or any database) through DATABASE_URL.
# Connections are kept open between requests: opening one per request costs throughput.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Request bodies: forms are small; anything near this is not a clinic's form (400, not read).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_DATA_UPLOAD_MAX_BYTES", 512 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = env("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", "billing@localhost")
# Where staff open the app: emails link to pages under it.
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", "INFO")},
    # WeasyPrint reports every step of laying out a PDF at INFO; its warnings still show.
    "loggers": {"weasyprint.progress": {"level": "WARNING"}},
}

# Celery: gateway refunds, notification emails and the periodic jobs. With no broker (the
# embedded default that `make run` and the tests use) each task runs in the process that queues
# it, right after the commit, and the beat jobs are left to the management commands.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# A task is acknowledged once it has run, so a worker killed mid-call leaves it to be delivered
# again (the refund's idempotency key makes a second call harmless); one message at a time per
# worker process, so a slow gateway holds back only its own refund.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis hands a message no worker acknowledged (its worker was killed) to another after this
# long: longer than any task may run (a gateway call times out after STRIPE_TIMEOUT_SECONDS,
# retries included). Each worker looks for such messages every CELERY_RESTORE_INTERVAL_SECONDS.
# (RabbitMQ gives them back as soon as the killed worker's connection closes.)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 300),
    "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL_SECONDS", 30),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# A gateway refund still pending after this long is sent again by refunds_reconcile.
REFUND_PENDING_GRACE_SECONDS = env_int("REFUND_PENDING_GRACE_SECONDS", 120)
CELERY_BEAT_SCHEDULE = {
    "refunds_reconcile": {"task": "refunds.reconcile", "schedule": 60.0},
    # Financial Approval: expire approved requests, remind and escalate waiting ones
    "approvals_requests_expire": {"task": "approvals.requests_expire", "schedule": 300.0},
    "approvals_requests_remind": {"task": "approvals.requests_remind", "schedule": 300.0},
    "idempotency_keys_purge": {"task": "api.idempotency_keys_purge",
                               "schedule": crontab(hour=3, minute=17)},
}

# Refund gateways: code (PaymentMethod.gateway) -> adapter class.
REFUND_GATEWAYS = {
    "sandbox": "refunds.gateways.sandbox.SandboxGateway",
    "stripe": "refunds.gateways.stripe.StripeGateway",
}
# The sandbox gateway's `slow…` payments take this long to answer (README: sandbox references).
SANDBOX_SLOW_SECONDS = env_int("SANDBOX_SLOW_SECONDS", 3)
# The Stripe adapter (refunds through Stripe's official SDK).
STRIPE_API_KEY = env("STRIPE_API_KEY", "")
STRIPE_API_BASE = env("STRIPE_API_BASE", "")  # only to point at a stand-in in tests
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 20)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)

# The GraphQL API (/graphql/) and its OAuth2 tokens (/o/token/, client-credentials grant).
API_SCOPES = {
    "billing:read": "Read clinics, invoices, credit notes and requests",
    "billing:write": "Create invoices and payments; refund, credit, cancel; submit requests",
    "approvals:write": "Approve or reject financial requests",
}
OAUTH2_PROVIDER = {
    "SCOPES": API_SCOPES,
    "DEFAULT_SCOPES": ["billing:read"],
    "SCOPES_BACKEND_CLASS": "api.scopes.ClientScopes",
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("API_TOKEN_EXPIRE_SECONDS", 3600),
    # OAuth 2.0 Security Best Current Practice (RFC 9700): only the compliant behaviour.
    # Integrations use the client-credentials grant; tokens are stored hashed.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}
# Named here so migrations that point at the token models resolve (the models are the default).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
API_INTROSPECTION = env_bool("API_INTROSPECTION", True)
# The GraphiQL page (GET /graphql/ in a signed-in browser), served from the npm packages that
# `make install` puts in node_modules (package-lock.json), never from a CDN. Off unless asked for.
API_GRAPHIQL = env_bool("API_GRAPHIQL", False)
GRAPHIQL_ASSETS = {
    "graphiql": BASE_DIR / "node_modules" / "graphiql",
    "react": BASE_DIR / "node_modules" / "react" / "umd",
    "react-dom": BASE_DIR / "node_modules" / "react-dom" / "umd",
}


def graphiql_static_dirs(enabled: bool) -> list[tuple[str, Path]]:
    """Static folders for the GraphiQL page, when it is on and its packages are installed."""
    if not enabled or not all(path.is_dir() for path in GRAPHIQL_ASSETS.values()):
        return []
    return list(GRAPHIQL_ASSETS.items())


STATICFILES_DIRS = [*STATICFILES_DIRS, *graphiql_static_dirs(API_GRAPHIQL)]
# What one API request may ask for: every request answers within a second or is refused.
API_MAX_QUERY_DEPTH = env_int("API_MAX_QUERY_DEPTH", 10)
API_MAX_QUERY_TOKENS = env_int("API_MAX_QUERY_TOKENS", 2000)
API_MAX_ALIASES = env_int("API_MAX_ALIASES", 15)
# Fields a document could resolve, estimated before it runs (api.cost): about a second's work.
API_MAX_QUERY_COST = env_int("API_MAX_QUERY_COST", 8_000)
API_MAX_PAGE_SIZE = 100
API_MAX_OFFSET = 10_000
# Requests one bulk decision (financialRequestsApprove/Reject) may name.
API_MAX_BULK_IDS = 100
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 256 * 1024)
API_MAX_JSON_DEPTH = 32
# Idempotency keys are kept at least this long (purge_idempotency_keys removes older ones).
IDEMPOTENCY_KEY_TTL_HOURS = max(24, env_int("IDEMPOTENCY_KEY_TTL_HOURS", 48))
