"""Pydantic response (and update) models of the /api/v1 JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from app.config import get_settings
from app.domain import clock
from app.domain.countries import country_name
from app.domain.dates import format_iso
from app.domain.review import due_since
from app.domain.vocab import LINK_TYPES, REVIEWABLE, STAGES
from app.models import Event, SourceFile
from app.queries.links import LinkView
from app.schemas import EventInput, NotBool
from app.services.events import relays


class ErrorItem(BaseModel):
    """One problem with a request: where (`loc`), what (`msg`) and its kind (`type`)."""

    loc: list[str | int] = Field(examples=[["query", "country"]])
    msg: str = Field(examples=["unknown country “Atlantis”; use an ISO code such as RUS"])
    type: str = Field(examples=["value_error"])


class Problem(BaseModel):
    """An error: a sentence, or for 422 a list of problems (one per bad field or parameter)."""

    detail: str | list[ErrorItem] = Field(examples=["There is nothing at this address."])


class CountryLinkOut(BaseModel):
    """A country named by an event, in a role."""

    code: str = Field(examples=["RUS"])
    name: str = Field(examples=["Russia"])
    role: str = Field(examples=["supplier"])


class ActorLinkOut(BaseModel):
    """An actor's part in an event."""

    id: int
    name: str = Field(examples=["Sergei Ryabkov"])
    role: str = Field(examples=["speaker"])


class SystemLinkOut(BaseModel):
    """A system named by an event, with its quantity or quantity note."""

    id: int
    designation: str = Field(examples=["Kalibr"])
    quantity: int | None = Field(default=None, examples=[4])
    quantity_note: str | None = Field(default=None, examples=["as many as 14"])


class FileOut(BaseModel):
    """An evidence file kept for a source (its bytes: `download`, always sent as an attachment)."""

    id: int = Field(examples=[7])
    source: int = Field(description="the source it belongs to, numbered from 1 as on the event page")
    filename: str = Field(examples=["tass-2025-10-14.pdf"])
    content_type: str = Field(
        description="the type its content was recognised as", examples=["application/pdf"]
    )
    size: int = Field(description="bytes", examples=[183204])
    sha256: str = Field(description="SHA-256 of the bytes, lower-case hex", examples=["9f86d0…"])
    created_at: datetime
    download: str = Field(examples=["/api/v1/events/42/files/7"])
    url: str = Field(
        description="this file's metadata and DELETE address",
        examples=["/api/v1/events/42/sources/1/files/7"],
    )

    @classmethod
    def of(cls, f: SourceFile) -> FileOut:
        """Build from a stored file (its bytes are not loaded)."""
        n = f.source_position + 1
        return cls(
            id=f.id,
            source=n,
            filename=f.filename,
            content_type=f.content_type,
            size=f.size,
            sha256=f.sha256,
            created_at=f.created_at,
            download=f"/api/v1/events/{f.event_id}/files/{f.id}",
            url=f"/api/v1/events/{f.event_id}/sources/{n}/files/{f.id}",
        )


class SourceOut(BaseModel):
    """A citation with its NATO Admiralty grades."""

    publisher: str = Field(examples=["Latin Times"])
    origin: str = Field(description="who first reported it (the catalogue's name)", examples=["The Times"])
    relays: bool = Field(
        description="true when the publisher relays the origin's report, false when it is the origin"
    )
    url: str | None = None
    title: str | None = None
    published: str | None = Field(default=None, description="YYYY, YYYY-MM or YYYY-MM-DD")
    quote: str | None = None
    note: str | None = None
    reliability: str = Field(description="A (completely reliable) … F (cannot be judged)", examples=["C"])
    credibility: int = Field(description="1 (confirmed) … 6 (cannot be judged)", examples=[3])
    archive_url: str | None = Field(default=None, description="an archived copy of the page")
    accessed: str | None = Field(default=None, description="the day the analyst read it, YYYY-MM-DD")
    files: list[FileOut] = Field(default_factory=list, description="evidence files kept for this source")


class EventLinkOut(BaseModel):
    """A typed link seen from this event: outgoing ("denies #7") or incoming ("denied by #12")."""

    id: int = Field(description="the link's id (DELETE /api/v1/events/{id}/links/{link_id})")
    type: str = Field(examples=["denies"], description=", ".join(LINK_TYPES))
    direction: str = Field(examples=["out"], description="out: this event links the other; in: the reverse")
    words: str = Field(examples=["denied by"], description="how the link reads from this event")
    event_id: int = Field(description="the event at the other end", examples=[7])
    event_title: str
    event_status: str
    event: str = Field(description="the other event in the API", examples=["/api/v1/events/7"])


