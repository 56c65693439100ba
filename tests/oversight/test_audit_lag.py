"""The audit-lag anomaly flag (oversight.audit_lag): raised when committed events wait too long for the sequencer,
one open at a time, again after review; the beat task runs it."""

from __future__ import annotations

import time

import pytest
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction

from audit.models import AuditEvent
from audit.services import audit_record
from oversight import tasks
from oversight.audit_lag import audit_lag_check
from oversight.flags import flag_review
from oversight.models import AnomalyFlag
from tests import factories
from tests.audit.helpers import sequence_all
from tests.helpers import run_concurrently

LAG = AnomalyFlag.Kind.AUDIT_LAG


def _waiting_event() -> None:
    audit_record(action="test.lag", object_type="test", data={})
    time.sleep(0.05)  # the event has waited longer than a threshold of 0 s


def _auditor():
    return factories.member_of(factories.PlatformFactory(), role="auditor")


@pytest.mark.django_db
def test_no_flag_while_the_sequencer_keeps_up(settings):
    # given an event younger than the threshold
    settings.AUDIT_SEQUENCER_LAG_SECONDS = 3600
    audit_record(action="test.lag", object_type="test", data={})
    # when / then
    assert audit_lag_check() is None
    assert not AnomalyFlag.objects.filter(kind=LAG).exists()


@pytest.mark.django_db
def test_a_lagging_sequencer_raises_one_open_flag(settings):
    # given
    settings.AUDIT_SEQUENCER_LAG_SECONDS = 0
    _waiting_event()
    # when
    flag = audit_lag_check()
    again = audit_lag_check()
    # then
    assert flag is not None and again is None
    stored = AnomalyFlag.objects.get(kind=LAG)
    assert stored.status == AnomalyFlag.Status.OPEN
    assert stored.booking_id is None and stored.voucher_id is None
    assert stored.details["pending_events"] >= 1
    assert stored.details["threshold_seconds"] == 0
    assert stored.details["oldest_seconds"] >= 0
    assert AuditEvent.objects.filter(action="audit.lag_flagged", object_id=str(stored.pk)).count() == 1


@pytest.mark.django_db
def test_after_review_the_next_lag_raises_a_new_flag(settings):
    # given a raised flag, dismissed by an auditor
    settings.AUDIT_SEQUENCER_LAG_SECONDS = 0
    _waiting_event()
    first = audit_lag_check()
    flag_review(flag=first, actor=_auditor(), decision=AnomalyFlag.Status.DISMISSED, note="sequencer restarted")
    # when the sequencer still lags
    second = audit_lag_check()
    # then
    assert second is not None and second.pk != first.pk
    assert AnomalyFlag.objects.filter(kind=LAG, status=AnomalyFlag.Status.OPEN).count() == 1
    assert AnomalyFlag.objects.filter(kind=LAG).count() == 2


@pytest.mark.django_db
def test_the_database_refuses_a_second_open_audit_lag_flag():
    AnomalyFlag.objects.create(kind=LAG)
    with pytest.raises(IntegrityError), transaction.atomic():
        AnomalyFlag.objects.create(kind=LAG)
    assert AnomalyFlag.objects.filter(kind=LAG).count() == 1


@pytest.mark.django_db
def test_other_kinds_still_need_a_booking_or_a_voucher():
    with pytest.raises(IntegrityError), transaction.atomic():
        AnomalyFlag.objects.create(kind=AnomalyFlag.Kind.RELATED_PARTY)


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_raise_one_flag(settings):
    # given
    settings.AUDIT_SEQUENCER_LAG_SECONDS = 0
    _waiting_event()
    # when four checks run at once
    results = run_concurrently(audit_lag_check, [()] * 4)
    # then exactly one raised the flag, and none failed
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(r is not None for r in results) == 1
    assert AnomalyFlag.objects.filter(kind=LAG).count() == 1


@pytest.mark.django_db(transaction=True)
def test_no_flag_once_the_sequencer_caught_up(settings):
    # given events the sequencer has appended
    settings.AUDIT_SEQUENCER_LAG_SECONDS = 0
    _waiting_event()
    sequence_all()
    # when / then
    assert audit_lag_check() is None
    assert not AnomalyFlag.objects.filter(kind=LAG).exists()


@pytest.mark.django_db
def test_the_beat_task_runs_the_check(settings):
    settings.AUDIT_SEQUENCER_LAG_SECONDS = 0
    _waiting_event()
    assert tasks.check_audit_lag.apply().get() is True
    assert tasks.check_audit_lag.apply().get() is False
    entry = django_settings.CELERY_BEAT_SCHEDULE["oversight-check-audit-lag"]
    assert entry["task"] == tasks.check_audit_lag.name
