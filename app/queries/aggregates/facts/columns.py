"""The copy itself: its arrays, and how it is read from PostgreSQL in one snapshot or patched."""

from __future__ import annotations

import re
import select
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from sqlalchemy import Connection, Engine, text

from app.domain.textkeys import fold
from app.domain.vocab import CONFIDENCES, KINDS, LIKELIHOODS, STATUSES
from app.queries.aggregates.cache import VERSION_SQL
from app.queries.search_document import audited_writes_sql

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
EPOCH = date(1970, 1, 1)
ROLES = ("supplier", "recipient", "target", "intermediary")
FILTER_ROLES = ROLES[:3]  # the roles a filter and its facets name


def _quote(word: str) -> str:
    return "'" + word.replace("'", "''") + "'"


def _bytes_agg(expr: str, send: str) -> str:
    """One column as a single bytea of big-endian binary values: a million values cross in one cell."""
    return f"string_agg({send}({expr}), ''::bytea)"


def _shifted_case(column: str, vocab: Iterable[str], shift: int) -> str:
    """SQL mapping a vocabulary word to (its index + 1) << shift, 0 for none: one byte of a packed int8."""
    whens = " ".join(f"WHEN {_quote(w)} THEN {(i + 1) << shift}" for i, w in enumerate(vocab))
    return f"(CASE {column} {whens} ELSE 0 END)::int8"


# The server's binary forms count from 2000-01-01: days for a date, microseconds for a timestamptz.
PG_EPOCH_DAYS = (date(2000, 1, 1) - EPOCH).days
PG_EPOCH_MICROS = PG_EPOCH_DAYS * 86_400_000_000

# A full read costs the server a scan plus, per row and column, a send function and an aggregate step,
# and the aggregate steps dominate: so each event is one fixed-size record of big-endian fields (one
# string_agg for all columns), its small columns packed as bytes of one int8 (a vocabulary word's index
# + 1, 0 for none; the CHECK constraints keep every value within its byte, origin_count within 15 bits),
# and dates and the review clock in the server's own binary form (no arithmetic; numeric arithmetic for
# epoch microseconds cost more than the rest of the row). The record's numpy dtype is written beside it.
_EVENT_RECORD = " || ".join(
    [
        "int4send(id)",
        "date_send(date_start)",
        "date_send(period_end)",
        "int8send((origin_count::int8 << 48) | "
        + " | ".join(
            [
                _shifted_case("kind", KINDS, 40),
                _shifted_case("status", STATUSES, 32),
                "(stage::int8 << 24)",
                "((date_precision = 'year')::int::int8 << 16)",
                _shifted_case("likelihood", LIKELIHOODS, 8),
                _shifted_case("confidence", CONFIDENCES, 0),
            ]
        )
        + ")",
        "timestamptz_send(review_clock_at)",
    ]
)
EVENT_DTYPE = np.dtype(
    [
        ("id", ">i4"),
        ("start", ">i4"),
        ("end", ">i4"),
        ("origins", ">i2"),
        ("kind", "u1"),
        ("status", "u1"),
        ("stage", "u1"),
        ("yearly", "u1"),
        ("likelihood", "u1"),
        ("confidence", "u1"),
        ("review_clock", ">i8"),
    ]
)
_EVENTS_SQL = f"SELECT string_agg({_EVENT_RECORD}, ''::bytea) FROM events WHERE deleted_at IS NULL {{only}}"
# A link is one int8: event id << 32 | value (for a country, its role's index + 1 in the value's top byte
# and its index in code order below).
_COUNTRIES_SQL = (
    "SELECT string_agg(int8send((l.event_id::int8 << 32) | "
    + _shifted_case("l.role", ROLES, 24)
    + " | c.n), ''::bytea) FROM event_countries l"
    " JOIN (SELECT code, row_number() OVER (ORDER BY code) - 1 AS n FROM countries) c"
    " ON c.code = l.country_code WHERE true {only}"
)
# Actors and systems: two scans in one statement (they are the smaller tables), so that the three
# statements of a full read take about as long each on their three connections.
_ACTORS_SYSTEMS_SQL = (
    "SELECT (SELECT string_agg(int8send((l.event_id::int8 << 32) | l.actor_id), ''::bytea)"
    " FROM event_actors l WHERE true {only}),"
    " (SELECT string_agg(int8send((l.event_id::int8 << 32) | l.system_id), ''::bytea)"
    " FROM event_systems l WHERE true {only})"
)
# Audited event writes (edits, deletes, restores, merges) over a window wide enough for any transaction
# still open when a copy was read: a patch applies those whose audit id it has not applied yet. Actor and
# system edits count for the events that name them (their search documents change).
_AUDITED_SQL = text(
    f"SELECT {_bytes_agg('id', 'int8send')}, {_bytes_agg('event_id', 'int8send')} FROM ("
    + audited_writes_sql("at >= :since - interval '15 minutes'")
    + ") w"
)
_FILENODES_SQL = text(
    "SELECT "
    + ", ".join(
        f"pg_relation_filenode('{t}')" for t in ("events", "event_countries", "event_actors", "event_systems")
    )
)
# New events (bulk loads write no audit rows).
_NEW_SQL = text("SELECT id FROM events WHERE id > :max_id ORDER BY id LIMIT :cap")
# More changed events than this, or a tail of patched rows longer than MAX_TAIL: read everything again.
PATCH_MAX = 20_000
MAX_TAIL = 100_000