class EventOut(BaseModel):
    """One event with everything the event page shows."""

    id: int = Field(examples=[42])
    title: str = Field(examples=["Russia offers Kalibr missiles to Venezuela"])
    summary: str
    kind: str = Field(examples=["offer"])
    status: str = Field(examples=["reported"])
    stage: int = Field(description="support-ladder stage 0–6 (from the kind unless overridden)", examples=[2])
    stage_label: str = Field(examples=["offer/request"])
    stage_override: int | None = None
    date: str = Field(description="start at its precision: YYYY, YYYY-MM or YYYY-MM-DD", examples=["2025-10"])
    date_end: str | None = Field(default=None, description="end of a span, same formats")
    location: str | None = None
    tags: list[str]
    countries: list[CountryLinkOut]
    actors: list[ActorLinkOut]
    systems: list[SystemLinkOut]
    sources: list[SourceOut]
    origins: list[str] = Field(
        description="the independent origins over the sources", examples=[["The Times"]]
    )
    origin_count: int = Field(description="how many independent origins (relays of one origin count once)")
    likelihood: str | None = Field(
        default=None, description="ICD 203 estimative language", examples=["likely"]
    )
    likelihood_rationale: str | None = None
    confidence: str | None = Field(default=None, description="analytic confidence: low, moderate, high")
    confidence_rationale: str | None = None
    version: int = Field(description="send it back with PUT/PATCH/DELETE: the edit is refused if it moved")
    created_at: datetime
    updated_at: datetime
    url: str = Field(description="this event in the API", examples=["/api/v1/events/42"])
    page: str = Field(description="this event's web page", examples=["/events/42"])
    review_clock_at: datetime = Field(
        description="when the review clock last started: creation, a review, or a status change"
    )
    due_for_review: bool = Field(description="claimed or reported, and not reviewed for the configured days")
    links: list[EventLinkOut] = Field(default_factory=list, description="links both ways, to live events")

    @classmethod
    def of(cls, event: Event, links: list[LinkView] | None = None) -> EventOut:
        """Build from an event loaded with services.events.event_options()."""
        return cls(
            id=event.id,
            title=event.title,
            summary=event.summary,
            kind=event.kind,
            status=event.status,
            stage=event.stage,
            stage_label=STAGES.get(event.stage, "?"),
            stage_override=event.stage_override,
            date=format_iso(event.date_start, event.date_precision),
            date_end=format_iso(event.date_end, event.date_end_precision) or None,
            location=event.location,
            tags=list(event.tags),
            countries=[
                CountryLinkOut(code=c.country_code, name=country_name(c.country_code), role=c.role)
                for c in event.countries
            ],
            actors=[ActorLinkOut(id=a.actor_id, name=a.actor.name, role=a.role) for a in event.actors],
            systems=[
                SystemLinkOut(
                    id=s.system_id,
                    designation=s.system.designation,
                    quantity=s.quantity,
                    quantity_note=s.quantity_note,
                )
                for s in event.systems
            ],
            sources=[
                SourceOut(
                    publisher=s.publisher,
                    origin=s.origin.name,
                    relays=relays(s.publisher, s.origin),
                    url=s.url,
                    title=s.title,
                    published=format_iso(s.published_on, s.published_precision) or None,
                    quote=s.quote,
                    note=s.note,
                    reliability=s.reliability,
                    credibility=s.credibility,
                    archive_url=s.archive_url,
                    accessed=s.accessed_on.isoformat() if s.accessed_on else None,
                    files=[FileOut.of(f) for f in event.files if f.source_position == i],
                )
                for i, s in enumerate(event.sources)
            ],
            origins=list(dict.fromkeys(s.origin.name for s in event.sources)),
            origin_count=event.origin_count,
            likelihood=event.likelihood,
            likelihood_rationale=event.likelihood_rationale,
            confidence=event.confidence,
            confidence_rationale=event.confidence_rationale,
            version=event.version,
            created_at=event.created_at,
            updated_at=event.updated_at,
            url=f"/api/v1/events/{event.id}",
            page=f"/events/{event.id}",
            review_clock_at=event.review_clock_at,
            due_for_review=event.status in REVIEWABLE
            and due_since(event.review_clock_at, event.kind, get_settings().review_days()) <= clock.utcnow(),
            links=[
                EventLinkOut(
                    id=link.id,
                    type=link.type,
                    direction="in" if link.incoming else "out",
                    words=link.words,
                    event_id=link.other_id,
                    event_title=link.other_title,
                    event_status=link.other_status,
                    event=f"/api/v1/events/{link.other_id}",
                )
                for link in links or []
            ],
        )


