"""Failed-login throttling shared by the login page and ``POST /api/v1/auth/token/``.

Failures are counted per (username, client IP) in the cache for ``LOGIN_FAILURE_WINDOW_SECONDS``; once
``LOGIN_FAILURE_LIMIT`` is reached every further attempt for that pair is refused (even with the right password)
until the window ends. Counting per pair, not per IP alone, keeps one office behind a NAT from locking each other out,
and counting per IP, not per username alone, stops a stranger from locking a known user out from everywhere.
Failures are also counted per IP over all usernames: at ``LOGIN_IP_FAILURE_LIMIT`` (higher) that address is refused
for every username until the window ends, so one address cannot try many accounts.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy
from redis.exceptions import RedisError
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)

BLOCKED_MESSAGE = gettext_lazy("Too many failed login attempts. Wait 15 minutes and try again, or reset your password.")


def _key(username: str, ip: str | None) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\0{ip or 'unknown'}".encode()).hexdigest()
    return f"login-failures:{digest}"


def _ip_key(ip: str | None) -> str:
    return f"login-failures-ip:{hashlib.sha256((ip or 'unknown').encode()).hexdigest()}"


def login_blocked(*, username: str, ip: str) -> bool:
    """True when this username has failed ``LOGIN_FAILURE_LIMIT`` times from this IP within the window, or this IP
    ``LOGIN_IP_FAILURE_LIMIT`` times over all usernames. With the cache (Redis) unreachable it answers False and
    logs: people can still log in during an outage."""
    try:
        counts = cache.get_many([_key(username, ip), _ip_key(ip)])
        return (
            int(counts.get(_key(username, ip), 0)) >= settings.LOGIN_FAILURE_LIMIT
            or int(counts.get(_ip_key(ip), 0)) >= settings.LOGIN_IP_FAILURE_LIMIT
        )
    except (RedisError, OSError) as exc:
        logger.warning("login throttle unavailable, not blocking: %s", exc)
        return False


def login_failed(*, username: str, ip: str) -> int:
    """Count one failure; return the count (0 when the cache is unreachable: logged, not raised). ``add`` then
    ``incr`` are atomic in Redis, so racing requests are all counted; the window starts at the first failure."""
    try:
        _count_failure(_ip_key(ip))
        return _count_failure(_key(username, ip))
    except (RedisError, OSError) as exc:
        logger.warning("login throttle unavailable, failure not counted: %s", exc)
        return 0


def _count_failure(key: str) -> int:
    if cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        return 1


def login_succeeded(*, username: str, ip: str) -> None:
    """A successful login clears the pair's failures."""
    try:
        cache.delete(_key(username, ip))
    except (RedisError, OSError) as exc:
        logger.warning("login throttle unavailable, failures not cleared: %s", exc)


class ResilientScopedRateThrottle(ScopedRateThrottle):
    """DRF's scoped rate throttle, except that an unreachable cache lets the request through (logged) instead of
    answering 500: a Redis outage must not stop people from signing in."""

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            logger.warning("rate throttle unavailable, allowing the request: %s", exc)
            return True
