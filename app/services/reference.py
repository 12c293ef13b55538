"""Editing and merging reference data (actors, systems), audited, with match keys kept in sync.

One implementation serves every kind of entry; a `ReferenceKind` says what differs (model, link table,
name field, the fields an edit sets and a merge fills). Systems extend it with their family tree
(`SystemKind`). Another kind of named entry takes one more spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.orm import Session, aliased, object_session

from app.domain.textkeys import fold, match_keys
from app.models import Actor, Event, EventActor, EventSystem, Origin, Source, System
from app.queries.editing import owning_keys
from app.queries.families import descendant_ids
from app.queries.search_document import refresh_documents, system_family
from app.queries.transfer.export_lines import store_lines
from app.schemas import ActorType, OptionalCountry, check_designation
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


def _other_aliases(values: list[str], name: str) -> list[str]:
    """The aliases, de-duplicated, without those that are the name itself."""
    return [a for a in _aliases(values) if fold(a) != fold(name)]


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ActorEdit(_Edit):
    """What an analyst may change on an actor."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    aliases: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    type: ActorType = "person"
    country: OptionalCountry = None
    title: Annotated[str, Field(max_length=500)] | None = None

    @field_validator("title")
    @classmethod
    def _empty(cls, v: str | None) -> str | None:
        return v or None

    @model_validator(mode="after")
    def _clean(self) -> ActorEdit:
        self.name = " ".join(self.name.split())
        self.aliases = _other_aliases(self.aliases, self.name)
        return self


class SystemEdit(_Edit):
    """What an analyst may change on a catalogued system."""

    designation: Annotated[str, Field(min_length=1, max_length=200)]
    aliases: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    category: Annotated[str, Field(max_length=500)] | None = None
    origin: OptionalCountry = None
    # The family it is a variant of, by designation or alias; None or "" clears it.
    parent: Annotated[str, Field(max_length=200)] | None = None

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
        self.aliases = _other_aliases(self.aliases, self.designation)
        return self


class OriginEdit(_Edit):
    """What an analyst may change on an origin: its name and the other spellings that are it."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    aliases: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _clean(self) -> OriginEdit:
        self.name = " ".join(self.name.split())
        self.aliases = _other_aliases(self.aliases, self.name)
        return self


@dataclass(frozen=True)
class ReferenceKind:
    """What differs between kinds of named reference entry; the methods are hooks a kind may extend."""

    noun: str  # "actor": the audit entity type and the word in messages
    plural: str
    model: Any
    link: Any  # the event link table
    link_column: str  # its column naming the entry
    name_field: str  # the entry's (and the edit's) name attribute
    # Edit field -> model attribute, in the order of the audit snapshot, after the name and aliases.
    fields: tuple[tuple[str, str], ...]
    # Attributes a merge takes from the dropped entry where the kept one has none.
    fills: tuple[str, ...]
    # Link columns besides the event that make two links the same (a merge keeps one of them).
    same_link: tuple[str, ...]
    edit: type[_Edit]
    # The events' export lines show the aliases too (an origin's decide whether a source is a relay).
    lines_show_aliases: bool = False

    def name(self, entry: Any) -> str:
        """The entry's name (an actor's name, a system's designation)."""
        return str(getattr(entry, self.name_field))

    def column(self) -> Any:
        """The link table's column naming the entry."""
        return getattr(self.link, self.link_column)

    def snapshot(self, entry: Any) -> dict[str, Any]:
        """The entry's editable fields, for the audit diff and the edit form."""
        out: dict[str, Any] = {self.name_field: self.name(entry), "aliases": list(entry.aliases)}
        out.update({field: getattr(entry, attr) for field, attr in self.fields})
        return out

    def family(self, session: Session, ids: list[int]) -> list[int]:
        """The entries whose events' search documents hold these entries' names."""
        return ids

    def resolve(self, session: Session, entry: Any, data: Any) -> dict[str, Any]:
        """Attributes an edit sets beyond `fields` that the events' documents show (checked, locked)."""
        return {}

    def before_links_move(self, session: Session, keep: Any, drop: Any) -> None:
        """A merge's step before drop's links move to keep."""

    def move_links(self, session: Session, keep: Any, drop: Any) -> None:
        """Drop's links become keep's (one link per event and `same_link` columns)."""
        _move_links(session, self, keep.id, drop.id)

    def before_drop(self, session: Session, keep: Any, drop: Any, who: Who | None, reason: str) -> None:
        """A merge's step before drop is deleted."""


