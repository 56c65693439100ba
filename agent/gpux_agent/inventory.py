"""What accelerators this node has, read from the vendor's own tool.

Two tools are understood, each by a pure parser from the command's text output to dataclasses:

- NVIDIA: ``nvidia-smi --query-gpu=<NVIDIA_QUERY_FIELDS> --format=csv,noheader,nounits`` (one CSV line per GPU).
- Huawei Ascend: ``npu-smi info`` (the box-drawing summary table) and, for serial numbers,
  ``npu-smi info -t board -i <NPU id>`` (``Key : Value`` lines).

Every parser refuses output it does not fully understand by raising :class:`InventoryError` with the 1-based line
number and what was wrong: the platform compares this inventory with what the provider declared, so a silently
misread column would be worse than no report at all.

Health vocabulary (``GpuInfo.health``): ``ok``, ``warning``, ``alarm``, ``critical``. Ascend's ``Health`` column is
mapped one to one; nvidia-smi's query has no health column, so an NVIDIA GPU is ``ok`` when the tool reached it and
``critical`` when a field reads ``[GPU is lost]``, ``[GPU requires reset]`` or ``[Unknown Error]``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

log = logging.getLogger(__name__)

NVIDIA_QUERY_FIELDS = (
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
NVIDIA_SMI_ARGS = (f"--query-gpu={','.join(NVIDIA_QUERY_FIELDS)}", "--format=csv,noheader,nounits")
NPU_SMI_INFO_ARGS = ("info",)
COMMAND_TIMEOUT_S = 30.0

HEALTH_OK = "ok"
HEALTH_CRITICAL = "critical"
# npu-smi's Health column, word for word, to the agent's vocabulary.
ASCEND_HEALTH = {"OK": "ok", "Warning": "warning", "Alarm": "alarm", "Critical": "critical"}

# nvidia-smi writes these instead of a value; the first set means "this GPU cannot tell", the second "this GPU is
# broken". Anything else in brackets is a marker we do not know, and is refused rather than guessed at.
NVIDIA_NOT_AVAILABLE = frozenset({"[N/A]", "[Not Supported]", "[Insufficient Permissions]"})
NVIDIA_FAULT = frozenset({"[GPU is lost]", "[GPU requires reset]", "[Unknown Error]"})
# npu-smi writes these where it has no reading (e.g. the power of a second chip that shares its board's sensor).
ASCEND_NOT_AVAILABLE = frozenset({"NA", "-", "N/A"})

_UNSIGNED_INT = re.compile(r"\d+")
_UNSIGNED_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
_FRACTION = r"(\d+)\s*/\s*(\d+)"


class InventoryError(Exception):
    """The GPU tool is missing, failed, or printed something this agent refuses to interpret."""

    def __init__(self, message: str, *, line: int | None = None):
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class ToolFailed(InventoryError):
    """The GPU tool could not be run, timed out or exited non-zero."""


@dataclass(frozen=True)
class GpuInfo:
    """One accelerator. ``None`` wherever the tool says it has no reading (``[N/A]``, ``NA``, ``-``).

    ``uuid`` is always ``None`` for Ascend (``npu-smi info`` prints none); ``serial`` is the board's serial number
    (Ascend: shared by the chips of one board; absent on firmware whose ``-t board`` output has no serial line).
    """

    index: int
    model: str
    uuid: str | None
    serial: str | None
    memory_mib: int | None
    driver: str | None
    temperature_c: int | None
    utilisation_pct: int | None
    power_w: float | None
    health: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class NodeInventory:
    """A node and its accelerators; ``vendor`` is ``"nvidia"`` or ``"huawei"``."""

    hostname: str
    vendor: str
    gpus: tuple[GpuInfo, ...]

    def to_dict(self) -> dict:
        return {"hostname": self.hostname, "vendor": self.vendor, "gpus": [gpu.to_dict() for gpu in self.gpus]}


class AscendDevice(NamedTuple):
    """A chip row of ``npu-smi info`` with the NPU (board) id that ``npu-smi info -t board -i`` takes."""

    npu_id: int
    gpu: GpuInfo


class BoardInfo(NamedTuple):
    npu_id: int
    serial: str | None


# --- NVIDIA -------------------------------------------------------------------------------------------------------


def parse_nvidia_smi(text: str) -> tuple[GpuInfo, ...]:
    """Parse ``nvidia-smi --query-gpu=<NVIDIA_QUERY_FIELDS> --format=csv,noheader,nounits``.

    Blank lines are ignored. Raises InventoryError for empty output, a line without exactly one value per query
    field (truncated output, another query), a missing index or name, a non-numeric number (e.g. ``81559 MiB``
    from a run without ``nounits``), an unknown ``[...]`` marker, or an index listed twice.
    """
    gpus: list[GpuInfo] = []
    seen: set[int] = set()
    for line_no, line in _numbered_lines(text):
        gpu = _parse_nvidia_line(line, line_no)
        if gpu.index in seen:
            raise InventoryError(f"GPU index {gpu.index} is listed twice", line=line_no)
        seen.add(gpu.index)
        gpus.append(gpu)
    if not gpus:
        raise InventoryError("nvidia-smi printed nothing: no GPU listed (empty output)")
    return tuple(gpus)


def _parse_nvidia_line(line: str, line_no: int) -> GpuInfo:
    cells = [cell.strip() for cell in line.split(",")]
    if len(cells) != len(NVIDIA_QUERY_FIELDS):
        raise InventoryError(
            f"expected {len(NVIDIA_QUERY_FIELDS)} comma-separated values ({', '.join(NVIDIA_QUERY_FIELDS)}), "
            f"found {len(cells)}: {line[:120]!r}",
            line=line_no,
        )
    raw = dict(zip(NVIDIA_QUERY_FIELDS, cells, strict=True))
    faulty = any(value in NVIDIA_FAULT for value in cells)
    for field, value in raw.items():
        if value.startswith("[") and value not in NVIDIA_NOT_AVAILABLE | NVIDIA_FAULT:
            raise InventoryError(f"{field} is {value!r}, a marker this agent does not know", line=line_no)

    def text_field(field: str) -> str | None:
        value = raw[field]
        return None if value in NVIDIA_NOT_AVAILABLE | NVIDIA_FAULT or not value else value

    def number_field(field: str, kind: type[int] | type[float]) -> int | float | None:
        value = raw[field]
        if value in NVIDIA_NOT_AVAILABLE | NVIDIA_FAULT:
            return None
        return _number(value, kind, field, line_no, hint=" (was the command run without 'nounits'?)")

    index = raw["index"]
    if not _UNSIGNED_INT.fullmatch(index):
        raise InventoryError(f"index is {index!r}, expected a whole number", line=line_no)
    model = text_field("name")
    if model is None:
        raise InventoryError("name is missing", line=line_no)
    uuid = text_field("uuid")
    if uuid is not None and not uuid.startswith("GPU-"):
        raise InventoryError(f"uuid is {uuid!r}, expected 'GPU-…'", line=line_no)
    return GpuInfo(
        index=int(index),
        model=model,
        uuid=uuid,
        serial=text_field("serial"),
        memory_mib=number_field("memory.total", int),
        driver=text_field("driver_version"),
        temperature_c=number_field("temperature.gpu", int),
        utilisation_pct=number_field("utilization.gpu", int),
        power_w=number_field("power.draw", float),
        health=HEALTH_CRITICAL if faulty else HEALTH_OK,
    )


# --- Huawei Ascend ------------------------------------------------------------------------------------------------


_BANNER = re.compile(r"npu-smi\s+\S+\s+Version:\s*(?P<version>\S+)")
_NPU_VALUES = re.compile(rf"(?P<power>\S+)\s+(?P<temp>\S+)\s+{_FRACTION}")
_CHIP_VALUES_HBM = re.compile(rf"(?P<aicore>\S+)\s+{_FRACTION}\s+(?P<hbm_used>\d+)\s*/\s*(?P<hbm_total>\d+)")
_CHIP_VALUES_DDR = re.compile(r"(?P<aicore>\S+)\s+(?P<mem_used>\d+)\s*/\s*(?P<mem_total>\d+)")
_BUS_ID = re.compile(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]|NA")


@dataclass(frozen=True)
class _AscendLayout:
    """What the second header row says: the chip cell's columns and whether an HBM column follows."""

    chip_columns: int  # 1: "Chip"; 2: "Chip Device" (310P) or "Chip Phy-ID" (A3)
    has_hbm: bool
    driver: str | None


