"""The compute price index: one ``Fixing`` per UTC day, accelerator and city (``market.services.fixings_compute``)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import CITY_CHOICES
from listings.models import Accelerator
from marketplace.core.money import PriceField

NODE_HOURS = {"max_digits": 14, "decimal_places": 2}


class Fixing(models.Model):
    """The market of one accelerator in one city on one UTC day, computed from the raw rows (never edited by hand).

    Traded side: bookings created that day that became trades (confirmed or later; bid fills are bookings too):
    ``vwap`` = Σ price × GPU-hours ÷ Σ GPU-hours. Ask side: listings offered that day (active, or closed after
    having been approved, with a window overlapping the day): ``ask_mean`` is their price's trimmed mean
    (``market.services.TRIM_SHARE`` cut off each end), depth is their distinct clusters' nodes and GPUs.
    ``utilisation`` = reserved ÷ listed node-hours of those clusters that day. Recomputing a day replaces its rows.
    """

    # The day's figures, in the order the API and the CSV give them (what a recomputation of a day rewrites).
    FIGURES = (
        "vwap",
        "trades",
        "fills",
        "traded_gpu_hours",
        "ask_mean",
        "asks",
        "listed_nodes",
        "listed_gpus",
        "listed_node_hours",
        "reserved_node_hours",
        "utilisation",
    )

    day = models.DateField()
    accelerator = models.ForeignKey(Accelerator, on_delete=models.PROTECT, related_name="fixings")
    city = models.CharField(max_length=32, choices=CITY_CHOICES)
    vwap = PriceField(null=True, blank=True, help_text=_("volume-weighted price per GPU-hour of the day's trades"))
    trades = models.PositiveIntegerField(default=0)
    fills = models.PositiveIntegerField(default=0, help_text=_("trades that filled a bid"))
    traded_gpu_hours = models.PositiveBigIntegerField(default=0)
    ask_mean = PriceField(null=True, blank=True, help_text=_("trimmed mean of the asks' prices per GPU-hour"))
    asks = models.PositiveIntegerField(default=0)
    listed_nodes = models.PositiveIntegerField(default=0)
    listed_gpus = models.PositiveIntegerField(default=0)
    listed_node_hours = models.DecimalField(default=0, **NODE_HOURS)
    reserved_node_hours = models.DecimalField(default=0, **NODE_HOURS)
    utilisation = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)

    class Meta:
        ordering = ["-day", "accelerator", "city"]
        constraints = [
            models.UniqueConstraint(fields=["day", "accelerator", "city"], name="fixing_unique_day_chip_city"),
            models.CheckConstraint(
                condition=models.Q(utilisation__isnull=True) | models.Q(utilisation__gte=0, utilisation__lte=1),
                name="fixing_utilisation_share",
            ),
            models.CheckConstraint(
                condition=models.Q(vwap__isnull=True) | models.Q(vwap__gt=0), name="fixing_vwap_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(ask_mean__isnull=True) | models.Q(ask_mean__gt=0), name="fixing_ask_mean_positive"
            ),
        ]
        indexes = [models.Index(fields=["accelerator", "city", "day"], name="fixing_chip_city_day_idx")]

    def __str__(self):
        return f"{self.day} {self.accelerator_id} {self.city}: vwap {self.vwap} ask {self.ask_mean}"

    @property
    def reference_price(self):
        """The price the audit rule compares bookings with: the trimmed ask mean (one inflated trade cannot move
        it), else the day's traded price; None when the day had neither."""
        return self.ask_mean if self.ask_mean is not None else self.vwap
