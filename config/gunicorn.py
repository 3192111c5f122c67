"""Gunicorn settings: `gunicorn config.wsgi -c config/gunicorn.py` (bind and workers come from
the command line or GUNICORN_CMD_ARGS)."""

import gc


def post_worker_init(worker):
    """Load every view and the API schema now rather than on the first request, then freeze
    what start-up made out of the garbage collector's way: a full collection then scans only
    what requests made, which keeps the slowest responses close to the typical ones (a big
    GraphQL answer otherwise waits ~100 ms for one now and then)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  imports the URLconf and everything it names
    gc.freeze()