def parse_npu_smi_info(text: str) -> tuple[GpuInfo, ...]:
    """Parse ``npu-smi info``: one GpuInfo per chip row (see :func:`parse_npu_smi_devices`)."""
    return tuple(device.gpu for device in parse_npu_smi_devices(text))


def parse_npu_smi_devices(text: str) -> tuple[AscendDevice, ...]:
    """Parse the device table of ``npu-smi info`` into chips, each with the NPU id it belongs to.

    Layouts understood: Atlas A2 (``Chip`` | HBM-Usage, e.g. 910B3), Atlas A3 (``Chip Phy-ID``, two chips per NPU,
    each under its own NPU row) and 310P (``Chip Device``, no HBM column). ``index`` is the Phy-ID/Device column
    when there is one, else the NPU id. ``memory_mib`` is the HBM total (DDR total without an HBM column);
    ``utilisation_pct`` is AICore(%); ``driver`` is the banner's ``Version:``; ``serial`` and ``uuid`` are None
    (serials come from :func:`parse_npu_smi_board`). The process table after the device table is ignored.

    Raises InventoryError when the header is missing (garbage, empty output), a row has the wrong number of cells
    or a non-numeric value, an NPU row has no chip row, a row or the table is cut off (truncated output), a Health
    word is unknown, or two chips share an index.
    """
    lines = list(_numbered_lines(text))
    if not lines:
        raise InventoryError("npu-smi printed nothing (empty output)")
    layout, position = _read_ascend_header(lines)
    devices: list[AscendDevice] = []
    block: list[tuple[int, list[str]]] = []
    for line_no, line in lines[position:]:
        if line.startswith("+"):
            devices.extend(_parse_ascend_block(block, layout))
            block = []
            continue
        cells = _table_cells(line, line_no)
        if _is_process_header(cells):
            break
        block.append((line_no, cells))
    if block:
        raise InventoryError("the device table ends without its closing border (truncated output?)", line=block[-1][0])
    if not devices:
        raise InventoryError("npu-smi listed no NPU", line=lines[-1][0])
    _refuse_duplicate_indexes(devices)
    return tuple(devices)


