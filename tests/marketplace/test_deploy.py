"""The Procfile and the systemd units under deploy/systemd/ start only what exists: each command is gunicorn on this
project's WSGI application, Celery on this project's app (worker or beat), or a ``manage.py`` command that Django
knows; beat is declared once."""

from __future__ import annotations

import configparser
import importlib
import shlex
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            assert name not in entries, f"process type {name} twice"
            entries[name.strip()] = command.strip()
    return entries


def unit_command(path: Path) -> str:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read(path)
    return parser["Service"]["ExecStart"]


def check_command(command: str) -> str:
    """Raise AssertionError unless ``command`` starts something of this project; returns what it starts."""
    argv = shlex.split(command)
    program = Path(argv[0]).name
    if program == "gunicorn":
        module, _, attribute = argv[1].partition(":")
        assert hasattr(importlib.import_module(module), attribute or "application"), argv[1]
        return "web"
    if program == "celery":
        assert argv[argv.index("-A") + 1] == "marketplace"
        app = importlib.import_module("marketplace.celery").app
        assert app.main == "marketplace"
        kind = argv[argv.index("-A") + 2]
        assert kind in {"worker", "beat"}, kind
        return kind
    if program.startswith("python"):
        assert argv[1] == "manage.py" and (ROOT / "manage.py").exists()
        assert argv[2] in get_commands(), f"no manage.py command {argv[2]}"
        return argv[2]
    raise AssertionError(f"unknown program {program} in {command!r}")


def test_procfile_has_web_worker_beat_and_migrations():
    started = {name: check_command(command) for name, command in procfile().items()}
    assert started == {"release": "migrate", "web": "web", "worker": "worker", "beat": "beat"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_each_systemd_unit_starts_something_of_this_project(unit):
    check_command(unit_command(unit))


def test_units_cover_web_worker_beat_and_migrations_with_one_beat():
    started = sorted(check_command(unit_command(unit)) for unit in UNITS)
    assert started == ["beat", "migrate", "web", "worker"]
    beat = next(unit for unit in UNITS if check_command(unit_command(unit)) == "beat")
    assert "@" not in beat.name  # not a template: one beat per deployment


def test_web_instances_keep_their_metrics_per_instance():
    web = (ROOT / "deploy" / "systemd" / "gpux-web@.service").read_text()
    assert "PROMETHEUS_MULTIPROC_DIR=/run/gpux-web-%i" in web and "RuntimeDirectory=gpux-web-%i" in web


def test_the_check_refuses_unknown_commands():
    with pytest.raises(AssertionError):
        check_command("python manage.py no_such_command")
    with pytest.raises((AssertionError, ModuleNotFoundError)):
        check_command("gunicorn marketplace.nowhere:application")
    with pytest.raises(AssertionError):
        check_command("uwsgi --ini site.ini")
