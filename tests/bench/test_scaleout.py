"""bench/scaleout.py: the pure helpers of ``bench/booking.py --scale-out`` (no database)."""

from __future__ import annotations

import math

import pytest

from bench.scaleout import (
    LOCK_SAMPLE_SQL,
    cost_in_reads,
    cpu_ms,
    lock_wait_summary,
    lock_wait_text,
    median_costs,
    port_for,
)


def test_clients_alternate_between_the_instances():
    ports = [8001, 8002]
    assert [port_for(i, ports) for i in range(5)] == [8001, 8002, 8001, 8002, 8001]
    assert port_for(7, [9000]) == 9000
    with pytest.raises(ValueError):
        port_for(0, [])


def test_lock_wait_summary_counts_samples_with_waiters_and_means_by_event():
    # given four samples: none waiting, one on a transaction id, three (two tuple, one transactionid), none
    samples = [{}, {"transactionid": 1}, {"tuple": 2, "transactionid": 1}, {}]
    # when
    summary = lock_wait_summary(samples)
    # then
    assert summary["samples"] == 4
    assert summary["share_waiting"] == 0.5
    assert summary["mean_waiting"] == 1.0
    assert summary["max_waiting"] == 3
    assert summary["by_event"] == {"transactionid": 0.5, "tuple": 0.5}


def test_lock_wait_summary_of_no_samples_is_zero():
    summary = lock_wait_summary([])
    assert summary == {"samples": 0, "share_waiting": 0.0, "mean_waiting": 0.0, "max_waiting": 0, "by_event": {}}
    assert lock_wait_text(summary) == "no samples"


def test_lock_wait_text_names_the_events():
    text = lock_wait_text(lock_wait_summary([{"advisory": 2}, {}]))
    assert text.startswith("2 samples, 50 % with a backend waiting on a lock, mean 1.00, max 2")
    assert "advisory 1.00" in text
    assert lock_wait_text(lock_wait_summary([{}, {}])).endswith("(mean by event: none)")


def test_cost_in_reads_is_web_and_postgres_cpu_of_a_booking_over_a_read():
    booking = {"web": 6.0, "postgres": 2.0, "clients": 5.0, "workers": 9.0}
    read = {"web": 3.0, "postgres": 1.0, "clients": 1.0}
    assert cpu_ms(booking) == 8.0  # clients and workers are not counted by default
    assert cpu_ms(booking, ("workers",)) == 9.0
    assert cost_in_reads(cpu_ms(booking), cpu_ms(read)) == 2.0
    assert math.isnan(cost_in_reads(8.0, 0.0))


def test_the_sample_query_counts_lock_waits_of_one_database_only():
    assert "wait_event_type = 'Lock'" in LOCK_SAMPLE_SQL and "datname = %s" in LOCK_SAMPLE_SQL


def test_booking_target_needs_both_the_read_cost_and_the_p99():
    from bench.scaleout import booking_target_met

    assert booking_target_met(2.0, 99.9)
    assert not booking_target_met(2.01, 50.0)
    assert not booking_target_met(1.5, 100.0)
    assert not booking_target_met(math.nan, 10.0)  # no reads measured: never "met"


def test_median_costs_per_client_count_across_rounds():
    # given three rounds at 16 clients and two at 64, in the order the bench runs them
    costs = [(16, 1.89), (16, 2.21), (16, 1.79), (64, 1.69), (64, 2.19)]
    # then the median per client count: the middle of three, the mean of the middle two of two
    assert median_costs(costs) == {16: 1.89, 64: pytest.approx(1.94)}
    assert list(median_costs([(64, 1.0), (16, 2.0)])) == [16, 64]
    assert median_costs([]) == {}
