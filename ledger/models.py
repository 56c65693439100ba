"""Double-entry ledger (django-hordak style): accounts, balanced journal transactions, append-only entries.

The database guards the invariants, not Python (see migration ``0002_ledger_triggers``):
- an AFTER INSERT trigger on ``Entry`` adds the amount to its account's ``balance``; the account's CHECK
  (``allow_negative OR balance >= 0``) then refuses an overdraft inside the same statement, and the UPDATE takes
  the account row lock, so concurrent spends serialise on it;
- a DEFERRABLE INITIALLY DEFERRED constraint trigger refuses, at COMMIT, a transaction whose entries do not sum
  to zero;
- entries and transactions are append-only; an account's balance changes only through its entries.

This module imports no other app: owners are plain ids whose meaning depends on the account kind.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from marketplace.core.money import AmountField


def platform_currency() -> str:
    return settings.PLATFORM_CURRENCY


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        WALLET = "wallet", _("Wallet")  # owner: organization id
        WALLET_HOLD = "wallet_hold", _("Wallet hold")  # owner: organization id
        VOUCHER = "voucher", _("Voucher")  # owner: voucher id
        VOUCHER_HOLD = "voucher_hold", _("Voucher hold")  # owner: voucher id
        PROVIDER_PAYABLE = "provider_payable", _("Provider payable")  # owner: organization id
        PLATFORM_FEES = "platform_fees", _("Platform fees")  # platform-wide
        PROGRAM_BUDGET = "program_budget", _("Program budget")  # owner: program id
        REIMBURSEMENT_DUE = "reimbursement_due", _("Reimbursement due")  # owner: program id
        BANK = "bank", _("Bank (external)")  # counter-account for cash in and out; may go negative
        PROGRAM_FUNDING = "program_funding", _("Program funding (external)")  # money a city puts in; may go negative

    # Counter-accounts outside the platform: their balance mirrors money that came in, so it may be negative.
    EXTERNAL_KINDS = frozenset({Kind.BANK, Kind.PROGRAM_FUNDING})

    kind = models.CharField(max_length=32, choices=Kind.choices)
    owner_id = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, default=platform_currency)
    allow_negative = models.BooleanField(default=False)
    # Maintained by the entry trigger only; never assign it in Python.
    balance = AmountField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "owner_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "owner_id"], nulls_distinct=False, name="ledger_account_kind_owner_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(allow_negative=True) | models.Q(balance__gte=0),
                name="ledger_account_balance_allowed",
            ),
        ]

    def __str__(self):
        owner = "platform" if self.owner_id is None else f"#{self.owner_id}"
        return f"{self.kind} {owner}"


class TransactionKind(models.TextChoices):
    """Every kind of movement posted, exactly (the database refuses others)."""

    DEPOSIT = "deposit", _("Deposit")  # bank → wallet
    HOLD = "hold", _("Payment held")  # wallet → wallet hold
    RELEASE = "release", _("Hold released")  # wallet hold → wallet
    SETTLE = "settle", _("Booking settled")  # holds → provider payable, platform fees
    PAYOUT = "payout", _("Payout to provider")  # provider payable → bank
    PROGRAM_FUNDING = "program_funding", _("Program funded")  # program funding → program budget
    VOUCHER_ISSUE = "voucher_issue", _("Voucher issued")  # program budget → voucher
    VOUCHER_HOLD = "voucher_hold", _("Voucher part held")  # voucher → voucher hold
    VOUCHER_RELEASE = "voucher_release", _("Voucher part released")  # voucher hold → voucher
    VOUCHER_CAPTURE = "voucher_capture", _("Voucher part captured")  # voucher hold → reimbursement due
    VOUCHER_EXPIRE = "voucher_expire", _("Voucher expired")  # voucher → program budget
    VOUCHER_REVOKE = "voucher_revoke", _("Voucher revoked")  # voucher → program budget
    REIMBURSE = "reimburse", _("Reimbursed by the city")  # reimbursement due → program funding
    SERVICE_CREDIT = "service_credit", _("Service credit")  # outage or dispute credit back to the buyer (issue 20)
    RESALE = "resale", _("Resale of booked time")  # resale buyer → seller, platform fees (issue 21)
    RESALE_VOUCHER_RETURN = "resale_voucher_return", _("Voucher share of resold time returned")  # issue 21


class JournalTransaction(models.Model):
    """One balanced movement of money: its entries sum to zero (checked at commit)."""

    Kind = TransactionKind

    kind = models.CharField(max_length=32, db_index=True, choices=Kind.choices)
    reference = models.CharField(max_length=100, blank=True, db_index=True)  # e.g. "booking:42"
    idempotency_key = models.CharField(max_length=200, unique=True)
    memo = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=TransactionKind.values), name="ledger_transaction_kind_valid"
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.reference or self.idempotency_key}"


class Entry(models.Model):
    """One leg of a transaction; positive adds to the account's balance, negative takes from it."""

    transaction = models.ForeignKey(JournalTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = AmountField()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="ledger_entry_amount_not_zero"),
        ]
        indexes = [models.Index(fields=["account", "id"], name="ledger_entry_account_idx")]

    def __str__(self):
        return f"{self.account}: {self.amount}"