# Parent changes and merges take this transaction lock before their cycle check: two edits checked at
# once (A under B, B under A) would each see no cycle and together make one.
FAMILY_LOCK = 0x5F4D_11E5


def _lock_families(session: Session) -> None:
    session.execute(select(func.pg_advisory_xact_lock(FAMILY_LOCK)))


def parent_designation(system: System) -> str | None:
    """The designation of the family the system is a variant of, or None."""
    session = object_session(system)
    parent = session.get(System, system.parent_id) if session is not None and system.parent_id else None
    return parent.designation if parent is not None else None


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


@dataclass(frozen=True)
class SystemKind(ReferenceKind):
    """Systems: a reference kind with a family tree (a parent) and quantities on their links."""

    def snapshot(self, entry: Any) -> dict[str, Any]:
        """A system's editable fields (the parent by designation)."""
        return {**super().snapshot(entry), "parent": parent_designation(entry)}

    def family(self, session: Session, ids: list[int]) -> list[int]:
        """The systems and their variants: the documents of events naming a variant hold its ancestors."""
        return system_family(session, ids)

    def resolve(self, session: Session, entry: Any, data: Any) -> dict[str, Any]:
        """The parent named, checked against loops under the family lock."""
        return {"parent_id": _parent_for(session, entry, data.parent)}

    def before_links_move(self, session: Session, keep: Any, drop: Any) -> None:
        """Where an event names both, keep's row takes drop's quantity and note when it has none."""
        dropped = aliased(EventSystem)
        session.execute(
            update(EventSystem)
            .where(
                EventSystem.system_id == keep.id,
                dropped.event_id == EventSystem.event_id,
                dropped.system_id == drop.id,
            )
            .values(
                quantity=func.coalesce(EventSystem.quantity, dropped.quantity),
                quantity_note=func.coalesce(EventSystem.quantity_note, dropped.quantity_note),
            )
            .execution_options(synchronize_session=False)
        )

    def before_drop(self, session: Session, keep: Any, drop: Any, who: Who | None, reason: str) -> None:
        """Drop's variants become keep's; keep takes drop's place in the tree when it was below drop."""
        _lock_families(session)
        if keep.id in descendant_ids(session, drop.id):
            keep.parent_id = drop.parent_id  # else keep would end up under its own former ancestor
        elif keep.parent_id is None and drop.parent_id not in {keep.id, *descendant_ids(session, keep.id)}:
            keep.parent_id = drop.parent_id  # like category and origin: keep's own wins, drop's fills a gap
        session.flush()
        moved = list(
            session.scalars(select(System.id).where(System.parent_id == drop.id, System.id != keep.id))
        )
        session.execute(
            update(System)
            .where(System.id.in_(moved))
            .values(parent_id=keep.id)
            .execution_options(synchronize_session=False)
        )
        change = {"parent": {"before": drop.designation, "after": keep.designation}}
        for child_id in moved:
            record(session, who, "merge", "system", child_id, change, reason)


# Recount independent origins of some events from their sources (the count the write path keeps).
_RECOUNT = text(
    "UPDATE events e SET origin_count = (SELECT count(DISTINCT s.origin_id) FROM sources s"
    " WHERE s.event_id = e.id) WHERE e.id = ANY(:ids)"
)


def recount_origins(session: Session, event_ids: list[int]) -> None:
    """Set events.origin_count from the sources of these events (after their origins were merged)."""
    if event_ids:
        session.flush()
        session.execute(_RECOUNT, {"ids": event_ids})


@dataclass(frozen=True)
class OriginKind(ReferenceKind):
    """Origins: each source names one, so a merge moves every source and recounts its event's origins."""

    def move_links(self, session: Session, keep: Any, drop: Any) -> None:
        """Every source of drop now names keep (two sources of one event may share an origin)."""
        event_ids = list(
            session.scalars(select(Source.event_id).where(Source.origin_id == drop.id).distinct())
        )
        session.execute(
            update(Source)
            .where(Source.origin_id == drop.id)
            .values(origin_id=keep.id)
            .execution_options(synchronize_session=False)
        )
        # Two origins that were one all along: an event citing both now rests on one fewer.
        recount_origins(session, event_ids)
        for obj in list(session.identity_map.values()):
            if isinstance(obj, Source | Event):  # loaded before the UPDATE went around the ORM
                session.expire(obj)


