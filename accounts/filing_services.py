"""Model filings (备案): a startup records its filed models; platform staff or a city issuer checks each against the
public registry and marks it verified or rejected. Only verified filings, valid that day, satisfy a voucher
program's ``requires_model_filing`` and the domestic-tier bonus (``accounts.selectors.has_valid_model_filing``).
Every change is an audit event in the same transaction."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts import selectors
from accounts.models import ModelFiling, Organization
from audit.services import audit_record
from marketplace.core.exceptions import ApplicationError, NotFound
from marketplace.core.pipeline import advance

REVIEW_DECISIONS = {"verify": ModelFiling.Status.VERIFIED, "reject": ModelFiling.Status.REJECTED}


def _field_error(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, errors={field: [message]})


def model_filing_create(
    *,
    organization: Organization,
    filing_number: str,
    model_name: str,
    registered_on: dt.date,
    valid_until: dt.date | None = None,
    actor=None,
    ip: str | None = None,
) -> ModelFiling:
    """Record a filing of ``organization`` (a startup the actor acts for), pending a check. Raises
    ``ApplicationError`` 400 with field errors for a blank number or name, a registration date in the future, an
    end before the registration, or a filing number already recorded (by anyone)."""
    filing_number, model_name = filing_number.strip(), model_name.strip()
    if not filing_number:
        raise _field_error("filing_number", gettext("Enter the filing number."))
    if not model_name:
        raise _field_error("model_name", gettext("Enter the model's name."))
    if registered_on > timezone.localdate():
        raise _field_error("registered_on", gettext("The registration date cannot be in the future."))
    if valid_until is not None and valid_until < registered_on:
        raise _field_error("valid_until", gettext("The filing cannot end before it was registered."))
    try:
        with transaction.atomic():
            filing = ModelFiling.objects.create(
                organization=organization,
                filing_number=filing_number,
                model_name=model_name,
                registered_on=registered_on,
                valid_until=valid_until,
            )
            audit_record(
                action="model_filing.create",
                obj=filing,
                actor=actor,
                organization_id=organization.pk,
                ip=ip,
                data={"filing_number": filing_number, "model_name": model_name},
            )
    except IntegrityError:
        raise _field_error("filing_number", gettext("This filing number is already recorded.")) from None
    return filing


@transaction.atomic
def model_filing_review(*, filing_id: int, decision: str, actor, note: str = "", ip: str | None = None) -> ModelFiling:
    """Mark a filing verified (``decision="verify"``) or rejected (``"reject"``, a note required), by platform staff
    or an issuer member. Raises ``ApplicationError`` 403 for anyone else, ``NotFound``, 400 for a bad decision or a
    missing note, and ``Conflict`` 409 when the filing's status does not allow it (a rejected filing is final; a
    verified one may still be rejected later, when it is withdrawn from the registry)."""
    if not selectors.can_review_model_filings(actor):
        raise ApplicationError(
            gettext("Only platform staff and city issuers check model filings."), status=403, code="permission_denied"
        )
    if decision not in REVIEW_DECISIONS:
        raise _field_error("decision", gettext("Choose verify or reject."))
    note = note.strip()
    if decision == "reject" and not note:
        raise _field_error("note", gettext("Tell the startup why the filing was rejected."))
    filing = ModelFiling.objects.select_for_update(of=("self",)).filter(pk=filing_id).first()
    if filing is None:
        raise NotFound(gettext("No such model filing."))
    from_status = advance(
        filing, REVIEW_DECISIONS[decision], reviewed_by=actor, reviewed_at=timezone.now(), review_note=note
    )
    audit_record(
        action=f"model_filing.{filing.status}",
        obj=filing,
        actor=actor,
        organization_id=filing.organization_id,
        ip=ip,
        data={"from": from_status, "to": filing.status, **({"note": note} if note else {})},
    )
    return filing
