"""CSV import in bulk: resolve names in batches, preview what would change, write all rows in one go."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Date, Integer, Text, column, func, insert, select, text, true, values
from sqlalchemy.orm import Session

from app.csvio import (
    FORMAT_VERSION,
    EventRecord,
    LineFormatter,
    ParsedFile,
    ParsedRow,
    SourceRecord,
    event_cells,
)
from app.domain.dates import parse_partial
from app.domain.textkeys import fold, match_keys
from app.domain.vocab import KIND_STAGE
from app.models import Actor, Event, Origin, System
from app.queries.duplicates import TITLE_SIMILARITY, WINDOW, Duplicate
from app.queries.search_document import CatalogueWords, document_sql, load_words
from app.schemas import EventInput
from app.services.audit import Who
from app.services.events import input_snapshot, system_label

# Checking rows against existing events costs a window scan per row: the preview checks rows in
# batches until this many rows or this many seconds, then says how far it got.
DUPLICATE_CHECK_LIMIT = 2000
DUPLICATE_BUDGET_SECONDS = 5.0
DUPLICATE_BATCH = 50


@dataclass
class DuplicateFlag:
    """A row that looks like an existing event (or like an earlier row of the same file)."""

    line: int
    title: str
    matches: list[Duplicate] = field(default_factory=list)
    same_as_line: int | None = None


@dataclass
class ImportPlan:
    """What committing would do: events to add, reference rows to create, duplicates to look at."""

    events: int
    new_actors: list[str]
    new_systems: list[str]
    countries_by_name: list[tuple[str, str]]
    duplicates: list[DuplicateFlag]
    duplicates_checked: int
    duplicates_checkable: int
    already_imported: bool = False
    new_origins: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    """What a commit did."""

    event_ids: list[int]
    new_actors: list[str]
    new_systems: list[str]
    new_origins: list[str] = field(default_factory=list)


def _first_by_key(rows: Iterable[tuple[int, list[str]]]) -> dict[str, int]:
    """Match key → id of the lowest-id entry holding it (the same pick as find_actor / find_system)."""
    found: dict[str, int] = {}
    for entry_id, keys in rows:
        for key in keys:
            found.setdefault(key, entry_id)
    return found


def _distinct_names(names: Iterable[str]) -> dict[str, str]:
    """Fold key → first spelling seen, for every name (each distinct spelling folded once)."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name in names:
        if name not in seen:
            seen.add(name)
            out.setdefault(fold(name), name)
    return out


def _actor_names(rows: list[ParsedRow]) -> dict[str, str]:
    return _distinct_names(a.name for r in rows for a in r.data.actors)


def _system_names(rows: list[ParsedRow]) -> dict[str, str]:
    return _distinct_names(s.designation for r in rows for s in r.data.systems)


def _origin_names(rows: list[ParsedRow]) -> dict[str, str]:
    return _distinct_names(s.origin_name() for r in rows for s in r.data.sources)


def existing_origin_ids(session: Session, keys: list[str]) -> dict[str, int]:
    """Origins whose name or alias folds to any of `keys` (one query)."""
    if not keys:
        return {}
    rows = session.execute(
        select(Origin.id, Origin.match_keys).where(Origin.match_keys.overlap(keys)).order_by(Origin.id)
    )
    return _first_by_key((r[0], list(r[1])) for r in rows)


def existing_actor_ids(session: Session, keys: list[str]) -> dict[str, int]:
    """Actors whose name or alias folds to any of `keys` (one query)."""
    if not keys:
        return {}
    rows = session.execute(
        select(Actor.id, Actor.match_keys).where(Actor.match_keys.overlap(keys)).order_by(Actor.id)
    )
    return _first_by_key((r[0], list(r[1])) for r in rows)


def existing_system_ids(session: Session, keys: list[str]) -> dict[str, int]:
    """Systems whose designation or alias folds to any of `keys` (one query)."""
    if not keys:
        return {}
    rows = session.execute(
        select(System.id, System.match_keys).where(System.match_keys.overlap(keys)).order_by(System.id)
    )
    return _first_by_key((r[0], list(r[1])) for r in rows)


