"""The duplicate finder flags the same dyad and kind nearby, and similar titles."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.queries.duplicates import find_duplicates
from app.schemas import EventInput
from tests.factories import event_data, make_event


def test_same_dyad_kind_and_window_is_flagged(db: Session) -> None:
    original = make_event(db, title="Moscow offers missiles", date="2025-10-14")
    candidate = EventInput.model_validate(event_data(title="Completely different words", date="2025-10-20"))
    found = find_duplicates(db, candidate)
    assert [d.event.id for d in found] == [original.id]
    assert found[0].same_dyad_and_kind


def test_similar_title_is_flagged_even_for_another_dyad(db: Session) -> None:
    # A month-precision event covers all of October: a day 10 days after its end is near.
    original = make_event(db, title="Russia offers Kalibr missiles to Venezuela", date="2025-11-10")
    candidate = EventInput.model_validate(
        event_data(title="Russia offers Kalibr missile to Venezuela", countries=[], date="2025-10")
    )
    found = find_duplicates(db, candidate)
    assert [d.event.id for d in found] == [original.id]
    assert found[0].similarity > 0.45
    assert not found[0].same_dyad_and_kind


def test_similar_title_far_away_in_time_is_another_event(db: Session) -> None:
    # The same words a year apart (a repeated offer) are not flagged, nor is the same dyad and kind
    # 15 days apart: both tests look within 14 days of the event's period only.
    make_event(db, title="Russia offers Kalibr missiles to Venezuela", date="2024-10-14")
    make_event(db, title="Completely different words", date="2025-09-29")
    candidate = EventInput.model_validate(
        event_data(title="Russia offers Kalibr missiles to Venezuela", date="2025-10-14")
    )
    assert find_duplicates(db, candidate) == []


def test_unrelated_event_is_not_flagged(db: Session) -> None:
    make_event(db, title="Russia offers Kalibr missiles to Venezuela", date="2025-10-14")
    candidate = EventInput.model_validate(
        event_data(
            title="Iran trains drone operators",
            kind="training",
            date="2023-02-01",
            countries=[{"code": "IRN", "role": "supplier"}, {"code": "SYR", "role": "recipient"}],
        )
    )
    assert find_duplicates(db, candidate) == []


def test_edited_event_is_not_its_own_duplicate(db: Session) -> None:
    original = make_event(db)
    same = EventInput.model_validate(event_data())
    assert find_duplicates(db, same, exclude_id=original.id) == []
