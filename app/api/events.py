"""/api/v1/events: list with the timeline's filters and cursor paging, detail, create, update, delete."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import ValidationError
from pydantic.json_schema import JsonDict

from app.api.schemas import (
    EventOut,
    EventPage,
    EventPatch,
    EventUpdate,
    LinkIn,
    Problem,
    ReviewIn,
    VersionConflictOut,
)
from app.auth.deps import AnalystDep, ViewerDep
from app.db import SessionDep
from app.domain.textkeys import fold
from app.domain.vocab import CONFIDENCES, KINDS, LIKELIHOODS, STATUSES
from app.filters import MAX_LENGTH, MAX_VALUES, FilterError, InvalidFilter, strict_filter
from app.queries.api import event_id_for_client_token
from app.queries.events import Cursor, event_or_none, events_page
from app.queries.links import links_by_event, links_of
from app.queries.new_names import LINK_FIELDS, near_names
from app.schemas import DATE_PATTERN, EventInput
from app.services.events import (
    EventNotFound,
    VersionConflict,
    create_event,
    delete_event,
    event_input,
    load_event,
    update_event,
)
from app.services.evidence import AmbiguousSources
from app.services.links import LinkRefused, add_link, remove_link
from app.services.review import ReviewRefused, mark_reviewed

bearer = HTTPBearer(
    auto_error=False,
    description="A personal API token: `Authorization: Bearer <token>` (a browser session works too).",
)
MAX_ID = 2**31 - 1  # ids are PostgreSQL integers; a larger one names nothing
EventId = Annotated[int, Path(ge=1, le=MAX_ID, description="the event's id")]
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
# What any operation may answer besides its own statuses; every error body is a Problem.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The address holds a NUL character."},
    401: {"model": Problem, "description": "No valid session or API token."},
    403: {"model": Problem, "description": "Your role does not allow this (or a browser call lacks CSRF)."},
    413: {"model": Problem, "description": "The request body is larger than the server accepts."},
    422: {"model": Problem, "description": "Invalid input: `detail` lists each bad field or parameter."},
    503: {
        "model": Problem,
        "description": "The database is unavailable or the server is busy; nothing was saved.",
        "headers": RETRY_AFTER,
    },
}
router = APIRouter(tags=["events"], dependencies=[Security(bearer)], responses=COMMON_ERRORS)

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid session or API token."},
    403: {"model": Problem, "description": "Your role does not allow this (or a browser call lacks CSRF)."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No visible event has this id (never existed, or deleted)."}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "Invalid input: `detail` lists each bad field or parameter."}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": VersionConflictOut, "description": "The event changed since you read it."}
}
LIST_EXTRA = {"cursor", "limit"}
DATES = "YYYY, YYYY-MM or YYYY-MM-DD"
# Stated in the schema; the filter module checks the values (one message for the API, pages and export).
DATE_FORMAT: JsonDict = {"pattern": "^$|" + DATE_PATTERN}


def _choice(values: str) -> JsonDict:
    """A single-character query parameter's allowed values (empty: no filter)."""
    return {"enum": ["", *values]}


def _many(values: tuple[str, ...] = ()) -> JsonDict:
    """A repeatable query parameter as the filter reads it: one value or several (`?tag=a&tag=b`), each
    at most MAX_LENGTH characters, at most MAX_VALUES of them, from `values` when given (empty: no filter).

    A single value is a string on the wire, so the schema says so, rather than FastAPI's array-or-null.
    """
    item: JsonDict = (
        {"type": "string", "enum": ["", *values]} if values else {"type": "string", "maxLength": MAX_LENGTH}
    )
    return {"anyOf": [item, {"type": "array", "items": item, "maxItems": MAX_VALUES}]}


# Naming an actor or system that is not in the catalogue but close to one ("Zelenskyy") is refused
# unless the client confirms that the new entry is meant: a second "Zelensky" is worse than a retry.
NEAR_NAME: dict[int | str, dict[str, Any]] = {
    422: {
        "model": Problem,
        "description": "Invalid input: `detail` lists each bad field or parameter. An actor or system "
        "not in the catalogue but close to a known one is refused with type `near_name` (the message "
        "names the field, the typed name and the known names, also given as `input` and `suggestions`); "
        "send a known name, or "
        "`create_new_names=true` to create it.",
    }
}
CreateNewNames = Annotated[
    bool,
    Query(
        description="create actors and systems that are not in the catalogue even when a known name is "
        "close (otherwise 422 `near_name`, with the suggestions)"
    ),
]


