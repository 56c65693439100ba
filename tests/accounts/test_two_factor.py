"""Two-factor sign-in (TOTP): required for platform staff, issuers and auditors (set up at first sign-in, no page
without it), optional for others; the login throttle covers the code; the API's token login asks for it too.

These tests sign in through the login page (``Client.post``), not ``force_login`` (which the suite's conftest lets
skip both factors)."""

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import two_factor
from accounts.demo import DEMO_TOTP_KEY
from audit.models import AuditEvent
from tests import factories
from tests.helpers import totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_device_backoff(settings):
    # django-otp's own per-device back-off (1 s after a wrong code, doubling) comes on top of the login throttle
    # tested here; off, so a right code may follow a wrong one at once.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def staff_user():
    return factories.member_of(factories.PlatformFactory())


def with_device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", key=DEMO_TOTP_KEY, confirmed=True)


def password_login(user, ip="10.9.0.1") -> tuple[Client, object]:
    client = Client(REMOTE_ADDR=ip)
    response = client.post("/login/", {"username": user.username, "password": factories.PASSWORD})
    return client, response


@pytest.mark.parametrize(
    "make",
    [
        staff_user,
        lambda: factories.member_of(factories.IssuerFactory()),
        lambda: factories.member_of(factories.PlatformFactory(), role="auditor"),
    ],
    ids=["staff", "issuer", "auditor"],
)
def test_a_required_role_is_sent_to_set_up_and_reaches_nothing_else_until_it_has(make):
    # given a platform staff member, an issuer member or an auditor without a device
    user = make()
    # when they log in with the password
    client, response = password_login(user)
    # then they are sent to the set-up page, and every other page and the API refuse them
    assert response.status_code == 302 and response.url.startswith("/account/two-factor/?next=")
    home = client.get("/")
    assert home.status_code == 302 and home.url.startswith("/account/two-factor/")
    assert client.get("/account/tokens/").status_code == 302
    assert client.get("/api/v1/me/").status_code == 403
    # when they add the shown key to an app and type its code
    page = client.get("/account/two-factor/")
    assert page.status_code == 200
    device = page.context["new_device"]
    assert device.config_url.startswith("otpauth://totp/") and page.context["secret"].replace(" ", "") in (
        device.config_url
    )
    # and a QR code of that same address to scan instead (inline SVG: no image request, nothing the CSP blocks)
    html = page.content.decode()
    qr = html.split('<figure id="totp-qr" class="qr">', 1)[1].split("</figure>", 1)[0]
    assert qr.startswith("<svg") and qr == two_factor.setup_qr_svg(device)
    assert qr != two_factor.setup_qr_svg(TOTPDevice(user=user, name="other", key=DEMO_TOTP_KEY))
    done = client.post("/account/two-factor/", {"code": totp_code(device), "next": "/"})
    # then the device is confirmed, the session verified and the site open
    assert done.status_code == 302 and done.url == "/"
    assert TOTPDevice.objects.get(user=user).confirmed
    assert client.get("/").status_code == 200
    assert client.get("/api/v1/me/").status_code == 200
    assert AuditEvent.objects.filter(action="accounts.two_factor_enabled").count() == 1


def test_a_wrong_set_up_code_confirms_nothing():
    user = staff_user()
    client, _ = password_login(user)
    client.get("/account/two-factor/")
    response = client.post("/account/two-factor/", {"code": "000000"})
    assert response.status_code == 400
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert client.get("/").status_code == 302


def test_with_a_device_the_code_follows_the_password_and_works_once():
    # given staff with a device
    user = staff_user()
    device = with_device(user)
    # when they log in with the password / then the code page
    client, response = password_login(user)
    assert response.status_code == 302 and response.url.startswith("/login/two-factor/")
    assert client.get("/").status_code == 302
    # a wrong code is refused
    assert client.post("/login/two-factor/", {"code": "123456"}).status_code == 400
    # the right one opens the site
    code = totp_code(device)
    done = client.post("/login/two-factor/", {"code": code, "next": "/bookings/"})
    assert done.status_code == 302 and done.url == "/bookings/"
    assert client.get("/").status_code == 200
    # and the same code does not work a second time (another session)
    other, _ = password_login(user, ip="10.9.0.2")
    assert other.post("/login/two-factor/", {"code": code}).status_code == 400


