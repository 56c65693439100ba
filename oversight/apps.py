from django.apps import AppConfig


class OversightConfig(AppConfig):
    """What auditors and issuers read: the audit events API, spend reports, anomaly flags, CSV exports and their
    pages. Above settlement: it reads every app and no app below reads it."""

    name = "oversight"
    verbose_name = "Oversight"

    def ready(self) -> None:
        # oversight depends on settlement, never the reverse: settlement sends a signal, oversight receives it here.
        from listings.signals import inventory_mismatched
        from orders.signals import resale_above_price
        from oversight import tasks
        from settlement.signals import voucher_bookings_settled

        voucher_bookings_settled.connect(
            tasks.on_voucher_bookings_settled, dispatch_uid="oversight.flags_on_voucher_bookings_settled"
        )
        resale_above_price.connect(tasks.on_resale_above_price, dispatch_uid="oversight.flag_resale_above_price")
        inventory_mismatched.connect(tasks.on_inventory_mismatched, dispatch_uid="oversight.flag_hardware_mismatch")
