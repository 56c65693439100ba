"""Business licence upload: PDF, PNG or JPEG by content (not by name), at most 5 MB, stored under MEDIA_ROOT; its
members and platform staff read it (the verification queue links it), nobody else; bad files write nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import Organization
from audit.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def org():
    return factories.StartupFactory(verification_status="pending")


def upload(client, org, content: bytes, name="licence.pdf"):
    return client.post(
        f"/api/v1/organizations/{org.pk}/licence/", {"file": SimpleUploadedFile(name, content)}, format="multipart"
    )


def stored_files(media) -> list:
    return [path for path in media.rglob("*") if path.is_file()]


@pytest.mark.parametrize(
    "content, name, content_type",
    [(PDF, "licence.pdf", "application/pdf"), (PNG, "scan.pdf", "image/png"), (JPEG, "photo", "image/jpeg")],
)
def test_a_member_uploads_and_staff_read_it(client_for, org, media, content, name, content_type):
    # given a pending startup's owner and platform staff
    owner = factories.member_of(org)
    staff = factories.member_of(factories.PlatformFactory())
    # when the owner uploads a file (its type read from its bytes, whatever its name)
    response = upload(client_for(owner), org, content, name)
    # then it is stored with the sniffed type and recorded
    assert response.status_code == 200, response.content
    assert response.json() == {"organization": org.pk, "content_type": content_type}
    org.refresh_from_db()
    assert org.business_licence_type == content_type and len(stored_files(media)) == 1
    assert AuditEvent.objects.filter(action="accounts.business_licence_uploaded", object_id=str(org.pk)).exists()
    # and staff fetch the same bytes, served with that type; the review list links it
    fetched = client_for(staff).get(f"/api/v1/organizations/{org.pk}/licence/")
    assert fetched.status_code == 200 and fetched["Content-Type"] == content_type
    assert b"".join(fetched.streaming_content) == content
    row = next(r for r in client_for(staff).get("/api/v1/organizations/").json()["results"] if r["id"] == org.pk)
    assert row["business_licence_url"] == f"/api/v1/organizations/{org.pk}/licence/"


@pytest.mark.parametrize(
    "content, name",
    [
        (b"<html><script>alert(1)</script></html>", "licence.pdf"),  # a PDF by name only
        (b"GIF89a" + b"\x00" * 32, "licence.gif"),
        (b"PK\x03\x04" + b"\x00" * 32, "licence.docx"),
        (b"", "empty.pdf"),
    ],
)
def test_other_types_are_refused_and_nothing_is_written(client_for, org, media, content, name):
    owner = factories.member_of(org)
    response = upload(client_for(owner), org, content, name)
    assert response.status_code == 400
    assert "file" in response.json()["errors"]
    org.refresh_from_db()
    assert not org.business_licence and not stored_files(media)


def test_a_file_over_5_mb_is_refused_and_nothing_is_written(client_for, org, media):
    owner = factories.member_of(org)
    response = upload(client_for(owner), org, PDF + b"\x00" * (5 * 1024 * 1024))
    assert response.status_code == 400
    assert "file" in response.json()["errors"]
    org.refresh_from_db()
    assert not org.business_licence and not stored_files(media)
    # and exactly 5 MB is fine
    assert upload(client_for(owner), org, PDF + b"\x00" * (5 * 1024 * 1024 - len(PDF))).status_code == 200


def test_no_file_is_a_400_naming_the_field(client_for, org):
    owner = factories.member_of(org)
    response = client_for(owner).post(f"/api/v1/organizations/{org.pk}/licence/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["errors"]


def test_others_can_neither_read_nor_replace_it(client_for, org, api, media):
    # given an uploaded licence
    owner = factories.member_of(org)
    assert upload(client_for(owner), org, PDF).status_code == 200
    path = f"/api/v1/organizations/{org.pk}/licence/"
    # then another organization's member, an issuer, an auditor and anonymous are refused
    for outsider in (
        factories.member_of(factories.StartupFactory()),
        factories.member_of(factories.IssuerFactory()),
        factories.member_of(factories.PlatformFactory(), role="auditor"),
    ):
        assert client_for(outsider).get(path).status_code == 404
        assert upload(client_for(outsider), org, PNG).status_code == 404
    assert api.get(path).status_code == 401
    # and platform staff may read but not replace it
    staff = factories.member_of(factories.PlatformFactory())
    assert upload(client_for(staff), org, PNG).status_code == 404
    org.refresh_from_db()
    assert org.business_licence_type == "application/pdf" and len(stored_files(media)) == 1


def test_a_replaced_licence_removes_the_old_file(client_for, org, media, django_capture_on_commit_callbacks):
    owner = factories.member_of(org)
    upload(client_for(owner), org, PDF)
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(client_for(owner), org, PNG).status_code == 200
    files = stored_files(media)
    assert len(files) == 1 and files[0].read_bytes() == PNG


def test_pages_upload_from_the_team_page_and_staff_see_it_in_the_queue(org):
    # given the owner on the team page
    owner = factories.member_of(org)
    client = Client()
    client.force_login(owner)
    assert 'name="file"' in client.get("/organization/").content.decode()
    # when they upload a JPEG / then it is stored
    response = client.post(f"/organization/{org.pk}/licence/", {"file": SimpleUploadedFile("x.jpg", JPEG)})
    assert response.status_code == 302
    assert Organization.objects.get(pk=org.pk).business_licence_type == "image/jpeg"
    # a bad file is refused with the reason
    bad = client.post(f"/organization/{org.pk}/licence/", {"file": SimpleUploadedFile("x.pdf", b"hello")})
    assert bad.status_code == 400 and "PDF, PNG or JPEG" in bad.content.decode()
    assert Organization.objects.get(pk=org.pk).business_licence_type == "image/jpeg"
    # staff see the link in the verification queue and download it; another startup's member cannot
    staff = Client()
    staff.force_login(factories.member_of(factories.PlatformFactory()))
    queue = staff.get("/staff/organizations/")
    assert f"/organization/{org.pk}/licence/" in queue.content.decode()
    assert staff.get(f"/organization/{org.pk}/licence/").status_code == 200
    other = Client()
    other.force_login(factories.member_of(factories.StartupFactory()))
    assert other.get(f"/organization/{org.pk}/licence/").status_code == 404
