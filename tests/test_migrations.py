"""Alembic: head matches the models exactly, and downgrade/upgrade round-trips."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url

from app import migrate
from app.models import Base
from tests.conftest import _SERVER_URL, _admin_engine


@pytest.fixture
def scratch_engine() -> Iterator[Engine]:
    """An empty database of its own, dropped afterwards."""
    name = f"signalboard_mig_{secrets.token_hex(4)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = create_engine(make_url(_SERVER_URL).set(database=name))
    yield eng
    eng.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_head_has_no_autogenerate_diff(scratch_engine: Engine) -> None:
    with scratch_engine.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_and_upgrade_round_trip(scratch_engine: Engine) -> None:
    with scratch_engine.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
        tables = set(inspect(conn).get_table_names())
        assert {"events", "sources", "actors", "systems", "countries", "audit_log", "users"} <= tables
        migrate.downgrade(conn, "base")
        conn.commit()
    with scratch_engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(conn)
        conn.commit()
        assert conn.scalar(text("SELECT count(*) FROM countries")) == 249
        assert conn.scalar(text("SELECT name FROM countries WHERE code = 'RUS'")) == "Russia"


def test_0007_moves_denials_on_the_default_stage_to_zero(scratch_engine: Engine) -> None:
    """Down to 0006 a denial sits on stage 1; 0007 moves it to 0 and keeps an analyst's override."""
    from sqlalchemy.orm import Session

    from tests.factories import make_event

    with scratch_engine.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
    with Session(scratch_engine) as s:
        ids = {
            "denial": make_event(s, kind="denial").id,
            "overridden": make_event(s, kind="denial", stage_override=3).id,
            "statement": make_event(s, kind="statement").id,
        }
        s.commit()

    def stages() -> dict[str, int]:
        with scratch_engine.connect() as conn:
            rows = {int(i): int(stage) for i, stage in conn.execute(text("SELECT id, stage FROM events"))}
        return {key: rows[i] for key, i in ids.items()}

    assert stages() == {"denial": 0, "overridden": 3, "statement": 1}
    with scratch_engine.connect() as conn:
        migrate.downgrade(conn, "0006")
        conn.commit()
    assert stages() == {"denial": 1, "overridden": 3, "statement": 1}
    with scratch_engine.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert stages() == {"denial": 0, "overridden": 3, "statement": 1}
