"""API: a buyer organization's SSH public keys (``GET|POST /ssh-keys/``, ``DELETE /ssh-keys/{id}/``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import keys
from accounts.models import Organization, SshPublicKey
from accounts.selectors import acting_organization


class SshKeySerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = SshPublicKey
        fields = ["id", "name", "key_type", "bits", "fingerprint", "public_key", "created_at", "created_by"]


class SshKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    public_key = serializers.CharField(max_length=keys.MAX_KEY_LENGTH, trim_whitespace=False)


def acting_buyer(request, *, for_write: bool = False) -> Organization:
    """The startup the request acts for (``X-Organization`` when the user has several)."""
    return acting_organization(
        request.user,
        kind=Organization.Kind.STARTUP,
        organization_id=request.headers.get("X-Organization"),
        for_write=for_write,
    )


class SshKeyListCreateApi(generics.ListAPIView):
    """Your organization's SSH public keys; POST adds one (ed25519, RSA ≥ 3072 bits or ECDSA; one line, no
    options). Installed on the nodes of your bookings when they start."""

    permission_classes = [IsAuthenticated]
    serializer_class = SshKeySerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SshPublicKey.objects.none()
        return keys.organization_ssh_keys(acting_buyer(self.request))

    @extend_schema(request=SshKeyCreateSerializer, responses={201: SshKeySerializer})
    def post(self, request):
        buyer = acting_buyer(request, for_write=True)
        data = SshKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = keys.ssh_key_add(organization=buyer, actor=request.user, **data.validated_data)
        return Response(SshKeySerializer(key).data, status=status.HTTP_201_CREATED)


class SshKeyDetailApi(APIView):
    """DELETE one of your organization's keys (others' → 404)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        keys.ssh_key_delete(organization=acting_buyer(request, for_write=True), key_id=pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
