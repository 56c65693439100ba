from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        # orders depends on listings, never the reverse: listings sends a signal, orders receives it here.
        # delivery_tasks / resale_tasks register orders.delivery_sweep / orders.resale_sweep
        from listings.signals import listing_activated
        from orders import delivery_tasks, resale_tasks, tasks  # noqa: F401
        from orders.signals import resale_ask_opened

        listing_activated.connect(tasks.on_listing_activated, dispatch_uid="orders.match_on_listing_activated")
        # A new resale ask gets the open bids' chance too (resale_services sends it on commit: services never
        # import tasks).
        resale_ask_opened.connect(resale_tasks.on_resale_ask_opened, dispatch_uid="orders.match_on_resale_ask_opened")
