"""Accounts: password rules, login/logout, rate limits, first admin, audit, users admin, API tokens."""

from __future__ import annotations

import html
import io
import logging
import re

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.auth.bootstrap import ensure_first_admin
from app.auth.passwords import (
    common_passwords,
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from app.auth.sessions import COOKIE_NAME
from app.config import get_settings
from app.models import ApiToken, AuditEntry, User, UserSession
from tests.conftest import PASSWORD, Client, csrf_from, make_user

IP = "203.0.113.9"


def ip_client(app, db: Session, ip: str = IP) -> Client:  # type: ignore[no-untyped-def]
    """A client whose requests come from a real-looking address (the default test peer has none)."""
    c = Client(app, db)
    c.http = TestClient(app, follow_redirects=False, client=(ip, 50000))
    return c


def web_login(client: Client, username: str, password: str = PASSWORD, next_: str = "/"):  # type: ignore[no-untyped-def]
    """Log in through the real form."""
    token = csrf_from(client.get("/login").text)
    return client.post(
        "/login", data={"username": username, "password": password, "next": next_, "csrf_token": token}
    )


def audit(db: Session, action: str) -> list[AuditEntry]:
    """Audit rows of one action, oldest first."""
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


# ---- passwords ---------------------------------------------------------------------------------


def test_hash_is_argon2id_and_verifies() -> None:
    """Argon2id, salted (two hashes of one password differ), and verify says yes only to the password."""
    a, b = hash_password("a-long-enough-pass"), hash_password("a-long-enough-pass")
    assert a.startswith("$argon2id$") and a != b
    assert verify_password(a, "a-long-enough-pass") and not verify_password(a, "a-long-enough-pasS")
    assert not verify_password("not a hash", "x") and not verify_password(None, "x")


def test_the_dummy_hash_is_made_on_first_use_not_at_import() -> None:
    """Starting the app hashes nothing (each worker then reads its facts copy sooner); a login with an
    unknown name still verifies against a hash made with the current parameters."""
    import subprocess
    import sys

    code = (
        "from app.main import create_app; create_app()\n"
        "from app.auth import passwords as p\n"
        "n = p.dummy_hash.cache_info\n"
        "print(n().currsize, p.verify_password(None, 'x'), n().currsize, p.needs_rehash(p.dummy_hash()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "False", "1", "False"]


def test_weaker_hash_is_upgraded_at_login(client: Client, db: Session) -> None:
    """A hash made with older (cheaper) parameters is replaced at the next successful login."""
    old = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    assert needs_rehash(old)
    user = make_user(db, "viewer")
    user.password_hash = old
    db.commit()
    assert web_login(client, user.username).status_code == 303
    db.refresh(user)
    assert user.password_hash != old and not needs_rehash(user.password_hash)
    assert verify_password(user.password_hash, PASSWORD)


@pytest.mark.parametrize(
    "password",
    [
        "short-pw1",  # too short
        "password1234",  # listed
        "Password2024!",  # a listed word with digits and symbols around it
        "sunshine123456",
        "qwertyuiopasdf",  # keyboard run
        "123456789012",  # digit run
        "abcabcabcabc",  # short unit repeated
        "monkeymonkey",  # listed word doubled
        "aaaaaaaaaaaaaaaa",
        "!!!!2024!!!!",  # four distinct characters
    ],
)
def test_weak_passwords_are_refused(password: str) -> None:
    """12+ characters and not a common password (or an obvious variant)."""
    assert password_problem(password) is not None


@pytest.mark.parametrize(
    "password", [PASSWORD, "violet staple runs north", "849302756193", "Tr0ub4dor&3-zebra"]
)
def test_reasonable_passwords_are_accepted(password: str) -> None:
    """Long, uncommon passwords pass, with no composition rules."""
    assert password_problem(password) is None


def test_password_may_not_contain_the_username() -> None:
    """The name is the first thing an attacker tries."""
    assert password_problem("xx-mallory-9876543", "Mallory") is not None


def test_common_list_is_real() -> None:
    """The shipped list has thousands of entries, including the classics."""
    common = common_passwords()
    assert len(common) > 3000
    assert {"password", "iloveyou", "qwerty123456", "1q2w3e4r5t6y"} <= common


# ---- login and logout --------------------------------------------------------------------------


def test_login_page_renders_with_a_csrf_field(client: Client) -> None:
    """The login form posts a CSRF token, has labelled fields and sets the pre-session cookie."""
    page = client.get("/login")
    assert page.status_code == 200
    assert csrf_from(page.text)
    assert 'for="username"' in page.text and 'for="password"' in page.text


def test_login_goes_to_next_but_only_on_this_site(client: Client, db: Session) -> None:
    """`next` sends the user back where they were; an absolute or protocol-relative URL is ignored."""
    user = make_user(db, "viewer")
    db.commit()
    assert (
        web_login(client, user.username, next_="/dyads?kind=offer").headers["location"] == "/dyads?kind=offer"
    )
    client.http.cookies.clear()
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client.http.cookies.clear()
        assert web_login(client, user.username, next_=evil).headers["location"] == "/"


def test_wrong_password_and_unknown_user_look_the_same(client: Client, db: Session) -> None:
    """Same status and message, so the form does not reveal which usernames exist."""
    user = make_user(db, "viewer")
    db.commit()
    wrong = web_login(client, user.username, "wrong-password-123")
    unknown = web_login(client, "nobody-here", "wrong-password-123")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password." in wrong.text and "Wrong username or password." in unknown.text
    assert COOKIE_NAME not in wrong.headers.get("set-cookie", "")


def test_logged_in_user_visiting_login_goes_on(client: Client) -> None:
    """No second login form for someone already signed in."""
    client.login("viewer")
    assert client.get("/login?next=/dyads").headers["location"] == "/dyads"


def test_login_logout_and_failures_are_audited_without_secrets(
    app, db: Session, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """Who, what, when (UTC) and from where, for every security event; never a password or token."""
    caplog.set_level(logging.INFO, logger="signalboard")
    user = make_user(db, "viewer")
    db.commit()
    client = ip_client(app, db)
    web_login(client, user.username, "Secret-Wrong-Pass-77")
    response = web_login(client, user.username)
    session_token = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    client.http.cookies.clear()
    client.http.cookies.set(COOKIE_NAME, session_token)
    csrf = csrf_from(client.get("/account").text)
    client.post("/logout", data={"csrf_token": csrf})

    failed, ok, out = audit(db, "login_failed"), audit(db, "login"), audit(db, "logout")
    assert [e.changes.get("username") for e in failed] == [user.username]
    assert ok[0].username == user.username and ok[0].user_id == user.id and out[0].username == user.username
    for entry in (*failed, *ok, *out):
        assert entry.ip == IP
        assert entry.at.utcoffset() is not None
    rows = db.execute(text("SELECT row_to_json(a)::text FROM audit_log a")).scalars().all()
    everything = "\n".join(rows) + "\n" + caplog.text
    for secret in ("Secret-Wrong-Pass-77", PASSWORD, session_token, csrf):
        assert secret not in everything
    assert "login_failed" in caplog.text and "logout" in caplog.text


def test_permission_denials_are_audited(
    client: Client, db: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """A viewer opening an admin page: 403, and an audit row saying who tried what."""
    caplog.set_level(logging.INFO, logger="signalboard")
    viewer = client.login("viewer")
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "Not allowed" in response.text
    entry = audit(db, "denied")[-1]
    assert entry.username == viewer.username
    assert entry.changes == {"needs": "admin", "role": "viewer", "method": "GET", "path": "/admin/users"}
    assert "denied" in caplog.text


# ---- rate limits -------------------------------------------------------------------------------


def test_failed_logins_per_account_are_limited(app, db: Session) -> None:  # type: ignore[no-untyped-def]
    """After N failures the account answers 429 with Retry-After, even to the right password."""
    user = make_user(db, "viewer")
    db.commit()
    limit = get_settings().login_max_failures
    for _ in range(limit):
        assert (
            web_login(ip_client(app, db, f"198.51.100.{_ + 1}"), user.username, "bad-password-xx").status_code
            == 401
        )
    blocked = web_login(ip_client(app, db, "198.51.100.200"), user.username)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many failed attempts" in blocked.text
    assert audit(db, "login_throttled")


def test_failed_logins_per_address_are_limited(app, db: Session) -> None:  # type: ignore[no-untyped-def]
    """One address guessing across many accounts is stopped too."""
    from app.auth.ratelimit import PER_ADDRESS_FACTOR

    limit = get_settings().login_max_failures * PER_ADDRESS_FACTOR
    client = ip_client(app, db)
    for i in range(limit):
        assert web_login(client, f"guess-{i}", "bad-password-xx").status_code == 401
    user = make_user(db, "viewer")
    db.commit()
    assert web_login(client, user.username).status_code == 429
    # Another address is not affected.
    assert web_login(ip_client(app, db, "192.0.2.77"), user.username).status_code == 303


def test_success_clears_the_account_failures(app, db: Session) -> None:  # type: ignore[no-untyped-def]
    """A user who mistyped a few times and then got in starts from zero."""
    user = make_user(db, "viewer")
    db.commit()
    limit = get_settings().login_max_failures
    for _ in range(limit - 1):
        web_login(ip_client(app, db), user.username, "bad-password-xx")
    assert web_login(ip_client(app, db), user.username).status_code == 303
    for _ in range(limit - 1):
        web_login(ip_client(app, db, "192.0.2.5"), user.username, "bad-password-xx")
    assert web_login(ip_client(app, db, "192.0.2.6"), user.username).status_code == 303


# ---- first admin and the forced password change ------------------------------------------------


def test_first_admin_must_change_the_one_time_password(client: Client, db: Session) -> None:
    """The bootstrap admin logs in, is held on the password page, then reaches the site."""
    db.execute(delete(User))
    password = ensure_first_admin(db)
    assert password and len(password) >= 16
    assert ensure_first_admin(db) is None  # only once
    response = web_login(client, "admin", password)
    assert response.headers["location"] == "/account/password"
    token = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    client.http.cookies.clear()
    client.http.cookies.set(COOKIE_NAME, token)
    for path in ("/", "/admin/users", "/account"):
        held = client.get(path)
        assert held.status_code == 303 and held.headers["location"] == "/account/password", path
    page = client.get("/account/password")
    assert "one-time password" in page.text
    csrf = csrf_from(page.text)
    weak = client.post(
        "/account/password",
        data={"current": password, "new": "password1234", "confirm": "password1234", "csrf_token": csrf},
    )
    assert weak.status_code == 422 and "too common" in weak.text and 'aria-invalid="true"' in weak.text
    new = "harbour-lantern-ochre-41"
    done = client.post(
        "/account/password", data={"current": password, "new": new, "confirm": new, "csrf_token": csrf}
    )
    assert done.status_code == 303
    fresh = done.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert fresh != token  # password change rotates the session
    client.http.cookies.clear()
    client.http.cookies.set(COOKIE_NAME, fresh)
    assert client.get("/").status_code == 200
    admin = db.scalars(select(User).where(User.username == "admin")).one()
    assert not admin.must_change_password and verify_password(admin.password_hash, new)
    assert audit(db, "password_changed")


def test_change_password_checks_the_current_one(client: Client, db: Session) -> None:
    """Wrong current password or mismatched confirmation: 422 with the error beside the field."""
    client.login("viewer")
    r = client.post(
        "/account/password",
        data={"current": "nope", "new": "lantern-harbour-99x", "confirm": "other-thing-12345"},
    )
    assert r.status_code == 422
    assert 'id="current-error"' in r.text


def test_serve_prints_the_one_time_password_once(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    """`signalboard serve` prepares the database and prints the first admin's password once."""
    from app.cli.core import prepare_database
    from tests.conftest import truncate_all

    truncate_all(engine)
    try:
        prepare_database(seed=False)
        first = capsys.readouterr().err
        match = re.search(r"one-time password:\s+(\S+)", first)
        assert match, first
        prepare_database(seed=False)
        assert "one-time password" not in capsys.readouterr().err
        with Session(engine) as s:
            admin = s.scalars(select(User).where(User.username == "admin")).one()
            assert admin.role == "admin" and admin.must_change_password
            assert verify_password(admin.password_hash, match.group(1))
    finally:
        truncate_all(engine)


def test_create_user_command(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`signalboard create-user` reads the password from stdin and applies the password rules."""
    from app.cli import main

    try:
        monkeypatch.setattr("sys.stdin", io.StringIO("password1234\n"))
        assert main(["create-user", "--username", "cli-user", "--role", "viewer", "--password-stdin"]) == 2
        assert "too common" in capsys.readouterr().err
        monkeypatch.setattr("sys.stdin", io.StringIO("quartz-meadow-lantern-7\n"))
        assert main(["create-user", "--username", "bad name!", "--role", "viewer"]) == 2
        monkeypatch.setattr("sys.stdin", io.StringIO("quartz-meadow-lantern-7\n"))
        assert main(["create-user", "--username", "cli-user", "--role", "viewer"]) == 0
        monkeypatch.setattr("sys.stdin", io.StringIO("quartz-meadow-lantern-7\n"))
        assert main(["create-user", "--username", "CLI-USER", "--role", "viewer"]) == 2  # taken (any case)
        with Session(engine) as s:
            user = s.scalars(select(User).where(User.username == "cli-user")).one()
            assert user.role == "viewer" and verify_password(user.password_hash, "quartz-meadow-lantern-7")
    finally:
        with engine.begin() as conn:
            conn.execute(delete(AuditEntry))
            conn.execute(delete(User).where(func.lower(User.username) == "cli-user"))


# ---- admin: users ------------------------------------------------------------------------------


def test_admin_creates_a_user_with_a_one_time_password(client: Client, db: Session) -> None:
    """The password is shown once; the new user must change it at first login."""
    client.login("admin")
    r = client.post("/admin/users", data={"username": "new.analyst", "role": "analyst"})
    assert r.status_code == 200
    password = re.search(r'id="one-time-password" class="token-value" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    user = db.scalars(select(User).where(User.username == "new.analyst")).one()
    assert (
        user.role == "analyst" and user.must_change_password and verify_password(user.password_hash, password)
    )
    assert password not in client.get("/admin/users").text  # never shown again
    other = Client(client.http.app, db)
    assert web_login(other, "new.analyst", password).headers["location"] == "/account/password"
    rows = db.execute(text("SELECT row_to_json(a)::text FROM audit_log a")).scalars().all()
    assert not any(password in row for row in rows)


def test_admin_create_user_errors_keep_the_input(client: Client, db: Session) -> None:
    """A bad or taken name: 422, the typed value back, the error beside the field."""
    admin = client.login("admin")
    r = client.post("/admin/users", data={"username": "bad name<>", "role": "viewer"})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text and "bad name&lt;&gt;" in r.text
    r = client.post("/admin/users", data={"username": admin.username.upper(), "role": "viewer"})
    assert r.status_code == 422 and "taken" in r.text
    r = client.post("/admin/users", data={"username": "fine-name", "role": "emperor"})
    assert r.status_code == 422


def test_admin_changes_role_disables_enables_and_resets(client: Client, db: Session) -> None:
    """Each change is applied, audited, and a reset ends the user's sessions."""
    client.login("admin")
    target = make_user(db, "viewer")
    db.commit()
    assert client.post(f"/admin/users/{target.id}/role", data={"role": "analyst"}).status_code == 303
    db.refresh(target)
    assert target.role == "analyst"
    assert client.post(f"/admin/users/{target.id}/disable").status_code == 303
    db.refresh(target)
    assert not target.is_active
    assert "disabled" in client.get("/admin/users").text
    assert client.post(f"/admin/users/{target.id}/enable").status_code == 303
    db.refresh(target)
    assert target.is_active
    from app.auth.sessions import start_session

    start_session(db, target, None, "x")
    db.commit()
    r = client.post(f"/admin/users/{target.id}/reset-password")
    assert r.status_code == 200 and 'id="one-time-password"' in r.text
    db.refresh(target)
    assert target.must_change_password
    assert (
        db.scalar(select(func.count()).select_from(UserSession).where(UserSession.user_id == target.id)) == 0
    )
    changes = [
        e.changes
        for e in db.scalars(
            select(AuditEntry).where(AuditEntry.entity_type == "user", AuditEntry.entity_id == target.id)
        )
    ]
    assert {"role": {"before": "viewer", "after": "analyst"}} in changes
    assert client.post("/admin/users/999999/disable").status_code == 404


def test_admin_cannot_lock_themselves_out(client: Client, db: Session) -> None:
    """No demoting or disabling one's own account (another admin must do it)."""
    me = client.login("admin")
    assert client.post(f"/admin/users/{me.id}/role", data={"role": "viewer"}).status_code == 422
    assert client.post(f"/admin/users/{me.id}/disable").status_code == 422
    db.refresh(me)
    assert me.role == "admin" and me.is_active


# ---- account page and personal access tokens ---------------------------------------------------


def test_account_page_shows_name_role_and_password_link(client: Client) -> None:
    """Who you are and where to change your password."""
    user = client.login("analyst")
    page = client.get("/account")
    assert page.status_code == 200
    assert user.username in page.text and "analyst" in page.text and 'href="/account/password"' in page.text
    assert "No tokens yet" in page.text


def test_personal_access_token_lifecycle(client: Client, db: Session) -> None:
    """Create (shown once, stored hashed), list with prefix and last use, use with Bearer, revoke → 401."""
    user = client.login("viewer")
    r = client.post("/account/tokens", data={"name": "nightly <export>"})
    assert r.status_code == 200
    raw = re.search(r'id="new-token" class="token-value" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    assert raw.startswith("sb_") and len(raw) > 40
    assert "nightly &lt;export&gt;" in r.text
    stored = db.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert stored.token_hash != raw and raw not in stored.token_hash and stored.prefix == raw[:11]
    listing = client.get("/account").text
    assert raw not in listing and stored.prefix in listing and "never" in listing

    api = Client(client.http.app, db)
    assert api.get("/", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    db.refresh(stored)
    assert stored.last_used_at is not None

    assert client.post(f"/account/tokens/{stored.id}/revoke").status_code == 303
    assert api.get("/", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert stored.prefix not in client.get("/account").text
    assert client.post(f"/account/tokens/{stored.id}/revoke").status_code == 404
    rows = db.execute(text("SELECT row_to_json(a)::text FROM audit_log a")).scalars().all()
    assert not any(raw in row for row in rows)


def test_token_name_is_required(client: Client) -> None:
    """An empty name re-renders the form with the error beside the field (422)."""
    client.login("viewer")
    r = client.post("/account/tokens", data={"name": "  "})
    assert r.status_code == 422 and 'id="token-name-error"' in r.text


def test_a_second_live_token_of_the_same_name_is_refused(client: Client, db: Session) -> None:
    """A reload of the page that showed a new token re-posts its form: it must not make a second one."""
    user = client.login("viewer")
    assert client.post("/account/tokens", data={"name": "nightly"}).status_code == 200
    again = client.post("/account/tokens", data={"name": "Nightly"})
    assert again.status_code == 422 and "already have a token named" in html.unescape(again.text)
    assert 'id="new-token"' not in again.text
    stored = db.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).all()
    assert len(stored) == 1
    assert client.post(f"/account/tokens/{stored[0].id}/revoke").status_code == 303
    assert client.post("/account/tokens", data={"name": "nightly"}).status_code == 200  # once revoked


def test_cannot_revoke_someone_elses_token(client: Client, db: Session) -> None:
    """Tokens are per user: another user's token id is a 404 and stays live."""
    from app.auth.accounts import create_token

    owner = make_user(db, "viewer")
    token, _ = create_token(db, owner, "theirs")
    db.commit()
    client.login("admin")
    assert client.post(f"/account/tokens/{token.id}/revoke").status_code == 404
    db.refresh(token)
    assert token.revoked_at is None


@pytest.mark.parametrize(
    ("kind", "path", "done"),
    [
        ("token", "/account/tokens", "/account?done=revoked"),
        ("feed_token", "/account/feed-tokens", "/account?done=feed-revoked#feed-tokens"),
    ],
)
def test_revoking_either_kind_of_token(client: Client, db: Session, kind: str, path: str, done: str) -> None:
    """Revoke goes back to the account page and is logged; again, or another user's token, is a 404."""
    from app.auth.accounts import create_token
    from app.auth.feed_tokens import create_feed_token

    make = create_token if kind == "token" else create_feed_token
    other, _ = make(db, make_user(db, "viewer"), "theirs")
    db.commit()
    user = client.login("analyst")
    mine, _ = make(db, user, "mine")
    db.commit()
    r = client.post(f"{path}/{mine.id}/revoke")
    assert r.status_code == 303 and r.headers["location"] == done
    db.refresh(mine)
    assert mine.revoked_at is not None
    logged = db.scalars(select(AuditEntry).where(AuditEntry.action == f"{kind}_revoked")).one()
    assert logged.user_id == user.id and logged.changes["token_id"] == mine.id
    assert client.post(f"{path}/{mine.id}/revoke").status_code == 404
    assert client.post(f"{path}/{other.id}/revoke").status_code == 404
    db.refresh(other)
    assert other.revoked_at is None


def test_disabled_users_token_stops_working(client: Client, db: Session) -> None:
    """Disabling an account also cuts off its scripts."""
    from app.auth.accounts import create_token

    owner = make_user(db, "viewer")
    _, raw = create_token(db, owner, "script")
    db.commit()
    assert client.get("/", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    owner.is_active = False
    db.commit()
    assert client.get("/", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_failures_expire_with_the_window_and_old_rows_are_pruned(
    app, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Once the window has passed the account may try again; day-old attempt rows are deleted."""
    from datetime import UTC, datetime, timedelta

    from app.domain import clock
    from app.models import LoginAttempt

    now = [datetime(2026, 5, 1, 12, 0, tzinfo=UTC)]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])
    user = make_user(db, "viewer")
    db.commit()
    settings = get_settings()
    for _ in range(settings.login_max_failures):
        web_login(ip_client(app, db), user.username, "bad-password-xx")
    assert web_login(ip_client(app, db), user.username).status_code == 429
    now[0] += timedelta(minutes=settings.login_window_minutes + 1)
    assert web_login(ip_client(app, db), user.username).status_code == 303
    now[0] += timedelta(days=2)
    web_login(ip_client(app, db), user.username, "bad-password-xx")
    ages = db.scalars(select(LoginAttempt.at).where(LoginAttempt.username == user.username)).all()
    assert ages == [now[0]]
