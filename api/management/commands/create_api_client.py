import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model

from api.models import ApiClient


class Command(BaseCommand):
    help = (
        "Create a confidential client-credentials API client acting as USERNAME, limited to the "
        "given scopes. The last line printed is JSON with client_id and client_secret; the "
        "secret is stored hashed and shown only this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="USERNAME")
        parser.add_argument("--scopes", required=True,
                            help=f"Space-separated, from: {' '.join(settings.API_SCOPES)}")
        parser.add_argument("--name", help="A name to recognise the integration by.")

    def handle(self, *args, user, scopes, name=None, **options):
        owner = get_user_model().objects.filter(username=user, is_active=True).first()
        if owner is None:
            raise CommandError(f"No active user named “{user}”.")
        requested = scopes.split()
        unknown = [scope for scope in requested if scope not in settings.API_SCOPES]
        if unknown or not requested:
            raise CommandError(f"Unknown scope(s): {' '.join(unknown) or '(none given)'}. "
                               f"Choose from: {' '.join(settings.API_SCOPES)}.")
        application_model = get_application_model()
        secret = generate_client_secret()
        with transaction.atomic():
            application = application_model.objects.create(
                name=name or f"{owner.username} integration",
                user=owner,
                client_type=application_model.CLIENT_CONFIDENTIAL,
                authorization_grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
                client_secret=secret,
                hash_client_secret=True,
            )
            ApiClient.objects.create(application=application, scopes=" ".join(
                scope for scope in settings.API_SCOPES if scope in requested))
        self.stdout.write(f"Created API client “{application.name}” acting as {owner.username} "
                          f"with scopes: {' '.join(requested)}.")
        self.stdout.write(json.dumps({"client_id": application.client_id,
                                      "client_secret": secret}))
