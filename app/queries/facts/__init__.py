"""An in-memory, columnar copy of what filters and aggregates read, so counts take milliseconds.

Why it exists: facet counts, the chart, the total and the dyad matrix are computed over every event a
filter matches. On a million events PostgreSQL needs seconds for them on two cores whatever the indexes
(the unfiltered view has nothing to skip; plans in docs/benchmarks.md). The columns they need (dates,
kind, status, stage and the country, actor and system links) fit in about 105 MB of numpy arrays at a
million events, where the same counts take milliseconds; so do the ids of a timeline page.

The copy is read-only and disposable: it is read from the database in one snapshot, labelled with the
data version read first (app/data_version.py), and patched (the events written since are re-read and
appended, the rows they replace masked out) or read again when the version moves, so it never answers
for data it has not seen. PostgreSQL stays the only source of truth: tests/sql_oracle.py asks it the
same questions and the tests compare both on many filters. Conditions the copy does not hold (full text,
publisher, reliability, tags) are asked of PostgreSQL as one id query (through the GIN indexes) and
intersected. The app reads the copy before it says ready (/healthz), so it is the only engine of these
answers in the request path.

The package: `columns` (the arrays, read and patched), `store` (one copy per database, its version and
refreshes), `selection` (a filter evaluated on a copy).
"""

from app.queries.facts.columns import EPOCH, ROLES, Facts, Links, pack_key
from app.queries.facts.selection import Selection, needs_sql, reference_counts, selection, sql_part
from app.queries.facts.store import current, forget, ready, start_warm_up, state, warm_up, warming

__all__ = [
    "EPOCH",
    "ROLES",
    "Facts",
    "Links",
    "Selection",
    "current",
    "forget",
    "needs_sql",
    "pack_key",
    "ready",
    "reference_counts",
    "selection",
    "sql_part",
    "start_warm_up",
    "state",
    "warm_up",
    "warming",
]
