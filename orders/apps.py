from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        # orders depends on listings, never the reverse: listings sends a signal, orders receives it here.
        # delivery_tasks / resale_tasks register orders.delivery_sweep / orders.resale_sweep
        from listings.signals import listing_activated
        from orders import delivery_tasks, resale_tasks, tasks  # noqa: F401

        listing_activated.connect(tasks.on_listing_activated, dispatch_uid="orders.match_on_listing_activated")
