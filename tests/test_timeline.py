"""The timeline over HTTP: full page vs HTMX partial, bad values as messages, keyset pages, query counts."""

from __future__ import annotations

import html as htmllib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.demo import seed_demo
from app.queries.aggregates import cache, facts
from tests.conftest import Client
from tests.corpus import make_corpus
from tests.factories import make_event

HX = {"HX-Request": "true"}


LAZY = re.compile(r'hx-get="(/timeline/(count|facets|chart)\?[^"]*)"')


def lazy_parts(html: str) -> dict[str, str]:
    """The aggregate routes a page or partial asks for once shown: name -> URL (unescaped)."""
    return {name: htmllib.unescape(url) for url, name in LAZY.findall(html)}


def with_aggregates(client: Client, html: str, expect: tuple[str, ...] = ()) -> str:
    """The page followed by what its placeholders load (as HTMX would), so assertions see the whole view.

    With the facts copy read, a view carries its total, facets and chart itself: nothing is expected.
    """
    parts = lazy_parts(html)
    assert sorted(parts) == sorted(expect)
    fragments = []
    for url in parts.values():
        r = client.get(url, headers=HX)
        assert r.status_code == 200, url
        fragments.append(r.text)
    return html + "".join(fragments)


@contextmanager
def counting(connection: Connection) -> Iterator[list[str]]:
    """Every SQL statement run on the test connection while the block runs."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", record)


def _many(db: Session, n: int) -> None:
    for i in range(n):
        make_event(db, title=f"Generated event {i}", date=f"2025-{(i % 12) + 1:02d}-{(i % 27) + 1:02d}")


def test_full_page_has_panel_chart_and_rows(client: Client, db: Session) -> None:
    seed_demo(db)
    client.login("viewer")
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["vary"] == "HX-Request"
    html = r.text
    assert "<html" in html and 'id="filters"' in html and 'id="results"' in html
    # the form swaps only the results and pushes the URL; the page still works as a plain GET form
    form = re.search(r'<form id="filters"[^>]*>', html).group(0)  # type: ignore[union-attr]
    assert (
        'method="get" action="/"' in form and 'hx-target="#results"' in form and 'hx-push-url="true"' in form
    )
    # one request per view: the page itself carries the chart, the facet counts and the total
    assert lazy_parts(html) == {}
    assert "Drawing the chart…" not in html and "Counting matching events…" not in html
    assert_full_view(html)
    # the lazy routes still answer (a process whose copy is not read yet sends placeholders for them)
    lazy = "".join(client.get(f"/timeline/{p}", headers=HX).text for p in ("chart", "count", "facets"))
    assert_full_view(lazy + html[: html.index('id="chart-card"')])
    # without JavaScript: everything inline, in one request
    inline = client.get("/?aggregates=inline").text
    assert lazy_parts(inline) == {}
    assert_full_view(inline)


def assert_full_view(html: str) -> None:
    """Chart, facet counts, total and export link of the demo data set, unfiltered."""
    assert 'id="chart-data"' in html and "/static/vendor/chart.js-4.6.1/chart.umd.min.js" in html
    chart = json.loads(re.search(r'id="chart-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert sum(sum(s["data"]) for s in chart["series"]) == 10  # the 2018 event has no month
    assert "dated only to the year" in html
    # autocomplete inputs wired to the suggest endpoints
    for source in ("actors", "systems", "countries"):
        assert f'hx-get="/suggest/{source}"' in html
    assert '<datalist id="dl-actor">' in html
    # facet counts beside the options
    assert re.search(
        r'value="statement"[^>]*>\s*<span class="facet-label">statement</span>\s*'
        r'<span class="facet-count"[^>]*>4<',
        html,
    )
    assert "Export these 11 events (CSV)" in html and 'href="/export.csv?"' in html


def test_htmx_request_gets_only_results_and_out_of_band_extras(client: Client, db: Session) -> None:
    seed_demo(db)
    client.login("viewer")
    r = client.get("/", params={"supplier": "RUS", "kind": "statement"}, headers=HX)
    assert r.status_code == 200 and r.headers["vary"] == "HX-Request"
    assert r.headers["hx-push-url"] == "/?supplier=RUS&kind=statement"
    html = r.text
    assert "<html" not in html and 'id="filters"' not in html
    assert html.lstrip().startswith('<div id="results"')
    assert 'id="facet-kind" class="facet-list" hx-swap-oob="true"' in html
    assert 'id="chart-card"' in html and 'hx-swap-oob="true"' in html
    assert 'id="facets-status"' in html  # the status line of the counted lists, out of band too
    assert lazy_parts(html) == {}  # counts, chart and total came in this one response
    assert re.search(
        r'id="facet-kind" class="facet-list" hx-swap-oob="true">.*?value="statement" checked>\s*'
        r'<span class="facet-label">statement</span>\s*<span class="facet-count"[^>]*>\d+<',
        html,
        re.S,
    )
    assert 'id="chart-data"' in html
    assert 'href="/export.csv?supplier=RUS&amp;kind=statement"' in html
    assert 'href="/export.csv?supplier=RUS&amp;kind=statement&amp;bom=1"' in html
    state = json.loads(re.search(r'id="filter-state">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert state["errors"] == []


def test_history_restore_gets_the_whole_page(client: Client, db: Session) -> None:
    client.login("viewer")
    r = client.get("/", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in r.text and 'id="filters"' in r.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("country=Atlantis", "unknown country “Atlantis”"),
        ("kind=parade", "unknown kind “parade”"),
        ("from=2025-13-01", "is not a real date"),
        ("from=2025-11&to=2025-10", "before the “from” date"),
        ("stage_min=99", "stage number"),
        ("actor=Nobody%20Atall", "no actor is called “Nobody Atall”"),
        ("system=Zircon", "no system is called “Zircon”"),
        ("cursor=not-a-cursor", "page cursor is not valid"),
        ("cursor=%FF%FE", "page cursor is not valid"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_values_show_a_message_never_a_500(
    client: Client, db: Session, query: str, message: str, htmx: bool
) -> None:
    seed_demo(db)
    client.login("viewer")
    r = client.get(f"/?{query}", headers=HX if htmx else {})
    assert r.status_code == 200
    assert message in r.text
    assert 'role="alert"' in r.text
    # the bad value is left out, so the rest of the view still shows events
    assert "Duma defence official" in r.text


def test_month_grouping_newest_first_with_precision(client: Client, db: Session) -> None:
    make_corpus(db)
    client.login("viewer")
    html = client.get("/").text
    heads = re.findall(r'class="month-head"[^>]*>([^<]+)<', html)
    assert heads == ["Nov 2025", "Oct 2025", "Sep 2025", "2018"]
    assert "Sep – 2 Oct 2025" in html or "20 Sep 2025 – 2 Oct 2025" in html


def test_keyset_pages_cover_everything_once(client: Client, db: Session) -> None:
    _many(db, 120)
    client.login("viewer")
    seen: list[str] = []
    url = "/"
    pages = 0
    while url:
        html = client.get(url, headers=HX if pages else {}).text
        seen += re.findall(r"Generated event (\d+)<", html)
        m = re.search(r'href="(/\?cursor=[^"]+)"[^>]*>Older events', html)
        url = m.group(1).replace("&amp;", "&") if m else ""
        pages += 1
    assert pages == 3
    assert sorted(seen, key=int) == [str(i) for i in range(120)]


def _statements_for(
    client: Client, connection: Connection, url: str, headers: dict[str, str] | None = None
) -> list[str]:
    with counting(connection) as statements:
        r = client.get(url, headers=headers or {})
        assert r.status_code == 200
    return statements


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/?supplier=RUS&kind=offer&kind=statement&from=2025-01&actor=Sergei%20Ryabkov&q=missiles",
        "/?country=VEN&system=Kalibr&source=TASS&reliability_max=C&tag=caribbean&stage_min=1",
    ],
)
def test_query_count_does_not_grow_with_events(
    client: Client, db: Session, connection: Connection, url: str
) -> None:
    client.login("viewer")
    _many(db, 5)
    make_event(db)
    db.commit()
    facts.current(db)  # the copy follows the writes (as the app's start-up read and patches do)
    few = _statements_for(client, connection, url)
    _many(db, 40)
    db.commit()
    facts.current(db)
    cache.clear()
    many = _statements_for(client, connection, url)
    assert len(few) == len(many), "\n---\n".join(many)
    assert not any(" OFFSET " in s.upper() for s in many)
    # session lookup + page events + one query per eager-loaded link + count + facets + chart (+ name checks)
    assert len(many) <= 14


def test_next_page_partial_skips_facets_and_chart(
    client: Client, db: Session, connection: Connection
) -> None:
    client.login("viewer")
    _many(db, 60)
    db.commit()
    first = client.get("/").text
    nxt = re.search(r'href="(/\?cursor=[^"]+)"', first).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    with counting(connection) as statements:
        r = client.get(nxt, headers=HX)
    assert "hx-swap-oob" not in r.text and "Generated event" in r.text
    # paging sends again only the total (cached), never facets or chart, and asks for nothing more
    assert lazy_parts(r.text) == {} and "60 events" in r.text
    assert not any("GROUP BY" in s.upper() for s in statements)
    cache.clear()
    facts.forget()
    with counting(connection) as cold:
        client.get("/", headers=HX)
    with counting(connection) as warm:
        client.get("/", headers=HX)
    # cold: the in-memory copy is read once for the page and its aggregates; warm: all from the cache
    assert len([s for s in cold if "coalesce(max(id), 0) FROM events" in s]) == 1
    assert not any("string_agg" in s or "GROUP BY" in s.upper() for s in warm)
    assert len(warm) < len(cold)


def test_facets_and_chart_follow_every_write_at_once(client: Client, db: Session) -> None:
    from app.services.events import delete_event, restore_event

    corpus = make_corpus(db)
    client.login("viewer")

    def statements_count() -> str:
        html = with_aggregates(client, client.get("/?country=VEN", headers=HX).text)
        m = re.search(
            r'value="statement"[^>]*>\s*<span class="facet-label">statement</span>\s*'
            r'<span class="facet-count"[^>]*>(\d+)<',
            html,
        )
        assert m
        return m.group(1)

    assert statements_count() == "1"
    make_event(db, kind="statement", title="Another statement")  # supplier RUS, recipient VEN
    assert statements_count() == "2"
    delete_event(db, corpus["alpha"].id, None)
    db.flush()
    assert statements_count() == "1"
    restore_event(db, corpus["alpha"].id, None)
    db.flush()
    assert statements_count() == "2"
