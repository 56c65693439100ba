"""Parsing recorded nvidia-smi / npu-smi outputs, refusing malformed ones, and running the tools (``collect``)."""

import subprocess

import pytest
from gpux_agent.inventory import (
    NVIDIA_QUERY_FIELDS,
    NVIDIA_SMI_ARGS,
    BoardInfo,
    GpuInfo,
    InventoryError,
    NodeInventory,
    collect,
    parse_npu_smi_board,
    parse_npu_smi_devices,
    parse_npu_smi_info,
    parse_nvidia_smi,
)

from tests.agent.helpers import fixture_text

H100_UUID_0 = "GPU-6e1f3a52-0b6c-d8a4-2e6b-5f0c91a7d3e4"
NPU_2_HEALTH_OK = "| 2     910B3               | OK"


# --- nvidia-smi ---------------------------------------------------------------------------------------------------


def test_the_command_queries_exactly_the_documented_fields():
    assert NVIDIA_QUERY_FIELDS == (
        "index",
        "name",
        "uuid",
        "serial",
        "memory.total",
        "driver_version",
        "temperature.gpu",
        "utilization.gpu",
        "power.draw",
    )
    assert NVIDIA_SMI_ARGS == (
        "--query-gpu=index,name,uuid,serial,memory.total,driver_version,temperature.gpu,utilization.gpu,power.draw",
        "--format=csv,noheader,nounits",
    )