def _read_ascend_header(lines: list[tuple[int, str]]) -> tuple[_AscendLayout, int]:
    """Find the two header rows; return the layout and the position of the first line after them."""
    driver = None
    for position, (line_no, line) in enumerate(lines):
        banner = _BANNER.search(line)
        if banner and driver is None:
            driver = banner.group("version")
        if not line.startswith("|"):
            continue
        cells = _table_cells(line, line_no)
        if len(cells) >= 2 and cells[0].split()[:2] == ["NPU", "Name"] and cells[1] == "Health":
            return _read_chip_header(lines, position + 1, driver), position + 2
    first_line_no, first_line = lines[0]
    raise InventoryError(
        f"not an npu-smi info table (no 'NPU Name | Health' header): {first_line[:80]!r}", line=first_line_no
    )


def _read_chip_header(lines: list[tuple[int, str]], position: int, driver: str | None) -> _AscendLayout:
    if position >= len(lines):
        raise InventoryError("the table ends after its first header row (truncated output?)", line=lines[-1][0])
    line_no, line = lines[position]
    cells = _table_cells(line, line_no)
    chip_columns = cells[0].split() if cells else []
    if len(cells) != 3 or chip_columns[:1] != ["Chip"] or len(chip_columns) > 2 or "AICore(%)" not in cells[2]:
        raise InventoryError(
            f"expected the 'Chip | Bus-Id | AICore(%) …' header row, found {line[:80]!r}", line=line_no
        )
    return _AscendLayout(chip_columns=len(chip_columns), has_hbm="HBM-Usage(MB)" in cells[2], driver=driver)


def _parse_ascend_block(block: list[tuple[int, list[str]]], layout: _AscendLayout) -> list[AscendDevice]:
    """One block between borders: an NPU row, then its chip rows."""
    if not block:
        return []
    (npu_line, npu_cells), chip_rows = block[0], block[1:]
    if not chip_rows:
        raise InventoryError("NPU row without a chip row below it", line=npu_line)
    npu_id, model, health, power, temperature = _parse_npu_row(npu_cells, npu_line)
    devices = []
    for chip_line, chip_cells in chip_rows:
        index, utilisation, memory = _parse_chip_row(chip_cells, chip_line, layout)
        gpu = GpuInfo(
            index=npu_id if index is None else index,
            model=model,
            uuid=None,
            serial=None,
            memory_mib=memory,
            driver=layout.driver,
            temperature_c=temperature,
            utilisation_pct=utilisation,
            power_w=power,
            health=health,
        )
        devices.append(AscendDevice(npu_id=npu_id, gpu=gpu))
    return devices


