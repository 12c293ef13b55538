"""An in-memory, columnar copy of what filters and aggregates read, so counts take milliseconds.

Why it exists: facet counts, the chart, the total and the dyad matrix are computed over every event a
filter matches. On a million events PostgreSQL needs seconds for them on two cores whatever the indexes
(the unfiltered view has nothing to skip; plans in docs/benchmarks.md). The columns they need (dates,
kind, status, stage and the country, actor and system links) fit in about 105 MB of numpy arrays at a
million events, where the same counts take milliseconds; so do the ids of a timeline page.

The copy is read-only and disposable: it is read from the database in one snapshot, labelled with the
data version read first (app/data_version.py), and patched (the events written since are re-read and
appended, the rows they replace masked out) or read again when the version moves, so it never answers
for data it has not seen. PostgreSQL stays the only source of truth; the SQL implementations of
every aggregate are kept, serve when the copy is switched off, and tests compare both on many filters.
Conditions the copy does not hold (full text, publisher, reliability, tags) are asked of PostgreSQL as a
set of ids in one query and intersected.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, func, literal, select, text
from sqlalchemy.orm import Session

from app.filters import EventFilter
from app.models import Event
from app.queries.cache import VERSION_SQL, data_version
from app.queries.events import conditions
from app.textkeys import fold
from app.vocab import KINDS, STATUSES

log = logging.getLogger(__name__)

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
EPOCH = date(1970, 1, 1)
ROLES = ("supplier", "recipient", "target", "intermediary")
FILTER_ROLES = ROLES[:3]  # the roles a filter and its facets name
# Filter attributes the copy cannot answer: they go to PostgreSQL as one id query.
SQL_ONLY = ("q", "source", "reliability_max", "tag")


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
# still open when a copy was read: a patch applies those whose audit id it has not applied yet.
_AUDITED_SQL = text(
    f"SELECT {_bytes_agg('id', 'int8send')}, {_bytes_agg('entity_id', 'int8send')} FROM audit_log"
    " WHERE entity_type = 'event' AND entity_id IS NOT NULL AND at >= :since - interval '15 minutes'"
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


def _array(raw: bytes | None, dtype: str) -> npt.NDArray[Any]:
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
    rows, keep = index.rows(_array(raw_ids, ">i8"))
    return Links(rows.astype(np.int32), _array(raw_values, ">i4")[keep].astype(np.int32))


def _distinct(links: Links) -> Links:
    """One link per (row, value): an event counts once per country whatever its roles."""
    if not len(links.rows):
        return links
    # Sort and compare neighbours: numpy's hash-based unique took 2 s on 2.4 million links.
    packed = np.sort(links.rows.astype(np.int64) << 32 | links.values.astype(np.int64))
    packed = packed[np.concatenate(([True], packed[1:] != packed[:-1]))]
    return Links((packed >> 32).astype(np.int32), (packed & 0xFFFFFFFF).astype(np.int32))


def _pairs(supplier: Links, recipient: Links, width: int) -> Links:
    """Every supplier link paired with every recipient link of the same event (value = s * width + r)."""
    if not len(supplier.rows) or not len(recipient.rows):
        return Links(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))
    order = np.argsort(recipient.rows, kind="stable")
    r_rows, r_vals = recipient.rows[order], recipient.values[order]
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
    """Patch `old` or read the copy anew, in a repeatable-read snapshot whose version labels it truly."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # Serial plans: the aggregates of one scan must see rows in the same order.
            conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            return refresh_on(conn, old)


def refresh_on(conn: Connection, old: Facts | None) -> Facts:
    """A patch of `old` when it is small enough, else a full read."""
    patched = patch_on(conn, old) if old is not None else None
    return patched if patched is not None else build_on(conn)


def build_on(conn: Connection) -> Facts:
    """Read the copy over a connection already in a transaction (a test's, or build()'s snapshot)."""
    began = time.perf_counter()
    version = tuple(conn.execute(VERSION_SQL).one())
    read_at, max_id = conn.execute(text("SELECT now(), coalesce(max(id), 0) FROM events")).one()
    countries = tuple(conn.scalars(text("SELECT code FROM countries ORDER BY code")))
    part = _read(conn, None, len(countries))
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
    audit_ids, event_ids = _array(row[0], ">i8"), _array(row[1], ">i8")
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