def from_bytea(raw: bytes | None, dtype: str) -> npt.NDArray[Any]:
    """A bytea of big-endian values as a native numpy array (empty for NULL: no rows)."""
    if not raw:
        return np.zeros(0, dtype=dtype.lstrip(">"))
    return np.frombuffer(raw, dtype=dtype).astype(dtype.lstrip(">"))


@dataclass(frozen=True)
class Links:
    """Links of events to values (countries, actors, systems): two parallel arrays, row and value."""

    rows: npt.NDArray[np.int32]
    values: npt.NDArray[np.int32]

    def events_with(self, size: int, wanted: Mask) -> Mask:
        """Rows linked to any value whose entry in the lookup table `wanted` is True."""
        out = np.zeros(size, dtype=bool)
        if len(wanted):
            out[self.rows[wanted[self.values]]] = True
        return out

    def span(self, named: Named) -> int:
        """Size of a lookup table by value: replaced rows may still name an actor a merge removed."""
        return max(named.size, int(self.values.max()) + 1 if len(self.values) else 0)

    def plus(self, more: Links, offset: int) -> Links:
        """These links and those of rows appended at `offset`."""
        return Links(
            np.concatenate((self.rows, (more.rows + offset).astype(np.int32))),
            np.concatenate((self.values, more.values)),
        )

    def counts(self, mask: Mask, size: int) -> npt.NDArray[np.int64]:
        """Per value, how many linked rows the mask keeps (rows are distinct per value)."""
        return np.bincount(self.values[mask[self.rows]], minlength=size)


@dataclass(frozen=True)
class Named:
    """Actors or systems: display names and the folded names and aliases that find them."""

    names: dict[int, str]
    keys: dict[str, frozenset[int]]
    size: int

    def ids_for(self, values: Iterable[str]) -> list[int]:
        """Ids found by any of the values (name or alias, folded as the SQL path folds them)."""
        return sorted({i for v in values for i in self.keys.get(fold(v), ())})