def row_tokens(import_token: uuid.UUID, rows: list[ParsedRow]) -> list[uuid.UUID]:
    """A client token per row derived from the import's token: committing twice adds nothing twice."""
    return [uuid.UUID(t) for t in row_token_texts(import_token, rows)]


def row_token_texts(import_token: uuid.UUID, rows: list[ParsedRow]) -> list[str]:
    """Each row's token as text: uuid.uuid5(import_token, line), computed in a third of its time."""
    namespace = import_token.bytes
    out = []
    for r in rows:
        digest = bytearray(
            hashlib.sha1(namespace + str(r.line).encode(), usedforsecurity=False).digest()[:16]
        )
        digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
        digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = digest.hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def already_imported(session: Session, import_token: uuid.UUID, rows: list[ParsedRow]) -> bool:
    """True when rows of this very upload were committed before (a reload or double submit)."""
    tokens = row_tokens(import_token, rows[:1])
    return bool(tokens) and session.scalar(select(Event.id).where(Event.client_token.in_(tokens))) is not None


def plan_import(session: Session, parsed: ParsedFile, import_token: uuid.UUID | None = None) -> ImportPlan:
    """Preview a valid upload: new actors/systems, countries named in words, likely duplicates."""
    actors = _actor_names(parsed.rows)
    systems = _system_names(parsed.rows)
    known_actors = existing_actor_ids(session, list(actors))
    known_systems = existing_system_ids(session, list(systems))
    origins = _origin_names(parsed.rows)
    known_origins = existing_origin_ids(session, list(origins))
    by_name = sorted({pair for r in parsed.rows for pair in r.countries_by_name})
    flags: list[DuplicateFlag] = []
    seen: dict[tuple[str, str, str], int] = {}
    to_check: list[ParsedRow] = []
    for row in parsed.rows:
        key = (fold(row.data.title), row.data.date, row.data.kind)
        if key in seen:
            flags.append(DuplicateFlag(row.line, row.data.title, same_as_line=seen[key]))
        else:
            seen[key] = row.line
            to_check.append(row)
    checked = 0
    deadline = time.monotonic() + DUPLICATE_BUDGET_SECONDS
    by_line = {r.line: r for r in to_check}
    while checked < min(len(to_check), DUPLICATE_CHECK_LIMIT) and time.monotonic() < deadline:
        batch = to_check[checked : min(checked + DUPLICATE_BATCH, DUPLICATE_CHECK_LIMIT)]
        checked += len(batch)
        for line, matches in similar_existing(session, batch).items():
            flags.append(DuplicateFlag(line, by_line[line].data.title, matches))
    flags.sort(key=lambda f: f.line)
    return ImportPlan(
        events=len(parsed.rows),
        new_actors=sorted((n for k, n in actors.items() if k not in known_actors), key=fold),
        new_systems=sorted((n for k, n in systems.items() if k not in known_systems), key=fold),
        countries_by_name=by_name,
        duplicates=flags,
        duplicates_checked=checked,
        duplicates_checkable=len(to_check),
        already_imported=import_token is not None and already_imported(session, import_token, parsed.rows),
        new_origins=sorted((n for k, n in origins.items() if k not in known_origins), key=fold),
    )


def similar_existing(session: Session, rows: list[ParsedRow], limit: int = 3) -> dict[int, list[Duplicate]]:
    """Existing events with a similar title (pg_trgm) within the duplicate window of each row (one query)."""
    if not rows:
        return {}
    data = []
    for row in rows:
        start, end = row.data.start(), row.data.end() or row.data.start()
        data.append((row.line, row.data.title, start.start - WINDOW, end.end + WINDOW))
    v = values(
        column("line", Integer), column("title", Text), column("d1", Date), column("d2", Date), name="v"
    ).data(data)
    sim = func.similarity(Event.title, v.c.title)
    match = (
        select(Event.id.label("id"), sim.label("sim"))
        .where(
            Event.deleted_at.is_(None),
            Event.period_end >= v.c.d1,
            Event.date_start <= v.c.d2,
            sim >= TITLE_SIMILARITY,
        )
        .order_by(sim.desc(), Event.id.desc())
        .limit(limit)
        .lateral("m")
    )
    found = session.execute(
        select(v.c.line, match.c.id, match.c.sim).select_from(v).join(match, true())
    ).all()
    events = {e.id: e for e in session.scalars(select(Event).where(Event.id.in_({r[1] for r in found})))}
    out: dict[int, list[Duplicate]] = {}
    for line, event_id, similarity in found:
        out.setdefault(line, []).append(Duplicate(events[event_id], float(similarity), False))
    return out


