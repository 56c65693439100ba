"""End to end: a provider enrolls an agent (``python -m gpux_agent once`` as a subprocess, a fake ``nvidia-smi`` on
PATH printing a recorded output) against the live test server; a buyer books with an SSH key; the agent installs
it and the buyer reads how to connect; two hours without heartbeats become an incident that lowers the delivered
node-hours; at the end the agent removes the key. The booking is paid partly with a city voucher: once its 48-hour
dispute window has closed it is settled, and the money is checked against amounts this test computes itself — the
SLA credit for the incident hours beyond the listing's SLA, its voucher share back on the voucher and its cash share
in the wallet, the provider's payout and the city's claim reduced by them, and ``verify_ledger`` passing."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from gpux_agent.inventory import NVIDIA_SMI_ARGS

from ledger.models import JournalTransaction
from ledger.selectors import ledger_breaches
from listings.models import NodeAgent, NodeInventoryReport
from marketplace.core.exceptions import Conflict
from orders import handovers
from orders import services as order_services
from orders.delivery_tasks import delivery_sweep
from orders.disputes import DISPUTE_WINDOW
from orders.models import AccessHandover, Booking, DeliveryIncident
from settlement import services as settlement_services
from settlement.models import BookingSettlement, ReimbursementClaim, ServiceCredit
from tests import factories
from tests.agent.helpers import ed25519_key
from tests.agent.test_cli import agent_env, fake_tool, run_agent
from tests.delivery.helpers import h100_cluster
from tests.orders.factories import booking_kwargs, fund
from tests.settlement.factories import balance
from tests.vouchers.factories import funded_program, issued_voucher

CENT = Decimal("0.01")
WALLET_FUNDS, FACE_VALUE = Decimal("1000000.00"), Decimal("100000.00")


def fen(value: Decimal) -> Decimal:
    """Rounded half-up to the fen, as money is posted."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def hours_between(start: dt.datetime, end: dt.datetime) -> Decimal:
    return fen(Decimal((end - start).total_seconds()) / Decimal(3600)) if end > start else Decimal("0.00")