class LinkIn(BaseModel):
    """A new link from this event to another."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(examples=["denies"], description=", ".join(LINK_TYPES))
    target_id: int = Field(ge=1, le=2**31 - 1, examples=[7], description="the event linked to")
    set_status: bool = Field(
        default=False,
        description="for denies/retracts: also set the target's status to denied/retracted (an edit)",
    )


class ReviewIn(BaseModel):
    """ "Reviewed, still unconfirmed": the note goes into the history; the review clock restarts."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000, examples=["No independent report yet; TASS only."])


class EventPage(BaseModel):
    """A page of events in timeline order; follow `next` for the following page."""

    items: list[EventOut]
    next: str | None = Field(
        description="URL of the next page (same filters), null on the last page",
        examples=["/api/v1/events?supplier=RUS&limit=50&cursor=MjAyNS0xMC0xNHw0Mg"],
    )
    next_cursor: str | None = Field(description="the cursor inside `next`")


class EventUpdate(EventInput):
    """A whole event (PUT) plus the version it was read at."""

    version: Annotated[int, NotBool] = Field(
        ge=1, description="the `version` you read; 409 if the event changed since"
    )


def _optional_event_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, info in EventInput.model_fields.items():
        if name == "client_token":
            continue
        # EventInput's own type: a field that cannot be null there cannot be sent as null here either
        # (leave it out to keep its value); unset fields are never validated, so None is only a marker.
        fields[name] = (
            info.annotation,
            FieldInfo.merge_field_infos(info, default=None, default_factory=None),
        )
    return fields


# PATCH: any subset of EventInput's fields; the merged event is validated as a whole, like the form.
EventPatch = create_model(
    "EventPatch",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Some fields of an event plus the version it was read at; unset fields keep their value.",
    version=(
        Annotated[int, NotBool],
        Field(ge=1, description="the `version` you read; 409 if the event changed since"),
    ),
    **_optional_event_fields(),
)


class VersionConflictOut(BaseModel):
    """409: someone else saved the event first; re-apply your change to `current` and send its version."""

    detail: str = Field(examples=["The event changed since you read it (now at version 3)."])
    current_version: int = Field(examples=[3])
    current: EventOut


class ActorOut(BaseModel):
    """An actor with how many visible events name it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str = Field(examples=["Sergei Ryabkov"])
    aliases: list[str] = Field(examples=[["Sergey Ryabkov"]])
    type: str = Field(examples=["person"])
    country: str | None = Field(default=None, examples=["RUS"])
    title: str | None = Field(default=None, examples=["Deputy Foreign Minister"])
    event_count: int
    events: str = Field(
        description="API list of its events", examples=["/api/v1/events?actor=Sergei+Ryabkov"]
    )


class SystemOut(BaseModel):
    """A catalogued system with how many visible events name it."""

    id: int
    designation: str = Field(examples=["Oreshnik"])
    aliases: list[str]
    category: str | None = Field(default=None, examples=["ballistic missile"])
    origin: str | None = Field(default=None, examples=["RUS"])
    parent: str | None = Field(
        default=None, description="the family it is a variant of (designation)", examples=["Shahed-136"]
    )
    event_count: int
    events: str = Field(examples=["/api/v1/events?system=Oreshnik"])


class SystemPatch(BaseModel):
    """The fields of a system to change; the others stay. `parent` names its family (null clears it)."""

    model_config = ConfigDict(extra="forbid")

    designation: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    aliases: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)] | None = None
    category: Annotated[str, Field(max_length=500)] | None = None
    origin: Annotated[str, Field(max_length=100)] | None = None
    parent: Annotated[str, Field(max_length=200)] | None = Field(
        default=None,
        description='designation or alias of the family; null or "" for none',
        examples=["Shahed-136"],
    )


class CountryOut(BaseModel):
    """An ISO 3166-1 country with how many visible events name it (any role)."""

    code: str = Field(examples=["VEN"])
    alpha2: str = Field(examples=["VE"])
    name: str = Field(examples=["Venezuela"])
    event_count: int
    events: str = Field(examples=["/api/v1/events?country=VEN"])


class OriginOut(BaseModel):
    """An origin (who first reported what sources carry) with how many visible events cite it."""

    id: int
    name: str = Field(examples=["The Times"])
    aliases: list[str] = Field(examples=[["Times (London)"]])
    event_count: int


class OriginPage(BaseModel):
    """Origins, the most cited first; follow `next` for more."""

    items: list[OriginOut]
    next: str | None


class ActorPage(BaseModel):
    """Actors by name; follow `next` for more."""

    items: list[ActorOut]
    next: str | None


class SystemPage(BaseModel):
    """Systems by designation; follow `next` for more."""

    items: list[SystemOut]
    next: str | None


class CountryPage(BaseModel):
    """Countries by name; follow `next` for more."""

    items: list[CountryOut]
    next: str | None
