"""Recording a bank transfer into a startup's wallet: the API's and the deposits page's one write.

It checks the organization and writes an audit event, so it needs ``accounts`` and ``audit``; it lives beside the
web layer (``api.py``, ``views.py``), which may import them, and not in ``services.py``, which imports no other app.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext

from accounts.models import Organization
from audit.services import audit_record
from ledger.services import wallet_deposit
from marketplace.core.exceptions import ApplicationError

BANK_REFERENCE_PREFIX = "bank:"  # a deposit's journal reference is this and the transfer's bank reference


def deposit_record(*, organization_id: int, amount, reference: str, actor=None, ip: str | None = None):
    """Record a bank transfer into a startup's wallet, with its audit event, in one transaction.

    The ledger key is the bank reference, so one transfer is credited once: the same reference again returns the
    first transaction (``replayed`` True); with another amount or organization it is refused (409, ``reference``).
    Raises ``ApplicationError`` 400 (field ``organization``) unless the organization is a startup.
    """
    if not Organization.objects.filter(pk=organization_id, kind=Organization.Kind.STARTUP).exists():
        raise ApplicationError(
            gettext("Deposits go to startup wallets."),
            errors={"organization": [gettext("No startup organization with this id.")]},
        )
    with transaction.atomic():
        try:
            posted = wallet_deposit(
                organization_id=organization_id,
                amount=amount,
                idempotency_key=f"bank-transfer:{reference}",
                reference=f"{BANK_REFERENCE_PREFIX}{reference}",
            )
        except ApplicationError as exc:
            if exc.code != "idempotency_mismatch":
                raise
            raise ApplicationError(
                gettext("This bank transfer was already recorded with another amount or organization."),
                status=409,
                errors={"reference": [gettext("Already recorded.")]},
                code="conflict",
            ) from exc
        if posted.replayed:  # the same transfer recorded again: nothing changed, nothing to audit
            return posted
        audit_record(
            action="wallet.deposit",
            obj=posted,
            actor=actor,
            organization_id=organization_id,
            data={"amount": str(amount), "reference": reference},
            ip=ip,
        )
    return posted
