from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"

    def ready(self):
        from oauth2_provider.signals import app_authorized

        from .scopes import token_acts_as_its_owner

        app_authorized.connect(token_acts_as_its_owner, dispatch_uid="api.token_owner")
