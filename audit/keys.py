"""The Ed25519 key that signs tree heads.

- ``AUDIT_SIGNING_KEY`` (environment, read by the settings): PKCS#8 PEM (newlines as they are, or written ``\\n`` in
  one line) or base64 of the raw 32-byte seed. Production must set it; keep it secret and never change it without
  publishing the new public key (heads signed by another key fail ``verify_audit``).
- Unset with ``DEBUG`` (``make run``): a key generated once and kept in ``AUDIT_DEV_KEY_FILE`` (``.data/``), so the
  development log's heads stay verifiable across restarts.
- Unset without ``DEBUG``: ``ImproperlyConfigured`` when a head is signed or the public key is asked for (and
  ``manage.py check --deploy`` reports it).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
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
