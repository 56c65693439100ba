"""``python -m gpux_agent`` as a subprocess, with fake nvidia-smi / npu-smi first on PATH printing recorded output."""

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from gpux_agent.inventory import NVIDIA_SMI_ARGS

from tests.agent.conftest import AGENT_DIR
from tests.agent.helpers import FIXTURES, ed25519_key

TOKEN = "gpxa_cli_token_1"


def fake_tool(bin_dir: Path, name: str, answers: dict[tuple[str, ...], str]) -> None:
    """An executable ``name`` that prints the fixture file for its exact argv, and fails loudly for any other."""
    table = {" ".join(argv): str(FIXTURES / fixture) for argv, fixture in answers.items()}
    script = bin_dir / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"answers = {table!r}\n"
        "argv = ' '.join(sys.argv[1:])\n"
        "if argv not in answers:\n"
        "    sys.exit(f'fake {sys.argv[0]}: unexpected arguments {argv!r}')\n"
        "sys.stdout.write(open(answers[argv], encoding='utf-8').read())\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def agent_env(bin_dir: Path, **extra: str) -> dict[str, str]:
    # PATH holds the fake tools only: a real nvidia-smi on the test machine must not answer instead.
    env = {key: value for key, value in os.environ.items() if not key.startswith("GPUX_")}
    env.update(PATH=str(bin_dir), PYTHONPATH=str(AGENT_DIR), **extra)
    return env


