"""A buyer organization's SSH public keys: validation, services (add, delete) and selectors.

Accepted: ``ssh-ed25519``; ``ssh-rsa`` of at least 3072 bits; ``ecdsa-sha2-nistp256/384/521``. A key is one line
``<type> <base64> [comment]``: a leading options field (``command="…"``, ``from=…``, ``no-pty`` …), a line break,
a control character, a body whose SSH wire format does not match its type, or a short RSA modulus is refused.
What is stored and handed to the agent is ``<type> <base64>`` only (the same checks as the agent's own
``gpux_agent.access.normalise_key``, which checks again before it writes a line).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext

from accounts.models import Organization, SshPublicKey
from audit.services import audit_record
from marketplace.core.exceptions import ApplicationError, Conflict, NotFound

MIN_RSA_BITS = 3072
MAX_KEY_LENGTH = 16 * 1024
MAX_KEYS_PER_ORGANIZATION = 50
ECDSA_CURVES = {
    "ecdsa-sha2-nistp256": (b"nistp256", 32),
    "ecdsa-sha2-nistp384": (b"nistp384", 48),
    "ecdsa-sha2-nistp521": (b"nistp521", 66),
}
ALLOWED_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", *ECDSA_CURVES)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class InvalidKey(ValueError):
    """The text is not an acceptable OpenSSH public key; the message says why."""


@dataclass(frozen=True)
class ParsedKey:
    key_type: str
    body: str  # base64
    bits: int | None
    comment: str

    @property
    def public_key(self) -> str:
        return f"{self.key_type} {self.body}"

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(base64.b64decode(self.body)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_public_key(text) -> ParsedKey:
    """Validate one OpenSSH public key line; raises ``InvalidKey`` with the reason."""
    if not isinstance(text, str):
        raise InvalidKey(gettext("A key must be text."))
    if len(text) > MAX_KEY_LENGTH:
        raise InvalidKey(gettext("The key is longer than %(count)s characters.") % {"count": MAX_KEY_LENGTH})
    if any(char in text for char in "\r\n\0") or not text.strip().isprintable():
        raise InvalidKey(gettext("The key contains a line break or a control character: paste one line."))
    text = text.strip()
    fields = text.split()
    if not fields:
        raise InvalidKey(gettext("The key is empty."))
    if fields[0] not in ALLOWED_KEY_TYPES:
        # Also what an options prefix (command="…", from="…", no-pty …) looks like: refused, never interpreted.
        raise InvalidKey(
            gettext("Key type %(type)s is not accepted (no options before the key): use one of %(types)s.")
            % {"type": repr(fields[0][:40]), "types": ", ".join(ALLOWED_KEY_TYPES)}
        )
    if len(fields) < 2 or not _BASE64.fullmatch(fields[1]):
        raise InvalidKey(gettext("The %(type)s key has no base64 body.") % {"type": fields[0]})
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except binascii.Error:
        raise InvalidKey(gettext("The %(type)s key body is not valid base64.") % {"type": fields[0]}) from None
    bits = _check_wire_format(fields[0], blob)
    return ParsedKey(key_type=fields[0], body=fields[1], bits=bits, comment=" ".join(fields[2:])[:200])


def _check_wire_format(key_type: str, blob: bytes) -> int | None:
    fields = _wire_strings(key_type, blob)
    if not fields or fields[0] != key_type.encode():
        raise InvalidKey(gettext("The %(type)s key body does not start with its own type.") % {"type": key_type})
    if key_type == "ssh-ed25519":
        if len(fields) != 2 or len(fields[1]) != 32:
            raise InvalidKey(gettext("An ssh-ed25519 key body holds one 32-byte public key."))
        return 256
    if key_type == "ssh-rsa":
        if len(fields) != 3:
            raise InvalidKey(gettext("An ssh-rsa key body holds an exponent and a modulus."))
        bits = int.from_bytes(fields[2], "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise InvalidKey(
                gettext("This ssh-rsa key has %(bits)s bits; at least %(minimum)s are required.")
                % {"bits": bits, "minimum": MIN_RSA_BITS}
            )
        return bits
    curve, coordinate = ECDSA_CURVES[key_type]
    if len(fields) != 3 or fields[1] != curve:
        raise InvalidKey(
            gettext("A %(type)s key body names curve %(curve)s and holds one point.")
            % {"type": key_type, "curve": curve.decode()}
        )
    if len(fields[2]) != 1 + 2 * coordinate or fields[2][0] != 0x04:
        raise InvalidKey(
            gettext("The %(type)s key point is not an uncompressed %(curve)s point.")
            % {"type": key_type, "curve": curve.decode()}
        )
    return coordinate * 8 if coordinate != 66 else 521


def _wire_strings(key_type: str, blob: bytes) -> list[bytes]:
    strings, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise InvalidKey(gettext("The %(type)s key body is truncated.") % {"type": key_type})
        length = int.from_bytes(blob[offset : offset + 4], "big")
        offset += 4
        if offset + length > len(blob):
            raise InvalidKey(gettext("The %(type)s key body is truncated.") % {"type": key_type})
        strings.append(blob[offset : offset + length])
        offset += length
    return strings


# --- selectors -----------------------------------------------------------------------------------------------------


def organization_ssh_keys(organization: Organization | int) -> QuerySet[SshPublicKey]:
    return SshPublicKey.objects.filter(organization=organization).select_related("created_by").order_by("name", "id")


def organization_public_keys(organization_id: int) -> list[str]:
    """The ``<type> <base64>`` lines of an organization's keys, in a stable order (what the agent installs)."""
    return list(
        SshPublicKey.objects.filter(organization_id=organization_id).order_by("id").values_list("public_key", flat=True)
    )


