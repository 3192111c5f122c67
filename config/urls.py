from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api.schema import schema
from api.views import ApiView
from billing import views as billing_views

admin.site.site_header = "Clinic billing administration"
admin.site.site_title = "Clinic billing"

urlpatterns = [
    path("", billing_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("billing/", include("billing.urls")),
    path("billing/", include("refunds.urls")),
    path("approvals/", include("approvals.urls")),
    path("graphql/", ApiView.as_view(schema=schema), name="graphql"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("admin/", admin.site.urls),
]
