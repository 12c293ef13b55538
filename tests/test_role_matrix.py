"""Role × route matrix built from the app's own route table: a route without a role rule fails here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from app.auth.accounts import create_token
from app.auth.deps import PRE_SESSION_COOKIE, ROLE_RANK
from app.auth.tokens import sign
from app.config import get_settings
from app.main import create_app
from app.models import Actor, System
from tests.conftest import Client, make_user
from tests.factories import make_event

try:  # FastAPI ≥0.160 keeps included routers lazily; this flattens them with their prefixes and deps.
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI lists APIRoutes directly
    iter_route_contexts = None

# Routes that deliberately carry no role dependency, and why:
PUBLIC_ROUTES = {
    ("GET", "/healthz"),  # load balancers probe it without credentials; it says only "database up/down"
    ("GET", "/login"),  # the way in
    ("POST", "/login"),  # the way in (CSRF-protected by the pre-session token, rate-limited)
    ("POST", "/logout"),  # ends only the caller's own session; must work after the session expired
    ("GET", "/docs"),  # Swagger UI page for /openapi.json: API shapes only, never data (a fixed address)
    ("GET", "/docs/oauth2-redirect"),  # Swagger UI's helper page, if served
    # Atom feeds: a feed reader cannot log in; the path's feed token names the user whose access applies,
    # and anything but a live token is a 404 (tests/test_feeds.py).
    ("GET", "/feeds/{token}/events.atom"),
    ("GET", "/feeds/{token}/views/{view_id:int}.atom"),
}
# Non-API routes FastAPI and Starlette add: the API description (a fixed address for API clients; it
# describes shapes, never data), Swagger/ReDoc pages that read it, and the static files (CSS, JS, icons).
PUBLIC_PREFIXES = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static")

ROLES = ("anonymous", "viewer", "analyst", "admin")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Account pages every signed-in person uses for themselves (password, own API tokens).
# Saved views and feed addresses are a person's own settings too (never event data), so viewers make them.
SELF_SERVICE_PREFIXES = ("/account", "/views", "/feeds/new")


@dataclass(frozen=True)
class RouteInfo:
    """One method of one route, with the role its dependencies demand (None = public)."""

    method: str
    path: str
    role: str | None
    path_params: tuple[tuple[str, Any], ...]
    signed_in_only: bool = False  # refused to anonymous visitors even with PUBLIC_READ on

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _required_roles(dependant: Any, seen: set[int] | None = None) -> set[str]:
    """Every `required_role` found by walking the dependency tree."""
    seen = seen if seen is not None else set()
    roles: set[str] = set()
    for dep in dependant.dependencies:
        if id(dep) in seen:
            continue
        seen.add(id(dep))
        role = getattr(dep.call, "required_role", None)
        if role:
            roles.add(role)
        roles |= _required_roles(dep, seen)
    return roles


def _signed_in_only(dependant: Any) -> bool:
    """True when a role check in the dependency tree refuses anonymous readers even with PUBLIC_READ."""
    return any(getattr(d.call, "signed_in_only", False) or _signed_in_only(d) for d in dependant.dependencies)


def _route_contexts(app: Any) -> list[tuple[Any, Any]]:
    """(original route, effective route with full path and app/router deps) for every route."""
    if iter_route_contexts is not None:
        return [(rc.original_route, rc) for rc in iter_route_contexts(app.routes)]
    return [(r, r) for r in app.routes]


def collect_routes() -> tuple[list[RouteInfo], list[str]]:
    """All API routes (one entry per method) and the paths of every other kind of route."""
    app = create_app()
    routes: list[RouteInfo] = []
    others: list[str] = []
    for original, effective in _route_contexts(app):
        if not isinstance(original, APIRoute):
            others.append(effective.path)
            continue
        roles = _required_roles(effective.dependant)
        # The strongest role demanded wins (a route may stack viewer + admin checks).
        role = max(roles, key=ROLE_RANK.__getitem__) if roles else None
        params = tuple((p.name, p.field_info.annotation) for p in effective.dependant.path_params)
        for method in sorted(effective.methods - {"HEAD", "OPTIONS"}):
            signed_in = _signed_in_only(effective.dependant)
            routes.append(RouteInfo(method, effective.path, role, params, signed_in))
    return routes, others


ROUTES, OTHER_PATHS = collect_routes()


def test_route_table_is_not_empty() -> None:
    """Guard against the walk silently finding nothing (e.g. after a FastAPI change)."""
    assert len(ROUTES) > 10
    assert any(r.role == "admin" for r in ROUTES) and any(r.role == "analyst" for r in ROUTES)


def test_every_route_declares_a_role_or_is_listed_public() -> None:
    """A new route without ViewerDep/AnalystDep/AdminDep fails until it gets one (or a justification)."""
    missing = [str(r) for r in ROUTES if r.role is None and (r.method, r.path) not in PUBLIC_ROUTES]
    assert not missing, f"routes without a role dependency: {missing}"
    stray = [p for p in OTHER_PATHS if not p.startswith(PUBLIC_PREFIXES)]
    assert not stray, f"non-API routes outside the public allowlist: {stray}"


def test_roles_follow_the_policy() -> None:
    """Writes need analyst (own account excepted), /admin and restore/merge need admin."""
    wrong: list[str] = []
    for r in ROUTES:
        if r.role is None:
            continue
        if r.method in UNSAFE and not r.path.startswith(SELF_SERVICE_PREFIXES) and r.role == "viewer":
            wrong.append(f"{r}: a write open to viewers")
        lowered = r.path.lower()
        admin_only = lowered.startswith(("/admin", "/api/v1/admin", "/api/v1/users"))
        admin_only = admin_only or (r.method in UNSAFE and ("restore" in lowered or "merge" in lowered))
        if admin_only and r.role != "admin":
            wrong.append(f"{r}: needs admin, has {r.role}")
    assert not wrong, wrong


def _fill(path: str, params: tuple[tuple[str, Any], ...], ids: dict[str, Any]) -> str:
    """Put an existing object's id (or a plausible value) in every path parameter."""
    for name, type_ in params:
        if name in ids:
            value = ids[name]
        elif type_ is int:
            value = ids["event_id"]
        else:
            value = ids.get("_str", "RUS")
        for convertor in ("", ":path", ":int"):  # "{event_id:int}": pages 404 on a non-numeric id
            path = path.replace("{" + name + convertor + "}", str(value))
    return path


