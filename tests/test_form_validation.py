"""Bad input on the event form: 422, each message beside its field, every typed value kept, nothing saved."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Event
from tests.factories import make_event

BASE: dict[str, Any] = {
    "title": "Iran trains drone operators in Venezuela",
    "kind": "training",
    "status": "reported",
    "date_year": "2024",
    "date_month": "03",
    "countries-0-code": "IRN",
    "countries-0-role": "supplier",
    "countries-1-code": "VEN",
    "countries-1-role": "recipient",
    "systems-0-designation": "Mohajer-6",
    "systems-0-quantity": "3",
    "sources-0-publisher": "Reuters",
    "sources-0-url": "https://reuters.com/a",
    "sources-0-reliability": "B",
    "sources-0-credibility": "2",
    "sources-0-quote": "Instructors arrived in March",
}
# Well past tomorrow: the cases are built when the module is imported, and a run may cross midnight.
SOON = date.today() + timedelta(days=7)

CASES = [
    ("empty title", {"title": "   "}, "title", "Give the event a title."),
    (
        "future date",
        {
            "date_year": str(SOON.year),
            "date_month": f"{SOON.month:02d}",
            "date_day": str(SOON.day),
        },
        "date",
        "This date is in the future",
    ),
    ("no year", {"date_year": "", "date_month": ""}, "date", "Enter at least the year"),
    ("day without month", {"date_month": "", "date_day": "12"}, "date", "Choose a month for this day"),
    ("no such day", {"date_month": "02", "date_day": "30"}, "date", "There is no such date: 2024-02-30."),
    (
        "end before start",
        {"date_end_year": "2023", "date_end_month": "12"},
        "date_end",
        "The end date is before the start date.",
    ),
    (
        "unknown country",
        {"countries-1-code": "XQZ"},
        "countries-1-code",
        "Unknown country “XQZ”; use an ISO 3166-1 code such as RUS.",
    ),
    (
        "non-http URL",
        {"sources-0-url": "ftp://example.com/file"},
        "sources-0-url",
        "A source URL must be a web address starting with http:// or https://.",
    ),
    (
        "negative quantity",
        {"systems-0-quantity": "-2"},
        "systems-0-quantity",
        "A quantity cannot be below zero.",
    ),
    ("quantity in words", {"systems-0-quantity": "a few"}, "systems-0-quantity", "whole number"),
    ("bad reliability", {"sources-0-reliability": "G"}, "sources-0-reliability", "from A to F"),
    ("bad credibility", {"sources-0-credibility": "9"}, "sources-0-credibility", "from 1 to 6"),
    ("unknown kind", {"kind": "invasion"}, "kind", "Choose what kind of event this is"),
    # No grade is assumed: a source with a grade left unchosen is asked for it (F and 6 are explicit choices).
    (
        "no reliability",
        {"sources-0-reliability": ""},
        "sources-0-reliability",
        "Choose how reliable the source is",
    ),
    (
        "no credibility",
        {"sources-0-credibility": ""},
        "sources-0-credibility",
        "Choose how credible the information",
    ),
    (
        "missing publisher",
        {"sources-0-publisher": ""},
        "sources-0-publisher",
        "Enter who published this source.",
    ),
    ("future source date", {"sources-0-published": str(SOON.year + 1)}, "sources-0-published", "future"),
    ("bad stage", {"stage_override": "9"}, "stage_override", "Choose a stage from the list."),
]


def count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Event)) or 0)


@pytest.mark.parametrize(("label", "changes", "field", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_message_beside_its_field(analyst, db: Session, label, changes, field, message) -> None:  # type: ignore[no-untyped-def]
    before = count(db)
    data = {**BASE, "client_token": str(uuid.uuid4()), **changes}
    response = analyst.post("/events/new", data=data)
    assert response.status_code == 422, label
    html = response.text
    # the message sits beside the field, which points at it for screen readers
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    assert error, f"no message beside {field}"
    assert message in error[1].replace("&#34;", '"')
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html) or (
        field in ("date", "date_end")
        and re.search(rf'<fieldset class="date-group" aria-describedby="{field}-hint {field}-error"', html)
    )
    if field not in ("date", "date_end"):
        assert re.search(rf'id="{field}"[^>]*aria-describedby="{field}-error', html)
    # the summary at the top links to the field
    assert f'href="#{field}"' in html.split('id="error-summary"')[1].split("</div>")[0]
    # every typed value is still there
    for name, value in data.items():
        if name in ("kind", "status", "stage_override") or name.endswith(
            ("_month", "-role", "reliability", "credibility")
        ):
            continue
        if name.endswith("quote"):
            assert f">{value}</textarea>" in html
        else:
            assert f'name="{name}" value="{value}"' in html, name
    assert count(db) == before


def _refused(analyst, **changes: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Post a new event with these changes to BASE; the 422 page and its error summary."""
    response = analyst.post("/events/new", data={**BASE, "client_token": str(uuid.uuid4()), **changes})
    assert response.status_code == 422
    return response.text, response.text.split('id="error-summary"')[1].split("</div>")[0]