@dataclass(frozen=True)
class Facts:
    """The copy: one row per live event in timeline order (oldest first), plus its links."""

    version: tuple[Any, ...]
    ids: Ints
    keys: Ints  # (date_start, id) packed into one sortable integer, for cursors
    start: npt.NDArray[np.int32]
    end: npt.NDArray[np.int32]
    month: npt.NDArray[np.int32]  # months since January 1970 of date_start, for the chart
    yearly: Mask
    kind: npt.NDArray[np.int16]
    status: npt.NDArray[np.int16]
    stage: npt.NDArray[np.int16]
    origins: npt.NDArray[np.int16]  # independent origins (events.origin_count)
    likelihood: npt.NDArray[np.int16]  # index in LIKELIHOODS, -1 for none
    confidence: npt.NDArray[np.int16]  # index in CONFIDENCES, -1 for none
    review_clock: Ints  # when the review clock started, microseconds since 1970 (due for review)
    index: IdIndex  # event id -> row, for the ordered rows
    countries: tuple[str, ...]
    country_index: dict[str, int]
    roles: dict[str, Links]
    any_country: Links
    actor_links: Links
    system_links: Links
    dyads: Links  # supplier x recipient pairs, value = supplier index * len(countries) + recipient index
    actors: Named
    systems: Named
    # Rows before `ordered` are in timeline order; later rows were appended by patches (any order).
    ordered: int
    alive: Mask  # False for rows an edit or delete has replaced
    read_at: datetime  # the database clock when the copy's snapshot was taken
    max_id: int  # the highest event id the snapshot held (deleted events included)
    applied: Ints  # audit ids of the window that the copy already holds (sorted)
    # Storage of the tables read: TRUNCATE, a restore or VACUUM FULL change it, and no patch covers those.
    filenodes: tuple[int, ...]
    built_seconds: float = 0.0
    full_read_at: float = 0.0  # time.monotonic() of the last full read (patches keep it)

    @property
    def size(self) -> int:
        """Rows held (replaced rows included; `alive` tells them apart)."""
        return len(self.ids)

    @property
    def tail(self) -> int:
        """Rows appended by patches."""
        return self.size - self.ordered

    def rows_of(self, event_ids: Ints) -> npt.NDArray[np.int64]:
        """Every row (alive or replaced) of the given event ids; ids not held are dropped."""
        base, _ = self.index.rows(event_ids)
        if not self.tail:
            return base
        # The tail may hold one event several times (each patch appends its newest state): take them all.
        tail = np.flatnonzero(np.isin(self.ids[self.ordered :], event_ids))
        return np.concatenate((base, tail + self.ordered))


def pack_key(days: Any, event_id: Any) -> Any:
    """(date_start in days, id) as one integer that sorts like the pair."""
    return (np.asarray(days, dtype=np.int64) + (1 << 22)) * (1 << 40) + np.asarray(event_id, dtype=np.int64)


@dataclass(frozen=True)
class IdIndex:
    """Event id -> row: a dense table when ids are compact (one gather), else a sorted search."""

    dense: npt.NDArray[np.int32] | None
    sorted_ids: Ints
    order: Ints

    @classmethod
    def of(cls, ids: Ints) -> IdIndex:
        """Index the ids of rows 0..len(ids)-1 (distinct ids)."""
        top = int(ids.max()) + 1 if len(ids) else 0
        if len(ids) and int(ids.min()) >= 0 and top <= 4 * len(ids) + 1024:
            dense = np.full(top, -1, dtype=np.int32)
            dense[ids] = np.arange(len(ids), dtype=np.int32)
            # The table read in id order is the rows by id: no sort needed.
            order = dense[dense >= 0].astype(np.int64)
            return cls(dense, ids[order], order)
        order = np.argsort(ids, kind="stable")
        return cls(None, ids[order], order)

    def rows(self, event_ids: Ints) -> tuple[Ints, Mask]:
        """Rows of the ids held, and which of the given ids are held."""
        if not len(self.sorted_ids) or not len(event_ids):
            return np.zeros(0, dtype=np.int64), np.zeros(len(event_ids), dtype=bool)
        if self.dense is not None:
            if int(event_ids.min()) >= 0 and int(event_ids.max()) < len(self.dense):
                found = self.dense[event_ids]  # one gather: every id is inside the table
            else:
                inside = (event_ids >= 0) & (event_ids < len(self.dense))
                found = np.full(len(event_ids), -1, dtype=np.int32)
                found[inside] = self.dense[event_ids[inside]]
            hit = found >= 0
            return found[hit].astype(np.int64), hit
        pos = np.minimum(np.searchsorted(self.sorted_ids, event_ids), len(self.sorted_ids) - 1)
        hit = self.sorted_ids[pos] == event_ids
        return self.order[pos[hit]], hit


