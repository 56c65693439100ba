"""One status pipeline for every model with a lifecycle (bookings, listings, bids, voucher programs and
applications, payouts, statements), in the manner of django-oscar's ``pipeline`` / ``available_statuses()``.

The model states its allowed transitions (``TRANSITIONS``: status → the statuses it may become); services change a
status only through ``advance`` on a row they hold ``FOR UPDATE``; templates and serializers ask the model what it
may become (``available_statuses`` / ``can_become``) instead of re-deriving it from the status. Recording the
change (an audit event, a history row) stays with the caller: this module imports no app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy

from marketplace.core.exceptions import Conflict


class StatusPipeline:
    """Mixin for a model with a ``status`` field and a ``TRANSITIONS`` map (every status a key, final ones empty)."""

    TRANSITIONS: ClassVar[Mapping[str, frozenset[str]]] = {}

    def available_statuses(self) -> frozenset[str]:
        """The statuses this object may move to from its current one (empty when final)."""
        return self.TRANSITIONS.get(self.status, frozenset())

    def can_become(self, status: str) -> bool:
        return status in self.available_statuses()

    @classmethod
    def statuses_leading_to(cls, status: str) -> list[str]:
        """Every status from which ``status`` may be reached in one step (for sweeps: "all that may close")."""
        return [source for source, targets in cls.TRANSITIONS.items() if status in targets]


def advance(locked: models.Model, to: str, **fields) -> str:
    """Move ``locked`` to status ``to``, with ``fields`` written in the same conditional UPDATE, and return the
    status it left. ``locked`` must be a row the caller's transaction holds ``FOR UPDATE``.

    Sets ``updated_at`` when the model has it, and every written field on ``locked``. Raises ``Conflict`` (409,
    code ``invalid_transition``, naming both statuses in words) when the model's ``TRANSITIONS`` do not allow it,
    and ``Conflict`` (``concurrent_update``) when the row no longer has the status read (which the lock rules out:
    refusing beats writing a wrong history).
    """
    model = type(locked)
    from_status = locked.status
    if not locked.can_become(to):
        raise Conflict(
            _refusal(model, from_status, to),
            errors={"status": [gettext("Not allowed from %(status)s.") % {"status": _label(model, from_status)}]},
            code="invalid_transition",
        )
    changes = {"status": to, **fields}
    if any(field.name == "updated_at" for field in model._meta.concrete_fields):
        changes.setdefault("updated_at", timezone.now())
    if model._default_manager.filter(pk=locked.pk, status=from_status).update(**changes) != 1:
        raise Conflict(
            gettext("The %(thing)s changed meanwhile; try again.") % {"thing": _thing(model)}, code="concurrent_update"
        )
    for name, value in changes.items():
        setattr(locked, name, value)
    return from_status


def advance_many(model: type[models.Model], pks, from_status: str, to: str, **fields) -> list[int]:
    """Move every row of ``pks`` that has ``from_status`` to ``to`` (the bulk form of ``advance``, for batches
    whose rows the caller's transaction holds ``FOR UPDATE``), with ``fields`` in the same conditional UPDATE;
    returns the ids moved, ascending (rows in another status are left as they are). Raises ``Conflict``
    (``invalid_transition``) when the model's ``TRANSITIONS`` do not allow ``from_status`` → ``to``."""
    if to not in model.TRANSITIONS.get(from_status, frozenset()):
        raise Conflict(
            _refusal(model, from_status, to),
            code="invalid_transition",
        )
    rows = model._default_manager.filter(pk__in=list(pks), status=from_status)
    moved = sorted(rows.values_list("pk", flat=True))
    if moved:
        changes = {"status": to, **fields}
        if any(field.name == "updated_at" for field in model._meta.concrete_fields):
            changes.setdefault("updated_at", timezone.now())
        model._default_manager.filter(pk__in=moved, status=from_status).update(**changes)
    return moved


# What the models are called in messages (their verbose names are not translated; this module imports no app).
THINGS = {
    "booking": pgettext_lazy("in a sentence", "booking"),
    "bid": pgettext_lazy("in a sentence", "bid"),
    "listing": pgettext_lazy("in a sentence", "listing"),
    "voucher program": pgettext_lazy("in a sentence", "voucher program"),
    "voucher application": pgettext_lazy("in a sentence", "voucher application"),
    "payout": pgettext_lazy("in a sentence", "payout"),
    "reimbursement statement": pgettext_lazy("in a sentence", "reimbursement statement"),
    "reimbursement claim": pgettext_lazy("in a sentence", "reimbursement claim"),
    "model filing": pgettext_lazy("in a sentence", "model filing"),
}


def _thing(model) -> str:
    name = str(model._meta.verbose_name)
    return str(THINGS.get(name, name))


def _refusal(model, from_status: str, to: str) -> str:
    """'A confirmed booking cannot become held.' in the active language."""
    return gettext("A %(from)s %(thing)s cannot become %(to)s.") % {
        "thing": _thing(model),
        "from": _label(model, from_status),
        "to": _label(model, to),
    }


def _label(model, status: str) -> str:
    return str(dict(model._meta.get_field("status").flatchoices).get(status, status)).lower()
