"""The delivery pages (issue 20), included by one line in ``marketplace.urls``: a cluster's agent page, a buyer's
SSH keys, a booking's access and incidents."""

from accounts.key_urls import urlpatterns as key_pages
from listings.agent_urls import urlpatterns as agent_pages
from orders.dispute_urls import urlpatterns as dispute_pages
from orders.handover_urls import urlpatterns as handover_pages

urlpatterns = [*agent_pages, *handover_pages, *key_pages, *dispute_pages]
