"""Writing events: create, update with the version check, soft delete and restore, each audited."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.domain import clock
from app.domain.dates import format_iso
from app.domain.textkeys import fold, match_keys
from app.models import Actor, Event, EventActor, EventCountry, EventSystem, Origin, Source, System
from app.queries.search_document import refresh_documents
from app.queries.transfer.export_lines import linkers, store_lines
from app.schemas import ActorLink, CountryLink, EventInput, SourceInput, SystemLink
from app.services.audit import Who, diff, record
from app.services.evidence import FilePlan, apply_plan, follow_sources


class EventNotFound(LookupError):
    """No (visible) event has that id."""


class VersionConflict(Exception):
    """The event changed since the editor loaded it; `current` is the newer version."""

    def __init__(self, current: Event) -> None:
        super().__init__(f"event {current.id} is at version {current.version}")
        self.current = current


def event_options() -> list[Any]:
    """Eager loads for everything an event page or export shows (a fixed number of queries)."""
    return [
        selectinload(Event.countries),
        selectinload(Event.actors).joinedload(EventActor.actor),
        selectinload(Event.systems).joinedload(EventSystem.system),
        selectinload(Event.sources).joinedload(Source.origin),
        selectinload(Event.files),  # metadata only: the bytes are deferred
    ]


def load_event(
    session: Session, event_id: int, *, include_deleted: bool = False, lock: bool = False
) -> Event:
    """Fetch one event with its links, or raise EventNotFound."""
    stmt = select(Event).where(Event.id == event_id).options(*event_options())
    if not include_deleted:
        stmt = stmt.where(Event.deleted_at.is_(None))
    if lock:
        # populate_existing: the row read under the lock must overwrite an Event this session loaded
        # earlier (a route that looked the event up first), or the version check would compare the
        # stale version and let concurrent edits all "succeed" (lost updates).
        stmt = stmt.with_for_update(of=Event).execution_options(populate_existing=True)
    event = session.scalars(stmt).unique().one_or_none()
    if event is None:
        raise EventNotFound(event_id)
    return event


def find_entry(session: Session, model: Any, name: str) -> Any:
    """The actor or system (`model`) whose name or alias folds to the same key as `name`, or None."""
    key = fold(name)
    return session.scalars(
        select(model).where(model.match_keys.contains([key])).order_by(model.id).limit(1)
    ).first()


def find_actor(session: Session, name: str) -> Actor | None:
    """The actor whose name or alias folds to the same key as `name`."""
    return find_entry(session, Actor, name)


def find_system(session: Session, designation: str) -> System | None:
    """The system whose designation or alias folds to the same key."""
    return find_entry(session, System, designation)


def find_origin(session: Session, name: str) -> Origin | None:
    """The origin whose name or alias folds to the same key."""
    return find_entry(session, Origin, name)


# Lock order: an event's writer takes the actors and systems it will link (FOR KEY SHARE, each table in
# one statement by id) before the event row, as merges and renames take those entries before the events
# that show them (app/services/reference.py). Taking the event first let a merge that held the entry wait
# for the event while the edit's foreign key check waited for the entry: a deadlock.
_LOCK_TRIES = 5


def _lock_named(
    session: Session, model: Any, names: list[str], find: Callable[[Session, str], Any]
) -> dict[str, Any]:
    """Match key → the existing entry of that name, locked FOR KEY SHARE; names not found are left out.

    A merge or rename that held an entry may have moved the name meanwhile (the entry deleted, or the
    name now another's alias): then the names are looked up again under the new state.
    """
    keys = {fold(n): n for n in names}
    found: dict[str, Any] = {}
    for _ in range(_LOCK_TRIES):
        found = {key: entry for key, name in keys.items() if (entry := find(session, name)) is not None}
        if not found:
            return {}
        # Each try in a savepoint: a try that found the names moved gives its locks back, so the next
        # one takes all of its locks in id order again rather than on top of the earlier ones.
        attempt = session.begin_nested()
        locked = {row.id: row for row in session.scalars(_key_share(model, {e.id for e in found.values()}))}
        if all(e.id in locked and key in locked[e.id].match_keys for key, e in found.items()):
            attempt.commit()
            return found
        attempt.rollback()
    # Names still moving after several waits: the links are written as last found, and a foreign key
    # failure, should the entry go after all, rolls the whole save back.
    return found


def _key_share(model: Any, ids: set[int]) -> Any:
    """SELECT the entries FOR KEY SHARE in id order (what a foreign key check takes), fresh from the table."""
    return (
        select(model)
        .where(model.id.in_(sorted(ids)))
        .order_by(model.id)
        .with_for_update(read=True, key_share=True)
        .execution_options(populate_existing=True)
    )


class Entries(NamedTuple):
    """The existing actors, systems and origins an input names, by match key, locked for the save."""

    actors: dict[str, Actor]
    systems: dict[str, System]
    origins: dict[str, Origin]


def lock_entries(session: Session, data: EventInput, created: list[str] | None = None) -> Entries:
    """The actors and systems `data` names, locked (existing) or made (new), before the event row.

    New ones are made in one order (actors, then systems, each by match key): two saves that make the
    same two new names queue on the first one's unique index instead of each waiting for the other.
    """
    actors = _lock_named(session, Actor, [a.name for a in data.actors], find_actor)
    for link in sorted(data.actors, key=lambda a: fold(a.name)):
        if fold(link.name) not in actors:
            actors[fold(link.name)] = get_or_create_actor(session, link, created)
    systems = _lock_named(session, System, [x.designation for x in data.systems], find_system)
    for slink in sorted(data.systems, key=lambda x: fold(x.designation)):
        if fold(slink.designation) not in systems:
            systems[fold(slink.designation)] = get_or_create_system(session, slink, created)
    names = [src.origin_name() for src in data.sources]
    origins = _lock_named(session, Origin, names, find_origin)
    for name in sorted(names, key=fold):
        if fold(name) not in origins:
            origins[fold(name)] = get_or_create_origin(session, name, created)
    return Entries(actors, systems, origins)


def _insert_alone(session: Session, entry: Actor | System | Origin) -> None:
    """Insert a new actor or system in a savepoint, so a name clash undoes this insert, not the save."""
    with session.begin_nested():
        session.add(entry)
        session.flush()


def _get_or_create(
    session: Session, model: Any, name: str, make: Callable[[], Any], created: list[str] | None
) -> Any:
    """The actor or system (`model`) found by name or alias, or `make()` inserted (noted in `created`)."""
    entry = find_entry(session, model, name)
    if entry is not None:
        return entry
    entry = make()
    try:
        _insert_alone(session, entry)
    except IntegrityError:
        # A concurrent save committed the same name first: its unique index made this insert wait.
        if (winner := find_entry(session, model, name)) is None:
            raise
        session.execute(_key_share(model, {winner.id}))  # as the entries found by name are
        return winner
    if created is not None:
        created.append(f"{model.__name__.lower()} {name}")
    return entry


def get_or_create_actor(session: Session, link: ActorLink, created: list[str] | None = None) -> Actor:
    """Find an actor by name or alias, or create it with the link's type, country and title."""

    def make() -> Actor:
        return Actor(
            name=link.name,
            aliases=[],
            match_keys=match_keys(link.name),
            type=link.type or "person",
            country_code=link.country,
            title=link.title,
        )

    return _get_or_create(session, Actor, link.name, make, created)


def get_or_create_system(session: Session, link: SystemLink, created: list[str] | None = None) -> System:
    """Find a system by designation or alias, or add it to the catalogue."""

    def make() -> System:
        return System(
            designation=link.designation,
            aliases=[],
            match_keys=match_keys(link.designation),
            category=link.category,
            origin_code=link.origin,
        )

    return _get_or_create(session, System, link.designation, make, created)


def get_or_create_origin(session: Session, name: str, created: list[str] | None = None) -> Origin:
    """Find an origin by name or alias, or add it to the catalogue (as an import adds an unknown actor)."""

    def make() -> Origin:
        return Origin(name=name, aliases=[], match_keys=match_keys(name))

    return _get_or_create(session, Origin, name, make, created)


def independent_origins(session: Session, data: EventInput) -> list[str]:
    """The distinct origins the input's sources go back to, by catalogue name (new ones as typed)."""
    found: dict[object, str] = {}
    for source in data.sources:
        name = source.origin_name()
        origin = find_origin(session, name)
        found.setdefault(origin.id if origin is not None else fold(name), origin.name if origin else name)
    return list(found.values())


def relays(publisher: str, origin: Origin) -> bool:
    """True when the publisher is not the origin itself (by name or alias): it relays another's report."""
    return fold(publisher) not in origin.match_keys


def shown_origin(publisher: str, origin: Origin) -> str | None:
    """The origin as a source's input shows it: its name for a relay, None when it is the publisher."""
    return origin.name if relays(publisher, origin) else None


def source_input(source: Source) -> SourceInput:
    """A stored source as input (for edit forms, re-apply and export)."""
    return SourceInput.model_construct(  # stored values were validated on the way in
        publisher=source.publisher,
        origin=shown_origin(source.publisher, source.origin),
        url=source.url,
        title=source.title,
        published=format_iso(source.published_on, source.published_precision) or None,
        quote=source.quote,
        note=source.note,
        reliability=source.reliability,  # type: ignore[arg-type]
        credibility=source.credibility,
        archive_url=source.archive_url,
        accessed=source.accessed_on.isoformat() if source.accessed_on else None,
    )


def event_input(event: Event) -> EventInput:
    """A stored event as the input that would recreate it."""
    return EventInput.model_construct(
        title=event.title,
        summary=event.summary,
        kind=event.kind,
        status=event.status,
        stage_override=event.stage_override,
        date=format_iso(event.date_start, event.date_precision),
        date_end=format_iso(event.date_end, event.date_end_precision) or None,
        location=event.location,
        tags=list(event.tags),
        countries=[CountryLink.model_construct(code=c.country_code, role=c.role) for c in event.countries],
        actors=[ActorLink.model_construct(name=a.actor.name, role=a.role) for a in event.actors],
        systems=[
            SystemLink.model_construct(
                designation=s.system.designation, quantity=s.quantity, quantity_note=s.quantity_note
            )
            for s in event.systems
        ],
        sources=[source_input(s) for s in event.sources],
        likelihood=event.likelihood,
        likelihood_rationale=event.likelihood_rationale,
        confidence=event.confidence,
        confidence_rationale=event.confidence_rationale,
        client_token=event.client_token,
    )


def system_label(designation: str, quantity: int | None, note: str | None) -> str:
    """A system as the audit log shows it: 'Igla-S ×5000 (note)'."""
    return designation + (f" ×{quantity}" if quantity is not None else "") + (f" ({note})" if note else "")


def input_snapshot(
    data: EventInput, actor_labels: list[str] | None = None, system_labels: list[str] | None = None
) -> dict[str, Any]:
    """The analyst-visible fields as plain JSON values, for the audit diff and version comparisons.

    Labels may be passed when names were resolved to canonical actors/systems (the import does so).
    """
    return {
        "title": data.title,
        "summary": data.summary,
        "kind": data.kind,
        "status": data.status,
        "stage_override": data.stage_override,
        "date": data.date,
        "date_end": data.date_end,
        "location": data.location,
        "tags": list(data.tags),
        "countries": [f"{c.role}:{c.code}" for c in data.countries],
        "actors": actor_labels if actor_labels is not None else [f"{a.role}:{a.name}" for a in data.actors],
        "systems": system_labels
        if system_labels is not None
        else [system_label(x.designation, x.quantity, x.quantity_note) for x in data.systems],
        "sources": [
            {
                "publisher": x.publisher,
                "origin": x.origin,
                "url": x.url,
                "title": x.title,
                "published": x.published,
                "quote": x.quote,
                "note": x.note,
                "grade": f"{x.reliability}{x.credibility}",
                **_evidence_snapshot(x),
            }
            for x in data.sources
        ],
        "likelihood": data.likelihood,
        "likelihood_rationale": data.likelihood_rationale,
        "confidence": data.confidence,
        "confidence_rationale": data.confidence_rationale,
    }


def _evidence_snapshot(source: SourceInput) -> dict[str, Any]:
    """A source's archived copy and accessed date, only when set (older history rows stay comparable)."""
    out: dict[str, Any] = {}
    if source.archive_url:
        out["archive_url"] = source.archive_url
    if source.accessed:
        out["accessed"] = source.accessed
    return out


def snapshot(event: Event) -> dict[str, Any]:
    """A stored event's snapshot (the same shape input_snapshot gives for its input)."""
    return input_snapshot(event_input(event))


def _apply(session: Session, event: Event, data: EventInput, entries: Entries) -> None:
    """Copy validated input onto an event, replacing its links to the `entries` lock_entries gave."""
    start, end = data.start(), data.end()
    event.title = data.title
    event.summary = data.summary
    event.kind = data.kind
    event.status = data.status
    event.stage_override = data.stage_override
    event.date_start, event.date_precision = start.start, start.precision
    event.date_end = end.start if end else None
    event.date_end_precision = end.precision if end else None
    event.location = data.location
    event.tags = list(data.tags)
    event.likelihood = data.likelihood
    event.likelihood_rationale = data.likelihood_rationale
    event.confidence = data.confidence
    event.confidence_rationale = data.confidence_rationale

    event.countries = [
        EventCountry(country_code=c.code, role=c.role, position=i) for i, c in enumerate(data.countries)
    ]
    actor_links: dict[tuple[int, str], EventActor] = {}
    for i, link in enumerate(data.actors):
        actor = entries.actors[fold(link.name)]
        actor_links.setdefault((actor.id, link.role), EventActor(actor=actor, role=link.role, position=i))
    event.actors = list(actor_links.values())
    system_links: dict[int, EventSystem] = {}
    for i, slink in enumerate(data.systems):
        system = entries.systems[fold(slink.designation)]
        system_links.setdefault(
            system.id,
            EventSystem(
                system=system, quantity=slink.quantity, quantity_note=slink.quantity_note, position=i
            ),
        )
    event.systems = list(system_links.values())
    sources = []
    for i, s in enumerate(data.sources):
        published = s.published_date()
        sources.append(
            Source(
                position=i,
                publisher=s.publisher,
                origin=entries.origins[fold(s.origin_name())],
                url=s.url,
                title=s.title,
                published_on=published.start if published else None,
                published_precision=published.precision if published else None,
                quote=s.quote,
                note=s.note,
                reliability=s.reliability,
                credibility=s.credibility,
                archive_url=s.archive_url,
                accessed_on=s.accessed_date(),
            )
        )
    event.sources = sources
    event.origin_count = len({src.origin.id for src in sources})


def refresh_search(session: Session, event_ids: list[int] | None = None) -> None:
    """Recompute the full-text document (text and catalogue names) of some events, or all when None."""
    refresh_documents(session, event_ids)


def create_event(
    session: Session,
    data: EventInput,
    who: Who | None,
    created: list[str] | None = None,
    files: FilePlan | None = None,
) -> Event:
    """Create an event and its audit row (and its files' rows); a repeated client_token returns the first
    event instead."""
    if data.client_token is not None:
        existing = session.scalars(select(Event).where(Event.client_token == data.client_token)).first()
        if existing is not None:
            return load_event(session, existing.id, include_deleted=True)
    entries = lock_entries(session, data, created)
    event = Event(
        client_token=data.client_token,
        created_by=who.id if who else None,
        updated_by=who.id if who else None,
        review_clock_at=clock.utcnow(),  # the review clock starts at creation (app/domain/review.py)
    )
    try:
        with session.begin_nested():
            session.add(event)
            _apply(session, event, data, entries)
            session.flush()
    except IntegrityError:
        # A concurrent create with the same client token won the race: hand back its event.
        if data.client_token is None:
            raise
        winner = session.scalars(select(Event).where(Event.client_token == data.client_token)).first()
        if winner is None:
            raise
        return load_event(session, winner.id, include_deleted=True)
    refresh_search(session, [event.id])
    record(session, who, "create", "event", event.id, diff({}, snapshot(event)))
    if files is not None:
        apply_plan(session, event, files, who)
    store_lines(session, [event.id])
    return event


def update_event(
    session: Session,
    event_id: int,
    data: EventInput,
    who: Who | None,
    expected_version: int,
    reason: str | None = None,
    files: FilePlan | None = None,
) -> Event:
    """Apply an edit if the event is still at `expected_version`, else raise VersionConflict.

    `files` says which stored files each source keeps and which it gains (the form); without it files follow
    their source by identity (evidence.follow_sources: AmbiguousSources when that is not clear).
    """
    entries = lock_entries(session, data)
    event = load_event(session, event_id, lock=True)
    if event.version != expected_version:
        raise VersionConflict(event)
    before = snapshot(event)
    if files is None:
        files = follow_sources(session, event.id, event_input(event).sources, data.sources)
    _apply(session, event, data, entries)
    session.flush()
    changes = diff(before, snapshot(event))
    if "status" in changes:
        event.review_clock_at = clock.utcnow()  # a status change restarts the review clock
    if changes:
        event.version += 1
        event.updated_at = datetime.now(UTC)
        event.updated_by = who.id if who else None
        session.flush()
        refresh_search(session, [event.id])
        record(session, who, "update", "event", event.id, changes, reason)
    if apply_plan(session, event, files, who) or changes:
        store_lines(session, [event.id])
    return event


def delete_event(session: Session, event_id: int, who: Who | None, reason: str | None = None) -> Event:
    """Soft-delete: the event leaves every view and export but stays restorable."""
    event = load_event(session, event_id, lock=True)
    event.deleted_at = datetime.now(UTC)
    event.deleted_by = who.id if who else None
    event.version += 1
    record(session, who, "delete", "event", event.id, {"deleted": {"before": False, "after": True}}, reason)
    # Its version moved (the export leaves deleted events out); events linking to it no longer name it.
    store_lines(session, [event.id, *linkers(session, event.id)])
    return event


def restore_event(session: Session, event_id: int, who: Who | None, reason: str | None = None) -> Event:
    """Bring a soft-deleted event back with all its links."""
    event = load_event(session, event_id, include_deleted=True, lock=True)
    if event.deleted_at is None:
        return event
    event.deleted_at = None
    event.deleted_by = None
    event.version += 1
    record(session, who, "restore", "event", event.id, {"deleted": {"before": True, "after": False}}, reason)
    store_lines(session, [event.id, *linkers(session, event.id)])  # its linkers name it again
    return event


def new_client_token() -> uuid.UUID:
    """A fresh token for a create form, so a double submit makes one event."""
    return uuid.uuid4()
