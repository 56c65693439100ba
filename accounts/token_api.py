"""API: the signed-in user's named API tokens (``GET|POST /tokens/``, ``DELETE /tokens/{id}/`` revokes)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import tokens
from accounts.models import ApiToken


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its text (only the SHA-256 is stored)."""

    last_used_at = serializers.DateTimeField(allow_null=True, read_only=True)
    revoked_at = serializers.DateTimeField(allow_null=True, read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at", "active"]

    def get_active(self, token) -> bool:
        return token.revoked_at is None and token.expires_at > timezone.now()


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="the token itself: shown this once, never again")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, max_value=3650, help_text="default: API_TOKEN_DAYS (90)"
    )


class ApiTokenListCreateApi(generics.ListAPIView):
    """Your API tokens (name, prefix, expiry, last use; never the token). POST creates one: the response holds the
    token, shown this once. Send it as ``Authorization: Token <token>``."""

    permission_classes = [IsAuthenticated]
    serializer_class = ApiTokenSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return tokens.user_tokens(self.request.user)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def post(self, request):
        data = ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = tokens.api_token_create(user=request.user, **data.validated_data)
        token.token = raw
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class ApiTokenDetailApi(APIView):
    """DELETE revokes one of your tokens at once (another user's → 404)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        tokens.api_token_revoke(user=request.user, token_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
