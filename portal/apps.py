from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The site's own pages (home and dashboards, the navigation's context) and the demo commands: the top layer,
    which may read every app."""

    name = "portal"
    verbose_name = "Portal"
