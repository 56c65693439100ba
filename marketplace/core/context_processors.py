from django.conf import settings


def site(request):
    """Values every page template needs."""
    return {"PLATFORM_CURRENCY": settings.PLATFORM_CURRENCY}
