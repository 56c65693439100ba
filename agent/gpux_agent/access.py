"""A booking's SSH public keys in an ``authorized_keys`` file: install at the booking's start, remove at its end.

Each installed line is rebuilt by the agent as ``<type> <base64> gpux-booking-<booking id>``: only the key type
and its base64 body are taken from the buyer, so options (``command=…``, ``from=…``) or a second line can never be
smuggled in; the marker comment lets removal delete exactly that booking's lines and nothing else.

Accepted keys: ssh-ed25519, ssh-rsa of at least 3072 bits, ecdsa-sha2-nistp256/384/521; the base64 body is
decoded and its wire format checked against the type.

The file is rewritten atomically (temp file in the same directory, fsync, ``os.replace``) with mode 0600 and the
previous owner (or the directory's owner for a new file, so sshd's StrictModes accepts it when the agent runs as
root), under an exclusive ``flock`` on the directory so two agent processes never interleave. The file and its
directory must not be symlinks: a buyer who had the account before could otherwise point them at another file.

Removal deletes only lines carrying the booking's marker; keys a buyer added by hand during the booking are not
the agent's to know. A provider should therefore point sshd at a file the login user cannot write
(``AuthorizedKeysFile /etc/ssh/gpux/%u``) and give that path to the agent.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

MARKER_PREFIX = "gpux-booking-"
MIN_RSA_BITS = 3072
MAX_KEY_LENGTH = 16 * 1024
FILE_MODE = 0o600
ECDSA_CURVES = {
    "ecdsa-sha2-nistp256": (b"nistp256", 32),
    "ecdsa-sha2-nistp384": (b"nistp384", 48),
    "ecdsa-sha2-nistp521": (b"nistp521", 66),
}
ALLOWED_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", *ECDSA_CURVES)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class AccessError(Exception):
    """The authorized_keys file cannot be changed safely (missing directory, symlink, I/O error)."""


class InvalidKey(AccessError):
    """A public key was refused: unknown type, bad base64, wrong wire format, too short, or injected text."""


def marker(booking_id: int) -> str:
    """The comment that tags a booking's lines, e.g. ``gpux-booking-42``."""
    if not isinstance(booking_id, int) or isinstance(booking_id, bool) or booking_id < 0:
        raise ValueError(f"booking id must be a non-negative integer, got {booking_id!r}")
    return f"{MARKER_PREFIX}{booking_id}"


def normalise_key(text: str) -> str:
    """Validate one OpenSSH public key line and return ``<type> <base64>`` (the comment is dropped).

    Raises InvalidKey for newlines or control characters, a leading options field or any type outside
    ALLOWED_KEY_TYPES, malformed base64, a body whose wire format does not match the type, or RSA under 3072 bits.
    """
    if not isinstance(text, str):
        raise InvalidKey(f"a key must be text, got {type(text).__name__}")
    if len(text) > MAX_KEY_LENGTH:
        raise InvalidKey(f"key is longer than {MAX_KEY_LENGTH} characters")
    if any(char in text for char in "\r\n\0") or not text.strip().isprintable():
        raise InvalidKey("key contains a line break or control character")
    fields = text.split()
    if not fields:
        raise InvalidKey("key is empty")
    if fields[0] not in ALLOWED_KEY_TYPES:
        # Also what an options prefix (command="…", from="…", no-pty …) looks like: refused, never interpreted.
        raise InvalidKey(f"key type {fields[0][:40]!r} is not one of {', '.join(ALLOWED_KEY_TYPES)}")
    if len(fields) < 2 or not _BASE64.fullmatch(fields[1]):
        raise InvalidKey(f"{fields[0]} key has no base64 body")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except binascii.Error as exc:
        raise InvalidKey(f"{fields[0]} key body is not valid base64: {exc}") from None
    _check_wire_format(fields[0], blob)
    return f"{fields[0]} {fields[1]}"


def install_keys(path: str | os.PathLike, booking_id: int, keys: Iterable[str]) -> int:
    """Make ``path`` hold exactly ``keys`` for ``booking_id`` (each tagged with its marker); return their count.

    Idempotent: the booking's previous lines are replaced, duplicates collapse, other lines stay as they were.
    Every key is validated before the file is touched. Raises InvalidKey (nothing written) or AccessError.
    """
    tag = marker(booking_id)
    lines = list(dict.fromkeys(f"{normalise_key(key)} {tag}" for key in keys))
    if not lines:
        raise InvalidKey(f"booking {booking_id} has no key to install")
    with _file_errors(path), _locked_directory(path):
        kept = [line for line in _read_lines(path) if not _is_tagged(line, tag)]
        _write_atomically(path, [*kept, *lines])
    return len(lines)


