"""Due for review: the clock starts at creation, restarts on a review or a status change, per-kind days;
/review lists due events oldest first under the one filter; `due=1` is the same on every output."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.domain import clock
from app.filters import EventFilter
from app.models import AuditEntry, Event
from app.queries.aggregates import cache, facts
from app.queries.events import count_events, matching_ids
from app.schemas import EventInput
from app.services.events import event_input, update_event
from app.services.review import ReviewRefused, mark_reviewed
from tests import sql_oracle as oracle
from tests.conftest import Client
from tests.factories import event_data, make_event

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
DUE = EventFilter(due=True)


class FixedClock:
    """app.domain.clock.utcnow, moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def days(self, n: float) -> None:
        """Move the clock n days on."""
        self.now += timedelta(days=n)


@pytest.fixture
def fixed(monkeypatch: pytest.MonkeyPatch) -> Iterator[FixedClock]:
    now = FixedClock(T0)
    monkeypatch.setattr(clock, "utcnow", now)
    cache.clear()  # answers kept per minute and data version: a moved clock must not read old ones
    yield now
    cache.clear()


def due_ids(db: Session, f: EventFilter = DUE) -> set[int]:
    """Due events by SQL, checked against the facts copy (the engine of counts and pages)."""
    sql = set(db.scalars(matching_ids(f)))
    copy = facts.selection(db, f)
    assert {int(i) for i in copy.facts.ids[copy.mask()]} == sql
    assert count_events(db, f) == len(sql)
    return sql


def reedit(db: Session, event: Event, **changes: Any) -> Event:
    """Save the event with some fields changed, as the edit form does."""
    data = event_input(event).model_dump()
    data.update(changes)
    return update_event(db, event.id, EventInput.model_validate(data), None, event.version)


def test_the_clock_starts_at_creation(db: Session, fixed: FixedClock) -> None:
    claimed = make_event(db, title="Claimed", status="claimed")
    reported = make_event(db, title="Reported", status="reported")
    confirmed = make_event(db, title="Confirmed", status="confirmed")
    assert claimed.review_clock_at == T0
    fixed.days(29.99)
    assert not due_ids(db) & {claimed.id, reported.id}
    fixed.days(0.01)  # exactly 30 days: due
    assert due_ids(db) >= {claimed.id, reported.id}
    assert confirmed.id not in due_ids(db)  # confirmed, denied, retracted are never due


def test_a_review_restarts_the_clock_and_is_in_the_history(db: Session, fixed: FixedClock) -> None:
    event = make_event(db, title="Igla-S deployed", status="claimed")
    version = event.version
    fixed.days(31)
    assert event.id in due_ids(db)
    mark_reviewed(db, event.id, None, "  still TASS only;\n no independent report ")
    assert event.id not in due_ids(db)
    assert event.version == version  # a review is not an edit
    row = db.scalars(
        select(AuditEntry).where(AuditEntry.entity_id == event.id, AuditEntry.action == "review")
    ).one()
    assert row.reason == "still TASS only; no independent report"
    assert row.changes["review_clock"]["after"] == fixed.now.isoformat()
    fixed.days(29)
    assert event.id not in due_ids(db)
    fixed.days(1)
    assert event.id in due_ids(db)


def test_review_bad_input(db: Session, fixed: FixedClock) -> None:
    event = make_event(db, status="claimed")
    with pytest.raises(ReviewRefused, match="note"):
        mark_reviewed(db, event.id, None, "   ")
    with pytest.raises(ReviewRefused, match="at most"):
        mark_reviewed(db, event.id, None, "x" * 2001)
    done = make_event(db, status="confirmed")
    with pytest.raises(ReviewRefused, match="only claimed or reported"):
        mark_reviewed(db, done.id, None, "checked")


def test_a_status_change_clears_due_and_restarts_the_clock(db: Session, fixed: FixedClock) -> None:
    confirmed_later = make_event(db, title="Later confirmed", status="claimed")
    reported_later = make_event(db, title="Later reported", status="claimed")
    retitled = make_event(db, title="Only retitled", status="claimed")
    fixed.days(40)
    assert due_ids(db) >= {confirmed_later.id, reported_later.id, retitled.id}
    reedit(db, confirmed_later, status="confirmed")
    reedit(db, reported_later, status="reported")
    reedit(db, retitled, title="Only retitled, still claimed")
    assert due_ids(db) & {confirmed_later.id, reported_later.id, retitled.id} == {retitled.id}
    assert reported_later.review_clock_at == fixed.now
    history = db.scalars(select(AuditEntry).where(AuditEntry.entity_id == reported_later.id)).all()
    assert any(h.changes.get("status") == {"before": "claimed", "after": "reported"} for h in history)
    fixed.days(30)
    assert reported_later.id in due_ids(db) and confirmed_later.id not in due_ids(db)


def test_days_come_from_the_settings_per_kind(
    db: Session, fixed: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "review_after_days", 20)
    monkeypatch.setattr(settings, "review_after_days_by_kind", {"deployment": 7})
    deployment = make_event(db, title="Deployed", kind="deployment", status="claimed")
    offer = make_event(db, title="Offered", kind="offer", status="claimed")
    fixed.days(7)
    assert due_ids(db) & {deployment.id, offer.id} == {deployment.id}
    fixed.days(13)
    assert due_ids(db) >= {deployment.id, offer.id}
    copy = facts.selection(db, DUE)
    assert copy.review_ids(None, 10) == oracle.review_ids(db, EventFilter(), None, 10)


