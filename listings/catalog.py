"""The accelerator catalog: vendor figures for the chips the exchange lists.

``bf16_tflops`` is dense BF16 (no sparsity) per chip, so price per PFLOP-hour compares chips fairly.
``export_controlled`` marks chips under US export controls (a provenance declaration and review are required before
a cluster of them is listed). Loaded by migration ``0002_accelerator_catalog`` and refreshed by the demo seeder.
"""

from decimal import Decimal

# slug, name, vendor, memory GB, dense BF16 TFLOPS, domestic, export_controlled
ACCELERATORS = [
    ("h100-sxm", "H100 SXM", "NVIDIA", 80, Decimal("989.0"), False, True),
    ("h200", "H200", "NVIDIA", 141, Decimal("989.0"), False, True),
    ("h800", "H800", "NVIDIA", 80, Decimal("989.0"), False, True),
    ("h20", "H20", "NVIDIA", 96, Decimal("148.0"), False, True),
    ("a100-80g", "A100 80G", "NVIDIA", 80, Decimal("312.0"), False, True),
    ("a800", "A800", "NVIDIA", 80, Decimal("312.0"), False, True),
    ("l40s", "L40S", "NVIDIA", 48, Decimal("362.0"), False, True),
    ("rtx-4090", "RTX 4090", "NVIDIA", 24, Decimal("165.2"), False, True),
    ("rtx-4090d", "RTX 4090D", "NVIDIA", 24, Decimal("147.0"), False, False),
    ("ascend-910b", "Ascend 910B", "Huawei", 64, Decimal("320.0"), True, False),
    ("ascend-910c", "Ascend 910C", "Huawei", 128, Decimal("780.0"), True, False),
    ("mlu370", "Cambricon MLU370-X8", "Cambricon", 48, Decimal("96.0"), True, False),
    ("mlu590", "Cambricon MLU590", "Cambricon", 80, Decimal("314.0"), True, False),
]


def load_catalog(accelerator_model) -> int:
    """Create or update every catalog row on ``accelerator_model`` (the real or a migration's historical model)."""
    for slug, name, vendor, memory_gb, tflops, domestic, controlled in ACCELERATORS:
        accelerator_model.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "vendor": vendor,
                "memory_gb": memory_gb,
                "bf16_tflops": tflops,
                "domestic": domestic,
                "export_controlled": controlled,
            },
        )
    return len(ACCELERATORS)
