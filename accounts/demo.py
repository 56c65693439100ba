"""Demo organizations and users for ``manage.py seed_demo`` (idempotent: keyed by credit code and username)."""

from __future__ import annotations

import base64
import datetime as dt

from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import CITIES, Membership, ModelFiling, Organization
from accounts.validators import uscc_check_character

DEMO_PASSWORD = "gpux-demo-2026"
# Platform staff, issuers and the auditor sign in with a second factor (accounts.two_factor): their demo devices
# share this key (hex; base32 ``DEMO_TOTP_SECRET`` for an authenticator app). Demo data only.
DEMO_TOTP_KEY = b"gpux-demo-totp-key!!".hex()
DEMO_TOTP_SECRET = base64.b32encode(bytes.fromhex(DEMO_TOTP_KEY)).decode()

# Administrative division codes used in demo credit codes (positions 3–8 of a USCC).
CITY_REGION = {
    "Shanghai": "310000", "Beijing": "110000", "Hangzhou": "330100", "Shenzhen": "440300", "Chengdu": "510100",
    "Wuhan": "420100", "Tianjin": "120000", "Suzhou": "320500", "Nanjing": "320100", "Guangzhou": "440100",
    "Chongqing": "500000", "Hefei": "340100", "Xi'an": "610100", "Wuhu": "340200", "Kunming": "530100",
    "Ningbo": "330200", "Qingdao": "370200",
}  # fmt: skip

STARTUPS = [
    # name, city, legal representative, owners, SME, model filing (number, model) or None, demo user
    (
        "DeepLoom AI",
        "Shanghai",
        "Zhang Wei",
        ["Zhang Wei", "Li Na"],
        True,
        ("Shanghai-DeepLoom-20250101", "Loom-7B"),
        "alice",
    ),
    (
        "Qiantang Robotics",
        "Hangzhou",
        "Wang Fang",
        ["Wang Fang"],
        True,
        ("Zhejiang-Qiantang-20250315", "QT-Vision"),
        "bob",
    ),
    ("Pearl River Genomics", "Shenzhen", "Chen Jie", ["Chen Jie", "Huang Min"], True, None, "chen"),
    (
        "Jingwei LLM Lab",
        "Beijing",
        "Liu Yang",
        ["Liu Yang"],
        False,
        ("Beijing-Jingwei-20240920", "Jingwei-70B"),
        "dana",
    ),
    ("Shu Valley Speech", "Chengdu", "Yang Li", ["Yang Li", "Zhou Qiang"], True, None, "erin"),
    ("Tianfu Medical Imaging", "Chengdu", "Zhou Qiang", ["Zhou Qiang"], True, None, None),  # related to a provider
]
PROVIDERS = [
    ("Lingang State Compute Hub", "Shanghai", "Sun Hao", ["Shanghai SASAC"], "pat"),
    ("Yizhuang Intelligent Computing Center", "Beijing", "Ma Lin", ["Beijing SASAC"], None),
    ("Future Sci-Tech Compute Co.", "Hangzhou", "Wu Tao", ["Wu Tao", "Xu Jing"], "quinn"),
    ("Pengcheng Compute Cloud", "Shenzhen", "Guo Rui", ["Shenzhen SASAC"], None),
    ("Tianfu Intelligent Computing Center", "Chengdu", "Zhou Qiang", ["Chengdu SASAC", "Zhou Qiang"], None),
    ("Optics Valley AI Computing Center", "Wuhan", "He Ping", ["Wuhan SASAC"], None),
    ("Qingyun Private Cloud", "Suzhou", "Lin Feng", ["Lin Feng"], None),
    ("Nanhu Cloud", "Guangzhou", "Deng Yu", ["Deng Yu", "Lu Xin"], None),
    ("Chaohu Compute Park", "Hefei", "Fang Jun", ["Hefei SASAC"], None),
    ("West Lake GPU Cloud", "Hangzhou", "Shen Yi", ["Shen Yi"], None),
]  # fmt: skip
PLATFORM = ("GPU Compute Exchange Operations", "Shanghai", "Operator", [], "sam")
AUDITOR_USER = "audrey"
ISSUER_USERS = {"Shanghai": "ivy", "Beijing": "ivan", "Hangzhou": "iris", "Shenzhen": "isaac", "Chengdu": "ida"}


def demo_credit_code(city: str, serial: int) -> str:
    """A valid, deterministic unified social credit code for demo organization ``serial`` in ``city``."""
    first17 = f"91{CITY_REGION[city]}MA{serial:07d}"
    return first17 + uscc_check_character(first17)


def _org(kind, name, city, serial, legal_rep="", owners=(), is_sme=False) -> Organization:
    org, _ = Organization.objects.update_or_create(
        credit_code=demo_credit_code(city, serial),
        defaults={
            "kind": kind,
            "name": name,
            "city": city,
            "legal_representative": legal_rep,
            "owners": list(owners),
            "is_sme": is_sme,
            "verification_status": Organization.VerificationStatus.VERIFIED,
        },
    )
    return org


def _user(username: str, org: Organization, role=Membership.Role.OWNER):
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@demo.gpux.cn"}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    Membership.objects.update_or_create(user=user, organization=org, defaults={"role": role})
    if org.kind in (Organization.Kind.ISSUER, Organization.Kind.PLATFORM):
        TOTPDevice.objects.get_or_create(user=user, name="demo", defaults={"key": DEMO_TOTP_KEY, "confirmed": True})
    return user


@transaction.atomic
def seed(stdout=None) -> dict:
    """Create or update the demo organizations and users; returns the demo logins by role."""
    serial = 1
    logins: dict[str, str] = {}
    for name, city, rep, owners, sme, filing, username in STARTUPS:
        org = _org(Organization.Kind.STARTUP, name, city, serial, rep, owners, sme)
        serial += 1
        if filing:
            ModelFiling.objects.update_or_create(
                filing_number=filing[0],
                defaults={
                    "organization": org,
                    "model_name": filing[1],
                    "registered_on": dt.date(2025, 1, 15),
                    "status": ModelFiling.Status.VERIFIED,
                },
            )
        if username:
            _user(username, org)
            logins.setdefault("startup", username)
    for name, city, rep, owners, username in PROVIDERS:
        org = _org(Organization.Kind.PROVIDER, name, city, serial, rep, owners)
        serial += 1
        if username:
            _user(username, org)
            logins.setdefault("provider", username)
    for city in CITIES:
        org = _org(Organization.Kind.ISSUER, f"{city} Compute Voucher Office", city, serial, f"{city} Bureau")
        serial += 1
        if city in ISSUER_USERS:
            _user(ISSUER_USERS[city], org)
            logins.setdefault("issuer", ISSUER_USERS[city])
    name, city, rep, owners, username = PLATFORM
    platform = _org(Organization.Kind.PLATFORM, name, city, serial, rep, owners)
    _user(username, platform)
    logins["platform staff"] = username
    _user(AUDITOR_USER, platform, role=Membership.Role.AUDITOR)
    logins["auditor"] = AUDITOR_USER
    if stdout:
        stdout.write(
            f"  accounts: {Organization.objects.count()} organizations, {get_user_model().objects.count()} users"
        )
        stdout.write(
            f"  two-factor key of the staff, issuer and auditor demo users (add it to an authenticator app): "
            f"{DEMO_TOTP_SECRET}"
        )
    return logins
