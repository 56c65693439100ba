"""Accounts API: token, me."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, throttling
from accounts.serializers import MeSerializer, TokenRequestSerializer, TokenResponseSerializer
from marketplace.core.exceptions import ApplicationError

# The header of every API view that acts for one of the user's organizations (``selectors.acting_organization``).
ORG_HEADER = OpenApiParameter("X-Organization", int, OpenApiParameter.HEADER, required=False,
                              description="the organization to act for, when you belong to several")


class TokenView(APIView):
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
        username, ip = data.validated_data["username"], throttling.client_ip(request)
        if throttling.login_blocked(username=username, ip=ip):
            raise ApplicationError(throttling.BLOCKED_MESSAGE, status=429, code="throttled")
        user = authenticate(request, **data.validated_data)
        if user is None:
            throttling.login_failed(username=username, ip=ip)
            raise serializers.ValidationError("Unable to log in with the given username and password.")
        throttling.login_succeeded(username=username, ip=ip)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class MeView(APIView):
    """The signed-in user, the organizations they belong to and their role in each."""

    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        user = request.user
        user._prefetched_objects_cache = {"memberships": list(selectors.user_memberships(user))}
        return Response(MeSerializer(user).data)
