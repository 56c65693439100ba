"""Listings API: accelerators, search, provider data centres / clusters / listings, submit, pause, resume, review.

Thin views: validate with a serializer or the filter set, call one service or selector, serialize.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organization
from accounts.permissions import IsPlatformStaff, IsProviderMember
from accounts.selectors import acting_organization_for
from listings import selectors, services
from listings.filters import ListingFilterSet
from listings.models import Listing
from listings.serializers import (
    AcceleratorSerializer,
    ClusterCreateSerializer,
    ClusterSerializer,
    DataCenterCreateSerializer,
    DataCenterSerializer,
    ListingSerializer,
    ListingWriteSerializer,
    ReviewSerializer,
)
from marketplace.core.exceptions import ApplicationError


def listing_response(listing: Listing, request, *, status_code=status.HTTP_200_OK) -> Response:
    """Re-read the listing with its search columns so writes answer in the same shape as reads."""
    fresh = selectors.with_search_columns(Listing.objects.filter(pk=listing.pk)).get()
    return Response(ListingSerializer(fresh, context={"request": request}).data, status=status_code)


class AcceleratorListApi(generics.ListAPIView):
    """The accelerator catalog (public)."""

    permission_classes = [AllowAny]
    serializer_class = AcceleratorSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.accelerators()


class ListingListCreateApi(generics.ListCreateAPIView):
    """GET: search (see ``ListingFilterSet``; anonymous and startups see active listings only). POST: a provider
    member creates a draft listing of one of their clusters."""

    serializer_class = ListingSerializer
    filter_backends: list = []  # parameters are parsed by ``ListingFilterSet`` in ``list``

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsProviderMember()]

    def get_queryset(self):  # for the schema; ``list`` searches
        return Listing.objects.none()

    def list(self, request, *args, **kwargs):
        params = ListingFilterSet(request.query_params)
        if not params.is_valid():
            raise ApplicationError(gettext("Invalid search parameters."), errors=params.error_dict())
        filters = params.cleaned()
        page = self.paginate_queryset(selectors.listing_search(filters=filters, user=request.user))
        rows = selectors.listing_rows(page, start=filters.get("start"), end=filters.get("end"))
        return self.get_paginated_response(ListingSerializer(rows, many=True, context={"request": request}).data)

    @extend_schema(request=ListingWriteSerializer, responses={201: ListingSerializer})
    def post(self, request):
        provider = acting_organization_for(request, Organization.Kind.PROVIDER, for_write=True)
        data = ListingWriteSerializer(
            data=request.data, clusters=selectors.provider_clusters(request.user).filter(data_center__provider=provider)
        )
        data.is_valid(raise_exception=True)
        listing = services.listing_create(provider=provider, actor=request.user, **data.validated_data)
        return listing_response(listing, request, status_code=status.HTTP_201_CREATED)


class ListingDetailApi(APIView):
    """GET a visible listing; PATCH price / window / minimum hours of one of your own (others' → 404)."""

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsProviderMember()]

    @extend_schema(responses={200: ListingSerializer})
    def get(self, request, pk: int):
        try:
            listing = selectors.listing_for_user(pk, request.user)
        except Listing.DoesNotExist:
            raise ApplicationError(gettext("Not found."), status=404) from None
        return Response(ListingSerializer(listing, context={"request": request}).data)

    @extend_schema(request=ListingWriteSerializer, responses={200: ListingSerializer})
    def patch(self, request, pk: int):
        listing = get_object_or_404(selectors.provider_listings(request.user), pk=pk)
        data = ListingWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        listing = services.listing_update(listing=listing, actor=request.user, **data.validated_data)
        return listing_response(listing, request)


class ListingActionApi(APIView):
    """POST /listings/{id}/submit/ | pause/ | resume/ on one of your own listings (others' → 404)."""

    permission_classes = [IsProviderMember]
    actions = {"submit": services.listing_submit, "pause": services.listing_pause, "resume": services.listing_resume}
    action_name = ""

    @extend_schema(request=None, responses={200: ListingSerializer})
    def post(self, request, pk: int):
        listing = get_object_or_404(selectors.provider_listings(request.user), pk=pk)
        listing = self.actions[self.action_name](listing=listing, actor=request.user)
        return listing_response(listing, request)


class ListingReviewApi(APIView):
    """POST /listings/{id}/review/ {decision: approve|reject, note}: platform staff only."""

    permission_classes = [IsPlatformStaff]

    @extend_schema(request=ReviewSerializer, responses={200: ListingSerializer})
    def post(self, request, pk: int):
        listing = get_object_or_404(Listing.objects.all(), pk=pk)
        data = ReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        listing = services.listing_review(listing=listing, actor=request.user, **data.validated_data)
        return listing_response(listing, request)


class DataCenterListCreateApi(generics.ListCreateAPIView):
    """Your organization's data centres."""

    permission_classes = [IsProviderMember]
    serializer_class = DataCenterSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.provider_data_centers(self.request.user)

    @extend_schema(request=DataCenterCreateSerializer, responses={201: DataCenterSerializer})
    def post(self, request):
        data = DataCenterCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data_center = services.data_center_create(
            provider=acting_organization_for(request, Organization.Kind.PROVIDER, for_write=True),
            actor=request.user,
            **data.validated_data,
        )
        return Response(DataCenterSerializer(data_center).data, status=status.HTTP_201_CREATED)


class ClusterListCreateApi(generics.ListCreateAPIView):
    """Your organization's clusters; POST creates one with its nodes (and provenance when export-controlled)."""

    permission_classes = [IsProviderMember]
    serializer_class = ClusterSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.provider_clusters(self.request.user)

    @extend_schema(request=ClusterCreateSerializer, responses={201: ClusterSerializer})
    def post(self, request):
        provider = acting_organization_for(request, Organization.Kind.PROVIDER, for_write=True)
        data = ClusterCreateSerializer(
            data=request.data, data_centers=selectors.provider_data_centers(request.user).filter(provider=provider)
        )
        data.is_valid(raise_exception=True)
        cluster = services.cluster_create(actor=request.user, **data.validated_data)
        return Response(
            ClusterSerializer(selectors.provider_clusters(request.user).get(pk=cluster.pk)).data,
            status=status.HTTP_201_CREATED,
        )
