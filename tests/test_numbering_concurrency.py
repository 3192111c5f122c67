"""Gapless numbers under concurrency: the series row is locked in the issuing transaction."""

import pytest
from django.db import transaction

from billing.models import Invoice, NumberSeries
from billing.services import invoice_issue

from .concurrency import race
from .conftest import requires_postgres

THREADS = 20


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_it_numbers_invoices_issued_at_the_same_time_without_gaps_or_duplicates(
        make_invoice, clerk, clinic):
    # given 20 drafts (committed: each thread has its own connection)
    drafts = [make_invoice(issue=False) for _ in range(THREADS)]

    def issue(draft):
        return lambda: invoice_issue(invoice=draft, actor=clerk)

    # when they are issued from 20 threads at once
    outcomes = race(*[issue(draft) for draft in drafts])

    # then every call succeeded, with the sequences 1..20 and unique numbers
    errors = [repr(value) for ok, value in outcomes if not ok]
    assert errors == []
    results = {draft.pk: (issued.sequence, issued.number)
               for draft, (_, issued) in zip(drafts, outcomes, strict=True)}
    assert len(results) == THREADS
    assert sorted(seq for seq, _ in results.values()) == list(range(1, THREADS + 1))
    stored = dict(Invoice.objects.values_list("pk", "number"))
    assert {pk: number for pk, (_, number) in results.items()} == stored
    assert sorted(stored.values()) == [f"INV-MUSCAT-{n:06d}" for n in range(1, THREADS + 1)]
    assert NumberSeries.objects.get(clinic=clinic, kind="invoice").last_value == THREADS


class Rollback(Exception):
    pass


@pytest.mark.django_db
def test_a_rolled_back_issue_gives_its_number_back(make_invoice, clerk, clinic):
    # given two drafts, and the first issued inside a transaction that then fails
    first, second = make_invoice(issue=False), make_invoice(issue=False)
    with pytest.raises(Rollback), transaction.atomic():
        taken = invoice_issue(invoice=first, actor=clerk)
        assert taken.number == "INV-MUSCAT-000001"
        raise Rollback

    # then the first draft is still a numberless draft and the series is back at zero
    first.refresh_from_db()
    assert (first.status, first.number, first.sequence) == ("draft", None, None)
    assert NumberSeries.objects.filter(clinic=clinic, last_value__gt=0).count() == 0

    # when another invoice is issued, then it gets the number the rolled-back one had
    issued = invoice_issue(invoice=second, actor=clerk)
    assert (issued.sequence, issued.number) == (1, "INV-MUSCAT-000001")
    # and the first one gets the next number once it is issued for real
    assert invoice_issue(invoice=first, actor=clerk).number == "INV-MUSCAT-000002"
