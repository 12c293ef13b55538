"""seed-synthetic: constraints hold (PostgreSQL enforces them), the mix looks like reporting, seeds repeat."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.cli import main as cli_main
from app.demo import synthetic
from app.demo.synthetic import seed_synthetic
from app.services.events import refresh_search
from tests.conftest import TEST_DB_URL, truncate_all
from tests.factories import make_event

CONNINFO = TEST_DB_URL.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def seeded(engine: Engine) -> Iterator[Engine]:
    """2,000 synthetic events committed to the test database (seed 7), removed afterwards."""
    truncate_all(engine)
    seed_synthetic(CONNINFO, 2000, seed=7, batch_size=700)
    yield engine
    truncate_all(engine)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_counts_and_links(seeded: Engine) -> None:
    assert scalar(seeded, "SELECT count(*) FROM events") == 2000
    assert scalar(seeded, "SELECT min(id) || '-' || max(id) FROM events") == "1-2000"
    # Every event names its supplier and recipient; links stay within what the schema allows.
    assert (
        scalar(seeded, "SELECT count(DISTINCT event_id) FROM event_countries WHERE role = 'supplier'") == 2000
    )
    assert (
        scalar(seeded, "SELECT count(DISTINCT event_id) FROM event_countries WHERE role = 'recipient'")
        == 2000
    )
    per_event = "SELECT max(n) FROM (SELECT count(*) AS n FROM sources GROUP BY event_id) x"
    assert scalar(seeded, per_event) <= 4
    no_sources = scalar(
        seeded,
        "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM sources s WHERE s.event_id = e.id)",
    )
    assert 40 < no_sources < 350  # about 8 %
    assert 200 <= scalar(seeded, "SELECT count(*) FROM actors") <= 400
    assert 200 <= scalar(seeded, "SELECT count(*) FROM systems") <= 400
    assert scalar(seeded, "SELECT count(DISTINCT actor_id) FROM event_actors") > 100


def test_distribution_looks_like_reporting(seeded: Engine) -> None:
    with seeded.connect() as conn:
        kinds: dict[str, int] = dict(
            conn.execute(text("SELECT kind, count(*) FROM events GROUP BY kind")).all()
        )
        precisions: dict[str, int] = dict(
            conn.execute(text("SELECT date_precision, count(*) FROM events GROUP BY 1")).all()
        )
        suppliers: dict[str, int] = dict(
            conn.execute(
                text("SELECT country_code, count(*) FROM event_countries WHERE role = 'supplier' GROUP BY 1")
            ).all()
        )
        years = conn.execute(text("SELECT min(date_start), max(date_start) FROM events")).one()
        dyads = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT DISTINCT s.country_code, r.country_code FROM event_countries s "
                "JOIN event_countries r ON r.event_id = s.event_id AND r.role = 'recipient' "
                "WHERE s.role = 'supplier') d"
            )
        ).scalar()
        title_len = conn.execute(text("SELECT avg(length(title)), avg(length(summary)) FROM events")).one()
    assert max(kinds, key=lambda k: kinds[k]) == "statement"
    assert len(kinds) == 14
    assert 0.2 < (precisions.get("month", 0) + precisions.get("year", 0)) / 2000 < 0.45
    assert {"RUS", "IRN", "USA", "CHN", "PRK"} <= set(suppliers)
    assert suppliers["RUS"] > suppliers.get("FRA", 0)
    assert (years[1] - years[0]).days > 12 * 365
    assert dyads is not None and dyads >= 30
    assert 20 < title_len[0] < 90 and 80 < title_len[1] < 800


def test_search_vector_matches_refresh_search(seeded: Engine) -> None:
    assert scalar(seeded, "SELECT count(*) FROM events WHERE search_vector IS NULL") == 0
    with Session(seeded) as s:
        before: dict[int, str] = dict(
            s.execute(text("SELECT id, strip(search_vector)::text FROM events WHERE id <= 50")).all()
        )
        refresh_search(s, list(range(1, 51)))
        after: dict[int, str] = dict(
            s.execute(text("SELECT id, strip(search_vector)::text FROM events WHERE id <= 50")).all()
        )
        s.rollback()
    assert before == after
    # And the timeline's full-text filter finds synthetic text.
    assert (
        scalar(
            seeded,
            "SELECT count(*) FROM events WHERE search_vector @@ websearch_to_tsquery('english', 'drones')",
        )
        > 0
    )


def test_sequences_continue_after_the_seed(seeded: Engine) -> None:
    with Session(seeded) as s:
        event = make_event(s)
        s.flush()
        assert event.id == 2001
        s.rollback()


def test_same_seed_same_rows_other_seed_other_rows(seeded: Engine) -> None:
    actors = scalar(seeded, "SELECT count(*) FROM actors")
    seed_synthetic(CONNINFO, 2000, seed=7, batch_size=900)  # ids 2001-4000, same catalogue rows
    assert scalar(seeded, "SELECT count(*) FROM actors") == actors  # the catalogue is reused, not doubled
    seed_synthetic(CONNINFO, 50, seed=8)  # ids 4001-4050
    cols = (
        "title, summary, kind, status, stage_override, date_start, date_precision, date_end, location, tags"
    )
    with seeded.connect() as conn:
        first = conn.execute(text(f"SELECT {cols} FROM events WHERE id <= 2000 ORDER BY id")).all()
        again = conn.execute(
            text(f"SELECT {cols} FROM events WHERE id BETWEEN 2001 AND 4000 ORDER BY id")
        ).all()
        other = conn.execute(text(f"SELECT {cols} FROM events WHERE id > 4000 ORDER BY id")).all()
        links = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT event_id, actor_id, role FROM event_actors "
                "WHERE event_id <= 2000 EXCEPT SELECT event_id - 2000, actor_id, role FROM event_actors "
                "WHERE event_id BETWEEN 2001 AND 4000) x"
            )
        ).scalar()
        sources = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT event_id, position, publisher, quote, reliability, credibility "
                "FROM sources WHERE event_id <= 2000 EXCEPT SELECT event_id - 2000, position, publisher, "
                "quote, reliability, credibility FROM sources WHERE event_id BETWEEN 2001 AND 4000) x"
            )
        ).scalar()
    assert first == again
    assert sources == 0
    assert links == 0
    assert other != first[:50]


def test_bulk_path_rebuilds_every_index(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    truncate_all(engine)
    query = (
        "SELECT indexname FROM pg_indexes WHERE tablename IN "
        "('events', 'event_countries', 'event_actors', 'event_systems', 'sources') ORDER BY 1"
    )
    with engine.connect() as conn:
        before = conn.execute(text(query)).scalars().all()
    monkeypatch.setattr(synthetic, "BULK_THRESHOLD", 100)
    try:
        result = seed_synthetic(CONNINFO, 300, seed=3)
        with engine.connect() as conn:
            after = conn.execute(text(query)).scalars().all()
        assert result.rebuilt_indexes
        assert after == before
        assert scalar(engine, "SELECT count(*) FROM events") == 300
    finally:
        truncate_all(engine)


def test_cli_verb(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    truncate_all(engine)
    try:
        assert cli_main(["seed-synthetic", "--events", "120", "--seed", "5", "--quiet"]) == 0
        assert "seeded 120 synthetic events" in capsys.readouterr().err
        assert scalar(engine, "SELECT count(*) FROM events") == 120
        assert cli_main(["seed-synthetic", "--events", "-1"]) == 2
    finally:
        truncate_all(engine)