def test_several_errors_at_once_are_all_listed(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    page, summary = _refused(
        analyst, title="", kind="", **{"sources-0-url": "javascript:alert(1)", "systems-0-quantity": "-1"}
    )
    assert "4 things need fixing" in summary
    for field in ("title", "kind", "sources-0-url", "systems-0-quantity"):
        assert f'href="#{field}"' in summary
    assert 'value="javascript:alert(1)"' in page  # kept for correction, escaped, never a link


def test_an_end_before_the_start_is_listed_with_the_other_errors(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    page, summary = _refused(analyst, title="", date_end_year="2023", date_end_month="12")
    assert "2 things need fixing" in summary  # not one now and the date on the next submit
    assert 'href="#title"' in summary and "The end date is before the start date." in page


def test_edit_form_errors_keep_version_and_values(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    data = {**BASE, "version": str(event.version), "title": "", "reason": "typo"}
    response = analyst.post(f"/events/{event.id}/edit", data=data)
    assert response.status_code == 422
    assert f'name="version" value="{event.version}"' in response.text
    assert 'name="reason" value="typo"' in response.text
    db.refresh(event)
    assert event.title == "Russia offers Kalibr missiles to Venezuela"
    assert event.version == 1


def test_failure_inside_the_save_leaves_nothing_half_saved(analyst, db: Session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An error after the event row was written rolls the whole submit back (one transaction)."""
    import app.services.events as service

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "refresh_search", boom)
    before = count(db)
    with pytest.raises(RuntimeError):
        analyst.http.post(
            "/events/new", data={**BASE, "client_token": str(uuid.uuid4()), "confirm_duplicate": "1"}
        )
    assert count(db) == before


def test_a_new_source_starts_without_grades_and_f6_are_choices(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    html = analyst.get("/events/new").text
    for key in ("sources-0-reliability", "sources-0-credibility"):
        select_html = html.split(f'id="{key}"')[1].split("</select>")[0]
        assert '<option value="">Choose a grade…</option>' in select_html
        assert " selected" not in select_html
    # A source added with the "add" button starts blank as well.
    added = analyst.get("/events/form-row/source?i=1").text
    assert " selected" not in added.split('id="sources-1-reliability"')[1].split("</select>")[0]
    # Both grades left out: both asked for, nothing saved.
    _page, summary = _refused(analyst, **{"sources-0-reliability": "", "sources-0-credibility": ""})
    assert "2 things need fixing" in summary
    # Listed in page order: reliability, then credibility.
    assert summary.index('href="#sources-0-reliability"') < summary.index('href="#sources-0-credibility"')
    # F and 6 chosen on purpose are kept as chosen.
    data = {
        **BASE,
        "client_token": str(uuid.uuid4()),
        "sources-0-reliability": "F",
        "sources-0-credibility": "6",
    }
    response = analyst.post("/events/new", data=data, follow_redirects=False)
    assert response.status_code == 303
    event = db.scalars(select(Event).where(Event.title == BASE["title"])).one()
    assert [(s.reliability, s.credibility) for s in event.sources] == [("F", 6)]
