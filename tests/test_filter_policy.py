"""One policy for bad filter values, on every output: pages leave the value out and say so (their export
link giving exactly the rows shown); the API, /export.csv and `signalboard export` refuse, naming it.

Every filter parameter is walked with a valid, an unknown and a malformed value through the page, its
HTMX partial, the lazy total, facets and chart, /dyads (page and partial), the Atom feed, a saved view's
count, the export, the API and the command line, and the answers must agree. Then "did you mean" for
names that almost match.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlencode

import feedparser
import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.auth.feed_tokens import create_feed_token
from app.cli import main as cli_main
from app.domain import clock
from app.domain.names import close_names
from app.filters import PARAMS, EventFilter
from app.models import Event
from app.queries.aggregates import facts
from app.queries.events import Cursor, matching_ids
from tests.conftest import Client, truncate_all
from tests.factories import make_event

HX = {"HX-Request": "true"}
OLD = timedelta(days=40)
LONG = "x" * 300


@dataclass(frozen=True)
class Case:
    """One value (or repeated values) of one parameter, and whether machines must refuse it."""

    param: str
    values: tuple[str, ...]
    refused: bool
    shown: str = ""  # what the message must quote (the value, or the start of a long one)

    @property
    def query(self) -> str:
        return urlencode([(self.param, v) for v in self.values])


def _cases() -> list[Case]:
    valid = {
        "q": "Peskov",
        "country": "VEN",
        "supplier": "RUS",
        "recipient": "Russia",
        "target": "UKR",
        "actor": "dmitry peskov",
        "system": "KALIBR",
        "system_exact": "1",
        "kind": "transfer",
        "status": "confirmed",
        "stage_min": "2",
        "from": "2024",
        "to": "2024-12",
        "source": "tass",
        "reliability_max": "b",
        "tag": "Drones",
        "due": "1",
        "origins_min": "2",
        "origins_max": "1",
        "likelihood": "Likely",
        "confidence": "high",
    }
    # Unknown: a well-formed value that names nothing the parameter knows.
    unknown = {
        "country": "Atlantis",
        "supplier": "XXX",
        "recipient": "Narnia",
        "target": "Oz",
        "actor": "Nobody Known",
        "system": "Zircon",
        "kind": "parade",
        "status": "rumoured",
        "stage_min": "9",
        "from": "2025-13",
        "to": "2025-02-30",
        "reliability_max": "Z",
        "origins_min": "101",
        "origins_max": "500",
        "likelihood": "maybe",
        "confidence": "certain",
    }
    # Tags, publishers and words of text are never unknown (app.filters.page_filter): they match nothing.
    empty = {"q": "xylophonic", "source": "Nobody News", "tag": "nosuch", "system_exact": "0", "due": "0"}
    malformed = {
        "due": "maybe",
        "system_exact": "maybe",
        "stage_min": "high",
        "from": "yesterday",
        "to": "soon",
        "reliability_max": "AB",
        "origins_min": "two",
        "origins_max": "-1",
    }
    cases = []
    for param in PARAMS:
        cases.append(Case(param, (valid[param],), refused=False))
        if param in unknown:
            cases.append(Case(param, (unknown[param],), refused=True, shown=unknown[param]))
        else:
            cases.append(Case(param, (empty[param],), refused=False))
        if param == "q":
            cases.append(Case(param, ("missiles", "drones"), refused=True, shown="missiles"))
        else:
            bad = malformed.get(param, LONG)
            cases.append(Case(param, (bad,), refused=True, shown=bad[:20]))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def corpus(engine: Engine) -> Iterator[dict[str, int]]:
    """A few committed events (the command line reads through its own connection)."""
    truncate_all(engine)
    with Session(engine) as s, mock.patch.object(clock, "utcnow", return_value=clock.utcnow() - OLD):
        events = {
            # Created 40 days ago and still reported: due for review (the others are not: see below).
            "peskov": make_event(
                s,
                title="Peskov on Venezuela",
                summary="Peskov says Russia stands by Caracas.",
                kind="statement",
                date="2025-10-14",
                countries=[{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}],
                actors=[{"name": "Dmitry Peskov", "role": "speaker"}],
                systems=[{"designation": "Kalibr"}],
                sources=[{"publisher": "TASS", "url": "https://tass.com/1", "reliability": "C"}],
                tags=["caribbean"],
                likelihood="likely",
                confidence="moderate",
            ),
            "shahed": make_event(
                s,
                title="Drones delivered to Russia",
                summary="Shahed drones are delivered.",
                kind="transfer",
                status="confirmed",
                date="2024-05",
                countries=[
                    {"code": "IRN", "role": "supplier"},
                    {"code": "RUS", "role": "recipient"},
                    {"code": "UKR", "role": "target"},
                ],
                actors=[{"name": "Sergei Ryabkov", "role": "speaker"}],
                systems=[{"designation": "Shahed-136"}],
                # Two origins: Reuters (and a site relaying it) and the AP.
                sources=[
                    {"publisher": "Reuters", "url": "https://reuters.com/1", "reliability": "B"},
                    {"publisher": "Latin Times", "origin": "Reuters", "reliability": "E"},
                    {"publisher": "AP", "reliability": "C"},
                ],
                tags=["drones"],
                likelihood="almost certain",
                confidence="high",
            ),
            "parts": make_event(
                s,
                title="Parts offered",
                summary="Machine tools offered.",
                kind="offer",
                date="2023-01-01",
                countries=[{"code": "CHN", "role": "supplier"}, {"code": "RUS", "role": "recipient"}],
                actors=[],
                systems=[],
                sources=[
                    {"publisher": "Kyiv Independent", "url": "https://kyiv.example/1", "reliability": "D"}
                ],
                tags=["parts"],
            ),
        }
        s.commit()
        ids = {k: e.id for k, e in events.items()}
    with Session(engine) as s:
        # Only the statement stays due: the others' clocks restart today.
        s.execute(update(Event).where(Event.id != ids["peskov"]).values(review_clock_at=clock.utcnow()))
        s.execute(text("INSERT INTO data_changes DEFAULT VALUES"))
        s.commit()
    facts.forget()
    yield ids
    truncate_all(engine)


# ---- reading each output -----------------------------------------------------------------------------
def page_ids(text: str) -> set[int]:
    return {int(i) for i in re.findall(r'href="/events/(\d+)"', text)}


def total_of(text: str) -> int:
    found = re.search(r"<strong>([\d,]+)</strong> event", text)
    assert found, text[:500]
    return int(found.group(1).replace(",", ""))


def dyads_total(text: str) -> int:
    found = re.search(r'data-status="([\d,]+) event', text)
    assert found, text[:500]
    return int(found.group(1).replace(",", ""))


def csv_ids(body: bytes) -> set[int]:
    return {int(row["id"]) for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig")))}


def cli_export(query: str, capsysbinary: Any) -> tuple[int, bytes, str]:
    code = cli_main(["export", query])
    out = capsysbinary.readouterr()
    return code, out.out, out.err.decode()


def export_link(count_html: str) -> str:
    found = re.search(r'href="(/export\.csv\?[^"]*)"', count_html)
    assert found, count_html
    return html.unescape(found.group(1))


def lazy_count_url(page_html: str) -> str | None:
    """The page's placeholder for its total, when it did not carry the total itself."""
    found = re.search(r'hx-get="(/timeline/count\?[^"]*)"', page_html)
    return html.unescape(found.group(1)) if found else None


