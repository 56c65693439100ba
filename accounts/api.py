"""Accounts API: token, me, sign-up and e-mail confirmation, verification by platform staff, teams."""

from django.contrib.auth import authenticate
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import emails, filing_services, selectors, services, throttling, tokens, two_factor
from accounts.models import Invitation, Membership, Organization
from accounts.permissions import IsPlatformStaff
from accounts.serializers import (
    ConfirmEmailSerializer,
    DetailSerializer,
    InvitationAcceptSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberSerializer,
    MembershipSerializer,
    MeSerializer,
    ModelFilingCreateSerializer,
    ModelFilingFilterSerializer,
    ModelFilingReviewSerializer,
    ModelFilingSerializer,
    OrganizationProfileSerializer,
    OrganizationRejectSerializer,
    OrganizationReviewFilterSerializer,
    OrganizationReviewSerializer,
    OrganizationVerifySerializer,
    SignupResponseSerializer,
    SignupSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
)
from marketplace.core.exceptions import ApplicationError, NotFound
from marketplace.core.filters import validated_query
from marketplace.core.requests import client_ip

# The header of every API view that acts for one of the user's organizations (``selectors.acting_organization``).
ORG_HEADER = OpenApiParameter(
    "X-Organization",
    int,
    OpenApiParameter.HEADER,
    required=False,
    description="the organization to act for, when you belong to several",
)


class TokenApi(APIView):
    """Exchange a username and password for an API token (``Authorization: Token <t>``)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [throttling.ResilientScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenResponseSerializer})
    # 429 after LOGIN_FAILURE_LIMIT failures for this username from this IP (accounts.throttling).
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username, ip = data.validated_data["username"], client_ip(request)
        if throttling.login_blocked(username=username, ip=ip):
            raise ApplicationError(throttling.BLOCKED_MESSAGE, status=429, code="throttled")
        code = data.validated_data.pop("otp", "")
        user = authenticate(request, **data.validated_data)
        if user is None:
            throttling.login_failed(username=username, ip=ip)
            raise serializers.ValidationError(gettext("Unable to log in with the given username and password."))
        if two_factor.needs_code(user):
            # The failures are cleared only once the code is right: the limit covers both factors.
            if two_factor.confirmed_device(user) is None:
                raise ApplicationError(
                    gettext("Your role requires two-factor sign-in: set it up on the website first."),
                    status=403,
                    code="two_factor_setup_required",
                )
            if not code:
                raise serializers.ValidationError({"otp": [gettext("Enter the code from your authenticator app.")]})
            if two_factor.totp_check(user=user, code=code) is None:
                throttling.login_failed(username=username, ip=ip)
                raise serializers.ValidationError({"otp": [gettext("That code is not right.")]})
        throttling.login_succeeded(username=username, ip=ip)
        return Response({"token": tokens.login_token_for(user=user).key})


class MeApi(APIView):
    """The signed-in user, the organizations they belong to and their role in each."""

    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        user = request.user
        user._prefetched_objects_cache = {"memberships": list(selectors.user_memberships(user))}
        return Response(MeSerializer(user).data)


# --- sign-up and e-mail confirmation -------------------------------------------------------------------------------

SIGNED_UP = (
    "Check your e-mail: follow the link we sent to confirm your address, then log in. Platform staff "
    "verify your organization before it can book, bid, list capacity or apply for vouchers."
)


class SignupApi(APIView):
    """Sign up a startup or compute provider with its first owner (anonymous). The user is inactive until it follows
    the e-mailed link; the organization is pending until platform staff verify it. 400 with field errors and
    nothing written on bad or duplicate input."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [throttling.ResilientScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=SignupSerializer, responses={201: SignupResponseSerializer})
    def post(self, request):
        data = SignupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.signup(**data.validated_data, base_url=emails.site_url(request), ip=client_ip(request))
        body = {"detail": SIGNED_UP, "user": membership.user, "organization": membership.organization}
        return Response(SignupResponseSerializer(body).data, status=status.HTTP_201_CREATED)


class SignupConfirmApi(APIView):
    """Confirm the e-mail address with the token of the e-mailed link: the user may log in from now on. A link
    works once, for three days."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [throttling.ResilientScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=ConfirmEmailSerializer, responses={200: DetailSerializer})
    def post(self, request):
        data = ConfirmEmailSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_confirm_email(token=data.validated_data["token"], ip=client_ip(request))
        return Response({"detail": gettext("Your e-mail address is confirmed: you can log in.")})


class OrganizationDetailApi(APIView):
    """An organization's profile: name, kind, city, SME, verified. Its members and platform staff also get the credit
    code, legal representative and owners; other organizations never do. Unverified organizations answer 404 to
    others."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OrganizationProfileSerializer})
    def get(self, request, pk: int):
        org, private = selectors.organization_profile(pk, request.user)
        return Response(OrganizationProfileSerializer(org, context={"private": private}).data)


# --- verification by platform staff --------------------------------------------------------------------------------


