from django.urls import path

from listings import api, views

api_urlpatterns = [
    path("accelerators/", api.AcceleratorListApi.as_view(), name="api-accelerators"),
    # GET|POST /listings/ is routed in marketplace/api.py to orders.api.ListingSearchApi, which extends
    # api.ListingListCreateApi with net prices after the buyer's vouchers (listings may not import vouchers).
    path("listings/<int:pk>/", api.ListingDetailApi.as_view(), name="api-listing"),
    path("listings/<int:pk>/submit/", api.ListingActionApi.as_view(action_name="submit"), name="api-listing-submit"),
    path("listings/<int:pk>/pause/", api.ListingActionApi.as_view(action_name="pause"), name="api-listing-pause"),
    path("listings/<int:pk>/resume/", api.ListingActionApi.as_view(action_name="resume"), name="api-listing-resume"),
    path("listings/<int:pk>/review/", api.ListingReviewApi.as_view(), name="api-listing-review"),
    path("data-centers/", api.DataCenterListCreateApi.as_view(), name="api-data-centers"),
    path("clusters/", api.ClusterListCreateApi.as_view(), name="api-clusters"),
]

urlpatterns = [
    # /listings/ (the browse page) is routed in marketplace/urls.py to orders.search.browse, which extends
    # views.browse through its hooks with net prices after the buyer's vouchers.
    path("listings/<int:pk>/", views.detail, name="listings-detail"),
    path("provider/", views.provider_home, name="listings-provider"),
    path("provider/data-centers/", views.data_center_new, name="listings-data-center-new"),
    path("provider/clusters/", views.cluster_new, name="listings-cluster-new"),
    path("provider/listings/", views.listing_new, name="listings-listing-new"),
    path("provider/listings/<int:pk>/edit/", views.listing_edit, name="listings-listing-edit"),
    path("provider/listings/<int:pk>/<str:action>/", views.listing_action, name="listings-listing-action"),
    path("review/", views.review_queue, name="listings-review"),
    path("review/<int:pk>/", views.review_decide, name="listings-review-decide"),
]