def _read(conn: Connection, only: list[int] | None, width: int) -> _Part:
    """Read live events (all, or those with the given ids) and their links, rows in timeline order."""
    params: dict[str, Any] = {}
    events_only = links_only = ""
    if only is not None:
        params["only"] = only
        events_only, links_only = "AND id = ANY(:only)", "AND l.event_id = ANY(:only)"
    ev = conn.execute(text(_EVENTS_SQL.format(only=events_only)), params).one()
    cl = conn.execute(text(_COUNTRIES_SQL.format(only=links_only)), params).one()
    al = conn.execute(text(_ACTORS_SQL.format(only=links_only)), params).one()
    sl = conn.execute(text(_SYSTEMS_SQL.format(only=links_only)), params).one()
    ids = _array(ev[0], ">i8")
    start = _array(ev[1], ">i4")
    order = np.lexsort((ids, start))  # timeline order, oldest first
    ids, start = ids[order], start[order]
    index = IdIndex.of(ids)
    country_links = _links(cl[0], cl[2], index)
    role_codes = _array(cl[1], ">i2")[index.rows(_array(cl[0], ">i8"))[1]]
    roles = {
        role: Links(country_links.rows[role_codes == i], country_links.values[role_codes == i])
        for i, role in enumerate(ROLES)
    }
    return _Part(
        ids=ids,
        start=start,
        end=_array(ev[2], ">i4")[order],
        yearly=_array(ev[3], ">i2")[order] == 1,
        kind=_array(ev[4], ">i2")[order],
        status=_array(ev[5], ">i2")[order],
        stage=_array(ev[6], ">i2")[order],
        roles=roles,
        any_country=_distinct(country_links),
        actor_links=_distinct(_links(al[0], al[1], index)),
        system_links=_links(sl[0], sl[1], index),
        index=index,
        dyads=_pairs(roles["supplier"], roles["recipient"], width),
    )


@dataclass
class _Holder:
    """The current copy per database engine, the lock that makes one build at a time, and SQL masks."""

    facts: Facts | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Rows matching the SQL-only conditions (full text, ...) per copy version and filter part: the
    # total, facets and chart of one view arrive as three requests that would each run the same search.
    masks: OrderedDict[tuple[Any, ...], Mask] = field(default_factory=OrderedDict)
    # Held while a mask is computed: concurrent requests for it wait instead of repeating the search.
    mask_lock: threading.Lock = field(default_factory=threading.Lock)
    refresher: threading.Thread | None = None  # a background full read in progress


# Writes made outside Signalboard (SQL by hand) may not move the data version; a copy older than this is
# read again in the background (the current one serves meanwhile), which bounds how long they go unseen.
MAX_AGE_SECONDS = 600.0


MAX_MASKS = 32


_holders: dict[str, _Holder] = {}
_holders_lock = threading.Lock()


# Sessions bound to one connection (tests: each test's transaction is rolled back) get a copy of their
# own, which goes with the connection: a copy patched from uncommitted rows must not outlive them.
_by_connection: weakref.WeakKeyDictionary[Connection, _Holder] = weakref.WeakKeyDictionary()


def _holder(bind: Engine | Connection) -> _Holder:
    with _holders_lock:
        if isinstance(bind, Connection):
            return _by_connection.setdefault(bind, _Holder())
        return _holders.setdefault(bind.url.render_as_string(hide_password=True), _Holder())