def _create_missing(
    session: Session,
    model: type[Actor] | type[System] | type[Origin],
    names: dict[str, str],
    known: dict[str, int],
) -> list[str]:
    """Insert the names not found (one statement) and add their ids to `known`; return the names."""
    missing = [(k, n) for k, n in names.items() if k not in known]
    if not missing:
        return []
    if model is Actor:
        values: list[dict[str, Any]] = [
            {"name": n, "aliases": [], "match_keys": match_keys(n), "type": "person"} for _, n in missing
        ]
    elif model is Origin:
        values = [{"name": n, "aliases": [], "match_keys": match_keys(n)} for _, n in missing]
    else:
        values = [{"designation": n, "aliases": [], "match_keys": match_keys(n)} for _, n in missing]
    table: Any = model.__table__
    ids = session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), values).all()
    for (key, _), new_id in zip(missing, ids, strict=True):
        known[key] = new_id
    return [n for _, n in missing]


def new_ids(session: Session, table: str, count: int) -> list[int]:
    """`count` fresh values of the table's id sequence (one round trip)."""
    if count == 0:
        return []
    return list(
        session.scalars(
            text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, :n)"),
            {"n": count},
        )
    )


# ---- writing: prepare (database), build (pure Python), write (database) -----------------------------
#
# A batch is written in three steps so `signalboard import` can overlap them: the database steps run on
# a worker thread (waiting on PostgreSQL releases the GIL) while the main thread validates and builds
# the next batch. commit_import runs the three in a row.


@dataclass
class References:
    """What a batch needs from the database before its rows can be built: ids of events and references."""

    event_ids: list[int]
    actor_ids: dict[str, int]
    system_ids: dict[str, int]
    actor_names: dict[int, str]
    system_names: dict[int, str]
    new_actors: list[str]
    new_systems: list[str]
    # The transaction's start: what the events' created_at and updated_at default to (their lines show it).
    now: datetime
    # The catalogue names each event's search document carries, read in the import's transaction (the
    # helper connection that computes documents cannot see the actors and systems this import creates).
    words: CatalogueWords
    # Origin key → id, and each origin's (name, match keys): a source's line names its origin, and says
    # whether its publisher relays it.
    origin_ids: dict[str, int] = field(default_factory=dict)
    origins: dict[int, tuple[str, list[str]]] = field(default_factory=dict)
    new_origins: list[str] = field(default_factory=list)


def prepare_batch(session: Session, rows: list[ParsedRow]) -> References:
    """Find or create the batch's actors and systems (by name, alias or code) and draw its event ids."""
    session.flush()  # COPY goes around the ORM: anything pending must be in the database first
    actors = _actor_names(rows)
    systems = _system_names(rows)
    actor_ids = existing_actor_ids(session, list(actors))
    system_ids = existing_system_ids(session, list(systems))
    new_actors = _create_missing(session, Actor, actors, actor_ids)
    new_systems = _create_missing(session, System, systems, system_ids)
    origin_names = _origin_names(rows)
    origin_ids = existing_origin_ids(session, list(origin_names))
    new_origins = _create_missing(session, Origin, origin_names, origin_ids)
    origins = {
        row[0]: (row[1], list(row[2]))
        for row in session.execute(
            select(Origin.id, Origin.name, Origin.match_keys).where(Origin.id.in_(set(origin_ids.values())))
        )
    }
    actor_names = dict(
        session.execute(select(Actor.id, Actor.name).where(Actor.id.in_(set(actor_ids.values()))))
        .tuples()
        .all()
    )
    system_names = dict(
        session.execute(select(System.id, System.designation).where(System.id.in_(set(system_ids.values()))))
        .tuples()
        .all()
    )
    # Ids drawn from the sequence up front, so every table can be loaded by COPY in one pass each.
    event_ids = new_ids(session, "events", len(rows))
    now = session.scalar(text("SELECT now()"))
    assert now is not None
    with _driver(session).cursor() as cursor:
        words = load_words(cursor, actor_ids.values(), system_ids.values())
    return References(
        event_ids,
        actor_ids,
        system_ids,
        actor_names,
        system_names,
        new_actors,
        new_systems,
        now,
        words,
        origin_ids,
        origins,
        new_origins,
    )


