"""Security headers on every kind of response, body-size limits (413) and error pages without internals."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import get_read_session, get_session
from app.main import create_app
from app.services.events import delete_event
from tests.conftest import Client
from tests.factories import make_event
from tests.test_role_matrix import ROUTES, _fill


def check_headers(response: httpx.Response, *, cacheable: bool = False) -> None:
    """The headers every response carries."""
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    csp = response.headers.get("content-security-policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert "frame-ancestors 'none'" in csp, where
    assert directives.get("object-src") == "object-src 'none'", where
    script = directives.get("script-src") or directives.get("default-src", "")
    if response.request.url.path not in ("/docs", "/docs/oauth2-redirect"):
        assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, where
        assert "'unsafe-inline'" not in directives.get("style-src", ""), where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") in ("same-origin", "no-referrer", "strict-origin"), where
    assert response.headers.get("x-frame-options") == "DENY", where
    if not cacheable:
        assert "no-store" in response.headers.get("cache-control", ""), where


def test_every_get_route_sends_the_headers(client: Client, db: Session) -> None:
    """Every GET route of the app (as admin, so each answers for real), pages and partials alike."""
    event = make_event(db)
    db.commit()
    client.login("admin")
    ids = {"event_id": event.id, "group": "source", "actor_id": event.actors[0].actor_id}
    ids["system_id"] = event.systems[0].system_id
    checked = 0
    for route in ROUTES:
        if route.method != "GET":
            continue
        url = _fill(route.path, route.path_params, ids)
        for extra in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=extra)
            assert response.status_code < 500, (url, response.status_code)
            check_headers(response)
            checked += 1
    assert checked > 20


@pytest.mark.parametrize(
    ("path", "headers", "status", "kind"),
    [
        ("/login", {}, 200, "text/html"),
        ("/healthz", {}, 200, "application/json"),
        ("/", {}, 303, None),  # anonymous redirect
        ("/no/such/page", {}, 404, "text/html"),
        ("/api/v1/no-such-thing", {}, 404, "application/json"),
        ("/", {"Authorization": "Bearer nope"}, 401, "application/json"),
        ("/openapi.json", {}, 200, "application/json"),
    ],
)
def test_anonymous_and_error_responses_send_the_headers(
    client: Client, path: str, headers: dict[str, str], status: int, kind: str | None
) -> None:
    """Redirects, JSON, 401 and 404 carry the same headers as pages."""
    response = client.get(path, headers=headers)
    assert response.status_code == status
    if kind:
        assert response.headers["content-type"].startswith(kind)
    check_headers(response)


def test_static_files_send_the_headers_and_may_be_cached(client: Client) -> None:
    """CSS and JS get CSP and nosniff; they are not marked no-store (they hold no data)."""
    for path in ("/static/css/app.css", "/static/js/app.js"):
        response = client.get(path)
        assert response.status_code == 200
        check_headers(response, cacheable=True)


def test_csv_export_is_not_cached(client: Client, db: Session) -> None:
    """Exports hold sensitive rows: no-store, like pages."""
    make_event(db)
    db.commit()
    client.login("viewer")
    response = client.get("/export.csv")
    if response.status_code == 404:
        pytest.skip("no /export.csv route in this build")
    assert response.status_code == 200 and "text/csv" in response.headers["content-type"]
    check_headers(response)


def test_forbidden_page_sends_the_headers(client: Client) -> None:
    """A 403 page is a page too."""
    client.login("viewer")
    response = client.get("/admin/users")
    assert response.status_code == 403
    check_headers(response)


# ---- body size limits ------------------------------------------------------------------------------


def small_app(db: Session, monkeypatch: pytest.MonkeyPatch, limit: int = 4096) -> FastAPI:
    """The app with a tiny request cap, bound to the test transaction."""
    monkeypatch.setattr(get_settings(), "max_request_bytes", limit)
    app = create_app()

    def override() -> Iterator[Session]:
        yield db

    app.dependency_overrides[get_session] = override
    app.dependency_overrides[get_read_session] = override
    return app


def test_large_body_with_content_length_is_413(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A declared oversize body is refused before it is read, with the security headers."""
    client = TestClient(small_app(db, monkeypatch), follow_redirects=False)
    response = client.post(
        "/login", content=b"x" * 5000, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    check_headers(response)
    small = client.post("/login", data={"username": "a"})
    assert small.status_code == 403  # under the cap the request goes on (to the CSRF check)


def test_large_chunked_body_is_413(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body streamed without Content-Length is cut off once it passes the cap."""
    client = TestClient(small_app(db, monkeypatch), follow_redirects=False)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"username=" + b"y" * 1000 + b"&"

    response = client.post(
        "/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    check_headers(response)


@pytest.fixture
def tiny_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4 KiB cap for the live server built after this fixture."""
    monkeypatch.setattr(get_settings(), "max_request_bytes", 4096)


def test_live_server_refuses_big_uploads(tiny_limit: None, live_server: str) -> None:
    """Over real HTTP (uvicorn): both a declared and a chunked oversize body get 413."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    declared = httpx.post(f"{live_server}/login", content=b"z" * 10_000, headers=form, timeout=10)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b"a=" + b"b" * 1000 + b"&"

    streamed = httpx.post(f"{live_server}/login", content=chunks(), headers=form, timeout=10)
    assert streamed.status_code == 413
    multipart = httpx.post(f"{live_server}/login", files={"f": ("big.csv", b"c" * 20_000)}, timeout=10)
    assert multipart.status_code == 413


def test_upload_limit_setting_exists() -> None:
    """The import engineer's upload cap reads this setting; it must stay below the request cap."""
    settings = get_settings()
    assert 0 < settings.max_upload_bytes <= settings.max_request_bytes


# ---- friendly errors -------------------------------------------------------------------------------


def crashing_app(db: Session) -> FastAPI:
    """The app with two test-only routes that fail the way real bugs do."""
    app = create_app()

    def override() -> Iterator[Session]:
        yield db

    app.dependency_overrides[get_session] = override

    @app.get("/test-crash")
    def crash() -> None:
        raise RuntimeError("secret internals: SELECT password_hash FROM users")

    @app.get("/api/v1/test-crash")
    def crash_api() -> None:
        raise ProgrammingError("SELECT password_hash FROM users WHERE id = 1", {}, Exception("syntax"))

    return app


@pytest.mark.parametrize("path", ["/test-crash", "/api/v1/test-crash"])
def test_crash_gives_a_friendly_error_without_internals(db: Session, path: str) -> None:
    """500: a calm message (HTML for people, JSON for the API), never a stack trace or SQL."""
    client = TestClient(crashing_app(db), raise_server_exceptions=False)
    response = client.get(path)
    assert response.status_code == 500
    body = response.text
    for leak in ("Traceback", "SELECT", "password_hash", "RuntimeError", "ProgrammingError", 'File "'):
        assert leak not in body, leak
    if path.startswith("/api/"):
        assert response.json()["detail"].startswith("The server could not finish")
    else:
        assert "Something went wrong" in body and "<html" in body
    check_headers(response)


def test_validation_errors_do_not_echo_internals(client: Client) -> None:
    """A malformed path parameter gives a 4xx page, not a Python error."""
    client.login("viewer")
    response = client.get("/events/not-a-number")
    assert response.status_code in (404, 422)
    assert "Traceback" not in response.text


def test_deleted_event_is_404_for_non_admins(client: Client, db: Session) -> None:
    """An object a user may not see is answered as if it did not exist."""
    event = make_event(db)
    delete_event(db, event.id, None)
    db.commit()
    for role in ("viewer", "analyst"):
        client.login(role)
        response = client.get(f"/events/{event.id}")
        assert response.status_code == 404, role
        assert event.title not in response.text
        if any(r.path == "/api/v1/events/{event_id}" for r in ROUTES):
            api = client.get(f"/api/v1/events/{event.id}")
            assert api.status_code == 404 and event.title not in api.text


def test_database_errors_are_not_shown(client: Client, db: Session) -> None:
    """Even a page whose query fails shows only the friendly text (the server logs the details)."""
    db.execute(text("SELECT 1"))
    client.login("viewer")
    response = client.get("/?q=" + "%27%3B%20DROP%20TABLE%20events%3B%20--")
    assert response.status_code in (200, 422)
    assert "psycopg" not in response.text and "Traceback" not in response.text


def test_nul_in_the_address_is_a_clean_400(client: Client) -> None:
    """PostgreSQL text cannot hold NUL: refused up front, page or JSON, with the headers."""
    client.login("viewer")
    page = client.get("/?q=a%00b")
    assert page.status_code == 400 and "Bad request" in page.text
    check_headers(page)
    api = client.get("/api/v1/events?q=%00")
    assert api.status_code == 400 and api.json()["detail"]
    check_headers(api)
