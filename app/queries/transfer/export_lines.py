"""Stored CSV lines: written by the write path with each event, in its transaction; re-made by format version.

Every write of an event (create, edit, delete, restore, import, an actor or system rename or merge) stores
the event's finished line (app.csvio.format_events) in `event_lines` before it commits, so a stored line of
the current csvio.FORMAT_VERSION is never stale. Lines of an older version, or none (a restored backup,
rows written by hand), are made again by `remake` (`signalboard db upgrade`); until then the export makes
them itself from the same records, so its bytes never depend on which lines are stored.

Every writer stores its lines last, holding `event_lines` in ROW EXCLUSIVE mode until it commits. A
`remake` batch first locks `event_lines` in SHARE mode: it waits for writers that have stored lines to
commit (so it reads their data), and writers that store lines later wait for the batch to commit (and then
overwrite what it read before their change). So no stale line survives, and no event row is locked:
locking rows FOR SHARE would write every row of `events` once more.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import Integer, Text

from app.csvio import FORMAT_VERSION, EventRecord, SourceRecord, format_events
from app.domain.textkeys import fold

log = logging.getLogger(__name__)

# Events per batch: a few MB of lines, six queries to read them.
BATCH = 5000

_IDS = bindparam("ids", type_=ARRAY(Integer))
_EVENTS = text(
    "SELECT id, date_start, date_precision, date_end, date_end_precision, title, kind, status, stage,"
    " stage_override, location, tags, summary, created_at, updated_at, version, origin_count, likelihood,"
    " likelihood_rationale, confidence, confidence_rationale FROM events WHERE id = ANY(:ids)"
).bindparams(_IDS)
_COUNTRIES = text(
    "SELECT event_id, role, country_code FROM event_countries WHERE event_id = ANY(:ids)"
    " ORDER BY event_id, position"
).bindparams(_IDS)
_ACTORS = text(
    "SELECT l.event_id, a.name, l.role FROM event_actors l JOIN actors a ON a.id = l.actor_id"
    " WHERE l.event_id = ANY(:ids) ORDER BY l.event_id, l.position"
).bindparams(_IDS)
_SYSTEMS = text(
    "SELECT l.event_id, s.designation, l.quantity, l.quantity_note FROM event_systems l"
    " JOIN systems s ON s.id = l.system_id WHERE l.event_id = ANY(:ids) ORDER BY l.event_id, l.position"
).bindparams(_IDS)
_SOURCES = text(
    "SELECT s.event_id, s.publisher, s.url, s.title, s.published_on, s.published_precision, s.reliability,"
    " s.credibility, s.quote, s.note, o.name, o.match_keys, s.archive_url, s.accessed_on, s.position"
    " FROM sources s JOIN origins o ON o.id = s.origin_id"
    " WHERE s.event_id = ANY(:ids) ORDER BY s.event_id, s.position"
).bindparams(_IDS)
# Links to live events only, as the event page and the API show them: an export never names an event that
# an import of it would refuse as deleted. Deleting or restoring an event re-makes its linkers' lines.
_LINKS = text(
    "SELECT l.source_id, l.type, l.target_id FROM event_links l JOIN events t ON t.id = l.target_id"
    " WHERE l.source_id = ANY(:ids) AND t.deleted_at IS NULL ORDER BY l.source_id, l.id"
).bindparams(_IDS)
_LINKERS = text("SELECT DISTINCT source_id FROM event_links WHERE target_id = :id")
# Evidence files' hashes by source position (never their bytes).
_FILES = text(
    "SELECT event_id, source_position, sha256 FROM source_files WHERE event_id = ANY(:ids)"
    " ORDER BY event_id, source_position, id"
).bindparams(_IDS)
_UPSERT = text(
    "INSERT INTO event_lines (event_id, fmt, line)"
    " SELECT u.id, :fmt, u.line FROM unnest(:ids, :lines) AS u(id, line)"
    " ON CONFLICT (event_id) DO UPDATE SET fmt = excluded.fmt, line = excluded.line"
).bindparams(_IDS, bindparam("lines", type_=ARRAY(Text)))

Db = Session | Connection


def _grouped(db: Db, stmt: Any, ids: list[int]) -> dict[int, list[Any]]:
    """The statement's rows by event id (the id, its first column, left out), in the statement's order."""
    out: dict[int, list[Any]] = defaultdict(list)
    for row in db.execute(stmt, {"ids": ids}):
        out[row[0]].append(row[1:])
    return out


def load_records(db: Db, ids: Sequence[int]) -> list[EventRecord]:
    """The events (deleted ones too) with their links, as their lines show them, in the order of `ids`."""
    ids = list(ids)
    if not ids:
        return []
    rows = {row[0]: row for row in db.execute(_EVENTS, {"ids": ids})}
    countries = _grouped(db, _COUNTRIES, ids)
    actors = _grouped(db, _ACTORS, ids)
    systems = _grouped(db, _SYSTEMS, ids)
    sources = _grouped(db, _SOURCES, ids)
    links = _grouped(db, _LINKS, ids)
    files: dict[tuple[int, int], list[str]] = defaultdict(list)
    for event_id, position, sha256 in db.execute(_FILES, {"ids": ids}):
        files[(event_id, position)].append(sha256)
    none: list[Any] = []
    return [
        EventRecord._make(
            (
                *rows[i],
                countries.get(i, none),
                actors.get(i, none),
                systems.get(i, none),
                [_source(s, files.get((i, s[-1]), ())) for s in sources.get(i, none)],
                [(t, target) for t, target in links.get(i, none)],
            )
        )
        for i in ids
        if i in rows
    ]


def _source(row: Sequence[Any], files: Sequence[str]) -> SourceRecord:
    """A source row (its own cells, its origin's name and match keys, archive URL, accessed day, position)
    with its files' hashes, as its cells show it."""
    *fields, origin, keys, archive_url, accessed_on, _position = row
    return SourceRecord._make((*fields, origin, fold(fields[0]) not in keys, archive_url, accessed_on, files))


def make_lines(db: Db, ids: Sequence[int]) -> dict[int, str]:
    """Event id → its current line, made now from the tables as this transaction sees them."""
    records = load_records(db, ids)
    return dict(zip((r.id for r in records), format_events(records), strict=True))


def save_lines(db: Db, lines: Iterable[tuple[int, str]]) -> None:
    """Upsert (event id, line) pairs at the current format version."""
    pairs = list(lines)
    if pairs:
        ids, texts = [p[0] for p in pairs], [p[1] for p in pairs]
        db.execute(_UPSERT, {"ids": ids, "fmt": FORMAT_VERSION, "lines": texts})


def store_lines(db: Db, ids: Iterable[int], batch: int = BATCH) -> None:
    """Make and store the lines of these events in the caller's transaction, `batch` at a time.

    The write path calls it after its changes are flushed, while it holds the events' row locks.
    """
    if isinstance(db, Session):
        db.flush()
    ids = sorted(set(ids))
    for start in range(0, len(ids), batch):
        save_lines(db, make_lines(db, ids[start : start + batch]).items())


_OUTDATED = text(
    "SELECT e.id FROM events e WHERE e.id > :after AND NOT EXISTS"
    " (SELECT 1 FROM event_lines l WHERE l.event_id = e.id AND l.fmt = :fmt) ORDER BY e.id LIMIT :n"
)
_LOCK = text("LOCK TABLE event_lines IN SHARE MODE")


def outdated(db: Db) -> bool:
    """True when some event lacks a line of the current format version."""
    return db.execute(_OUTDATED, {"after": 0, "fmt": FORMAT_VERSION, "n": 1}).first() is not None


def remake(engine: Engine, batch: int = BATCH, progress: Callable[[int], None] | None = None) -> int:
    """Make the line of every event that lacks one of the current format version; how many were made.

    A batch per transaction, in id order, each under the SHARE lock of the module's note: the app keeps
    serving (a write waits for one batch at most); the export makes the lines still missing itself.
    """
    started, made, after = time.monotonic(), 0, 0
    while True:
        with engine.begin() as conn:
            conn.execute(_LOCK)
            ids = list(conn.scalars(_OUTDATED, {"after": after, "fmt": FORMAT_VERSION, "n": batch}))
            if not ids:
                break
            lines = make_lines(conn, ids)  # an event deleted meanwhile is left out
            save_lines(conn, lines.items())
        made += len(lines)
        after = ids[-1]
        if progress is not None:
            progress(made)
    if made:
        log.info("export lines: %d made in %.1f s", made, time.monotonic() - started)
    return made


# One start-up re-make at a time across processes: the key of an advisory lock.
_LOCK_KEY = 0x5B_E7_11_E5
_state = "off"


def announce_remake() -> None:
    """Say `remaking` from now on: the start-up re-make is due (it starts once the facts copy is read)."""
    global _state
    _state = "remaking"


def remake_at_start(engine: Engine) -> None:
    """The app's start: re-make outdated lines once, unless another process is at it (a thread's target).

    Meanwhile the app serves as usual; an export makes the lines still missing itself.
    """
    global _state
    _state = "remaking"
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock_conn:
            if lock_conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}):
                try:
                    remake(engine)
                finally:
                    lock_conn.invalidate()  # closing the connection for good releases the lock
    except Exception:  # the export still makes what is missing: worth a trace in the log, not a crash
        log.exception("export lines: the start-up re-make failed")
    finally:
        _state = "ready"


def state() -> str:
    """`remaking` while this process re-makes outdated lines at start, then `ready`; `off` when it did not."""
    return _state


def linkers(db: Db, event_id: int) -> list[int]:
    """Events whose `links` cell names this one (their lines change when it is deleted or restored)."""
    return list(db.execute(_LINKERS, {"id": event_id}).scalars())
