"""Wallet API: balance, entry history, and deposits recorded by platform staff.

The web layer (this module and ``views.py``) may import ``accounts`` (to resolve the acting organization and
roles) and ``audit``; ``ledger.models``, ``ledger.services`` and ``ledger.selectors`` never import another app.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organization
from accounts.permissions import IsPlatformStaff, IsStartupMember
from accounts.selectors import acting_organization_for
from ledger import selectors
from ledger.deposits import deposit_record
from ledger.models import Entry
from ledger.serializers import DepositInputSerializer, DepositSerializer, WalletEntrySerializer, WalletSerializer
from marketplace.core.idempotency import SCHEMA_PARAMETER as IDEMPOTENCY_HEADER
from marketplace.core.idempotency import idempotent
from marketplace.core.requests import client_ip


def _wallet_data(organization_id: int) -> dict:
    return {
        "organization": organization_id,
        "currency": settings.PLATFORM_CURRENCY,
        **selectors.wallet_summary(organization_id),
    }


class WalletApi(APIView):
    """The acting startup's wallet (``X-Organization`` picks one when the user belongs to several)."""

    permission_classes = [IsStartupMember]

    @extend_schema(responses=WalletSerializer)
    def get(self, request):
        return Response(
            WalletSerializer(_wallet_data(acting_organization_for(request, Organization.Kind.STARTUP).pk)).data
        )


class WalletEntriesApi(generics.ListAPIView):
    """The acting startup's wallet and hold entries, newest first, paginated."""

    permission_classes = [IsStartupMember]
    serializer_class = WalletEntrySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user to resolve
            return Entry.objects.none()
        return selectors.wallet_entries(acting_organization_for(self.request, Organization.Kind.STARTUP).pk)


class DepositApi(APIView):
    """Platform staff record a bank transfer received for a startup. Accepts ``Idempotency-Key``."""

    permission_classes = [IsPlatformStaff]

    @extend_schema(
        request=DepositInputSerializer,
        responses={201: DepositSerializer, 200: DepositSerializer},
        parameters=[IDEMPOTENCY_HEADER],
    )
    @idempotent
    def post(self, request):
        params = DepositInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        posted = deposit_record(
            organization_id=data["organization"],
            amount=data["amount"],
            reference=data["reference"],
            actor=request.user,
            ip=client_ip(request),
        )
        body = {
            "id": posted.pk,
            "organization": data["organization"],
            "amount": data["amount"],
            "reference": data["reference"],
            "created_at": posted.created_at,
            "wallet": _wallet_data(data["organization"]),
        }
        return Response(
            DepositSerializer(body).data, status=status.HTTP_200_OK if posted.replayed else status.HTTP_201_CREATED
        )
