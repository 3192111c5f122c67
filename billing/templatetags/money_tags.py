from django import template

from billing.money import format_money

register = template.Library()


@register.filter
def money(amount, currency):
    """{{ line.total|money:invoice.currency }} → '21.000 OMR'."""
    return format_money(amount, currency)


STATUS_BADGES = {
    "draft": "secondary",
    "issued": "primary",
    "partially_paid": "info",
    "paid": "success",
    "partially_refunded": "warning",
    "refunded": "dark",
    "credited": "dark",
    "cancelled": "danger",
}


@register.inclusion_tag("billing/_status_badge.html")
def status_badge(invoice):
    return {"label": invoice.get_status_display(), "colour": STATUS_BADGES.get(invoice.status)}
