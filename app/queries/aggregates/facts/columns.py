"""The copy itself: its arrays, and how it is read from PostgreSQL in one snapshot or patched."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
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


def _code_case(column: str, vocab: Iterable[str]) -> str:
    """SQL mapping a vocabulary word to its index (the vocabulary is ours, the quoting is still done)."""
    whens = " ".join(f"WHEN {_quote(w)} THEN {i}" for i, w in enumerate(vocab))
    return f"(CASE {column} {whens} ELSE -1 END)::int2"


def _bytes_agg(expr: str, send: str) -> str:
    """One column as a single bytea of big-endian binary values: a million values cross in one cell."""
    return f"string_agg({send}({expr}), ''::bytea)"


_EVENTS_SQL = (
    "SELECT "
    + ", ".join(
        [
            _bytes_agg("id", "int8send"),
            _bytes_agg("(date_start - DATE '1970-01-01')", "int4send"),
            _bytes_agg("(period_end - DATE '1970-01-01')", "int4send"),
            _bytes_agg("(date_precision = 'year')::int::int2", "int2send"),
            _bytes_agg(_code_case("kind", KINDS), "int2send"),
            _bytes_agg(_code_case("status", STATUSES), "int2send"),
            _bytes_agg("stage", "int2send"),
            _bytes_agg("origin_count", "int2send"),
            _bytes_agg(_code_case("likelihood", LIKELIHOODS), "int2send"),
            _bytes_agg(_code_case("confidence", CONFIDENCES), "int2send"),
            # microseconds since 1970: exact, so the copy and SQL agree on "due" to the microsecond
            _bytes_agg("(extract(epoch FROM review_clock_at) * 1000000)::int8", "int8send"),
        ]
    )
    + " FROM events WHERE deleted_at IS NULL {only}"
)
_COUNTRIES_SQL = (
    "SELECT "
    + ", ".join(
        [
            _bytes_agg("l.event_id", "int8send"),
            _bytes_agg(_code_case("l.role", ROLES), "int2send"),
            _bytes_agg("c.n", "int4send"),
        ]
    )
    + " FROM event_countries l JOIN (SELECT code, (row_number() OVER (ORDER BY code) - 1)::int4 AS n"
    " FROM countries) c ON c.code = l.country_code WHERE true {only}"
)
_ACTORS_SQL = (
    f"SELECT {_bytes_agg('event_id', 'int8send')}, {_bytes_agg('actor_id', 'int4send')} FROM event_actors"
    " l WHERE true {only}"
)
_SYSTEMS_SQL = (
    f"SELECT {_bytes_agg('event_id', 'int8send')}, {_bytes_agg('system_id', 'int4send')} FROM event_systems"
    " l WHERE true {only}"
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
        """Index the ids of rows 0..len(ids)-1."""
        order = np.argsort(ids, kind="stable")
        top = int(ids.max()) + 1 if len(ids) else 0
        if top <= 4 * len(ids) + 1024:
            dense = np.full(top, -1, dtype=np.int32)
            dense[ids] = np.arange(len(ids), dtype=np.int32)
            return cls(dense, ids[order], order)
        return cls(None, ids[order], order)

    def rows(self, event_ids: Ints) -> tuple[Ints, Mask]:
        """Rows of the ids held, and which of the given ids are held."""
        if not len(self.sorted_ids) or not len(event_ids):
            return np.zeros(0, dtype=np.int64), np.zeros(len(event_ids), dtype=bool)
        if self.dense is not None:
            inside = (event_ids >= 0) & (event_ids < len(self.dense))
            found = np.full(len(event_ids), -1, dtype=np.int64)
            found[inside] = self.dense[event_ids[inside]]
            hit = found >= 0
            return found[hit], hit
        pos = np.minimum(np.searchsorted(self.sorted_ids, event_ids), len(self.sorted_ids) - 1)
        hit = self.sorted_ids[pos] == event_ids
        return self.order[pos[hit]], hit


def _links(raw_ids: bytes | None, raw_values: bytes | None, index: IdIndex) -> Links:
    """Link arrays with event ids turned into rows; links of events not held are dropped."""
    rows, keep = index.rows(from_bytea(raw_ids, ">i8"))
    return Links(rows.astype(np.int32), from_bytea(raw_values, ">i4")[keep].astype(np.int32))


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
    order = np.argsort(recipient.rows, kind="stable")
    r_rows, r_vals = recipient.rows[order], recipient.values[order]
    # Sorted needles: numpy's binary search then walks forward instead of missing the cache at random.
    order = np.argsort(supplier.rows, kind="stable")
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
            # large as the largest row received (the events' columns, hex-encoded).
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
            "keys": pack_key(self.start, self.ids),
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


def _read(conn: Connection, only: list[int] | None, width: int, others: Sequence[Connection] = ()) -> _Part:
    """Read live events (all, or those with the given ids) and their links, rows in timeline order."""
    params: dict[str, Any] = {}
    events_only = links_only = ""
    if only is not None:
        params["only"] = only
        events_only, links_only = "AND id = ANY(:only)", "AND l.event_id = ANY(:only)"
    statements = [
        _EVENTS_SQL.format(only=events_only),
        _COUNTRIES_SQL.format(only=links_only),
        _ACTORS_SQL.format(only=links_only),
        _SYSTEMS_SQL.format(only=links_only),
    ]
    # Statement i runs on connection i % n: with three, events then systems | countries | actors.
    conns = [conn, *others]
    rows: list[Any] = [None] * len(statements)

    def run(k: int) -> None:
        for i in range(k, len(statements), len(conns)):
            rows[i] = conns[k].execute(text(statements[i]), params).one()

    if len(conns) == 1:
        run(0)
    else:
        with ThreadPoolExecutor(len(conns)) as pool:
            list(pool.map(run, range(len(conns))))  # list(): re-raise a failed read here
    ev, cl, al, sl = rows
    ids = from_bytea(ev[0], ">i8")
    start = from_bytea(ev[1], ">i4")
    order = np.lexsort((ids, start))  # timeline order, oldest first
    ids, start = ids[order], start[order]
    index = IdIndex.of(ids)
    country_links = _links(cl[0], cl[2], index)
    role_codes = from_bytea(cl[1], ">i2")[index.rows(from_bytea(cl[0], ">i8"))[1]]
    roles = {
        role: Links(country_links.rows[role_codes == i], country_links.values[role_codes == i])
        for i, role in enumerate(ROLES)
    }
    return _Part(
        ids=ids,
        start=start,
        end=from_bytea(ev[2], ">i4")[order],
        yearly=from_bytea(ev[3], ">i2")[order] == 1,
        kind=from_bytea(ev[4], ">i2")[order],
        status=from_bytea(ev[5], ">i2")[order],
        stage=from_bytea(ev[6], ">i2")[order],
        origins=from_bytea(ev[7], ">i2")[order],
        likelihood=from_bytea(ev[8], ">i2")[order],
        confidence=from_bytea(ev[9], ">i2")[order],
        review_clock=from_bytea(ev[10], ">i8")[order],
        roles=roles,
        any_country=_distinct(country_links),
        actor_links=_distinct(_links(al[0], al[1], index)),
        system_links=_links(sl[0], sl[1], index),
        index=index,
        dyads=_pairs(roles["supplier"], roles["recipient"], width),
    )