def run_agent(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gpux_agent", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def bin_dir(tmp_path):
    directory = tmp_path / "bin"
    directory.mkdir()
    return directory


def test_inventory_prints_the_parsed_nvidia_inventory_as_json(bin_dir):
    # given
    fake_tool(bin_dir, "nvidia-smi", {NVIDIA_SMI_ARGS: "nvidia_smi_8x_h100_80gb_hbm3.csv"})

    # when
    result = run_agent(["inventory", "--hostname", "gpu-node-07"], agent_env(bin_dir))

    # then
    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    assert (inventory["hostname"], inventory["vendor"], len(inventory["gpus"])) == ("gpu-node-07", "nvidia", 8)
    assert inventory["gpus"][7] == {
        "index": 7,
        "model": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-e0b4a7c3-5f18-2d6e-9b3a-7c8d1e4f2a05",
        "serial": "1654922049455",
        "memory_mib": 81559,
        "driver": "535.129.03",
        "temperature_c": 34,
        "utilisation_pct": 0,
        "power_w": 70.83,
        "health": "ok",
    }


def test_inventory_reads_ascend_npus_and_their_board_serials(bin_dir):
    answers = {("info",): "npu_smi_info_2x_ascend910_a3.txt"}
    answers |= {("info", "-t", "board", "-i", str(npu)): "npu_smi_board_no_serial.txt" for npu in (0,)}
    fake_tool(bin_dir, "npu-smi", answers)  # board 1 is not answered: the fake exits non-zero for it

    result = run_agent(["inventory", "--hostname", "ascend-a3-01"], agent_env(bin_dir))

    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    assert inventory["vendor"] == "huawei"
    assert [(gpu["index"], gpu["model"], gpu["memory_mib"], gpu["serial"]) for gpu in inventory["gpus"]] == [
        (0, "Ascend910", 65536, None),
        (1, "Ascend910", 65536, None),
        (2, "Ascend910", 65536, None),
        (3, "Ascend910", 65536, None),
    ]
    assert "no serial for NPU 1" in result.stderr


def test_inventory_refuses_truncated_output_with_the_line_on_stderr(bin_dir):
    fake_tool(bin_dir, "nvidia-smi", {NVIDIA_SMI_ARGS: "nvidia_smi_truncated.csv"})

    result = run_agent(["inventory"], agent_env(bin_dir))

    assert result.returncode == 1
    assert result.stdout == ""
    assert "line 6: expected 9 comma-separated values" in result.stderr


def test_inventory_without_a_gpu_tool_says_so(bin_dir):
    result = run_agent(["inventory"], agent_env(bin_dir))

    assert result.returncode == 1
    assert "neither nvidia-smi nor npu-smi found on PATH" in result.stderr


def test_once_reports_heartbeats_and_delivers_a_bookings_keys(bin_dir, tmp_path, platform):
    # given: one pending install for booking 42
    fake_tool(bin_dir, "nvidia-smi", {NVIDIA_SMI_ARGS: "nvidia_smi_8x_a100_sxm4_80gb.csv"})
    (tmp_path / "ssh").mkdir()
    keys_file = tmp_path / "ssh" / "authorized_keys"
    key = ed25519_key(3, "alice@startup")
    platform.respond(
        "GET",
        "/api/v1/agent/handovers/",
        body=[{"id": 9, "booking": 42, "node": 3, "action": "install", "login_user": "gpux", "ssh_keys": [key]}],
    )
    env = agent_env(bin_dir, GPUX_URL=platform.url, GPUX_AGENT_TOKEN=TOKEN, GPUX_AUTHORIZED_KEYS=str(keys_file))

    # when
    args = "once --hostname a100-node-2 --login-user gpux --ssh-host a100-node-2.dc.example.cn --ssh-port 2222"
    result = run_agent(args.split(), env)

    # then
    assert result.returncode == 0, result.stderr
    assert platform.paths() == [
        ("POST", "/api/v1/agent/inventory/"),
        ("POST", "/api/v1/agent/heartbeats/"),
        ("GET", "/api/v1/agent/handovers/"),
        ("POST", "/api/v1/agent/handovers/9/report/"),
    ]
    assert {request.headers["Authorization"] for request in platform.requests} == {f"Agent {TOKEN}"}
    assert platform.requests[2].path == "/api/v1/agent/handovers/?hostname=a100-node-2"  # only this node's
    assert platform.requests[0].body["gpus"][3]["serial"] == "1323221004802"
    assert platform.requests[1].body["gpus"][6] == {
        "index": 6,
        "health": "ok",
        "utilisation_pct": 99,
        "temperature_c": 33,
    }
    assert platform.requests[3].body == {
        "status": "installed",
        "host": "a100-node-2.dc.example.cn",
        "port": 2222,
        "user": "gpux",
        "detail": None,
    }
    assert keys_file.read_text() == f"{' '.join(key.split()[:2])} gpux-booking-42\n"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600


def test_run_heartbeats_until_sigterm_then_exits_cleanly(bin_dir, tmp_path, platform):
    # given: an interval far longer than the test, so only SIGTERM can end the wait
    fake_tool(bin_dir, "nvidia-smi", {NVIDIA_SMI_ARGS: "nvidia_smi_1x_rtx_4090.csv"})
    env = agent_env(
        bin_dir,
        GPUX_URL=platform.url,
        GPUX_AGENT_TOKEN=TOKEN,
        GPUX_LOGIN_USER="gpux",
        GPUX_AUTHORIZED_KEYS=str(tmp_path / "authorized_keys"),
        GPUX_INTERVAL="3600",
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "gpux_agent", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        platform.wait_for("GET", "/api/v1/agent/handovers/")

        # when
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()

    # then
    assert agent.returncode == 0, stderr
    assert "stopped" in stderr
    assert [path for method, path in platform.paths() if method == "POST"] == [
        "/api/v1/agent/inventory/",
        "/api/v1/agent/heartbeats/",
    ]


@pytest.mark.parametrize(
    ("url", "extra", "message"),
    [
        ("http://gpux.example.cn", {}, "clear text"),
        ("https://gpux.example.cn", {"GPUX_AGENT_TOKEN": ""}, "no agent token"),
        ("https://gpux.example.cn", {"GPUX_LOGIN_USER": "root"}, "must never get root"),
        ("https://gpux.example.cn", {"GPUX_LOGIN_USER": ""}, "no login user"),
    ],
)
def test_unsafe_or_incomplete_configuration_exits_2(bin_dir, tmp_path, url, extra, message):
    env = agent_env(
        bin_dir,
        GPUX_URL=url,
        GPUX_AGENT_TOKEN=TOKEN,
        GPUX_LOGIN_USER="gpux",
        GPUX_AUTHORIZED_KEYS=str(tmp_path / "authorized_keys"),
    )
    env.update(extra)

    result = run_agent(["once"], env)

    assert result.returncode == 2
    assert message in result.stderr


def test_a_bad_number_in_the_environment_is_a_usage_error(bin_dir):
    result = run_agent(["run"], agent_env(bin_dir, GPUX_INTERVAL="a minute"))

    assert result.returncode == 2
    assert "invalid float value: 'a minute'" in result.stderr


def test_a_token_file_wins_over_the_environment(bin_dir, tmp_path, platform):
    fake_tool(bin_dir, "nvidia-smi", {NVIDIA_SMI_ARGS: "nvidia_smi_1x_rtx_4090.csv"})
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    env = agent_env(
        bin_dir, GPUX_URL=platform.url, GPUX_AGENT_TOKEN="stale", GPUX_AUTHORIZED_KEYS=str(tmp_path / "authorized_keys")
    )

    result = run_agent(["once", "--token-file", str(token_file), "--login-user", "gpux"], env)

    assert result.returncode == 0, result.stderr
    assert platform.requests[0].headers["Authorization"] == f"Agent {TOKEN}"
