"""Celery tasks of the bids market: thin wrappers around ``orders.bid_services`` (ids in, one service call), and
the receiver that enqueues matching when a listing becomes active."""

from __future__ import annotations

import logging

from celery import shared_task

from marketplace.core.tasks import db_task_options, send_now
from orders import bid_services

logger = logging.getLogger(__name__)

# One clearing at a time per worker slot; a run overlapping the next is harmless (bid locks + open checks) but
# wasteful, so the beat entry expires messages that wait longer than the period. 4.5 s: what the exact clearing of a
# small contended market needs to reach its proven optimum on 2 cores (bench/RESULTS.md, issue 25).
CLEAR_BUDGET_S = 4.5


@shared_task(name="orders.clear_bids", **db_task_options(soft_time_limit=120, time_limit=150))
def clear_bids(time_budget_s: float = CLEAR_BUDGET_S) -> dict[str, int]:
    """Batch clearing of the open bids (beat, every few minutes): re-plan, then book each assignment."""
    result = bid_services.bids_clear(time_budget_s=time_budget_s)
    logger.info(
        "clear_bids: %s open, %s planned, %s matched, surplus %s",
        result.open_bids,
        result.planned,
        result.matched,
        result.surplus,
    )
    return {"open_bids": result.open_bids, "planned": result.planned, "matched": result.matched}


@shared_task(name="orders.match_bid", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def match_bid(bid_id: int) -> bool:
    """Continuous matching of one bid (e.g. when a new listing opens); True when it matched."""
    return bid_services.bid_try_match(bid=bid_id) is not None


@shared_task(name="orders.match_listing", **db_task_options(soft_time_limit=120, time_limit=150))
def match_listing(listing_id: int) -> int:
    """Continuous matching of the open bids a newly active listing could serve; how many matched. Each match is
    its own transaction behind the bid lock and open check, so a retry or a concurrent clearing is harmless."""
    return bid_services.bids_match_listing(listing_id=listing_id)


def enqueue_listing_matching(listing_id: int) -> bool:
    """Send ``match_listing(listing_id)`` now over a connection that fails fast (no connect or publish retries);
    False, logged, when the broker is unreachable — the listing stays active and the periodic batch clearing
    (``orders.clear_bids``) matches its bids later."""
    return send_now(match_listing, listing_id, catch_up="the batch clearing will catch up")


def on_listing_activated(sender, *, listing_id: int, **kwargs) -> None:
    """Receiver of ``listings.signals.listing_activated`` (sent after the activation committed)."""
    enqueue_listing_matching(listing_id)
