from celery import shared_task


@shared_task(name="core.health")
def health(value: int) -> int:
    """Round-trip check: the worker answers ``value + 1``."""
    return value + 1