class OrganizationReviewListApi(generics.ListAPIView):
    """Platform staff: organizations to verify, pending first; ``?verification_status=`` filters."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]
    serializer_class = OrganizationReviewSerializer

    @extend_schema(parameters=[OrganizationReviewFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = validated_query(OrganizationReviewFilterSerializer, self.request)
        return selectors.organizations_for_review(status=query.get("verification_status"))


class OrganizationVerifyApi(APIView):
    """Platform staff verify a pending organization (an audit event; its owners are told by e-mail)."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]

    @extend_schema(request=OrganizationVerifySerializer, responses={200: OrganizationReviewSerializer})
    def post(self, request, pk: int):
        data = OrganizationVerifySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = services.organization_verify(
            organization_id=pk,
            actor=request.user,
            note=data.validated_data["note"],
            base_url=emails.site_url(request),
            ip=client_ip(request),
        )
        return Response(OrganizationReviewSerializer(org).data)


class OrganizationRejectApi(APIView):
    """Platform staff reject a pending organization with a reason (required; an audit event; owners are told)."""

    permission_classes = [IsAuthenticated, IsPlatformStaff]

    @extend_schema(request=OrganizationRejectSerializer, responses={200: OrganizationReviewSerializer})
    def post(self, request, pk: int):
        data = OrganizationRejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = services.organization_reject(
            organization_id=pk,
            actor=request.user,
            reason=data.validated_data["reason"],
            base_url=emails.site_url(request),
            ip=client_ip(request),
        )
        return Response(OrganizationReviewSerializer(org).data)


# --- teams ---------------------------------------------------------------------------------------------------------


def _membership_or_404(request, organization_id) -> Membership:
    membership = selectors.membership_of(request.user, organization_id)
    if membership is None:
        raise NotFound(gettext("No such organization."))
    return membership


class InvitationListCreateApi(generics.ListAPIView):
    """``GET``: the organization's pending invitations (its members). ``POST``: an owner invites an e-mail address
    with a role (owner or member; auditor for issuers); the link, valid 7 days, is e-mailed."""

    serializer_class = InvitationSerializer
    queryset = Invitation.objects.none()  # for the schema; the organization's come from ``get_queryset``

    def get_queryset(self):
        return selectors.pending_invitations(_membership_or_404(self.request, self.kwargs["pk"]).organization)

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer})
    def post(self, request, pk: int):
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(
            organization_id=pk,
            actor=request.user,
            **data.validated_data,
            base_url=emails.site_url(request),
            ip=client_ip(request),
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationAcceptApi(APIView):
    """Accept an e-mailed invitation. Signed in: you join with the invitation's role (it must have been sent to your
    e-mail address). Not signed in: send ``username`` and ``password`` to create your account for the invited
    address. 400 when it has expired or was used."""

    permission_classes = [AllowAny]
    throttle_classes = [throttling.ResilientScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=InvitationAcceptSerializer, responses={201: MembershipSerializer})
    def post(self, request, token: str):
        data = InvitationAcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.invitation_accept(
            token=token, user=request.user, ip=client_ip(request), **data.validated_data
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberListApi(generics.ListAPIView):
    """The organization's members and their roles (its members only; other organizations answer 404)."""

    serializer_class = MemberSerializer
    queryset = Membership.objects.none()  # for the schema; the organization's come from ``get_queryset``

    def get_queryset(self):
        return selectors.organization_members(_membership_or_404(self.request, self.kwargs["pk"]).organization)


class MemberDeleteApi(APIView):
    """An owner removes a member, or a member leaves (their own id). The last owner cannot leave or be removed."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int, user_id: int):
        services.membership_remove(organization_id=pk, user_id=user_id, actor=request.user, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- model filings ---------------------------------------------------------------------------------------------------


class ModelFilingListCreateApi(generics.ListAPIView):
    """``GET``: model filings you may read (your startups'; every one for platform staff and issuers, who check
    them), newest first, ``?status=`` filters. ``POST``: a startup member records a filing, pending a check."""

    serializer_class = ModelFilingSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[ModelFilingFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = validated_query(ModelFilingFilterSerializer, self.request)
        filings = selectors.model_filings_visible(self.request.user)
        return filings.filter(status=query["status"]) if "status" in query else filings

    @extend_schema(parameters=[ORG_HEADER], request=ModelFilingCreateSerializer, responses={201: ModelFilingSerializer})
    def post(self, request):
        data = ModelFilingCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        filing = filing_services.model_filing_create(
            organization=selectors.acting_organization_for(request, Organization.Kind.STARTUP, for_write=True),
            actor=request.user,
            ip=client_ip(request),
            **data.validated_data,
        )
        return Response(ModelFilingSerializer(filing).data, status=status.HTTP_201_CREATED)


class _ModelFilingReviewApi(APIView):
    permission_classes = [IsAuthenticated]
    decision = ""

    @extend_schema(request=ModelFilingReviewSerializer, responses={200: ModelFilingSerializer})
    def post(self, request, pk: int):
        if not selectors.model_filings_visible(request.user).filter(pk=pk).exists():
            raise NotFound(gettext("No such model filing."))
        data = ModelFilingReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        filing = filing_services.model_filing_review(
            filing_id=pk,
            decision=self.decision,
            actor=request.user,
            note=data.validated_data["note"],
            ip=client_ip(request),
        )
        return Response(ModelFilingSerializer(filing).data)


class ModelFilingVerifyApi(_ModelFilingReviewApi):
    """Platform staff or an issuer member: the filing is in the public registry (an audit event)."""

    decision = "verify"


class ModelFilingRejectApi(_ModelFilingReviewApi):
    """Platform staff or an issuer member: the filing is not in the registry, or was withdrawn (``note`` required)."""

    decision = "reject"
