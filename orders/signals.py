"""Signals of the orders app. Apps above orders receive them (connected in their ``AppConfig.ready``); orders
imports none of them (ARCHITECTURE §1: dependencies point one way)."""

from __future__ import annotations

from django.dispatch import Signal

# Voucher-paid time was resold above the price paid for it: sent by ``orders.resale_services.resale_buy`` after the
# purchase committed, with ``sale_id`` (the ``ResaleSale``), ``origin_booking_id`` (the voucher-paid booking first
# sold) and ``booking_id`` (the resale buyer's booking). ``oversight`` flags it. Receivers must not raise into the
# sender: the purchase has already committed.
resale_above_price = Signal()

# A resale ask was opened: sent by ``orders.resale_services.resale_ask_create`` after the ask committed, with
# ``ask_id``. ``orders`` itself receives it (``orders.resale_tasks``) to let open bids match the new ask.
resale_ask_opened = Signal()
