"""Voucher page forms: types and plain-word labels here, business rules in ``vouchers.services``.

The program form shows shares of a booking's price as percentages (30 = 30 %) and hands the service ratios
(0.3000); its fields are grouped in ``ProgramForm.FIELDSETS`` for the page.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import CITY_CHOICES, ModelFiling, Organization
from accounts.selectors import user_organizations
from listings.models import Accelerator
from marketplace.core.forms import ServiceErrorsMixin
from marketplace.core.money import AMOUNT_DIGITS, AMOUNT_PLACES, PRICE_DIGITS, PRICE_PLACES
from marketplace.core.zones import in_zone
from vouchers import rules, selectors, services
from vouchers.models import Level, VoucherProgram

HUNDRED = Decimal(100)
RATIO_PLACES = Decimal("0.0001")
MAX_DAYS = 3660  # ten years: longer periods are typing mistakes


def _amount(**kwargs) -> forms.DecimalField:
    return forms.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, min_value=0, **kwargs)


def _percent(label, help_text="", **kwargs) -> forms.DecimalField:
    """A share typed as a percentage, 0–100 with 2 places (30 = 30 %); ``ProgramForm`` converts it to a ratio."""
    return forms.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=0,
        max_value=100,
        label=label,
        help_text=help_text,
        error_messages={
            "min_value": _("Enter a percentage between 0 and 100."),
            "max_value": _("Enter a percentage between 0 and 100."),
        },
        **kwargs,
    )


def ratio_to_percent(ratio: Decimal | None) -> Decimal | None:
    """0.3000 → 30, 0.3050 → 30.5 (as typed, without trailing zeros or an exponent)."""
    if ratio is None:
        return None
    value = (Decimal(ratio) * HUNDRED).quantize(Decimal("0.01"))
    return value.to_integral_value() if value == value.to_integral_value() else value.normalize()


def percent_to_ratio(percent: Decimal) -> Decimal:
    """30 → 0.3000."""
    return (percent / HUNDRED).quantize(RATIO_PLACES)


class ApplyForm(ServiceErrorsMixin, forms.Form):
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(),
        required=False,
        label=_("Organization"),
        help_text=_("the startup you apply for"),
    )
    requested_amount = _amount(label=_("Amount requested (CNY)"))
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label=_("Purpose"),
        help_text=_("what the compute is for: model, data, expected GPU-hours"),
    )
    model_filing = forms.ModelChoiceField(
        queryset=ModelFiling.objects.none(), required=False, label=_("Registered model filing")
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        orgs = user_organizations(user, kind=Organization.Kind.STARTUP).order_by("name")
        self.fields["organization"].queryset = orgs
        self.fields["model_filing"].queryset = ModelFiling.objects.filter(organization__in=orgs)
        # the status beside each filing: only a verified one counts for a program that requires one
        self.fields["model_filing"].label_from_instance = _filing_choice_label
        if orgs.count() <= 1:
            self.fields["organization"].widget = forms.HiddenInput()


def _filing_choice_label(filing: ModelFiling) -> str:
    return _("%(filing)s — %(status)s") % {"filing": filing, "status": filing.get_status_display()}


class ApproveForm(ServiceErrorsMixin, forms.Form):
    face_value = _amount(label=_("Face value (CNY)"))


class RejectForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(max_length=2000, label=_("Reason"))


DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
CHECKBOXES = forms.CheckboxSelectMultiple


class ProgramChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: VoucherProgram) -> str:
        return gettext("%(name)s (%(city)s, %(level)s level)") % {
            "name": obj.name,
            "city": obj.get_city_display(),
            "level": obj.get_level_display().lower(),
        }


class ProgramForm(ServiceErrorsMixin, forms.Form):
    """A program's fields and rules for ``program_create`` / ``program_update``: types here, rules in the service.
    ``organization`` (the issuer) is shown on the create form of a user acting for several issuers only; ``budget``
    on the create form only (a program's budget is funded, not edited)."""

    # (key, legend, what the group is about, field names); fields a form does not have are skipped. The key names
    # the section in the page (``#section-<key>``) whatever the language.
    FIELDSETS = (
        (
            "basics",
            _("Basics"),
            "",
            (
                "organization",
                "name",
                "city",
                "status",
                "description",
                "budget",
                "face_value_min",
                "face_value_max",
                "validity_days",
                "applications_open_from",
                "applications_open_until",
            ),
        ),
        (
            "coverage",
            _("Coverage"),
            _("How much of a booking's price the program pays, in percent (30 = 30 %)."),
            (
                "domestic_ratio",
                "other_ratio",
                "sme_bonus_ratio",
                "model_filing_earns_domestic_ratio",
                "sme_contract_limit",
                "sme_contract_ratio",
                "idle_threshold_percent",
                "idle_extra_ratio",
            ),
        ),
        (
            "caps",
            _("Caps"),
            _("Limits on what the program pays. Leave an amount empty for no cap."),
            ("annual_cap_per_org", "per_booking_cap", "max_stacked_share"),
        ),
        (
            "stacking",
            _("Stacking"),
            _("Whether a buyer may use this program's vouchers together with other programs' vouchers in one booking."),
            ("level", "stack_levels", "stack_excluded_programs"),
        ),
        (
            "eligibility",
            _("Eligibility"),
            _("Who may use the vouchers, and for what. Nothing ticked in a list means no restriction."),
            (
                "eligible_providers",
                "eligible_accelerators",
                "eligible_buyer_cities",
                "city_data_centers_only",
                "requires_model_filing",
                "ban_related_party",
                "require_reviewed_listing",
                "subsidy_period_days",
            ),
        ),
    )
    PERCENT_FIELDS = ("domestic_ratio", "other_ratio", "sme_bonus_ratio", "max_stacked_share", "sme_contract_ratio")
    EMPTY_PERCENT = {"sme_bonus_ratio": Decimal(0), "sme_contract_ratio": Decimal(0), "max_stacked_share": HUNDRED}
    WIDE_FIELDS = ("description",)
    LONG_OPTION_FIELDS = ("stack_excluded_programs", "eligible_providers")  # checkbox lists of long names

    # --- basics ---
    organization = forms.ModelChoiceField(queryset=Organization.objects.none(), required=False, label=_("Issuer"))
    name = forms.CharField(max_length=200, label=_("Program name"))
    city = forms.ChoiceField(choices=CITY_CHOICES, label=_("City"))
    status = forms.ChoiceField(
        choices=VoucherProgram.Status.choices,
        initial=VoucherProgram.Status.DRAFT,
        label=_("Status"),
        help_text=_("startups see active programs only"),
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label=_("Description"))
    budget = _amount(
        label=_("Budget to fund now (CNY)"),
        required=False,
        help_text=_("moved into the program's budget when it is created"),
    )
    face_value_min = _amount(label=_("Smallest voucher (CNY)"))
    face_value_max = _amount(label=_("Largest voucher (CNY)"))
    validity_days = forms.IntegerField(
        min_value=1, max_value=MAX_DAYS, initial=365, label=_("Vouchers valid for (days)")
    )
    applications_open_from = forms.DateTimeField(widget=DATETIME_INPUT, label=in_zone(_("Applications open")))
    applications_open_until = forms.DateTimeField(widget=DATETIME_INPUT, label=in_zone(_("Applications close")))
    # --- coverage ---
    domestic_ratio = _percent(
        _("Share on domestic accelerators (%)"), _("e.g. 30 for Ascend or Cambricon chips"), initial=0
    )
    other_ratio = _percent(_("Share on other accelerators (%)"), _("e.g. 20"), initial=0)
    sme_bonus_ratio = _percent(
        _("Extra share for startups and SMEs (%)"), _("added to the share above"), initial=0, required=False
    )
    model_filing_earns_domestic_ratio = forms.BooleanField(
        required=False, label=_("A registered model earns the domestic share on any accelerator")
    )
    sme_contract_limit = _amount(
        label=_("SME contract limit (CNY)"),
        required=False,
        help_text=_("SMEs whose booking costs at most this much get the share below; empty = no contract tier"),
    )
    sme_contract_ratio = _percent(
        _("Share for SMEs within that limit (%)"), _("e.g. 50 (Hangzhou: up to ¥500,000)"), initial=0, required=False
    )
    idle_threshold_percent = _percent(
        _("Idle clusters: utilisation below (%)"),
        _("clusters booked less than this share of their listed hours over the last 7 days; empty = no such rule"),
        required=False,
    )
    idle_extra_ratio = _percent(
        _("Extra share on idle clusters (%)"), _("added to the share above, e.g. 10"), required=False
    )
    # --- caps ---
    annual_cap_per_org = _amount(
        label=_("Yearly cap per organization (CNY)"), required=False, help_text=_("empty = no cap")
    )
    per_booking_cap = _amount(label=_("Cap per booking (CNY)"), required=False, help_text=_("empty = no cap"))
    max_stacked_share = _percent(
        _("Combined cap for all vouchers (%)"),
        _("the most all vouchers together may pay of one booking; 100 = no combined cap"),
        initial=100,
        required=False,
    )
    # --- stacking ---
    level = forms.ChoiceField(
        choices=Level.choices,
        initial=Level.CITY,
        label=_("This program's level"),
        help_text=_("which government runs it"),
    )
    stack_levels = forms.MultipleChoiceField(
        choices=Level.choices,
        required=False,
        widget=CHECKBOXES,
        initial=Level.values,
        label=_("May be combined with programs of these levels"),
        help_text=_("none ticked = never combined with another program (both programs must allow each other)"),
    )
    stack_excluded_programs = ProgramChoiceField(
        queryset=VoucherProgram.objects.none(),
        required=False,
        widget=CHECKBOXES,
        label=_("Never combined with these programs"),
        help_text=_("whatever their level"),
    )
    # --- eligibility ---
    eligible_providers = forms.ModelMultipleChoiceField(
        queryset=Organization.objects.filter(kind=Organization.Kind.PROVIDER).order_by("name"),
        required=False,
        widget=CHECKBOXES,
        label=_("Only these providers"),
        help_text=_("none ticked = any provider"),
    )
    eligible_accelerators = forms.ModelMultipleChoiceField(
        queryset=Accelerator.objects.order_by("name"),
        required=False,
        widget=CHECKBOXES,
        label=_("Only these accelerators"),
        help_text=_("none ticked = every accelerator"),
    )
    eligible_buyer_cities = forms.MultipleChoiceField(
        choices=CITY_CHOICES,
        required=False,
        widget=CHECKBOXES,
        label=_("Only buyers registered in these cities"),
        help_text=_("none ticked = buyers from any city"),
    )
    city_data_centers_only = forms.BooleanField(required=False, label=_("Only data centres in the program's city"))
    requires_model_filing = forms.BooleanField(required=False, label=_("Requires a registered model filing"))
    ban_related_party = forms.BooleanField(
        required=False, initial=True, label=_("Refuse related-party providers (shared owner or legal rep.)")
    )
    require_reviewed_listing = forms.BooleanField(
        required=False, initial=True, label=_("Only hardware that passed the platform review")
    )
    subsidy_period_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_DAYS,
        required=False,
        label=_("Subsidy period (days)"),
        help_text=_("counted from the buyer's first subsidised booking; empty = no limit"),
    )

    def __init__(self, *args, user=None, program: VoucherProgram | None = None, **kwargs):
        if program is not None:
            initial = {name: getattr(program, name) for name in services.PROGRAM_FIELDS}
            initial.update({name: ratio_to_percent(initial[name]) for name in self.PERCENT_FIELDS})
            initial["idle_extra_ratio"] = ratio_to_percent(initial["idle_extra_ratio"])
            initial.update(
                {
                    "eligible_providers": list(program.eligible_providers.all()),
                    "eligible_accelerators": list(program.eligible_accelerators.all()),
                    "stack_excluded_programs": list(program.stack_excluded_programs.all()),
                }
            )
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        orgs = user_organizations(user, kind=Organization.Kind.ISSUER).order_by("name") if user else None
        if program is not None or orgs is None or orgs.count() <= 1:
            del self.fields["organization"]
        else:
            self.fields["organization"].queryset = orgs
        if program is not None:
            del self.fields["budget"]
        if program is None and orgs is not None and orgs.count() == 1 and "city" not in self.initial:
            self.fields["city"].initial = orgs.get().city
        visible = selectors.programs_visible(user).values("pk") if user else []
        choices = Q(pk__in=visible)
        if program is not None:
            # programs excluded earlier stay listed (and ticked) even when no longer visible, so saving keeps them
            choices = (choices | Q(pk__in=program.stack_excluded_programs.values("pk"))) & ~Q(pk=program.pk)
        self.fields["stack_excluded_programs"].queryset = VoucherProgram.objects.filter(choices).order_by(
            "city", "name"
        )

    def fieldsets(self) -> list[dict]:
        """The bound fields by group, in page order: ``[{key, legend, help, fields, boxes, lists}]`` where ``fields``
        are inputs, ``boxes`` single checkboxes and ``lists`` checkbox lists (each group shows them in that order)."""
        groups = []
        for key, legend, help_text, names in self.FIELDSETS:
            bound = [self[name] for name in names if name in self.fields]
            groups.append(
                {
                    "key": key,
                    "legend": legend,
                    "help": help_text,
                    "fields": [f for f in bound if not isinstance(f.field.widget, (forms.CheckboxInput, CHECKBOXES))],
                    "boxes": [f for f in bound if isinstance(f.field.widget, forms.CheckboxInput)],
                    "lists": [f for f in bound if isinstance(f.field.widget, CHECKBOXES)],
                }
            )
        return groups

    # The fields the rules engine reads for the preview of a sample booking (``preview_rules``): the preview works
    # on a half-filled form as long as these are valid.
    PREVIEW_FIELDS = (
        "city",
        "domestic_ratio",
        "other_ratio",
        "sme_bonus_ratio",
        "model_filing_earns_domestic_ratio",
        "sme_contract_limit",
        "sme_contract_ratio",
        "annual_cap_per_org",
        "per_booking_cap",
        "max_stacked_share",
        "level",
        "stack_levels",
        "eligible_providers",
        "eligible_accelerators",
        "eligible_buyer_cities",
        "city_data_centers_only",
        "requires_model_filing",
        "ban_related_party",
        "require_reviewed_listing",
        "subsidy_period_days",
        "idle_threshold_percent",
        "idle_extra_ratio",
    )

    def preview_errors(self) -> list[str]:
        """After ``is_valid()``: the errors of the fields the preview needs, each as "label: message"."""
        return [
            gettext("%(label)s: %(error)s") % {"label": self.fields[name].label, "error": error}
            for name in self.PREVIEW_FIELDS
            if name in self.fields
            for error in self.errors.get(name, [])
        ]

    def preview_rules(self, program_id: int = 0) -> rules.ProgramRules:
        """The rules typed so far, as the rules engine reads them (valid ``PREVIEW_FIELDS`` only)."""
        data = self.cleaned_data
        ratio = {
            name: percent_to_ratio(self.EMPTY_PERCENT[name] if data.get(name) is None else data[name])
            for name in self.PERCENT_FIELDS
        }
        return rules.ProgramRules(
            program_id=program_id,
            city=data["city"],
            model_filing_earns_domestic_ratio=data["model_filing_earns_domestic_ratio"],
            annual_cap_per_org=data.get("annual_cap_per_org"),
            per_booking_cap=data.get("per_booking_cap"),
            eligible_provider_ids=frozenset(org.pk for org in data["eligible_providers"]),
            city_data_centers_only=data["city_data_centers_only"],
            eligible_accelerator_ids=frozenset(chip.pk for chip in data["eligible_accelerators"]),
            requires_model_filing=data["requires_model_filing"],
            ban_related_party=data["ban_related_party"],
            require_reviewed_listing=data["require_reviewed_listing"],
            level=data["level"],
            stack_levels=frozenset(data["stack_levels"]),
            eligible_buyer_cities=frozenset(data["eligible_buyer_cities"]),
            subsidy_period_days=data.get("subsidy_period_days"),
            sme_contract_limit=data.get("sme_contract_limit"),
            # the engine applies the idle-capacity rule only when both are typed (as the service requires)
            idle_threshold_percent=data.get("idle_threshold_percent"),
            idle_extra_ratio=None
            if data.get("idle_extra_ratio") is None
            else percent_to_ratio(data["idle_extra_ratio"]),
            **ratio,
        )

    def service_kwargs(self) -> dict:
        """The cleaned values as ``program_create`` / ``program_update`` keyword arguments (percent → ratio)."""
        data = dict(self.cleaned_data)
        data.pop("organization", None)
        if data.get("budget") is None:
            data.pop("budget", None)
        for name in self.PERCENT_FIELDS:  # an optional share left empty means its default: none, or no cap
            value = data.get(name)
            data[name] = percent_to_ratio(self.EMPTY_PERCENT[name] if value is None else value)
        if data.get("idle_extra_ratio") is not None:  # optional and empty = no idle-capacity rule
            data["idle_extra_ratio"] = percent_to_ratio(data["idle_extra_ratio"])
        return data