def _ids(db: Session, target_user_id: int) -> dict[str, Any]:
    """Existing objects to point path parameters at."""
    event = make_event(db)
    actor = db.query(Actor).first()
    system = db.query(System).first()
    owner = make_user(db, "viewer")
    token, _ = create_token(db, owner, "matrix")
    db.commit()
    return {
        "event_id": event.id,
        "id": event.id,
        "actor_id": actor.id if actor else event.id,
        "system_id": system.id if system else event.id,
        "user_id": target_user_id,
        "token_id": token.id,
        "group": "source",
        "code": "RUS",
        "country": "RUS",
        "country_code": "RUS",
        "kind": "offer",
    }


def _request(client: Client, route: RouteInfo, url: str):  # type: ignore[no-untyped-def]
    if route.method == "GET":
        return client.get(url)
    if route.path.startswith("/api/"):
        return client.request(route.method, url, json={})
    return client.request(route.method, url, data={})


def _anonymous_csrf(client: Client) -> None:
    """Give the anonymous client a valid pre-session CSRF token, so the role check (not CSRF) answers."""
    client.http.cookies.set(PRE_SESSION_COOKIE, "matrix-pre")
    client.http.headers["X-CSRF-Token"] = sign(get_settings().secret_key, "matrix-pre")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_role_matrix(client: Client, db: Session, route: RouteInfo, role: str) -> None:
    """Allowed roles get a real answer (not 401/403/5xx); others get 303→/login, 401 or 403."""
    target = make_user(db, "viewer")
    ids = _ids(db, target.id)
    if role == "anonymous":
        _anonymous_csrf(client)
    else:
        client.login(role)
    url = _fill(route.path, route.path_params, ids)
    response = _request(client, route, url)
    status = response.status_code
    assert status < 500, f"{route} as {role}: {status}"
    if route.role is None:
        return  # public: only "no crash" applies
    allowed = role != "anonymous" and ROLE_RANK[role] >= ROLE_RANK[route.role]
    if allowed:
        assert status not in (401, 403), f"{route} as {role} was refused ({status})"
        if status == 303:
            assert not response.headers["location"].startswith("/login"), f"{route} as {role}"
    elif role == "anonymous":
        if route.path.startswith("/api/"):
            assert status == 401, f"{route} anonymous: {status}"
        else:
            assert status == 303 and response.headers["location"].startswith("/login"), (
                f"{route} anonymous: {status} {response.headers.get('location')}"
            )
    else:
        assert status == 403, f"{route} as {role} (needs {route.role}): {status}"


