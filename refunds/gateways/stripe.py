"""Refunds through Stripe, with Stripe's official SDK (`stripe.StripeClient`).

Configured by settings.STRIPE_API_KEY, STRIPE_API_BASE (a stand-in, in tests),
STRIPE_TIMEOUT_SECONDS and STRIPE_MAX_NETWORK_RETRIES.

Idempotency: every refund is created with the refund's idempotency key as Stripe's
`Idempotency-Key` header *and* in the refund's metadata. Stripe forgets idempotency keys after
24 hours, and replays the first answer (a stale `pending`, say) while it remembers them, so each
call first looks the key up among the payment's refunds: a refund already made under this key
is reported with its current status and never created a second time.
"""

import re
from decimal import Decimal

import stripe
from django.conf import settings

from billing.models import Payment
from billing.money import has_currency_places, minor_units

from .base import GatewayRefundResult, GatewayUnavailable

# The SDK reports request timings to Stripe and keeps an id file in the home directory unless
# told not to; patients' billing data needs neither.
stripe.enable_telemetry = False

NOT_CONFIGURED = "Stripe is not configured: set STRIPE_API_KEY."
NO_REFERENCE = (
    "The payment has no Stripe payment reference (pi_… or ch_…); refund it by hand."
)
THREE_DECIMAL_STEP = (
    "Stripe only refunds {currency} in steps of 0.010 {currency}; refund {amount} {currency} "
    "by hand."
)

# The gateway's id of the payment: a PaymentIntent (pi_…) or a Charge (ch_…).
_REFERENCE = re.compile(r"(?P<prefix>pi|ch)_[A-Za-z0-9_]+")
_REFERENCE_PARAM = {"pi": "payment_intent", "ch": "charge"}

# Where Stripe's amount exponent differs from ISO 4217: Stripe still counts ISK in hundredths
# (an ISK amount of 100 is 1 króna) although the króna has no minor unit any more.
STRIPE_EXPONENT = {"ISK": 2}
# Stripe takes three decimals for these, but only amounts whose last digit is 0.
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

# Stripe's `failure_reason` codes of a refund, in plain words.
FAILURE_REASONS = {
    "charge_for_pending_refund_disputed": (
        "The customer disputed the payment while the refund was pending."
    ),
    "declined": "The card issuer declined the refund.",
    "expired_or_canceled_card": "The card has expired or was cancelled; refund it another way.",
    "insufficient_funds": "There were not enough funds to complete the refund.",
    "lost_or_stolen_card": "The card was reported lost or stolen; refund it another way.",
    "merchant_request": "The refund was cancelled at the clinic's request.",
    "unknown": "Stripe could not complete the refund.",
}


