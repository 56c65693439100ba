"""An organization's business licence (营业执照): upload (owners and members), read (its members and platform staff).

The type is decided by the file's first bytes, never by its name or the browser's content type: PDF (``%PDF-``),
PNG (its 8-byte signature) or JPEG (``FF D8 FF``); at most ``settings.BUSINESS_LICENCE_MAX_BYTES`` (5 MB). Files are
stored under ``MEDIA_ROOT`` (the default storage) with a random name and served only by a view that checks who asks.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import selectors
from accounts.models import Membership, Organization
from audit.services import audit_record
from marketplace.core.exceptions import ApplicationError, NotFound

SIGNATURES = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)
UPLOAD_ROLES = (Membership.Role.OWNER, Membership.Role.MEMBER)


def sniff(head: bytes) -> tuple[str, str] | None:
    """``(content type, extension)`` of a PDF, PNG or JPEG by its first bytes; None for anything else."""
    for magic, content_type, extension in SIGNATURES:
        if head.startswith(magic):
            return content_type, extension
    return None


# --- selectors -----------------------------------------------------------------------------------------------------


def licence_for(user, organization_id) -> Organization:
    """The organization whose licence ``user`` may read (any member of it, or platform staff) and that has one;
    ``NotFound`` otherwise, the same answer whether it exists or not."""
    org = Organization.objects.filter(pk=organization_id).first() if str(organization_id).isdigit() else None
    allowed = org is not None and (
        selectors.is_platform_staff(user) or Membership.objects.filter(user=user, organization=org).exists()
    )
    if not allowed or not org.business_licence:
        raise NotFound(_("No such business licence."))
    return org


def may_upload(user, organization_id) -> bool:
    """Owners and members of the organization upload its licence."""
    return bool(
        getattr(user, "is_authenticated", False)
        and Membership.objects.filter(user=user, organization_id=organization_id, role__in=UPLOAD_ROLES).exists()
    )


# --- services ------------------------------------------------------------------------------------------------------


@transaction.atomic
def business_licence_upload(*, organization_id: int, actor, file, ip: str | None = None) -> Organization:
    """Store ``file`` as the organization's business licence, replacing the previous one. Owners and members of the
    organization only (others: ``NotFound``); a file that is not a PDF, PNG or JPEG by content, empty, or larger
    than the limit: ``ApplicationError`` 400 with a ``file`` error, nothing written."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=actor, organization_id=organization_id, role__in=UPLOAD_ROLES)
        .first()
        if getattr(actor, "is_authenticated", False)
        else None
    )
    if membership is None:
        raise NotFound(_("No such organization."))
    limit = settings.BUSINESS_LICENCE_MAX_BYTES
    if file is None or not file.size:
        raise ApplicationError(_("Choose a file."), errors={"file": [_("Choose a file.")]})
    if file.size > limit:
        message = _("The file is larger than %(mb)s MB.") % {"mb": limit // (1024 * 1024)}
        raise ApplicationError(message, errors={"file": [message]})
    file.seek(0)
    kind = sniff(file.read(16))
    file.seek(0)
    if kind is None:
        message = _("Upload the licence as a PDF, PNG or JPEG file.")
        raise ApplicationError(message, errors={"file": [message]})
    content_type, extension = kind
    org = Organization.objects.select_for_update().get(pk=membership.organization_id)
    previous = org.business_licence.name if org.business_licence else ""
    org.business_licence.save(f"{secrets.token_hex(16)}.{extension}", file, save=False)
    org.business_licence_type = content_type
    org.save(update_fields=["business_licence", "business_licence_type", "updated_at"])
    if previous:
        transaction.on_commit(lambda: org.business_licence.storage.delete(previous))
    audit_record(
        action="accounts.business_licence_uploaded",
        obj=org,
        actor=actor,
        organization_id=org.pk,
        ip=ip,
        data={"content_type": content_type, "bytes": file.size},
    )
    return org