# Columns of each table's COPY, in the order build_batch writes its fields.
COPY_COLUMNS: dict[str, str] = {
    "import_events": (
        "id, title, summary, kind, status, stage_override, date_start, date_precision, date_end, "
        "date_end_precision, location, tags, client_token, created_by, updated_by, origin_count, likelihood, "
        "likelihood_rationale, confidence, confidence_rationale, quotes, catalogue"
    ),
    "event_countries": "event_id, country_code, role, position",
    "event_actors": "event_id, actor_id, role, position",
    "event_systems": "event_id, system_id, quantity, quantity_note, position",
    "sources": (
        "event_id, position, publisher, url, title, published_on, published_precision, quote, note, "
        "reliability, credibility, origin_id, archive_url, accessed_on"
    ),
    "audit_log": "user_id, username, action, entity_type, entity_id, changes, reason",
    "event_lines": "event_id, fmt, line",
}
LINK_TABLES = ("event_countries", "event_actors", "event_systems", "sources", "audit_log", "event_lines")

# COPY's text format: backslash, newline, carriage return and tab are escaped; \N is NULL.
NULL = "\\N"


def copy_field(value: str | None) -> str:
    """A text value as one field of COPY's text format."""
    if value is None:
        return NULL
    # The common case, nothing to escape; four substring tests are ~8x faster than a regex search.
    if not ("\\" in value or "\n" in value or "\r" in value or "\t" in value):
        return value
    # str.replace, not str.translate: translate with a mapping goes character by character through
    # Python objects once the text is not ASCII (every export line, ending in CRLF, is escaped here).
    if "\\" in value:
        value = value.replace("\\", "\\\\")  # first: the escapes below add backslashes
    if "\n" in value:
        value = value.replace("\n", "\\n")
    if "\r" in value:
        value = value.replace("\r", "\\r")
    if "\t" in value:
        value = value.replace("\t", "\\t")
    return value


def copy_int(value: int | None) -> str:
    """An integer (or NULL) as a COPY field."""
    return NULL if value is None else str(value)


def copy_array(items: list[str]) -> str:
    """A text[] literal (every element quoted) as a COPY field."""
    quoted = ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items)
    return copy_field("{" + quoted + "}")


@lru_cache(maxsize=65536)
def _partial(iso: str) -> tuple[date, str]:
    """A validated partial date (`2025-10`) as stored: first day of the period and its precision."""
    parsed = parse_partial(iso)
    return parsed.start, parsed.precision


_NO_DATE: tuple[date | None, str | None] = (None, None)


@lru_cache(maxsize=65536)
def _stored_date(iso: str) -> tuple[str, str]:
    """`_partial` as COPY fields."""
    start, precision = _partial(iso)
    return start.isoformat(), precision


@dataclass
class Referenced:
    """The rows of other tables that a batch's rows point to (their foreign keys)."""

    countries: list[str]
    actors: list[int]
    systems: list[int]
    users: list[int]
    origins: list[int] = field(default_factory=list)


@dataclass
class BatchPayload:
    """A batch ready to load: each table's rows as COPY text, and the ids the events get."""

    event_ids: list[int]
    copy_text: dict[str, str]
    new_actors: list[str]
    new_systems: list[str]
    referenced: Referenced
    new_origins: list[str] = field(default_factory=list)


def _quotes(data: EventInput) -> str:
    """The source part of the search document, as refresh_search's string_agg builds it (by position)."""
    return " ".join((s.quote or "") + " " + (s.title or "") for s in data.sources)


