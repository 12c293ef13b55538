"""/api/v1/actors, /api/v1/systems, /api/v1/countries: searchable lists and single entries with counts."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Query, Security
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.api.events import AUTH_ERRORS, COMMON_ERRORS, INVALID, MAX_ID, _body_errors, bearer
from app.api.schemas import (
    ActorOut,
    ActorPage,
    CountryOut,
    CountryPage,
    OriginOut,
    OriginPage,
    Problem,
    SystemOut,
    SystemPage,
    SystemPatch,
)
from app.auth.deps import AnalystDep, ViewerDep
from app.db import SessionDep
from app.domain.countries import country_name, resolve_country
from app.models import Actor, Country, System
from app.queries.api import (
    actor_with_count,
    actors_page,
    countries_page,
    country_with_count,
    system_with_count,
    systems_page,
)
from app.queries.reference import OriginRow, origin_list
from app.services.reference import SYSTEMS, ReferenceConflict, SystemEdit, update_entry

router = APIRouter(tags=["reference"], dependencies=[Security(bearer)], responses=COMMON_ERRORS)
RefId = Annotated[int, Path(ge=1, le=MAX_ID)]

Search = Annotated[str, Query(max_length=100, description="part of a name, alias or code (case-insensitive)")]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def _missing(what: str) -> dict[int | str, dict[str, Any]]:
    return {404: {"model": Problem, "description": f"No such {what}."}}


def _next(path: str, q: str, limit: int, offset: int, more: bool) -> str | None:
    if not more:
        return None
    params = [("q", q)] if q else []
    return f"{path}?{urlencode([*params, ('limit', str(limit)), ('offset', str(offset + limit))])}"


def _page(
    page: Any, found: tuple[list[Any], bool], out: Any, path: str, q: str, limit: int, offset: int
) -> Any:
    """One page of a list: each row made an item by `out`, and the link to the next page if more follow."""
    rows, more = found
    return page(items=[out(*row) for row in rows], next=_next(path, q, limit, offset, more))


def _one(found: tuple[Any, ...] | None, out: Any, missing: str) -> Any:
    """The entry with its count made the response by `out`, or a 404 saying `missing`."""
    if found is None:
        raise HTTPException(404, missing)
    return out(*found)


def _actor(actor: Actor, count: int) -> ActorOut:
    return ActorOut(
        id=actor.id,
        name=actor.name,
        aliases=list(actor.aliases),
        type=actor.type,
        country=actor.country_code,
        title=actor.title,
        event_count=count,
        events="/api/v1/events?" + urlencode({"actor": actor.name}),
    )


def _system(system: System, count: int, parent: str | None) -> SystemOut:
    return SystemOut(
        id=system.id,
        designation=system.designation,
        aliases=list(system.aliases),
        category=system.category,
        origin=system.origin_code,
        parent=parent,
        event_count=count,
        events="/api/v1/events?" + urlencode({"system": system.designation}),
    )


def _country(country: Country, count: int) -> CountryOut:
    return CountryOut(
        code=country.code,
        alpha2=country.alpha2,
        name=country_name(country.code),
        event_count=count,
        events=f"/api/v1/events?country={country.code}",
    )


@router.get("/actors", response_model=ActorPage, summary="List actors", responses={**AUTH_ERRORS, **INVALID})
def list_actors(
    db: SessionDep, principal: ViewerDep, q: Search = "", limit: Limit = 50, offset: Offset = 0
) -> Any:
    """Actors by name; `q` matches names and aliases, ignoring case and accents."""
    found = actors_page(db, q, limit, offset)
    return _page(ActorPage, found, _actor, "/api/v1/actors", q, limit, offset)


@router.get(
    "/actors/{actor_id}",
    response_model=ActorOut,
    summary="One actor",
    responses={**AUTH_ERRORS, **_missing("actor")},
)
def get_actor(actor_id: RefId, db: SessionDep, principal: ViewerDep) -> Any:
    """An actor with its aliases and event count."""
    return _one(actor_with_count(db, actor_id), _actor, f"No actor {actor_id}.")


@router.get(
    "/systems", response_model=SystemPage, summary="List systems", responses={**AUTH_ERRORS, **INVALID}
)
def list_systems(
    db: SessionDep, principal: ViewerDep, q: Search = "", limit: Limit = 50, offset: Offset = 0
) -> Any:
    """Systems by designation; `q` matches designations and aliases."""
    found = systems_page(db, q, limit, offset)
    return _page(SystemPage, found, _system, "/api/v1/systems", q, limit, offset)


@router.get(
    "/systems/{system_id}",
    response_model=SystemOut,
    summary="One system",
    responses={**AUTH_ERRORS, **_missing("system")},
)
def get_system(system_id: RefId, db: SessionDep, principal: ViewerDep) -> Any:
    """A catalogued system with its aliases and event count."""
    return _one(system_with_count(db, system_id), _system, f"No system {system_id}.")


@router.patch(
    "/systems/{system_id}",
    response_model=SystemOut,
    summary="Change a system (names, category, origin, family)",
    responses={**AUTH_ERRORS, **_missing("system"), **INVALID},
)
def patch_system(system_id: RefId, changes: SystemPatch, db: SessionDep, principal: AnalystDep) -> Any:
    """Send only the fields to change. `parent` (a designation or alias) makes the system a variant of
    that family; a parent that is the system itself or one of its variants is refused (422)."""
    system = db.get(System, system_id)
    if system is None:
        raise HTTPException(404, f"No system {system_id}.")
    current = SYSTEMS.snapshot(system)
    current.update(changes.model_dump(exclude_unset=True))
    try:
        data = SystemEdit.model_validate(current)
        update_entry(db, SYSTEMS, system_id, data, principal.user)
    except ValidationError as exc:
        db.rollback()
        raise _body_errors(exc) from None
    except ReferenceConflict as exc:
        db.rollback()
        raise RequestValidationError(
            [{"loc": ("body", exc.field), "msg": exc.message, "type": "value_error"}]
        ) from None
    db.commit()
    # A 404 when merged away since.
    return _one(system_with_count(db, system_id), _system, f"No system {system_id}.")


@router.get(
    "/countries",
    response_model=CountryPage,
    summary="List countries",
    responses={**AUTH_ERRORS, **INVALID},
)
def list_countries(
    db: SessionDep, principal: ViewerDep, q: Search = "", limit: Limit = 50, offset: Offset = 0
) -> Any:
    """ISO 3166-1 countries by name; `q` matches a code or part of a name."""
    found = countries_page(db, q, limit, offset)
    return _page(CountryPage, found, _country, "/api/v1/countries", q, limit, offset)


@router.get(
    "/countries/{code}",
    response_model=CountryOut,
    summary="One country",
    responses={**AUTH_ERRORS, **_missing("country")},
)
def get_country(code: str, db: SessionDep, principal: ViewerDep) -> Any:
    """A country by alpha-3 or alpha-2 code or by name (`RUS`, `ru`, `Russia`)."""
    resolved = resolve_country(code[:100])
    found = country_with_count(db, resolved) if resolved else None
    return _one(found, _country, f"No country “{code[:100]}”; use an ISO 3166-1 code such as RUS.")


def _origin(row: OriginRow) -> OriginOut:
    return OriginOut(id=row.id, name=row.name, aliases=list(row.aliases), event_count=row.events)


@router.get(
    "/origins", response_model=OriginPage, summary="List origins", responses={**AUTH_ERRORS, **INVALID}
)
def list_origins(
    db: SessionDep, principal: ViewerDep, q: Search = "", limit: Limit = 50, offset: Offset = 0
) -> Any:
    """Origins, the most cited first; `q` matches names and aliases. Sources relaying one origin (or
    naming it by an alias) count once towards an event's `origin_count`."""
    rows = origin_list(db, q, limit + 1, offset)
    more = len(rows) > limit
    return OriginPage(
        items=[_origin(r) for r in rows[:limit]], next=_next("/api/v1/origins", q, limit, offset, more)
    )


@router.get(
    "/origins/{origin_id}",
    response_model=OriginOut,
    summary="One origin",
    responses={**AUTH_ERRORS, **_missing("origin")},
)
def get_origin(origin_id: RefId, db: SessionDep, principal: ViewerDep) -> Any:
    """An origin with its aliases and how many visible events cite it."""
    rows = origin_list(db, limit=1, origin_id=origin_id)
    if not rows:
        raise HTTPException(404, f"No origin {origin_id}.")
    return _origin(rows[0])
