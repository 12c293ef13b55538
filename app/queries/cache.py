"""A small per-process cache for aggregate reads (facets, chart, dyads), invalidated by a data version.

Counting a broad filter over a million events costs hundreds of milliseconds, and the same view is asked
for again and again (paging back, reloads, several analysts on one desk filter). The key holds the
filter and a cheap data version that changes with every write that can change a count
(app/data_version.py), so a cached answer is never stale. A maximum age bounds anything written outside
the app's paths.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from sqlalchemy.orm import Session

from app.data_version import VERSION_KEY, VERSION_SQL

T = TypeVar("T")
MAX_ENTRIES = 512
MAX_AGE_SECONDS = 60.0

_lock = threading.Lock()
_entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()


def data_version(session: Session) -> tuple[Any, ...]:
    """A value that changes whenever the events' data may have changed; read once per transaction.

    The page, its total, facets and chart all ask; one read serves them. The session's own writes,
    commits and rollbacks forget it (app/data_version.py), so it is read again after them.
    """
    known = session.info.get(VERSION_KEY)
    if known is None:
        known = session.info[VERSION_KEY] = tuple(session.execute(VERSION_SQL).one())
    return cast(tuple[Any, ...], known)


class _Flight:
    """One computation in progress: waiters block on `done`, then read `value` or re-raise `error`."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


_flights: dict[Hashable, _Flight] = {}


def cached(key: Hashable, compute: Callable[[], T]) -> T:
    """The cached value for `key` (which must include a data_version), computing it when absent or old.

    Single flight: when the entry is missing or expired, the first caller computes it and every other
    caller for the same key waits for that result instead of running the same heavy query again (32
    requests recomputing one expired facet set at once emptied the connection pool). While an expired
    entry is being refreshed, other callers get the expired value at once: the key holds the data
    version, so it is only older than MAX_AGE_SECONDS, never a count of different data.
    """
    now = time.monotonic()
    with _lock:
        hit = _entries.get(key)
        if hit is not None and now - hit[0] < MAX_AGE_SECONDS:
            _entries.move_to_end(key)
            return cast(T, hit[1])
        flight = _flights.get(key)
        leader = flight is None
        if flight is None:
            flight = _flights[key] = _Flight()
        elif hit is not None:
            return cast(T, hit[1])  # stale while another thread refreshes it
    if not leader:
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return cast(T, flight.value)
    try:
        value = compute()
    except BaseException as exc:
        flight.error = exc
        raise
    else:
        flight.value = value
        with _lock:
            _entries[key] = (time.monotonic(), value)
            _entries.move_to_end(key)
            while len(_entries) > MAX_ENTRIES:
                _entries.popitem(last=False)
        return value
    finally:
        with _lock:
            _flights.pop(key, None)
        flight.done.set()


def clear() -> None:
    """Forget everything (tests)."""
    with _lock:
        _entries.clear()
        _flights.clear()
