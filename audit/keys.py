"""The Ed25519 key that signs tree heads, and the retired keys whose heads still verify.

- ``AUDIT_SIGNING_KEY`` (environment, read by the settings): PKCS#8 PEM (newlines as they are, or written ``\\n`` in
  one line) or base64 of the raw 32-byte seed. Production must set it; keep it secret and change it only by a
  rotation: the old key's public half moves to ``AUDIT_PREVIOUS_PUBLIC_KEYS`` (else the heads it signed fail
  ``verify_audit``).
- Unset with ``DEBUG`` (``make run``): a key generated once and kept in ``AUDIT_DEV_KEY_FILE`` (``.data/``), so the
  development log's heads stay verifiable across restarts.
- Unset without ``DEBUG``: ``ImproperlyConfigured`` when a head is signed or the public key is asked for (and
  ``manage.py check --deploy`` reports it).
- ``AUDIT_PREVIOUS_PUBLIC_KEYS``: the public halves of retired signing keys (a rotation, as Certificate Transparency
  logs publish theirs), so the heads they signed still verify. Each entry is a SubjectPublicKeyInfo PEM block or
  base64 of the raw 32-byte key; entries are separated by whitespace, newlines or commas (newlines may be written
  ``\\n``). A malformed entry is ``ImproperlyConfigured`` naming it (1-based) when the keys are read (and
  ``manage.py check --deploy`` reports it).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit import signing


def signing_key() -> Ed25519PrivateKey:
    """The private key of the tree heads (see the module docstring). Raises ``ImproperlyConfigured``."""
    return _key(settings.AUDIT_SIGNING_KEY or "", bool(settings.DEBUG), str(settings.AUDIT_DEV_KEY_FILE))


def public_key_pem() -> str:
    """SubjectPublicKeyInfo PEM of the signing key: what ``GET /api/v1/audit/public-key/`` serves."""
    return signing.public_key_pem(signing_key())


def key_id() -> str:
    """The signing key's id (hex SHA-256 of the raw public key), as every head carries it."""
    return signing.key_id(signing_key())


def verification_keys() -> dict[str, Ed25519PublicKey]:
    """Every key whose heads verify, by key id: the current signing key's public half first, then the previous keys
    (``AUDIT_PREVIOUS_PUBLIC_KEYS``) in the order configured, each once. A fresh dict: callers may change it.

    Raises ``ImproperlyConfigured`` when the signing key is unusable (as ``signing_key``) or a previous key is
    malformed (naming the entry)."""
    current = signing_key().public_key()
    found = {signing.key_id(current): current}
    for previous_id, previous in _previous_keys(_setting_text(settings.AUDIT_PREVIOUS_PUBLIC_KEYS)):
        found.setdefault(previous_id, previous)
    return found


def previous_public_keys() -> list[Ed25519PublicKey]:
    """The retired keys of ``AUDIT_PREVIOUS_PUBLIC_KEYS``, in the order configured, without reading the signing key.

    Raises ``ImproperlyConfigured`` naming the first malformed entry (1-based)."""
    return [key for _, key in _previous_keys(_setting_text(settings.AUDIT_PREVIOUS_PUBLIC_KEYS))]


@functools.lru_cache(maxsize=4)
def _key(configured: str, debug: bool, dev_key_file: str) -> Ed25519PrivateKey:
    if configured.strip():
        try:
            return signing.load_private_key(configured.replace("\\n", "\n"))
        except ValueError as error:
            raise ImproperlyConfigured(f"AUDIT_SIGNING_KEY is not a usable Ed25519 private key: {error}") from None
    if not debug:
        raise ImproperlyConfigured(
            "Set AUDIT_SIGNING_KEY (Ed25519 private key, PKCS#8 PEM or base64 of the 32-byte seed) to sign the "
            "audit log's tree heads."
        )
    return _dev_key(Path(dev_key_file))


def _dev_key(path: Path) -> Ed25519PrivateKey:
    """Read the development key, creating it first if needed. Two processes starting at once agree on one key: the
    file appears complete or not at all (written aside, then hard-linked into place, which fails if it exists)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(signing.private_key_pem(signing.generate_dev_key()))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won: use its key
        finally:
            temporary.unlink(missing_ok=True)
    return signing.load_private_key(path.read_text())


# A PEM block holds spaces and newlines itself: find the blocks first, then split what lies between them.
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_SEPARATORS = re.compile(r"[\s,]+")


def _setting_text(configured) -> str:
    # A list or tuple (handy in settings files and tests) reads as its items separated by commas.
    if isinstance(configured, list | tuple):
        return ",".join(str(item) for item in configured)
    return configured or ""


@functools.lru_cache(maxsize=4)
def _previous_keys(configured: str) -> tuple[tuple[str, Ed25519PublicKey], ...]:
    """The (key id, key) of each entry of ``AUDIT_PREVIOUS_PUBLIC_KEYS``. Raises ``ImproperlyConfigured``."""
    found = []
    for number, entry in enumerate(_entries(configured.replace("\\n", "\n")), start=1):
        if "-----" in entry and not _PEM_BLOCK.fullmatch(entry):
            raise ImproperlyConfigured(
                f"AUDIT_PREVIOUS_PUBLIC_KEYS entry {number} is not a complete PEM block (a -----BEGIN PUBLIC KEY----- "
                "line, the base64 body, and its -----END PUBLIC KEY----- line)"
            )
        try:
            key = signing.load_public_key(entry)
        except ValueError as error:
            raise ImproperlyConfigured(
                f"AUDIT_PREVIOUS_PUBLIC_KEYS entry {number} is not a usable Ed25519 public key: {error}"
            ) from None
        found.append((signing.key_id(key), key))
    return tuple(found)


def _entries(text: str) -> list[str]:
    """The entries of the setting, in order: whole PEM blocks, and the separator-delimited words between them."""
    entries: list[str] = []
    position = 0
    for block in _PEM_BLOCK.finditer(text):
        entries += _SEPARATORS.split(text[position : block.start()])
        entries.append(block.group(0))
        position = block.end()
    entries += _SEPARATORS.split(text[position:])
    return [entry for entry in entries if entry]