def _parse_npu_row(cells: list[str], line_no: int) -> tuple[int, str, str, float | None, int | None]:
    """``| <npu id> <name> | <health> | <power> <temp> <hugepages used> / <total> |``."""
    if len(cells) != 3:
        raise InventoryError(f"NPU row has {len(cells)} cells, expected 3 (NPU Name | Health | Power …)", line=line_no)
    identity = cells[0].split()
    if len(identity) != 2 or not _UNSIGNED_INT.fullmatch(identity[0]):
        raise InventoryError(f"expected '<NPU id> <name>', found {cells[0]!r}", line=line_no)
    if cells[1] not in ASCEND_HEALTH:
        raise InventoryError(f"Health is {cells[1]!r}, expected one of {', '.join(ASCEND_HEALTH)}", line=line_no)
    values = _NPU_VALUES.fullmatch(cells[2])
    if values is None:
        raise InventoryError(f"expected 'Power(W) Temp(C) Hugepages used / total', found {cells[2]!r}", line=line_no)
    power = _ascend_number(values.group("power"), float, "Power(W)", line_no)
    temperature = _ascend_number(values.group("temp"), int, "Temp(C)", line_no)
    return int(identity[0]), identity[1], ASCEND_HEALTH[cells[1]], power, temperature


def _parse_chip_row(cells: list[str], line_no: int, layout: _AscendLayout) -> tuple[int | None, int | None, int]:
    """``| <chip> [<phy-id|device>] | <bus id> | <aicore> <mem used> / <total> [<hbm used> / <total>] |``.

    Returns (index from the second chip column or None, AICore %, memory MiB).
    """
    if len(cells) != 3:
        raise InventoryError(f"chip row has {len(cells)} cells, expected 3 (Chip | Bus-Id | AICore …)", line=line_no)
    ids = cells[0].split()
    if len(ids) != layout.chip_columns or not all(_UNSIGNED_INT.fullmatch(value) for value in ids):
        raise InventoryError(f"expected {layout.chip_columns} chip number(s), found {cells[0]!r}", line=line_no)
    if not _BUS_ID.fullmatch(cells[1]):
        raise InventoryError(f"Bus-Id is {cells[1]!r}, expected 'dddd:bb:dd.f'", line=line_no)
    pattern = _CHIP_VALUES_HBM if layout.has_hbm else _CHIP_VALUES_DDR
    values = pattern.fullmatch(cells[2])
    if values is None:
        expected = "AICore(%) Memory used / total" + (" HBM used / total" if layout.has_hbm else "")
        raise InventoryError(f"expected '{expected}', found {cells[2]!r}", line=line_no)
    utilisation = _ascend_number(values.group("aicore"), int, "AICore(%)", line_no)
    memory = int(values.group("hbm_total") if layout.has_hbm else values.group("mem_total"))
    return (int(ids[1]) if len(ids) == 2 else None), utilisation, memory


def _is_process_header(cells: list[str]) -> bool:
    return len(cells) >= 2 and cells[0].split()[:2] == ["NPU", "Chip"] and cells[1] == "Process id"


def _refuse_duplicate_indexes(devices: list[AscendDevice]) -> None:
    seen: set[int] = set()
    for device in devices:
        if device.gpu.index in seen:
            raise InventoryError(
                f"two chips share index {device.gpu.index} (several chips per NPU without a Phy-ID/Device column)"
            )
        seen.add(device.gpu.index)


def parse_npu_smi_board(text: str) -> BoardInfo:
    """Parse ``npu-smi info -t board -i <NPU id>``: ``Key : Value`` lines.

    Returns the NPU id and the ``Serial Number`` (None when the line is absent, as on some 23.x firmware, or ``NA``).
    Raises InventoryError for a line without ``:``, a missing or non-numeric ``NPU ID``, or empty output.
    """
    fields: dict[str, str] = {}
    for line_no, line in _numbered_lines(text):
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            raise InventoryError(f"expected 'Key : Value', found {line.strip()[:80]!r}", line=line_no)
        fields.setdefault(key.strip(), value.strip())
    if not fields:
        raise InventoryError("npu-smi board query printed nothing (empty output)")
    npu_id = fields.get("NPU ID")
    if npu_id is None or not _UNSIGNED_INT.fullmatch(npu_id):
        raise InventoryError(f"board output has no numeric 'NPU ID' line (found {npu_id!r})")
    serial = fields.get("Serial Number")
    return BoardInfo(npu_id=int(npu_id), serial=None if serial in (None, "", *ASCEND_NOT_AVAILABLE) else serial)


