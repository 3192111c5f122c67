from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The billing office's screens that bring the other apps together: Home, the invoice list
    and invoice page with its More Action menu, and the demo data. It sits above billing,
    approvals and refunds; nothing below imports it."""

    name = "desk"
    verbose_name = "Billing office"
