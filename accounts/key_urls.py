"""URLs of a buyer organization's SSH keys: the API (``api_urlpatterns``) and the page (``urlpatterns``); included
through ``orders.delivery_api_urls`` and ``orders.delivery_urls``."""

from django.urls import path

from accounts import key_api, key_views

api_urlpatterns = [
    path("ssh-keys/", key_api.SshKeyListCreateApi.as_view(), name="api-ssh-keys"),
    path("ssh-keys/<int:pk>/", key_api.SshKeyDetailApi.as_view(), name="api-ssh-key"),
]

urlpatterns = [
    path("organization/ssh-keys/", key_views.ssh_keys, name="ssh-keys"),
    path("organization/ssh-keys/<int:pk>/delete/", key_views.ssh_key_delete, name="ssh-key-delete"),
]
