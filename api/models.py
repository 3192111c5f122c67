from django.db import models
from oauth2_provider.settings import oauth2_settings


class ApiClient(models.Model):
    """What an OAuth2 application (an integration) may ask for. It acts as its owning user, so
    clinic membership and the approval rules apply to it as in the browser."""

    application = models.OneToOneField(
        oauth2_settings.APPLICATION_MODEL, on_delete=models.CASCADE,
        related_name="api_client",
    )
    scopes = models.CharField(max_length=200, help_text="Space-separated, e.g. billing:read")

    class Meta:
        verbose_name = "API client"

    def __str__(self):
        return f"{self.application.name} ({self.scopes})"

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()


class IdempotencyKey(models.Model):
    """The first response to a request sent with an Idempotency-Key, replayed for retries."""

    client = models.CharField(max_length=100, help_text="app:<id> or user:<id>")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="idempotency_key_unique")
        ]

    def __str__(self):
        return f"{self.client} {self.key}"
