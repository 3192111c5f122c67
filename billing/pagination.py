"""Lists that never count a whole ledger: a clerk needs the first pages, not an exact total of
a million invoices, and Django's Paginator would count every matching row on every page."""

from dataclasses import dataclass
from functools import cached_property

from django.core.paginator import Paginator

LIST_COUNT_CAP = 1000
# A fragment common to many patients is counted less far: eight pages are plenty to look
# through, and then staff add to the search.
SEARCH_COUNT_CAP = 200
BOX_COUNT_CAP = 100


@dataclass(frozen=True)
class CappedCount:
    """How many rows, counted up to a cap: `capped` says there are more than `value`."""

    value: int
    capped: bool

    def __str__(self) -> str:
        return f"{self.value:,}+" if self.capped else f"{self.value:,}"

    @property
    def words(self) -> str:
        return f"more than {self.value:,}" if self.capped else f"{self.value:,}"


def count_capped(queryset, cap: int = BOX_COUNT_CAP) -> CappedCount:
    """Count at most cap + 1 rows (one query that stops early on an index)."""
    if hasattr(queryset, "values"):
        queryset = queryset.values("pk")  # nothing but the rows: no annotation, no join
    counted = queryset[: cap + 1].count()
    return CappedCount(value=min(counted, cap), capped=counted > cap)


class CappedPaginator(Paginator):
    """Pages over at most `cap` rows; past them the list says "more than 1,000" and staff
    narrow the search or the dates to reach older rows."""

    def __init__(self, object_list, per_page, *, cap: int | None = None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap or LIST_COUNT_CAP

    @cached_property
    def total(self) -> CappedCount:
        return count_capped(self.object_list, self.cap)

    @cached_property
    def count(self) -> int:
        return self.total.value
