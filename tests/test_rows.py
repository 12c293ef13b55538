"""Timeline rows (one SQL query, no ORM objects) say what the ORM event says, for every field a row shows."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.queries.rows import TimelineRow, timeline_rows
from app.services.events import delete_event, load_event
from tests.factories import make_event


def expected(db: Session, event_id: int) -> TimelineRow:
    """The row as the ORM event describes it (the template's former reading of it)."""
    e = load_event(db, event_id)
    graded = sorted(e.sources, key=lambda s: (s.reliability, s.credibility))
    return TimelineRow(
        id=e.id,
        title=e.title,
        kind=e.kind,
        stage=e.stage,
        status=e.status,
        date_start=e.date_start,
        date_precision=e.date_precision,
        date_end=e.date_end,
        date_end_precision=e.date_end_precision,
        origin_count=e.origin_count,
        likelihood=e.likelihood,
        likelihood_rationale=e.likelihood_rationale,
        confidence=e.confidence,
        confidence_rationale=e.confidence_rationale,
        review_clock_at=e.review_clock_at,
        suppliers=tuple(c.country_code for c in e.countries if c.role == "supplier"),
        recipients=tuple(c.country_code for c in e.countries if c.role == "recipient"),
        targets=tuple(c.country_code for c in e.countries if c.role == "target"),
        systems=tuple((s.system.designation, s.quantity) for s in e.systems),
        source_count=len(e.sources),
        best_grade=f"{graded[0].reliability}{graded[0].credibility}" if graded else None,
    )


def test_rows_match_the_events_in_the_order_asked_and_leave_out_deleted_ones(db: Session) -> None:
    rich = make_event(
        db,
        title="Iran and North Korea send drones and shells to Russia for use against Ukraine",
        kind="transfer",
        status="confirmed",
        date="2024-03",
        date_end="2024-09",
        likelihood="very likely",
        likelihood_rationale="Seen on <b>wreckage</b>",
        confidence="moderate",
        confidence_rationale="Two origins",
        countries=[
            {"code": "PRK", "role": "supplier"},
            {"code": "RUS", "role": "recipient"},
            {"code": "IRN", "role": "supplier"},
            {"code": "UKR", "role": "target"},
        ],
        systems=[
            {"designation": "Shahed-136", "quantity": 400, "category": "drone", "origin": "IRN"},
            {"designation": "KN-23", "category": "ballistic missile", "origin": "PRK"},
        ],
        sources=[
            {"publisher": "Reuters", "url": "https://r.example/1", "reliability": "B", "credibility": 3},
            {"publisher": "TASS", "url": "https://t.example/1", "reliability": "B", "credibility": 2},
            {
                "publisher": "Kyiv Independent",
                "url": "https://k.example/1",
                "reliability": "C",
                "credibility": 1,
            },
        ],
    )
    bare = make_event(
        db, title="A statement with nothing attached", kind="statement", countries=[], systems=[], sources=[]
    )
    plain = make_event(db)
    gone = make_event(db, title="Entered twice")
    delete_event(db, gone.id, None, "duplicate")
    db.flush()

    ids = [plain.id, gone.id, rich.id, 10**9, bare.id]
    rows = timeline_rows(db, ids)
    assert [r.id for r in rows] == [plain.id, rich.id, bare.id]
    assert rows == [expected(db, plain.id), expected(db, rich.id), expected(db, bare.id)]
    assert rows[1].suppliers == ("PRK", "IRN") and rows[1].best_grade == "B2"
    assert rows[1].systems == (("Shahed-136", 400), ("KN-23", None))
    assert rows[2].source_count == 0 and rows[2].best_grade is None and rows[2].systems == ()
    assert timeline_rows(db, []) == []


def test_timeline_and_review_rows_render_what_the_row_holds(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(
        db,
        title="Belarus hosts Russian Iskander units",
        kind="deployment",
        countries=[{"code": "RUS", "role": "supplier"}, {"code": "BLR", "role": "recipient"}],
        systems=[
            {"designation": "Iskander-M", "quantity": 2, "category": "ballistic missile", "origin": "RUS"}
        ],
        sources=[
            {"publisher": "Reuters", "url": "https://r.example/2", "reliability": "A", "credibility": 2},
            {"publisher": "BelTA", "url": "https://b.example/2", "reliability": "D", "credibility": 4},
        ],
    )
    db.commit()
    html = analyst.get("/").text
    row = html[html.index(f'id="event-{event.id}"') :]
    row = row[: row.index("</li>")]
    assert (
        '<span title="Russia">RUS</span> <span aria-label="to">→</span> <span title="Belarus">BLR</span>'
        in row
    )
    assert "Iskander-M ×2" in row
    assert "2 origins · 2 sources" in row and '<span class="grade">A2</span>' in row
