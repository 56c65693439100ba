"""Celery tasks of resale: the periodic sweep that withdraws resale asks whose window has started or whose booking
can no longer be resold (``orders.resale_services.resale_asks_sweep``), and the continuous matching of open bids
against a newly opened resale ask (``orders.bid_services.bids_match_resale_ask``).

The sweep runs every minute (beat); it is idempotent (``SKIP LOCKED`` batches, conditional updates), so overlapping
or repeated runs change nothing twice. The matching task is enqueued by the receiver of
``orders.signals.resale_ask_opened`` (sent after the ask committed), fail-soft as for a listing going active: when
the broker is down the ask stays open and the periodic batch clearing (``orders.clear_bids``) matches it later."""

from __future__ import annotations

from celery import shared_task

from marketplace.core.tasks import db_task_options, send_now
from orders import bid_services, resale_services


@shared_task(name="orders.resale_sweep", **db_task_options(soft_time_limit=50, time_limit=55))
def resale_sweep() -> int:
    return resale_services.resale_asks_sweep()


@shared_task(name="orders.match_resale_ask", **db_task_options(soft_time_limit=120, time_limit=150))
def match_resale_ask(ask_id: int) -> int:
    """Continuous matching of the open bids a newly opened resale ask could serve; how many matched. Each match is
    its own transaction behind the bid lock and open check, so a retry or a concurrent clearing is harmless."""
    return bid_services.bids_match_resale_ask(ask_id=ask_id)


def enqueue_resale_ask_matching(ask_id: int) -> bool:
    """Send ``match_resale_ask(ask_id)`` now over a connection that fails fast; False, logged, when the broker is
    unreachable (the ask stays open; the batch clearing matches its bids later)."""
    return send_now(match_resale_ask, ask_id, catch_up="the batch clearing will catch up")


def on_resale_ask_opened(sender, *, ask_id: int, **kwargs) -> None:
    """Receiver of ``orders.signals.resale_ask_opened`` (sent after the ask committed)."""
    enqueue_resale_ask_matching(ask_id)