def test_settings_refuse_unknown_kinds() -> None:
    from pydantic import ValidationError

    from app.config import Settings

    with pytest.raises(ValidationError, match="unknown kind"):
        Settings(review_after_days_by_kind={"parade": 3})
    with pytest.raises(ValidationError, match="1 to 3650"):
        Settings(review_after_days_by_kind={"offer": 0})


# ---- the page, the count and every output ---------------------------------------------------------
def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<a class="title" href="/events/(\d+)"', html)]


def test_review_page_lists_due_events_oldest_first_with_paging(
    analyst: Client, db: Session, fixed: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "page_size", 2)
    made = []
    for i in range(5):
        supplier = "RUS" if i % 2 == 0 else "CHN"
        countries = [{"code": supplier, "role": "supplier"}, {"code": "VEN", "role": "recipient"}]
        made.append(make_event(db, title=f"Claim {i}", status="claimed", countries=countries).id)
        fixed.days(1)
    fixed.days(31)  # the first five are due (oldest clock first), a fresh one is not
    make_event(db, title="Fresh claim", status="claimed")
    db.commit()
    first = analyst.get("/review")
    assert first.status_code == 200 and _ids(first.text) == made[:2]
    assert "<strong>5</strong> events due for review" in first.text
    cursor = re.search(r'href="/review\?cursor=([^"]+)"', first.text)
    assert cursor
    second = analyst.get(f"/review?cursor={cursor.group(1)}")
    assert _ids(second.text) == made[2:4]
    # The filter panel works as on the timeline: the same parameters, the same policy.
    russian = analyst.get("/review?supplier=RUS", headers={"HX-Request": "true"})
    assert _ids(russian.text) == [made[0], made[2]] and 'id="filter-errors"' not in russian.text
    bad = analyst.get("/review?supplier=Atlantis&kind=parade")
    assert bad.status_code == 200 and "Atlantis" in bad.text and 'id="filter-errors"' in bad.text
    assert _ids(bad.text) == made[:2]
    assert analyst.get("/review?cursor=nonsense").status_code == 200
    # The top bar's count.
    assert ">5</span>" in analyst.get("/review/count").text


def test_due_is_the_same_on_every_output(analyst: Client, db: Session, fixed: FixedClock) -> None:
    old = make_event(db, title="Old claim", status="claimed")
    make_event(db, title="Old confirmed", status="confirmed")
    fixed.days(35)
    make_event(db, title="New claim", status="claimed")
    db.commit()
    expected = {old.id}
    page = analyst.get("/?due=1")
    assert set(_ids(page.text)) == expected and "due for review" in page.text  # its chip
    assert set(_ids(analyst.get("/?due=1", headers={"HX-Request": "true"}).text)) == expected
    api = analyst.get("/api/v1/events?due=1")
    assert api.status_code == 200 and {e["id"] for e in api.json()["items"]} == expected
    export = analyst.get("/export.csv?due=1")
    assert {int(r["id"]) for r in csv.DictReader(io.StringIO(export.text))} == expected
    assert set(_ids(analyst.get("/review").text)) == expected
    assert 'data-status="1 event' in analyst.get("/dyads?due=1").text
    refused = analyst.get("/api/v1/events?due=yes")
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "due"]


def test_marking_reviewed_from_the_queue(analyst: Client, db: Session, fixed: FixedClock) -> None:
    event = make_event(db, title="Deployed, says TASS", status="claimed")
    fixed.days(31)
    db.commit()
    assert _ids(analyst.get("/review").text) == [event.id]
    empty = analyst.post(f"/events/{event.id}/review", data={"note": " ", "next": "/review"})
    assert (
        empty.status_code == 422
        and "write a short note" in empty.text
        and 'aria-invalid="true"' in empty.text
    )
    partial = analyst.post(f"/events/{event.id}/review", data={"note": ""}, headers={"HX-Request": "true"})
    assert "write a short note" in partial.text
    done = analyst.post(
        f"/events/{event.id}/review",
        data={"note": "no new source <b>yet</b>", "next": "https://evil.example/"},
    )
    assert done.status_code == 303 and done.headers["location"] == f"/events/{event.id}"
    assert _ids(analyst.get("/review").text) == []
    page = analyst.get(f"/events/{event.id}").text
    assert "Reviewed, still unconfirmed" in page and "no new source &lt;b&gt;yet&lt;/b&gt;" in page
    htmx = analyst.post(
        f"/events/{event.id}/review",
        data={"note": "again", "next": "/review"},
        headers={"HX-Request": "true"},
    )
    assert htmx.status_code == 200 and "Reviewed: #" in htmx.text


def test_viewers_cannot_review(client: Client, db: Session, fixed: FixedClock) -> None:
    event = make_event(db, status="claimed")
    client.login("viewer")
    assert client.post(f"/events/{event.id}/review", data={"note": "x"}).status_code == 403
    assert "Reviewed, still unconfirmed</button>" not in client.get("/review").text


def test_imported_and_created_events_get_a_clock(db: Session) -> None:
    event = make_event(db, **event_data(title="Server default"))
    assert event.review_clock_at is not None