def stripe_amount(amount: Decimal, currency: str) -> int:
    """The amount as Stripe counts it: an integer of the currency's minor unit
    (Decimal("12.345") OMR → 12345, Decimal("10.50") USD → 1050, Decimal("500") JPY → 500)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"Money must be a Decimal, got {type(amount).__name__}.")
    if amount <= 0 or not has_currency_places(amount, currency):
        raise ValueError(f"{amount} is not a refundable amount of {currency}.")
    return int(amount.scaleb(STRIPE_EXPONENT.get(currency, minor_units(currency))))


class StripeGateway:
    def refund(
        self, *, payment: Payment, amount: Decimal, currency: str, idempotency_key: str,
        retry: int = 0,
    ) -> GatewayRefundResult:
        # Stripe repeats its first answer to a key for 24 hours, so a retry after a decline
        # is a new attempt under a key of its own. A retry only follows a definite decline
        # (no money moved), so this can never refund twice.
        attempt_key = idempotency_key if retry == 0 else f"{idempotency_key}:retry-{retry}"
        match = _REFERENCE.fullmatch((payment.reference or "").strip())
        if match is None:
            return GatewayRefundResult(status="failed", failure_reason=NO_REFERENCE)
        target = {_REFERENCE_PARAM[match["prefix"]]: match[0]}

        currency = currency.upper()
        minor = stripe_amount(amount, currency)
        if currency in STRIPE_THREE_DECIMAL and minor % 10:
            return GatewayRefundResult(
                status="failed",
                failure_reason=THREE_DECIMAL_STEP.format(currency=currency, amount=amount),
            )

        api_key = settings.STRIPE_API_KEY
        if not api_key:
            raise GatewayUnavailable(NOT_CONFIGURED)

        http_client = stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)
        base = settings.STRIPE_API_BASE
        client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base} if base else None,
            max_network_retries=getattr(settings, "STRIPE_MAX_NETWORK_RETRIES", 2),
            http_client=http_client,
        )
        try:
            refund = _refund_made_under(client, target, attempt_key)
            if refund is None:
                refund = client.v1.refunds.create(
                    params={
                        **target,
                        "amount": minor,
                        "metadata": {"idempotency_key": attempt_key,
                                     "refund_key": idempotency_key},
                    },
                    options={"idempotency_key": attempt_key},
                )
            elif _field(refund, "amount") != minor:
                raise GatewayUnavailable(
                    f"Stripe already holds refund {refund.id} under this key for a different "
                    "amount; check it in the Stripe dashboard."
                )
        except stripe.StripeError as error:
            return _result_of_error(error, api_key)
        finally:
            http_client.close()
        return _result_of_refund(refund)


def _refund_made_under(client: stripe.StripeClient, target: dict, idempotency_key: str):
    """The payment's Stripe refund made under this idempotency key, if any."""
    refunds = client.v1.refunds.list(params={**target, "limit": 100})
    for refund in refunds.auto_paging_iter():
        metadata = _field(refund, "metadata")
        if metadata is not None and _field(metadata, "idempotency_key") == idempotency_key:
            return refund
    return None


def _field(obj, name: str):
    # A StripeObject is not a dict: it has no .get() (obj.get is an AttributeError), and
    # obj[name] raises KeyError for a field the answer left out.
    return obj[name] if name in obj else None  # noqa: SIM401


def _result_of_refund(refund) -> GatewayRefundResult:
    status = _field(refund, "status")
    if status == "succeeded":
        return GatewayRefundResult(status="succeeded", reference=refund.id)
    if status in ("failed", "canceled"):
        code = _field(refund, "failure_reason")
        if code in FAILURE_REASONS:
            reason = FAILURE_REASONS[code]
        elif code:
            reason = f"Stripe could not complete the refund ({code})."
        elif status == "canceled":
            reason = "The refund was cancelled in Stripe."
        else:
            reason = FAILURE_REASONS["unknown"]
        return GatewayRefundResult(status="failed", reference=refund.id, failure_reason=reason)
    # pending, requires_action, or a status this adapter does not know: not settled yet.
    return GatewayRefundResult(status="pending", reference=refund.id)


def _result_of_error(error: stripe.StripeError, api_key: str) -> GatewayRefundResult:
    """A refusal Stripe gave about this refund → failed; anything that may pass (network,
    timeouts, rate limits, Stripe's own errors, a key Stripe does not accept, a request with
    the same key still running) → GatewayUnavailable, so the refund stays pending."""
    status = error.http_status
    if isinstance(error, stripe.APIConnectionError):
        raise GatewayUnavailable(
            "Stripe could not be reached (network error or timeout)."
        ) from error
    if isinstance(error, stripe.RateLimitError):
        raise GatewayUnavailable("Stripe is rate-limiting requests; try again later.") from error
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        raise GatewayUnavailable(
            "Stripe did not accept the API key (STRIPE_API_KEY); check the configuration."
        ) from error
    if isinstance(error, stripe.IdempotencyError):
        raise GatewayUnavailable(
            "Stripe already used this refund's key for a different request; check the "
            "payment in the Stripe dashboard."
        ) from error
    if status is None or not 400 <= status < 500 or status == 409:
        raise GatewayUnavailable(
            f"Stripe could not process the refund now (HTTP {status or 'error'})."
        ) from error

    message = (error.user_message or "").replace(api_key, "[API key]").strip()
    if isinstance(error, stripe.CardError):
        reason = "The card issuer declined the refund"
    else:
        reason = "Stripe refused the refund"
    return GatewayRefundResult(
        status="failed", failure_reason=f"{reason}: {message}" if message else f"{reason}."
    )
