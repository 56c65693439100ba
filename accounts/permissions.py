"""DRF permission classes by organization kind and role. Object-level scoping (other orgs → 404) is done by the
selectors each view uses for its queryset."""

from django.utils.translation import gettext_lazy
from rest_framework.permissions import BasePermission

from accounts import selectors
from accounts.models import Organization


class _MemberOfKind(BasePermission):
    kind: str = ""
    message = gettext_lazy("Your organization cannot do this.")

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and selectors.has_org_kind(request.user, self.kind))


class IsStartupMember(_MemberOfKind):
    kind = Organization.Kind.STARTUP
    message = gettext_lazy("Only startup members can do this.")


class IsProviderMember(_MemberOfKind):
    kind = Organization.Kind.PROVIDER
    message = gettext_lazy("Only provider members can do this.")


class IsIssuerMember(_MemberOfKind):
    kind = Organization.Kind.ISSUER
    message = gettext_lazy("Only voucher issuer members can do this.")


class IsPlatformStaff(_MemberOfKind):
    kind = Organization.Kind.PLATFORM
    message = gettext_lazy("Only platform staff can do this.")


class IsAuditor(BasePermission):
    message = gettext_lazy("Only auditors can do this.")

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and selectors.is_auditor(request.user))