def total_block(client: Client, page_html: str) -> str:
    """The HTML holding the page's total and export link: in the page, or from its lazy placeholder."""
    count_url = lazy_count_url(page_html)
    return client.get(count_url).text if count_url else page_html


def expected_ids(db: Session, query: str) -> set[int]:
    """What the query module matches for a query string (the reference every output must agree with)."""
    return set(db.scalars(matching_ids(EventFilter.from_pairs(parse_qsl(query)))))


# ---- the walk ----------------------------------------------------------------------------------------
def _case_id(case: Case) -> str:
    return f"{case.param}-{'refused' if case.refused else 'ok'}-{case.values[0][:12]}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_output_agrees(
    case: Case, corpus: dict[str, int], client: Client, db: Session, capsysbinary: Any
) -> None:
    client.login("viewer")
    everything = set(corpus.values())
    query = case.query
    rows = everything if case.refused else expected_ids(db, query)
    # system_exact alone only qualifies a system filter: it keeps every event, like an empty value.
    if (
        not case.refused
        and case.values[0] not in ("xylophonic", "Nobody News", "nosuch", "0")
        and case.param != "system_exact"
    ):
        assert rows and rows != everything, "a valid value should pick some events, not all"

    # People: the page, its partial, the lazy parts and /dyads show the rows of the filter without the
    # bad value, and say which value was left out.
    page = client.get(f"/?{query}")
    partial = client.get(f"/?{query}", headers=HX)
    dyads = client.get(f"/dyads?{query}")
    dyads_partial = client.get(f"/dyads?{query}", headers=HX)
    for r in (page, partial, dyads, dyads_partial):
        assert r.status_code == 200
        if case.refused:
            assert 'id="filter-errors"' in r.text and f"<code>{case.param}</code>" in r.text
            assert html.escape(case.shown, quote=False) in r.text
        else:
            assert 'id="filter-errors"' not in r.text
    assert page_ids(page.text) == page_ids(partial.text) == rows
    assert dyads_total(dyads.text) == dyads_total(dyads_partial.text) == len(rows)
    # The total shown (in the page, or by its lazy part) and the lazy parts asked directly agree.
    assert total_of(total_block(client, page.text)) == len(rows)
    assert total_of(client.get(f"/timeline/count?{query}").text) == len(rows)
    for part in ("facets", "chart"):
        assert client.get(f"/timeline/{part}?{query}").status_code == 200
    # The Atom feed follows the people's policy too (app/web/feeds.py): the same rows, the value left out
    # and named in its subtitle; and a view saved from the page counts the rows on screen.
    _, feed_token = create_feed_token(db, client.user, "policy")
    feed = feedparser.parse(client.get(f"/feeds/{feed_token}/events.atom?{query}").content)
    assert feed.bozo == 0
    assert {int(re.sub(r".*/events/(\d+)#.*", r"\1", e.id)) for e in feed.entries} == rows
    subtitle = feed.feed.get("subtitle", "")
    assert subtitle.startswith("Left out") == case.refused and (case.param in subtitle or not case.refused)
    client.post("/views", data={"name": "policy", "path": "/", "query": query})
    menu_count = re.search(r'class="view-count">([\d,]+)<', client.get("/views/menu").text)
    assert menu_count and int(menu_count.group(1).replace(",", "")) == len(rows)
    # The review queue takes the same filter under the same policy: the due events among the rows.
    kept = EventFilter() if case.refused else EventFilter.from_pairs(parse_qsl(query))
    due = set(db.scalars(matching_ids(replace(kept, due=True))))
    for r in (client.get(f"/review?{query}"), client.get(f"/review?{query}", headers=HX)):
        assert r.status_code == 200 and page_ids(r.text) == due
        assert ('id="filter-errors"' in r.text) == case.refused
    if rows:
        # The page's export link gives exactly the rows on screen.
        link = export_link(total_block(client, page.text))
        assert case.param not in link or not case.refused
        exported = client.get(link)
        assert exported.status_code == 200 and csv_ids(exported.content) == rows

    # Machines: the same rows, or a refusal naming the parameter and the value.
    api = client.get(f"/api/v1/events?{query}&limit=200")
    export = client.get(f"/export.csv?{query}")
    code, out, err = cli_export(query, capsysbinary)
    if case.refused:
        assert api.status_code == 422 and export.status_code == 422 and code == 2
        assert export.json() == api.json()
        detail = api.json()["detail"]
        assert any(d["loc"] == ["query", case.param] and case.shown in d["msg"] for d in detail), detail
        assert f"{case.param}: " in err and case.shown in err
        assert out == b""
    else:
        assert api.status_code == 200 and {e["id"] for e in api.json()["items"]} == rows
        assert export.status_code == 200 and csv_ids(export.content) == rows
        assert code == 0 and out == export.content


