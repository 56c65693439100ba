"""``{% booking_delivery booking %}``: the booking page's access section (connection instructions per node,
incidents, delivered node-hours, the buyer's incident form)."""

from django import template
from django.utils import timezone

from orders import disputes, handovers
from orders.handover_views import IncidentReportForm
from orders.models import BookingDispute

register = template.Library()


@register.inclusion_tag("delivery/_booking_access.html", takes_context=True)
def booking_delivery(context, booking):
    incidents = list(handovers.booking_incidents(booking))
    return {
        "booking": booking,
        "is_buyer": context.get("is_buyer", False),
        "nodes": handovers.booking_node_access(booking),
        "incidents": incidents,
        "delivery": handovers.booking_delivery(booking, incidents=incidents),
        "incident_form": IncidentReportForm(),
        "can_report": booking.status in ("active", "completed")
        or (booking.status == "confirmed" and timezone.now() >= booking.start),
        "dispute": BookingDispute.objects.filter(booking=booking).first(),
        "can_dispute": booking.status in disputes.DISPUTABLE
        and booking.start <= timezone.now() <= booking.end + disputes.DISPUTE_WINDOW,
        "TZ_LABEL": context.get("TZ_LABEL", ""),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }
