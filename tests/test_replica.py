"""DATABASE_REPLICA_URL: counts, facets, chart, dyads, lists and the export read the replica; pages do not.

No streaming replica runs in the test suite, so a second database with different rows stands in for one:
whatever a route shows from it can only have been read there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app import migrate
from app.config import get_settings
from app.db import get_replica_engine, get_session, replica_session_factory
from app.main import create_app
from app.queries import cache, facts
from tests.conftest import Client
from tests.factories import make_event
from tests.test_backup import scratch_database, url_of


@pytest.fixture
def replica() -> Iterator[Engine]:
    """A migrated database holding three events of its own, configured as DATABASE_REPLICA_URL."""
    settings = get_settings()
    with scratch_database("signalboard_replica") as eng:
        with eng.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
        with Session(eng) as s:
            for i in range(3):
                make_event(s, title=f"Only on the replica {i}", kind="transfer", date="2024-03")
            s.commit()
        settings.database_replica_url = url_of(eng)
        get_replica_engine.cache_clear()
        replica_session_factory.cache_clear()
        cache.clear()
        facts.forget()
        try:
            yield eng
        finally:
            settings.database_replica_url = None
            get_replica_engine().dispose()
            get_replica_engine.cache_clear()
            replica_session_factory.cache_clear()
            cache.clear()
            facts.forget()


def test_heavy_reads_go_to_the_replica(replica: Engine, db: Session) -> None:
    app = create_app()

    def primary() -> Iterator[Session]:
        yield db

    app.dependency_overrides[get_session] = primary  # the read session is left to DATABASE_REPLICA_URL
    client = Client(app, db)
    client.login("viewer")
    make_event(db, title="Only on the primary", kind="statement", date="2024-04")
    db.commit()

    page = client.get("/").text
    assert "Only on the primary" in page and "Only on the replica" not in page
    assert client.get("/healthz").json()["facts"] == "building"  # nothing counted on the replica yet
    total = client.get("/timeline/count").text
    assert client.get("/healthz").json()["facts"] == "ready"  # the copy read there is the one reported
    assert re.search(r"\b3\b", total) and "Export these 3 events" in total
    facets = client.get("/timeline/facets").text
    assert re.search(r'value="transfer"[\s\S]{0,200}?>3<', facets)
    assert "Only on the replica 0" in client.get("/export.csv").text
    assert "Only on the primary" not in client.get("/export.csv").text
    assert "Only on the replica" not in client.get("/dyads").text  # a matrix of counts: RUS → VEN 3
    assert re.search(r">\s*3\s*<", client.get("/dyads").text)
