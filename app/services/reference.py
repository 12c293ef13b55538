"""Editing and merging reference data (actors, systems), audited, with match keys kept in sync."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased, object_session

from app.domain.countries import resolve_country
from app.domain.textkeys import fold, match_keys
from app.models import Actor, Event, EventActor, EventSystem, System
from app.queries.editing import actors_owning_keys, systems_owning_keys
from app.queries.families import descendant_ids
from app.queries.search_document import refresh_documents, system_family
from app.queries.transfer.export_lines import store_lines
from app.schemas import ActorType, check_designation
from app.services.audit import Who, diff, record
from app.services.events import event_options, find_system, snapshot


class ReferenceConflict(ValueError):
    """The edit would make a name or alias point at two entries; `field` names the input to flag."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class MergeError(ValueError):
    """A merge that cannot be done (same entry twice)."""


def _aliases(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        v = " ".join(v.split())
        if v and fold(v) not in {fold(x) for x in out}:
            out.append(v)
    return out


def _country_or_none(value: str | None) -> str | None:
    if not value:
        return None
    code = resolve_country(value)
    if code is None:
        raise ValueError(f"unknown country “{value}”; use an ISO 3166-1 code such as RUS")
    return code


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ActorEdit(_Edit):
    """What an analyst may change on an actor."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    aliases: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    type: ActorType = "person"
    country: str | None = None
    title: Annotated[str, Field(max_length=500)] | None = None

    @field_validator("country")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        return _country_or_none(v)

    @field_validator("title")
    @classmethod
    def _empty(cls, v: str | None) -> str | None:
        return v or None

    @model_validator(mode="after")
    def _clean(self) -> ActorEdit:
        self.name = " ".join(self.name.split())
        self.aliases = [a for a in _aliases(self.aliases) if fold(a) != fold(self.name)]
        return self


class SystemEdit(_Edit):
    """What an analyst may change on a catalogued system."""

    designation: Annotated[str, Field(min_length=1, max_length=200)]
    aliases: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    category: Annotated[str, Field(max_length=500)] | None = None
    origin: str | None = None
    # The family it is a variant of, by designation or alias; None or "" clears it.
    parent: Annotated[str, Field(max_length=200)] | None = None

    @field_validator("origin")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        return _country_or_none(v)

    @field_validator("category", "parent")
    @classmethod
    def _empty(cls, v: str | None) -> str | None:
        return " ".join(v.split()) if v and v.strip() else None

    @field_validator("designation")
    @classmethod
    def _listable(cls, v: str) -> str:
        return check_designation(" ".join(v.split()))

    @model_validator(mode="after")
    def _clean(self) -> SystemEdit:
        self.designation = " ".join(self.designation.split())
        self.aliases = [a for a in _aliases(self.aliases) if fold(a) != fold(self.designation)]
        return self


def actor_snapshot(actor: Actor) -> dict[str, Any]:
    """An actor's editable fields, for the audit diff."""
    return {
        "name": actor.name,
        "aliases": list(actor.aliases),
        "type": actor.type,
        "country": actor.country_code,
        "title": actor.title,
    }


def system_snapshot(system: System) -> dict[str, Any]:
    """A system's editable fields, for the audit diff (the parent by designation)."""
    return {
        "designation": system.designation,
        "aliases": list(system.aliases),
        "category": system.category,
        "origin": system.origin_code,
        "parent": parent_designation(system),
    }


def parent_designation(system: System) -> str | None:
    """The designation of the family the system is a variant of, or None."""
    session = object_session(system)
    parent = session.get(System, system.parent_id) if session is not None and system.parent_id else None
    return parent.designation if parent is not None else None


# Parent changes and merges take this transaction lock before their cycle check: two edits checked at
# once (A under B, B under A) would each see no cycle and together make one.
FAMILY_LOCK = 0x5F4D_11E5


def _lock_families(session: Session) -> None:
    session.execute(select(func.pg_advisory_xact_lock(FAMILY_LOCK)))


def _parent_for(session: Session, system: System, name: str | None) -> int | None:
    """The id of the parent named (None clears it), or ReferenceConflict on `parent` naming why not."""
    if name is None:
        return None
    _lock_families(session)
    parent = find_system(session, name)
    if parent is None:
        raise ReferenceConflict(
            "parent",
            f"No system is called “{name}” (by designation or alias); pick one from the suggestions.",
        )
    if parent.id == system.id:
        raise ReferenceConflict(
            "parent", f"“{name}” is this system itself; a system cannot be its own variant."
        )
    if parent.id in descendant_ids(session, system.id):
        raise ReferenceConflict(
            "parent",
            f"“{parent.designation}” is a variant of {system.designation}; making it the parent would put "
            "the family in a loop. Choose a system outside this family.",
        )
    return parent.id


def _owner_message(
    kind: str, keys: list[str], owners: list[Any], label: str, typed: list[str]
) -> ReferenceConflict:
    owner = owners[0]
    owner_name = owner.name if isinstance(owner, Actor) else owner.designation
    clash = next((k for k in keys if k in owner.match_keys), keys[0])
    field = (
        "name" if kind == "actor" and clash == keys[0] else ("designation" if clash == keys[0] else "aliases")
    )
    shown = next((t for t in typed if fold(t) == clash), clash)  # as typed, not the folded match key
    return ReferenceConflict(
        field,
        f"“{shown}” already names the {kind} “{owner_name}” (#{owner.id}); "
        f"merge the two {label} instead of giving them the same name.",
    )


def update_actor(session: Session, actor_id: int, data: ActorEdit, who: Who | None) -> Actor:
    """Apply an edit to an actor and write one audit row (none when nothing changed)."""
    actor = session.get(Actor, actor_id, with_for_update=True)
    if actor is None:
        raise LookupError(actor_id)
    keys = match_keys(data.name, data.aliases)
    owners = actors_owning_keys(session, keys, actor.id)
    if owners:
        raise _owner_message("actor", keys, owners, "actors", [data.name, *data.aliases])
    before = actor_snapshot(actor)
    renamed = data.name != actor.name
    linking: list[int] = []
    if renamed or list(data.aliases) != actor.aliases or keys != actor.match_keys:
        linking = _lock_events_linking(session, EventActor, EventActor.actor_id, [actor.id])
    actor.name, actor.aliases, actor.match_keys = data.name, list(data.aliases), keys
    actor.type, actor.country_code, actor.title = data.type, data.country, data.title
    changes = diff(before, actor_snapshot(actor))
    if changes:
        record(session, who, "update", "actor", actor.id, changes)
    session.flush()
    refresh_documents(session, linking)  # their search documents hold the names and aliases
    store_lines(session, linking if renamed else [])  # their lines show the new name
    return actor


def update_system(session: Session, system_id: int, data: SystemEdit, who: Who | None) -> System:
    """Apply an edit to a system and write one audit row (none when nothing changed)."""
    system = session.get(System, system_id, with_for_update=True)
    if system is None:
        raise LookupError(system_id)
    keys = match_keys(data.designation, data.aliases)
    owners = systems_owning_keys(session, keys, system.id)
    if owners:
        raise _owner_message("system", keys, owners, "systems", [data.designation, *data.aliases])
    before = system_snapshot(system)
    renamed = data.designation != system.designation
    parent_id = _parent_for(session, system, data.parent)
    linking: list[int] = []
    names_changed = renamed or list(data.aliases) != system.aliases or keys != system.match_keys
    if names_changed or parent_id != system.parent_id:
        # The documents of events naming it or one of its variants hold its names and its ancestors'.
        linking = _lock_events_linking(
            session, EventSystem, EventSystem.system_id, system_family(session, [system.id])
        )
    system.designation, system.aliases, system.match_keys = data.designation, list(data.aliases), keys
    system.category, system.origin_code = data.category, data.origin
    system.parent_id = parent_id
    changes = diff(before, system_snapshot(system))
    if changes:
        record(session, who, "update", "system", system.id, changes)
    session.flush()
    refresh_documents(session, linking)
    store_lines(session, linking if renamed else [])  # their lines show the new designation
    return system


# Lock order, so that merges and renames running at once queue instead of deadlocking: the actors or
# systems first (a merge's two in one statement, by id), then the events whose stored lines show them
# (by id), whose lines are then written again in the same transaction. Taking the events in no set order,
# two merges of the same pair in opposite directions each held one entry and waited for the other.


def _lock_pair(session: Session, model: Any, keep_id: int, drop_id: int) -> tuple[Any, Any]:
    """Both entries locked FOR UPDATE by one statement in id order (fresh from the database); None if gone."""
    rows = session.scalars(
        select(model)
        .where(model.id.in_((keep_id, drop_id)))
        .order_by(model.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = {row.id: row for row in rows}
    return found.get(keep_id), found.get(drop_id)


def _lock_events_linking(session: Session, link: Any, column: Any, ref_ids: list[int]) -> list[int]:
    """Lock the events (deleted ones too) that link any of the entries, in id order; their ids."""
    ids = select(link.event_id).where(column.in_(ref_ids))
    return list(
        session.scalars(
            select(Event.id).where(Event.id.in_(ids)).order_by(Event.id).with_for_update(key_share=True)
        )
    )


def _events_linking(session: Session, link: Any, column: Any, ref_id: int) -> list[Event]:
    """Every event (deleted ones too: a restore must find its links) that links the entry."""
    ids = select(link.event_id).where(column == ref_id)
    stmt = select(Event).where(Event.id.in_(ids)).options(*event_options()).order_by(Event.id)
    return list(session.scalars(stmt).unique())


def _record_event_moves(
    session: Session, events: list[Event], before: dict[int, dict[str, Any]], who: Who | None, reason: str
) -> None:
    """One 'merge' history row per moved event; the version bump makes open edit forms conflict."""
    now = datetime.now(UTC)
    for event in events:
        session.refresh(event)
        changes = diff(before[event.id], snapshot(event))
        event.version += 1
        event.updated_at = now
        event.updated_by = who.id if who else None
        record(session, who, "merge", "event", event.id, changes, reason)


def merge_actors(session: Session, keep_id: int, drop_id: int, who: Who | None) -> Actor:
    """Merge actor `drop` into `keep`: links move over (no duplicate rows), drop's names become aliases."""
    if keep_id == drop_id:
        raise MergeError("Choose two different actors.")
    keep, drop = _lock_pair(session, Actor, keep_id, drop_id)
    if keep is None or drop is None:
        raise LookupError(keep_id if keep is None else drop_id)
    # Keep's events too: keep takes drop's names as aliases, which their search documents hold.
    linking = _lock_events_linking(session, EventActor, EventActor.actor_id, [keep.id, drop.id])
    events = _events_linking(session, EventActor, EventActor.actor_id, drop.id)
    before = {e.id: snapshot(e) for e in events}
    keep_before, drop_before = actor_snapshot(keep), actor_snapshot(drop)

    other = aliased(EventActor)
    already = exists().where(
        other.event_id == EventActor.event_id, other.actor_id == keep.id, other.role == EventActor.role
    )
    session.execute(
        update(EventActor)
        .where(EventActor.actor_id == drop.id, ~already)
        .values(actor_id=keep.id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(EventActor).where(EventActor.actor_id == drop.id).execution_options(synchronize_session=False)
    )
    keep.aliases = [
        a for a in _aliases([*keep.aliases, drop.name, *drop.aliases]) if fold(a) != fold(keep.name)
    ]
    keep.match_keys = match_keys(keep.name, keep.aliases)
    keep.country_code = keep.country_code or drop.country_code
    keep.title = keep.title or drop.title
    session.delete(drop)
    session.flush()
    reason = f"merged actor “{drop_before['name']}” into “{keep.name}”"
    _record_event_moves(session, events, before, who, reason)
    record(session, who, "merge", "actor", keep.id, diff(keep_before, actor_snapshot(keep)), reason)
    record(
        session,
        who,
        "merge",
        "actor",
        drop_id,
        {"merged_into": {"before": None, "after": keep.name}, **diff(drop_before, {})},
        reason,
    )
    refresh_documents(session, linking)
    store_lines(session, [e.id for e in events])
    return keep


def _fill_quantities(session: Session, keep_id: int, drop_id: int) -> None:
    """Where an event names both systems, keep's row takes drop's quantity and note when it has none."""
    dropped = aliased(EventSystem)
    session.execute(
        update(EventSystem)
        .where(
            EventSystem.system_id == keep_id,
            dropped.event_id == EventSystem.event_id,
            dropped.system_id == drop_id,
        )
        .values(
            quantity=func.coalesce(EventSystem.quantity, dropped.quantity),
            quantity_note=func.coalesce(EventSystem.quantity_note, dropped.quantity_note),
        )
        .execution_options(synchronize_session=False)
    )


def _adopt_variants(session: Session, keep: System, drop: System, who: Who | None, reason: str) -> None:
    """Drop's variants become keep's; keep takes drop's place in the tree when it was below drop."""
    _lock_families(session)
    if keep.id in descendant_ids(session, drop.id):
        keep.parent_id = drop.parent_id  # else keep would end up under its own former ancestor
    elif keep.parent_id is None and drop.parent_id not in {keep.id, *descendant_ids(session, keep.id)}:
        keep.parent_id = drop.parent_id  # like category and origin: keep's own wins, drop's fills a gap
    session.flush()
    moved = list(session.scalars(select(System.id).where(System.parent_id == drop.id, System.id != keep.id)))
    session.execute(
        update(System)
        .where(System.id.in_(moved))
        .values(parent_id=keep.id)
        .execution_options(synchronize_session=False)
    )
    change = {"parent": {"before": drop.designation, "after": keep.designation}}
    for child_id in moved:
        record(session, who, "merge", "system", child_id, change, reason)


def merge_systems(session: Session, keep_id: int, drop_id: int, who: Who | None) -> System:
    """Merge system `drop` into `keep`: links move over (quantities kept), drop's names become aliases."""
    if keep_id == drop_id:
        raise MergeError("Choose two different systems.")
    keep, drop = _lock_pair(session, System, keep_id, drop_id)
    if keep is None or drop is None:
        raise LookupError(keep_id if keep is None else drop_id)
    # Keep's events and (with families) those of both entries' variants: their documents hold the names.
    linking = _lock_events_linking(
        session, EventSystem, EventSystem.system_id, system_family(session, [keep.id, drop.id])
    )
    events = _events_linking(session, EventSystem, EventSystem.system_id, drop.id)
    before = {e.id: snapshot(e) for e in events}
    keep_before, drop_before = system_snapshot(keep), system_snapshot(drop)

    # Where an event names both, keep one row and take the dropped row's quantity if keep has none.
    _fill_quantities(session, keep.id, drop.id)
    other = aliased(EventSystem)
    already = exists().where(other.event_id == EventSystem.event_id, other.system_id == keep.id)
    session.execute(
        update(EventSystem)
        .where(EventSystem.system_id == drop.id, ~already)
        .values(system_id=keep.id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(EventSystem)
        .where(EventSystem.system_id == drop.id)
        .execution_options(synchronize_session=False)
    )
    keep.aliases = [
        a
        for a in _aliases([*keep.aliases, drop.designation, *drop.aliases])
        if fold(a) != fold(keep.designation)
    ]
    keep.match_keys = match_keys(keep.designation, keep.aliases)
    keep.category = keep.category or drop.category
    keep.origin_code = keep.origin_code or drop.origin_code
    reason = f"merged system “{drop_before['designation']}” into “{keep.designation}”"
    _adopt_variants(session, keep, drop, who, reason)
    session.delete(drop)
    session.flush()
    _record_event_moves(session, events, before, who, reason)
    record(session, who, "merge", "system", keep.id, diff(keep_before, system_snapshot(keep)), reason)
    record(
        session,
        who,
        "merge",
        "system",
        drop_id,
        {"merged_into": {"before": None, "after": keep.designation}, **diff(drop_before, {})},
        reason,
    )
    refresh_documents(session, linking)
    store_lines(session, [e.id for e in events])
    return keep
