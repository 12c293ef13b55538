"""Core verbs: serve, db upgrade/downgrade, seed-demo, create-user."""

from __future__ import annotations

import argparse
import copy
import getpass
import logging
import signal
import sys
from types import FrameType

from sqlalchemy import func, select

log = logging.getLogger("signalboard")


def prepare_database(*, seed: bool) -> None:
    """Upgrade the schema, load demo data on a first run, and create the first admin if none exists."""
    from app import migrate
    from app.auth.bootstrap import ensure_first_admin
    from app.config import get_settings
    from app.db import database_url, safe_url, session_factory
    from app.models import Event

    log.info("database ready: %s", safe_url(database_url()))
    before = migrate.current_revision()
    migrate.upgrade()
    after = migrate.current_revision()
    log.info("schema: %s", f"upgraded {before or 'empty'} -> {after}" if before != after else f"at {after}")
    with session_factory()() as db:
        if seed and get_settings().seed_demo_on_first_run and not db.scalar(select(func.count(Event.id))):
            from app.demo import seed_demo

            added = seed_demo(db)
            db.commit()
            log.info("loaded %d demo events", added)
        password = ensure_first_admin(db)
    if password:
        # Printed once, to the console only (never to the log file): the admin must change it at first login.
        print(
            "\n  First start: created user 'admin' with one-time password:\n\n"
            f"      {password}\n\n  You will be asked to choose a new password after logging in.\n",
            file=sys.stderr,
            flush=True,
        )


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web app with uvicorn."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from app.config import get_settings

    settings = get_settings()
    prepare_database(seed=True)
    host = args.host or settings.host
    port = args.port or settings.port
    print(f"  Signalboard is at http://{host}:{port}/  (Ctrl+C stops it)", file=sys.stderr, flush=True)
    # uvicorn's own start lines repeat the address above; its warnings, errors and access log stay.
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["uvicorn.error"] = {"level": "WARNING"}
    # uvicorn re-raises the SIGTERM it shut down on (kill, systemd, docker stop); by default that ends the
    # process at once, skipping main()'s `finally` and leaving the embedded PostgreSQL running.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        proxy_headers=True,
        log_config=log_config,
    )
    return 0


def remake_lines() -> None:
    """Make the export lines that lack the current format version, saying how far it got."""
    import time

    from app.db import get_engine
    from app.queries.transfer.export_lines import remake

    began = time.monotonic()

    def progress(made: int) -> None:
        print(f"\r  export lines: {made:,} made", end="", file=sys.stderr, flush=True)

    made = remake(get_engine(), progress=progress)
    if made:
        print(f"\n  export lines: {made:,} made in {time.monotonic() - began:.1f} s", file=sys.stderr)


def cmd_db(args: argparse.Namespace) -> int:
    """Migrate the schema."""
    from app import migrate

    if args.action == "upgrade":
        migrate.upgrade(revision=args.revision or "head")
        remake_lines()
    else:
        revision = args.revision or "-1"
        if not args.yes:
            refused = _ask_before_downgrade(revision)
            if refused is not None:
                return refused
        migrate.downgrade(revision=revision)
    print(f"database {args.action} done", file=sys.stderr)
    return 0


def _ask_before_downgrade(revision: str) -> int | None:
    """A downgrade drops the tables and columns its steps added: ask first when the database holds events
    or accounts (an instance without events yet still has its users, their API tokens and the audit log)."""
    from app.cli.backup import account_count, ask_first, event_count
    from app.db import database_url, safe_url

    events, accounts = event_count(), account_count()
    if not events and not accounts:
        return None
    reach = "EVERY table and all of its data" if revision == "base" else "tables or columns and their data"
    return ask_first(
        f"{safe_url(database_url())} holds {events or 0} event(s) and {accounts or 0} account(s); "
        f"downgrading to {revision} drops {reach}.",
        "downgrade cancelled; nothing changed",
    )


def cmd_seed_demo(args: argparse.Namespace) -> int:
    """Load the demo events (idempotent)."""
    from app import migrate
    from app.db import session_factory
    from app.demo import seed_demo

    migrate.upgrade()
    with session_factory()() as db:
        added = seed_demo(db)
        db.commit()
    print(f"demo data: {added} event(s) added", file=sys.stderr)
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    """Create an account; the password comes from a prompt, or from stdin with --password-stdin."""
    from app.auth.passwords import hash_password, password_problem
    from app.db import session_factory
    from app.models import User
    from app.services.audit import record

    if args.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 2
    from app.auth.accounts import USERNAME_RE

    if not USERNAME_RE.match(args.username):  # checked here so the database constraint never fires
        print("error: use 2-64 letters, digits, . - _ or @ in the username", file=sys.stderr)
        return 2
    problem = password_problem(password, args.username)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with session_factory()() as db:
        if db.scalar(select(User.id).where(func.lower(User.username) == args.username.lower())):
            print(f"error: user {args.username!r} already exists", file=sys.stderr)
            return 2
        user = User(username=args.username, password_hash=hash_password(password), role=args.role)
        db.add(user)
        db.flush()
        record(
            db,
            None,
            "create",
            "user",
            user.id,
            {
                "username": {"before": None, "after": args.username},
                "role": {"before": None, "after": args.role},
            },
        )
        db.commit()
    print(f"created {args.role} {args.username}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add serve, db, seed-demo and create-user."""
    p = sub.add_parser("serve", help="run the web app (embedded PostgreSQL when DATABASE_URL is unset)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "db",
        help="schema migrations",
        description="Upgrade the schema (to head by default) or downgrade it (one step by default; `base` "
        "drops every table). A downgrade of a database holding events or accounts asks first, or needs "
        "--yes; without a terminal and without --yes it refuses (exit 2).",
    )
    p.add_argument("action", choices=["upgrade", "downgrade"])
    p.add_argument("revision", nargs="?", help="target revision (upgrade: head; downgrade: -1)")
    p.add_argument(
        "--yes", action="store_true", help="downgrade without asking, even if that drops tables holding data"
    )
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("seed-demo", help="load the demo events (twice loads once)")
    p.set_defaults(func=cmd_seed_demo)

    p = sub.add_parser("create-user", help="create an account")
    p.add_argument("--username", required=True)
    p.add_argument("--role", choices=["viewer", "analyst", "admin"], default="analyst")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_create_user)