def test_the_login_throttle_covers_the_code(settings):
    # given a limit of 3 failures per (username, address)
    settings.LOGIN_FAILURE_LIMIT = 3
    user = staff_user()
    device = with_device(user)
    client, _ = password_login(user, ip="10.9.0.3")
    # when the code is wrong three times
    statuses = [client.post("/login/two-factor/", {"code": f"00000{n}"}).status_code for n in range(3)]
    # then the right code is refused too (429), and so is the password step from that address
    assert statuses == [400, 400, 400]
    assert client.post("/login/two-factor/", {"code": totp_code(device)}).status_code == 429
    assert client.get("/").status_code == 302
    _, again = password_login(user, ip="10.9.0.3")
    assert again.status_code == 429


def test_the_right_password_does_not_clear_code_failures(settings):
    # given two wrong codes, a new password login, and one more wrong code with a limit of 3
    settings.LOGIN_FAILURE_LIMIT = 3
    user = staff_user()
    device = with_device(user)
    client, _ = password_login(user, ip="10.9.0.4")
    for code in ("000001", "000002"):
        client.post("/login/two-factor/", {"code": code})
    client, response = password_login(user, ip="10.9.0.4")
    assert response.status_code == 302
    client.post("/login/two-factor/", {"code": "000003"})
    # then the limit is reached across both logins
    assert client.post("/login/two-factor/", {"code": totp_code(device)}).status_code == 429


def test_others_need_no_code_but_may_turn_it_on_and_off():
    # given a startup member
    user = factories.member_of(factories.StartupFactory())
    client, response = password_login(user)
    # then the password alone signs in
    assert response.status_code == 302 and response.url == "/"
    assert client.get("/").status_code == 200
    # when they turn two-factor sign-in on
    setup = client.get("/account/two-factor/")
    assert client.post("/account/two-factor/", {"code": totp_code(setup.context["new_device"])}).status_code == 302
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    # then the next login asks for the code
    client, response = password_login(user, ip="10.9.0.5")
    assert response.url.startswith("/login/two-factor/")
    assert client.post("/login/two-factor/", {"code": totp_code(device)}).status_code == 302
    # and they may turn it off with a current code (a wrong one changes nothing)
    assert client.post("/account/two-factor/", {"code": "000000"}).status_code == 400
    assert client.post("/account/two-factor/", {"code": totp_code(device)}).status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_a_required_role_cannot_turn_it_off():
    user = staff_user()
    device = with_device(user)
    client, _ = password_login(user)
    client.post("/login/two-factor/", {"code": totp_code(device)})
    response = client.post("/account/two-factor/", {"code": totp_code(device)})
    assert response.status_code == 400
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def test_the_code_page_does_not_redirect_elsewhere():
    user = staff_user()
    device = with_device(user)
    client, _ = password_login(user)
    response = client.post("/login/two-factor/", {"code": totp_code(device), "next": "https://evil.example/"})
    assert response.status_code == 302 and response.url == "/"


# --- the API's token login -----------------------------------------------------------------------------------------


def token_login(api, user, **extra):
    return api.post(
        "/api/v1/auth/token/", {"username": user.username, "password": factories.PASSWORD, **extra}, format="json"
    )


def test_the_token_login_of_a_required_role_needs_the_code(api, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    user = staff_user()
    # without a device: 403, set it up on the website first
    response = token_login(api, user)
    assert response.status_code == 403 and "two-factor" in response.json()["detail"]
    device = with_device(user)
    # without the code: 400 naming the field; with a wrong one: 400, counted
    missing = token_login(api, user)
    assert missing.status_code == 400 and "otp" in missing.json()["errors"]
    assert token_login(api, user, otp="000000").status_code == 400
    # with the right one: the token
    ok = token_login(api, user, otp=totp_code(device))
    assert ok.status_code == 200
    assert api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {ok.json()['token']}").status_code == 200


def test_wrong_api_codes_reach_the_login_limit(api, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    user = staff_user()
    device = with_device(user)
    assert [token_login(api, user, otp="000000").status_code for _ in range(2)] == [400, 400]
    assert token_login(api, user, otp=totp_code(device)).status_code == 429


def test_the_token_login_of_others_needs_no_code(api):
    user = factories.member_of(factories.StartupFactory())
    assert token_login(api, user).status_code == 200
