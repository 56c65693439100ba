"""Page forms for sign-up, verification decisions and teams. They check types; ``accounts.services`` checks the rules
and its field errors are shown next to the fields (``ServiceErrorsMixin``)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import CITY_CHOICES, Membership
from accounts.serializers import SIGNUP_KIND_CHOICES
from marketplace.core.forms import ServiceErrorsMixin


class SignupForm(ServiceErrorsMixin, forms.Form):
    kind = forms.ChoiceField(
        label=_("Your organization is a"), choices=SIGNUP_KIND_CHOICES, widget=forms.RadioSelect, initial="startup"
    )
    name = forms.CharField(label=_("Registered name"), max_length=200)
    credit_code = forms.CharField(
        label=_("Unified social credit code"),
        max_length=32,
        help_text=_("18 characters, as on the business licence (统一社会信用代码)."),
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "spellcheck": "false"}),
    )
    city = forms.ChoiceField(label=_("Registered city"), choices=[("", _("Choose a city")), *CITY_CHOICES])
    legal_representative = forms.CharField(label=_("Legal representative"), max_length=100)
    owners = forms.CharField(
        label=_("Owners"),
        max_length=2000,
        help_text=_("One name per line: the people or bodies that own the organization."),
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    is_sme = forms.BooleanField(label=_("A startup or small / medium enterprise (SME)"), required=False)
    username = forms.CharField(
        label=_("Username"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    email = forms.EmailField(
        label=_("E-mail"),
        max_length=254,
        help_text=_("We send a link to confirm it before your first log-in."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    ORGANIZATION_FIELDS = ["kind", "name", "credit_code", "city", "legal_representative", "owners", "is_sme"]
    ACCOUNT_FIELDS = ["username", "email", "password", "password2"]

    def clean_owners(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["owners"].replace(",", "\n").splitlines() if line.strip()]

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password2") is not None and data["password"] != data["password2"]:
            self.add_error("password2", _("The two passwords differ."))
        return data

    def organization_fields(self):
        return [self[name] for name in self.ORGANIZATION_FIELDS if name != "kind"]

    def account_fields(self):
        return [self[name] for name in self.ACCOUNT_FIELDS]

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("password2", None)
        return data


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=2000)


class InviteForm(ServiceErrorsMixin, forms.Form):
    email = forms.EmailField(label=_("E-mail"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices, initial=Membership.Role.MEMBER)

    def __init__(self, *args, roles: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if roles is not None:
            self.fields["role"].choices = [(value, label) for value, label in Membership.Role.choices if value in roles]


class InvitationSignupForm(ServiceErrorsMixin, forms.Form):
    """A new account for the invited e-mail address."""

    username = forms.CharField(
        label=_("Username"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password2") is not None and data["password"] != data["password2"]:
            self.add_error("password2", _("The two passwords differ."))
        return data


class ModelFilingForm(ServiceErrorsMixin, forms.Form):
    filing_number = forms.CharField(label=_("Filing number"), max_length=64)
    model_name = forms.CharField(label=_("Model name"), max_length=120)
    registered_on = forms.DateField(label=_("Registered on"), widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(
        label=_("Valid until (optional)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
