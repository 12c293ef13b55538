"""CSRF: unsafe requests need the session's token and our own origin; API tokens need neither."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.auth.accounts import create_token
from app.auth.deps import PRE_SESSION_COOKIE
from app.auth.tokens import sign
from app.config import get_settings
from app.models import ApiToken, AuditEntry
from tests.conftest import PASSWORD, Client, csrf_from, make_user
from tests.factories import make_event
from tests.test_role_matrix import _fill, collect_routes

# An unsafe form every signed-in person may send (its effect is easy to observe: a new token row).
TARGET = "/account/tokens"


def token_count(db: Session) -> int:
    """How many API tokens exist (each accepted POST to TARGET adds one)."""
    return db.scalar(select(func.count()).select_from(ApiToken)) or 0


@pytest.fixture
def user_client(client: Client) -> Client:
    """A signed-in viewer whose client does NOT send the CSRF header automatically."""
    client.login("viewer")
    del client.http.headers["X-CSRF-Token"]
    return client


def test_post_without_token_is_refused(user_client: Client, db: Session) -> None:
    """No header, no form field: 403 and nothing changes."""
    before = token_count(db)
    response = user_client.post(TARGET, data={"name": "x"})
    assert response.status_code == 403
    assert "Request refused" in response.text
    assert token_count(db) == before


def test_post_with_wrong_token_is_refused(user_client: Client, db: Session) -> None:
    """A made-up token is refused, in the form field and in the header."""
    before = token_count(db)
    assert user_client.post(TARGET, data={"name": "x", "csrf_token": "forged"}).status_code == 403
    assert user_client.post(TARGET, data={"name": "x"}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert token_count(db) == before


def test_token_from_another_session_is_refused(app, db: Session) -> None:  # type: ignore[no-untyped-def]
    """Tokens are per session: Mallory's valid token does not work with Alice's cookie."""
    mallory = Client(app, db)
    mallory.login("viewer")
    alice = Client(app, db)
    alice.login("viewer")
    del alice.http.headers["X-CSRF-Token"]
    before = token_count(db)
    assert alice.post(TARGET, data={"name": "x", "csrf_token": mallory.csrf}).status_code == 403
    assert token_count(db) == before
    # The same request with her own token goes through.
    assert alice.post(TARGET, data={"name": "x", "csrf_token": alice.csrf}).status_code == 200
    assert token_count(db) == before + 1


def test_token_in_form_field_or_header_is_accepted(user_client: Client, db: Session) -> None:
    """The hidden field (plain forms) and the X-CSRF-Token header (HTMX) both work."""
    page = user_client.get("/account")
    token = csrf_from(page.text)
    assert user_client.post(TARGET, data={"name": "a", "csrf_token": token}).status_code == 200
    assert user_client.post(TARGET, data={"name": "b"}, headers={"X-CSRF-Token": token}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_foreign_origin_is_refused_even_with_a_token(
    user_client: Client, db: Session, headers: dict[str, str]
) -> None:
    """A valid token does not help a request a browser marks as coming from another site."""
    before = token_count(db)
    response = user_client.post(TARGET, data={"name": "x", "csrf_token": user_client.csrf}, headers=headers)
    assert response.status_code == 403
    assert token_count(db) == before


def test_same_origin_headers_are_accepted(user_client: Client) -> None:
    """Our own pages send Origin = our host and Sec-Fetch-Site: same-origin."""
    headers = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    response = user_client.post(TARGET, data={"name": "x", "csrf_token": user_client.csrf}, headers=headers)
    assert response.status_code == 200


def test_refusals_are_audited_for_signed_in_users(user_client: Client, db: Session) -> None:
    """A refused request is written to the audit log with who, what and from where."""
    user_client.post(TARGET, data={"name": "x"}, headers={"Origin": "https://evil.example"})
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "csrf_refused")).one()
    assert entry.username == user_client.user.username  # type: ignore[union-attr]
    assert entry.changes["path"] == TARGET and entry.changes["reason"] == "origin"
    assert entry.ip == "testclient" or entry.ip is None  # the test client has no IP address


def test_login_form_needs_the_pre_session_token(client: Client, db: Session) -> None:
    """Login CSRF: the login form carries a token bound to a pre-session cookie."""
    user = make_user(db, "viewer")
    db.commit()
    data = {"username": user.username, "password": PASSWORD}
    assert client.post("/login", data=data).status_code == 403
    # A token made for another visitor's pre-session cookie is refused too.
    other = sign(get_settings().secret_key, "someone-else")
    client.get("/login")
    assert client.post("/login", data={**data, "csrf_token": other}).status_code == 403
    token = csrf_from(client.get("/login").text)
    assert client.http.cookies.get(PRE_SESSION_COOKIE)
    assert client.post("/login", data={**data, "csrf_token": token}).status_code == 303


def test_api_with_bearer_token_needs_no_csrf(client: Client, db: Session) -> None:
    """Scripts using a personal access token are not browsers: no CSRF token, any Origin."""
    user = make_user(db, "analyst")
    _, raw = create_token(db, user, "script")
    db.commit()
    headers = {"Authorization": f"Bearer {raw}", "Origin": "https://elsewhere.example"}
    # An unsafe request the token may make: past CSRF, it reaches validation or the handler.
    response = client.post("/account/tokens", data={"name": "x"}, headers=headers)
    assert response.status_code == 403 and "API token" in response.text  # refused by the page, not CSRF
    routes, _ = collect_routes()
    api_writes = [
        r for r in routes if r.path.startswith("/api/") and r.method == "POST" and "{" not in r.path
    ]
    for route in api_writes:  # each reaches its handler (validation says 422), never a CSRF 403
        response = client.post(route.path, json={}, headers=headers)
        assert response.status_code not in (401, 403), (str(route), response.status_code)


def test_bad_bearer_token_is_401(client: Client) -> None:
    """A wrong or revoked token is not silently treated as anonymous."""
    for path in ("/", "/account", "/admin/users"):
        response = client.get(path, headers={"Authorization": "Bearer sb_nope"})
        assert response.status_code == 401, path
        assert response.headers.get("www-authenticate") == "Bearer"


def _state(db: Session) -> tuple[object, ...]:
    """A fingerprint of the data GET requests must never touch."""
    return tuple(
        db.execute(
            text(
                "SELECT (SELECT count(*) FROM audit_log),"
                " (SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL),"
                " (SELECT coalesce(sum(version), 0) FROM events),"
                " (SELECT count(*) FROM events WHERE deleted_at IS NULL),"
                " (SELECT string_agg(role || is_active::text, ',' ORDER BY id) FROM users),"
                " (SELECT count(*) FROM actors), (SELECT count(*) FROM systems)"
            )
        ).one()
    )


def test_get_requests_change_nothing(client: Client, db: Session) -> None:
    """Every GET route of the app, as admin (who may do the most), leaves the data as it was."""
    event = make_event(db)
    db.commit()
    client.login("admin")
    ids = {
        "event_id": event.id,
        "actor_id": event.actors[0].actor_id,
        "system_id": event.systems[0].system_id,
    }
    routes, _ = collect_routes()
    before = _state(db)
    for route in routes:
        if route.method == "GET":
            client.get(_fill(route.path, route.path_params, {**ids, "group": "source"}))
    assert _state(db) == before


def test_no_get_route_is_named_like_an_action() -> None:
    """State changes live behind POST: no GET route ends in logout/delete/revoke/disable/... ."""
    routes, _ = collect_routes()
    verbs = ("/logout", "/revoke", "/disable", "/enable", "/reset-password", "/restore", "/merge")
    bad = [str(r) for r in routes if r.method == "GET" and r.path.endswith(verbs)]
    assert not bad, bad
