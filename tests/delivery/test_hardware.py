"""The pure comparison of reported with declared hardware (``listings.hardware``)."""

import pytest

from listings.hardware import Declared, ReportedGpu, compare, family_token, memory_matches, model_matches


@pytest.mark.parametrize(
    ("catalog_name", "reported", "matches"),
    [
        ("H100 SXM", "NVIDIA H100 80GB HBM3", True),
        ("H100 SXM", "NVIDIA H800", False),
        ("A100 80G", "NVIDIA A100-SXM4-80GB", True),
        ("A100 80G", "NVIDIA A800-SXM4-80GB", False),
        ("H20", "NVIDIA H20", True),
        ("H20", "NVIDIA H200", False),
        ("H200", "NVIDIA H20", False),
        ("Ascend 910B", "910B3", True),
        ("Ascend 910B", "910C", False),
        ("RTX 4090", "NVIDIA GeForce RTX 4090", True),
        ("RTX 4090", "NVIDIA GeForce RTX 4090 D", False),
        ("RTX 4090D", "NVIDIA GeForce RTX 4090 D", True),
        ("RTX 4090D", "NVIDIA GeForce RTX 4090", False),
        ("L40S", "NVIDIA L40S", True),
        ("L40S", "NVIDIA L40", False),
        ("Cambricon MLU370-X8", "MLU370-X8", True),
    ],
)
def test_model_matching_by_family_token(catalog_name, reported, matches):
    assert model_matches(catalog_name, reported) is matches


def test_family_token_is_the_first_word_with_a_digit():
    assert family_token("H100 SXM") == "H100"
    assert family_token("Ascend 910B") == "910B"
    assert family_token("Some Chip") is None


@pytest.mark.parametrize(
    ("gb", "mib", "ok"),
    [(80, 81559, True), (80, 81920, True), (80, 40960, False), (141, 143771, True), (80, None, True)],
)
def test_memory_within_ten_percent(gb, mib, ok):
    assert memory_matches(gb, mib) is ok


DECLARED = Declared("H100 SXM", "NVIDIA", 80, 2, frozenset({"S1", "S2"}))


def test_a_matching_node_has_no_mismatch():
    gpus = [ReportedGpu("NVIDIA H100 80GB HBM3", 81559, "s1"), ReportedGpu("NVIDIA H100 80GB HBM3", 81559, " S2 ")]
    assert compare(DECLARED, "nvidia", gpus) == []


def test_every_difference_is_named():
    gpus = [ReportedGpu("NVIDIA A100-SXM4-40GB", 40960, "S9")]
    fields = [m["field"] for m in compare(DECLARED, "huawei", gpus, foreign_serials=["S9"])]
    assert fields == ["vendor", "model", "memory", "gpus_per_node", "serials", "serials_elsewhere"]


def test_no_declared_serials_means_no_serial_comparison():
    declared = Declared("H100 SXM", "NVIDIA", 80, 1, frozenset())
    assert compare(declared, "nvidia", [ReportedGpu("NVIDIA H100 80GB HBM3", 81559, "ANY")]) == []