def build_batch(
    rows: list[ParsedRow],
    refs: References,
    who: Who | None,
    import_token: uuid.UUID,
    reason: str | None = None,
) -> BatchPayload:
    """Every row of the batch as COPY text for the events staging table, the link tables and the audit log.

    Pure Python (no database): `signalboard import` builds one batch while the previous one loads.
    """
    text = _BatchText(refs, who, reason)
    for row, event_id, token in zip(rows, refs.event_ids, row_token_texts(import_token, rows), strict=True):
        text.add(row.data, str(event_id), token)
    referenced = Referenced(
        sorted(text.country_codes),
        sorted(set(refs.actor_ids.values())),
        sorted(set(refs.system_ids.values())),
        [who.id] if who else [],
        sorted(set(refs.origin_ids.values())),
    )
    return BatchPayload(
        refs.event_ids, text.tables(), refs.new_actors, refs.new_systems, referenced, refs.new_origins
    )


class _BatchText:
    """COPY text lines of a batch, table by table, in COPY_COLUMNS order."""

    def __init__(self, refs: References, who: Who | None, reason: str | None) -> None:
        self.refs = refs
        self.user = copy_int(who.id if who else None)
        self.audit_head = "\t".join(
            (self.user, copy_field(who.username if who else "system"), "create", "event")
        )
        self.audit_tail = copy_field(reason)
        self.lines: dict[str, list[str]] = {table: [] for table in COPY_COLUMNS}
        (self.events, self.countries, self.actors, self.systems, self.sources, self.audit, self.export) = (
            self.lines.values()
        )
        self.line = LineFormatter()
        self.keys: dict[str, str] = {}  # actor name / system designation / origin → fold key, folded once
        self.country_codes: set[str] = set()

    def tables(self) -> dict[str, str]:
        """Each table's COPY text."""
        return {table: "\n".join(lines) + "\n" if lines else "" for table, lines in self.lines.items()}

    def add(self, d: EventInput, eid: str, token: str) -> None:
        """One row: its event, links, sources and audit entry."""
        self.countries.extend(f"{eid}\t{c.code}\t{c.role}\t{i}" for i, c in enumerate(d.countries))
        self.country_codes.update(c.code for c in d.countries)
        actor_ids, actors = self._actors(d, eid)
        system_ids, systems = self._systems(d, eid)
        catalogue = self.refs.words.text((c.code for c in d.countries), actor_ids, system_ids)
        origins = self._sources(d, eid)
        self._event(d, eid, token, catalogue, len(set(origins)))
        changes = _created(
            input_snapshot(
                d, [f"{role}:{name}" for name, role in actors], [system_label(*s) for s in systems]
            )
        )
        # JSON escapes every control character itself, so only its backslashes need COPY's escaping.
        self.audit.append(
            f"{self.audit_head}\t{eid}\t{_json(changes).replace(chr(92), chr(92) * 2)}\t{self.audit_tail}"
        )
        line = self.line(event_cells(self._record(d, int(eid), actors, systems, origins)))
        self.export.append(f"{eid}\t{FORMAT_VERSION}\t{copy_field(line)}")

    def _record(
        self,
        d: EventInput,
        event_id: int,
        actors: list[tuple[str, str]],
        systems: list[tuple[str, int | None, str | None]],
        origins: list[int],
    ) -> EventRecord:
        """The event as its rows will be stored (the canonical names; defaults as the database sets them)."""
        start, precision = _partial(d.date)
        end, end_precision = _partial(d.date_end) if d.date_end else (None, None)
        now = self.refs.now
        return EventRecord(
            event_id,
            start,
            precision,
            end,
            end_precision,
            d.title,
            d.kind,
            d.status,
            KIND_STAGE.get(d.kind, 0) if d.stage_override is None else d.stage_override,
            d.stage_override,
            d.location,
            d.tags,
            d.summary,
            now,
            now,
            1,
            len(set(origins)),
            d.likelihood,
            d.likelihood_rationale,
            d.confidence,
            d.confidence_rationale,
            [(c.role, c.code) for c in d.countries],
            actors,
            systems,
            [
                SourceRecord(
                    s.publisher,
                    s.url,
                    s.title,
                    *(_partial(s.published) if s.published else _NO_DATE),
                    s.reliability,
                    s.credibility,
                    s.quote,
                    s.note,
                    self.refs.origins[origin][0],
                    fold(s.publisher) not in self.refs.origins[origin][1],
                    s.archive_url,
                    s.accessed_date(),
                )
                for s, origin in zip(d.sources, origins, strict=True)
            ],
        )

    def _event(self, d: EventInput, eid: str, token: str, catalogue: str, origin_count: int) -> None:
        start, precision = _stored_date(d.date)
        end, end_precision = _stored_date(d.date_end) if d.date_end else (NULL, NULL)
        fields = (
            eid,
            copy_field(d.title),
            copy_field(d.summary),
            d.kind,
            d.status,
            copy_int(d.stage_override),
            start,
            precision,
            end,
            end_precision,
            copy_field(d.location),
            copy_array(d.tags),
            token,
            self.user,
            self.user,
            str(origin_count),
            copy_field(d.likelihood),
            copy_field(d.likelihood_rationale),
            copy_field(d.confidence),
            copy_field(d.confidence_rationale),
            copy_field(_quotes(d)),
            copy_field(catalogue),
        )
        self.events.append("\t".join(fields))

    def _key(self, name: str) -> str:
        key = self.keys.get(name)
        if key is None:
            key = self.keys[name] = fold(name)
        return key

    def _actors(self, d: EventInput, eid: str) -> tuple[list[int], list[tuple[str, str]]]:
        """Link rows, one per (actor, role) as events_service._apply keeps them; ids, (name, role) of each."""
        linked: dict[tuple[int, str], int] = {}
        for i, a in enumerate(d.actors):
            linked.setdefault((self.refs.actor_ids[self._key(a.name)], a.role), i)
        self.actors.extend(f"{eid}\t{aid}\t{role}\t{i}" for (aid, role), i in linked.items())
        return [aid for aid, _ in linked], [(self.refs.actor_names[aid], role) for aid, role in linked]

    def _systems(self, d: EventInput, eid: str) -> tuple[list[int], list[tuple[str, int | None, str | None]]]:
        """Link rows, one per system as events_service._apply keeps them; ids, (designation, qty, note)."""
        linked: dict[int, int] = {}
        for i, s in enumerate(d.systems):
            linked.setdefault(self.refs.system_ids[self._key(s.designation)], i)
        shown = []
        for sid, i in linked.items():
            s = d.systems[i]
            self.systems.append(f"{eid}\t{sid}\t{copy_int(s.quantity)}\t{copy_field(s.quantity_note)}\t{i}")
            shown.append((self.refs.system_names[sid], s.quantity, s.quantity_note))
        return list(linked), shown

    def _sources(self, d: EventInput, eid: str) -> list[int]:
        """Source rows; the origin id of each."""
        origins = [self.refs.origin_ids[self._key(src.origin_name())] for src in d.sources]
        for i, src in enumerate(d.sources):
            published, published_precision = _stored_date(src.published) if src.published else (NULL, NULL)
            fields = (
                eid,
                str(i),
                copy_field(src.publisher),
                copy_field(src.url),
                copy_field(src.title),
                published,
                published_precision,
                copy_field(src.quote),
                copy_field(src.note),
                src.reliability,
                str(src.credibility),
                str(origins[i]),
                copy_field(src.archive_url),
                src.accessed or NULL,  # validated YYYY-MM-DD
            )
            self.sources.append("\t".join(fields))
        return origins