def stable_order(keys: npt.NDArray[np.int32]) -> Ints:
    """`np.argsort(keys, kind="stable")` for keys in [0, 2**31): one sort of (key, position) pairs.

    The pairs are distinct, so numpy's fast unstable sort gives the stable order, several times faster
    than its stable argsort on millions of keys.
    """
    packed = keys.astype(np.int64) << 32 | np.arange(len(keys), dtype=np.int64)
    packed.sort()
    return packed & 0xFFFFFFFF


def _links(packed: Ints, index: IdIndex) -> tuple[Links, Ints]:
    """Links read as int8s (event id << 32 | value) with event ids turned into rows.

    Links of events not held are dropped; also returns the int8s kept (a country's role is in the top
    byte of its value).
    """
    rows, keep = index.rows(packed >> 32)
    kept = packed[keep]
    return Links(rows.astype(np.int32), (kept & 0xFFFFFFFF).astype(np.int32)), kept


def _distinct(links: Links) -> Links:
    """One link per (row, value): an event counts once per country whatever its roles."""
    if not len(links.rows):
        return links
    # Sort and compare neighbours: far cheaper than numpy's hash-based unique on millions of links.
    packed = np.sort(links.rows.astype(np.int64) << 32 | links.values.astype(np.int64))
    packed = packed[np.concatenate(([True], packed[1:] != packed[:-1]))]
    return Links((packed >> 32).astype(np.int32), (packed & 0xFFFFFFFF).astype(np.int32))


def _pairs(supplier: Links, recipient: Links, width: int) -> Links:
    """Every supplier link paired with every recipient link of the same event (value = s * width + r)."""
    if not len(supplier.rows) or not len(recipient.rows):
        return Links(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))
    order = stable_order(recipient.rows)
    r_rows, r_vals = recipient.rows[order], recipient.values[order]
    # Sorted needles: numpy's binary search then walks forward instead of missing the cache at random.
    order = stable_order(supplier.rows)
    supplier = Links(supplier.rows[order], supplier.values[order])
    lo = np.searchsorted(r_rows, supplier.rows, side="left")
    reps = np.searchsorted(r_rows, supplier.rows, side="right") - lo
    # Index of each pair's recipient link: lo of its supplier link plus its place within the run.
    offsets = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    picked = np.repeat(lo, reps) + offsets
    values = np.repeat(supplier.values.astype(np.int64), reps) * width + r_vals[picked]
    return Links(np.repeat(supplier.rows, reps), values.astype(np.int32))


def _named(rows: Iterable[tuple[int, str, list[str]]]) -> Named:
    names: dict[int, str] = {}
    keys: dict[str, set[int]] = {}
    for ident, name, match_keys in rows:
        names[ident] = name
        for k in match_keys:
            keys.setdefault(k, set()).add(ident)
    return Named(names, {k: frozenset(v) for k, v in keys.items()}, max(names, default=0) + 1)