def test_a_bad_value_leaves_the_rest_of_the_filter(corpus: dict[str, int], client: Client) -> None:
    """Left out means only that value: the page's rows and export are those of the rest of the filter."""
    client.login("viewer")
    page = client.get("/?kind=transfer&kind=offer&actor=Nobody+Known&tag=drones")
    assert "no actor is called “Nobody Known”" in page.text
    assert page_ids(page.text) == {corpus["shahed"]}
    link = export_link(total_block(client, page.text))
    assert "actor" not in link
    assert csv_ids(client.get(link).content) == {corpus["shahed"]}


def test_unknown_parameter_names_are_refused_by_machines(
    corpus: dict[str, int], client: Client, capsysbinary: Any
) -> None:
    """A misspelt parameter would widen the answer without a word: machines refuse it, pages ignore it."""
    client.login("viewer")
    api = client.get("/api/v1/events?contry=RUS")
    export = client.get("/export.csv?contry=RUS")
    assert api.status_code == export.status_code == 422 and api.json() == export.json()
    assert "unknown parameter “contry”" in api.json()["detail"][0]["msg"]
    code, _, err = cli_export("contry=RUS", capsysbinary)
    assert code == 2 and "contry" in err
    assert client.get("/export.csv?bom=1").status_code == 200
    # A value the switch does not know is refused too, not read as "no BOM".
    bad = client.get("/export.csv?kind=offer&bom=2")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "bom"] and "“2”" in bad.json()["detail"][0]["msg"]
    assert client.get("/export.csv?bom=0").content[:3] != b"\xef\xbb\xbf"
    code, _, err = cli_export("kind=offer&bom=2", capsysbinary)
    assert code == 2 and "bom" in err and "“2”" in err


