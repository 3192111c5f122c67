"""The server's start-up hook: views loaded before the first request, start-up objects frozen
out of the garbage collector's scans."""

import gc
import importlib.util
from pathlib import Path

from django.conf import settings


def _config():
    path = Path(settings.BASE_DIR) / "config" / "gunicorn.py"
    spec = importlib.util.spec_from_file_location("gunicorn_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_worker_freezes_what_start_up_made():
    gc.unfreeze()
    try:
        # when a worker has loaded the app
        _config().post_worker_init(worker=None)
        # then the objects start-up made (Django, every view, the API schema) are frozen
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