SAFE_VIEWER_ROUTES = [r for r in ROUTES if r.method == "GET" and r.role == "viewer" and not r.signed_in_only]
SIGNED_IN_ROUTES = [r for r in ROUTES if r.signed_in_only]
NON_VIEWER_ROUTES = [r for r in ROUTES if r.role is not None and (r.method in UNSAFE or r.role != "viewer")]


@pytest.fixture
def public_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """PUBLIC_READ=true for one test (the settings object is shared, so patch and restore it)."""
    monkeypatch.setattr(get_settings(), "public_read", True)


@pytest.mark.parametrize("route", SAFE_VIEWER_ROUTES, ids=str)
def test_public_read_lets_anonymous_read(
    client: Client, db: Session, public_read: None, route: RouteInfo
) -> None:
    """With PUBLIC_READ on, anonymous visitors may read every viewer page."""
    ids = _ids(db, make_user(db, "viewer").id)
    response = client.get(_fill(route.path, route.path_params, ids))
    assert response.status_code not in (401, 403), f"{route}: {response.status_code}"
    location = response.headers.get("location", "")
    assert not location.startswith("/login") or route.path.startswith(SELF_SERVICE_PREFIXES)


def test_evidence_downloads_are_the_signed_in_only_routes() -> None:
    assert {str(r) for r in SIGNED_IN_ROUTES} == {
        "GET /events/{event_id:int}/files/{file_id:int}",
        "GET /api/v1/events/{event_id}/files/{file_id}",
    }


@pytest.mark.parametrize("route", SIGNED_IN_ROUTES, ids=str)
def test_public_read_does_not_open_signed_in_only_routes(
    client: Client, db: Session, public_read: None, route: RouteInfo
) -> None:
    ids = _ids(db, make_user(db, "viewer").id)
    response = client.get(_fill(route.path, route.path_params, ids))
    if route.path.startswith("/api/"):
        assert response.status_code == 401, f"{route}: {response.status_code}"
    else:
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), str(route)


@pytest.mark.parametrize("route", NON_VIEWER_ROUTES, ids=str)
def test_public_read_never_lets_anonymous_write(
    client: Client, db: Session, public_read: None, route: RouteInfo
) -> None:
    """PUBLIC_READ never opens a write or an analyst/admin page to anonymous visitors."""
    ids = _ids(db, make_user(db, "viewer").id)
    _anonymous_csrf(client)
    response = _request(client, route, _fill(route.path, route.path_params, ids))
    assert response.status_code in (303, 401, 403), f"{route}: {response.status_code}"
    if response.status_code == 303:
        assert response.headers["location"].startswith("/login")
