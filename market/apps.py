from django.apps import AppConfig


class MarketConfig(AppConfig):
    """The compute price index: daily fixings per accelerator and city (traded price, asks, depth, utilisation),
    their page, API and CSV. Between settlement and oversight: it reads listings and orders; oversight's price
    rule reads it."""

    name = "market"
    verbose_name = "Market"
