"""audit.signing: Ed25519 signed tree heads over the canonical JSON of exactly {root_hash, timestamp, tree_size}."""

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audit import signing

ROOT = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
TIMESTAMP = "2026-12-02T10:00:00Z"

# RFC 8032 §7.1, TEST 1: an Ed25519 seed and its public key.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


@pytest.fixture(scope="module")
def key():
    return signing.generate_dev_key()


def signed_head(key, tree_size=8, root_hash=ROOT, timestamp=TIMESTAMP) -> dict:
    return {
        "tree_size": tree_size,
        "root_hash": root_hash,
        "timestamp": timestamp,
        "signature": signing.sign_tree_head(key, tree_size, root_hash, timestamp),
        "key_id": signing.key_id(key.public_key()),
    }


def test_signed_bytes_are_the_canonical_json_of_exactly_three_fields():
    assert signing.tree_head_bytes(8, ROOT, TIMESTAMP) == (
        b'{"root_hash":"' + ROOT.encode() + b'","timestamp":"2026-12-02T10:00:00Z","tree_size":8}'
    )


@pytest.mark.parametrize(
    ("tree_size", "root_hash", "timestamp"),
    [
        (-1, ROOT, TIMESTAMP),
        (True, ROOT, TIMESTAMP),
        ("8", ROOT, TIMESTAMP),
        (8, ROOT.upper(), TIMESTAMP),  # the signer must not normalise what the verifier reads
        (8, ROOT[:-2], TIMESTAMP),
        (8, bytes.fromhex(ROOT), TIMESTAMP),
        (8, ROOT, ""),
        (8, ROOT, None),
    ],
)
def test_malformed_heads_cannot_be_signed(key, tree_size, root_hash, timestamp):
    with pytest.raises(ValueError):
        signing.sign_tree_head(key, tree_size, root_hash, timestamp)


def test_a_signed_head_verifies(key):
    head = signed_head(key)
    assert len(base64.b64decode(head["signature"], validate=True)) == 64
    assert signing.verify_tree_head(key.public_key(), head) is True


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 9},
        {"tree_size": 7},
        {"root_hash": "4" + ROOT[1:]},
        {"timestamp": "2026-12-02T10:00:01Z"},
        {"timestamp": "2026-12-02T10:00:00+00:00"},  # the same moment written otherwise is another head
        {"key_id": "0" * 64},
        {"signature": "not base64!"},
        {"signature": base64.b64encode(b"\x00" * 64).decode()},
        {"signature": None},
        {"root_hash": None},
    ],
)
def test_any_change_to_a_signed_head_fails(key, change):
    head = {**signed_head(key), **change}
    assert signing.verify_tree_head(key.public_key(), head) is False


def test_a_signature_from_another_key_fails(key):
    other = signing.generate_dev_key()
    forged = {**signed_head(other), "key_id": signing.key_id(key)}
    assert signing.verify_tree_head(key.public_key(), forged) is False
    assert signing.verify_tree_head(other.public_key(), signed_head(key)) is False


def test_a_head_without_key_id_is_checked_by_signature_alone(key):
    head = signed_head(key)
    del head["key_id"]
    assert signing.verify_tree_head(key.public_key(), head) is True
    assert signing.verify_tree_head(key.public_key(), "not a head") is False


def test_key_id_is_sha256_of_the_raw_public_key_and_stable_across_encodings():
    # given the RFC 8032 test key, read from its raw seed
    private = signing.load_private_key(base64.b64encode(RFC8032_SEED).decode())
    public_raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public_raw == RFC8032_PUBLIC
    expected = hashlib.sha256(RFC8032_PUBLIC).hexdigest()
    # then every encoding and either half of the key has the same id
    assert signing.key_id(private) == expected
    assert signing.key_id(private.public_key()) == expected
    assert signing.key_id(signing.load_public_key(signing.public_key_pem(private))) == expected
    assert signing.key_id(signing.load_public_key(base64.b64encode(RFC8032_PUBLIC))) == expected
    assert signing.key_id(signing.load_private_key(signing.private_key_pem(private))) == expected


def test_generated_keys_differ_and_round_trip_through_pem():
    first, second = signing.generate_dev_key(), signing.generate_dev_key()
    assert signing.key_id(first) != signing.key_id(second)
    reloaded = signing.load_private_key(signing.private_key_pem(first).encode())
    head = signed_head(reloaded)
    assert signing.verify_tree_head(signing.load_public_key(signing.public_key_pem(first)), head)
    assert signing.public_key_pem(first).startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a key",
        base64.b64encode(b"\x01" * 31).decode(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "武汉",
    ],
)
def test_unreadable_keys_are_refused(text):
    with pytest.raises(ValueError):
        signing.load_private_key(text)
    with pytest.raises(ValueError):
        signing.load_public_key(text)


def test_keys_of_another_algorithm_are_refused():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        ec_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValueError, match="not an Ed25519"):
        signing.load_private_key(private_pem)
    with pytest.raises(ValueError, match="not an Ed25519"):
        signing.load_public_key(public_pem)
