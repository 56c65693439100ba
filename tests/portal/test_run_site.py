"""``manage.py run_site`` (``make run``): it stops web, worker and beat when its parent dies (SIGTERM to make alone),
the children die with it even when it is killed outright, and the "up at" line waits until the server answers."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection

from marketplace import embedded
from portal.management.commands.run_site import answers_http, die_with_parent, probe_address

ROOT = Path(settings.BASE_DIR)
BANNER = "The exchange is up at"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_probe_address_asks_the_loopback_for_a_wildcard_address():
    assert probe_address("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert probe_address("0.0.0.0:8001") == ("127.0.0.1", 8001)
    assert probe_address("8002") == ("127.0.0.1", 8002)
    assert probe_address("[::1]:8003") == ("::1", 8003)


def test_answers_http_only_when_a_server_answers(live_server):
    host, port = probe_address(live_server.url.removeprefix("http://"))
    assert answers_http(host, port)
    assert not answers_http("127.0.0.1", free_port())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_the_process_that_started_them_even_when_it_is_killed():
    # given a process that started a child with die_with_parent, then hangs
    script = (
        "import os, subprocess, sys, time\n"
        "from portal.management.commands.run_site import die_with_parent\n"
        "child = subprocess.Popen(['sleep', '60'], preexec_fn=die_with_parent(os.getpid()))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = psutil.Process(int(parent.stdout.readline()))
    try:
        # when that process is killed outright (no handler runs)
        parent.kill()
        parent.wait()
        # then the kernel stops its child
        assert wait_for(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 10)
    finally:
        if child.is_running():
            child.kill()
        parent.stdout.close()
    assert callable(die_with_parent(os.getpid()))


@pytest.mark.django_db(transaction=True)
def test_run_site_stops_web_worker_and_beat_when_its_parent_is_terminated(tmp_path):
    # given run_site started by a shell (as make starts it), on the test database and a Redis of its own
    if not embedded.tcp_reachable("127.0.0.1", 6379):
        pytest.skip("needs the Redis on 127.0.0.1:6379")
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings.base",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
        "GPUX_DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "run_site.log"
    command = f"{sys.executable} manage.py run_site --no-seed --addr 127.0.0.1:{port}; echo exited"
    with log.open("w") as out:
        shell = subprocess.Popen(["/bin/sh", "-c", command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    processes: list[psutil.Process] = []
    try:
        # when it says the site is up / then the server answers already, and web, worker and beat run
        assert wait_for(lambda: BANNER in log.read_text(), 60), log.read_text()[-3000:]
        assert answers_http("127.0.0.1", port)
        (run_site,) = psutil.Process(shell.pid).children()
        processes = [run_site, *run_site.children(recursive=True)]
        commands = [" ".join(p.cmdline()) for p in processes[1:]]
        assert any("runserver" in c for c in commands) and any(" worker" in c for c in commands)
        assert any(" beat" in c for c in commands)
        # when only the shell (its parent) is terminated
        shell.send_signal(signal.SIGTERM)
        shell.wait(10)
        # then run_site stops every child and exits
        _gone, alive = psutil.wait_procs(processes, timeout=40)
        assert alive == [], [p.cmdline() for p in alive]
        assert "Stopped." in log.read_text()
    finally:
        for process in processes:
            if process.is_running():
                process.kill()
        if shell.poll() is None:
            shell.kill()
