"""The in-memory copy (app/queries/aggregates/facts/) answers exactly as PostgreSQL does, for any filter."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from hypothesis import given
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from app.demo.synthetic import seed_synthetic
from app.domain.vocab import CONFIDENCES, KINDS, LIKELIHOODS, STATUSES
from app.filters import EventFilter
from app.queries.aggregates import facts
from app.queries.aggregates.chart import assemble as assemble_chart
from app.queries.aggregates.facets import assemble as assemble_facets
from app.queries.aggregates.facets import facet_counts
from app.queries.aggregates.facts import columns, store
from app.queries.events import Cursor, timeline_page
from app.services.events import delete_event
from tests import sql_oracle as oracle
from tests.conftest import TEST_DB_URL, Client, truncate_all
from tests.factories import from_mapping, make_event
from tests.test_properties import SETTINGS, a_filter, dataset  # noqa: F401  (dataset is a fixture)

CONNINFO = TEST_DB_URL.replace("postgresql+psycopg://", "postgresql://")


def assert_same(session: Session, copy: facts.Facts, f: EventFilter) -> None:
    """Total, facets, chart, dyads and the first two pages agree between the copy and SQL."""
    sel = facts.Selection(session, copy, f)
    assert sel.total() == oracle.count_events(session, f), f.pairs()
    assert assemble_facets(f, sel.facet_rows(6)).groups == oracle.facet_counts(session, f).groups, f.pairs()
    assert sorted(sel.chart_rows()) == sorted(oracle.chart_rows(session, f)), f.pairs()
    assert assemble_chart(sel.chart_rows()) == assemble_chart(oracle.chart_rows(session, f))
    assert sel.dyad_cells() == oracle.dyad_cells(session, f), f.pairs()
    first = sel.page_ids(None, 7)
    assert first == oracle.page_ids(session, f, None, 7), f.pairs()
    if first:
        last = session.execute(
            text("SELECT date_start, id FROM events WHERE id = :i"), {"i": first[-1]}
        ).one()
        cursor = Cursor(last[0], last[1])
        assert sel.page_ids((cursor.date_start, cursor.id), 7) == oracle.page_ids(session, f, cursor, 7)
    # The review queue: due events of the filter, oldest review clock first, and its next page.
    queue = facts.Selection(session, copy, replace(f, due=True))
    first = queue.review_ids(None, 5)
    assert first == oracle.review_ids(session, f, None, 5), f.pairs()
    if first:
        at = int(queue.facts.review_clock[queue.facts.rows_of(np.asarray(first[-1:]))][-1])
        assert queue.review_ids((at, first[-1]), 5) == oracle.review_ids(session, f, (at, first[-1]), 5)


@SETTINGS
@given(f=a_filter())
def test_copy_equals_sql_for_any_filter(dataset: Engine, f: EventFilter) -> None:  # noqa: F811
    with Session(dataset) as s:
        copy = columns.build(dataset)
        assert_same(s, copy, f)


@pytest.fixture(scope="module")
def synthetic(engine: Engine) -> Iterator[Engine]:
    """3,000 synthetic events (their real mix of roles, precisions and links), some deleted."""
    truncate_all(engine)
    seed_synthetic(CONNINFO, 3000, seed=11, batch_size=1000)
    with engine.begin() as conn:
        conn.execute(text("UPDATE events SET deleted_at = now() WHERE id % 97 = 0"))
    yield engine
    truncate_all(engine)


TOP_SQL = (
    "SELECT t.{name} FROM {link} l JOIN {table} t ON t.id = l.{key} "
    "GROUP BY t.{name} ORDER BY count(*) DESC LIMIT 1"
)
REALISTIC = [
    {},
    {"country": "RUS"},
    {"supplier": "USA", "recipient": "UKR"},
    {"kind": "transfer", "from": "2016-01", "to": "2018-12"},
    {"q": "drones"},
    {"supplier": "USA", "kind": "transfer", "from": "2014", "q": "air defence"},
    {"stage_min": "4", "status": ["confirmed", "reported"]},
    {"target": ["UKR", "ISR"], "to": "2019"},
    {"country": ["IRN", "PRK"], "kind": ["offer", "request"]},
    {"from": "2020-02-29", "to": "2020-03"},
    # Full text of every shape PostgreSQL parses (phrase, OR, negation, stop words only, prefix).
    {"q": '"air defence"'},
    {"q": "drones or air", "kind": "transfer"},
    {"q": "drones -air"},
    {"q": "the"},
    {"q": "drone:*"},
    # Values that match nothing: answered from the id query, not by walking the timeline.
    {"tag": "nosuch"},
    {"source": "nosuch", "country": "RUS"},
]


@pytest.mark.parametrize("params", REALISTIC, ids=[str(p) or "none" for p in REALISTIC])
def test_copy_equals_sql_on_synthetic_data(synthetic: Engine, params: dict[str, str | list[str]]) -> None:
    with Session(synthetic) as s:
        copy = columns.build(synthetic)
        assert copy.size == s.scalar(text("SELECT count(*) FROM events WHERE deleted_at IS NULL"))
        assert_same(s, copy, from_mapping(params))
        # The most linked actor and system, by name and as the filter spells them.
        actor = s.scalar(
            text(TOP_SQL.format(table="actors", name="name", link="event_actors", key="actor_id"))
        )
        system = s.scalar(
            text(TOP_SQL.format(table="systems", name="designation", link="event_systems", key="system_id"))
        )
        assert_same(s, copy, from_mapping({**params, "actor": actor}))
        assert_same(s, copy, from_mapping({**params, "system": system.lower()}))
        # The timeline page takes its ids from the current copy: same events, same order, same cursor.
        facts.forget()
        assert facts.current(s) is not None
        f = from_mapping(params)
        assert [e.id for e in timeline_page(s, f, None, 9).events] == oracle.page_ids(s, f, None, 9)


def test_copy_follows_writes(db: Session) -> None:
    """A write moves the data version, and the next answer comes from a rebuilt copy."""
    facts.forget()
    f = EventFilter(supplier=("RUS",))
    before = facet_counts(db, f)
    first = facts.current(db)
    assert first is not None
    made = make_event(db, title="A new transfer", kind="transfer", date="2025-10-02")
    after = facet_counts(db, f)
    second = facts.current(db)
    assert second is not None and second is not first
    assert second.version != first.version
    kinds = {v.value: v.count for v in after["kind"]}
    assert kinds["transfer"] == {v.value: v.count for v in before["kind"]}["transfer"] + 1
    delete_event(db, made.id, None)
    assert facts.Selection(db, facts.current(db) or second, f).total() == oracle.count_events(db, f)


def test_a_built_copy_answers_with_one_statement(db: Session, connection: Connection) -> None:
    """With the copy built, facets cost one statement per transaction (the data version), any size."""
    make_event(db, title="One", date="2024-05")
    facts.forget()
    f = EventFilter(kind=("statement",))
    facet_counts(db, f)  # builds
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    db.commit()  # a new transaction: the data version is read again, once for all that asks for it
    event.listen(connection, "before_cursor_execute", record)
    try:
        facet_counts(db, f)
        facet_counts(db, f)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert len([s for s in seen if "SAVEPOINT" not in s]) == 1, seen


def test_a_page_of_a_rare_tag_never_walks_the_timeline(db: Session, connection: Connection) -> None:
    """Conditions the copy lacks come as one id query (GIN): no keyset walk of the date index, any filter.

    A tag that matches nothing made the page walk every event in date order looking for 50 rows (3 s at
    a million events); now the page is the copy's ids intersected with the tag's ids, then those rows.
    """
    make_event(db, title="Tagged", date="2024-05", tags=["rare"])
    make_event(db, title="Untagged", date="2024-06")
    facts.forget()
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        for tag in ("nosuch", "rare"):
            page = timeline_page(db, EventFilter(tag=(tag,)))
            assert [e.title for e in page.events] == ([] if tag == "nosuch" else ["Tagged"])
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert not [s for s in seen if "ORDER BY events.date_start" in s], seen
    assert len([s for s in seen if "events.tags &&" in s]) == 2  # one id query per tag


def test_packed_keys_sort_like_date_then_id() -> None:
    days = [(date(1899, 12, 31) - facts.EPOCH).days, 0, 1, 20000]
    keys = [int(facts.pack_key(d, i)) for d in days for i in (1, 2, 10**9)]
    assert keys == sorted(keys)


def test_a_login_leaves_the_data_version_alone(db: Session) -> None:
    """Security rows (logins, failures) are audited but change no count: the copy and caches stay."""
    from app.queries.aggregates.cache import data_version
    from app.services.audit import security_event

    make_event(db, title="Counted", date="2024-05")
    before = data_version(db)
    security_event(db, None, "login_failed", {"username": "someone"})
    db.flush()
    assert data_version(db) == before


def test_every_kind_of_write_moves_the_data_version(db: Session) -> None:
    """ORM flushes of data rows and bulk UPDATE/DELETE statements both move it, inside the transaction."""
    from sqlalchemy import update

    from app.models import Event, EventActor
    from app.queries.aggregates.cache import data_version

    made = make_event(db, title="Counted", date="2024-05", actors=[{"name": "Someone", "role": "speaker"}])
    db.commit()
    seen = {data_version(db)}
    made.title = "Retitled"
    db.flush()
    seen.add(data_version(db))
    db.commit()
    seen.add(data_version(db))
    db.execute(update(EventActor).where(EventActor.event_id == made.id).values(role="recipient"))
    seen.add(data_version(db))
    db.commit()
    db.execute(update(Event).where(Event.id == made.id).values(location="Caracas"))
    seen.add(data_version(db))
    assert len(seen) == 5


PATCH_FILTERS = [
    {},
    {"supplier": "RUS", "recipient": "VEN"},
    {"kind": "offer", "from": "2026"},
    {"actor": "Sergei Ryabkov"},
    {"system": "Kalibr"},
    {"country": ["VEN", "UKR"], "stage_min": "2"},
    {"q": "Oreshnik"},
]


def test_patches_follow_edits_deletes_restores_and_merges(synthetic: Engine, db: Session) -> None:
    """Each write patches the copy (rows appended, replaced rows dead) and every answer stays exact."""
    from app.schemas import EventInput
    from app.services.events import event_input, restore_event, update_event
    from app.services.reference import merge_actors

    def check(expect_tail: int) -> None:
        copy = facts.current(db)
        assert copy is not None and copy.tail == expect_tail, (copy and copy.tail, expect_tail)
        for params in PATCH_FILTERS:
            assert_same(db, copy, from_mapping(params))

    facts.forget()
    check(0)  # a full read of the synthetic events
    made = make_event(db, title="Oreshnik offered to Venezuela", date="2026-02")
    check(1)
    data = event_input(made).model_dump()
    data.update(
        kind="transfer", countries=[{"code": "RUS", "role": "supplier"}, {"code": "UKR", "role": "recipient"}]
    )
    update_event(db, made.id, EventInput.model_validate(data), None, made.version)
    db.flush()
    check(2)  # the edit appends its new state; the first row is dead
    old = db.scalar(text("SELECT min(id) FROM events WHERE deleted_at IS NULL"))
    delete_event(db, old, None)
    db.flush()
    check(2)  # a delete kills a row and appends nothing
    restore_event(db, old, None)
    db.flush()
    check(3)
    other = make_event(
        db, title="Second offer", date="2026-03", actors=[{"name": "Pat Merger", "role": "speaker"}]
    )
    check(4)
    keep = db.scalar(text("SELECT id FROM actors WHERE name = 'Sergei Ryabkov'"))
    drop = db.scalar(text("SELECT id FROM actors WHERE name = 'Pat Merger'"))
    merge_actors(db, keep, drop, None)
    db.flush()
    check(6)  # the moved event, and keep's own event: its search document now holds the merged name
    assert other.id in facts.Selection(
        db, facts.current(db), from_mapping({"actor": "Sergei Ryabkov"})
    ).page_ids(None, 50)  # type: ignore[arg-type]


def test_too_many_changes_read_everything_again(db: Session) -> None:
    """A patch larger than PATCH_MAX is replaced by a full read (nothing left in the tail)."""
    make_event(db, title="Before", date="2020-01")
    facts.forget()
    assert facts.current(db) is not None
    saved = columns.PATCH_MAX
    columns.PATCH_MAX = 0
    try:
        make_event(db, title="After", date="2020-02")
        copy = facts.current(db)
        assert copy is not None and copy.tail == 0 and copy.alive.all()
        assert facts.Selection(db, copy, EventFilter()).total() == oracle.count_events(db, EventFilter())
    finally:
        columns.PATCH_MAX = saved


@pytest.fixture
def own_database() -> Iterator[Engine]:
    """A migrated database of this test's own (it truncates, or writes behind the app's back)."""
    from app import migrate
    from tests.test_backup import scratch_database

    with scratch_database("signalboard_facts") as engine:
        with engine.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
        yield engine


def test_a_truncate_or_restore_means_a_full_read(own_database: Engine) -> None:
    """Rows removed without an audit trail (TRUNCATE, a restore) are noticed through the tables' storage."""
    engine = own_database
    with Session(engine) as s:
        make_event(s, title="First life", date="2024-01")
        make_event(s, title="First life, again", date="2024-02")
        s.commit()
        assert facts.Selection(s, facts.current(s), EventFilter()).total() == 2  # type: ignore[arg-type]
    truncate_all(engine)  # RESTART IDENTITY: the next event reuses id 1
    with Session(engine) as s:
        make_event(s, title="Second life", date="2023-01", kind="transfer")
        s.commit()
        copy = facts.current(s)
        assert copy is not None and copy.tail == 0
        assert facts.Selection(s, copy, EventFilter(kind=("transfer",))).total() == 1
        assert facts.Selection(s, copy, EventFilter()).total() == 1


