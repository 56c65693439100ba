"""Test settings: the real PostgreSQL and Redis on 127.0.0.1 when they answer, else the embedded ones.

Set ``DJANGO_TEST_DB_NAME`` to give parallel test runs separate databases.
"""

import os
import tempfile
from pathlib import Path

from marketplace import embedded

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
if not os.environ.get("DATABASE_URL") and embedded.tcp_reachable("127.0.0.1", 5432):
    os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/gpux"
    embedded.ensure_database("postgresql://postgres@127.0.0.1:5432/postgres", "gpux")
if not os.environ.get("CELERY_BROKER_URL") and embedded.tcp_reachable("127.0.0.1", 6379):
    os.environ["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/9"

from marketplace.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; never in production
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # mail.outbox; the live server shares it
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
DATABASES["default"]["TEST"]["NAME"] = os.environ.get("DJANGO_TEST_DB_NAME") or "test_gpux"  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"auth": "1000/min"}  # noqa: F405
# Throttle counters live in a Redis shared by parallel runs: a prefix per test process keeps them apart.
CACHES["default"]["KEY_PREFIX"] = f"test-{os.getpid()}"  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - whitenoise warns about a missing directory
# Login failures accumulate per address across the whole run (the cache is not cleared between tests, and most test
# requests come from one address): the per-address limit is tested with its own override.
LOGIN_IP_FAILURE_LIMIT = 10_000
# A fixed Ed25519 key (base64 of a 32-byte seed) signs the tests' tree heads; never used anywhere else.
AUDIT_SIGNING_KEY = "dGVzdC1vbmx5LWF1ZGl0LWtleS1ub3QtZm9yLXByb2Q="
# Uploaded files (business licences) go to a directory of this test process, not the developer's MEDIA_ROOT.
MEDIA_ROOT = Path(tempfile.gettempdir()) / f"gpux-test-media-{os.getpid()}"