def build(engine: Engine, old: Facts | None = None) -> Facts:
    """Patch `old` or read the copy anew, in a repeatable-read snapshot whose version labels it truly.

    A full read runs its statements on READERS connections at once, all in the first one's exported
    snapshot: the events and the link tables are scanned in parallel by the server's cores.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # Serial plans: the aggregates of one scan must see rows in the same order.
            conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            facts = patch_on(conn, old) if old is not None else None
            if facts is None:
                snapshot = str(conn.scalar(text("SELECT pg_export_snapshot()")))
                with _helpers(engine, snapshot, READERS - 1) as others:
                    facts = build_on(conn, others)
        if old is None or facts.full_read_at != old.full_read_at:
            # A full read: close the connection rather than pool it, as libpq keeps its input buffer as
            # large as the largest row received (the events' records: tens of MB).
            conn.invalidate()
        return facts


# Connections of a full read (events, country links, actor and system links).
READERS = 3
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


@contextmanager
def _helpers(engine: Engine, snapshot: str, count: int) -> Iterator[list[Connection]]:
    """`count` more connections in the given exported snapshot (closed, not pooled, afterwards)."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    with ExitStack() as stack:
        others = []
        for _ in range(count):
            other = stack.enter_context(engine.connect()).execution_options(isolation_level="REPEATABLE READ")
            stack.callback(other.invalidate)  # as build(): libpq's input buffer would keep its largest size
            stack.enter_context(other.begin())
            other.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            other.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            others.append(other)
        yield others


def refresh_on(conn: Connection, old: Facts | None) -> Facts:
    """A patch of `old` when it is small enough, else a full read."""
    patched = patch_on(conn, old) if old is not None else None
    return patched if patched is not None else build_on(conn)


def build_on(conn: Connection, others: Sequence[Connection] = ()) -> Facts:
    """Read the copy over a connection already in a transaction (a test's, or build()'s snapshot).

    `others` are connections in the same snapshot that scan some of the tables at the same time.
    """
    began = time.perf_counter()
    version = tuple(conn.execute(VERSION_SQL).one())
    read_at, max_id = conn.execute(text("SELECT now(), coalesce(max(id), 0) FROM events")).one()
    countries = tuple(conn.scalars(text("SELECT code FROM countries ORDER BY code")))
    part = _read(conn, None, len(countries), others)
    facts = Facts(
        version=version,
        index=part.index,
        countries=countries,
        country_index={c: i for i, c in enumerate(countries)},
        actors=_named(conn.execute(text("SELECT id, name, match_keys FROM actors")).tuples()),
        systems=_named(conn.execute(text("SELECT id, designation, match_keys FROM systems")).tuples()),
        ordered=len(part.ids),
        alive=np.ones(len(part.ids), dtype=bool),
        read_at=read_at,
        max_id=int(max_id),
        applied=_audited(conn, read_at)[0],
        filenodes=tuple(conn.execute(_FILENODES_SQL).one()),
        full_read_at=time.monotonic(),
        **part.columns(),
    )
    return replace(facts, built_seconds=time.perf_counter() - began)


def patch_on(conn: Connection, old: Facts) -> Facts | None:
    """The copy with the events written since `old` was read replaced, or None when a full read is due.

    Re-reading an event twice is harmless (its newest state replaces whatever row it had), so the window
    of audited changes may overlap earlier patches.
    """
    began = time.perf_counter()
    version = tuple(conn.execute(VERSION_SQL).one())
    read_at, max_id = conn.execute(text("SELECT now(), coalesce(max(id), 0) FROM events")).one()
    countries = tuple(conn.scalars(text("SELECT code FROM countries ORDER BY code")))
    filenodes = tuple(conn.execute(_FILENODES_SQL).one())
    if filenodes != old.filenodes:
        return None
    audit_ids, audited = _audited(conn, old.read_at)
    fresh = ~np.isin(audit_ids, old.applied)
    added = list(conn.scalars(_NEW_SQL, {"max_id": old.max_id, "cap": PATCH_MAX + 1}))
    changed = sorted({int(i) for i in audited[fresh]} | set(added))
    if countries != old.countries or len(changed) > PATCH_MAX or old.tail + len(changed) > MAX_TAIL:
        return None
    alive = old.alive.copy()
    alive[old.rows_of(np.asarray(changed, dtype=np.int64))] = False
    new = _read(conn, changed, len(countries))
    offset = old.size
    grown: dict[str, Any] = {n: np.concatenate((getattr(old, n), v)) for n, v in new.rows().items()}
    facts = Facts(
        version=version,
        index=old.index,
        countries=countries,
        country_index=old.country_index,
        actors=_named(conn.execute(text("SELECT id, name, match_keys FROM actors")).tuples()),
        systems=_named(conn.execute(text("SELECT id, designation, match_keys FROM systems")).tuples()),
        ordered=old.ordered,
        alive=np.concatenate((alive, np.ones(len(new.ids), dtype=bool))),
        read_at=read_at,
        max_id=int(max_id),
        applied=audit_ids,
        filenodes=filenodes,
        roles={r: old.roles[r].plus(new.roles[r], offset) for r in ROLES},
        any_country=old.any_country.plus(new.any_country, offset),
        actor_links=old.actor_links.plus(new.actor_links, offset),
        system_links=old.system_links.plus(new.system_links, offset),
        dyads=old.dyads.plus(new.dyads, offset),
        full_read_at=old.full_read_at,
        **grown,
    )
    return replace(facts, built_seconds=time.perf_counter() - began)


