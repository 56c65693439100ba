"""The delivery API (issue 20), included by one line in ``marketplace.api``: the provider agent's endpoints
(``/agent/…``), a cluster's agent tokens and nodes, a buyer's SSH keys, a booking's access and incidents."""

from accounts.key_urls import api_urlpatterns as key_api
from listings.agent_urls import api_urlpatterns as agent_api
from orders.dispute_urls import api_urlpatterns as dispute_api
from orders.handover_urls import api_urlpatterns as handover_api

urlpatterns = [*agent_api, *handover_api, *key_api, *dispute_api]
