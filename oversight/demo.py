"""Demo anomaly flags for ``manage.py seed_demo``: run the flag rules over the demo bookings (idempotent)."""

from oversight.flags import flags_compute


def seed(stdout=None) -> dict:
    created = flags_compute()
    if stdout:
        stdout.write(f"  audit: {created} new anomaly flags")
    return {}
