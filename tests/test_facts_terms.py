"""Prepared search terms (app/queries/facts/terms.py) answer exactly as PostgreSQL's full-text search."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.events_service import delete_event, event_input, restore_event, update_event
from app.filters import EventFilter, from_mapping
from app.queries import facts
from app.queries.events import count_events_sql, matching_ids
from app.queries.facts import columns, store, terms
from app.queries.facts.selection import prepared_lexemes
from app.queries.facts.store import holder_of
from app.schemas import EventInput
from tests.factories import make_event
from tests.test_facts import assert_same, own_database, synthetic  # noqa: F401  (fixtures)
from tests.test_properties import SETTINGS, a_filter, dataset  # noqa: F401  (dataset is a fixture)

# Lexemes that match nothing, put first so that the real ones land on both sides of the 64-bit boundary
# (bit 63 is the sign bit of PostgreSQL's int8; the second word starts at 64).
PADDING = tuple(f"zzpad{i}" for i in range(60))
# The words to prepare on the synthetic data (most common first) and queries over them and others.
QUERIES = [
    "drones",  # stemmed: 'drone'
    "Drones",
    "drone",
    "air defence",  # AND of two
    "air defence drones",
    "Oreshnik",  # not prepared (rare): SQL
    "drones Oreshnik",  # one prepared, one not: SQL
    '"air defence"',  # phrase: SQL
    "drones or air",  # OR: SQL
    "drones -air",  # negation: SQL
    "the",  # stop words only: SQL
    "'drones'",
    "air & defence",
    "drone:*",
]


def sql_rows(session: Session, copy: facts.Facts, f: EventFilter) -> np.ndarray:
    """Live rows of the copy that PostgreSQL matches for the filter."""
    ids = np.asarray(session.scalars(matching_ids(f)).all(), dtype=np.int64)
    mask = np.zeros(copy.size, dtype=bool)
    mask[copy.rows_of(ids)] = True
    return mask & copy.alive


def common_lexemes(session: Session, count: int) -> list[str]:
    """The most common lexemes of live events (as the statistics would name them), most common first."""
    return list(
        session.scalars(
            text(
                "SELECT word FROM ts_stat('SELECT search_vector FROM events WHERE deleted_at IS NULL')"
                " WHERE word !~ '[''\\\\]' ORDER BY ndoc DESC, word LIMIT :n"
            ),
            {"n": count},
        )
    )


def with_terms(session: Session, copy: facts.Facts, lexemes: Sequence[str]) -> facts.Facts:
    """The copy with terms prepared for the given lexemes through the session's connection."""
    prepared = terms.prepare_on(session.connection(), copy, lexemes)
    assert prepared is not None
    return replace(copy, terms=prepared)


def check(session: Session, copy: facts.Facts, queries: Sequence[str] = QUERIES) -> int:
    """Prepared masks equal SQL for every query, alone and with other filters; how many were prepared."""
    assert copy.terms is not None and copy.terms.bits.shape[0] == copy.size
    used = 0
    for q in queries:
        f = EventFilter(q=q)
        lexemes = prepared_lexemes(session, copy, f)
        if lexemes is not None:
            used += 1
            assert np.array_equal(copy.terms.mask(lexemes) & copy.alive, sql_rows(session, copy, f)), q
        assert facts.Selection(session, copy, f).total() == count_events_sql(session, f), q
        assert_same(session, copy, from_mapping({"q": q, "kind": "transfer", "from": "2015"}))
    return used


@pytest.fixture
def prepared_lexemes_of_synthetic(synthetic: Engine) -> Iterator[list[str]]:  # noqa: F811
    """Padding, then the 20 most common lexemes of the synthetic data, 'drone', 'air' and 'defenc'."""
    with Session(synthetic) as s:
        real = [w for w in common_lexemes(s, 20) if w not in ("drone", "air", "defenc")]
    yield [*PADDING, *real, "drone", "air", "defenc"]


