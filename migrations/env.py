"""Alembic environment: runs migrations on the app's engine (or a connection handed in by tests)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Skip objects that extensions own (pg_trgm functions never appear, but be explicit)."""
    return not (type_ == "table" and name in {"spatial_ref_sys"})


def run(connection: Connection) -> None:
    """Configure the context on a connection and run the migrations in one transaction."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Use a connection from config.attributes when given, else the app's engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    from app.db import get_engine

    with get_engine().connect() as conn:
        run(conn)
        conn.commit()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `signalboard db upgrade`")
run_online()
