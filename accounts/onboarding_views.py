"""Pages and API of ``accounts.onboarding``: platform staff create an issuer or platform organization and invite its
first owner (``/staff/organizations/new/``, ``POST /api/v1/organizations/``); anyone asks for a new confirmation
e-mail (``/signup/resend/``, ``POST /api/v1/signup/resend/``), answered the same whether an account exists or not."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import emails, onboarding, selectors, throttling
from accounts.api import OrganizationReviewListApi
from accounts.models import CITY_CHOICES, Organization
from accounts.permissions import IsPlatformStaff
from accounts.serializers import DetailSerializer, InvitationSerializer
from marketplace.core.exceptions import ApplicationError
from marketplace.core.forms import ServiceErrorsMixin
from marketplace.core.requests import client_ip

STAFF_KIND_CHOICES = [(kind, label) for kind, label in Organization.Kind.choices if kind in onboarding.STAFF_KINDS]
RESENT = gettext_lazy(
    "If an account with this e-mail address is waiting for confirmation, we have sent it a new link. "
    "Check your inbox and spam folder."
)

# --- staff create issuer and platform organizations ----------------------------------------------------------------


class StaffOrganizationForm(ServiceErrorsMixin, forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=STAFF_KIND_CHOICES)
    name = forms.CharField(label=gettext_lazy("Registered name"), max_length=200)
    credit_code = forms.CharField(label=gettext_lazy("Unified social credit code"), max_length=32)
    city = forms.ChoiceField(label=gettext_lazy("City"), choices=[("", gettext_lazy("Choose a city")), *CITY_CHOICES])
    legal_representative = forms.CharField(label=gettext_lazy("Legal representative"), max_length=100)
    owner_email = forms.EmailField(
        label=gettext_lazy("First owner's e-mail"),
        max_length=254,
        help_text=gettext_lazy("They get an invitation to join as owner; it works for 7 days."),
    )


@login_required
def staff_organization_create(request):
    if not selectors.is_platform_staff(request.user):
        raise PermissionDenied(_("Only platform staff create issuer and platform organizations."))
    form = StaffOrganizationForm(request.POST or None)
    code = 200
    if request.method == "POST":
        code = 400
        if form.is_valid():
            try:
                invitation = onboarding.organization_create_by_staff(
                    actor=request.user, **form.cleaned_data, base_url=emails.site_url(request), ip=client_ip(request)
                )
            except ApplicationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(
                    request,
                    _("%(name)s created; %(email)s is invited as its owner.")
                    % {"name": invitation.organization.name, "email": invitation.email},
                )
                return redirect("staff-organizations")
    return render(request, "accounts/staff_organization_new.html", {"form": form}, status=code)


class StaffOrganizationCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=STAFF_KIND_CHOICES)
    name = serializers.CharField(max_length=200)
    credit_code = serializers.CharField(max_length=32)
    city = serializers.ChoiceField(choices=CITY_CHOICES)
    legal_representative = serializers.CharField(max_length=100)
    owner_email = serializers.EmailField(max_length=254)


class OrganizationListCreateApi(OrganizationReviewListApi):
    """``GET``: platform staff list organizations to verify, pending first (``?verification_status=`` filters).
    ``POST``: platform staff create a voucher issuer or platform organization (verified) and invite its first owner
    by e-mail; the answer is the invitation. Startups and providers sign up themselves (``/signup/``)."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]

    @extend_schema(request=StaffOrganizationCreateSerializer, responses={201: InvitationSerializer})
    def post(self, request):
        data = StaffOrganizationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = onboarding.organization_create_by_staff(
            actor=request.user, **data.validated_data, base_url=emails.site_url(request), ip=client_ip(request)
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


# --- a new confirmation e-mail -------------------------------------------------------------------------------------


class ResendForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("E-mail"), max_length=254)


def confirmation_resend(request):
    form = ResendForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            onboarding.confirmation_resend(
                email=form.cleaned_data["email"], base_url=emails.site_url(request), ip=client_ip(request)
            )
            return render(request, "accounts/confirmation_resend.html", {"sent": True, "form": ResendForm()})
        return render(request, "accounts/confirmation_resend.html", {"form": form}, status=400)
    return render(request, "accounts/confirmation_resend.html", {"form": form})


class ConfirmationResendSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class ConfirmationResendApi(APIView):
    """Ask for a new confirmation link (anonymous). The answer is the same whether or not an account waits for
    confirmation at that address; at most one e-mail per address every 5 minutes."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [throttling.ResilientScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=ConfirmationResendSerializer, responses={202: DetailSerializer})
    def post(self, request):
        data = ConfirmationResendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        onboarding.confirmation_resend(
            email=data.validated_data["email"], base_url=emails.site_url(request), ip=client_ip(request)
        )
        return Response({"detail": str(RESENT)}, status=status.HTTP_202_ACCEPTED)