def test_reference_lists_count_as_sql_does(synthetic: Engine) -> None:
    """/actors, /systems and /countries give the same rows from the copy as from SQL."""
    from app.queries.aggregates.lists import actor_list, country_list, system_list

    with Session(synthetic) as s:
        facts.forget()
        for lister, sql_lister, query in (
            (actor_list, oracle.actor_list, ""),
            (actor_list, oracle.actor_list, "a"),
            (system_list, oracle.system_list, ""),
            (country_list, oracle.country_list, ""),
            (country_list, oracle.country_list, "ru"),
        ):
            from_copy = lister(s, query)  # type: ignore[operator]
            assert from_copy == sql_lister(s, query), (lister.__name__, query)  # type: ignore[operator]
            assert from_copy


def test_writes_outside_the_app_are_seen_after_the_maximum_age(own_database: Engine) -> None:
    """SQL typed by hand moves no data version; a copy older than MAX_AGE_SECONDS is read again."""
    engine = own_database
    with Session(engine) as s:
        older = make_event(s, title="Older", date="2024-01", kind="statement")
        make_event(s, title="Newer", date="2024-02", kind="statement")
        s.commit()
        offers = EventFilter(kind=("offer",))
        first = facts.current(s)
        assert first is not None and facts.Selection(s, first, offers).total() == 0
        with engine.begin() as conn:  # out of band: no audit row, no marker, not the newest event
            conn.execute(text("UPDATE events SET kind = 'offer' WHERE id = :id"), {"id": older.id})
        s.commit()
        assert facts.current(s) is first  # same data version: the copy cannot know
        saved = store.MAX_AGE_SECONDS
        store.MAX_AGE_SECONDS = 0.0
        try:
            assert facts.current(s) is first  # served at once, a full read starts behind it
            refresher = store._holder(engine).refresher
            assert refresher is not None
            refresher.join(30)
        finally:
            store.MAX_AGE_SECONDS = saved
        fresh = facts.current(s)
        assert fresh is not None and fresh is not first
        assert facts.Selection(s, fresh, offers).total() == 1


