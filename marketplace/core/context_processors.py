from django.conf import settings

from accounts.selectors import user_memberships


def site(request):
    """Values every page template needs: the currency, and which kinds of organization the user acts for
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
    return {"PLATFORM_CURRENCY": settings.PLATFORM_CURRENCY, "roles": roles}
