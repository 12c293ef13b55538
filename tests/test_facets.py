"""Facet counts: each equals the count of the filtered list it promises, from one SQL statement."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.demo import seed_demo
from app.domain.vocab import ORIGIN_STEPS
from app.filters import EventFilter
from app.queries.aggregates.facets import facet_counts
from app.queries.events import count_events
from tests import sql_oracle as oracle
from tests.conftest import Client
from tests.corpus import make_corpus
from tests.factories import from_mapping

FILTERS: list[dict[str, str | list[str]]] = [
    {},
    {"kind": "statement"},
    {"kind": ["statement", "offer"], "country": "VEN"},
    {"supplier": "RUS"},
    {"supplier": ["RUS", "IRN"], "recipient": "VEN"},
    {"actor": "Sergey Rybakov"},
    {"system": "Kalibr", "status": "reported"},
    {"stage_min": "2"},
    {"from": "2025-10", "tag": "caribbean"},
    {"q": "missiles", "reliability_max": "B"},
    {"target": "USA", "stage_min": "1", "status": ["reported", "denied"]},
    {"origins_min": "2"},
    {"origins_min": "1", "origins_max": "1", "kind": ["statement", "transfer"]},
    {"likelihood": ["likely", "almost certain"], "confidence": "high"},
]


def _promised(f: EventFilter, param: str, value: str) -> EventFilter:
    """The filter a facet value stands for: its parameter replaced by just that value."""
    if param == "stage_min":
        return replace(f, stage_min=int(value))
    if param == "origins":  # exactly n, the last step n or more
        n = int(value)
        return f.with_origins(n, None if n == ORIGIN_STEPS[-1] else n)
    if param == "origins_min":
        return f.with_origins(int(value), None)
    return f.without(param).adding(param, value)


@pytest.mark.parametrize("params", FILTERS, ids=[str(p) or "none" for p in FILTERS])
def test_every_facet_count_equals_the_filtered_list(db: Session, params: dict[str, str | list[str]]) -> None:
    make_corpus(db)
    seed_demo(db)
    f = from_mapping(params)
    facets = facet_counts(db, f)
    checked = 0
    for param, values in facets.groups.items():
        if param in ("source", "tag"):
            continue
        for v in values:
            assert v.count == count_events(db, _promised(f, param, v.value)), (param, v)
            checked += 1
    assert checked > 30


def test_facets_of_parameters_not_in_the_filter_partition_the_total(db: Session) -> None:
    make_corpus(db)
    f = from_mapping({"country": "VEN"})
    facets = facet_counts(db, f)
    total = count_events(db, f)
    assert sum(v.count for v in facets["kind"]) == total
    assert sum(v.count for v in facets["status"]) == total
    assert facets["stage_min"][0].count == total  # stage >= 0 is everything


def test_selected_values_come_first_and_stay_visible(db: Session) -> None:
    make_corpus(db)
    f = from_mapping({"supplier": ["SYR"], "actor": ["Сергей Рябков"], "kind": "statement"})
    facets = facet_counts(db, f)
    sup = facets["supplier"]
    assert sup[0].value == "SYR" and sup[0].selected and sup[0].count == 0
    # the rest of the filter (actor Ryabkov, statements) leaves only alpha, supplied by Russia
    assert [(v.value, v.count, v.selected) for v in sup[1:]] == [("RUS", 1, False)]
    # nothing under the rest of this filter names the ticked actor: it stays visible, ticked, at 0
    assert [(v.value, v.count, v.selected) for v in facets["actor"]] == [("Сергей Рябков", 0, True)]
    actors = facet_counts(db, from_mapping({"actor": ["Сергей Рябков"], "kind": "statement"}))["actor"]
    assert (actors[0].value, actors[0].count, actors[0].selected) == ("Sergei Ryabkov", 1, True)  # name shown
    assert [v.value for v in facets["kind"] if v.selected] == ["statement"]
    assert [v.label for v in facets["stage_min"]][3] == "3 · agreement/financing"


def test_sql_facets_take_one_statement(db: Session, connection: Connection) -> None:
    make_corpus(db)
    statements: list[str] = []

    def record(*a: object) -> None:
        statements.append(str(a[2]))

    event.listen(connection, "before_cursor_execute", record)
    try:
        oracle.facet_counts(
            db, from_mapping({"supplier": "RUS", "kind": "statement", "actor": "Dmitry Peskov"})
        )
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert len([s for s in statements if "SAVEPOINT" not in s]) == 1


def test_page_shows_counts_and_partial_refreshes_them(client: Client, db: Session) -> None:
    make_corpus(db)
    client.login("viewer")
    page = client.get("/?supplier=RUS").text
    # Russia as supplier: alpha and charlie; China and Iran 1 each (the supplier facet ignores its own filter)
    assert 'id="fc-supplier-RUS" name="supplier" value="RUS" checked' in page
    # the page carries the counts (one request per view); /timeline/facets gives the same lists
    assert _count(page, "supplier", "RUS") == 2 and _count(page, "supplier", "CHN") == 1
    counted = client.get("/timeline/facets?supplier=RUS", headers={"HX-Request": "true"}).text
    assert _count(counted, "supplier", "RUS") == 2
    assert _count(counted, "supplier", "CHN") == 1 and _count(counted, "supplier", "IRN") == 1
    assert 'id="facets-status"' in counted and 'hx-swap-oob="true"' in counted
    part = client.get("/?supplier=RUS&kind=deployment", headers={"HX-Request": "true"}).text
    assert '<div id="facet-supplier" class="facet-list" hx-swap-oob="true">' in part
    assert 'id="fc-kind-deployment" name="kind" value="deployment" checked' in part
    assert 'id="fc-supplier-RUS" name="supplier" value="RUS" checked' in part  # the ticked country stays
    assert _count(part, "kind", "deployment") >= 1  # counted in the partial, out of band
    refreshed = client.get(
        "/timeline/facets?supplier=RUS&kind=deployment", headers={"HX-Request": "true"}
    ).text
    assert '<div id="facet-supplier" class="facet-list" hx-swap-oob="true">' in refreshed
    assert _count(refreshed, "kind", "deployment") == sum(
        1 for _ in re.finditer(r'class="event-row"', client.get("/?supplier=RUS&kind=deployment").text)
    )


def _count(html: str, param: str, value: str) -> int:
    """The count printed beside one facet value."""
    m = re.search(
        rf'id="fc-{param}-{value}"[^>]*>\s*<span class="facet-label">[^<]*</span>\s*'
        r'<span class="facet-count"[^>]*>([\d,]+)<',
        html,
    )
    assert m, (param, value)
    return int(m.group(1).replace(",", ""))
