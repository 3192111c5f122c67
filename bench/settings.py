"""The benchmark's Django settings: `config.settings.production`, unchanged, except STATIC_ROOT.

Production serves static files from STATIC_ROOT through whitenoise's manifest storage, so
`collectstatic` must run first. STATIC_ROOT is not read from the environment in production
settings, and the benchmark must not write into the repository, so here it comes from
BENCH_STATIC_ROOT (a temporary directory made by bench.run). Everything else — DEBUG off, HTTPS
assumptions, persistent connections (DATABASE_CONN_MAX_AGE), middleware, templates — is exactly
production's."""

import os

from config.settings.production import *  # noqa: F403

if os.environ.get("BENCH_STATIC_ROOT"):
    STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]
