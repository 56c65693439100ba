"""Settings read the environment; each case runs in a fresh interpreter so module-level settings are re-read."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


SETUP = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'marketplace.settings.base'; django.setup()\n"


def clean_env(**env) -> dict:
    """This process's environment without the settings it would leak (test settings set some), plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    return {**base, **env}


def run(args: list[str], **env) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=clean_env(**env), capture_output=True, text=True, timeout=120)


def python(code: str, **env) -> subprocess.CompletedProcess:
    return run([sys.executable, "-c", SETUP + code], **env)


def test_database_url_and_broker_come_from_the_environment():
    result = python(
        "from django.conf import settings as s; d=s.DATABASES['default'];"
        "print(d['ENGINE'], d['HOST'], d['PORT'], d['NAME'], s.CELERY_BROKER_URL, s.DEBUG)",
        DATABASE_URL="postgres://u:p@db.example:6543/gpux_prod",
        CELERY_BROKER_URL="redis://broker:6379/1",
        DJANGO_SECRET_KEY="x" * 60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "db.example",
        "6543",
        "gpux_prod",
        "redis://broker:6379/1",
        "False",
    ]


def test_sqlite_is_refused():
    result = python("", DATABASE_URL="sqlite:///x.db", CELERY_BROKER_URL="redis://x:6379/0", DJANGO_SECRET_KEY="x" * 60)
    assert result.returncode != 0
    assert "must point to PostgreSQL" in result.stderr


def test_a_secret_key_is_required_unless_debug():
    result = python("", DATABASE_URL="postgres://u@h/db", CELERY_BROKER_URL="redis://x:6379/0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_check_deploy_is_clean_in_production_mode():
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="marketplace.settings.base",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k3y-" + "a1b2c3d4e5" * 6,
        DATABASE_URL="postgres://u@127.0.0.1/none",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        AUDIT_SIGNING_KEY="cHJvZHVjdGlvbi1saWtlLWF1ZGl0LWtleS0zMmJ5dGU=",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_requires_the_audit_signing_key():
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        DJANGO_SETTINGS_MODULE="marketplace.settings.base",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k3y-" + "a1b2c3d4e5" * 6,
        DATABASE_URL="postgres://u@127.0.0.1/none",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        AUDIT_SIGNING_KEY="",
    )
    assert result.returncode != 0
    assert "audit.E001" in result.stderr and "AUDIT_SIGNING_KEY" in result.stderr


@pytest.mark.slow
def test_embedded_services_start_when_nothing_is_configured(tmp_path):
    # given no DATABASE_URL and no CELERY_BROKER_URL, and an empty data directory
    code = """
from django.conf import settings
from django.db import connection
import redis
with connection.cursor() as c:
    c.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    c.execute("CREATE TEMP TABLE r (node int, period tstzrange, EXCLUDE USING gist (node WITH =, period WITH &&))")
    c.execute("INSERT INTO r VALUES (1, '[2026-01-01 00:00+00, 2026-01-01 02:00+00)')")
    try:
        c.execute("INSERT INTO r VALUES (1, '[2026-01-01 01:00+00, 2026-01-01 03:00+00)')")
        print('overlap accepted')
    except Exception as exc:
        print('overlap refused', type(exc).__name__)
print('db', settings.DATABASES['default']['OPTIONS'].get('host', '').startswith(os.environ['GPUX_DATA_DIR']))
socket_path = settings.CELERY_BROKER_URL.removeprefix('redis+socket://')
print('redis', redis.Redis(unix_socket_path=socket_path).ping())
"""
    # when the settings load / then an embedded PostgreSQL with btree_gist and an embedded Redis answer
    result = python(code, DJANGO_DEBUG="1", GPUX_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:3] == ["overlap refused IntegrityError", "db True", "redis True"]


def test_collectstatic_works_with_the_production_storage(tmp_path):
    # given production settings: whitenoise's compressed manifest storage, which follows source-map references
    result = run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        DJANGO_SETTINGS_MODULE="marketplace.settings.base",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k3y-" + "a1b2c3d4e5" * 6,
        DJANGO_STATIC_ROOT=str(tmp_path),
        DATABASE_URL="postgres://u@127.0.0.1/none",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    # then every file is collected and the manifest names the vendored scripts
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "vendor/chart-4.6.1.umd.min.js" in manifest and "vendor/htmx-2.0.11.min.js" in manifest


def test_uploads_go_to_the_storage_the_environment_names():
    # given: django-storages' FTP backend (standard library only) named by the environment, with its options as JSON
    result = python(
        "from django.core.files.storage import default_storage as d; d._setup();"
        "w = d._wrapped; print(type(w).__module__, type(w).__name__, w.location)",
        DATABASE_URL="postgres://u@h/db",
        CELERY_BROKER_URL="redis://x:6379/0",
        DJANGO_SECRET_KEY="x" * 60,
        DJANGO_FILE_STORAGE="storages.backends.ftp.FTPStorage",
        DJANGO_FILE_STORAGE_OPTIONS='{"location": "ftp://gpux:secret@files.example.cn:21/licences/"}',
    )
    # then: uploads (business licences) are written through it, configured as given
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "storages.backends.ftp",
        "FTPStorage",
        "ftp://gpux:secret@files.example.cn:21/licences/",
    ]


def test_uploads_stay_under_media_root_by_default(tmp_path):
    result = python(
        "from django.core.files.storage import default_storage as d; d._setup();"
        "print(type(d._wrapped).__name__, d._wrapped.location)",
        DATABASE_URL="postgres://u@h/db",
        CELERY_BROKER_URL="redis://x:6379/0",
        DJANGO_SECRET_KEY="x" * 60,
        DJANGO_MEDIA_ROOT=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["FileSystemStorage", str(tmp_path)]
