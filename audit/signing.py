"""Signed tree heads: Ed25519 over the canonical JSON of ``{"root_hash", "timestamp", "tree_size"}``.

Needs only ``cryptography`` (no Django): the offline verifier imports it on an auditor's laptop.

- The signed bytes are ``canonical_json({"root_hash": <64 lowercase hex>, "timestamp": <the string exactly as the API
  returns it>, "tree_size": <int>})`` — exactly those three fields, so a head read from the API or an export can be
  re-checked byte for byte.
- A signature travels as standard base64 (with padding) of the 64-byte Ed25519 signature.
- ``key_id`` is the lowercase hex SHA-256 of the raw 32-byte Ed25519 public key (not of its PEM or DER wrapping), so
  any tool that has the key in any encoding computes the same id.
- Keys: a private key is read from PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``, what ``private_key_pem`` writes) or
  from base64 of the raw 32-byte seed (handy in an environment variable); a public key from SubjectPublicKeyInfo PEM
  (``-----BEGIN PUBLIC KEY-----``, what ``public_key_pem`` writes and ``GET /api/v1/audit/public-key/`` serves) or
  from base64 of the raw 32 bytes.
"""

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.canonical import canonical_json

__all__ = [
    "generate_dev_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_pem",
    "sign_tree_head",
    "tree_head_bytes",
    "verify_tree_head",
]

_ROOT_HASH_HEX = re.compile(r"[0-9a-f]{64}")
_RAW_KEY_SIZE = 32


def tree_head_bytes(tree_size: int, root_hash_hex: str, timestamp_str: str) -> bytes:
    """The exact bytes a tree head signature covers.

    Raises ``ValueError`` unless ``tree_size`` is an int >= 0, ``root_hash_hex`` is 64 lowercase hex characters and
    ``timestamp_str`` is a non-empty string (the signer must not silently normalise what the verifier reads).
    """
    if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size < 0:
        raise ValueError(f"tree_size must be an int >= 0, not {tree_size!r}")
    if not isinstance(root_hash_hex, str) or not _ROOT_HASH_HEX.fullmatch(root_hash_hex):
        raise ValueError("root_hash must be 64 lowercase hex characters")
    if not isinstance(timestamp_str, str) or not timestamp_str:
        raise ValueError("timestamp must be a non-empty string, as the API returns it")
    return canonical_json({"root_hash": root_hash_hex, "timestamp": timestamp_str, "tree_size": tree_size})


def sign_tree_head(private_key: Ed25519PrivateKey, tree_size: int, root_hash_hex: str, timestamp_str: str) -> str:
    """Sign a tree head; returns the base64 signature. Raises ``ValueError`` as ``tree_head_bytes`` does."""
    signature = private_key.sign(tree_head_bytes(tree_size, root_hash_hex, timestamp_str))
    return base64.b64encode(signature).decode("ascii")


def verify_tree_head(public_key: Ed25519PublicKey, head: dict) -> bool:
    """True when ``head["signature"]`` is ``public_key``'s signature of ``head``'s tree_size, root_hash and timestamp,
    and ``head["key_id"]``, when present, is that key's id. Never raises: anything malformed answers False."""
    if not isinstance(head, dict):
        return False
    if "key_id" in head and head["key_id"] != key_id(public_key):
        return False
    try:
        signed = tree_head_bytes(head.get("tree_size"), head.get("root_hash"), head.get("timestamp"))
        signature = base64.b64decode(head.get("signature"), validate=True)
        public_key.verify(signature, signed)
    except (ValueError, TypeError, binascii.Error, InvalidSignature):
        return False
    return True


def key_id(public_key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Lowercase hex SHA-256 of the raw 32-byte public key (a private key stands for its public half)."""
    raw = _public_half(public_key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def generate_dev_key() -> Ed25519PrivateKey:
    """A fresh random key, for development and tests only: production reads its key from the environment."""
    return Ed25519PrivateKey.generate()


def load_private_key(pem_or_b64_text: str | bytes) -> Ed25519PrivateKey:
    """Read an Ed25519 private key from PKCS#8 PEM or from base64 of the raw 32-byte seed.

    Raises ``ValueError`` when the text is neither, or holds another kind of key. PEM keys must not be encrypted.
    """
    text = _as_text(pem_or_b64_text)
    if "-----BEGIN" in text:
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError) as error:
            raise ValueError(f"not a readable unencrypted PEM private key: {error}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"the PEM holds a {type(key).__name__}, not an Ed25519 private key")
        return key
    return Ed25519PrivateKey.from_private_bytes(_raw_key_from_base64(text, "private"))


def load_public_key(pem_or_b64_text: str | bytes) -> Ed25519PublicKey:
    """Read an Ed25519 public key from SubjectPublicKeyInfo PEM or from base64 of the raw 32 bytes.

    Raises ``ValueError`` when the text is neither, or holds another kind of key.
    """
    text = _as_text(pem_or_b64_text)
    if "-----BEGIN" in text:
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, TypeError) as error:
            raise ValueError(f"not a readable PEM public key: {error}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"the PEM holds a {type(key).__name__}, not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(_raw_key_from_base64(text, "public"))


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """SubjectPublicKeyInfo PEM of the public key (of a private key's public half)."""
    pem = _public_half(key).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def private_key_pem(key: Ed25519PrivateKey) -> str:
    """Unencrypted PKCS#8 PEM of a private key (for a generated dev key kept on disk; guard the file)."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode("ascii")


def _public_half(key: Ed25519PublicKey | Ed25519PrivateKey) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def _as_text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii").strip()
        except UnicodeDecodeError:
            raise ValueError("a key must be ASCII text (PEM or base64)") from None
    if not isinstance(value, str):
        raise ValueError(f"a key must be text, not {type(value).__name__}")
    return value.strip()


def _raw_key_from_base64(text: str, kind: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"an Ed25519 {kind} key must be PEM or base64 of its raw 32 bytes") from None
    if len(raw) != _RAW_KEY_SIZE:
        raise ValueError(f"an Ed25519 {kind} key in base64 must decode to 32 bytes, not {len(raw)}")
    return raw