def _created(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`audit.diff({}, snapshot)` (what create_event records) without its per-key lookups."""
    return {key: {"before": None, "after": value} for key, value in snapshot.items() if value is not None}


def _json(value: Any) -> str:
    """JSON text for a jsonb column: compact, non-ASCII kept as is (orjson: ~9x the json module's speed)."""
    return orjson.dumps(value).decode()


# Events go through an index-free staging table so the full-text document is computed on the way in:
# one write per row and one pass over the events' indexes, instead of an INSERT plus an UPDATE (which
# wrote a second row version and touched every index twice). The document is the one of
# app.queries.search_document: title (A), summary (B), source quotes and titles (C), and the catalogue
# names of the event's links (D), staged as text by build_batch. Either the
# import's own connection inserts from its staging table (commit_import), or a helper connection stages
# the rows and hands them back with their document (event_rows) for one COPY into events.
EVENT_COLUMNS = (
    "id, title, summary, kind, status, stage_override, date_start, date_precision, date_end, "
    "date_end_precision, location, tags, client_token, created_by, updated_by, origin_count, likelihood, "
    "likelihood_rationale, confidence, confidence_rationale"
)
STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS import_events (id integer, title text, summary text, kind text, "
    "status text, stage_override smallint, date_start date, date_precision text, date_end date, "
    "date_end_precision text, location text, tags text[], client_token uuid, created_by integer, "
    "updated_by integer, origin_count smallint, likelihood text, likelihood_rationale text, "
    "confidence text, confidence_rationale text, quotes text, catalogue text) ON COMMIT DROP"
)
SEARCH_DOCUMENT = document_sql("title", "summary", "quotes", "catalogue")
FROM_STAGING = (
    f"INSERT INTO events ({EVENT_COLUMNS}, search_vector) "
    f"SELECT {EVENT_COLUMNS}, {SEARCH_DOCUMENT} FROM import_events ORDER BY id"
)
# In COPY's binary format, which the staging table's column types match: the search document goes over
# as is, where text would be written out by the helper and parsed again by the import.
STAGED_ROWS = (
    f"COPY (SELECT {EVENT_COLUMNS}, {SEARCH_DOCUMENT} FROM import_events ORDER BY id) "
    "TO STDOUT (FORMAT binary)"
)
INTO_EVENTS = f"COPY events ({EVENT_COLUMNS}, search_vector) FROM STDIN (FORMAT binary)"

GIN_INDEXES = ("ix_events_search_vector", "ix_events_tags")


def _driver(session: Session) -> Any:
    """The psycopg connection under the session (its transaction), for COPY."""
    raw = session.connection().connection.driver_connection
    assert raw is not None
    return raw


def _stage(cursor: Any, payload: BatchPayload) -> None:
    """Load the batch's events into the (emptied) staging table of the cursor's session."""
    cursor.execute(STAGING)
    cursor.execute("TRUNCATE import_events")
    _copy(cursor, "import_events", payload.copy_text["import_events"])


def event_rows(helper: Session, payload: BatchPayload) -> bytes:
    """The batch's events with their search document, as COPY text for `events`, computed by `helper`.

    `helper` is a second connection (outside the import's transaction: it only computes). to_tsvector
    is nearly half of the server's work for an import; done there, it runs on the other core while the
    import's own connection loads the previous batch.
    """
    with _driver(helper).cursor() as cursor:
        _stage(cursor, payload)
        with cursor.copy(STAGED_ROWS) as copy:
            data = b"".join(copy)
        cursor.execute("TRUNCATE import_events")
    return data


class ReferenceGone(Exception):
    """An actor, system, country or user that the import's rows point to was deleted meanwhile."""


# Each row's foreign keys are checked by PostgreSQL's own triggers, whatever the role. Before loading, a
# batch locks every row it points to FOR KEY SHARE, so a reference deleted meanwhile is reported by name
# (ReferenceGone, a 409 on the web) rather than as a foreign key violation.
_HOLD = {
    "countries": "SELECT code FROM countries WHERE code = ANY(%s) FOR KEY SHARE",
    "actors": "SELECT id FROM actors WHERE id = ANY(%s) FOR KEY SHARE",
    "systems": "SELECT id FROM systems WHERE id = ANY(%s) FOR KEY SHARE",
    "users": "SELECT id FROM users WHERE id = ANY(%s) FOR KEY SHARE",
    "origins": "SELECT id FROM origins WHERE id = ANY(%s) FOR KEY SHARE",
}


def hold_references(cursor: Any, referenced: Referenced) -> None:
    """Lock every row the batch points to (no delete can take one before commit), or raise ReferenceGone."""
    for table, sql in _HOLD.items():
        wanted = getattr(referenced, table)
        if not wanted:
            continue
        cursor.execute(sql, (wanted,))
        found = {row[0] for row in cursor.fetchall()}
        missing = [w for w in wanted if w not in found]
        if missing:
            shown = ", ".join(str(m) for m in missing[:5])
            raise ReferenceGone(f"{table} {shown} no longer exist (deleted or merged while importing)")


def write_batch(
    session: Session,
    payload: BatchPayload,
    merge: bool = True,
    events: bytes | None = None,
) -> None:
    """Load a built batch in the session's transaction: events (with their search document), then the rest.

    `events` are the rows `event_rows` computed on a helper connection; without them the search
    document is computed here. `merge=False` leaves the GIN pending lists to one `merge_pending` at the end.
    """
    with _driver(session).cursor() as cursor:
        # New GIN entries (search document, tags) wait in each index's pending list and are merged in
        # bulk: a large list merges the whole batch at once instead of entry by entry.
        cursor.execute("SET LOCAL gin_pending_list_limit = '64MB'")
        hold_references(cursor, payload.referenced)
        # Every loaded row's foreign keys are checked by PostgreSQL's RI triggers, one lookup per row and
        # key. For the small tables (countries, actors, systems, origins, users) the planner prefers a
        # sequential scan, which compares the key with every row of the table: hundreds of rows per check,
        # and over half a million checks per 100,000 events. A primary key lookup checks the same thing in
        # a fraction of the time. The setting only steers how the checks find the row (a check planned under
        # it can stay cached on the connection: harmless, a lookup by key is right for any table), and is
        # put back before anything else runs.
        cursor.execute("SELECT current_setting('enable_seqscan')")
        seqscan = cursor.fetchone()[0]
        cursor.execute("SET LOCAL enable_seqscan = off")
        if events is None:
            _stage(cursor, payload)
            cursor.execute(FROM_STAGING)
            loaded = cursor.rowcount
            cursor.execute("TRUNCATE import_events")
        elif events:
            with cursor.copy(INTO_EVENTS) as copy:
                copy.write(events)
            loaded = cursor.rowcount
        else:
            loaded = 0
        if loaded != len(payload.event_ids):  # the links below point to these events
            raise RuntimeError(f"{loaded} of the batch's {len(payload.event_ids)} events were loaded")
        for table in LINK_TABLES:
            _copy(cursor, table, payload.copy_text[table])
        cursor.execute("SELECT set_config('enable_seqscan', %s, true)", (seqscan,))
    if merge:
        merge_pending(session)


def _copy(cursor: Any, table: str, data: str) -> None:
    """COPY text rows into a table (nothing when there are none)."""
    if data:
        with cursor.copy(f"COPY {table} ({COPY_COLUMNS[table]}) FROM STDIN") as copy:
            copy.write(data)


def merge_pending(session: Session) -> None:
    """Merge the events' GIN pending lists, so searches never scan a long one.

    Merging needs ownership of the index (the role that ran the migrations); another role leaves the
    lists to the next insert or autovacuum rather than failing the import.
    """
    session.execute(
        text(
            "SELECT gin_clean_pending_list(c.oid) FROM pg_class c "
            "WHERE c.relname = ANY(:names) AND c.relkind = 'i' "
            "AND pg_has_role(current_user, c.relowner, 'USAGE')"
        ),
        {"names": list(GIN_INDEXES)},
    )


def commit_import(
    session: Session,
    rows: list[ParsedRow],
    who: Who | None,
    import_token: uuid.UUID,
    reason: str | None = None,
) -> ImportResult:
    """Write every row as a new event in the caller's transaction: a few statements per batch.

    The caller commits (or rolls back: nothing is written unless everything is).
    """
    payload = build_batch(rows, prepare_batch(session, rows), who, import_token, reason)
    write_batch(session, payload)
    return ImportResult(payload.event_ids, payload.new_actors, payload.new_systems, payload.new_origins)
