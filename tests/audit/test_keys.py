"""The keys that verify tree heads: the current signing key and the retired ones of ``AUDIT_PREVIOUS_PUBLIC_KEYS``
(PEM or base64, separated by whitespace, newlines or commas), and a malformed entry named by its position."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ImproperlyConfigured

from audit import keys, signing
from audit.checks import audit_previous_public_keys


def raw_base64(private_key) -> str:
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


@pytest.fixture
def retired():
    """Three retired signing keys (their private halves: the tests compare key ids)."""
    return [signing.generate_dev_key() for _ in range(3)]


def test_without_previous_keys_only_the_signing_key_verifies(settings):
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = ""
    found = keys.verification_keys()
    assert list(found) == [keys.key_id()]
    assert signing.key_id(found[keys.key_id()]) == keys.key_id()


def test_a_pem_previous_key_is_read(settings, retired):
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = signing.public_key_pem(retired[0])
    assert list(keys.verification_keys()) == [keys.key_id(), signing.key_id(retired[0])]


def test_a_base64_previous_key_is_read(settings, retired):
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = f"  {raw_base64(retired[0])}\n"
    assert list(keys.verification_keys()) == [keys.key_id(), signing.key_id(retired[0])]


@pytest.mark.parametrize(
    "separate",
    [
        pytest.param(lambda entries: "\n".join(entries), id="newlines"),
        pytest.param(lambda entries: ", ".join(entries), id="commas"),
        pytest.param(lambda entries: ",".join(entries).replace("\n", "\\n"), id="escaped newlines in one line"),
        pytest.param(lambda entries: " \n\n ".join(entries) + "\n", id="blank lines"),
    ],
)
def test_several_previous_keys_in_pem_and_base64_are_read_in_order(settings, retired, separate):
    # given PEM, base64 and PEM again, separated in one of the documented ways
    entries = [signing.public_key_pem(retired[0]).strip(), raw_base64(retired[1]), signing.public_key_pem(retired[2])]
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = separate(entries)
    # when / then: the current key first, then the previous ones as configured
    assert list(keys.verification_keys()) == [keys.key_id(), *(signing.key_id(key) for key in retired)]


def test_a_key_listed_twice_or_the_current_key_listed_as_previous_appears_once(settings, retired):
    current_public = signing.public_key_pem(keys.signing_key())
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = [current_public, raw_base64(retired[0]), signing.public_key_pem(retired[0])]
    assert list(keys.verification_keys()) == [keys.key_id(), signing.key_id(retired[0])]


def test_the_signing_key_and_its_helpers_are_unchanged_by_previous_keys(settings, retired):
    before = (keys.key_id(), keys.public_key_pem())
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = signing.public_key_pem(retired[0])
    assert (keys.key_id(), keys.public_key_pem()) == before


@pytest.mark.parametrize(
    ("entries", "number", "words"),
    [
        pytest.param(["GOOD", "not-a-key"], 2, "not a usable Ed25519 public key", id="not base64"),
        pytest.param(["GOOD", "GOOD", base64.b64encode(b"x" * 31).decode()], 3, "32 bytes", id="31 bytes"),
        pytest.param(
            ["-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----"],
            1,
            "not a usable Ed25519 public key",
            id="broken PEM body",
        ),
        pytest.param(
            ["GOOD", "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"], 2, "not a complete PEM block", id="no END"
        ),
        pytest.param(["PRIVATE"], 1, "not a usable Ed25519 public key", id="a private key"),
    ],
)
def test_a_malformed_previous_key_is_improperly_configured_naming_its_entry(settings, retired, entries, number, words):
    good = raw_base64(retired[0])
    private = signing.private_key_pem(retired[1])
    text = "\n".join(good if e == "GOOD" else private if e == "PRIVATE" else e for e in entries)
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = text
    with pytest.raises(ImproperlyConfigured, match=rf"AUDIT_PREVIOUS_PUBLIC_KEYS entry {number} is .*{words}"):
        keys.verification_keys()
    with pytest.raises(ImproperlyConfigured, match=rf"entry {number} "):
        keys.previous_public_keys()


def test_check_deploy_reports_a_malformed_previous_key(settings, retired):
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = f"{raw_base64(retired[0])}, nonsense"
    [error] = audit_previous_public_keys()
    assert error.id == "audit.E002" and "entry 2" in error.msg
    settings.AUDIT_PREVIOUS_PUBLIC_KEYS = raw_base64(retired[0])
    assert audit_previous_public_keys() == []