ACTORS = ReferenceKind(
    noun="actor",
    plural="actors",
    model=Actor,
    link=EventActor,
    link_column="actor_id",
    name_field="name",
    fields=(("type", "type"), ("country", "country_code"), ("title", "title")),
    fills=("country_code", "title"),
    same_link=("role",),
    edit=ActorEdit,
)
SYSTEMS = SystemKind(
    noun="system",
    plural="systems",
    model=System,
    link=EventSystem,
    link_column="system_id",
    name_field="designation",
    fields=(("category", "category"), ("origin", "origin_code")),
    fills=("category", "origin_code"),
    same_link=(),
    edit=SystemEdit,
)
ORIGINS = OriginKind(
    noun="origin",
    plural="origins",
    model=Origin,
    link=Source,
    link_column="origin_id",
    name_field="name",
    fields=(),
    fills=(),
    same_link=(),
    edit=OriginEdit,
    lines_show_aliases=True,
)
REFERENCE_KINDS: dict[str, ReferenceKind] = {kind.noun: kind for kind in (ACTORS, SYSTEMS, ORIGINS)}


def _owner_message(
    kind: ReferenceKind, keys: list[str], owners: list[Any], typed: list[str]
) -> ReferenceConflict:
    owner = owners[0]
    clash = next((k for k in keys if k in owner.match_keys), keys[0])
    field = kind.name_field if clash == keys[0] else "aliases"
    shown = next((t for t in typed if fold(t) == clash), clash)  # as typed, not the folded match key
    return ReferenceConflict(
        field,
        f"“{shown}” already names the {kind.noun} “{kind.name(owner)}” (#{owner.id}); "
        f"merge the two {kind.plural} instead of giving them the same name.",
    )


def update_entry(session: Session, kind: ReferenceKind, entry_id: int, data: Any, who: Who | None) -> Any:
    """Apply an edit to an entry and write one audit row (none when nothing changed)."""
    entry = session.get(kind.model, entry_id, with_for_update=True)
    if entry is None:
        raise LookupError(entry_id)
    name = getattr(data, kind.name_field)
    keys = match_keys(name, data.aliases)
    owners = owning_keys(session, kind.model, keys, entry.id)
    if owners:
        raise _owner_message(kind, keys, owners, [name, *data.aliases])
    before = kind.snapshot(entry)
    renamed = name != kind.name(entry)
    extra = kind.resolve(session, entry, data)
    linking: list[int] = []
    names_changed = renamed or list(data.aliases) != entry.aliases or keys != entry.match_keys
    if names_changed or any(getattr(entry, attr) != value for attr, value in extra.items()):
        # Their search documents hold the names and aliases (a system's: its ancestors' too).
        linking = _lock_events_linking(session, kind, kind.family(session, [entry.id]))
    setattr(entry, kind.name_field, name)
    entry.aliases, entry.match_keys = list(data.aliases), keys
    for field, attr in kind.fields:
        setattr(entry, attr, getattr(data, field))
    for attr, value in extra.items():
        setattr(entry, attr, value)
    changes = diff(before, kind.snapshot(entry))
    if changes:
        record(session, who, "update", kind.noun, entry.id, changes)
    session.flush()
    refresh_documents(session, linking)
    # Their lines show the new name (an origin's aliases too: they tell a relay from the origin itself).
    store_lines(session, linking if renamed or (kind.lines_show_aliases and names_changed) else [])
    return entry


def update_actor(session: Session, actor_id: int, data: ActorEdit, who: Who | None) -> Actor:
    """Apply an edit to an actor and write one audit row (none when nothing changed)."""
    return update_entry(session, ACTORS, actor_id, data, who)


def update_system(session: Session, system_id: int, data: SystemEdit, who: Who | None) -> System:
    """Apply an edit to a system and write one audit row (none when nothing changed)."""
    return update_entry(session, SYSTEMS, system_id, data, who)


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


