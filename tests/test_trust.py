"""Trust: origins and relays, corroboration counts, the analyst's judgement, on every output."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.csvio import read_csv
from app.domain.textkeys import match_keys
from app.models import AuditEntry, Event, EventLine, Origin
from app.queries.aggregates import facts
from app.queries.aggregates.dyads import support_ladder
from app.queries.aggregates.facets import facet_counts
from app.queries.events import count_events
from app.queries.transfer.export_lines import make_lines
from app.queries.transfer.imports import commit_import, plan_import
from app.schemas import SourceInput
from app.services.reference import ORIGINS, OriginEdit, merge_origins, update_entry
from tests import sql_oracle as oracle
from tests.conftest import Client
from tests.factories import from_mapping, make_event


def make_origin(db: Session, name: str, aliases: list[str] | None = None) -> Origin:
    """A catalogue origin with aliases."""
    origin = Origin(name=name, aliases=aliases or [], match_keys=match_keys(name, aliases or []))
    db.add(origin)
    db.flush()
    return origin


def source(publisher: str, origin: str | None = None, grade: str = "C3") -> dict[str, object]:
    """A source as the input takes it."""
    out: dict[str, object] = {"publisher": publisher, "reliability": grade[0], "credibility": int(grade[1])}
    if origin is not None:
        out["origin"] = origin
    return out


def relayed_event(db: Session, **extra: object) -> Event:
    """The Times itself, Latin Times relaying it under an alias, and the AP: two independent origins."""
    make_origin(db, "The Times", ["Times (London)"])
    return make_event(
        db,
        title="Oreshnik for Venezuela",
        sources=[
            source("The Times", grade="B3"),
            source("Latin Times", "Times (London)"),
            source("AP", grade="B2"),
        ],
        **extra,
    )


# ---- origin and relay ------------------------------------------------------------------------------------
def test_relays_and_aliases_collapse_into_one_origin(db: Session) -> None:
    event = relayed_event(db)
    assert event.origin_count == 2
    origins = [(s.publisher, s.origin.name) for s in event.sources]
    assert origins == [("The Times", "The Times"), ("Latin Times", "The Times"), ("AP", "AP")]
    # The origin named by an alias is the catalogue's entry: no second "Times (London)" origin.
    assert db.scalar(select(Origin.id).where(Origin.name == "Times (London)")) is None


def test_an_origin_that_is_the_publisher_is_stored_once() -> None:
    assert SourceInput(publisher="TASS", origin=" tass ").origin is None
    assert SourceInput(publisher="Latin Times", origin="TASS").origin == "TASS"


def test_the_publisher_alone_is_its_own_origin_found_by_alias(db: Session) -> None:
    make_origin(db, "The Times", ["Times (London)"])
    event = make_event(db, sources=[source("Times (London)"), source("The Times")])
    assert event.origin_count == 1 and {s.origin.name for s in event.sources} == {"The Times"}


def test_an_edit_recounts_origins_and_the_history_has_it(analyst: Client, db: Session) -> None:
    event = relayed_event(db)
    db.commit()
    page = analyst.get(f"/events/{event.id}/edit").text
    assert 'name="sources-1-origin" value="The Times"' in page  # the relay, shown by its origin's name
    assert 'name="sources-0-origin" value=""' in page  # the publisher itself
    form = _form_fields(page)
    form["sources-2-origin"] = "The Times"  # the AP item turns out to relay The Times too
    form["likelihood"] = "likely"
    form["likelihood_rationale"] = "two outlets, one story"
    assert analyst.post(f"/events/{event.id}/edit", data=form).status_code == 303
    db.expire_all()
    stored = db.get(Event, event.id)
    assert stored is not None and stored.origin_count == 1 and stored.likelihood == "likely"
    last = db.scalars(
        select(AuditEntry).where(AuditEntry.entity_id == event.id).order_by(AuditEntry.id.desc())
    ).first()
    assert last is not None and last.action == "update"
    assert last.changes["likelihood"] == {"before": None, "after": "likely"}
    assert last.changes["sources"]["after"][2]["origin"] == "The Times"


def _form_fields(html: str) -> dict[str, str]:
    """Every named input, select and textarea value of a rendered form (enough to post it back)."""
    out: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html):
        out[name] = value.replace("&#39;", "'").replace("&amp;", "&").replace("&#34;", '"')
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        out[name] = chosen[1] if chosen else ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        out[name] = body
    out.pop("add_source", None)
    return {k: v for k, v in out.items() if not k.startswith(("add_", "remove_", "confirm_"))}


# ---- corroboration: counts, filter and facets agree ------------------------------------------------------
def _corpus(db: Session) -> dict[str, int]:
    single = make_event(db, title="One wire story twice", sources=[source("TASS"), source("RIA", "TASS")])
    double = relayed_event(db, likelihood="very likely", confidence="high")
    three = make_event(
        db,
        title="Three origins",
        kind="transfer",
        sources=[source("Reuters"), source("AFP"), source("Janes", grade="A2")],
        likelihood="almost certain",
    )
    none = make_event(db, title="No source yet", sources=[])
    return {"single": single.id, "double": double.id, "three": three.id, "none": none.id}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"origins_min": "2"}, {"double", "three"}),
        ({"origins_min": "1", "origins_max": "1"}, {"single"}),
        ({"origins_max": "0"}, {"none"}),
        ({"origins_min": "3"}, {"three"}),
        ({"likelihood": ["very likely", "almost certain"]}, {"double", "three"}),
        ({"confidence": "high", "origins_min": "2"}, {"double"}),
    ],
)
def test_the_filter_matches_the_same_events_on_every_engine(
    db: Session, params: dict[str, str | list[str]], expected: set[str]
) -> None:
    ids = _corpus(db)
    f = from_mapping(params)
    want = {ids[k] for k in expected}
    assert set(db.scalars(oracle.matching_ids(f))) == want
    assert set(facts.selection(db, f).page_ids(None, 100)) == want
    assert count_events(db, f) == oracle.count_events(db, f) == len(want)


def test_the_origin_facet_equals_the_counts_of_the_filtered_lists(db: Session) -> None:
    _corpus(db)
    for params in ({}, {"origins_min": "2"}, {"kind": "transfer"}, {"likelihood": "very likely"}):
        f = from_mapping(params)
        got = facet_counts(db, f)
        assert got.groups == oracle.facet_counts(db, f).groups
        for v in got["origins"]:
            n = int(v.value)
            assert v.count == count_events(db, f.with_origins(n, None if n == 3 else n)), (params, v)
        for v in got["origins_min"]:
            assert v.count == count_events(db, f.with_origins(int(v.value), None)), (params, v)
        for v in got["likelihood"]:
            assert v.count == count_events(db, f.without("likelihood").adding("likelihood", v.value))
    assert [(v.label, v.count) for v in facet_counts(db, from_mapping({}))["origins"]] == [
        ("1 origin", 1),
        ("2 origins", 1),
        ("3+ origins", 1),
    ]


def test_rows_and_the_single_origin_click(client: Client, db: Session) -> None:
    ids = _corpus(db)
    client.login("viewer")
    page = client.get("/").text
    assert (
        "2 origins · 3 sources" in page and "1 origin · 2 sources" in page and "0 origins · 0 sources" in page
    )
    link = re.search(r'href="(/\?origins_min=1&amp;origins_max=1)"', page)
    assert link, "the panel offers 'rests on a single origin' as one link"
    single = client.get(link[1].replace("&amp;", "&")).text
    assert set(map(int, re.findall(r'href="/events/(\d+)"', single))) == {ids["single"]}
    detail = client.get(f"/events/{ids['double']}").text
    assert "2 origins · 3 sources" in detail
    assert detail.index("Origin: <a") < detail.index("Latin Times")  # grouped under its origin
    assert ", relaying The Times" in detail and "very likely" in detail


# ---- CSV, import, API ------------------------------------------------------------------------------------
def test_export_columns_and_an_unknown_origin_in_an_import(client: Client, db: Session) -> None:
    ids = _corpus(db)
    client.login("viewer")
    rows = {
        int(r["id"]): r
        for r in csv.DictReader(io.StringIO(client.get("/export.csv").content.decode("utf-8"), newline=""))
    }
    double = rows[ids["double"]]
    assert double["source_origins"] == "; The Times; "  # only the relay names its origin
    assert (double["origins"], double["origin_count"]) == ("The Times; AP", "2")
    assert (double["likelihood"], double["confidence"]) == ("very likely", "high")
    text = (
        "title,date,kind,source_publishers,source_origins,likelihood,confidence,confidence_rationale\r\n"
        "Relayed claim,2025-10,statement,Latin Times; El País,Brand New Wire; ,unlikely,low,one claim\r\n"
    )
    parsed = read_csv(text)
    assert parsed.ok, parsed.errors
    assert plan_import(db, parsed).new_origins == ["Brand New Wire", "El País"]
    (event_id,) = commit_import(db, parsed.rows, None, uuid.uuid4()).event_ids
    db.expire_all()
    event = db.get(Event, event_id)
    assert event is not None and event.origin_count == 2 and event.likelihood == "unlikely"
    assert (event.confidence, event.confidence_rationale) == ("low", "one claim")
    assert db.scalar(select(Origin.id).where(Origin.name == "Brand New Wire")) is not None


def test_a_rationale_needs_its_judgement_everywhere(analyst: Client) -> None:
    parsed = read_csv("title,date,kind,confidence_rationale\r\nX,2025,statement,why\r\n")
    assert not parsed.ok and parsed.errors[0].column == "confidence_rationale"
    assert "choose the confidence too" in parsed.errors[0].message
    bad = analyst.post(
        "/api/v1/events",
        json={"title": "X", "kind": "statement", "date": "2025", "likelihood": "probably"},
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "likelihood"]


def test_the_api_carries_origins_and_judgement(analyst: Client, db: Session) -> None:
    made = analyst.post(
        "/api/v1/events",
        json={
            "title": "Confirmed on one origin",
            "kind": "transfer",
            "status": "confirmed",  # the API accepts it: the warning is the form's
            "date": "2025-10",
            "sources": [{"publisher": "Latin Times", "origin": "TASS"}, {"publisher": "TASS"}],
            "likelihood": "likely",
            "confidence": "low",
            "confidence_rationale": "one origin",
        },
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["origin_count"], body["origins"]) == (1, ["TASS"])
    assert [(s["publisher"], s["origin"], s["relays"]) for s in body["sources"]] == [
        ("Latin Times", "TASS", True),
        ("TASS", "TASS", False),
    ]
    listed = analyst.get("/api/v1/events?origins_max=1&confidence=low").json()["items"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert analyst.get("/api/v1/events?origins_min=many").status_code == 422
    schema = analyst.get("/openapi.json").json()["components"]["schemas"]
    assert {"origins", "origin_count", "likelihood", "confidence"} <= set(schema["EventOut"]["properties"])


# ---- the form's warning, merges, the ladder ---------------------------------------------------------------
def _new_event_form(status: str, sources: list[tuple[str, str]]) -> dict[str, str]:
    form = {
        "title": "Shipment seen",
        "kind": "transfer",
        "status": status,
        "date_year": "2025",
        "client_token": str(uuid.uuid4()),
        "countries-0-code": "RUS",
        "countries-0-role": "supplier",
    }
    for i, (publisher, origin) in enumerate(sources):
        form |= {
            f"sources-{i}-publisher": publisher,
            f"sources-{i}-origin": origin,
            f"sources-{i}-reliability": "C",
            f"sources-{i}-credibility": "3",
        }
    return form


def test_confirmed_on_a_single_origin_asks_before_saving(analyst: Client, db: Session) -> None:
    form = _new_event_form("confirmed", [("Latin Times", "TASS"), ("RIA", "tass")])
    asked = analyst.post("/events/new", data=form)
    assert asked.status_code == 200 and "Confirmed on a single origin?" in asked.text
    assert "<strong>TASS</strong>" in asked.text and 'value="Latin Times"' in asked.text  # input kept
    assert db.scalar(select(Event.id).where(Event.title == "Shipment seen")) is None
    saved = analyst.post("/events/new", data={**form, "confirm_single_origin": "1"})
    assert saved.status_code == 303, re.findall(r"<h2[^>]*>([^<]+)", saved.text)
    two = _new_event_form("confirmed", [("Latin Times", "TASS"), ("Reuters", "")]) | {
        "title": "Other",
        "confirm_duplicate": "1",
    }
    assert analyst.post("/events/new", data=two).status_code == 303  # two origins: no question


def test_a_rationale_without_its_judgement_is_shown_beside_the_field(analyst: Client) -> None:
    form = _new_event_form("reported", [("TASS", "")]) | {"likelihood_rationale": "because"}
    r = analyst.post("/events/new", data=form)
    assert r.status_code == 422
    assert 'id="likelihood_rationale-error"' in r.text and 'value="because"' in r.text


def test_merging_two_origins_recounts_and_records(db: Session) -> None:
    times = make_origin(db, "The Times")
    london = make_origin(db, "Times of London")
    event = make_event(db, sources=[source("The Times"), source("Times of London")])
    assert event.origin_count == 2
    merge_origins(db, times.id, london.id, None)
    db.flush()
    db.expire_all()
    merged = db.get(Event, event.id)
    assert merged is not None and merged.origin_count == 1
    assert db.get(Origin, times.id).aliases == ["Times of London"]  # type: ignore[union-attr]
    actions = [
        (a.action, a.entity_type)
        for a in db.scalars(select(AuditEntry).where(AuditEntry.action == "merge").order_by(AuditEntry.id))
    ]
    assert ("merge", "event") in actions and ("merge", "origin") in actions
    assert count_events(db, from_mapping({"origins_min": "2"})) == 0  # the copy follows the merge
    stored = db.scalar(select(EventLine.line).where(EventLine.event_id == event.id))
    assert stored == make_lines(db, [event.id])[event.id] and ",The Times,1," in stored


def test_a_merge_re_makes_the_lines_of_the_kept_origins_events(db: Session) -> None:
    """Keep takes drop's names as aliases: a source of keep's published by one of them stops being a relay."""
    reuters = make_origin(db, "Reuters")
    uk = make_origin(db, "Reuters UK")
    # It cites keep, published under drop's name.
    event = make_event(db, sources=[source("Reuters UK", "Reuters")])
    stored = db.scalar(select(EventLine.line).where(EventLine.event_id == event.id))
    assert stored is not None and ",Reuters," in stored  # a relay of Reuters
    merge_origins(db, reuters.id, uk.id, None)
    db.flush()
    stored = db.scalar(select(EventLine.line).where(EventLine.event_id == event.id))
    assert stored == make_lines(db, [event.id])[event.id]


def test_an_alias_makes_a_relay_the_origin_itself_in_the_export(client: Client, db: Session) -> None:
    origin = make_origin(db, "The Times")
    event = make_event(db, sources=[source("Times (London)", "The Times")])
    db.commit()
    client.login("viewer")

    def cell() -> str:
        rows = csv.DictReader(io.StringIO(client.get("/export.csv").content.decode(), newline=""))
        return next(r for r in rows if int(r["id"]) == event.id)["source_origins"]

    assert cell() == "The Times"  # a relay: "Times (London)" is not (yet) a name of The Times
    update_entry(db, ORIGINS, origin.id, OriginEdit(name="The Times", aliases=["Times (London)"]), None)
    db.commit()
    assert cell() == ""  # now the publisher is the origin itself


def test_the_ladder_marks_steps_reached_on_a_single_origin(db: Session) -> None:
    dyad = [{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}]
    make_event(
        db, title="Talk", kind="statement", date="2025-01", countries=dyad, sources=[source("A"), source("B")]
    )
    make_event(db, title="Offer", kind="offer", date="2025-02", countries=dyad, sources=[source("TASS")])
    make_event(
        db,
        title="Delivered",
        kind="transfer",
        date="2025-03",
        countries=dyad,
        sources=[source("X"), source("Y", "X")],
    )
    f = from_mapping({"supplier": "RUS", "recipient": "VEN"})
    ladder = support_ladder(db, f)
    assert [(s.title, s.single_origin) for s in ladder.steps] == [
        ("Talk", False),
        ("Offer", True),
        ("Delivered", True),
    ]
    assert oracle.support_ladder(db, f).steps == ladder.steps


def test_the_answer_is_kept_past_a_duplicate_question(analyst: Client, db: Session) -> None:
    first = _new_event_form("reported", [("TASS", "")])
    assert analyst.post("/events/new", data=first).status_code == 303
    again = _new_event_form("confirmed", [("Latin Times", "TASS")]) | {"confirm_single_origin": "1"}
    asked = analyst.post("/events/new", data=again)
    assert "This may already be recorded" in asked.text
    assert '<input type="hidden" name="confirm_single_origin" value="1">' in asked.text
    saved = analyst.post("/events/new", data=again | {"confirm_duplicate": "1"})
    assert saved.status_code == 303


def test_a_range_upside_down_leaves_its_top_out_on_pages_and_is_refused_by_machines(
    client: Client, db: Session
) -> None:
    ids = _corpus(db)
    client.login("viewer")
    page = client.get("/?origins_min=2&origins_max=1")
    assert "origins_max 1 is below origins_min 2" in page.text
    assert set(map(int, re.findall(r'href="/events/(\d+)"', page.text))) == {ids["double"], ids["three"]}
    api = client.get("/api/v1/events?origins_min=2&origins_max=1")
    assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["query", "origins_max"]


def test_the_origins_catalogue_in_the_api(client: Client, db: Session) -> None:
    _corpus(db)
    client.login("viewer")
    page = client.get("/api/v1/origins?q=times&limit=5").json()
    assert [(o["name"], o["aliases"], o["event_count"]) for o in page["items"]] == [
        ("The Times", ["Times (London)"], 1)
    ]
    one = page["items"][0]
    assert client.get(f"/api/v1/origins/{one['id']}").json() == one
    assert client.get("/api/v1/origins/999999").status_code == 404
    assert client.get("/api/v1/origins?limit=1").json()["next"] == "/api/v1/origins?limit=1&offset=1"


def test_a_conflict_compares_origins_under_their_catalogue_names(analyst: Client, db: Session) -> None:
    from app.services.events import event_input, update_event

    event = relayed_event(db)
    db.commit()
    mine = _form_fields(analyst.get(f"/events/{event.id}/edit").text)
    mine["sources-1-origin"] = "Times (London)"  # the same origin, by its alias
    mine["title"] = "My title"
    # A colleague saves another summary meanwhile.
    update_event(db, event.id, event_input(event).model_copy(update={"summary": "New"}), None, 1)
    db.commit()
    page = analyst.post(f"/events/{event.id}/edit", data=mine)
    assert page.status_code == 409
    differing = re.findall(r'<tr class="differs[^"]*">\s*<th scope="row">([^<]+)', page.text)
    assert [d.strip() for d in differing] == ["Title", "Summary"], differing
