from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Financial Approval"

    def ready(self):
        from . import receivers  # noqa: F401 (connects them)
