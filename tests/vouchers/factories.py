"""Factories for voucher tests: programs (funded through the service), issued vouchers and held bookings."""

import datetime as dt
from decimal import Decimal

import factory
from django.db import transaction
from django.utils import timezone

from accounts.models import ModelFiling
from accounts.selectors import valid_model_filings
from audit.services import audit_record_many
from ledger.services import ledger_post_many
from orders.models import Booking
from tests import factories
from vouchers import services
from vouchers.models import VoucherProgram


class VoucherProgramFactory(factory.django.DjangoModelFactory):
    """An active, unfunded program open for applications; ¥1–2M vouchers paying 30 % domestic / 20 % other."""

    class Meta:
        model = VoucherProgram

    issuer = factory.SubFactory(factories.IssuerFactory)
    name = factory.Sequence(lambda n: f"Compute voucher program {n}")
    city = "Shanghai"
    face_value_min = Decimal("1000.00")
    face_value_max = Decimal("2000000.00")
    validity_days = 365
    applications_open_from = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    applications_open_until = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=90))
    status = VoucherProgram.Status.ACTIVE
    domestic_ratio = Decimal("0.30")
    other_ratio = Decimal("0.20")
    ban_related_party = True


def funded_program(budget="10000000.00", **kwargs) -> VoucherProgram:
    program = VoucherProgramFactory(**kwargs)
    return services.program_fund(program=program, amount=Decimal(budget), idempotency_key=f"test:fund:{program.pk}")


def issued_voucher(*, holder, program=None, face_value="100000.00", requested=None):
    """A voucher issued through apply → approve (so the ledger holds its face value). A program that requires a
    model filing is applied to with the holder's valid filing; when it has none, with one that is withdrawn from the
    registry once the voucher is issued (rejected), so the holder still has no valid filing afterwards."""
    program = program or funded_program()
    filing = withdrawn = None
    if program.requires_model_filing:
        filing = valid_model_filings(on=timezone.localdate()).filter(organization=holder).first()
        if filing is None:
            filing = withdrawn = factories.ModelFilingFactory(organization=holder)
    application = services.application_submit(
        program=program,
        applicant=holder,
        requested_amount=Decimal(requested or face_value),
        purpose="training",
        model_filing=filing,
    )
    voucher = services.application_approve(application=application, face_value=Decimal(face_value))
    if withdrawn is not None:
        ModelFiling.objects.filter(pk=withdrawn.pk).update(status=ModelFiling.Status.REJECTED)
    return voucher


def held_booking(*, buyer, listing=None, subtotal="10000.00") -> Booking:
    """A held booking row (no capacity reserved: the voucher services only read buyer, listing and subtotal)."""
    listing = listing or factories.ListingFactory()
    start = factories.next_hour(2)
    subtotal = Decimal(subtotal)
    return Booking.objects.create(
        buyer=buyer,
        listing=listing,
        nodes=1,
        start=start,
        end=start + dt.timedelta(hours=1),
        gpu_hours=listing.cluster.gpus_per_node,
        price_per_gpu_hour=listing.price_per_gpu_hour,
        subtotal=subtotal,
        voucher_amount=Decimal("0.00"),
        cash_amount=subtotal,
        status=Booking.Status.HELD,
        hold_expires_at=timezone.now() + dt.timedelta(minutes=15),
    )


def capture_for(booking: Booking, destination) -> list:
    """Capture ``booking``'s held voucher parts into ``destination`` as settlement does (one transaction: mark
    captured, post, audit); returns the redemptions this call captured (none the second time)."""
    with transaction.atomic():
        batch = services.redemptions_capture_many(destinations={booking.pk: destination})
        ledger_post_many(batch.postings)
        audit_record_many(batch.events)
    return batch.redemptions
