"""Bookings API: quotes, bookings, confirm, cancel. Views validate, call one service and serialize."""

from __future__ import annotations

from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ORG_HEADER
from accounts.models import Organization
from accounts.permissions import IsProviderMember, IsStartupMember
from accounts.selectors import acting_organization_for
from listings.api import ListingListCreateApi
from listings.models import Accelerator, Listing
from listings.selectors import listing_rows
from marketplace.core.exceptions import ApplicationError
from marketplace.core.filters import validated_query
from marketplace.core.idempotency import SCHEMA_PARAMETER as IDEMPOTENCY_HEADER
from marketplace.core.idempotency import handler_rolls_back_whole, idempotent
from marketplace.core.requests import client_ip
from marketplace.core.schema import filterset_parameters
from orders import bid_selectors, bid_services, search, selectors, services
from orders.serializers import (
    BidDetailSerializer,
    BidFilterSerializer,
    BidRequestSerializer,
    BidSerializer,
    BookingCreatedSerializer,
    BookingDetailSerializer,
    BookingFilterSerializer,
    BookingRequestSerializer,
    BookingSerializer,
    DepthSerializer,
    NetPriceListingSerializer,
    QuoteRequestSerializer,
    QuoteSerializer,
)


class QuoteApi(APIView):
    """Price a booking without writing anything."""

    permission_classes = [IsAuthenticated, IsStartupMember]

    @extend_schema(request=QuoteRequestSerializer, responses={200: QuoteSerializer}, parameters=[ORG_HEADER])
    def post(self, request):
        data = QuoteRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        buyer = acting_organization_for(request, Organization.Kind.STARTUP)
        values = data.validated_data
        listing = services.listing_for_quote(values["listing"])
        quote = services.quote_compute(
            listing=listing,
            nodes=values["nodes"],
            start=values["start"],
            end=values["end"],
            buyer=buyer,
            vouchers=values["vouchers"],
        )
        return Response(QuoteSerializer(quote).data)


