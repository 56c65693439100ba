"""``gunicorn.conf.py``: a worker freezes what the loaded application holds, out of the collector's full scans."""

import gc
import importlib.util
from pathlib import Path

from django.conf import settings


def load_conf():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", Path(settings.BASE_DIR) / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_worker_freezes_the_loaded_application_after_init():
    conf = load_conf()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        conf.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 10_000  # Django and the project's modules, not a handful of objects
    finally:
        gc.unfreeze()
