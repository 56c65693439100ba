"""Oversight's hand-written SQL: the anomaly rules that need window and ordered-set aggregates (a median per
accelerator and month) or a self-join over grouped voucher parts, which the ORM cannot say. Every value is a
parameter."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection

# The market median per (accelerator, month of start) over every live booking, not only voucher-paid ones.
# percentile_cont works in double precision: the median is cast back to numeric(12, 4) before any comparison.
_PRICE_SQL = """
WITH priced AS (
    SELECT b.id, b.price_per_gpu_hour AS price, c.accelerator_id,
           date_trunc('month', b.start AT TIME ZONE 'UTC') AS month
    FROM orders_booking b
    JOIN listings_listing l ON l.id = b.listing_id
    JOIN listings_cluster c ON c.id = l.cluster_id
    WHERE b.status <> ALL(%(dead)s)
), market AS (
    SELECT accelerator_id, month,
           (percentile_cont(0.5) WITHIN GROUP (ORDER BY price))::numeric(12, 4) AS median, count(*) AS n
    FROM priced GROUP BY accelerator_id, month
)
SELECT p.id, p.price, m.median, m.n, to_char(p.month, 'YYYY-MM')
FROM priced p JOIN market m USING (accelerator_id, month)
WHERE p.id = ANY(%(ids)s) AND p.price > m.median * %(multiple)s
"""


def prices_above_median(*, booking_ids: list[int], dead_statuses: list[str], multiple: Decimal) -> list[tuple]:
    """``(booking id, price, market median, bookings in the market, "YYYY-MM")`` of each of ``booking_ids`` priced
    above ``multiple`` × the median of live bookings (status not in ``dead_statuses``) of its accelerator and
    month."""
    with connection.cursor() as cursor:
        cursor.execute(_PRICE_SQL, {"dead": dead_statuses, "ids": booking_ids, "multiple": multiple})
        return cursor.fetchall()


# Pairs of live bookings of one buyer on one cluster where one ends exactly when the other starts, both paid by
# vouchers of the same program with a per-booking cap, whose voucher parts from that program add up above it.
_SPLIT_SQL = """
WITH parts AS (
    SELECT r.booking_id, v.program_id, sum(r.amount) AS amount
    FROM vouchers_redemption r JOIN vouchers_voucher v ON v.id = r.voucher_id
    WHERE r.status = ANY(%(live)s) GROUP BY r.booking_id, v.program_id
), capped AS (
    SELECT parts.*, p.per_booking_cap AS cap, b.buyer_id, l.cluster_id, b.start, b."end"
    FROM parts
    JOIN vouchers_voucherprogram p ON p.id = parts.program_id AND p.per_booking_cap IS NOT NULL
    JOIN orders_booking b ON b.id = parts.booking_id AND b.status <> ALL(%(dead)s)
    JOIN listings_listing l ON l.id = b.listing_id
)
SELECT a.booking_id, b.booking_id, a.program_id, a.cap, a.amount, b.amount
FROM capped a JOIN capped b
  ON b.buyer_id = a.buyer_id AND b.cluster_id = a.cluster_id AND b.program_id = a.program_id AND b.start = a."end"
WHERE a.amount + b.amount > a.cap AND (a.booking_id = ANY(%(ids)s) OR b.booking_id = ANY(%(ids)s))
"""


def split_pairs_over_cap(*, booking_ids: list[int], live_statuses: list[str], dead_statuses: list[str]) -> list[tuple]:
    """``(first booking, second booking, program, cap, first part, second part)`` of adjacent live bookings (see
    ``_SPLIT_SQL``) of which one is in ``booking_ids``."""
    with connection.cursor() as cursor:
        cursor.execute(_SPLIT_SQL, {"live": live_statuses, "dead": dead_statuses, "ids": booking_ids})
        return cursor.fetchall()
