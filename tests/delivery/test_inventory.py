"""Inventory reports: host → node binding, the latest report per node, the comparison with the declaration (a
mismatch is audited and blocks vouchers), refused garbage, and serials declared twice across clusters."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from listings.models import Cluster, NodeAgent, NodeInventoryReport
from orders.pricing import listing_contexts
from tests import factories
from tests.delivery.helpers import H100_SERIALS, agent_client, agent_token, h100_cluster, h100_inventory
from vouchers.selectors import booking_context

pytestmark = pytest.mark.django_db
URL = "/api/v1/agent/inventory/"


def test_a_matching_inventory_binds_the_host_and_is_stored(agent, cluster):
    # when
    response = agent.post(URL, h100_inventory("GPU-Node-01"), format="json")

    # then
    assert response.status_code == 200, response.json()
    assert response.json() == {"node": 1, "hostname": "gpu-node-01", "matches": True, "mismatches": []}
    report = NodeInventoryReport.objects.get()
    assert (report.node.index, report.gpu_count, report.vendor) == (1, 8, "nvidia")
    assert report.gpu_model == "NVIDIA H100 80GB HBM3" and report.driver == "535.129.03"
    assert sorted(report.serials) == sorted(H100_SERIALS)
    assert not report.mismatched
    assert not AuditEvent.objects.filter(action="listings.inventory_mismatch").exists()


def test_hosts_take_the_lowest_free_node_and_keep_it(agent, cluster):
    # when
    first = agent.post(URL, h100_inventory("a"), format="json").json()["node"]
    second = agent.post(URL, h100_inventory("b"), format="json").json()["node"]
    again = agent.post(URL, h100_inventory("a"), format="json").json()["node"]
    third = agent.post(URL, h100_inventory("c"), format="json")

    # then: two nodes, so a third host is refused and nothing of it is written
    assert (first, second, again) == (1, 2, 1)
    assert third.status_code == 409
    assert "hostname" in third.json()["errors"]
    assert sorted(NodeAgent.objects.values_list("hostname", flat=True)) == ["a", "b"]
    assert NodeInventoryReport.objects.count() == 2


def test_the_latest_report_replaces_the_previous_one(agent, cluster):
    agent.post(URL, h100_inventory(), format="json")
    body = h100_inventory()
    body["gpus"] = body["gpus"][:7]
    agent.post(URL, body, format="json")
    report = NodeInventoryReport.objects.get()
    assert report.gpu_count == 7 and report.mismatched


def test_a_mismatch_is_audited_blocks_vouchers_and_clears_when_fixed(agent, cluster, provider, startup):
    # given: the agent's cluster declared as A100, whose node reports H100s
    listing = factories.ListingFactory(cluster=cluster)
    assert booking_context(buyer=startup, listing=listing, subtotal=Decimal(1), now=timezone.now()).listing_reviewed
    Cluster.objects.filter(pk=cluster.pk).update(accelerator=factories.AcceleratorFactory(slug="a100-80g"))

    # when
    response = agent.post(URL, h100_inventory(), format="json")

    # then
    assert response.status_code == 200
    assert response.json()["matches"] is False
    assert {m["field"] for m in response.json()["mismatches"]} == {"model"}
    event = AuditEvent.objects.get(action="listings.inventory_mismatch")
    assert event.organization_id == provider.pk and event.data["mismatches"][0]["field"] == "model"
    context = booking_context(buyer=startup, listing=listing, subtotal=Decimal(1), now=timezone.now())
    assert context.listing_reviewed is False
    assert listing_contexts(startup, [listing.pk], timezone.now())[listing.pk].listing_reviewed is False

    # when: the same report again is not audited twice; the declaration fixed, it matches again
    agent.post(URL, h100_inventory(), format="json")
    assert AuditEvent.objects.filter(action="listings.inventory_mismatch").count() == 1
    Cluster.objects.filter(pk=cluster.pk).update(accelerator=factories.AcceleratorFactory(slug="h100-sxm"))
    assert agent.post(URL, h100_inventory(), format="json").json()["matches"] is True

    # then
    assert AuditEvent.objects.filter(action="listings.inventory_matched").count() == 1
    assert booking_context(buyer=startup, listing=listing, subtotal=Decimal(1), now=timezone.now()).listing_reviewed


def test_undeclared_serials_and_wrong_gpu_count_mismatch(provider):
    # given: a declaration of other serials and 4 GPUs per node
    cluster = h100_cluster(provider, serials=["OTHER-1"])
    Cluster.objects.filter(pk=cluster.pk).update(gpus_per_node=4)

    # when
    answer = agent_client(agent_token(cluster)).post(URL, h100_inventory(), format="json").json()

    # then
    assert {m["field"] for m in answer["mismatches"]} == {"serials", "gpus_per_node"}


def test_serials_another_cluster_reported_mismatch(provider):
    # given: the same eight GPUs first reported by another cluster's node
    first = h100_cluster(provider, serials=[])
    second = h100_cluster(provider, serials=[])
    agent_client(agent_token(first)).post(URL, h100_inventory("a"), format="json")

    # when
    answer = agent_client(agent_token(second)).post(URL, h100_inventory("b"), format="json").json()

    # then
    assert [m["field"] for m in answer["mismatches"]] == ["serials_elsewhere"]


def test_serials_declared_by_another_cluster_mismatch(provider):
    h100_cluster(provider, serials=H100_SERIALS[:1])
    cluster = h100_cluster(provider, serials=[])
    answer = agent_client(agent_token(cluster)).post(URL, h100_inventory(), format="json").json()
    assert [m["field"] for m in answer["mismatches"]] == ["serials_elsewhere"]
    assert H100_SERIALS[0] in answer["mismatches"][0]["reported"]


def _garbage():
    good = h100_inventory()

    def gpus(**change):
        body = json.loads(json.dumps(good))
        body["gpus"][0].update(change)
        return body

    return [
        ({**good, "gpus": []}, "gpus"),
        ({**good, "gpus": "eight"}, "gpus"),
        ({**good, "gpus": [good["gpus"][0]] * 65}, "gpus"),
        ({**good, "gpus": [good["gpus"][0], good["gpus"][0]]}, "gpus"),
        ({k: v for k, v in good.items() if k != "hostname"}, "hostname"),
        ({**good, "hostname": "bad host"}, "hostname"),
        ({**good, "hostname": "a" * 254}, "hostname"),
        ({**good, "hostname": "-leading"}, "hostname"),
        ({**good, "vendor": "amd"}, "vendor"),
        ({**good, "agent_version": "x" * 33}, "agent_version"),
        (gpus(index=-1), "gpus.0.index"),
        (gpus(index=True), "gpus.0.index"),
        (gpus(model="H100\x1b[31m red"), "gpus.0.model"),
        (gpus(model="H100\nsecond line"), "gpus.0.model"),
        (gpus(model="x" * 121), "gpus.0.model"),
        (gpus(model=""), "gpus.0.model"),
        (gpus(memory_mib="81559 MiB"), "gpus.0.memory_mib"),
        (gpus(memory_mib=10**12), "gpus.0.memory_mib"),
        (gpus(utilisation_pct=101), "gpus.0.utilisation_pct"),
        (gpus(health="fine"), "gpus.0.health"),
        (gpus(serial="S" * 65), "gpus.0.serial"),
        (gpus(serial={"a": 1}), "gpus.0.serial"),
        (gpus(power_w="NaN"), "gpus.0.power_w"),
        (gpus(power_w="Infinity"), "gpus.0.power_w"),
    ]


@pytest.mark.parametrize(("body", "field"), _garbage())
def test_malformed_inventory_is_a_400_naming_the_field_and_writes_nothing(agent, cluster, body, field):
    # when
    response = agent.post(URL, body, format="json")

    # then
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert not NodeAgent.objects.exists() and not NodeInventoryReport.objects.exists()


@pytest.mark.parametrize("raw", [b"[]", b"null", b"not json", b'{"hostname": ', b'"text"'])
def test_a_body_that_is_not_an_object_is_a_400(agent, cluster, raw):
    response = agent.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert not NodeAgent.objects.exists()


# --- serials declared twice across clusters ------------------------------------------------------------------------


def cluster_body(data_center, serials):
    return {
        "data_center": data_center.pk,
        "name": f"c-{len(serials)}-{serials[0] if serials else ''}",
        "accelerator": "h100-sxm",
        "gpus_per_node": 8,
        "node_count": 1,
        "provenance": {
            "invoice_number": "INV-1",
            "supplier": "S",
            "serial_numbers": serials,
            "import_documents": "customs",
        },
    }


def test_a_serial_declared_by_another_cluster_is_refused(provider_client, provider):
    # given
    h100_cluster(provider, serials=["SN-0001"])
    data_center = factories.DataCenterFactory(provider=provider)
    before = Cluster.objects.count()

    # when: the same serial, spelt with other case and spaces
    response = provider_client.post("/api/v1/clusters/", cluster_body(data_center, ["sn-0001 ", "SN-9"]), format="json")

    # then
    assert response.status_code == 400
    assert "SN-0001" in response.json()["errors"]["provenance.serial_numbers"][0]
    assert Cluster.objects.count() == before


def test_a_serial_listed_twice_in_one_declaration_is_refused(provider_client, provider):
    data_center = factories.DataCenterFactory(provider=provider)
    response = provider_client.post("/api/v1/clusters/", cluster_body(data_center, ["A-1", "a-1"]), format="json")
    assert response.status_code == 400
    assert "provenance.serial_numbers" in response.json()["errors"]


def test_new_serials_are_accepted(provider_client, provider):
    data_center = factories.DataCenterFactory(provider=provider)
    response = provider_client.post("/api/v1/clusters/", cluster_body(data_center, ["NEW-1", "NEW-2"]), format="json")
    assert response.status_code == 201, response.json()


def test_reported_at_is_the_platforms_clock(agent, cluster):
    before = timezone.now()
    agent.post(URL, h100_inventory(), format="json")
    assert before <= NodeInventoryReport.objects.get().reported_at <= timezone.now() + dt.timedelta(seconds=1)
