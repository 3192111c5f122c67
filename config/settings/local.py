"""Developer machine and demo: SQLite unless DATABASE_URL says otherwise, debug on."""

from .base import *  # noqa: F403
from .base import BASE_DIR, env, env_bool, graphiql_static_dirs

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env("DJANGO_SECRET_KEY", "local-development-only-not-secret")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

API_GRAPHIQL = env_bool("API_GRAPHIQL", True)
STATICFILES_DIRS = [BASE_DIR / "static", *graphiql_static_dirs(API_GRAPHIQL)]
