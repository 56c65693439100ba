"""Facts about the HTTP request that every app needs."""

from __future__ import annotations


def client_ip(request) -> str | None:
    """The peer's address (``REMOTE_ADDR``), for audit events and throttles; ``None`` when unknown. Behind a proxy,
    gunicorn's ``--forwarded-allow-ips`` puts the client's address there (Django's own headers are not trusted)."""
    return request.META.get("REMOTE_ADDR") or None
