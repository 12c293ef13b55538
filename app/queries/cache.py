"""A small per-process cache for aggregate reads (facets, chart, dyads), invalidated by a data version.

Counting a broad filter over a million events costs hundreds of milliseconds, and the same view is asked
for again and again (paging back, reloads, several analysts on one desk filter). The key holds the
filter and a cheap data version that changes with every write that can change a count, so a cached
answer is never stale: every create, edit, delete, restore and merge writes an audit row, and a bulk load
adds events (new newest id, new row version). A maximum age bounds anything written outside those paths.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_ENTRIES = 512
MAX_AGE_SECONDS = 60.0

_lock = threading.Lock()
_entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

# Three index lookups: newest audit row (primary key and the `at` index) and the newest event's row version.
_VERSION_SQL = text(
    "SELECT (SELECT max(id) FROM audit_log), (SELECT max(at) FROM audit_log), "
    "(SELECT id::text || ':' || xmin::text FROM events ORDER BY id DESC LIMIT 1)"
)


def data_version(session: Session) -> tuple[Any, ...]:
    """A value that changes whenever the events' data may have changed."""
    return tuple(session.execute(_VERSION_SQL).one())


def cached(key: Hashable, compute: Callable[[], T]) -> T:
    """The cached value for `key` (which must include a data_version), computing it when absent or old."""
    now = time.monotonic()
    with _lock:
        hit = _entries.get(key)
        if hit is not None and now - hit[0] < MAX_AGE_SECONDS:
            _entries.move_to_end(key)
            return hit[1]
    value = compute()
    with _lock:
        _entries[key] = (now, value)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def clear() -> None:
    """Forget everything (tests)."""
    with _lock:
        _entries.clear()
