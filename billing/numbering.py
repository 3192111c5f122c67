"""Gapless, per-clinic document numbers, taken inside the document's own transaction."""

from django.db import transaction

from .models import Clinic, NumberSeries

DEFAULT_PREFIXES = {
    NumberSeries.Kind.INVOICE: "INV-{code}-",
    NumberSeries.Kind.CREDIT_NOTE: "CN-{code}-",
}


def number_take(*, clinic: Clinic, kind: str) -> tuple[int, str]:
    """Advance the clinic's series under a row lock and return (sequence, printed number).

    Must run inside the transaction that stores the document: if it rolls back, so does the
    number, which keeps the series gapless. Concurrent callers queue on the series row."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("number_take() must run inside transaction.atomic().")
    series, _ = NumberSeries.objects.select_for_update().get_or_create(
        clinic=clinic,
        kind=kind,
        defaults={"prefix": DEFAULT_PREFIXES[kind].format(code=clinic.code)},
    )
    series.last_value += 1
    series.save(update_fields=["last_value"])
    return series.last_value, f"{series.prefix}{series.last_value:0{series.padding}d}"