class SampleBookingForm(forms.Form):
    """A booking to try the program form's rules on (the preview): posted with the program form, ``sample-`` names."""

    prefix = "sample"
    FIELDS = (
        "accelerator",
        "origin",
        "nodes",
        "gpus_per_node",
        "hours",
        "price_per_gpu_hour",
        "voucher_balance",
        "cluster_utilisation",
    )
    BOXES = ("buyer_is_sme", "buyer_has_model_filing")
    ORIGINS = (("domestic", _("Domestic")), ("imported", _("Imported")))

    accelerator = forms.ModelChoiceField(
        queryset=Accelerator.objects.order_by("name"),
        required=False,
        empty_label=_("Any chip of the origin below"),
        label=_("Accelerator"),
    )
    origin = forms.ChoiceField(
        choices=ORIGINS,
        initial="domestic",
        label=_("Chip origin"),
        help_text=_("when no accelerator is chosen; a chosen one brings its own"),
    )
    nodes = forms.IntegerField(min_value=1, max_value=1000, initial=2, label=_("Nodes"))
    gpus_per_node = forms.IntegerField(min_value=1, max_value=64, initial=8, label=_("GPUs per node"))
    hours = forms.IntegerField(min_value=1, max_value=MAX_DAYS * 24, initial=24, label=_("Hours"))
    price_per_gpu_hour = forms.DecimalField(
        max_digits=PRICE_DIGITS,
        decimal_places=PRICE_PLACES,
        min_value=0,
        initial=Decimal("6.00"),
        label=_("Price per GPU-hour (CNY)"),
    )
    voucher_balance = _amount(
        required=False,
        label=_("Voucher balance (CNY)"),
        help_text=_("empty = the largest voucher, or no limit"),
    )
    cluster_utilisation = _percent(
        _("Cluster utilisation over the last 7 days (%)"),
        _("for the idle-cluster rule; empty = unknown (the rule does not apply)"),
        required=False,
    )
    buyer_is_sme = forms.BooleanField(required=False, initial=True, label=_("The buyer is a startup or SME"))
    buyer_has_model_filing = forms.BooleanField(required=False, label=_("The buyer has a registered model filing"))

    def inputs(self) -> list:
        return [self[name] for name in self.FIELDS]

    def boxes(self) -> list:
        return [self[name] for name in self.BOXES]

    def preview_errors(self) -> list[str]:
        """After ``is_valid()``: each error as "label: message"."""
        return [
            gettext("%(label)s: %(error)s") % {"label": self.fields[name].label, "error": error}
            for name, errors in self.errors.items()
            for error in errors
        ]

    def sample(self, *, face_value_max: Decimal | None = None) -> selectors.SampleBooking:
        """The booking typed (valid form only); an empty balance is the program's largest voucher, if typed."""
        data = self.cleaned_data
        chip = data["accelerator"]
        balance = data["voucher_balance"]
        return selectors.SampleBooking(
            nodes=data["nodes"],
            gpus_per_node=data["gpus_per_node"],
            hours=data["hours"],
            price_per_gpu_hour=data["price_per_gpu_hour"],
            domestic=chip.domestic if chip else data["origin"] == "domestic",
            accelerator_id=chip.pk if chip else None,
            export_controlled=chip.export_controlled if chip else False,
            voucher_balance=face_value_max if balance is None else balance,
            buyer_is_sme=data["buyer_is_sme"],
            buyer_has_model_filing=data["buyer_has_model_filing"],
            cluster_utilisation_percent=data["cluster_utilisation"],
        )
