"""The business licence of an organization: the page route (``/organization/{id}/licence/``: GET the file, POST a new
one from the team page) and the API (``/api/v1/organizations/{id}/licence/``). Readable by the organization's
members and platform staff only (others: 404); served with the type sniffed at upload, never guessed from a name."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import licences
from marketplace.core.exceptions import NotFound
from marketplace.core.requests import client_ip


def _file_response(org) -> FileResponse:
    try:
        handle = org.business_licence.open("rb")
    except FileNotFoundError:
        raise Http404(_("No such business licence.")) from None
    response = FileResponse(
        handle,
        content_type=org.business_licence_type or "application/octet-stream",
        as_attachment=True,
        filename=f"business-licence-{org.pk}.{org.business_licence.name.rsplit('.', 1)[-1]}",
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def licence(request, pk: int):
    if request.method != "POST":
        return _file_response(licences.licence_for(request.user, pk))
    # A refusal (not a member: 404; a bad file: 400 with the reason) is answered on the error page
    # (marketplace.core.middleware); nothing is written.
    licences.business_licence_upload(
        organization_id=pk, actor=request.user, file=request.FILES.get("file"), ip=client_ip(request)
    )
    messages.success(request, _("Business licence uploaded: platform staff will check it."))
    return redirect("team")


class LicenceUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="PDF, PNG or JPEG (by content), at most 5 MB")


class LicenceSerializer(serializers.Serializer):
    organization = serializers.IntegerField(source="pk")
    content_type = serializers.CharField(source="business_licence_type")


class LicenceApi(APIView):
    """``GET``: the organization's business licence file (its members and platform staff; others 404). ``POST``
    (multipart, ``file``): an owner or member uploads it, replacing the previous one."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, pk: int):
        return _file_response(licences.licence_for(request.user, pk))

    @extend_schema(request={"multipart/form-data": LicenceUploadSerializer}, responses={200: LicenceSerializer})
    def post(self, request, pk: int):
        if not licences.may_upload(request.user, pk):
            raise NotFound(_("No such organization."))
        data = LicenceUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = licences.business_licence_upload(
            organization_id=pk, actor=request.user, file=data.validated_data["file"], ip=client_ip(request)
        )
        return Response(LicenceSerializer(org).data)
