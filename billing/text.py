"""Free text people type (remarks, reasons): trimmed, and bounded so a pasted megabyte is a plain
message, not a row."""

from .exceptions import BusinessRuleError

REMARKS_MAX_LENGTH = 1000
REMARKS_TOO_LONG = "Keep the remarks under {limit:,} characters."
REMARKS_CONTROL = "Remarks cannot contain the NUL character (\\x00); retype them."


def bounded_remarks(remarks: str | None) -> str:
    """The remarks trimmed, or BusinessRuleError when they are longer than REMARKS_MAX_LENGTH
    or hold a NUL character (PostgreSQL cannot store one)."""
    remarks = (remarks or "").strip()
    if "\x00" in remarks:
        raise BusinessRuleError(REMARKS_CONTROL)
    if len(remarks) > REMARKS_MAX_LENGTH:
        raise BusinessRuleError(REMARKS_TOO_LONG.format(limit=REMARKS_MAX_LENGTH))
    return remarks