def current(session: Session, wait: bool = True) -> Facts | None:
    """The copy for the session's current data version, built if needed (one build at a time).

    With `wait=False` it never builds or waits: a copy that is missing or behind gives None, and the
    caller uses SQL (the timeline page must not stall on a rebuild; its lazy aggregates do the build).
    """
    bind = session.get_bind()
    version = data_version(session)
    holder = _holder(bind)
    facts = holder.facts
    if facts is not None and facts.version == version:
        if isinstance(bind, Engine) and time.monotonic() - facts.full_read_at > MAX_AGE_SECONDS:
            _refresh_in_background(bind, holder)
        return facts
    if not wait:
        return None
    with holder.lock:
        facts = holder.facts
        if facts is None or facts.version != version:
            # A session bound to a connection (tests) reads through it, to see its own transaction.
            old = holder.facts
            facts = build(bind, old) if isinstance(bind, Engine) else refresh_on(session.connection(), old)
            holder.facts = facts
            with holder.mask_lock:  # masks of older versions are dead weight
                holder.masks.clear()
            if not facts.tail:
                _trim()
            log.info(
                "facts copy: %d rows (%d patched) in %.3f s", facts.size, facts.tail, facts.built_seconds
            )
        # A copy built after yet another write carries a newer label; it still covers this request.
        return facts


def _refresh_in_background(engine: Engine, holder: _Holder) -> None:
    """Start one full read of the copy in a thread; it replaces the copy when done."""
    with _holders_lock:
        if holder.refresher is not None and holder.refresher.is_alive():
            return

        def run() -> None:
            try:
                with holder.lock:
                    holder.facts = build(engine)
                    with holder.mask_lock:
                        holder.masks.clear()
                _trim()
            except Exception:  # the next request tries again; the current copy keeps serving
                log.exception("facts copy: background read failed")

        holder.refresher = threading.Thread(target=run, name="facts-refresh", daemon=True)
        holder.refresher.start()


