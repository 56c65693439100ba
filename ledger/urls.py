from django.urls import path

from ledger import api, views

api_urlpatterns: list = [
    path("wallet/", api.WalletApi.as_view(), name="api-wallet"),
    path("wallet/entries/", api.WalletEntriesApi.as_view(), name="api-wallet-entries"),
    path("wallet/deposits/", api.DepositApi.as_view(), name="api-wallet-deposits"),
]
urlpatterns: list = [
    path("wallet/", views.wallet, name="wallet"),
    path("deposits/", views.deposits, name="deposit-list"),
]