# --- services ------------------------------------------------------------------------------------------------------


@transaction.atomic
def ssh_key_add(*, organization: Organization, name: str, public_key: str, actor=None) -> SshPublicKey:
    """Add a validated key to ``organization``. ``name`` defaults to the key's comment. Raises ``ApplicationError``
    400 with field errors (invalid key, bad name), ``Conflict`` 409 (the key is already there, or the
    organization has ``MAX_KEYS_PER_ORGANIZATION``)."""
    try:
        parsed = parse_public_key(public_key)
    except InvalidKey as exc:
        raise ApplicationError(gettext("Invalid SSH key."), errors={"public_key": [str(exc)]}) from None
    name = (name or parsed.comment or parsed.key_type).strip()[:80]
    if not name.isprintable():
        raise ApplicationError(
            gettext("Invalid SSH key."), errors={"name": [gettext("Must not contain control characters.")]}
        )
    Organization.objects.select_for_update(no_key=True).filter(pk=organization.pk).first()  # serialise the count
    if SshPublicKey.objects.filter(organization=organization).count() >= MAX_KEYS_PER_ORGANIZATION:
        raise Conflict(
            gettext("An organization keeps at most %(count)s SSH keys; delete one first.")
            % {"count": MAX_KEYS_PER_ORGANIZATION}
        )
    try:
        with transaction.atomic():
            key = SshPublicKey.objects.create(
                organization=organization,
                name=name,
                key_type=parsed.key_type,
                bits=parsed.bits,
                public_key=parsed.public_key,
                fingerprint=parsed.fingerprint,
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
    except IntegrityError:
        raise Conflict(
            gettext("This key is already one of your organization's."),
            errors={"public_key": [gettext("Already added.")]},
        ) from None
    audit_record(
        action="accounts.ssh_key_added",
        obj=key,
        actor=actor,
        organization_id=organization.pk,
        data={"name": name, "type": parsed.key_type, "fingerprint": parsed.fingerprint},
    )
    return key


@transaction.atomic
def ssh_key_delete(*, organization: Organization, key_id: int, actor=None) -> None:
    """Delete one of ``organization``'s keys (``NotFound`` otherwise). Bookings already handed over keep it until
    they end: the agent removes a booking's keys at its end."""
    key = SshPublicKey.objects.filter(organization=organization, pk=key_id).first()
    if key is None:
        raise NotFound(gettext("No such SSH key."))
    key.delete()
    audit_record(
        action="accounts.ssh_key_deleted",
        object_type="accounts.sshpublickey",
        object_id=str(key_id),
        actor=actor,
        organization_id=organization.pk,
        data={"name": key.name, "fingerprint": key.fingerprint},
    )
