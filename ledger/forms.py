"""Page forms of the ledger: the deposit platform staff record. Types are checked here; ``deposit_record`` checks
the rules and its field errors are shown in place."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from marketplace.core.forms import ServiceErrorsMixin
from marketplace.core.money import AMOUNT_DIGITS, AMOUNT_PLACES


class DepositForm(ServiceErrorsMixin, forms.Form):
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.filter(kind=Organization.Kind.STARTUP).order_by("name"),
        label=_("Startup"),
        empty_label=_("Choose the startup that sent the transfer"),
    )
    amount = forms.DecimalField(
        max_digits=AMOUNT_DIGITS,
        decimal_places=AMOUNT_PLACES,
        min_value=Decimal("0.01"),
        label=format_lazy(_("Amount ({currency})"), currency=settings.PLATFORM_CURRENCY),
    )
    reference = forms.CharField(
        max_length=80,
        label=_("Bank reference"),
        help_text=_(
            "The transfer's reference on the bank statement: one transfer is credited "
            "once, so recording it twice changes nothing."
        ),
    )
