"""Celery task of the audit log: a thin wrapper around ``audit.sequencer`` (beat runs it every few seconds)."""

from __future__ import annotations

from celery import shared_task

from audit.sequencer import audit_sequence


@shared_task(name="audit.sequence", ignore_result=True, acks_late=True, soft_time_limit=50, time_limit=60)
def sequence() -> int:
    """Append committed events to the log and sign a tree head; returns how many were appended (0 when another
    run was active: only one runs at a time, and the next beat tick picks up whatever is left)."""
    return audit_sequence().appended
