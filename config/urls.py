from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from oauth2_provider import views as oauth2_views

from api.schema import schema
from api.token import TokenView
from api.views import ApiView
from desk import views as desk_views

from .health import healthz

admin.site.site_header = "Clinic billing administration"
admin.site.site_title = "Clinic billing"

urlpatterns = [
    path("", desk_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("billing/", include("desk.urls")),
    path("billing/", include("billing.urls")),
    path("billing/", include("refunds.urls")),
    path("approvals/", include("approvals.urls")),
    path("graphql/", ApiView.as_view(schema=schema), name="graphql"),
    # OAuth2 for integrations: the token endpoint (client credentials, failed requests counted,
    # api.token) and revocation. API clients are made by administrators (create_api_client);
    # the toolkit's self-service pages for applications and authorization are not mounted.
    path("o/", include(([
        path("token/", TokenView.as_view(), name="token"),
        path("revoke_token/", oauth2_views.RevokeTokenView.as_view(), name="revoke-token"),
    ], "oauth2_provider"))),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
