api_urlpatterns: list = []
urlpatterns: list = []
