"""The chart series: counts by month and kind for the filter, gaps filled, year-only events told apart."""

from __future__ import annotations

import json
import re

from sqlalchemy.orm import Session

from app.filters import EventFilter
from app.queries.aggregates.chart import chart_series
from app.queries.events import count_events
from tests.conftest import Client
from tests.corpus import make_corpus
from tests.factories import from_mapping, make_event
from tests.test_timeline import lazy_parts, with_aggregates


def test_monthly_series_by_kind_with_gaps_filled(db: Session) -> None:
    make_corpus(db)
    make_event(db, title="Later offer", kind="offer", date="2026-01-10")
    chart = chart_series(db, EventFilter())
    assert chart.granularity == "month"
    assert chart.labels == ["Sep 2025", "Oct 2025", "Nov 2025", "Dec 2025", "Jan 2026"]
    assert chart.series == {
        "statement": [0, 1, 0, 0, 0],
        "offer": [1, 0, 0, 0, 1],  # delta starts in September; its span does not count twice
        "transfer": [0, 0, 1, 0, 0],
    }
    assert chart.note == "1 event is dated only to the year and is not drawn by month."
    assert chart.total == count_events(db, EventFilter()) - 1


def test_chart_follows_the_filter(db: Session) -> None:
    make_corpus(db)
    for params in ({"kind": "statement"}, {"country": "VEN"}, {"supplier": "CHN"}, {"q": "shipment"}):
        f = from_mapping(params)
        chart = chart_series(db, f)
        assert chart.total == count_events(db, f), params
    assert list(chart_series(db, from_mapping({"kind": "statement"})).series) == ["statement"]


def test_long_spans_switch_to_years_and_keep_year_only_events(db: Session) -> None:
    make_corpus(db)
    make_event(db, title="Old agreement", kind="agreement", date="2005-03-01")
    chart = chart_series(db, EventFilter())
    assert chart.granularity == "year"
    assert chart.labels[0] == "2005" and chart.labels[-1] == "2025" and len(chart.labels) == 21
    assert chart.total == count_events(db, EventFilter())
    assert chart.series["deployment"][13] == 1  # charlie, 2018
    assert chart.note == ""


def test_no_events_no_chart(db: Session) -> None:
    chart = chart_series(db, from_mapping({"kind": "strike"}))
    assert chart.buckets == [] and chart.total == 0


def test_page_embeds_the_chart_data_and_a_table(client: Client, db: Session) -> None:
    make_corpus(db)
    client.login("viewer")
    page = client.get("/?country=VEN").text
    html = with_aggregates(client, page)
    assert client.get("/timeline/chart?country=VEN").text in html  # the page's chart is its route's
    assert lazy_parts(client.get("/?country=VEN&aggregates=inline").text) == {}
    data = json.loads(
        re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S).group(1)
    )  # type: ignore[union-attr]
    assert data["buckets"] == ["2025-09", "2025-10"] and data["granularity"] == "month"
    assert {s["kind"]: s["data"] for s in data["series"]} == {"statement": [0, 1], "offer": [1, 0]}
    assert "<summary>Show the numbers" in html
    # the table reads newest first, like the timeline under it
    assert html.index('<th scope="row">Oct 2025</th>') < html.index('<th scope="row">Sep 2025</th>')
    empty = with_aggregates(client, client.get("/?kind=strike").text)
    assert "No events to draw for this filter." in empty and 'id="chart-data"' not in empty