class BookingListCreateApi(generics.ListAPIView):
    """``GET``: bookings of the organizations you act for (a startup's own, a provider's on its clusters),
    newest first, ``?status=`` filters. ``POST``: book (startup members); 201, or 409 when nodes or funds are
    short. Accepts an ``Idempotency-Key`` header."""

    serializer_class = BookingSerializer

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated()]  # ``_buyer`` answers 403 for non-startup members, without a second query
        return [IsAuthenticated(), (IsStartupMember | IsProviderMember)()]

    def get_queryset(self):
        query = validated_query(BookingFilterSerializer, self.request)
        return selectors.bookings_visible_to(
            self.request.user, organization_id=self.request.headers.get("X-Organization"), status=query.get("status")
        )

    @extend_schema(parameters=[ORG_HEADER, BookingFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=BookingRequestSerializer,
        responses={201: BookingCreatedSerializer},
        parameters=[ORG_HEADER, IDEMPOTENCY_HEADER],
    )
    @idempotent
    def post(self, request):
        data = BookingRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        booking = services.booking_create(
            buyer=acting_organization_for(request, Organization.Kind.STARTUP, for_write=True),
            listing_id=values["listing"],
            nodes=values["nodes"],
            start=values["start"],
            end=values["end"],
            created_by=request.user,
            vouchers=values["vouchers"],
            confirm=values["confirm"],
            ip=client_ip(request),
            # With an Idempotency-Key the booking runs in ``idempotent``'s transaction, which an error rolls back
            # whole: the booking's own savepoint would be two round trips for nothing.
            savepoint=not handler_rolls_back_whole(request),
        )
        return Response(BookingCreatedSerializer(booking).data, status=status.HTTP_201_CREATED)


def _detail_response(request, booking_id) -> Response:
    booking = selectors.booking_detail(booking_id=booking_id, queryset=selectors.bookings_visible_to(request.user))
    return Response(BookingDetailSerializer(booking).data)


class BookingDetailApi(APIView):
    """One booking with its reserved nodes and status history; another organization's answers 404."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: BookingDetailSerializer})
    def get(self, request, pk):
        return _detail_response(request, pk)


class _BookingActionApi(APIView):
    permission_classes = [IsAuthenticated, IsStartupMember]
    action_name = ""

    def act(self, booking, request):  # pragma: no cover - overridden
        raise NotImplementedError

    @extend_schema(request=None, responses={200: BookingDetailSerializer})
    def post(self, request, pk):
        booking = selectors.booking_detail(booking_id=pk, queryset=selectors.bookings_bought_by(request.user))
        self.act(booking, request)
        return _detail_response(request, pk)


class BookingConfirmApi(_BookingActionApi):
    """``held`` → ``confirmed`` (409 from any other status or once the hold lapsed)."""

    def act(self, booking, request):
        services.booking_confirm(booking=booking, actor=request.user, ip=client_ip(request))


class BookingCancelApi(_BookingActionApi):
    """``held|confirmed`` → ``cancelled`` before the start, releasing the payment in full (409 otherwise)."""

    def act(self, booking, request):
        services.booking_cancel(booking=booking, actor=request.user, ip=client_ip(request))


# --- bids and the order book ------------------------------------------------------------------------------------


class BidListCreateApi(generics.ListAPIView):
    """``GET``: your startups' bids, newest first (``?status=``). ``POST``: place a bid (startup members): its
    maximum cash cost is held at once (409 when the wallet is short) and it is matched at once when a slot fits.
    Accepts an ``Idempotency-Key`` header."""

    serializer_class = BidSerializer
    permission_classes = [IsAuthenticated, IsStartupMember]

    def get_queryset(self):
        query = validated_query(BidFilterSerializer, self.request)
        return bid_selectors.bids_of_user(
            self.request.user, organization_id=self.request.headers.get("X-Organization"), status=query.get("status")
        )

    @extend_schema(parameters=[ORG_HEADER, BidFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=BidRequestSerializer, responses={201: BidSerializer}, parameters=[ORG_HEADER, IDEMPOTENCY_HEADER]
    )
    @idempotent
    def post(self, request):
        data = BidRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bid = bid_services.bid_place(
            buyer=acting_organization_for(request, Organization.Kind.STARTUP, for_write=True),
            created_by=request.user,
            ip=client_ip(request),
            **data.validated_data,
        )
        return Response(BidSerializer(bid).data, status=status.HTTP_201_CREATED)


class BidDetailApi(APIView):
    """One of your bids with the booking it produced; another organization's answers 404."""

    permission_classes = [IsAuthenticated, IsStartupMember]

    @extend_schema(responses={200: BidDetailSerializer})
    def get(self, request, pk):
        bid = bid_selectors.bid_detail(bid_id=pk, queryset=bid_selectors.bids_of_user(request.user))
        return Response(BidDetailSerializer(bid).data)


class BidCancelApi(APIView):
    """``open`` → ``cancelled``, the hold released (409 when not open)."""

    permission_classes = [IsAuthenticated, IsStartupMember]

    @extend_schema(request=None, responses={200: BidDetailSerializer})
    def post(self, request, pk):
        bid = bid_selectors.bid_detail(bid_id=pk, queryset=bid_selectors.bids_of_user(request.user))
        bid_services.bid_cancel(bid=bid, actor=request.user, ip=client_ip(request))
        bid = bid_selectors.bid_detail(bid_id=pk, queryset=bid_selectors.bids_of_user(request.user))
        return Response(BidDetailSerializer(bid).data)


class MarketDepthApi(APIView):
    """The order book of one accelerator: ask price levels with free GPUs, open bid price levels with GPUs."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[OpenApiParameter("accelerator", str, required=True)], responses={200: DepthSerializer})
    def get(self, request):
        slug = request.query_params.get("accelerator", "")
        accelerator = Accelerator.objects.filter(slug=slug).first() if slug else None
        if accelerator is None:
            raise ApplicationError(
                gettext("Unknown accelerator."), errors={"accelerator": [gettext("Give a known accelerator slug.")]}
            )
        return Response(DepthSerializer(bid_selectors.market_depth(accelerator=accelerator)).data)


# --- listing search by what I will pay --------------------------------------------------------------------------


class ListingSearchApi(ListingListCreateApi):
    """``GET /api/v1/listings/``: the listings search (``listings.api.ListingListCreateApi``, whose POST this
    keeps) plus ``vouchers=1,2`` — each result then carries ``net_price_per_gpu_hour`` after those vouchers of
    yours (null where one may not pay; another organization's id is a 400 on ``vouchers``) — and
    ``ordering=net_price`` / ``-net_price``. Routed at the listings URL because listings may not import vouchers
    (see ``orders.search``)."""

    @extend_schema(
        parameters=[
            ORG_HEADER,
            *filterset_parameters(search.NetPriceFilterSet, search.API_PARAMETER_DESCRIPTIONS),
        ],
        responses={200: NetPriceListingSerializer(many=True)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def list(self, request, *args, **kwargs):
        params = search.NetPriceFilterSet(request.query_params)
        if not params.is_valid():
            raise ApplicationError(gettext("Invalid search parameters."), errors=params.error_dict())
        found = search.api_search(request, params.cleaned())
        page = self.paginate_queryset(found.listings())
        rows = listing_rows(page, start=found.start, end=found.end)
        found.annotate(rows)
        # One shape either way (the schema's): net_price_per_gpu_hour is null when no vouchers were given.
        return self.get_paginated_response(
            NetPriceListingSerializer(rows, many=True, context={"request": request}).data
        )

    def get_queryset(self):  # for the schema; ``list`` searches
        return Listing.objects.none()