def _trim() -> None:
    """Give a full read's scratch memory back to the system (glibc keeps ~150 MB of it otherwise)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to give back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def warm_up(engine: Engine) -> None:
    """Build the copy ahead of the first request (run in a background thread at start)."""
    from app.config import get_settings

    if not get_settings().facts_copy:
        return
    try:
        with Session(engine) as session:
            current(session)
    except Exception:  # the first request will try again; a failed warm-up must not stop the app
        log.exception("facts copy: warm-up failed")


def for_session(session: Session, wait: bool = True) -> Facts | None:
    """The copy when it is switched on (settings.facts_copy), else None: the caller runs SQL."""
    from app.config import get_settings

    if not get_settings().facts_copy:
        return None
    return current(session, wait=wait)


def state(engine: Engine) -> str:
    """'off', 'building' (nothing read yet) or 'ready' (a copy is held; it may be a patch behind)."""
    from app.config import get_settings

    if not get_settings().facts_copy:
        return "off"
    return "ready" if _holder(engine).facts is not None else "building"


def reference_counts(facts: Facts) -> dict[str, npt.NDArray[np.int64]]:
    """Live events per actor id, per system id, per country index (any role) and per country and role."""
    out = {
        "actor": facts.actor_links.counts(facts.alive, facts.actor_links.span(facts.actors)),
        "system": facts.system_links.counts(facts.alive, facts.system_links.span(facts.systems)),
        "country": facts.any_country.counts(facts.alive, len(facts.countries)),
    }
    out.update({role: facts.roles[role].counts(facts.alive, len(facts.countries)) for role in ROLES})
    return out


def forget() -> None:
    """Drop every copy (tests)."""
    with _holders_lock:
        _holders.clear()
        _by_connection.clear()


# For this transaction only (the previous values are put back right after the query).
_PARALLEL_ON = text(
    "SELECT current_setting('parallel_tuple_cost'), current_setting('parallel_setup_cost'),"
    " set_config('parallel_tuple_cost', '0', true), set_config('parallel_setup_cost', '0', true)"
)
_PARALLEL_BACK = text(
    "SELECT set_config('parallel_tuple_cost', :tuple_cost, true),"
    " set_config('parallel_setup_cost', :setup_cost, true)"
)


def needs_sql(f: EventFilter) -> bool:
    """True when the filter has a condition the copy does not hold (full text, publisher, ...)."""
    return any(getattr(f, a) for a in SQL_ONLY)


def sql_part(f: EventFilter) -> EventFilter:
    """The part of a filter only PostgreSQL can test."""
    return EventFilter(q=f.q, source=f.source, reliability_max=f.reliability_max, tag=f.tag)


def has_sql_mask(session: Session, facts: Facts, f: EventFilter) -> bool:
    """True when the SQL-only part of the filter is already evaluated for this copy."""
    return (facts.version, sql_part(f)) in _holder_of(session).masks


def _holder_of(session: Session) -> _Holder:
    bind = session.get_bind()
    assert isinstance(bind, (Engine, Connection))
    return _holder(bind)


def _lookup(size: int, picked: Iterable[int]) -> Mask:
    table = np.zeros(max(size, 1), dtype=bool)
    for i in picked:
        if 0 <= i < size:
            table[i] = True
    return table


class Selection:
    """A filter evaluated on the copy: one mask per parameter, combined on demand."""

    def __init__(self, session: Session, facts: Facts, f: EventFilter) -> None:
        self.facts = facts
        self.filter = f
        self.parts: dict[str, Mask] = {}
        n = facts.size
        if needs_sql(f):
            key = (facts.version, sql_part(f))
            holder = _holder_of(session)
            with holder.mask_lock:
                mask = holder.masks.get(key)
                if mask is None:
                    mask = holder.masks[key] = self._sql_mask(session, sql_part(f))
                    while len(holder.masks) > MAX_MASKS:
                        holder.masks.popitem(last=False)
            self.parts["sql"] = mask
        for attr, column, vocab in (("kind", facts.kind, KINDS), ("status", facts.status, STATUSES)):
            chosen = getattr(f, attr)
            if chosen:
                self.parts[attr] = _lookup(len(vocab), [vocab.index(v) for v in chosen])[column]
        if f.stage_min is not None:
            self.parts["stage_min"] = facts.stage >= f.stage_min
        if f.date_from is not None:
            self.parts["date_from"] = facts.end >= (f.date_from.start - EPOCH).days
        if f.date_to is not None:
            self.parts["date_to"] = facts.start <= (f.date_to.end - EPOCH).days
        for role in FILTER_ROLES:
            codes = getattr(f, role)
            if codes:
                self.parts[role] = facts.roles[role].events_with(n, self._country_lookup(codes))
        if f.country:
            self.parts["country"] = facts.any_country.events_with(n, self._country_lookup(f.country))
        if f.actor:
            wanted = _lookup(facts.actor_links.span(facts.actors), facts.actors.ids_for(f.actor))
            self.parts["actor"] = facts.actor_links.events_with(n, wanted)
        if f.system:
            wanted = _lookup(facts.system_links.span(facts.systems), facts.systems.ids_for(f.system))
            self.parts["system"] = facts.system_links.events_with(n, wanted)
        self._full: Mask | None = None

    def _country_lookup(self, codes: Iterable[str]) -> Mask:
        index = self.facts.country_index
        return _lookup(len(self.facts.countries), [index[c] for c in codes if c in index])

    def _sql_mask(self, session: Session, only: EventFilter) -> Mask:
        """Rows matching the conditions only PostgreSQL can test, fetched as one bytea of ids."""
        stmt = select(func.string_agg(func.int8send(Event.id), literal(b""))).where(*conditions(only))
        # A frequent word matches half the table: a seq scan that both cores can share. The planner's
        # per-row transfer cost talks it out of that (550 ms serial, 330 ms parallel at a million events).
        tuple_cost, setup_cost, _, _ = session.execute(_PARALLEL_ON).one()
        try:
            ids = _array(session.scalar(stmt), ">i8")
        finally:
            session.execute(_PARALLEL_BACK, {"tuple_cost": tuple_cost, "setup_cost": setup_cost})
        mask = np.zeros(self.facts.size, dtype=bool)
        mask[self.facts.rows_of(ids)] = True
        return mask

    def mask(self, without: str | None = None) -> Mask:
        """Rows the filter keeps, optionally leaving one parameter out (disjunctive facets)."""
        if without is None and self._full is not None:
            return self._full
        out = self.facts.alive.copy()
        for name, part in self.parts.items():
            if name != without:
                out &= part
        if without is None:
            self._full = out
        return out

    def total(self) -> int:
        """How many events match."""
        return int(self.mask().sum())

    def page_ids(self, before: tuple[date, int] | None, limit: int) -> list[int]:
        """Ids of the next `limit` events in timeline order (newest first), after a keyset cursor."""
        facts, mask = self.facts, self.mask()
        ordered = mask[: facts.ordered]
        cut = None if before is None else int(pack_key((before[0] - EPOCH).days, before[1]))
        if cut is not None:
            ordered = ordered[: int(np.searchsorted(facts.keys[: facts.ordered], cut))]
        rows = np.flatnonzero(ordered)[-limit:]
        if facts.tail:
            tail = facts.ordered + np.flatnonzero(mask[facts.ordered :])
            if cut is not None:
                tail = tail[facts.keys[tail] < cut]
            rows = np.concatenate((rows, tail))
            rows = rows[np.argsort(facts.keys[rows], kind="stable")][-limit:]
        return [int(i) for i in facts.ids[rows[::-1]]]

    def facet_rows(self, top_n: int) -> dict[str, list[tuple[str, int, bool]]]:
        """(value, count, ticked) per facet, in the shape the SQL statement gives, for facets.assemble."""
        facts, f = self.facts, self.filter
        raw: dict[str, list[tuple[str, int, bool]]] = {}
        for attr, column, vocab in (("kind", facts.kind, KINDS), ("status", facts.status, STATUSES)):
            counts = np.bincount(column[self.mask(attr)], minlength=len(vocab))
            raw[attr] = [(v, int(counts[i]), False) for i, v in enumerate(vocab) if counts[i]]
        stages = np.bincount(facts.stage[self.mask("stage_min")].astype(np.int64), minlength=7)
        raw["stage_min"] = [(str(s), int(c), False) for s, c in enumerate(stages) if c]
        for param in (*FILTER_ROLES, "country"):
            links = facts.any_country if param == "country" else facts.roles[param]
            counts = links.counts(self.mask(param), len(facts.countries))
            selected = getattr(f, param)
            names = facts.countries
            rows = [(names[i], int(counts[i]), names[i] in selected) for i in np.flatnonzero(counts)]
            raw[param] = _top(rows, top_n + len(selected))
        for param, links, named in (
            ("actor", facts.actor_links, facts.actors),
            ("system", facts.system_links, facts.systems),
        ):
            counts = links.counts(self.mask(param), links.span(named))
            ticked = set(named.ids_for(getattr(f, param)))
            rows = [(named.names[int(i)], int(counts[i]), int(i) in ticked) for i in np.flatnonzero(counts)]
            raw[param] = _top(rows, top_n + len(getattr(f, param)))
        return raw

    def chart_rows(self) -> list[tuple[date, bool, str, int]]:
        """(month, year-precision?, kind, count) as chart.chart_series groups them."""
        facts = self.facts
        mask = self.mask()
        if not mask.any():
            return []
        months = facts.month[mask].astype(np.int64)
        first = int(months.min())
        slot = (months - first) * 2 + facts.yearly[mask]
        width = len(KINDS)
        counts = np.bincount(slot * width + facts.kind[mask], minlength=(int(slot.max()) + 1) * width)
        out = []
        for cell in np.flatnonzero(counts):
            s, k = divmod(int(cell), width)
            m, yearly = divmod(s, 2)
            month = np.datetime64(first + m, "M").astype("datetime64[D]").item()
            out.append((month, bool(yearly), KINDS[k], int(counts[cell])))
        return out

    def dyad_cells(self) -> dict[tuple[str, str], int]:
        """Supplier x recipient pairs and how many events each holds."""
        names = self.facts.countries
        size = len(names)
        counts = self.facts.dyads.counts(self.mask(), size * size)
        return {(names[c // size], names[c % size]): int(counts[c]) for c in np.flatnonzero(counts)}


def _top(rows: list[tuple[str, int, bool]], limit: int) -> list[tuple[str, int, bool]]:
    """Ticked first, then by count, then by value: the SQL branch's order and cut."""
    return sorted(rows, key=lambda r: (not r[2], -r[1], r[0]))[:limit]
