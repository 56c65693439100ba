"""Resale API (issue 21): resell part of a booking, search open resale asks, withdraw one, buy one. Views
validate, call one service and serialize."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ORG_HEADER
from accounts.models import Organization
from accounts.permissions import IsStartupMember
from accounts.selectors import acting_organization_for
from marketplace.core.filters import validated_query
from marketplace.core.idempotency import SCHEMA_PARAMETER as IDEMPOTENCY_HEADER
from marketplace.core.idempotency import idempotent
from marketplace.core.requests import client_ip
from orders import resale_selectors, resale_services, selectors
from orders.resale_serializers import (
    ResaleAskFilterSerializer,
    ResaleAskSerializer,
    ResaleBuyRequestSerializer,
    ResaleSaleSerializer,
    ResellRequestSerializer,
)


class BookingResellApi(APIView):
    """Offer some of the booking's nodes and/or a later part of its window for resale at your price (startup
    members of the buyer). 201 with the ask; 400 with field errors; 404 for another organization's booking; 409
    when the booking is neither confirmed nor running. Accepts an ``Idempotency-Key`` header."""

    permission_classes = [IsAuthenticated, IsStartupMember]

    @extend_schema(
        request=ResellRequestSerializer,
        responses={201: ResaleAskSerializer},
        parameters=[ORG_HEADER, IDEMPOTENCY_HEADER],
    )
    @idempotent
    def post(self, request, pk):
        booking = selectors.booking_detail(booking_id=pk, queryset=selectors.bookings_bought_by(request.user))
        data = ResellRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        seller = acting_organization_for(
            request, Organization.Kind.STARTUP, for_write=True, organization=booking.buyer_id
        )
        ask = resale_services.resale_ask_create(
            booking_id=booking.pk,
            seller=seller,
            created_by=request.user,
            ip=client_ip(request),
            **data.validated_data,
        )
        return Response(ResaleAskSerializer(ask).data, status=status.HTTP_201_CREATED)


class ResaleAskListApi(generics.ListAPIView):
    """Open resale asks of every cluster, cheapest first, filtered like the listings search (``accelerator``,
    ``city``, ``start``/``end``: the ask's window covers them, ``max_price``); ``mine=true``: your
    organizations' asks in every status (``status`` filters)."""

    serializer_class = ResaleAskSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        query = validated_query(ResaleAskFilterSerializer, self.request)
        if query.get("mine"):
            return resale_selectors.resale_asks_of(
                self.request.user,
                organization_id=self.request.headers.get("X-Organization"),
                status=query.get("status"),
            ).order_by("-created_at", "-id")
        return resale_selectors.resale_asks_open(
            accelerators=query.get("accelerator") or (),
            city=query.get("city", ""),
            start=query.get("start"),
            end=query.get("end"),
            max_price=query.get("max_price"),
        )

    @extend_schema(parameters=[ORG_HEADER, ResaleAskFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ResaleAskDetailApi(APIView):
    """One resale ask: any open one, or one of yours; else 404."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: ResaleAskSerializer})
    def get(self, request, pk):
        return Response(ResaleAskSerializer(resale_selectors.resale_ask_visible(ask_id=pk, user=request.user)).data)


class ResaleAskWithdrawApi(APIView):
    """``open`` → ``withdrawn`` (the seller's startup members; 404 for another organization's ask, 409 when not
    open)."""

    permission_classes = [IsAuthenticated, IsStartupMember]

    @extend_schema(request=None, responses={200: ResaleAskSerializer})
    def post(self, request, pk):
        ask = resale_selectors.resale_ask_own(ask_id=pk, user=request.user)
        seller = acting_organization_for(request, Organization.Kind.STARTUP, for_write=True, organization=ask.seller_id)
        ask = resale_services.resale_ask_withdraw(ask=ask, seller=seller, actor=request.user, ip=client_ip(request))
        return Response(ResaleAskSerializer(resale_selectors.resale_asks_of(request.user).get(pk=ask.pk)).data)


class ResaleAskBuyApi(APIView):
    """Buy ``nodes`` whole nodes of an open resale ask for ``[start, end)`` inside its window (startup members):
    201 with the sale and your new confirmed booking; the price is paid from your wallet at once. 400 with field
    errors, 404 for an unknown or closed ask, 409 when too few nodes are left or your wallet is short. Accepts an
    ``Idempotency-Key`` header."""

    permission_classes = [IsAuthenticated, IsStartupMember]

    @extend_schema(
        request=ResaleBuyRequestSerializer,
        responses={201: ResaleSaleSerializer},
        parameters=[ORG_HEADER, IDEMPOTENCY_HEADER],
    )
    @idempotent
    def post(self, request, pk):
        data = ResaleBuyRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sale = resale_services.resale_buy(
            ask_id=pk,
            buyer=acting_organization_for(request, Organization.Kind.STARTUP, for_write=True),
            created_by=request.user,
            ip=client_ip(request),
            **data.validated_data,
        )
        return Response(ResaleSaleSerializer(sale).data, status=status.HTTP_201_CREATED)
