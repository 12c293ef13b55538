"""The database itself refuses what the vocabularies and grades forbid."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Actor, Event, EventCountry, Source
from tests.factories import make_event


def _insert_event(db: Session, **overrides) -> None:  # type: ignore[no-untyped-def]
    values = {
        "title": "t",
        "kind": "statement",
        "status": "reported",
        "date_start": date(2025, 10, 1),
        "date_precision": "month",
    }
    values.update(overrides)
    with db.begin_nested():
        db.add(Event(**values))
        db.flush()


@pytest.mark.parametrize(
    "overrides",
    [
        {"kind": "rumour"},
        {"status": "maybe"},
        {"stage_override": 7},
        {"date_precision": "week"},
        {"date_start": date(2025, 10, 14), "date_precision": "month"},  # month dates are the 1st
        {"date_start": date(2025, 3, 1), "date_precision": "year"},
        {"date_end": date(2025, 9, 1), "date_end_precision": "month"},  # ends before it starts
        {"date_end": date(2025, 12, 1)},  # an end needs its precision
        {"title": "   "},
    ],
)
def test_bad_event_values_are_refused(db: Session, overrides: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(IntegrityError):
        _insert_event(db, **overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"reliability": "G"},
        {"reliability": "a"},
        {"credibility": 0},
        {"credibility": 7},
        {"url": "javascript:alert(1)"},
        {"publisher": ""},
    ],
)
def test_bad_source_grades_are_refused(db: Session, overrides: dict) -> None:  # type: ignore[type-arg]
    event = make_event(db)
    values = {"event_id": event.id, "publisher": "TASS", "reliability": "C", "credibility": 3}
    values.update(overrides)
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(Source(**values))
        db.flush()


def test_unknown_country_and_role_are_refused(db: Session) -> None:
    event = make_event(db)
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(EventCountry(event_id=event.id, country_code="XXX", role="supplier"))
        db.flush()
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(EventCountry(event_id=event.id, country_code="CHN", role="friend"))
        db.flush()


def test_actor_names_are_unique(db: Session) -> None:
    db.add(Actor(name="Rostec", type="company"))
    db.flush()
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(Actor(name="Rostec", type="company"))
        db.flush()


def test_stage_is_derived_from_kind_unless_overridden(db: Session) -> None:
    transfer = make_event(db, kind="transfer")
    in_transit = make_event(db, kind="transfer", stage_override=4, title="Shipment under way")
    statement = make_event(db, kind="statement", title="A statement")
    db.refresh(transfer)
    db.refresh(in_transit)
    db.refresh(statement)
    assert (transfer.stage, in_transit.stage, statement.stage) == (5, 4, 1)


def test_period_end_covers_the_whole_month_or_year(db: Session) -> None:
    month = make_event(db, date="2025-02")
    year = make_event(db, date="2018", title="Old assessment")
    span = make_event(db, date="2025-09", date_end="2025-11", title="Strikes")
    for e in (month, year, span):
        db.refresh(e)
    assert month.period_end == date(2025, 2, 28)
    assert year.period_end == date(2018, 12, 31)
    assert span.period_end == date(2025, 11, 30)
    assert db.scalar(text("SELECT count(*) FROM events WHERE period_end < date_start")) == 0