def _shift(booking: Booking, start: dt.datetime, end: dt.datetime, status: str) -> None:
    """Time passes: the booking's window (and its reservations) moved so it has started or ended."""
    Booking.objects.filter(pk=booking.pk).update(start=start, end=end, status=status)
    booking.reservations.update(period=DateTimeTZRange(start, end, "[)"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_agent_delivers_a_booking_end_to_end(live_server, tmp_path, client_for, provider):
    # given: an H100 cluster whose provider creates an agent token on the platform
    cluster = h100_cluster(provider, node_count=2)
    listing = factories.ListingFactory(cluster=cluster)
    provider_api = client_for(factories.member_of(provider))
    created = provider_api.post(f"/api/v1/clusters/{cluster.pk}/agent-tokens/", {"name": "node 1"}, format="json")
    assert created.status_code == 201, created.json()

    # and: a buyer with an SSH key, a city voucher and a confirmed booking of one node, paid partly by the voucher
    buyer = factories.StartupFactory()
    fund(buyer, WALLET_FUNDS)
    voucher = issued_voucher(holder=buyer, program=funded_program(), face_value=FACE_VALUE)
    buyer_api = client_for(factories.member_of(buyer))
    key = ed25519_key(7, "alice@startup")
    assert buyer_api.post("/api/v1/ssh-keys/", {"public_key": key}, format="json").status_code == 201
    booking = order_services.booking_create(
        buyer=buyer, confirm=True, vouchers=[voucher.pk], **booking_kwargs(listing, hours=3)
    )
    assert Decimal("0.00") < booking.voucher_amount < booking.subtotal, "the booking must be voucher-funded in part"

    # and: the agent's node, with a fake nvidia-smi and an authorized_keys file
    bin_dir, ssh_dir = tmp_path / "bin", tmp_path / "ssh"
    bin_dir.mkdir()
    ssh_dir.mkdir()
    keys_file = ssh_dir / "authorized_keys"
    fake_tool(bin_dir, "nvidia-smi", {NVIDIA_SMI_ARGS: "nvidia_smi_8x_h100_80gb_hbm3.csv"})
    env = agent_env(
        bin_dir,
        GPUX_URL=live_server.url,
        GPUX_AGENT_TOKEN=created.json()["token"],
        GPUX_LOGIN_USER="gpux",
        GPUX_AUTHORIZED_KEYS=str(keys_file),
        GPUX_HOSTNAME="gpu-node-01",
        GPUX_SSH_HOST="gpu-node-01.dc.example.cn",
        GPUX_SSH_PORT="2222",
    )

    # when: the agent runs before the booking starts
    before = run_agent(["once"], env)

    # then: inventory and heartbeat accepted, nothing handed over yet
    assert before.returncode == 0, before.stderr
    report = NodeInventoryReport.objects.get()
    assert (report.node.index, report.gpu_count, report.mismatched) == (1, 8, False)
    assert NodeAgent.objects.get().last_sequence > 0
    assert not keys_file.exists()

    # when: the booking has started (time passes) and the agent runs again
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    _shift(booking, now - dt.timedelta(hours=3), now + dt.timedelta(hours=1), Booking.Status.ACTIVE)
    started = run_agent(["once"], env)

    # then: the buyer's key is installed and the buyer reads how to connect
    assert started.returncode == 0, started.stderr
    assert keys_file.read_text() == f"{' '.join(key.split()[:2])} gpux-booking-{booking.pk}\n"
    access = buyer_api.get(f"/api/v1/bookings/{booking.pk}/access/").json()
    assert [(n["node"], n["state"], n["ssh_command"]) for n in access["nodes"]] == [
        (1, "ready", "ssh -p 2222 gpux@gpu-node-01.dc.example.cn")
    ]

    # when: the node was silent for two hours of the booking, then came back
    silent_since = timezone.now() - dt.timedelta(hours=2)
    NodeAgent.objects.update(last_heartbeat_at=silent_since)
    assert delivery_sweep.run() == {"silent_outages": 1, "incidents": 1}
    assert DeliveryIncident.objects.get().status == "open"
    back = run_agent(["once"], env)
    delivery_sweep.run()

    # then: one closed incident of about two hours; delivered = reserved − incident hours
    assert back.returncode == 0, back.stderr
    incident = DeliveryIncident.objects.get()
    assert (incident.status, incident.source, incident.started_at) == ("closed", "silent", silent_since)
    delivered = handovers.booking_delivery(Booking.objects.get(pk=booking.pk))
    assert delivered.reserved_node_hours == Decimal("4.00")
    assert Decimal("2.00") <= delivered.incident_node_hours <= Decimal("2.02")
    assert delivered.delivered_node_hours == delivered.reserved_node_hours - delivered.incident_node_hours
    access = buyer_api.get(f"/api/v1/bookings/{booking.pk}/access/").json()
    assert Decimal(access["delivered_node_hours"]) == delivered.delivered_node_hours

    # when: the booking has ended and the agent runs once more
    _shift(booking, now - dt.timedelta(hours=4), now, Booking.Status.COMPLETED)
    ended = run_agent(["once"], env)

    # then: the key is gone and the removal is recorded
    assert ended.returncode == 0, ended.stderr
    assert keys_file.read_text() == ""
    assert AccessHandover.objects.get(action="remove").status == "removed"
    access = buyer_api.get(f"/api/v1/bookings/{booking.pk}/access/").json()
    assert access["nodes"][0]["state"] == "removed"

    # when: settlement runs before the buyer's 48-hour dispute window has closed
    # then: it waits, the buyer's money still held
    with pytest.raises(Conflict) as waiting:
        settlement_services.booking_settle(booking_id=booking.pk)
    assert waiting.value.code == "dispute_window_open"
    assert balance("wallet_hold", buyer.pk) == booking.cash_amount

    # when: the window has closed and the booking is settled
    booking = Booking.objects.get(pk=booking.pk)
    settled = settlement_services.booking_settle(booking_id=booking.pk, now=booking.end + DISPUTE_WINDOW)
    assert settled.status == Booking.Status.SETTLED

    # then: the SLA credit is the pro-rata price of the incident hours beyond the SLA, computed here from the
    # listing's SLA, the incident's hours within the booking and the booking's price
    subtotal, voucher_part, cash_part = booking.subtotal, booking.voucher_amount, booking.cash_amount
    reserved = Decimal(booking.nodes) * hours_between(booking.start, booking.end)
    incident_hours = hours_between(max(incident.started_at, booking.start), min(incident.ended_at, booking.end))
    assert Decimal("1.00") <= incident_hours <= Decimal("2.02")  # the outage, clipped to the booking's last hour
    allowance = fen(reserved * (Decimal(100) - listing.sla_percent) / Decimal(100))
    credited_hours = max(Decimal("0.00"), incident_hours - allowance)
    expected_credit = fen(subtotal * credited_hours / reserved)
    expected_voucher_share = min(fen(expected_credit * voucher_part / subtotal), voucher_part)
    expected_cash_share = expected_credit - expected_voucher_share
    assert expected_voucher_share > 0 and expected_cash_share > 0
    posted = JournalTransaction.objects.get(
        kind=JournalTransaction.Kind.SERVICE_CREDIT, reference=f"booking:{booking.pk}"
    )
    assert sum(e.amount for e in posted.entries.all() if e.amount > 0) == expected_credit
    credit = ServiceCredit.objects.get(booking=booking)
    assert (credit.incident_node_hours, credit.credited_node_hours) == (incident_hours, credited_hours)
    assert (credit.amount, credit.voucher_amount, credit.cash_amount) == (
        expected_credit,
        expected_voucher_share,
        expected_cash_share,
    )
    # and: the voucher share went back to the voucher, the cash share to the wallet (nothing left on hold)
    assert balance("voucher", voucher.pk) == FACE_VALUE - voucher_part + expected_voucher_share
    assert balance("wallet", buyer.pk) == WALLET_FUNDS - cash_part + expected_cash_share
    assert balance("wallet_hold", buyer.pk) == Decimal("0.00")
    assert balance("voucher_hold", voucher.pk) == Decimal("0.00")
    # and: the provider is owed the price of what was delivered less the platform fee on it
    paid_for = subtotal - expected_credit
    fee = fen(paid_for * settings.PLATFORM_FEE_BPS / Decimal(10000))
    settlement = BookingSettlement.objects.get(booking=booking)
    assert (settlement.subtotal, settlement.fee, settlement.provider_amount) == (paid_for, fee, paid_for - fee)
    assert balance("provider_payable", provider.pk) == paid_for - fee
    assert paid_for - fee < subtotal - fen(subtotal * settings.PLATFORM_FEE_BPS / Decimal(10000))
    # and: the city's claim is the voucher money of the delivered (paid-for) hours only
    claim = ReimbursementClaim.objects.get(booking=booking)
    assert claim.amount == voucher_part - expected_voucher_share
    assert abs(claim.amount - voucher_part * (reserved - credited_hours) / reserved) <= CENT
    # and: the ledger reconciles
    call_command("verify_ledger")
    assert ledger_breaches() == []