def test_eight_h100_are_parsed_value_for_value():
    # given / when
    gpus = parse_nvidia_smi(fixture_text("nvidia_smi_8x_h100_80gb_hbm3.csv"))

    # then
    assert [gpu.index for gpu in gpus] == list(range(8))
    assert gpus[0] == GpuInfo(
        index=0,
        model="NVIDIA H100 80GB HBM3",
        uuid=H100_UUID_0,
        serial="1654922049871",
        memory_mib=81559,
        driver="535.129.03",
        temperature_c=33,
        utilisation_pct=0,
        power_w=69.52,
        health="ok",
    )
    assert gpus[6].temperature_c == 36 and gpus[6].power_w == 72.46
    assert {gpu.model for gpu in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert len({gpu.serial for gpu in gpus}) == 8


def test_eight_a100_are_parsed_value_for_value():
    gpus = parse_nvidia_smi(fixture_text("nvidia_smi_8x_a100_sxm4_80gb.csv"))

    assert len(gpus) == 8
    assert gpus[3] == GpuInfo(
        index=3,
        model="NVIDIA A100-SXM4-80GB",
        uuid="GPU-e9c2b7a4-1f5d-0e83-7a6c-4d2b9e0f1c57",
        serial="1323221004802",
        memory_mib=81920,
        driver="525.147.05",
        temperature_c=32,
        utilisation_pct=98,
        power_w=306.52,
        health="ok",
    )


def test_a_4090_without_serial_reports_none_for_it():
    (gpu,) = parse_nvidia_smi(fixture_text("nvidia_smi_1x_rtx_4090.csv"))

    assert gpu.serial is None
    assert (gpu.model, gpu.memory_mib, gpu.driver, gpu.utilisation_pct, gpu.power_w) == (
        "NVIDIA GeForce RTX 4090",
        24564,
        "550.120",
        3,
        18.45,
    )


def test_not_available_markers_become_none_and_keep_the_gpu_healthy():
    line = f"0, NVIDIA H100 80GB HBM3, {H100_UUID_0}, [N/A], 81559, 535.129.03, [N/A], [Not Supported], [N/A]\n"

    (gpu,) = parse_nvidia_smi(line)

    assert (gpu.serial, gpu.temperature_c, gpu.utilisation_pct, gpu.power_w) == (None, None, None, None)
    assert gpu.memory_mib == 81559
    assert gpu.health == "ok"


def test_a_lost_gpu_is_critical():
    line = f"2, NVIDIA H100 80GB HBM3, {H100_UUID_0}, 1654922049871, 81559, 535.129.03, [GPU is lost], 0, 69.52"

    (gpu,) = parse_nvidia_smi(line)

    assert gpu.health == "critical"
    assert gpu.temperature_c is None
    assert gpu.index == 2


@pytest.mark.parametrize(
    ("fixture", "line", "fragment"),
    [
        ("nvidia_smi_truncated.csv", 6, "expected 9 comma-separated values"),
        ("nvidia_smi_wrong_columns.csv", 1, "found 4"),
        ("nvidia_smi_with_units.csv", 1, "memory.total is '81559 MiB', expected a number"),
        ("nvidia_smi_garbage.txt", 1, "found 1"),
    ],
)
def test_malformed_nvidia_output_is_refused_naming_the_line(fixture, line, fragment):
    with pytest.raises(InventoryError) as refused:
        parse_nvidia_smi(fixture_text(fixture))

    assert refused.value.line == line
    assert str(refused.value).startswith(f"line {line}: ")
    assert fragment in str(refused.value)


@pytest.mark.parametrize("text", ["", "\n\n", "   \n"])
def test_empty_nvidia_output_is_refused(text):
    with pytest.raises(InventoryError, match="empty output"):
        parse_nvidia_smi(text)


@pytest.mark.parametrize(
    ("cells", "fragment"),
    [
        ("x, NVIDIA H100 80GB HBM3, GPU-1, 1, 81559, 535, 30, 0, 70.1", "index is 'x'"),
        ("0, , GPU-1, 1, 81559, 535, 30, 0, 70.1", "name is missing"),
        ("0, NVIDIA H100 80GB HBM3, 1234, 1, 81559, 535, 30, 0, 70.1", "uuid is '1234'"),
        ("0, NVIDIA H100 80GB HBM3, GPU-1, 1, 81559, 535, 30, 0, 70.1.2", "power.draw is '70.1.2'"),
        ("0, NVIDIA H100 80GB HBM3, GPU-1, 1, 81559, 535, -5, 0, 70.1", "temperature.gpu is '-5'"),
        ("0, NVIDIA H100 80GB HBM3, GPU-1, 1, 81559, 535, [Bogus], 0, 70.1", "marker this agent does not know"),
    ],
)
def test_bad_nvidia_values_are_refused(cells, fragment):
    with pytest.raises(InventoryError, match=r"^line 1: ") as refused:
        parse_nvidia_smi(cells)

    assert fragment in str(refused.value)


def test_a_gpu_index_listed_twice_is_refused():
    line = fixture_text("nvidia_smi_1x_rtx_4090.csv")

    with pytest.raises(InventoryError, match=r"^line 2: GPU index 0 is listed twice"):
        parse_nvidia_smi(line + line)


# --- npu-smi ------------------------------------------------------------------------------------------------------


def test_eight_910b3_are_parsed_value_for_value():
    # given / when
    devices = parse_npu_smi_devices(fixture_text("npu_smi_info_8x_910b3.txt"))

    # then
    assert [device.npu_id for device in devices] == list(range(8))
    assert devices[0].gpu == GpuInfo(
        index=0,
        model="910B3",
        uuid=None,
        serial=None,
        memory_mib=65536,
        driver="24.1.rc1.b030",
        temperature_c=43,
        utilisation_pct=0,
        power_w=101.8,
        health="ok",
    )
    busy = devices[4].gpu
    assert (busy.index, busy.utilisation_pct, busy.temperature_c, busy.power_w) == (4, 87, 52, 298.6)
    assert parse_npu_smi_info(fixture_text("npu_smi_info_8x_910b3.txt")) == tuple(d.gpu for d in devices)


def test_a3_chips_take_their_phy_id_and_share_their_npu():
    devices = parse_npu_smi_devices(fixture_text("npu_smi_info_2x_ascend910_a3.txt"))

    assert [(device.npu_id, device.gpu.index) for device in devices] == [(0, 0), (0, 1), (1, 2), (1, 3)]
    assert [device.gpu.power_w for device in devices] == [162.8, None, 167.1, None]  # "-": no own sensor
    assert {device.gpu.driver for device in devices} == {"25.2.0"}


@pytest.mark.parametrize(("word", "health"), [("Warning", "warning"), ("Alarm", "alarm"), ("Critical", "critical")])
def test_ascend_health_words_are_mapped(word, health):
    text = fixture_text("npu_smi_info_8x_910b3.txt").replace(
        NPU_2_HEALTH_OK, f"| 2     910B3               | {word}", 1
    )

    gpus = parse_npu_smi_info(text)

    assert [gpu.health for gpu in gpus] == ["ok", "ok", health, "ok", "ok", "ok", "ok", "ok"]


def test_an_unknown_health_word_is_refused():
    text = fixture_text("npu_smi_info_8x_910b3.txt").replace(NPU_2_HEALTH_OK, "| 2     910B3               | Hmm", 1)

    with pytest.raises(InventoryError, match=r"^line 13: Health is 'Hmm'"):
        parse_npu_smi_info(text)


@pytest.mark.parametrize(
    ("fixture", "line", "fragment"),
    [
        ("npu_smi_info_truncated.txt", 23, "row is cut off"),
        ("npu_smi_info_wrong_columns.txt", 16, "NPU row has 2 cells, expected 3"),
        ("npu_smi_info_bad_number.txt", 29, "'0           0    / 0          33l5 / 65536'"),
        ("npu_smi_info_garbage.txt", 1, "not an npu-smi info table"),
    ],
)
def test_malformed_npu_output_is_refused_naming_the_line(fixture, line, fragment):
    with pytest.raises(InventoryError) as refused:
        parse_npu_smi_info(fixture_text(fixture))

    assert refused.value.line == line
    assert fragment in str(refused.value)


def test_output_cut_after_an_npu_row_is_refused():
    lines = fixture_text("npu_smi_info_8x_910b3.txt").splitlines()
    cut_after_npu_7 = "\n".join(lines[:28]) + "\n"  # line 28 is NPU 7's row; its chip row and border are gone

    with pytest.raises(InventoryError, match=r"^line 28: the device table ends without its closing border"):
        parse_npu_smi_info(cut_after_npu_7)


def test_an_npu_row_without_its_chip_row_is_refused():
    lines = fixture_text("npu_smi_info_8x_910b3.txt").splitlines()
    del lines[7]  # NPU 0's chip row

    with pytest.raises(InventoryError, match=r"^line 7: NPU row without a chip row"):
        parse_npu_smi_info("\n".join(lines))


@pytest.mark.parametrize("text", ["", "\n"])
def test_empty_npu_output_is_refused(text):
    with pytest.raises(InventoryError, match="empty output"):
        parse_npu_smi_info(text)


def test_a_header_without_devices_is_refused():
    header_only = "\n".join(fixture_text("npu_smi_info_8x_910b3.txt").splitlines()[:6])

    with pytest.raises(InventoryError, match="listed no NPU"):
        parse_npu_smi_info(header_only)


def test_board_output_gives_the_serial():
    assert parse_npu_smi_board(fixture_text("npu_smi_board_910b3.txt")) == BoardInfo(npu_id=4, serial="102401837462")


def test_board_output_without_a_serial_line_gives_none():
    assert parse_npu_smi_board(fixture_text("npu_smi_board_no_serial.txt")) == BoardInfo(npu_id=0, serial=None)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("NPU ID : 0\nthis is not a field\n", "line 2: expected 'Key : Value'"),
        ("Serial Number : 123\n", "no numeric 'NPU ID'"),
        ("", "empty output"),
    ],
)
def test_malformed_board_output_is_refused(text, fragment):
    with pytest.raises(InventoryError) as refused:
        parse_npu_smi_board(text)

    assert fragment in str(refused.value)


