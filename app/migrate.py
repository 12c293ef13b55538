"""Run Alembic migrations from code: `signalboard db upgrade`, app start-up and tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at migrations/, optionally bound to an open connection."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: Connection | None = None, revision: str = "head") -> None:
    """Upgrade the database to a revision (head by default)."""
    command.upgrade(alembic_config(connection), revision)


def downgrade(connection: Connection | None = None, revision: str = "base") -> None:
    """Downgrade the database to a revision (base by default)."""
    command.downgrade(alembic_config(connection), revision)


def current_revision() -> str | None:
    """The revision the app's database is at (None before the first migration)."""
    from alembic.migration import MigrationContext

    from app.db import get_engine

    with get_engine().connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