def _audited(conn: Connection, since: datetime) -> tuple[Ints, Ints]:
    """Audit ids (sorted) and event ids of the audited event writes in the window before `since`."""
    row = conn.execute(_AUDITED_SQL, {"since": since}).one()
    audit_ids, event_ids = from_bytea(row[0], ">i8"), from_bytea(row[1], ">i8")
    order = np.argsort(audit_ids, kind="stable")
    return audit_ids[order], event_ids[order]


@dataclass(frozen=True)
class _Part:
    """Rows read in one go (all live events, or the changed ones), in timeline order, with their links."""

    ids: Ints
    keys: Ints
    start: npt.NDArray[np.int32]
    end: npt.NDArray[np.int32]
    yearly: Mask
    kind: npt.NDArray[np.int16]
    status: npt.NDArray[np.int16]
    stage: npt.NDArray[np.int16]
    origins: npt.NDArray[np.int16]
    likelihood: npt.NDArray[np.int16]
    confidence: npt.NDArray[np.int16]
    review_clock: Ints
    roles: dict[str, Links]
    any_country: Links
    actor_links: Links
    system_links: Links
    dyads: Links
    index: IdIndex

    def rows(self) -> dict[str, npt.NDArray[Any]]:
        """The per-row arrays by Facts field name."""
        return {
            "ids": self.ids,
            "keys": self.keys,
            "start": self.start,
            "month": self.start.astype("datetime64[D]").astype("datetime64[M]").astype(np.int32),
            "end": self.end,
            "yearly": self.yearly,
            "kind": self.kind,
            "status": self.status,
            "stage": self.stage,
            "origins": self.origins,
            "likelihood": self.likelihood,
            "confidence": self.confidence,
            "review_clock": self.review_clock,
        }

    def columns(self) -> dict[str, Any]:
        """Every array by Facts field name."""
        return {
            **self.rows(),
            "roles": self.roles,
            "any_country": self.any_country,
            "actor_links": self.actor_links,
            "system_links": self.system_links,
            "dyads": self.dyads,
        }


