"""Racing calls against each other, for the concurrency tests (PostgreSQL).

`race(*calls)` runs each call in its own thread, so on its own database connection (opened
before the start, closed when the thread ends); a barrier releases the threads together once
all are connected. It returns one `Outcome(ok, value)` per call, in order: `value` is what the
call returned, or the exception it raised. A call still running JOIN_TIMEOUT seconds later (a
deadlock) fails the test. `start_race` does the same in two steps, for a test that must act
while the calls run.
"""

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from django.contrib.auth.models import User
from django.db import connection

from billing.exceptions import BusinessRuleError

BARRIER_TIMEOUT = 30
JOIN_TIMEOUT = 60


class Outcome(NamedTuple):
    ok: bool
    value: Any  # what the call returned, or the exception it raised


def start_race(*calls: Callable[[], Any]) -> Callable[[], list[Outcome]]:
    """Start each call in its own thread, all released at once by a barrier; returns a function
    that waits for them and gives their outcomes (fails on a hang)."""
    barrier = threading.Barrier(len(calls), timeout=BARRIER_TIMEOUT)
    outcomes: list[Outcome | None] = [None] * len(calls)

    def run(index, call):
        try:
            try:
                connection.ensure_connection()  # connect first, so the calls really overlap
                barrier.wait()
            except BaseException:
                barrier.abort()  # the others do not wait for a thread that will not come
                raise
            outcomes[index] = Outcome(True, call())
        except BaseException as error:  # reported by the caller's assertions
            outcomes[index] = Outcome(False, error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, call), daemon=True)
               for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()

    def finish() -> list[Outcome]:
        deadline = time.monotonic() + JOIN_TIMEOUT
        for thread in threads:
            thread.join(timeout=max(0, deadline - time.monotonic()))
        hung = [index for index, thread in enumerate(threads) if thread.is_alive()]
        assert hung == [], f"calls {hung} did not finish within {JOIN_TIMEOUT} s (deadlock?)"
        return outcomes

    return finish


def race(*calls: Callable[[], Any]) -> list[Outcome]:
    """Run the calls at the same time, each in its own thread; their outcomes, in order."""
    return start_race(*calls)()


def as_user(user):
    """A fresh copy of the user for a thread (permission caches are per instance)."""
    return User.objects.get(pk=user.pk)


def unexpected(outcomes):
    """Every failure that is not a refusal staff can act on."""
    return [repr(value) for ok, value in outcomes
            if not ok and not isinstance(value, BusinessRuleError)]
