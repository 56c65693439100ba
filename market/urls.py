from django.urls import path

from market import api, views

api_urlpatterns = [
    path("market/index/", api.FixingListApi.as_view(), name="api-market-index"),
]

urlpatterns = [
    path("market/index/", views.index, name="market-index"),
    path("market/index.csv", views.index_csv, name="market-index-csv"),
]