def _near_name_errors(db: SessionDep, data: EventInput) -> JSONResponse | None:
    """422 naming each new actor or system that is close to a catalogue entry, or None."""
    errors = []
    for kind, (group, field) in LINK_FIELDS.items():
        links = getattr(data, group)
        near = {fold(n.typed): n for n in near_names(db, kind, [getattr(link, field) for link in links])}
        for i, link in enumerate(links):
            hit = near.get(fold(getattr(link, field)))
            if hit is not None:
                errors.append(
                    {
                        "loc": ["body", group, i, field],
                        "msg": f"{hit.sentence()} Send that name, or create_new_names=true to create "
                        f"“{hit.typed}” as a new {kind}.",
                        "type": "near_name",
                        "input": hit.typed,
                        "suggestions": list(hit.suggestions),
                    }
                )
    return JSONResponse({"detail": errors}, status_code=422) if errors else None


CREATE_EXAMPLE = {
    "title": "Russia offers Kalibr missiles to Venezuela",
    "kind": "offer",
    "status": "reported",
    "date": "2025-10-14",
    "summary": "An offer reported by two outlets.",
    "countries": [{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}],
    "actors": [{"name": "Sergei Ryabkov", "role": "speaker"}],
    "systems": [{"designation": "Kalibr", "quantity": 4}],
    "sources": [
        {"publisher": "TASS", "url": "https://tass.com/a", "reliability": "C", "credibility": 3},
    ],
    "tags": ["caribbean"],
    "client_token": "4f6c9a52-8d0e-4c71-9a8b-2f9e3f1d7b10",
}


# Files on sources follow their source through a PUT or PATCH that changes the sources (stated in both).
FILES_FOLLOW = (
    "\n\nEvidence files follow their source when `sources` change: each stored source is matched to the "
    "new source with the same identity, its `url` when it has one, else its `publisher`, `title` and "
    "`published` (case and accents aside). So reordering keeps each file on its source, and a file whose "
    'source is gone is removed (in the history: "its source was removed"). When a stored source keeping '
    "files matches two new sources (or two stored ones match one), nothing is saved: 422 `ambiguous_source` "
    "naming the sources."
)
AMBIGUOUS: dict[int | str, dict[str, Any]] = {
    422: {
        "model": Problem,
        "description": NEAR_NAME[422]["description"] + " Two sources with the identity of a stored source "
        "that keeps files are refused with type `ambiguous_source`.",
    }
}


def _ambiguous(exc: AmbiguousSources) -> JSONResponse:
    item = {"loc": ["body", "sources", exc.position], "msg": exc.message, "type": "ambiguous_source"}
    return JSONResponse({"detail": [item]}, status_code=422)


def _filter_errors(errors: list[FilterError]) -> JSONResponse:
    return JSONResponse({"detail": InvalidFilter(errors).detail()}, status_code=422)


def deleted_message(event_id: int) -> str:
    """Why a retried create answers 409: its event was deleted, and where an admin restores it."""
    return (
        f"This client_token created event {event_id}, which has since been deleted. An admin can restore it "
        f"on /admin/deleted (POST /admin/events/{event_id}/restore); to create a new event instead, send a "
        "new client_token."
    )


def _load(db: SessionDep, event_id: int) -> Any:
    event = event_or_none(db, event_id)
    if event is None:
        raise HTTPException(404, f"No event {event_id}. It may have been deleted.")
    return event


def _conflict(exc: VersionConflict) -> JSONResponse:
    current = exc.current
    body = VersionConflictOut(
        detail=f"The event changed since you read it (now at version {current.version}).",
        current_version=current.version,
        current=EventOut.of(current),
    )
    return JSONResponse(jsonable_encoder(body), status_code=409)


def _body_errors(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors(include_url=False)]
    )


