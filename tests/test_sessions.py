"""Server-side sessions: fixation, logout replay, disable, idle and absolute timeouts, cookie flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.sessions import COOKIE_NAME
from app.auth.tokens import sha256
from app.config import DEFAULT_SECRET, Settings
from app.domain import clock
from app.models import UserSession
from app.web import accounts
from tests.conftest import PASSWORD, Client, csrf_from, make_user


def web_login(client: Client, username: str, password: str = PASSWORD, next_: str = "/"):  # type: ignore[no-untyped-def]
    """Log in through the real form (pre-session CSRF token included)."""
    token = csrf_from(client.get("/login").text)
    return client.post(
        "/login", data={"username": username, "password": password, "next": next_, "csrf_token": token}
    )


def issued_session(response) -> str:  # type: ignore[no-untyped-def]
    """The session token a response set (read from Set-Cookie, not the jar, which may hold several)."""
    return set_cookie_header(response).split(";", 1)[0].split("=", 1)[1]


def use_session(client: Client, token: str) -> None:
    """Make the client send exactly this session cookie."""
    client.http.cookies.clear()
    client.http.cookies.set(COOKIE_NAME, token)


def set_cookie_header(response) -> str:  # type: ignore[no-untyped-def]
    """The Set-Cookie header for the session cookie."""
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    found = [c for c in cookies if c.startswith(f"{COOKIE_NAME}=")]
    assert found, cookies
    return found[0]


class FrozenClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """Freeze app.domain.clock.utcnow (every session check reads the time through it)."""
    fake = FrozenClock()
    monkeypatch.setattr(clock, "utcnow", fake)
    return fake


def test_login_issues_a_new_session_id(client: Client, db: Session) -> None:
    """A cookie planted before login (session fixation) is never the one used after it."""
    user = make_user(db, "viewer")
    db.commit()
    client.http.cookies.set(COOKIE_NAME, "attacker-chosen-value")
    response = web_login(client, user.username)
    assert response.status_code == 303 and response.headers["location"] == "/"
    new = issued_session(response)
    assert new and new != "attacker-chosen-value"
    use_session(client, new)
    assert db.scalar(select(UserSession.user_id).where(UserSession.id == sha256(new))) == user.id
    assert client.get("/").status_code == 200


def test_login_over_a_live_session_replaces_it(client: Client, db: Session) -> None:
    """Logging in again ends the previous session on the server: its cookie stops working."""
    user = client.login("viewer")
    old = client.http.cookies.get(COOKIE_NAME)
    client.http.headers.pop("X-CSRF-Token")
    token = csrf_from(client.get("/account/password").text)
    response = client.post(
        "/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    assert issued_session(response) != old
    assert db.scalar(select(func.count()).select_from(UserSession).where(UserSession.id == sha256(old))) == 0


def test_logout_ends_the_session_on_the_server(client: Client, db: Session) -> None:
    """After logout, replaying the old cookie leads to the login page."""
    client.login("analyst")
    old = client.http.cookies.get(COOKIE_NAME)
    response = client.post("/logout", data={"csrf_token": client.csrf})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert db.scalar(select(func.count()).select_from(UserSession).where(UserSession.id == sha256(old))) == 0
    client.http.cookies.set(COOKIE_NAME, old)
    replay = client.get("/")
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")


def test_logout_needs_csrf(client: Client) -> None:
    """A cross-site page cannot log a user out (or in) behind their back."""
    client.login("viewer")
    del client.http.headers["X-CSRF-Token"]
    assert client.post("/logout").status_code == 403
    assert client.get("/").status_code == 200


def test_disabling_an_account_ends_its_sessions(app, db: Session) -> None:  # type: ignore[no-untyped-def]
    """An admin disables a user: that user's open session is refused at once."""
    victim = Client(app, db)
    user = victim.login("analyst")
    assert victim.get("/").status_code == 200
    admin = Client(app, db)
    admin.login("admin")
    response = admin.post(f"/admin/users/{user.id}/disable")
    assert response.status_code == 303
    assert db.scalar(select(func.count()).select_from(UserSession).where(UserSession.user_id == user.id)) == 0
    refused = victim.get("/")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    # ... and cannot log back in.
    victim.http.cookies.clear()
    del victim.http.headers["X-CSRF-Token"]
    assert web_login(victim, user.username).status_code == 401


def test_idle_timeout(client: Client, frozen: FrozenClock) -> None:
    """30 minutes without a request ends the session; activity keeps it alive."""
    client.login("viewer")
    frozen.advance(minutes=29)
    assert client.get("/").status_code == 200
    frozen.advance(minutes=29)  # 58 min after login, 29 after the last request
    assert client.get("/").status_code == 200
    frozen.advance(minutes=31)
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_absolute_timeout(client: Client, frozen: FrozenClock) -> None:
    """Even a busy session ends 12 hours after login."""
    client.login("viewer")
    for _ in range(35):  # 35 × 20 min = 11 h 40 min, never idle
        frozen.advance(minutes=20)
        assert client.get("/").status_code == 200
    frozen.advance(minutes=21)  # 12 h 01 min
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_session_cookie_flags_in_development(client: Client, db: Session) -> None:
    """HttpOnly and SameSite=Lax always; no Secure flag over plain HTTP in development/test."""
    user = make_user(db, "viewer")
    db.commit()
    client.http.headers.pop("X-CSRF-Token", None)
    header = set_cookie_header(web_login(client, user.username)).lower()
    assert "httponly" in header and "samesite=lax" in header
    assert "secure" not in header.replace("samesite", "")


def test_session_cookie_is_secure_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """ENVIRONMENT=production adds Secure (checked on set_session_cookie with production settings)."""
    production = Settings(environment="production", secret_key="p" * 40, database_url="postgresql://x/y")
    monkeypatch.setattr(accounts, "get_settings", lambda: production)
    response = Response()
    accounts.set_session_cookie(response, "tok")
    header = response.headers["set-cookie"].lower()
    assert "; secure" in header and "httponly" in header and "samesite=lax" in header
    assert f"max-age={12 * 3600}" in header


def test_production_refuses_the_default_secret() -> None:
    """Production will not start with the development secret (it signs pre-login CSRF tokens)."""
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(environment="production", secret_key=DEFAULT_SECRET)


def test_the_database_keeps_only_a_hash_of_the_cookie(client: Client, db: Session) -> None:
    """A leaked sessions table does not hand out live cookies."""
    client.login("viewer")
    raw = client.http.cookies.get(COOKIE_NAME)
    ids = db.scalars(select(UserSession.id)).all()
    assert raw not in ids and sha256(raw) in ids