def _run_together(jobs: Sequence[tuple[Connection, str]], only: list[int] | None) -> list[bytes | None]:
    """Run each one-row statement on its own connection; the row's values, in binary, in order.

    Every statement is sent before any result is awaited, so the server works on them at once (one core
    each) while this thread waits; the results are then received here, one connection after the other.
    Straight on the psycopg connections, for two reasons:
    - binary results: the values are tens of megabytes of bytea, which as text the server hex-encodes and
      the client decodes again (twice the bytes, and CPU on both sides);
    - one thread: a thread per connection gets its own malloc arena, where glibc keeps a freed result of
      that size at the arena's top for good (malloc_trim does not shrink other arenas' tops): tens of
      megabytes more per process after every full read.
    `only` is the $1 of every statement (event ids), or None for statements without parameters.
    """
    params = None if only is None else [("{" + ",".join(str(int(i)) for i in only) + "}").encode()]
    pgconns = []
    for conn, sql in jobs:
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection), "the facts copy is read with psycopg"
        pgconn = driver.pgconn
        pgconn.send_query_params(sql.encode(), params, result_format=psycopg.pq.Format.BINARY)
        while pgconn.flush():  # nonblocking connections: the query may not have gone out at once
            select.select([], [pgconn.socket], [])
        pgconns.append((pgconn, driver.info.encoding))
    values: list[bytes | None] = []
    error: psycopg.Error | None = None
    for pgconn, encoding in pgconns:
        # Every result of every connection, even after an error: each is idle again afterwards.
        while True:
            pgconn.consume_input()
            if pgconn.is_busy():
                select.select([pgconn.socket], [], [])
                continue
            result = pgconn.get_result()
            if result is None:
                break
            if result.status == psycopg.pq.ExecStatus.TUPLES_OK:
                values += [result.get_value(0, i) for i in range(result.nfields)]
            elif error is None:
                error = psycopg.errors.error_from_result(result, encoding=encoding)
    if error is not None:
        raise error
    return values


def _read(conn: Connection, only: list[int] | None, width: int, others: Sequence[Connection] = ()) -> _Part:
    """Read live events (all, or those with the given ids) and their links, rows in timeline order."""
    events_only = links_only = ""
    if only is not None:
        events_only, links_only = "AND id = ANY($1::int8[])", "AND l.event_id = ANY($1::int8[])"
    statements = [
        _EVENTS_SQL.format(only=events_only),
        _COUNTRIES_SQL.format(only=links_only),
        _ACTORS_SYSTEMS_SQL.format(only=links_only),
    ]
    # Statements on as many connections at once as there are (a full read: three, one each).
    conns = [conn, *others]
    cells: list[bytes | None] = []
    for first in range(0, len(statements), len(conns)):
        cells += _run_together(list(zip(conns, statements[first : first + len(conns)], strict=False)), only)
    events = np.frombuffer(cells[0] or b"", dtype=EVENT_DTYPE)
    ids = events["id"].astype(np.int64)
    start = (events["start"] + PG_EPOCH_DAYS).astype(np.int32)
    keys = pack_key(start, ids)
    # Timeline order, oldest first. The index-only scan of ix_events_facts yields the rows in that order
    # already; a check costs a millisecond, a sort (of distinct keys: the order is unique) when needed.
    if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        order = np.argsort(keys)
        events, ids, start, keys = events[order], ids[order], start[order], keys[order]
    index = IdIndex.of(ids)
    country_links, kept = _links(from_bytea(cells[1], ">i8"), index)
    role_codes = (kept >> 24 & 0xFF).astype(np.int16) - 1
    country_links = Links(country_links.rows, country_links.values & 0xFFFFFF)
    roles = {
        role: Links(country_links.rows[role_codes == i], country_links.values[role_codes == i])
        for i, role in enumerate(ROLES)
    }
    return _Part(
        ids=ids,
        keys=keys,
        start=start,
        end=(events["end"] + PG_EPOCH_DAYS).astype(np.int32),
        yearly=events["yearly"] == 1,
        kind=events["kind"].astype(np.int16) - 1,
        status=events["status"].astype(np.int16) - 1,
        stage=events["stage"].astype(np.int16),
        origins=events["origins"].astype(np.int16),
        likelihood=events["likelihood"].astype(np.int16) - 1,
        confidence=events["confidence"].astype(np.int16) - 1,
        review_clock=events["review_clock"].astype(np.int64) + PG_EPOCH_MICROS,
        roles=roles,
        any_country=_distinct(country_links),
        actor_links=_distinct(_links(from_bytea(cells[2], ">i8"), index)[0]),
        system_links=_links(from_bytea(cells[3], ">i8"), index)[0],
        index=index,
        dyads=_pairs(roles["supplier"], roles["recipient"], width),
    )
