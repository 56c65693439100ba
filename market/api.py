"""``GET /api/v1/market/index/``: the price index fixings, filtered and paginated. Every signed-in user reads it
(aggregates per accelerator and city: no organization's data)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated

from market import selectors
from market.models import Fixing
from market.serializers import FixingQuerySerializer, FixingSerializer


def index_filters(query_params) -> dict:
    """The validated filters as ``selectors.fixings`` keywords (``ValidationError`` → 400 with field errors)."""
    query = FixingQuerySerializer(data=query_params)
    query.is_valid(raise_exception=True)
    data = query.validated_data
    return {
        "accelerator": data.get("accelerator"),
        "city": data.get("city"),
        "since": data.get("from"),
        "until": data.get("to"),
    }


@extend_schema_view(get=extend_schema(parameters=[FixingQuerySerializer]))
class FixingListApi(generics.ListAPIView):
    """Daily fixings per accelerator and city, oldest first: volume-weighted traded price, trimmed mean of the
    asks, ask depth and utilisation."""

    permission_classes = [IsAuthenticated]
    serializer_class = FixingSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Fixing.objects.none()
        return selectors.fixings(**index_filters(self.request.query_params))