def test_the_page_cursor(corpus: dict[str, int], client: Client, capsysbinary: Any) -> None:
    """The cursor pages the timeline and the API alike; a damaged one is a message or a 422."""
    client.login("viewer")
    good = Cursor(date(2025, 1, 1), 0).encode()
    older = {corpus["shahed"], corpus["parts"]}
    assert page_ids(client.get(f"/?cursor={good}").text) == older
    assert {e["id"] for e in client.get(f"/api/v1/events?cursor={good}").json()["items"]} == older
    page = client.get("/?cursor=not-a-cursor")
    assert "page cursor is not valid (“not-a-cursor”)" in page.text
    assert page_ids(page.text) == set(corpus.values())
    api = client.get("/api/v1/events?cursor=not-a-cursor")
    assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert "not-a-cursor" in api.json()["detail"][0]["msg"]
    # The export is every page at once: a cursor is no parameter of it.
    assert client.get(f"/export.csv?cursor={good}").status_code == 422
    code, _, err = cli_export(f"cursor={good}", capsysbinary)
    assert code == 2 and "cursor" in err


# ---- names that almost match -------------------------------------------------------------------------
@pytest.mark.parametrize("typed", ["Peskov", "PESKÓV", "Песков", "peskov dmitri", "Dmitry Peskow"])
@pytest.mark.parametrize("path", ["/", "/dyads"])
def test_did_you_mean_links_on_the_page(
    corpus: dict[str, int], client: Client, typed: str, path: str
) -> None:
    client.login("viewer")
    page = client.get(path, params={"actor": typed, "kind": "statement"})
    assert f"no actor is called “{typed}”" in page.text
    link = f'href="{path}?actor=Dmitry+Peskov&amp;kind=statement"'
    assert link in page.text and "Did you mean" in page.text
    followed = client.get(html.unescape(link[6:-1]))
    assert 'id="filter-errors"' not in followed.text
    if path == "/":
        assert page_ids(followed.text) == {corpus["peskov"]}


@pytest.mark.parametrize(
    ("query", "link"),
    [
        ("kind=statment", "/?kind=statement"),
        ("recipient=Venezuella", "/?recipient=VEN"),
        ("system=kalibar", "/?system=Kalibr"),
        ("actor=ryabkow", "/?actor=Sergei+Ryabkov"),
    ],
)
def test_did_you_mean_for_every_named_value(
    corpus: dict[str, int], client: Client, query: str, link: str
) -> None:
    client.login("viewer")
    assert f'href="{link}"' in client.get(f"/?{query}").text


def test_machines_name_the_suggestions(corpus: dict[str, int], client: Client, capsysbinary: Any) -> None:
    client.login("viewer")
    api = client.get("/api/v1/events?actor=Peskov")
    assert api.status_code == 422
    assert "did you mean “Dmitry Peskov”?" in api.json()["detail"][0]["msg"]
    assert client.get("/export.csv?actor=Peskov").json() == api.json()
    code, _, err = cli_export("actor=Peskov", capsysbinary)
    assert code == 2 and "did you mean “Dmitry Peskov”?" in err


@pytest.mark.parametrize(
    ("path", "typed", "found"),
    [
        ("actors", "Peskov", "Dmitry Peskov"),
        ("actors", "ryab", "Sergei Ryabkov"),
        ("actors", "Песков", "Dmitry Peskov"),  # another script, no such alias
        ("actors", "Ryabkow", "Sergei Ryabkov"),  # a typo
        ("systems", "kalibar", "Kalibr"),
        ("systems", "136", "Shahed-136"),
    ],
)
def test_the_suggestion_box_finds_any_word_and_close_names(
    corpus: dict[str, int], client: Client, path: str, typed: str, found: str
) -> None:
    client.login("viewer")
    assert f'value="{found}"' in client.get(f"/suggest/{path}", params={"q": typed}).text


def test_close_names_api() -> None:
    """The helper forms and quick-add reuse: a (name, aliases) catalogue, best first, each entry once."""
    catalogue = [
        ("Dmitry Peskov", ["Dmitri Peskov", "Дмитрий Песков"]),
        ("Dmitry Medvedev", []),
        "Nicolás Maduro",
    ]
    assert [c.name for c in close_names(catalogue, "Peskov")] == ["Dmitry Peskov"]
    best = close_names(catalogue, "Дмитрий Песков")[0]
    assert (best.name, best.matched, best.score) == ("Dmitry Peskov", "Дмитрий Песков", 100.0)
    assert [c.name for c in close_names(catalogue, "dmitry", limit=1)] == ["Dmitry Peskov"]
    assert {c.name for c in close_names(catalogue, "dmitry")} == {"Dmitry Peskov", "Dmitry Medvedev"}
    assert close_names(catalogue, "maduro")[0].name == "Nicolás Maduro"
    assert close_names(catalogue, "dm") == [] and close_names(catalogue, "Nobody Known") == []
