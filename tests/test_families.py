"""System families: `system=X` covers X's variants at any depth unless `system_exact=1`, on every output;
the systems list shows the tree; the edit form and the API set a parent and refuse a loop; merges keep
the tree sensible.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.filters import EventFilter, InvalidFilter, page_filter, pairs_of, strict_filter
from app.models import AuditEntry, System
from app.queries.aggregates.facts import columns
from app.queries.families import family_ids, with_family
from app.services.events import find_system
from app.services.reference import merge_systems
from tests.conftest import Client, truncate_all
from tests.factories import make_event
from tests.test_facts import assert_same
from tests.test_filter_policy import (
    HX,
    cli_export,
    csv_ids,
    dyads_total,
    export_link,
    lazy_count_url,
    page_ids,
    total_of,
)

SYSTEMS = ("Shahed-136", "Geran-2", "Geran-2M", "Kalibr")


@pytest.fixture(scope="module")
def corpus(engine: Engine) -> Iterator[dict[str, int]]:
    """Committed events (the command line reads through its own connection) naming a family of three
    generations: Shahed-136 <- Geran-2 <- Geran-2M, and Kalibr on its own."""
    truncate_all(engine)
    with Session(engine) as s:

        def event(key: str, *designations: str, supplier: str = "IRN") -> int:
            return make_event(
                s,
                title=f"Event {key}",
                countries=[{"code": supplier, "role": "supplier"}, {"code": "RUS", "role": "recipient"}],
                systems=[{"designation": d} for d in designations],
            ).id

        ids = {
            "shahed": event("shahed", "Shahed-136"),
            "geran": event("geran", "Geran-2"),
            "geranm": event("geranm", "Geran-2M", supplier="RUS"),
            "both": event("both", "Shahed-136", "Geran-2"),
            "kalibr": event("kalibr", "Kalibr", supplier="RUS"),
        }
        systems = {d: find_system(s, d) for d in SYSTEMS}
        systems["Geran-2"].parent_id = systems["Shahed-136"].id  # type: ignore[union-attr]
        systems["Geran-2M"].parent_id = systems["Geran-2"].id  # type: ignore[union-attr]
        s.commit()
        ids.update({d: systems[d].id for d in SYSTEMS})  # type: ignore[union-attr]
    yield ids
    truncate_all(engine)


FAMILY_CASES = [
    ("system=Shahed-136", {"shahed", "geran", "geranm", "both"}),
    ("system=shahed-136&system_exact=1", {"shahed", "both"}),
    ("system=Geran-2", {"geran", "geranm", "both"}),
    ("system=Geran-2&system_exact=1", {"geran", "both"}),
    ("system=Geran-2M", {"geranm"}),
    ("system=Geran-2M&system=Kalibr", {"geranm", "kalibr"}),
    ("system=Shahed-136&system_exact=0&supplier=RUS", {"geranm"}),
]


@pytest.mark.parametrize(("query", "keys"), FAMILY_CASES)
def test_every_output_agrees_on_a_family(
    query: str, keys: set[str], corpus: dict[str, int], client: Client, capsysbinary: Any
) -> None:
    """Page, partial, total, facets, chart, dyads, export link, CSV, API and CLI give the same events."""
    client.login("viewer")
    rows = {corpus[k] for k in keys}
    page = client.get(f"/?{query}")
    partial = client.get(f"/?{query}", headers=HX)
    dyads = client.get(f"/dyads?{query}")
    for r in (page, partial, dyads):
        assert r.status_code == 200 and 'id="filter-errors"' not in r.text
    assert page_ids(page.text) == page_ids(partial.text) == rows
    assert dyads_total(dyads.text) == len(rows)
    # The total and export link are in the page when the copy is read, else behind /timeline/count.
    lazy = 'hx-get="/timeline/count?' in page.text
    counted = client.get(lazy_count_url(page.text)).text if lazy else page.text
    assert total_of(counted) == total_of(client.get(f"/timeline/count?{query}").text) == len(rows)
    for part in ("facets", "chart"):
        assert client.get(f"/timeline/{part}?{query}").status_code == 200
    link = export_link(counted)
    assert ("system_exact=1" in link) == ("system_exact=1" in query)
    assert csv_ids(client.get(link).content) == rows
    api = client.get(f"/api/v1/events?{query}&limit=200")
    assert api.status_code == 200 and {e["id"] for e in api.json()["items"]} == rows
    export = client.get(f"/export.csv?{query}")
    assert export.status_code == 200 and csv_ids(export.content) == rows
    code, out, _ = cli_export(query, capsysbinary)
    assert code == 0 and out == export.content


@pytest.mark.parametrize(("query", "keys"), FAMILY_CASES)
def test_the_copy_and_sql_agree_on_a_family(
    query: str, keys: set[str], corpus: dict[str, int], engine: Engine
) -> None:
    """The in-memory copy and PostgreSQL evaluate the resolved family the same way (total, facets, pages)."""
    with Session(engine) as s:
        f, errors = page_filter(s, pairs_of(parse_qsl(query)))
        assert not errors and f.system_family is not None
        assert_same(s, columns.build(engine), f)


def test_family_ids_resolve_by_alias_and_depth(corpus: dict[str, int], db: Session) -> None:
    assert set(family_ids(db, ("SHAHED-136",))) == {corpus[d] for d in ("Shahed-136", "Geran-2", "Geran-2M")}
    assert family_ids(db, ("Shahed-136",), exact=True) == (corpus["Shahed-136"],)
    assert family_ids(db, ("Kalibr",)) == (corpus["Kalibr"],)
    # Unresolved (a filter built by hand): the engines match the names alone, as before families.
    assert EventFilter(system=("Shahed-136",)).system_family is None
    assert with_family(db, EventFilter()).system_family is None


def test_system_exact_round_trips_and_refuses_bad_values(corpus: dict[str, int], db: Session) -> None:
    f = EventFilter.from_pairs([("system", "Shahed-136"), ("system_exact", "1")])
    assert f.system_exact is True and f.query_string() == "system=Shahed-136&system_exact=1"
    assert f.as_dict()["system_exact"] is True and "system_family" not in f.as_dict()
    assert EventFilter.from_pairs([("system_exact", "0")]).query_string() == ""
    chips = {c["param"]: c for c in f.chips()}
    assert chips["system"]["label"] == "Shahed-136" and chips["system_exact"]["remove"] == "system=Shahed-136"
    assert f.without("system_exact").system_exact is False
    with pytest.raises(InvalidFilter) as refused:
        strict_filter(db, pairs_of([("system", "Shahed-136"), ("system_exact", "maybe")]))
    assert refused.value.errors[0].param == "system_exact" and "maybe" in refused.value.errors[0].message
    kept, errors = page_filter(db, pairs_of([("system", "Shahed-136"), ("system_exact", "maybe")]))
    assert kept.system == ("Shahed-136",) and not kept.system_exact and errors[0].param == "system_exact"


def test_facets_list_variants_and_the_chip_shows_the_family_as_typed(
    corpus: dict[str, int], client: Client
) -> None:
    client.login("viewer")
    facets = client.get("/timeline/facets?system=shahed-136").text
    for variant, n in (("Geran-2", 2), ("Geran-2M", 1), ("Shahed-136", 2), ("Kalibr", 1)):
        assert re.search(rf'value="{variant}"[^>]*>.*?{n}', facets, re.S), variant
    page = client.get("/?system=shahed-136").text
    assert re.search(r'chip-name">system</span>\s*shahed-136', page)
    assert 'name="system_exact" value="1">' in page  # the box to leave variants out, unticked
    exact = client.get("/?system=shahed-136&system_exact=1").text
    assert 'name="system_exact" value="1" checked>' in exact and 'chip-name">variants</span>' in exact


def test_csv_and_api_name_the_variant_an_event_names(corpus: dict[str, int], client: Client) -> None:
    client.login("viewer")
    export = client.get("/export.csv?system=Shahed-136")
    cells = {
        int(r["id"]): r["systems"] for r in csv.DictReader(io.StringIO(export.content.decode("utf-8-sig")))
    }
    assert cells[corpus["geranm"]] == "Geran-2M" and cells[corpus["geran"]] == "Geran-2"
    items = client.get("/api/v1/events?system=Shahed-136&limit=200").json()["items"]
    named = {e["id"]: [s["designation"] for s in e["systems"]] for e in items}
    assert named[corpus["geranm"]] == ["Geran-2M"]
    system = client.get(f"/api/v1/systems/{corpus['Geran-2M']}").json()
    assert system["parent"] == "Geran-2"


def test_systems_list_shows_the_tree_with_family_totals(corpus: dict[str, int], client: Client) -> None:
    client.login("viewer")
    text = client.get("/systems").text
    order = [m for m in re.findall(r'class="tree-(\d)">.*?>([^<]+)</a>', text)]
    assert order == [("0", "Shahed-136"), ("1", "Geran-2"), ("2", "Geran-2M"), ("0", "Kalibr")]
    # Shahed-136: 2 events of its own, 4 with its variants (the event naming two of them counted once).
    row = re.search(r"Shahed-136</a></th>.*?</tr>", text, re.S)
    assert row is not None
    assert 'system_exact=1">2</a>' in row.group(0) and 'href="/?system=Shahed-136" title' in row.group(0)
    assert ">4</a>" in row.group(0)
    # A search for a variant keeps its family above it.
    found = client.get("/systems?q=geran-2m", headers=HX).text
    assert re.findall(r'class="tree-(\d)">', found) == ["0", "1", "2"] and "Kalibr" not in found


def _edit(client: Client, system_id: int, parent: str) -> Any:
    return client.post(
        f"/systems/{system_id}/edit",
        data={"designation": client.db.get(System, system_id).designation, "parent": parent},  # type: ignore[union-attr]
    )


def test_the_form_sets_and_clears_a_parent_and_the_filter_follows(
    corpus: dict[str, int], analyst: Client, db: Session
) -> None:
    before = total_of(analyst.get("/timeline/count?system=Kalibr").text)
    assert before == 1
    form = analyst.get(f"/systems/{corpus['Geran-2']}/edit").text
    assert 'id="parent" name="parent" value="Shahed-136"' in form and 'hx-get="/suggest/systems"' in form
    # The family's own count links to its own events only; a system without variants needs no flag.
    assert (
        "/?system=Shahed-136&amp;system_exact=1" in analyst.get(f"/systems/{corpus['Shahed-136']}/edit").text
    )
    assert 'href="/?system=Geran-2M">' in analyst.get(f"/systems/{corpus['Geran-2M']}/edit").text
    saved = _edit(analyst, corpus["Shahed-136"], "kalibr")
    assert saved.status_code == 303
    db.expire_all()
    assert db.get(System, corpus["Shahed-136"]).parent_id == corpus["Kalibr"]  # type: ignore[union-attr]
    # The cached total for the same query string moves with the data version.
    assert total_of(analyst.get("/timeline/count?system=Kalibr").text) == 5
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.entity_type == "system", AuditEntry.entity_id == corpus["Shahed-136"]
        )
    ).one()
    assert entry.changes["parent"] == {"before": None, "after": "Kalibr"}
    assert _edit(analyst, corpus["Shahed-136"], "").status_code == 303
    assert total_of(analyst.get("/timeline/count?system=Kalibr").text) == 1


@pytest.mark.parametrize("parent", ["Shahed-136", "geran-2", "Geran-2M"])
def test_the_form_refuses_a_loop(parent: str, corpus: dict[str, int], analyst: Client, db: Session) -> None:
    """Itself, its child or its grandchild as parent: refused beside the field, nothing saved."""
    response = _edit(analyst, corpus["Shahed-136"], parent)
    assert response.status_code == 422
    error = re.search(r'<p class="field-error" id="parent-error">([^<]+)</p>', response.text)
    assert error is not None and ("loop" in error.group(1) or "itself" in error.group(1)), response.text[
        -2000:
    ]
    assert 'aria-invalid="true" aria-describedby="parent-hint parent-error"' in response.text
    assert f'value="{parent}"' in response.text  # what was typed stays in the box
    db.expire_all()
    assert db.get(System, corpus["Shahed-136"]).parent_id is None  # type: ignore[union-attr]


def test_the_form_refuses_an_unknown_parent(corpus: dict[str, int], analyst: Client) -> None:
    response = _edit(analyst, corpus["Kalibr"], "<b>Zircon</b>")
    assert response.status_code == 422 and "No system is called “&lt;b&gt;Zircon&lt;/b&gt;”" in response.text


@pytest.mark.parametrize("parent", ["Shahed-136", "Geran-2", "GERAN-2M"])
def test_the_api_refuses_a_loop(parent: str, corpus: dict[str, int], client: Client) -> None:
    client.login("analyst")
    response = client.patch(f"/api/v1/systems/{corpus['Shahed-136']}", json={"parent": parent})
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["body", "parent"] and ("loop" in item["msg"] or "itself" in item["msg"])


def test_the_api_sets_and_clears_a_parent(corpus: dict[str, int], client: Client) -> None:
    client.login("viewer")
    assert client.patch(f"/api/v1/systems/{corpus['Kalibr']}", json={"parent": "Geran-2M"}).status_code == 403
    client.login("analyst")
    set_ = client.patch(f"/api/v1/systems/{corpus['Kalibr']}", json={"parent": "geran-2m"})
    assert set_.status_code == 200 and set_.json()["parent"] == "Geran-2M"
    assert set_.json()["designation"] == "Kalibr"
    items = client.get("/api/v1/events?system=Geran-2&limit=200").json()["items"]
    assert corpus["kalibr"] in {e["id"] for e in items}
    cleared = client.patch(f"/api/v1/systems/{corpus['Kalibr']}", json={"parent": None})
    assert cleared.status_code == 200 and cleared.json()["parent"] is None
    assert client.patch(f"/api/v1/systems/{corpus['Kalibr']}", json={"parent": "x" * 201}).status_code == 422
    assert client.patch("/api/v1/systems/999999", json={"parent": None}).status_code == 404


def test_merging_a_family_moves_its_variants_to_the_kept_entry(corpus: dict[str, int], db: Session) -> None:
    merge_systems(db, corpus["Shahed-136"], corpus["Geran-2"], None)
    db.expire_all()
    assert db.get(System, corpus["Geran-2M"]).parent_id == corpus["Shahed-136"]  # type: ignore[union-attr]
    moved = db.scalars(
        select(AuditEntry).where(
            AuditEntry.entity_type == "system", AuditEntry.entity_id == corpus["Geran-2M"]
        )
    ).one()
    assert moved.changes["parent"] == {"before": "Geran-2", "after": "Shahed-136"}


def test_merging_a_family_into_its_own_variant_leaves_no_loop(corpus: dict[str, int], db: Session) -> None:
    """Keep the grandchild, drop the root: the kept entry takes the root's place, its old parent under it."""
    merge_systems(db, corpus["Geran-2M"], corpus["Shahed-136"], None)
    db.expire_all()
    assert db.get(System, corpus["Geran-2M"]).parent_id is None  # type: ignore[union-attr]
    assert db.get(System, corpus["Geran-2"]).parent_id == corpus["Geran-2M"]  # type: ignore[union-attr]
    assert set(family_ids(db, ("Geran-2M",))) == {corpus["Geran-2M"], corpus["Geran-2"]}


def test_the_demo_data_has_families(corpus: dict[str, int], db: Session) -> None:
    from app.demo import seed_demo

    seed_demo(db)
    for variant, family in (("Su-30MK2", "Su-30"), ("Igla-S", "Igla")):
        found, parent = find_system(db, variant), find_system(db, family)
        assert found is not None and parent is not None and found.parent_id == parent.id


def test_the_systems_tree_counts_as_sql_does(corpus: dict[str, int], db: Session) -> None:
    """The list's own counts (the copy) and family totals agree with PostgreSQL's."""
    from app.queries.aggregates.lists import system_list
    from tests import sql_oracle as oracle

    for query in ("", "geran"):
        assert system_list(db, query) == oracle.system_list(db, query)
    rows = {r.designation: r for r in system_list(db)}
    assert (rows["Shahed-136"].events, rows["Shahed-136"].family_events) == (2, 4)
    assert (rows["Geran-2M"].depth, rows["Geran-2M"].parent) == (2, "Geran-2")
