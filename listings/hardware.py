"""Reported hardware against declared hardware: pure functions (no database), for ``listings.agent_services``.

The rules, in the order they are reported:

- **vendor**: the agent's vendor (``nvidia`` from nvidia-smi, ``huawei`` from npu-smi) equals the accelerator's
  vendor, case-insensitively.
- **model**: the chip's *family token* is the first word of the catalog name holding a digit (``H100 SXM`` →
  ``H100``, ``Ascend 910B`` → ``910B``, ``RTX 4090D`` → ``4090D``). Every reported GPU's model, split into
  upper-case words at anything not a letter or digit (a lone letter is joined to the word before it:
  ``RTX 4090 D`` → ``4090D``), must hold that word exactly — or, when the family token ends with a letter, that
  word followed by digits only (``910B3`` is a ``910B``; ``H200`` is not an ``H20``).
- **memory**: each GPU's memory within ±10 % of the catalog's (nvidia-smi's MiB and npu-smi's MB read as MiB);
  a GPU without a reading is not compared.
- **gpus_per_node**: the node reports exactly the cluster's GPUs per node.
- **serials**: when the cluster declared serial numbers (provenance), every reported serial is one of them;
  and no reported serial may be declared or reported by another cluster (``foreign_serials``, found by the caller).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MEMORY_TOLERANCE = 0.10
_WORD = re.compile(r"[A-Z0-9]+")


@dataclass(frozen=True)
class Declared:
    accelerator_name: str
    vendor: str
    memory_gb: int
    gpus_per_node: int
    serials: frozenset[str]  # normalised (``normalise_serial``); empty: nothing declared


@dataclass(frozen=True)
class ReportedGpu:
    model: str
    memory_mib: int | None
    serial: str | None


def normalise_serial(serial: str) -> str:
    return "".join(str(serial).split()).upper()


def family_token(name: str) -> str | None:
    """The first word of ``name`` holding a digit, upper case (``None`` when there is none)."""
    return next((word for word in _words(name) if any(ch.isdigit() for ch in word)), None)


def _words(text: str) -> list[str]:
    words: list[str] = []
    for word in _WORD.findall(text.upper()):
        if len(word) == 1 and word.isalpha() and words:
            words[-1] += word  # "4090 D" is one model, "4090D"
        else:
            words.append(word)
    return words


def model_matches(accelerator_name: str, reported_model: str) -> bool:
    token = family_token(accelerator_name)
    if token is None:  # a catalog name without a model number: only the exact name matches
        return _words(accelerator_name) == _words(reported_model)
    for word in _words(reported_model):
        if word == token:
            return True
        if token[-1].isalpha() and word.startswith(token) and word[len(token) :].isdigit():
            return True
    return False


def memory_matches(memory_gb: int, memory_mib: int | None) -> bool:
    if memory_mib is None:
        return True
    return abs(memory_mib / 1024 - memory_gb) <= MEMORY_TOLERANCE * memory_gb


def compare(
    declared: Declared, vendor: str, gpus: list[ReportedGpu], foreign_serials: Iterable[str] = ()
) -> list[dict]:
    """The mismatches of a node's report against ``declared``: ``[{"field", "declared", "reported"}]``, empty when
    everything matches. ``foreign_serials``: reported serials another cluster declared or reported."""
    out: list[dict] = []
    if vendor.casefold() != declared.vendor.casefold():
        out.append({"field": "vendor", "declared": declared.vendor, "reported": vendor})
    wrong_models = sorted({gpu.model for gpu in gpus if not model_matches(declared.accelerator_name, gpu.model)})
    if wrong_models:
        out.append({"field": "model", "declared": declared.accelerator_name, "reported": ", ".join(wrong_models)})
    wrong_memory = sorted({gpu.memory_mib for gpu in gpus if not memory_matches(declared.memory_gb, gpu.memory_mib)})
    if wrong_memory:
        out.append(
            {
                "field": "memory",
                "declared": f"{declared.memory_gb} GB",
                "reported": ", ".join(f"{mib} MiB" for mib in wrong_memory),
            }
        )
    if len(gpus) != declared.gpus_per_node:
        out.append({"field": "gpus_per_node", "declared": declared.gpus_per_node, "reported": len(gpus)})
    reported = sorted({normalise_serial(gpu.serial) for gpu in gpus if gpu.serial})
    if declared.serials:
        undeclared = [serial for serial in reported if serial not in declared.serials]
        if undeclared:
            out.append({"field": "serials", "declared": len(declared.serials), "reported": ", ".join(undeclared)})
    foreign = sorted(set(foreign_serials))
    if foreign:
        out.append({"field": "serials_elsewhere", "declared": "", "reported": ", ".join(foreign)})
    return out