@router.get(
    "/events",
    response_model=EventPage,
    summary="List events (the timeline's filters)",
    responses={
        **AUTH_ERRORS,
        422: {
            "model": Problem,
            "description": "A parameter is unknown, malformed, or names nothing known (an actor, system or "
            "country not in the catalogue): each item of `detail` names the parameter (`loc`) and the value.",
        },
    },
)
def list_events(
    request: Request,
    db: SessionDep,
    principal: ViewerDep,
    q: Annotated[str | None, Query(description="full text over title, summary and quotes")] = None,
    country: Annotated[
        list[str] | None, Query(description="ISO code or name, any role", json_schema_extra=_many())
    ] = None,
    supplier: Annotated[list[str] | None, Query(examples=["RUS"], json_schema_extra=_many())] = None,
    recipient: Annotated[list[str] | None, Query(examples=["VEN"], json_schema_extra=_many())] = None,
    target: Annotated[list[str] | None, Query(json_schema_extra=_many())] = None,
    actor: Annotated[list[str] | None, Query(description="name or alias", json_schema_extra=_many())] = None,
    system: Annotated[
        list[str] | None,
        Query(
            description="designation or alias; its variants too (Geran-2 for Shahed-136)",
            json_schema_extra=_many(),
        ),
    ] = None,
    system_exact: Annotated[
        str | None,
        Query(description="1: only the systems named, not their variants", json_schema_extra=_choice("01")),
    ] = None,
    kind: Annotated[list[str] | None, Query(examples=["statement"], json_schema_extra=_many(KINDS))] = None,
    status: Annotated[list[str] | None, Query(json_schema_extra=_many(STATUSES))] = None,
    stage_min: Annotated[str | None, Query(description="0–6", json_schema_extra=_choice("0123456"))] = None,
    date_from: Annotated[
        str | None, Query(alias="from", description=DATES, json_schema_extra=DATE_FORMAT)
    ] = None,
    date_to: Annotated[
        str | None, Query(alias="to", description=DATES, json_schema_extra=DATE_FORMAT)
    ] = None,
    source: Annotated[list[str] | None, Query(description="publisher", json_schema_extra=_many())] = None,
    reliability_max: Annotated[
        str | None,
        Query(description="worst source grade allowed", json_schema_extra=_choice("ABCDEFabcdef")),
    ] = None,
    tag: Annotated[list[str] | None, Query(json_schema_extra=_many())] = None,
    due: Annotated[
        str | None,
        Query(
            description="1: only events due for review (claimed or reported, not reviewed for N days)",
            json_schema_extra=_choice("01"),
        ),
    ] = None,
    origins_min: Annotated[
        str | None,
        Query(
            description="at least this many independent origins (2: corroborated)",
            json_schema_extra={"pattern": "^$|^[0-9]{1,3}$"},
        ),
    ] = None,
    origins_max: Annotated[
        str | None,
        Query(
            description="at most this many; with origins_min=1, origins_max=1: rests on a single origin",
            json_schema_extra={"pattern": "^$|^[0-9]{1,3}$"},
        ),
    ] = None,
    likelihood: Annotated[
        list[str] | None,
        Query(description="ICD 203 estimative words", json_schema_extra=_many(LIKELIHOODS)),
    ] = None,
    confidence: Annotated[
        list[str] | None,
        Query(description="analytic confidence", json_schema_extra=_many(CONFIDENCES)),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            description="from a previous page's `next_cursor`",
            json_schema_extra={"pattern": "^[A-Za-z0-9_=-]*$"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Events newest first, exactly as the timeline shows them for the same query string.

    Repeating a parameter means OR; different parameters AND together. Unknown parameters are refused.
    """
    errors: list[FilterError] = []
    try:
        f = strict_filter(db, request.query_params, LIST_EXTRA)
    except InvalidFilter as exc:
        errors = exc.errors
    position = None
    if cursor:
        try:
            position = Cursor.decode(cursor)
        except ValueError as exc:
            errors.append(FilterError("cursor", str(exc)))
    if errors:
        return _filter_errors(errors)
    page = events_page(db, f, position, limit)
    next_url = None
    if page.next_cursor:
        next_url = "/api/v1/events?" + urlencode(
            [*f.pairs(), ("limit", str(limit)), ("cursor", page.next_cursor)]
        )
    links = links_by_event(db, [e.id for e in page.events])
    items = [EventOut.of(e, links.get(e.id)) for e in page.events]
    return EventPage(items=items, next=next_url, next_cursor=page.next_cursor)


@router.get(
    "/events/{event_id}",
    response_model=EventOut,
    summary="One event",
    responses={**AUTH_ERRORS, **NOT_FOUND},
)
def get_event(event_id: EventId, db: SessionDep, principal: ViewerDep) -> Any:
    """Every field of one visible event, with its countries, actors, systems and sources."""
    return EventOut.of(_load(db, event_id), links_of(db, event_id))


@router.post(
    "/events",
    response_model=EventOut,
    status_code=201,
    summary="Create an event",
    responses={
        200: {"model": EventOut, "description": "The `client_token` was used before: the event it created."},
        201: {"description": "Created; `Location` names the new event."},
        409: {"model": Problem, "description": "The `client_token`'s event was deleted since."},
        **AUTH_ERRORS,
        **INVALID,
        **NEAR_NAME,
    },
)
def create(
    data: Annotated[
        EventInput, Body(openapi_examples={"offer": {"summary": "An offer", "value": CREATE_EXAMPLE}})
    ],
    db: SessionDep,
    principal: AnalystDep,
    create_new_names: CreateNewNames = False,
) -> Any:
    """Validated exactly like the web form; unknown actors and systems are created.

    An unknown name close to a known one is refused (422 `near_name`) unless `create_new_names=true`.
    Send a fresh `client_token` (UUID) to make retries safe: the same token gives back the same event
    (409 if that event was deleted since).
    """
    if data.client_token is not None:
        existing = event_id_for_client_token(db, data.client_token)
        if existing is not None:
            event = load_event(db, existing, include_deleted=True)
            if event.deleted_at is not None:
                # Its id would only 404: say what happened and how to get it back instead.
                return JSONResponse({"detail": deleted_message(existing)}, status_code=409)
            return JSONResponse(jsonable_encoder(EventOut.of(event)))
    if not create_new_names and (refused := _near_name_errors(db, data)) is not None:
        return refused
    event = create_event(db, data, principal.user)
    db.commit()
    event = load_event(db, event.id)
    return JSONResponse(
        jsonable_encoder(EventOut.of(event)),
        status_code=201,
        headers={"Location": f"/api/v1/events/{event.id}"},
    )


@router.put(
    "/events/{event_id}",
    response_model=EventOut,
    summary="Replace an event",
    description="Set every field (unset ones take their defaults); refused with 409 if `version` is not "
    "current." + FILES_FOLLOW,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT, **INVALID, **AMBIGUOUS},
)
def replace(
    event_id: EventId,
    data: EventUpdate,
    db: SessionDep,
    principal: AnalystDep,
    reason: Annotated[str | None, Query(max_length=500, description="recorded in the history")] = None,
    create_new_names: CreateNewNames = False,
) -> Any:
    """Set every field (unset ones take their defaults); refused with 409 if `version` is not current."""
    if not create_new_names:
        _load(db, event_id)  # a missing event is a 404 before any question about its names
        if (refused := _near_name_errors(db, data)) is not None:
            return refused
    try:
        event = update_event(db, event_id, data, principal.user, data.version, reason)
    except EventNotFound:
        raise HTTPException(404, f"No event {event_id}. It may have been deleted.") from None
    except VersionConflict as exc:
        response = _conflict(exc)
        db.rollback()
        return response
    except AmbiguousSources as exc:
        db.rollback()
        return _ambiguous(exc)
    db.commit()
    return EventOut.of(load_event(db, event.id), links_of(db, event.id))


@router.patch(
    "/events/{event_id}",
    response_model=EventOut,
    summary="Change some fields of an event",
    description="Send only the fields to change plus `version`; lists (countries, sources…) are replaced "
    "whole." + FILES_FOLLOW,
    responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT, **INVALID, **AMBIGUOUS},
)
def patch(
    event_id: EventId,
    changes: EventPatch,
    db: SessionDep,
    principal: AnalystDep,
    reason: Annotated[str | None, Query(max_length=500, description="recorded in the history")] = None,
    create_new_names: CreateNewNames = False,
) -> Any:
    """Send only the fields to change plus `version`; lists (countries, sources…) are replaced whole."""
    try:
        current = load_event(db, event_id)
    except EventNotFound:
        raise HTTPException(404, f"No event {event_id}. It may have been deleted.") from None
    merged = event_input(current).model_dump(mode="json", exclude={"client_token"})
    merged.update(changes.model_dump(mode="json", exclude_unset=True, exclude={"version"}))
    try:
        data = EventInput.model_validate(merged)
    except ValidationError as exc:
        raise _body_errors(exc) from None
    if not create_new_names and (refused := _near_name_errors(db, data)) is not None:
        return refused
    try:
        event = update_event(db, event_id, data, principal.user, changes.model_dump()["version"], reason)
    except EventNotFound:
        raise HTTPException(404, f"No event {event_id}. It may have been deleted.") from None
    except VersionConflict as exc:
        response = _conflict(exc)
        db.rollback()
        return response
    except AmbiguousSources as exc:
        db.rollback()
        return _ambiguous(exc)
    db.commit()
    return EventOut.of(load_event(db, event.id), links_of(db, event.id))


@router.delete(
    "/events/{event_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an event (an admin can restore it)",
    responses={204: {"description": "Deleted."}, **AUTH_ERRORS, **NOT_FOUND, **CONFLICT, **INVALID},
)
def remove(
    event_id: EventId,
    db: SessionDep,
    principal: AnalystDep,
    version: Annotated[int | None, Query(ge=1, description="refuse with 409 unless this is current")] = None,
    reason: Annotated[str | None, Query(max_length=500, description="recorded in the history")] = None,
) -> Response:
    """Soft delete: the event leaves every list, export and API answer; the history keeps it."""
    try:
        current = load_event(db, event_id, lock=True)
    except EventNotFound:
        raise HTTPException(404, f"No event {event_id}. It may have been deleted.") from None
    if version is not None and current.version != version:
        response = _conflict(VersionConflict(current))
        db.rollback()
        return response
    delete_event(db, event_id, principal.user, reason)
    db.commit()
    return Response(status_code=204)


def _refused(param: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": ["body", param], "msg": message, "type": "value_error"}]}, 422)


@router.post(
    "/events/{event_id}/links",
    response_model=EventOut,
    status_code=201,
    summary="Link this event to another (confirms, denies, retracts, fulfils, follows_up, same_as)",
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
)
def add_event_link(event_id: EventId, body: LinkIn, db: SessionDep, principal: AnalystDep) -> Any:
    """Add a typed link; a link to itself, to a deleted or unknown event, or a duplicate is refused (422).

    With `set_status`, a `denies` or `retracts` link also sets the target's status (an audited edit).
    Answers this event with its links.
    """
    _load(db, event_id)
    try:
        add_link(db, event_id, body.target_id, body.type, principal.user, set_status=body.set_status)
    except LinkRefused as exc:
        db.rollback()
        return _refused("type" if exc.field == "type" else "target_id", str(exc))
    db.commit()
    return EventOut.of(load_event(db, event_id), links_of(db, event_id))


@router.delete(
    "/events/{event_id}/links/{link_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a link (from either of its events)",
    responses={204: {"description": "Removed."}, **AUTH_ERRORS, **NOT_FOUND},
)
def remove_event_link(
    event_id: EventId, link_id: Annotated[int, Path(ge=1, le=MAX_ID)], db: SessionDep, principal: AnalystDep
) -> Response:
    """Remove the link; both events' histories record it."""
    _load(db, event_id)
    try:
        remove_link(db, link_id, event_id, principal.user)
    except LinkRefused:
        db.rollback()
        raise HTTPException(404, f"Event {event_id} has no link {link_id}.") from None
    db.commit()
    return Response(status_code=204)


@router.post(
    "/events/{event_id}/review",
    response_model=EventOut,
    summary="Reviewed, still unconfirmed: restart the review clock, with a note in the history",
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
)
def review_event(event_id: EventId, body: ReviewIn, db: SessionDep, principal: AnalystDep) -> Any:
    """Only claimed or reported events are reviewed; the event's fields and version do not change."""
    _load(db, event_id)
    try:
        mark_reviewed(db, event_id, principal.user, body.note)
    except ReviewRefused as exc:
        db.rollback()
        return _refused("note", str(exc))
    db.commit()
    return EventOut.of(load_event(db, event_id), links_of(db, event_id))
