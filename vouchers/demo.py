"""Demo voucher programs for ``manage.py seed_demo``: five city programs modelled on real policies, each funded,
an approved ¥1.5M Shanghai voucher for DeepLoom AI (alice) and a pending application in the Shanghai queue (ivy).

Runs after ``accounts.demo`` and ``listings.demo``. Idempotent: programs are keyed by (issuer, name) and left as
they are once created; applications by (program, applicant, purpose); funding and issue go through the services
with fixed ledger keys. A second run changes nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Organization
from listings.models import DataCenter
from vouchers import services
from vouchers.models import VoucherApplication, VoucherProgram

WINDOW = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2030, 12, 31, tzinfo=dt.UTC))
FACE_VALUE = (Decimal("1000000.00"), Decimal("2000000.00"))

# city: (name, budget, rules, provider list from data centres in the city?, description)
PROGRAMS = {
    "Hangzhou": (
        "Hangzhou compute vouchers 2026",
        Decimal("200000000.00"),
        {
            "domestic_ratio": Decimal("0.30"),
            "other_ratio": Decimal("0.20"),
            "model_filing_earns_domestic_ratio": True,
            "annual_cap_per_org": Decimal("8000000.00"),
            "max_stacked_share": Decimal("0.60"),
            "sme_contract_limit": Decimal("500000.00"),
            "sme_contract_ratio": Decimal("0.50"),
        },
        False,
        "Up to 30 % on domestic chips or for companies with a registered model, 20 % otherwise; "
        "50 % for SMEs on contracts up to ¥500k; at most ¥8M per company per year; with other "
        "vouchers at most 60 % of a booking.",
    ),
    "Beijing": (
        "Beijing AI compute vouchers",
        Decimal("100000000.00"),
        {
            "domestic_ratio": Decimal("0.20"),
            "other_ratio": Decimal("0.20"),
            "annual_cap_per_org": Decimal("2000000.00"),
            "ban_related_party": True,
            "stack_levels": ["national", "provincial", "district"],
            "eligible_buyer_cities": ["Beijing"],
        },
        True,
        "Up to 20 %, ¥2M per company per year, from partner compute centres not related to you; for "
        "companies registered in Beijing; not combined with another city's subsidy.",
    ),
    "Shenzhen": (
        "Shenzhen compute vouchers",
        Decimal("200000000.00"),
        {
            "domestic_ratio": Decimal("0.50"),
            "other_ratio": Decimal("0.50"),
            "sme_bonus_ratio": Decimal("0.10"),
            "annual_cap_per_org": Decimal("10000000.00"),
        },
        False,
        "Up to 50 %, 60 % for startups and SMEs; at most ¥10M per company per year.",
    ),
    "Shanghai": (
        "Shanghai compute vouchers",
        Decimal("100000000.00"),
        {"domestic_ratio": Decimal("0.30"), "other_ratio": Decimal("0.30"), "subsidy_period_days": 365},
        False,
        "Up to 30 % of compute bought from platforms on the exchange, for one year from your first subsidised booking.",
    ),
    "Chengdu": (
        "Chengdu compute vouchers",
        Decimal("50000000.00"),
        {"domestic_ratio": Decimal("0.30"), "other_ratio": Decimal("0.30"), "city_data_centers_only": True},
        True,
        "Up to 30 %, only in the two named Chengdu computing centres.",
    ),
}
VOUCHER_HOLDER = ("DeepLoom AI", "Pretraining Loom-13B on domestic accelerators", Decimal("1500000.00"))
PENDING = ("Pearl River Genomics", "Protein language model fine-tuning", Decimal("1200000.00"))


def _issuer(city: str) -> Organization | None:
    return Organization.objects.filter(kind=Organization.Kind.ISSUER, city=city).order_by("pk").first()


def _city_providers(city: str, limit: int = 2) -> list[Organization]:
    ids = (
        DataCenter.objects.filter(city=city)
        .order_by("provider_id")
        .values_list("provider_id", flat=True)
        .distinct()[:limit]
    )
    return list(Organization.objects.filter(pk__in=list(ids)))


def _program(city: str) -> VoucherProgram | None:
    issuer = _issuer(city)
    if issuer is None:
        return None
    name, budget, rules, city_providers, description = PROGRAMS[city]
    existing = VoucherProgram.objects.filter(issuer=issuer, name=name).first()
    if existing is not None:
        return existing
    providers = _city_providers(city) if city_providers else None
    if providers is not None and city == "Chengdu":
        names = " and ".join(dc.name for dc in DataCenter.objects.filter(city=city, provider__in=providers)[:2])
        description = f"{description} ({names})" if names else description
    return services.program_create(
        issuer=issuer,
        budget=budget,
        name=name,
        city=city,
        description=description,
        face_value_min=FACE_VALUE[0],
        face_value_max=FACE_VALUE[1],
        validity_days=365,
        applications_open_from=WINDOW[0],
        applications_open_until=WINDOW[1],
        status=VoucherProgram.Status.ACTIVE,
        eligible_providers=providers,
        **rules,
    )


def _application(program: VoucherProgram, applicant_name: str, purpose: str, amount: Decimal):
    applicant = Organization.objects.filter(kind=Organization.Kind.STARTUP, name=applicant_name).first()
    if applicant is None:
        return None
    existing = VoucherApplication.objects.filter(program=program, applicant=applicant, purpose=purpose).first()
    if existing is not None:
        return existing
    return services.application_submit(
        program=program,
        applicant=applicant,
        requested_amount=amount,
        purpose=purpose,
        model_filing=applicant.model_filings.first(),
    )


@transaction.atomic
def seed(stdout=None) -> dict:
    """Create the demo programs (funded), alice's approved Shanghai voucher and a pending application for ivy."""
    programs = {city: program for city in PROGRAMS if (program := _program(city)) is not None}
    shanghai = programs.get("Shanghai")
    if shanghai is not None:
        issuer_user = get_user_model().objects.filter(username="ivy").first()
        approved = _application(shanghai, *VOUCHER_HOLDER)
        if approved is not None and approved.status == VoucherApplication.Status.SUBMITTED:
            services.application_approve(application=approved, face_value=VOUCHER_HOLDER[2], actor=issuer_user)
        _application(shanghai, *PENDING)
    if stdout:
        stdout.write(
            f"  vouchers: {len(programs)} programs, "
            f"{VoucherApplication.objects.filter(status='approved').count()} approved and "
            f"{VoucherApplication.objects.filter(status='submitted').count()} pending applications"
        )
    return {}
