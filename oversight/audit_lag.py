"""The audit-lag anomaly (issue 24): committed audit events left outside the signed log too long.

``/healthz`` reports ``audit_sequencer: lagging`` and ``/metrics`` the lag itself; this raises a flag auditors see
among the anomaly flags. Beat runs ``oversight.check_audit_lag`` every minute; it raises an ``AUDIT_LAG`` flag when
the oldest committed event without a leaf has waited longer than ``AUDIT_SEQUENCER_LAG_SECONDS``. At most one such
flag is open at a time (a partial unique index decides, even against a concurrent run): while it is open, later
checks add nothing; once an auditor has reviewed it, the next lag raises a new one.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from audit import selectors as audit_selectors
from audit.services import audit_record
from oversight.models import AnomalyFlag


def audit_lag_check() -> AnomalyFlag | None:
    """Raise the open ``AUDIT_LAG`` flag when the sequencer lags; returns the new flag, or None (no lag, or a flag
    is open already)."""
    threshold = settings.AUDIT_SEQUENCER_LAG_SECONDS
    pending, lag = audit_selectors.sequencer_backlog()
    if lag <= threshold:
        return None
    if AnomalyFlag.objects.filter(kind=AnomalyFlag.Kind.AUDIT_LAG, status=AnomalyFlag.Status.OPEN).exists():
        return None
    try:
        with transaction.atomic():
            flag = AnomalyFlag.objects.create(
                kind=AnomalyFlag.Kind.AUDIT_LAG,
                details={"pending_events": pending, "oldest_seconds": round(lag, 1), "threshold_seconds": threshold},
            )
            audit_record(
                action="audit.lag_flagged",
                obj=flag,
                data={"pending_events": pending, "oldest_seconds": round(lag, 1), "threshold_seconds": threshold},
            )
    except IntegrityError:
        if AnomalyFlag.objects.filter(kind=AnomalyFlag.Kind.AUDIT_LAG, status=AnomalyFlag.Status.OPEN).exists():
            return None  # a concurrent check raised it first
        raise
    return flag
