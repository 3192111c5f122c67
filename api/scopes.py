"""OAuth2 scopes: each client gets only the scopes it was created with."""

from oauth2_provider.scopes import SettingsScopes


def _allowed(application) -> list[str]:
    if application is None:
        return []
    from .models import ApiClient

    client = ApiClient.objects.filter(application=application).first()
    return client.scope_list if client else []


class ClientScopes(SettingsScopes):
    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        allowed = set(_allowed(application))
        return [scope for scope in self.get_all_scopes() if scope in allowed]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return self.get_available_scopes(application, request, *args, **kwargs)


def token_acts_as_its_owner(sender, request, token, **kwargs):
    """Client-credentials tokens carry no user: they act as the application's owner."""
    if token is not None and token.user_id is None and token.application.user_id:
        token.user_id = token.application.user_id
        token.save(update_fields=["user"])
