"""API shapes for the provider agent and the agent pages' API. Every field the agent sends is bounded: a node may
send garbage, which answers 400 with field errors and writes nothing."""

from __future__ import annotations

import math

from django.utils.translation import gettext
from rest_framework import serializers

from listings.agent_services import hostname_error
from listings.models import AgentToken, Node

HEALTH = ("ok", "warning", "alarm", "critical")
VENDORS = ("nvidia", "huawei")
MAX_GPUS = 64  # Cluster.gpus_per_node is at most 64


def _printable(value: str) -> str:
    if not value.isprintable():
        raise serializers.ValidationError(gettext("Must not contain control characters."))
    return value


class PrintableCharField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(_printable)


class FiniteFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class HostnameField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=253, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if problem := hostname_error(value):
            raise serializers.ValidationError(problem)
        return value.lower()


def _unique_indexes(gpus: list[dict]) -> list[dict]:
    indexes = [gpu["index"] for gpu in gpus]
    if len(set(indexes)) != len(indexes):
        raise serializers.ValidationError(gettext("GPU indexes must be unique."))
    return gpus


class InventoryGpuSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, max_value=1023)
    model = PrintableCharField(max_length=120)
    uuid = PrintableCharField(max_length=80, allow_null=True, required=False, default=None)
    serial = PrintableCharField(max_length=64, allow_null=True, required=False, default=None)
    memory_mib = serializers.IntegerField(min_value=0, max_value=10_000_000, allow_null=True, required=False)
    driver = PrintableCharField(max_length=64, allow_null=True, required=False, default=None)
    temperature_c = serializers.IntegerField(min_value=-100, max_value=300, allow_null=True, required=False)
    utilisation_pct = serializers.IntegerField(min_value=0, max_value=100, allow_null=True, required=False)
    power_w = FiniteFloatField(min_value=0, max_value=100_000, allow_null=True, required=False)
    health = serializers.ChoiceField(choices=HEALTH)


class InventorySerializer(serializers.Serializer):
    hostname = HostnameField()
    vendor = serializers.ChoiceField(choices=VENDORS)
    gpus = serializers.ListField(child=InventoryGpuSerializer(), min_length=1, max_length=MAX_GPUS)
    agent_version = PrintableCharField(max_length=32, required=False, allow_blank=True, default="")

    def validate_gpus(self, gpus):
        return _unique_indexes(gpus)


class HeartbeatGpuSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, max_value=1023)
    health = serializers.ChoiceField(choices=HEALTH)
    utilisation_pct = serializers.IntegerField(min_value=0, max_value=100, allow_null=True, required=False)
    temperature_c = serializers.IntegerField(min_value=-100, max_value=300, allow_null=True, required=False)


class HeartbeatSerializer(serializers.Serializer):
    hostname = HostnameField()
    sent_at = serializers.DateTimeField()
    sequence = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    gpus = serializers.ListField(child=HeartbeatGpuSerializer(), max_length=MAX_GPUS)

    def validate_gpus(self, gpus):
        return _unique_indexes(gpus)


class InventoryAnswerSerializer(serializers.Serializer):
    node = serializers.IntegerField(help_text="the node number this host is bound to")
    hostname = serializers.CharField()
    matches = serializers.BooleanField(help_text="the hardware matches what the cluster declared")
    mismatches = serializers.ListField(child=serializers.DictField())


class HeartbeatAnswerSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    sequence = serializers.IntegerField()
    healthy = serializers.BooleanField()


# --- the provider's side -------------------------------------------------------------------------------------------


class AgentTokenSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = AgentToken
        fields = ["id", "name", "prefix", "login_user", "active", "created_at", "created_by", "last_used_at"]
        fields += ["revoked_at"]


class AgentTokenCreatedSerializer(AgentTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="shown once: only its SHA-256 is kept")

    class Meta(AgentTokenSerializer.Meta):
        fields = [*AgentTokenSerializer.Meta.fields, "token"]


class AgentTokenCreateSerializer(serializers.Serializer):
    name = PrintableCharField(max_length=80)
    login_user = serializers.CharField(max_length=32, required=False, default="gpux")


class AgentNodeSerializer(serializers.ModelSerializer):
    """A node of the cluster as its agent sees it: host, last heartbeat, last inventory and its comparison."""

    hostname = serializers.SerializerMethodField()
    last_heartbeat_at = serializers.SerializerMethodField()
    healthy = serializers.SerializerMethodField()
    inventory = serializers.SerializerMethodField()
    open_outages = serializers.SerializerMethodField()

    class Meta:
        model = Node
        fields = ["index", "hostname", "last_heartbeat_at", "healthy", "inventory", "open_outages"]

    def _agent(self, node):
        return getattr(node, "agent", None)

    def get_hostname(self, node) -> str | None:
        agent = self._agent(node)
        return agent.hostname if agent else None

    def get_last_heartbeat_at(self, node) -> str | None:
        agent = self._agent(node)
        if agent is None or agent.last_heartbeat_at is None:
            return None
        return serializers.DateTimeField().to_representation(agent.last_heartbeat_at)

    def get_healthy(self, node) -> bool | None:
        agent = self._agent(node)
        return agent.healthy if agent else None

    def get_inventory(self, node) -> dict | None:
        report = getattr(node, "inventory", None)
        if report is None:
            return None
        return {
            "reported_at": serializers.DateTimeField().to_representation(report.reported_at),
            "vendor": report.vendor,
            "gpu_model": report.gpu_model,
            "gpu_count": report.gpu_count,
            "memory_mib": report.memory_mib,
            "driver": report.driver,
            "serials": report.serials,
            "agent_version": report.agent_version,
            "matches": not report.mismatched,
            "mismatches": report.mismatches,
        }

    def get_open_outages(self, node) -> list[dict]:
        return [
            {"kind": outage.kind, "started_at": serializers.DateTimeField().to_representation(outage.started_at)}
            for outage in node.outages.all()
        ]