def test_prepared_terms_equal_sql_on_synthetic_data(
    synthetic: Engine,  # noqa: F811
    prepared_lexemes_of_synthetic: list[str],
) -> None:
    with Session(synthetic) as s:
        copy = with_terms(s, columns.build(synthetic), prepared_lexemes_of_synthetic)
        assert copy.terms is not None and copy.terms.bits.shape == (copy.size, 2)
        assert check(s, copy) >= 6  # the single words and the ANDs are answered from the bits
        for q in ("drones Oreshnik", '"air defence"', "drones or air", "drones -air", "the"):
            assert prepared_lexemes(s, copy, EventFilter(q=q)) is None, q
        # Another SQL-only condition with the words: SQL answers the whole part.
        assert prepared_lexemes(s, copy, EventFilter(q="drones", source=("Reuters",))) is None
        # Each prepared lexeme, on both sides of the word boundary, alone.
        for lx in prepared_lexemes_of_synthetic[55:]:
            f = EventFilter(q=lx)
            if prepared_lexemes(s, copy, f) == (lx,):
                assert np.array_equal(copy.terms.mask([lx]) & copy.alive, sql_rows(s, copy, f)), lx


def test_patches_keep_prepared_terms_exact(
    synthetic: Engine,  # noqa: F811
    db: Session,
    prepared_lexemes_of_synthetic: list[str],
) -> None:
    """Edits, deletes, restores and new events patch the bits too; a full read drops them (SQL serves)."""
    facts.forget()
    holder = holder_of(db)
    first = facts.current(db)
    assert first is not None
    holder.facts = with_terms(db, first, prepared_lexemes_of_synthetic)

    def current(expect_tail: int) -> facts.Facts:
        copy = facts.current(db)
        assert copy is not None and copy.tail == expect_tail and copy.terms is not None
        assert check(db, copy) >= 6
        return copy

    current(0)
    made = make_event(db, title="Drones and air defence for Venezuela", date="2026-02")
    current(1)
    data = event_input(made).model_dump()
    data.update(title="Oreshnik offered, no more words of interest", summary="")
    update_event(db, made.id, EventInput.model_validate(data), None, made.version)
    db.flush()
    copy = current(2)
    assert not copy.terms.mask(["drone"])[copy.alive & (copy.ids == made.id)].any()  # type: ignore[union-attr]
    with_drones = db.scalar(
        text(
            "SELECT min(id) FROM events WHERE deleted_at IS NULL AND search_vector @@ 'drone'::tsquery"
            " AND id <> :id"
        ),
        {"id": made.id},
    )
    delete_event(db, with_drones, None)
    db.flush()
    current(2)
    restore_event(db, with_drones, None)
    db.flush()
    current(3)
    data = event_input(made).model_dump()
    data.update(title="Drones again, air defence again")
    refreshed = db.scalar(text("SELECT version FROM events WHERE id = :id"), {"id": made.id})
    update_event(db, made.id, EventInput.model_validate(data), None, refreshed)
    db.flush()
    current(4)
    # A full read (too many changes) has no terms until they are read again: SQL answers meanwhile.
    saved = columns.PATCH_MAX
    columns.PATCH_MAX = 0
    try:
        make_event(db, title="Drones after the full read", date="2026-03")
        reread = facts.current(db)
        assert reread is not None and reread.tail == 0 and reread.terms is None
        f = EventFilter(q="drones")
        assert prepared_lexemes(db, reread, f) is None
        assert facts.Selection(db, reread, f).total() == count_events_sql(db, f)
        holder.facts = with_terms(db, reread, prepared_lexemes_of_synthetic)
        current(0)
    finally:
        columns.PATCH_MAX = saved


def test_terms_read_before_writes_catch_up(own_database: Engine) -> None:  # noqa: F811
    """Bits read in an older snapshot are brought to the copy's version before they answer."""
    engine = own_database
    lexemes = [*PADDING, "drone", "air", "defenc", "tank"]
    with Session(engine) as s:
        kept = make_event(s, title="Drones for the front", date="2024-01")
        edited = make_event(s, title="Air defence radars", date="2024-02")
        gone = make_event(s, title="Drones and tanks", date="2024-03")
        s.commit()
        with engine.connect() as conn, conn.begin():
            snap = terms.read_snapshot(conn, lexemes)
        data = event_input(edited).model_dump()
        data.update(title="Drones, not radars")
        update_event(s, edited.id, EventInput.model_validate(data), None, edited.version)
        delete_event(s, gone.id, None)
        make_event(s, title="Tanks and air defence", date="2024-04")
        s.commit()
        copy = facts.current(s)
        assert copy is not None
        with engine.connect() as conn, conn.begin():
            prepared = terms.attach_on(conn, copy, snap)
        assert prepared is not None
        copy = replace(copy, terms=prepared)
        assert check(s, copy, ["drones", "air defence", "tanks", "tanks air", "drones tanks"]) == 5
        assert facts.Selection(s, copy, EventFilter(q="drones")).total() == 2
        assert kept.id in facts.Selection(s, copy, EventFilter(q="drones")).page_ids(None, 10)
        # Behind the copy's version (a write since it was read): no terms rather than wrong ones.
        make_event(s, title="Drones once more", date="2024-05")
        s.commit()
        with engine.connect() as conn, conn.begin():
            assert terms.attach_on(conn, copy, snap) is None


