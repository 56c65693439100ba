"""Signals of the listings app. Apps that depend on listings receive them (connected in their ``AppConfig.ready``);
listings itself imports none of them (ARCHITECTURE §1: dependencies point one way)."""

from __future__ import annotations

from django.dispatch import Signal

# A listing became active (approved, or resumed after a pause): sent once the transaction that activated it has
# committed, with ``listing_id``. ``orders`` matches open bids against it (continuous mode: "a new bid or listing
# triggers matching"). Receivers must not raise into the caller: the activation has already committed.
listing_activated = Signal()
