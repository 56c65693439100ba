from django.apps import AppConfig


class OversightConfig(AppConfig):
    """What auditors and issuers read: the audit events API, spend reports, anomaly flags, CSV exports and their
    pages. Above settlement: it reads every app and no app below reads it."""

    name = "oversight"
    verbose_name = "Oversight"

    def ready(self) -> None:
        # oversight depends on settlement, never the reverse: settlement sends a signal, oversight receives it here.
        from oversight import tasks
        from settlement.signals import voucher_bookings_settled

        voucher_bookings_settled.connect(
            tasks.on_voucher_bookings_settled, dispatch_uid="oversight.flags_on_voucher_bookings_settled"
        )