# --- collect ------------------------------------------------------------------------------------------------------


class FakeRunner:
    """Stands in for subprocess.run: answers by argv, records every call."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append((argv, kwargs))
        answer = self.answers[tuple(argv[1:])]
        if isinstance(answer, BaseException):
            raise answer
        returncode, stdout = answer
        return subprocess.CompletedProcess(argv, returncode, stdout=stdout, stderr="npu-smi: permission denied")


def tools(**found):
    return lambda name: found.get(name.replace("-", "_"))


def test_collect_runs_nvidia_smi_with_the_query_and_a_timeout():
    runner = FakeRunner({NVIDIA_SMI_ARGS: (0, fixture_text("nvidia_smi_8x_h100_80gb_hbm3.csv"))})

    inventory = collect(runner, which=tools(nvidia_smi="/opt/bin/nvidia-smi"), hostname="gpu-node-07", timeout=12)

    assert inventory.hostname == "gpu-node-07"
    assert inventory.vendor == "nvidia"
    assert len(inventory.gpus) == 8
    ((argv, kwargs),) = runner.calls
    assert argv == ["/opt/bin/nvidia-smi", *NVIDIA_SMI_ARGS]
    assert kwargs["timeout"] == 12 and kwargs["capture_output"] is True


def test_collect_reads_ascend_serials_board_by_board_and_tolerates_a_failing_board():
    board = fixture_text("npu_smi_board_910b3.txt")
    answers = {("info",): (0, fixture_text("npu_smi_info_8x_910b3.txt"))}
    for npu in range(8):
        answers[("info", "-t", "board", "-i", str(npu))] = (
            0,
            board.replace(": 4\n", f": {npu}\n", 1).replace("102401837462", f"1024018374{npu:02d}"),
        )
    answers[("info", "-t", "board", "-i", "6")] = (255, "")

    inventory = collect(FakeRunner(answers), which=tools(npu_smi="/usr/local/sbin/npu-smi"), hostname="ascend-01")

    assert inventory.vendor == "huawei"
    assert [gpu.serial for gpu in inventory.gpus] == [
        "102401837400",
        "102401837401",
        "102401837402",
        "102401837403",
        "102401837404",
        "102401837405",
        None,
        "102401837407",
    ]


def test_collect_queries_each_board_once_when_given_a_cache():
    answers = {("info",): (0, fixture_text("npu_smi_info_2x_ascend910_a3.txt"))}
    for npu in (0, 1):
        answers[("info", "-t", "board", "-i", str(npu))] = (0, f"NPU ID : {npu}\nSerial Number : 10250000000{npu}\n")
    runner, cache = FakeRunner(answers), {}

    first = collect(runner, which=tools(npu_smi="/usr/local/sbin/npu-smi"), hostname="a3", serial_cache=cache)
    second = collect(runner, which=tools(npu_smi="/usr/local/sbin/npu-smi"), hostname="a3", serial_cache=cache)

    assert first == second
    assert [gpu.serial for gpu in second.gpus] == ["102500000000", "102500000000", "102500000001", "102500000001"]
    assert [argv[1:] for argv, _ in runner.calls] == [
        ["info"],
        ["info", "-t", "board", "-i", "0"],
        ["info", "-t", "board", "-i", "1"],
        ["info"],
    ]


def test_collect_refuses_a_board_answer_for_another_npu():
    answers = {("info",): (0, fixture_text("npu_smi_info_2x_ascend910_a3.txt"))}
    for npu in (0, 1):
        answers[("info", "-t", "board", "-i", str(npu))] = (0, fixture_text("npu_smi_board_910b3.txt"))  # NPU ID 4

    with pytest.raises(InventoryError, match="asked npu-smi for board 0, it answered for board 4"):
        collect(FakeRunner(answers), which=tools(npu_smi="/usr/local/sbin/npu-smi"), hostname="a3")


def test_collect_without_any_tool_says_so():
    with pytest.raises(InventoryError) as refused:
        collect(FakeRunner({}), which=tools(), hostname="cpu-only")

    assert str(refused.value) == "neither nvidia-smi nor npu-smi found on PATH"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        ((9, ""), "exited with status 9: npu-smi: permission denied"),
        (subprocess.TimeoutExpired(["nvidia-smi"], 30), "did not answer within 30 s"),
        (PermissionError(13, "Permission denied"), "could not be run"),
    ],
)
def test_a_failing_tool_is_an_inventory_error(answer, fragment):
    with pytest.raises(InventoryError) as refused:
        collect(FakeRunner({NVIDIA_SMI_ARGS: answer}), which=tools(nvidia_smi="/usr/bin/nvidia-smi"), timeout=30)

    assert fragment in str(refused.value)


def test_an_inventory_serialises_to_plain_json_types():
    inventory = NodeInventory("n1", "nvidia", parse_nvidia_smi(fixture_text("nvidia_smi_1x_rtx_4090.csv")))

    assert inventory.to_dict() == {
        "hostname": "n1",
        "vendor": "nvidia",
        "gpus": [
            {
                "index": 0,
                "model": "NVIDIA GeForce RTX 4090",
                "uuid": "GPU-3f0a9c6e-d4b2-1e87-6c5a-0b9d2e4f7a13",
                "serial": None,
                "memory_mib": 24564,
                "driver": "550.120",
                "temperature_c": 41,
                "utilisation_pct": 3,
                "power_w": 18.45,
                "health": "ok",
            }
        ],
    }
