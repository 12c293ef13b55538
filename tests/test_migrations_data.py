"""Migrations on real data: demo data plus 10,000 synthetic events survive a downgrade and upgrade."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app import migrate
from app.demo import seed_demo
from app.models import Base
from app.queries.transfer import export_lines
from tests.test_backup import fingerprints, scratch_database

pytestmark = [pytest.mark.migration_data, pytest.mark.slow]

SYNTHETIC_EVENTS = 10_000
# Marker rows of the data version (app/queries/aggregates/data_version.py): a downgrade past 0003 drops
# them by design; they
# carry no data (only the newest id is compared, and an emptied table still reads as a new version).
MARKERS = "data_changes"


def user_data(fingerprint: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    """Fingerprints of every table but the data-version markers."""
    return {table: value for table, value in fingerprint.items() if table != MARKERS}


def libpq(engine: Engine) -> str:
    """The engine's URL as a plain libpq connection string (for psycopg / COPY)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def full_db() -> Iterator[Engine]:
    """A database at head with the demo data and 10,000 synthetic events."""
    from app.demo.synthetic import seed_synthetic

    with scratch_database("signalboard_migdata") as eng:
        with eng.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
        with Session(eng) as s:
            seed_demo(s)
            s.commit()
        result = seed_synthetic(libpq(eng), SYNTHETIC_EVENTS, seed=8)
        assert result.events == SYNTHETIC_EVENTS
        export_lines.remake(eng)  # as `signalboard seed-synthetic` does: every event has its line
        yield eng


def revisions() -> tuple[str, list[str]]:
    """The head revision and every revision from head down to (excluding) the base one."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    head = script.get_current_head()
    assert head is not None
    chain = [rev.revision for rev in script.walk_revisions("base", head)]  # head first
    return head, chain


def current(engine: Engine) -> str | None:
    """The revision the database is at."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def assert_schema_matches_models(engine: Engine) -> None:
    """After the round trip, head is exactly what the models declare (indexes included)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_data_is_really_there(full_db: Engine) -> None:
    with full_db.connect() as conn:
        events = conn.scalar(text("SELECT count(*) FROM events"))
        sources = conn.scalar(text("SELECT count(*) FROM sources"))
    assert events is not None and events >= SYNTHETIC_EVENTS + 10
    assert sources is not None and sources >= SYNTHETIC_EVENTS


def forget_trust(engine: Engine) -> None:
    """Drop what a step down past 0013 loses by design (relays, origin aliases, likelihood, confidence):
    once down and up again, so the data is what a round trip keeps."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    (trust,) = [r for r in script.walk_revisions() if (r.doc or "").startswith("Trust: an origins catalogue")]
    below = trust.down_revision
    assert isinstance(below, str)
    with engine.connect() as conn:
        migrate.downgrade(conn, below)
        conn.commit()
        migrate.upgrade(conn)
        conn.commit()
    export_lines.remake(engine)


def test_downgrade_one_step_and_upgrade_keeps_every_row(full_db: Engine) -> None:
    head, chain = revisions()
    if len(chain) < 2:
        # Only the initial migration exists: its downgrade drops the whole schema by design, so there is
        # no data-preserving step to exercise yet (the empty round trip is in test_migrations.py).
        pytest.skip(f"head {head} is the initial migration; no non-destructive step to test yet")
    forget_watch(full_db)
    forget_trust(full_db)
    with full_db.connect() as conn:
        before = fingerprints(conn)

    with full_db.connect() as conn:
        migrate.downgrade(conn, "-1")
        conn.commit()
    assert current(full_db) == chain[1]
    with full_db.connect() as conn:
        after_downgrade = fingerprints(conn)
    # Rows survive the downgrade itself (alembic_version aside), not only the way back up.
    for table, (count, _) in before.items():
        if table != "alembic_version" and table in after_downgrade:
            assert after_downgrade[table][0] == count, table

    with full_db.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
    export_lines.remake(full_db)  # what `signalboard db upgrade` runs after migrating
    assert current(full_db) == head
    with full_db.connect() as conn:
        assert user_data(fingerprints(conn)) == user_data(before)
    assert_schema_matches_models(full_db)


def forget_families(engine: Engine) -> None:
    """Clear the system families, the one thing a step down (0011's, dropping `parent_id`) loses by design.

    The demo data names a few; the command line asks before any downgrade of a database holding events.
    """
    from app.queries.search_document import refresh_documents

    with Session(engine) as s:
        s.execute(text("UPDATE systems SET parent_id = NULL WHERE parent_id IS NOT NULL"))
        refresh_documents(s)  # the variants' events no longer carry their ancestors' names
        s.commit()


def forget_watch(engine: Engine) -> None:
    """Review clocks back at creation and no links between events: what a step below 0015 loses by design."""
    from app.queries.transfer.export_lines import store_lines

    with Session(engine) as s:
        s.execute(text("UPDATE events SET review_clock_at = created_at WHERE review_clock_at <> created_at"))
        sources = list(s.scalars(text("DELETE FROM event_links RETURNING source_id")))
        store_lines(s, sources)  # their lines lose the links cell
        s.commit()


def test_every_non_destructive_step_round_trips(full_db: Engine) -> None:
    """Down to the first revision above the initial schema, then back to head: nothing lost."""
    head, chain = revisions()
    if len(chain) < 2:
        pytest.skip(f"head {head} is the initial migration; no non-destructive step to test yet")
    initial = chain[-1]
    forget_families(full_db)
    forget_watch(full_db)
    forget_trust(full_db)
    with full_db.connect() as conn:
        before = fingerprints(conn)
        migrate.downgrade(conn, initial)
        conn.commit()
    assert current(full_db) == initial
    with full_db.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
    export_lines.remake(full_db)  # what `signalboard db upgrade` runs after migrating (below 0004: all)
    with full_db.connect() as conn:
        assert user_data(fingerprints(conn)) == user_data(before)
    assert_schema_matches_models(full_db)
