"""Free text people type (remarks, reasons): trimmed, and bounded so a pasted megabyte is a plain
message, not a row."""

from .exceptions import BusinessRuleError

REMARKS_MAX_LENGTH = 1000
REMARKS_TOO_LONG = "Keep the remarks under {limit:,} characters."


def bounded_remarks(remarks: str | None) -> str:
    """The remarks trimmed, or BusinessRuleError when they are longer than REMARKS_MAX_LENGTH."""
    remarks = (remarks or "").strip()
    if len(remarks) > REMARKS_MAX_LENGTH:
        raise BusinessRuleError(REMARKS_TOO_LONG.format(limit=REMARKS_MAX_LENGTH))
    return remarks