def test_the_background_preparation_follows_the_statistics(own_database: Engine) -> None:  # noqa: F811
    """No statistics: nothing prepared (SQL answers). After ANALYZE: the frequent lexemes, in the copy."""
    engine = own_database
    with Session(engine) as s:
        for i in range(30):
            title = f"Drones shipment {i}" if i % 3 else f"Air defence talks {i}"
            make_event(s, title=title, date=f"2024-{i % 12 + 1:02d}")
        s.commit()
        assert facts.current(s) is not None
        assert store.terms_state(engine) == "off"  # tests prepare them where they need them
        assert store.prepare_terms(engine)
        copy = facts.current(s)
        assert copy is not None and copy.terms is not None and copy.terms.lexemes == ()
        assert store.terms_state(engine) == "ready"
        assert prepared_lexemes(s, copy, EventFilter(q="drones")) is None
        with engine.connect() as conn:
            conn.execute(text("ANALYZE events"))
            conn.commit()
        saved = terms.MIN_FREQUENCY
        terms.MIN_FREQUENCY = 0.5
        try:
            assert store.prepare_terms(engine)
        finally:
            terms.MIN_FREQUENCY = saved
        copy = facts.current(s)
        assert copy is not None and copy.terms is not None
        assert "drone" in copy.terms.lexemes and "defenc" not in copy.terms.lexemes
        assert prepared_lexemes(s, copy, EventFilter(q="drones")) == ("drone",)
        assert check(s, copy, ["drones", "drones shipment", "air defence", "drones -shipment"]) == 2
        # A write after the terms were read patches them along with the copy.
        make_event(s, title="Drones at last", date="2025-01")
        s.commit()
        patched = facts.current(s)
        assert patched is not None and patched.tail == 1 and patched.terms is not None
        assert check(s, patched, ["drones", "drones shipment"]) == 2


def test_the_app_prepares_terms_in_the_background(
    own_database: Engine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside tests a copy without terms starts their reading; an attempt that gives up says 'waiting'."""
    engine = own_database
    monkeypatch.setattr(store, "_auto_prepare", lambda: True)
    monkeypatch.setattr(store, "PREPARE_PAUSE_SECONDS", 0.0)
    with Session(engine) as s:
        make_event(s, title="Drones over the border", date="2024-01")
        s.commit()
        calls: list[object] = []
        monkeypatch.setattr(store, "prepare_terms", lambda e: calls.append(e) or False)
        assert facts.current(s) is not None
        holder = store._holder(engine)
        assert holder.preparer is not None
        holder.preparer.join(30)
        assert len(calls) == store.PREPARE_ATTEMPTS and store.terms_state(engine) == "waiting"
        facts.current(s)  # too soon to try again
        assert not holder.preparer.is_alive() and len(calls) == store.PREPARE_ATTEMPTS
        monkeypatch.undo()
        monkeypatch.setattr(store, "_auto_prepare", lambda: True)
        holder.prepare_after = 0.0
        facts.current(s)
        holder.preparer.join(30)
        copy = facts.current(s)
        assert copy is not None and copy.terms is not None and store.terms_state(engine) == "ready"


def test_the_parse_decides_what_the_bits_may_answer(db: Session) -> None:
    """Only a plain AND of lexemes is taken from the bits; every other shape of query is left to SQL."""
    conn = db.connection()
    assert terms.and_of_lexemes(conn, "drones") == ("drone",)
    assert terms.and_of_lexemes(conn, "Air  Defence") == ("air", "defenc")
    for q in ('"air defence"', "air or defence", "-air", "air -defence", "the of", "", "'"):
        assert terms.and_of_lexemes(conn, q) is None, q


@SETTINGS
@given(f=a_filter())
def test_prepared_copy_equals_sql_for_any_filter(dataset: Engine, f: EventFilter) -> None:  # noqa: F811
    with Session(dataset) as s:
        # Some of the generated words prepared, some not ('tank' and 'radar' stay with SQL).
        real = [w for w in common_lexemes(s, 40) if w not in ("tank", "radar")]
        copy = with_terms(s, columns.build(dataset), [*PADDING, *real])
        assert_same(s, copy, f)
