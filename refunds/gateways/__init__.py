"""Payment gateways that can refund automatically. Each adapter is named by the code a
gateway payment method carries (`PaymentMethod.gateway`); settings.REFUND_GATEWAYS maps codes to
adapter classes."""

from django.conf import settings
from django.utils.module_loading import import_string

from .base import GatewayAdapter, GatewayRefundResult, GatewayUnavailable

__all__ = ["GatewayAdapter", "GatewayRefundResult", "GatewayUnavailable", "gateway_for"]


class UnknownGateway(LookupError):
    pass


def gateway_for(code: str) -> GatewayAdapter:
    try:
        path = settings.REFUND_GATEWAYS[code]
    except KeyError:
        raise UnknownGateway(f"No refund gateway is configured under the code “{code}”.") from None
    return import_string(path)()
