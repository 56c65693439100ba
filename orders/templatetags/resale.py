"""``{% booking_resale booking %}``: the booking page's resale section (its asks, what was sold out of it, where it
was bought, and the buyer's resell form)."""

import datetime as dt

from django import template
from django.utils import timezone

from marketplace.core.hours import start_of_hour
from orders import resale_selectors, resale_services
from orders.resale_views import ResellForm

register = template.Library()


@register.inclusion_tag("orders/_booking_resale.html", takes_context=True)
def booking_resale(context, booking):
    resale = resale_selectors.resale_of_booking(booking)
    can_resell = (
        context.get("is_buyer", False) and booking.status in resale_services.RESELLABLE and booking.end > timezone.now()
    )
    return {
        "booking": booking,
        "is_buyer": context.get("is_buyer", False),
        "can_resell": can_resell,
        "resell_form": ResellForm(
            initial={
                "nodes": 1,
                "start": max(booking.start, start_of_hour(timezone.now()) + dt.timedelta(hours=1)),
                "end": booking.end,
            }
        )
        if can_resell
        else None,
        "voucher_floor": resale_services.voucher_floor(booking),
        **resale,
        "TZ_LABEL": context.get("TZ_LABEL", ""),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }
