"""History rows in the clinic's words: one sentence per audit action, for instance
"Refund request submitted by Maryam Al-Hinai — 18.000 OMR — “Charged twice”".

The audit log records facts and knows nothing of the apps above it; how the billing office reads
those facts is said here, once, for the invoice page and the request page alike
(templates/_history.html)."""

from string import Formatter

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from audit.models import Action, AuditEvent

from ..money import format_money
from .people import person

register = template.Library()

SEPARATOR = " — "

# Each sentence is a series of parts joined by SEPARATOR; a part that names a fact the event
# does not carry (no amount, no reference…) is left out. The remarks follow, quoted.
SENTENCES: dict[str, tuple[str, ...]] = {
    Action.ACCOUNT_CREATED: ("Patient account {object} opened by {actor}",),
    Action.INVOICE_CREATED: ("Invoice created by {actor}", "{amount}"),
    Action.INVOICE_ISSUED: ("Invoice {number} issued by {actor}", "{amount}"),
    Action.INVOICE_DISCARDED: ("Draft discarded by {actor}", "{amount}"),
    Action.INVOICE_CANCELLED: ("Invoice cancelled by {actor}", "credit note {number}",
                               "{amount}"),
    Action.PAYMENT_RECORDED: ("Payment of {amount} recorded by {actor}", "{method}",
                              "reference {reference}"),
    Action.CREDIT_NOTE_ISSUED: ("Credit note {number} issued by {actor}", "{amount}", "{reason}"),
    Action.REFUND_CREATED: ("Refund of {amount} to {method} by {actor}", "{refund_state}"),
    Action.REFUND_SUCCEEDED: ("Refund of {amount} to {method} confirmed by the gateway",
                              "reference {reference}"),
    Action.REFUND_FAILED: ("Refund of {amount} to {method} declined by the gateway",),
    Action.REFUND_RETRIED: ("Refund of {amount} to {method} sent to the gateway again by {actor}",),
    Action.REFUND_PAID_OUT: ("Refund of {amount} to {method} paid out by {actor}",),
    Action.REQUEST_SUBMITTED: ("{request} submitted by {actor}", "{amount}"),
    Action.REQUEST_APPROVED: ("{request} approved by {actor}", "{step}"),
    Action.REQUEST_REJECTED: ("{request} rejected by {actor}",),
    Action.REQUEST_WITHDRAWN: ("{request} withdrawn by {actor}",),
    Action.REQUEST_STALE: ("{request} needs its approvers again: {cause}", "{amount}"),
    Action.REQUEST_COMPLETED: ("{request} carried out by {actor}", "credit note {credit_note}",
                               "{amount}"),
    Action.REQUEST_EXPIRED: ("{request} expired: approved but not carried out within {days}",),
    Action.REQUEST_REMINDED: ("{request} still waiting after {waited}: approvers reminded",),
    Action.REQUEST_ESCALATED: ("{request} still waiting after {waited}: passed to the billing "
                               "administrators",),
}

# What a new refund waits for, by the state it started in.
REFUND_STATES = {
    "pending": "sent to the gateway",
    "awaiting_payout": "to pay back by hand",
}

# A request's kind is in the event's details when it was submitted; later events name the
# request ("Invoice Refund Request #3").
REQUEST_NAMES = {"refund": "Refund request", "cancellation": "Cancellation request"}
REQUEST_KINDS_BY_NAME = {"Invoice Refund Request": "refund",
                         "Invoice Cancellation Request": "cancellation"}

_REFUND_ACTIONS = {Action.REFUND_CREATED, Action.REFUND_SUCCEEDED, Action.REFUND_FAILED,
                   Action.REFUND_RETRIED, Action.REFUND_PAID_OUT}


def _request_name(event: AuditEvent) -> str:
    kind = (event.data or {}).get("kind") or next(
        (kind for name, kind in REQUEST_KINDS_BY_NAME.items()
         if event.object_repr.startswith(name)), "")
    return REQUEST_NAMES.get(kind, "Request")


def _count(n, unit: str) -> str:
    """'1 day', '14 days'; empty when the event does not carry the number."""
    if n in (None, ""):
        return ""
    return f"{n} {unit}" if int(n) == 1 else f"{n} {unit}s"


def _facts(event: AuditEvent) -> dict[str, str]:
    data = event.data or {}
    method = str(data.get("method") or "")
    if not method and event.action in _REFUND_ACTIONS:
        # a refund is named "Refund 5.250 OMR to Cash" when its event is written
        method = event.object_repr.partition(" to ")[2]
    amount = ""
    if event.amount is not None:
        amount = (format_money(event.amount, event.currency) if event.currency
                  else str(event.amount))
    return {
        "actor": person(event.actor) or event.actor_username or "the system",
        "amount": amount,
        "object": event.object_repr,
        "number": str(data.get("number") or ""),
        "method": method,
        "reference": str(data.get("reference") or ""),
        "reason": str(data.get("reason") or ""),
        "credit_note": str(data.get("credit_note") or ""),
        "refund_state": REFUND_STATES.get(event.to_state, ""),
        "request": _request_name(event),
        "cause": str(data.get("cause") or "the invoice changed"),
        # one of two approvals: "approval 1 of 2"
        "step": (f"approval {data.get('approval')} of {data.get('approvals_needed')}"
                 if (data.get("approvals_needed") or 1) > 1 else ""),
        "days": _count(data.get("days"), "day"),
        "waited": _count(data.get("hours"), "hour"),
    }


# Facts that must not break across lines: an amount with its currency, a document number, a
# duration ("14 days").
UNBROKEN = {"amount", "number", "credit_note", "days", "waited"}


def _markup(facts: dict[str, str]) -> dict[str, str]:
    """The facts as HTML: escaped, and the unbroken ones kept on one line."""
    return {name: format_html('<span class="text-nowrap">{}</span>', value)
            if name in UNBROKEN and value else conditional_escape(value)
            for name, value in facts.items()}


def _fields(part: str) -> list[str]:
    return [name for _, name, _, _ in Formatter().parse(part) if name]


@register.filter
def history_sentence(event: AuditEvent) -> SafeString:
    """{{ event|history_sentence }} → 'Payment of 40.43 USD recorded by Maryam Al-Hinai — Cash'
    (as HTML: amounts and document numbers never break across lines)."""
    facts = _facts(event)
    markup = _markup(facts)
    head, *details = SENTENCES.get(event.action) or (str(event.get_action_display()),)
    sentence = [" ".join(head.format(**markup).split())]  # a fact missing: no double space
    sentence += [part.format(**markup) for part in details
                 if all(facts.get(name) for name in _fields(part))]
    if event.remarks:
        sentence.append(f"“{conditional_escape(event.remarks)}”")
    # every fact and the remarks are escaped above; the sentences are our own text
    return mark_safe(SEPARATOR.join(sentence))  # noqa: S308  # nosec B308 B703
