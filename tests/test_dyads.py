"""Dyads: the supplier x recipient matrix for a filter, and one pair's support ladder."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.demo.synthetic import seed_synthetic
from app.filters import EventFilter
from app.queries.aggregates import facts
from app.queries.aggregates.dyads import Ladder, dyad_matrix, support_ladder
from app.services.events import delete_event
from tests import sql_oracle
from tests.conftest import TEST_DB_URL, Client, truncate_all
from tests.corpus import make_corpus
from tests.factories import from_mapping, make_event
from tests.test_timeline import lazy_parts


def _ladder_events(db: Session) -> dict[str, int]:
    """Russia -> Venezuela climbing: rhetoric, offer, a denied delivery, agreement, deployment."""
    rv = [{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}]
    ids = {}
    for key, kind, status, date in (
        ("talk", "statement", "reported", "2025-08-03"),
        ("talk2", "statement", "reported", "2025-08-20"),
        ("offer", "offer", "reported", "2025-09"),
        ("fake", "transfer", "denied", "2025-09-15"),
        ("deal", "agreement", "confirmed", "2025-10-01"),
        ("older-talk", "statement", "reported", "2025-10-05"),
        ("troops", "deployment", "claimed", "2025-11-30"),
    ):
        ids[key] = make_event(db, title=f"RV {key}", kind=kind, status=status, date=date, countries=rv).id
    return ids


def test_matrix_counts_pairs_under_the_filter(db: Session) -> None:
    make_corpus(db)
    m = dyad_matrix(db, EventFilter())
    assert m.cells == {("RUS", "VEN"): 1, ("CHN", "IRN"): 1, ("RUS", "SYR"): 1, ("IRN", "VEN"): 1}
    assert m.suppliers[0] == "RUS" and m.supplier_totals["RUS"] == 2
    assert m.recipients[0] == "VEN" and m.recipient_totals["VEN"] == 2
    only = dyad_matrix(db, from_mapping({"kind": "offer"}))
    assert only.cells == {("IRN", "VEN"): 1}


def test_matrix_counts_an_event_once_per_pair(db: Session) -> None:
    make_event(
        db,
        countries=[
            {"code": "RUS", "role": "supplier"},
            {"code": "CHN", "role": "supplier"},
            {"code": "VEN", "role": "recipient"},
        ],
    )
    assert dyad_matrix(db, EventFilter()).cells == {("RUS", "VEN"): 1, ("CHN", "VEN"): 1}


def test_ladder_steps_are_the_events_that_first_reach_a_higher_stage(db: Session) -> None:
    make_corpus(db)  # other pairs must not leak in
    ids = _ladder_events(db)
    ladder = support_ladder(db, from_mapping({"supplier": "RUS", "recipient": "VEN"}))
    assert [(s.id, s.stage) for s in ladder.steps] == [
        (ids["talk"], 1),
        (ids["offer"], 2),
        (ids["deal"], 3),
        (ids["troops"], 6),
    ]  # the denied delivery (stage 5) does not count; alpha (corpus, Oct 2025 statement) adds no step
    assert ladder.excluded_statuses == ("denied", "retracted")
    assert [(m.label, m.events, m.highest, m.reached) for m in ladder.months] == [
        ("Aug 2025", 2, 1, 1),
        ("Sep 2025", 1, 2, 2),
        ("Oct 2025", 3, 3, 3),
        ("Nov 2025", 1, 6, 6),
    ]
    assert ladder.top == 6


def test_a_denial_never_raises_the_ladder(db: Session) -> None:
    """DESIGN.md: a denial sits on stage 0 and never raises a ladder, even moved up by an override."""
    rv = [{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}]
    talk = make_event(db, kind="statement", status="reported", date="2025-08-03", countries=rv)
    plain = make_event(db, kind="denial", status="reported", date="2025-09-01", countries=rv)
    moved = make_event(db, kind="denial", date="2025-10-01", countries=rv, stage_override=5)
    assert plain.stage == 0 and moved.stage == 5
    ladder = support_ladder(db, from_mapping({"supplier": "RUS", "recipient": "VEN"}))
    assert [(s.id, s.stage) for s in ladder.steps] == [(talk.id, 1)]
    assert [(m.label, m.events, m.highest, m.reached) for m in ladder.months] == [
        ("Aug 2025", 1, 1, 1),
        ("Sep 2025", 1, 0, 1),
        ("Oct 2025", 1, 0, 1),
    ]
    assert ladder.top == 1


def test_ladder_counts_denied_when_the_filter_asks_for_statuses(db: Session) -> None:
    ids = _ladder_events(db)
    ladder = support_ladder(
        db, from_mapping({"supplier": "RUS", "recipient": "VEN", "status": ["denied", "reported"]})
    )
    assert [s.id for s in ladder.steps] == [ids["talk"], ids["offer"], ids["fake"]]
    assert ladder.excluded_statuses == ()


def test_dyads_page_matrix_links_to_ladders(client: Client, db: Session) -> None:
    make_corpus(db)
    client.login("viewer")
    r = client.get("/dyads?kind=statement&kind=offer")
    assert r.status_code == 200
    assert 'href="/dyads?recipient=VEN&amp;supplier=RUS&amp;kind=statement&amp;kind=offer"' not in r.text
    assert 'href="/dyads?supplier=RUS&amp;recipient=VEN&amp;kind=statement&amp;kind=offer"' in r.text
    assert "CHN" not in re.sub(r"<aside.*?</aside>", "", r.text, flags=re.S)  # filtered out of the matrix


def test_dyad_ladder_page(client: Client, db: Session) -> None:
    ids = _ladder_events(db)
    client.login("viewer")
    r = client.get("/dyads?supplier=RUS&recipient=VEN")
    html = r.text
    assert r.status_code == 200
    assert "Russia" in html and "Venezuela" in html
    assert "Went from <strong>1 · rhetoric</strong>" in html and "<strong>6 · operational</strong>" in html
    for key in ("talk", "offer", "deal", "troops"):
        assert f'href="/events/{ids[key]}"' in html
    assert f'href="/events/{ids["fake"]}"' not in html
    data = json.loads(re.search(r'id="ladder-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    assert data["reached"] == [1, 2, 3, 6] and data["stages"]["6"] == "operational"
    assert 'href="/?supplier=RUS&amp;recipient=VEN"' in html  # the events on the timeline


def test_dyads_partial_and_empty_states(client: Client, db: Session) -> None:
    client.login("viewer")
    empty = client.get("/dyads")
    assert "No event names both a supplier and a recipient yet" in empty.text
    make_corpus(db)
    part = client.get("/dyads?supplier=RUS&recipient=CHN", headers={"HX-Request": "true"})
    assert part.text.lstrip().startswith('<div id="dyad-results"')
    assert "No events for this pair" in part.text and 'hx-swap-oob="true"' in part.text
    bad = client.get("/dyads?supplier=Atlantis")
    assert bad.status_code == 200 and "unknown country “Atlantis”" in bad.text


def test_one_event_reads_in_the_singular_and_a_day_takes_on(client: Client, db: Session) -> None:
    make_event(db)  # RUS → VEN, an offer on 2025-10-14
    db.commit()
    client.login("viewer")
    matrix = client.get("/dyads").text
    assert 'aria-label="1 event Russia to Venezuela: open the ladder"' in matrix
    ladder = client.get("/dyads?supplier=RUS&recipient=VEN").text
    assert "</strong> on 14 Oct 2025 and stayed there." in ladder


@pytest.fixture
def synthetic(engine: Engine) -> Iterator[Engine]:
    """2,000 committed synthetic events (dyads of every size, all precisions), some deleted."""
    truncate_all(engine)
    seed_synthetic(
        TEST_DB_URL.replace("postgresql+psycopg://", "postgresql://"), 2000, seed=5, batch_size=1000
    )
    with engine.begin() as conn:
        conn.execute(text("UPDATE events SET deleted_at = now() WHERE id % 89 = 0"))
    facts.forget()
    yield engine
    facts.forget()
    truncate_all(engine)


def sql_ladder(session: Session, f: EventFilter) -> Ladder:
    """The ladder as PostgreSQL computes it (the oracle the copy's ladder is compared with)."""
    return sql_oracle.support_ladder(session, f)


LADDER_FILTERS: list[dict[str, str | list[str]]] = [
    {},
    {"kind": ["transfer", "offer", "statement"]},
    {"from": "2016-03", "to": "2019"},
    {"status": ["denied", "reported"]},
    {"stage_min": "3"},
    {"q": "drones"},
]


def test_ladder_from_the_copy_equals_the_sql_ladder(synthetic: Engine) -> None:
    """Steps and months from the in-memory copy match PostgreSQL's window, also for patched rows."""
    with Session(synthetic) as s:
        pairs = s.execute(
            text(
                "SELECT s.country_code, r.country_code FROM event_countries s JOIN event_countries r "
                "ON r.event_id = s.event_id AND r.role = 'recipient' WHERE s.role = 'supplier' "
                "GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2"
            )
        ).all()
        picked = [*pairs[:3], pairs[-1]]  # the largest dyads and the smallest
        facts.current(s)  # support_ladder below reads the copy

        def compare() -> None:
            for sup, rec in picked:
                for params in LADDER_FILTERS:
                    f = from_mapping({**params, "supplier": sup, "recipient": rec})
                    ladder = support_ladder(s, f)
                    assert ladder == sql_ladder(s, f), (sup, rec, params)

        compare()
        sup, rec = picked[0]
        big = support_ladder(s, from_mapping({"supplier": sup, "recipient": rec}))
        assert len(big.steps) >= 2 and len(big.months) > 12 and any(m.year_only for m in big.months)
        # An early high step lands in the copy's patched tail, out of date order; a deleted step is masked.
        countries = [{"code": sup, "role": "supplier"}, {"code": rec, "role": "recipient"}]
        make_event(s, title="Early deployment", kind="deployment", date="2000-02-03", countries=countries)
        # A denial never raises the ladder, even one given a stage by override (the copy must agree).
        make_event(
            s, title="Early denial", kind="denial", date="1999-05-06", stage_override=6, countries=countries
        )
        delete_event(s, big.steps[1].id, None)
        s.commit()
        copy = facts.current(s)
        assert copy.tail > 0
        compare()
        top = support_ladder(s, from_mapping({"supplier": sup, "recipient": rec}))
        assert [(x.title, x.stage) for x in top.steps] == [("Early denial", 0), ("Early deployment", 6)]


def test_pair_stages_from_the_copy_equal_sql(synthetic: Engine) -> None:
    """The map's colour of each pair (its ladder's top) matches PostgreSQL's, also after writes."""
    with Session(synthetic) as s:
        filters = [*LADDER_FILTERS, {"supplier": "USA"}, {"country": "RUS", "kind": "denial"}]

        def compare() -> None:
            for params in filters:
                f = from_mapping(params)
                m = dyad_matrix(s, f)
                assert m.stages == sql_oracle.dyad_stages(s, f), params
                assert set(m.stages) <= set(m.cells), params

        compare()
        assert len(set(dyad_matrix(s, EventFilter()).stages.values())) > 1
        countries = [{"code": "NIC", "role": "supplier"}, {"code": "ISL", "role": "recipient"}]
        make_event(s, title="A denial given stage 6", kind="denial", stage_override=6, countries=countries)
        make_event(s, title="A denied offer", kind="offer", status="denied", countries=countries)
        s.commit()
        compare()
        # The pair has two events: the denial reaches 0, the denied offer nothing (it is denied).
        m = dyad_matrix(s, from_mapping({"supplier": "NIC", "recipient": "ISL"}))
        assert m.cells[("NIC", "ISL")] == 2 and m.stages[("NIC", "ISL")] == 0


def test_dyads_page_carries_the_flow_map_data(client: Client, db: Session) -> None:
    """The map shows the largest pairs, each linking its ladder; a pair of denied events only has no stage."""
    _ladder_events(db)
    countries = [{"code": "CHN", "role": "supplier"}, {"code": "IRN", "role": "recipient"}]
    make_event(db, title="CN-IR offer, denied", kind="offer", status="denied", countries=countries)
    client.login("viewer")
    for headers in ({}, {"HX-Request": "true"}):
        page = client.get("/dyads", headers=headers).text
        found = re.search(r'<script type="application/json" id="flow-data">(.*?)</script>', page, re.S)
        assert found and 'id="flow-map"' in page
        data = json.loads(found.group(1))
        assert [(f["s"], f["r"], f["n"], f["stage"]) for f in data["flows"]] == [
            (
                "RUS",
                "VEN",
                7,
                6,
            ),  # the deployment (stage 6) tops the pair; the denied transfer does not count
            ("CHN", "IRN", 1, None),
        ]
        assert data["flows"][0]["href"] == "/dyads?supplier=RUS&recipient=VEN"
        assert data["flows"][0]["sn"] == "Russia" and data["numeric"] == {
            "CHN": "156",
            "IRN": "364",
            "RUS": "643",
            "VEN": "862",
        }
        assert data["pairs"] == 2 and data["stages"]["6"] == "operational"
    # Asking for denied signals by status counts them, as on the ladder.
    asked = client.get("/dyads?status=denied").text
    data = json.loads(re.search(r'id="flow-data">(.*?)</script>', asked, re.S).group(1))  # type: ignore[union-attr]
    assert {(f["s"], f["r"]): f["stage"] for f in data["flows"]} == {("RUS", "VEN"): 5, ("CHN", "IRN"): 2}


def test_dyad_page_carries_its_facet_counts_and_its_ladder_follows_writes(
    client: Client, db: Session
) -> None:
    _ladder_events(db)
    client.login("viewer")
    for headers in ({}, {"HX-Request": "true"}):
        page = client.get("/dyads?supplier=RUS&recipient=VEN", headers=headers).text
        # One request per view: the counted facets come in this response, no loader asks for them.
        assert lazy_parts(page) == {} and "/timeline/facets" not in page
        assert 'class="facet-count"' in page, "no facet count in the response"
    # The ladder is cached by data version: a new first step shows at once.
    rv = [{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}]
    early = make_event(db, title="RV early troops", kind="deployment", date="2025-07-01", countries=rv)
    db.commit()
    again = client.get("/dyads?supplier=RUS&recipient=VEN").text
    assert f'href="/events/{early.id}"' in again and "RV early troops" in again