def test_healthz_says_starting_until_the_copy_is_read(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start-up read runs before the process is ready: 503 until it is done, then 200."""
    gate = threading.Event()
    monkeypatch.setattr(store, "warm_up", lambda *engines: gate.wait(10))
    store.start_warm_up()
    try:
        r = client.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "starting"
    finally:
        gate.set()
        assert store._warmer is not None
        store._warmer.join(10)
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_start_up_work_waits_for_the_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start-up threads that do not gate readiness (export lines, quick add) start once the copy is read."""
    gate = threading.Event()
    monkeypatch.setattr(store, "warm_up", lambda *engines: gate.wait(10))
    ran = threading.Event()
    after = threading.Thread(target=ran.set)
    store.start_warm_up(then=(after,))
    try:
        assert store.warming() and after.ident is None  # not started while the copy is being read
    finally:
        gate.set()
        assert store._warmer is not None
        store._warmer.join(10)
    after.join(10)
    assert ran.is_set() and not store.warming()


EDGE_DATES = ["1950-03", "1969-12-31", "1970-01-01", "1999-12-31", "2000-01-01", "2000", "2024-02-29"]
EDGE_CLOCKS = [
    "1969-07-20 20:17:40.123456+00",
    "1999-12-31 23:59:59.999999+00",
    "2000-01-01 00:00:00.000001+00",
    "2026-12-06 12:00:00.654321+00",
]


@pytest.mark.parametrize("scan", ["index", "table"])
def test_the_copy_holds_every_column_as_sql_computes_it(db: Session, scan: str) -> None:
    """Dates and review clocks around 1970 and 2000 (the server's binary epoch), the packed small columns and
    timeline order come out exactly, whether the events' scan yields them in timeline order or not."""
    for i, day in enumerate(reversed(EDGE_DATES)):  # made newest first: a table scan is out of order
        made = make_event(
            db,
            title=f"Edge {i}",
            date=day,
            date_end="2025-06" if i % 2 else None,
            kind=["transfer", "denial", "strike"][i % 3],
            status=["confirmed", "claimed", "retracted"][i % 3],
            likelihood=[None, "almost certain", "almost no chance"][i % 3],
            confidence=[None, "high", "low"][i % 3],
            countries=[
                {"code": "RUS", "role": "supplier"},
                {"code": "VEN", "role": "recipient"},
                {"code": "UKR", "role": ["target", "intermediary", "recipient"][i % 3]},
            ],
        )
        db.execute(
            text("UPDATE events SET review_clock_at = :at, origin_count = :n WHERE id = :id"),
            {"at": EDGE_CLOCKS[i % len(EDGE_CLOCKS)], "n": 300 * i, "id": made.id},
        )
    db.flush()
    if scan == "index":
        db.execute(text("SET LOCAL enable_seqscan = off"))
    else:
        db.execute(text("SET LOCAL enable_indexscan = off"))
        db.execute(text("SET LOCAL enable_indexonlyscan = off"))
        db.execute(text("SET LOCAL enable_bitmapscan = off"))
    facts.forget()
    copy = facts.current(db)
    for setting in ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
        db.execute(text(f"SET LOCAL {setting} = on"))
    expected = db.execute(
        text(
            "SELECT id, date_start - DATE '1970-01-01', period_end - DATE '1970-01-01',"
            " date_precision = 'year', kind, status, stage, origin_count, likelihood, confidence,"
            " (extract(epoch FROM review_clock_at) * 1000000)::int8"
            " FROM events WHERE deleted_at IS NULL ORDER BY date_start, id"
        )
    ).all()
    held = [
        (
            int(copy.ids[r]),
            int(copy.start[r]),
            int(copy.end[r]),
            bool(copy.yearly[r]),
            KINDS[copy.kind[r]],
            STATUSES[copy.status[r]],
            int(copy.stage[r]),
            int(copy.origins[r]),
            LIKELIHOODS[copy.likelihood[r]] if copy.likelihood[r] >= 0 else None,
            CONFIDENCES[copy.confidence[r]] if copy.confidence[r] >= 0 else None,
            int(copy.review_clock[r]),
        )
        for r in range(copy.size)
    ]
    assert held == [tuple(row) for row in expected]
    assert list(copy.keys) == sorted(copy.keys)
    links = db.execute(
        text(
            "SELECT l.event_id, l.role, l.country_code FROM event_countries l"
            " JOIN events e ON e.id = l.event_id WHERE e.deleted_at IS NULL"
        )
    ).all()
    from_copy = sorted(
        (int(copy.ids[row]), role, copy.countries[value])
        for role, held_links in copy.roles.items()
        for row, value in zip(held_links.rows, held_links.values, strict=True)
    )
    assert from_copy == sorted(tuple(link) for link in links)


def test_a_failed_statement_of_a_read_leaves_every_connection_usable(engine: Engine) -> None:
    """The statements of a read run at once on their connections; one failing fails the read, and all the
    connections are idle again afterwards (their results were drained)."""
    import psycopg

    with engine.connect() as a, engine.connect() as b:
        a.execute(text("SELECT 1"))  # inside a transaction, as a read's connections are
        b.execute(text("SELECT 1"))
        assert columns._run_together([(a, "SELECT int4send(7), NULL::bytea")], None) == [b"\0\0\0\7", None]
        with pytest.raises(psycopg.errors.DivisionByZero):
            columns._run_together([(a, "SELECT 1 / 0"), (b, "SELECT int8send(2)")], None)
        a.rollback()
        assert a.scalar(text("SELECT 3")) == 3 and b.scalar(text("SELECT 4")) == 4
        ids = "SELECT string_agg(int4send(i::int4), ''::bytea ORDER BY i) FROM unnest($1::int8[]) i"
        assert columns._run_together([(b, ids)], [6, 5]) == [b"\0\0\0\5\0\0\0\6"]
