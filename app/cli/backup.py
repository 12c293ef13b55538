"""`signalboard backup FILE` and `signalboard restore FILE [--yes]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import text


def _row_count(table: str) -> int | None:
    """Rows of one of the app's tables in the configured database, or None when it has no schema yet."""
    from sqlalchemy.exc import ProgrammingError

    from app.db import get_engine

    engine = get_engine()
    try:
        with engine.connect() as conn:
            return int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
    except ProgrammingError:
        return None
    finally:
        engine.dispose()  # pg_restore --clean must not wait behind our own idle connection


def event_count() -> int | None:
    """Events in the configured database, or None when it has no schema yet."""
    return _row_count("events")


def account_count() -> int | None:
    """User accounts in the configured database, or None when it has no schema yet."""
    return _row_count("users")


def ask_first(warning: str, cancelled: str) -> int | None:
    """Ask before destroying data: None to go on, else the exit code (2 without a terminal, 1 on no).

    Without a terminal nobody can answer, so the command refuses and names `--yes` instead of guessing.
    """
    if not sys.stdin.isatty():
        print(f"error: {warning} Pass --yes to confirm.", file=sys.stderr)
        return 2
    if input(f"{warning} Continue? [y/N] ").strip().lower() not in {"y", "yes"}:
        print(cancelled, file=sys.stderr)
        return 1
    return None


def cmd_backup(args: argparse.Namespace) -> int:
    """Dump the configured database to FILE (pg_dump custom format)."""
    from app.db import database_url, safe_url
    from app.services.backup import BackupError, backup

    try:
        backup(database_url(), Path(args.file))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = Path(args.file).stat().st_size
    print(f"backed up {safe_url(database_url())} to {args.file} ({size:,} bytes)", file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Replace the configured database's contents with FILE, in one transaction."""
    from app.db import database_url, safe_url
    from app.services.backup import BackupError, restore

    if not Path(args.file).is_file():
        print(f"error: no such backup file: {args.file}", file=sys.stderr)
        return 2
    events = event_count()
    if events and not args.yes:
        refused = ask_first(
            f"{safe_url(database_url())} holds {events} event(s); the restore replaces ALL its data.",
            "restore cancelled; nothing changed",
        )
        if refused is not None:
            return refused
    try:
        restore(database_url(), Path(args.file))
    except BackupError as exc:
        print(f"error: {exc}\nThe restore ran in one transaction: nothing was changed.", file=sys.stderr)
        return 1
    print(
        f"restored {args.file} into {safe_url(database_url())}; "
        "run `signalboard db upgrade` if the backup came from an older version",
        file=sys.stderr,
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the backup and restore verbs."""
    p = sub.add_parser("backup", help="dump the database to FILE (pg_dump custom format)")
    p.add_argument("file", help="where to write the backup, e.g. signalboard-2025-11-26.dump")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="replace the database's contents with a backup, all or nothing")
    p.add_argument("file", help="a file written by `signalboard backup`")
    p.add_argument("--yes", action="store_true", help="do not ask before replacing existing data")
    p.set_defaults(func=cmd_restore)
