from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The site's own pages (home and dashboards, the navigation's context) and the demo commands: the top layer,
    which may read every app."""

    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # /metrics counts bookings as they commit (portal.metrics); orders knows nothing of it.
        from django.db.models.signals import post_save

        from portal import metrics

        post_save.connect(metrics.on_booking_saved, sender="orders.Booking", dispatch_uid="portal.metrics.bookings")
