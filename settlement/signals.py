"""Signals of the settlement app. Apps above settlement receive them (connected in their ``AppConfig.ready``);
settlement imports none of them (ARCHITECTURE §1: dependencies point one way)."""

from __future__ import annotations

from django.dispatch import Signal

# Bookings paid partly with vouchers were settled: sent by the settlement tasks after the settlement committed,
# with ``booking_ids``. ``oversight`` checks them for anomalies. Receivers must not raise into the sender: the
# settlement has already committed, and the periodic ``oversight.compute_flags`` catches up on anything missed.
voucher_bookings_settled = Signal()