def _lock_events_linking(session: Session, kind: ReferenceKind, ref_ids: list[int]) -> list[int]:
    """Lock the events (deleted ones too) that link any of the entries, in id order; their ids."""
    ids = select(kind.link.event_id).where(kind.column().in_(ref_ids))
    return list(
        session.scalars(
            select(Event.id).where(Event.id.in_(ids)).order_by(Event.id).with_for_update(key_share=True)
        )
    )


def _events_linking(session: Session, kind: ReferenceKind, ref_id: int) -> list[Event]:
    """Every event (deleted ones too: a restore must find its links) that links the entry."""
    ids = select(kind.link.event_id).where(kind.column() == ref_id)
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


def _move_links(session: Session, kind: ReferenceKind, keep_id: int, drop_id: int) -> None:
    """Drop's links become keep's, except where the event already has the same link to keep."""
    link, column = kind.link, kind.column()
    other = aliased(link)
    already = exists().where(
        other.event_id == link.event_id,
        getattr(other, kind.link_column) == keep_id,
        *(getattr(other, c) == getattr(link, c) for c in kind.same_link),
    )
    session.execute(
        update(link)
        .where(column == drop_id, ~already)
        .values({kind.link_column: keep_id})
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(link).where(column == drop_id).execution_options(synchronize_session=False))


def merge_entries(session: Session, kind: ReferenceKind, keep_id: int, drop_id: int, who: Who | None) -> Any:
    """Merge entry `drop` into `keep`: links move over (no duplicate rows), drop's names become aliases."""
    if keep_id == drop_id:
        raise MergeError(f"Choose two different {kind.plural}.")
    keep, drop = _lock_pair(session, kind.model, keep_id, drop_id)
    if keep is None or drop is None:
        raise LookupError(keep_id if keep is None else drop_id)
    # Keep's events too (a system's: both families'): keep takes drop's names, which their documents hold.
    linking = _lock_events_linking(session, kind, kind.family(session, [keep.id, drop.id]))
    events = _events_linking(session, kind, drop.id)
    before = {e.id: snapshot(e) for e in events}
    keep_before, drop_before = kind.snapshot(keep), kind.snapshot(drop)

    kind.before_links_move(session, keep, drop)
    kind.move_links(session, keep, drop)
    keep.aliases = _other_aliases([*keep.aliases, kind.name(drop), *drop.aliases], kind.name(keep))
    keep.match_keys = match_keys(kind.name(keep), keep.aliases)
    for attr in kind.fills:
        setattr(keep, attr, getattr(keep, attr) or getattr(drop, attr))
    reason = f"merged {kind.noun} “{drop_before[kind.name_field]}” into “{kind.name(keep)}”"
    kind.before_drop(session, keep, drop, who, reason)
    session.delete(drop)
    session.flush()
    _record_event_moves(session, events, before, who, reason)
    record(session, who, "merge", kind.noun, keep.id, diff(keep_before, kind.snapshot(keep)), reason)
    merged_into = {"merged_into": {"before": None, "after": kind.name(keep)}, **diff(drop_before, {})}
    record(session, who, "merge", kind.noun, drop_id, merged_into, reason)
    refresh_documents(session, linking)
    # Where lines show aliases (an origin's decide whether a source relays), keep's events change too.
    store_lines(session, linking if kind.lines_show_aliases else [e.id for e in events])
    return keep


def merge_actors(session: Session, keep_id: int, drop_id: int, who: Who | None) -> Actor:
    """Merge actor `drop` into `keep`: links move over (no duplicate rows), drop's names become aliases."""
    return merge_entries(session, ACTORS, keep_id, drop_id, who)


def merge_origins(session: Session, keep_id: int, drop_id: int, who: Who | None) -> Origin:
    """Merge origin `drop` into `keep`: sources move over, events recounted, drop's names become aliases."""
    return merge_entries(session, ORIGINS, keep_id, drop_id, who)


def merge_systems(session: Session, keep_id: int, drop_id: int, who: Who | None) -> System:
    """Merge system `drop` into `keep`: links move over (quantities kept), drop's names become aliases."""
    return merge_entries(session, SYSTEMS, keep_id, drop_id, who)
