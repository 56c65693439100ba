"""A buyer organization's SSH public keys: ed25519, RSA ≥ 3072 bits and ECDSA accepted; options, line breaks,
short RSA keys and malformed bodies refused with a 400 naming ``public_key``; scoped to the organization."""

import base64

import pytest

from accounts.keys import parse_public_key
from accounts.models import SshPublicKey
from audit.models import AuditEvent
from tests import factories
from tests.agent.helpers import _wire, ecdsa_key, ed25519_key, rsa_key

pytestmark = pytest.mark.django_db
URL = "/api/v1/ssh-keys/"


@pytest.mark.parametrize(
    ("key", "key_type", "bits"),
    [
        (ed25519_key(1), "ssh-ed25519", 256),
        (rsa_key(3072), "ssh-rsa", 3072),
        (rsa_key(4096), "ssh-rsa", 4096),
        (ecdsa_key("nistp256", 32), "ecdsa-sha2-nistp256", 256),
        (ecdsa_key("nistp384", 48), "ecdsa-sha2-nistp384", 384),
        (ecdsa_key("nistp521", 66), "ecdsa-sha2-nistp521", 521),
    ],
)
def test_accepted_keys_are_stored_without_their_comment(startup_client, startup, key, key_type, bits):
    # when
    response = startup_client.post(URL, {"name": "laptop", "public_key": key}, format="json")

    # then
    assert response.status_code == 201, response.json()
    stored = SshPublicKey.objects.get(organization=startup)
    assert (stored.key_type, stored.bits) == (key_type, bits)
    assert stored.public_key == " ".join(key.split()[:2])
    assert stored.fingerprint.startswith("SHA256:") and len(stored.fingerprint) == 50
    assert AuditEvent.objects.filter(action="accounts.ssh_key_added", organization_id=startup.pk).count() == 1


def _blob(*fields):
    return base64.b64encode(_wire(*fields)).decode()


@pytest.mark.parametrize(
    "key",
    [
        rsa_key(2048),
        rsa_key(3071),
        f'command="rm -rf /" {ed25519_key(1)}',
        f"no-pty {ed25519_key(1)}",
        ed25519_key(1) + "\nssh-ed25519 AAAA second",
        ed25519_key(1) + "\r",
        "ssh-dss " + _blob(b"ssh-dss", b"x"),
        "ssh-ed25519",
        "ssh-ed25519 !!!notbase64",
        "ssh-ed25519 " + _blob(b"ssh-ed25519", b"\x01" * 31),
        "ssh-ed25519 " + _blob(b"ssh-rsa", b"\x01\x00\x01", b"\x01" * 400),
        "ssh-rsa " + _blob(b"ssh-rsa", b"\x01\x00\x01"),
        "ecdsa-sha2-nistp256 " + _blob(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"\x07" * 64),
        "ecdsa-sha2-nistp256 " + _blob(b"ecdsa-sha2-nistp256", b"nistp256", b"\x02" + b"\x07" * 32),
        "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\xffssh").decode(),
        "",
        "x" * 20000,
    ],
)
def test_refused_keys_are_a_400_on_public_key_and_write_nothing(startup_client, key):
    response = startup_client.post(URL, {"name": "k", "public_key": key}, format="json")
    assert response.status_code == 400, response.json()
    assert "public_key" in response.json()["errors"]
    assert not SshPublicKey.objects.exists()
    assert not AuditEvent.objects.filter(action="accounts.ssh_key_added").exists()


def test_a_key_twice_is_409(startup_client):
    key = ed25519_key(3)
    assert startup_client.post(URL, {"public_key": key}, format="json").status_code == 201
    again = startup_client.post(URL, {"public_key": key.replace("buyer@laptop", "other comment")}, format="json")
    assert again.status_code == 409
    assert SshPublicKey.objects.count() == 1


def test_name_defaults_to_the_comment(startup_client):
    response = startup_client.post(URL, {"public_key": ed25519_key(4, comment="alice@box")}, format="json")
    assert response.json()["name"] == "alice@box"


def test_keys_are_listed_and_deleted_for_the_own_organization_only(startup_client, startup):
    # given
    own = startup_client.post(URL, {"public_key": ed25519_key(5)}, format="json").json()
    other_org = factories.StartupFactory()
    other = SshPublicKey.objects.create(
        organization=other_org, name="o", key_type="ssh-ed25519", public_key="ssh-ed25519 AAAA", fingerprint="SHA256:x"
    )

    # when
    listed = startup_client.get(URL).json()
    foreign_delete = startup_client.delete(f"{URL}{other.pk}/")
    own_delete = startup_client.delete(f"{URL}{own['id']}/")

    # then
    assert [k["id"] for k in listed["results"]] == [own["id"]]
    assert foreign_delete.status_code == 404
    assert own_delete.status_code == 204
    assert list(SshPublicKey.objects.values_list("pk", flat=True)) == [other.pk]
    assert AuditEvent.objects.filter(action="accounts.ssh_key_deleted").count() == 1


def test_providers_have_no_buyer_keys(provider_client):
    assert provider_client.post(URL, {"public_key": ed25519_key(1)}, format="json").status_code == 403


def test_the_parser_matches_the_agents_checks():
    from gpux_agent.access import InvalidKey, normalise_key

    for key in (ed25519_key(9), rsa_key(3072), ecdsa_key()):
        assert parse_public_key(key).public_key == normalise_key(key)
    for bad in (rsa_key(2048), f"no-pty {ed25519_key(1)}"):
        with pytest.raises(InvalidKey):
            normalise_key(bad)
        with pytest.raises(ValueError, match=r"\w"):
            parse_public_key(bad)
