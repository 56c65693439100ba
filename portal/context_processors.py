from django.conf import settings
from django.utils.functional import SimpleLazyObject

from accounts.selectors import user_memberships
from marketplace.core.zones import zone_label


def site(request):
    """Values every page template needs: the currency, the name of the time zone times are shown in
    (``TZ_LABEL``: "北京时间 (UTC+8)"), and which kinds of organization the user acts for
    (``roles.startup``, ``roles.provider``, ``roles.issuer``, ``roles.platform``, ``roles.auditor``) so the
    navigation shows each person only the pages they can use. One query, only for signed-in users."""
    roles: dict[str, bool] = {}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        for kind, role in user_memberships(user).values_list("organization__kind", "role"):
            if role == "auditor":
                roles["auditor"] = True
            else:
                roles[kind] = True
    return {"PLATFORM_CURRENCY": settings.PLATFORM_CURRENCY, "roles": roles, "TZ_LABEL": SimpleLazyObject(zone_label)}