# --- running the tools --------------------------------------------------------------------------------------------


Runner = Callable[..., subprocess.CompletedProcess]


def collect(
    runner: Runner = subprocess.run,
    *,
    which: Callable[[str], str | None] = shutil.which,
    hostname: str | None = None,
    timeout: float = COMMAND_TIMEOUT_S,
    serial_cache: dict[int, str | None] | None = None,
) -> NodeInventory:
    """Run whichever GPU tool is on PATH (nvidia-smi first) and return this node's inventory.

    For Ascend, each board's serial comes from ``npu-smi info -t board -i <id>``; a board query that fails (old
    firmware, missing permission) leaves that serial None with a warning, but malformed board output is refused.
    ``serial_cache`` (NPU id → serial), when given, is read before and filled after querying a board, so a loop
    queries each board once. Raises InventoryError when no tool is found, the tool fails or times out, or its
    output is refused.
    """
    host = hostname or socket.gethostname()
    nvidia_smi = which("nvidia-smi")
    if nvidia_smi:
        output = _run_tool(runner, [nvidia_smi, *NVIDIA_SMI_ARGS], timeout)
        return NodeInventory(hostname=host, vendor="nvidia", gpus=parse_nvidia_smi(output))
    npu_smi = which("npu-smi")
    if npu_smi:
        devices = parse_npu_smi_devices(_run_tool(runner, [npu_smi, *NPU_SMI_INFO_ARGS], timeout))
        serials = {} if serial_cache is None else serial_cache
        for npu_id in _unique_npu_ids(devices):
            if npu_id not in serials:
                serials[npu_id] = _board_serial(runner, npu_smi, npu_id, timeout)
        gpus = tuple(dataclasses.replace(device.gpu, serial=serials[device.npu_id]) for device in devices)
        return NodeInventory(hostname=host, vendor="huawei", gpus=gpus)
    raise InventoryError("neither nvidia-smi nor npu-smi found on PATH")


def _unique_npu_ids(devices: Sequence[AscendDevice]) -> list[int]:
    return sorted({device.npu_id for device in devices})


def _board_serial(runner: Runner, npu_smi: str, npu_id: int, timeout: float) -> str | None:
    try:
        output = _run_tool(runner, [npu_smi, "info", "-t", "board", "-i", str(npu_id)], timeout)
    except ToolFailed as exc:
        log.warning("no serial for NPU %s: %s", npu_id, exc)
        return None
    board = parse_npu_smi_board(output)
    if board.npu_id != npu_id:
        raise InventoryError(f"asked npu-smi for board {npu_id}, it answered for board {board.npu_id}")
    return board.serial


def _run_tool(runner: Runner, argv: list[str], timeout: float) -> str:
    """Run ``argv`` and return its stdout; raise ToolFailed when it cannot run, times out or exits non-zero."""
    command = " ".join(argv)
    try:
        completed = runner(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{command!r} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise ToolFailed(f"{command!r} could not be run: {exc}") from None
    if completed.returncode != 0:
        said = (completed.stderr or completed.stdout or "").strip()[:300]
        raise ToolFailed(f"{command!r} exited with status {completed.returncode}: {said}")
    return completed.stdout


# --- shared helpers -----------------------------------------------------------------------------------------------


def _numbered_lines(text: str):
    """Yield (1-based line number, line without trailing whitespace) for every non-blank line."""
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.rstrip()
        if stripped:
            yield line_no, stripped


def _table_cells(line: str, line_no: int) -> list[str]:
    """The stripped cells of a ``| a | b |`` row; a row that does not close with ``|`` was cut off."""
    if not line.startswith("|"):
        raise InventoryError(f"expected a table row or border, found {line[:80]!r}", line=line_no)
    if len(line) < 2 or not line.endswith("|"):
        raise InventoryError(f"row is cut off (truncated output?): {line[:80]!r}", line=line_no)
    return [cell.strip() for cell in line[1:-1].split("|")]


def _number(value: str, kind: type[int] | type[float], field: str, line_no: int, hint: str = "") -> int | float:
    pattern = _UNSIGNED_INT if kind is int else _UNSIGNED_DECIMAL
    if not pattern.fullmatch(value):
        raise InventoryError(f"{field} is {value!r}, expected a number{hint}", line=line_no)
    return kind(value)


def _ascend_number(value: str, kind: type[int] | type[float], field: str, line_no: int) -> int | float | None:
    return None if value in ASCEND_NOT_AVAILABLE else _number(value, kind, field, line_no)