def remove_keys(path: str | os.PathLike, booking_id: int) -> int:
    """Delete the lines tagged with ``booking_id``'s marker from ``path``; return how many were deleted.

    A missing file holds no key: 0, nothing written. Raises AccessError.
    """
    tag = marker(booking_id)
    with _file_errors(path), _locked_directory(path):
        if not os.path.lexists(path):
            return 0
        lines = _read_lines(path)
        kept = [line for line in lines if not _is_tagged(line, tag)]
        if len(kept) != len(lines):
            _write_atomically(path, kept)
    return len(lines) - len(kept)


def booking_keys(path: str | os.PathLike, booking_id: int) -> list[str]:
    """The ``<type> <base64>`` keys currently installed for ``booking_id`` (empty when the file is missing)."""
    tag = marker(booking_id)
    if not os.path.lexists(path):
        return []
    return [" ".join(line.split()[:2]) for line in _read_lines(path) if _is_tagged(line, tag)]


# --- key wire format ----------------------------------------------------------------------------------------------


def _check_wire_format(key_type: str, blob: bytes) -> None:
    """The decoded body is SSH wire strings: the type again, then the type's fields and nothing more."""
    fields = _wire_strings(key_type, blob)
    if not fields or fields[0] != key_type.encode():
        raise InvalidKey(f"{key_type} key body does not start with its own type")
    if key_type == "ssh-ed25519":
        if len(fields) != 2 or len(fields[1]) != 32:
            raise InvalidKey("ssh-ed25519 key body must hold one 32-byte public key")
    elif key_type == "ssh-rsa":
        if len(fields) != 3:
            raise InvalidKey("ssh-rsa key body must hold an exponent and a modulus")
        bits = int.from_bytes(fields[2], "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise InvalidKey(f"ssh-rsa key has {bits} bits; at least {MIN_RSA_BITS} are required")
    else:
        curve, coordinate = ECDSA_CURVES[key_type]
        if len(fields) != 3 or fields[1] != curve:
            raise InvalidKey(f"{key_type} key body must name curve {curve.decode()} and hold one point")
        if len(fields[2]) != 1 + 2 * coordinate or fields[2][0] != 0x04:
            raise InvalidKey(f"{key_type} key point is not an uncompressed {curve.decode()} point")


def _wire_strings(key_type: str, blob: bytes) -> list[bytes]:
    strings, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise InvalidKey(f"{key_type} key body is truncated")
        length = int.from_bytes(blob[offset : offset + 4], "big")
        offset += 4
        if offset + length > len(blob):
            raise InvalidKey(f"{key_type} key body is truncated")
        strings.append(blob[offset : offset + length])
        offset += length
    return strings


# --- the file -----------------------------------------------------------------------------------------------------


def _is_tagged(line: str, tag: str) -> bool:
    # Exact last field, so booking 1's removal never touches booking 12's lines.
    fields = line.split()
    return len(fields) == 3 and fields[0] in ALLOWED_KEY_TYPES and fields[2] == tag


def _directory_of(path: str | os.PathLike) -> Path:
    directory = Path(path).parent
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        raise AccessError(f"directory {directory} does not exist: create it for the login user first") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise AccessError(f"{directory} is a symlink or not a directory: refusing to write keys through it")
    return directory


@contextlib.contextmanager
def _file_errors(path: str | os.PathLike) -> Iterator[None]:
    """Report the operating system's refusals (permissions, full disk …) as AccessError naming the file."""
    try:
        yield
    except OSError as exc:
        raise AccessError(f"cannot update {path}: {exc}") from None


@contextlib.contextmanager
def _locked_directory(path: str | os.PathLike) -> Iterator[None]:
    directory_fd = os.open(_directory_of(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(directory_fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(directory_fd)  # closing releases the lock


def _read_lines(path: str | os.PathLike) -> list[str]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AccessError(f"cannot read {path} (a symlink?): {exc}") from None
    with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read().splitlines()


def _write_atomically(path: str | os.PathLike, lines: list[str]) -> None:
    directory = _directory_of(path)
    owner = _owner_for(path, directory)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".authorized_keys.gpux-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            handle.write("".join(f"{line}\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _owner_for(path: str | os.PathLike, directory: Path) -> tuple[int, int] | None:
    """(uid, gid) the rewritten file must keep; None when the agent cannot change owners (not root)."""
    if os.geteuid() != 0:
        return None
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = os.lstat(directory)
    return info.st_uid, info.st_gid


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable: a crash right after must not bring the old file (and old keys) back.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
