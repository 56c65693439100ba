"""Signals of the listings app. Apps that depend on listings receive them (connected in their ``AppConfig.ready``);
listings itself imports none of them (ARCHITECTURE §1: dependencies point one way)."""

from __future__ import annotations

from django.dispatch import Signal

# A listing became active (approved, or resumed after a pause): sent once the transaction that activated it has
# committed, with ``listing_id``. ``orders`` matches open bids against it (continuous mode: "a new bid or listing
# triggers matching"). Receivers must not raise into the caller: the activation has already committed.
listing_activated = Signal()

# A node's reported inventory differs from what its cluster declared (issue 20): sent once the report that found
# the mismatch has committed (only when its mismatches changed), with ``cluster_id``, ``node_id`` and
# ``mismatches``. ``oversight`` raises a hardware-mismatch anomaly flag for staff. Receivers must not raise into
# the agent's request: the report has already committed.
inventory_mismatched = Signal()
