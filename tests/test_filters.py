"""EventFilter semantics on PostgreSQL: each filter alone and combined, date precision, OR, bad values."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.filters import EventFilter
from app.models import Event
from app.queries.events import count_events, drop_unknown_names, matching_ids, timeline_page
from tests.corpus import make_corpus
from tests.factories import from_mapping

ALL = {"alpha", "bravo", "charlie", "delta"}

CASES: list[tuple[dict[str, str | list[str]], set[str]]] = [
    ({}, ALL),
    # full text over title, summary and quotes
    ({"q": "radar"}, {"alpha"}),
    ({"q": "Oreshnik"}, {"delta"}),
    ({"q": "shipment"}, {"bravo"}),
    ({"q": '"Caribbean" -radar'}, set()),
    # countries in any role, and by role
    ({"country": "RUS"}, {"alpha", "charlie"}),
    ({"country": "USA"}, {"alpha"}),
    ({"country": "Venezuela"}, {"alpha", "delta"}),
    ({"supplier": "RUS"}, {"alpha", "charlie"}),
    ({"supplier": ["RUS", "CHN"]}, {"alpha", "bravo", "charlie"}),
    ({"supplier": "rus, chn"}, {"alpha", "bravo", "charlie"}),
    ({"recipient": "VEN"}, {"alpha", "delta"}),
    ({"target": "USA"}, {"alpha"}),
    ({"target": "VEN"}, set()),
    # actors by name or alias, accents and Cyrillic
    ({"actor": "Sergei Ryabkov"}, {"alpha"}),
    ({"actor": "sergey rybakov"}, {"alpha"}),
    ({"actor": "Сергей Рябков"}, {"alpha"}),
    ({"actor": "Nicolas Maduro"}, {"bravo"}),
    ({"actor": ["Sergei Ryabkov", "Дмитрий Песков"]}, {"alpha", "charlie"}),
    # systems
    ({"system": "kalibr"}, {"alpha"}),
    ({"system": ["Igla-S", "Su-30MK2"]}, {"bravo", "charlie"}),
    # vocabulary
    ({"kind": "statement"}, {"alpha"}),
    ({"kind": ["statement", "transfer"]}, {"alpha", "bravo"}),
    ({"kind": "Statement,OFFER"}, {"alpha", "delta"}),
    ({"status": "denied"}, {"delta"}),
    ({"status": ["claimed", "confirmed"]}, {"bravo", "charlie"}),
    ({"stage_min": "5"}, {"bravo", "charlie"}),
    ({"stage_min": "0"}, ALL),
    # dates overlap at their precision
    ({"from": "2025-10-31"}, {"alpha", "bravo"}),
    ({"to": "2025-10-01"}, {"alpha", "charlie", "delta"}),
    ({"from": "2018-06"}, ALL),
    ({"to": "2018-06"}, {"charlie"}),
    ({"from": "2018-06-15", "to": "2018-06-15"}, {"charlie"}),
    ({"from": "2025-10", "to": "2025-10"}, {"alpha", "delta"}),
    ({"from": "2025"}, {"alpha", "bravo", "delta"}),
    ({"from": "2025-10-03", "to": "2025-10-30"}, {"alpha"}),
    # sources
    ({"source": "tass"}, {"alpha"}),
    ({"source": ["Reuters", "Interfax"]}, {"bravo", "charlie"}),
    ({"reliability_max": "B"}, {"bravo", "delta"}),
    ({"reliability_max": "a"}, {"bravo"}),
    ({"reliability_max": "F"}, ALL),
    # tags
    ({"tag": "caribbean"}, {"alpha", "delta"}),
    ({"tag": ["arms", "Caribbean"]}, {"alpha", "bravo", "delta"}),
    # different parameters AND together
    ({"supplier": "RUS", "kind": "deployment"}, {"charlie"}),
    ({"country": "VEN", "status": "denied"}, {"delta"}),
    ({"recipient": "VEN", "from": "2025-10-15"}, {"alpha"}),
    ({"q": "missiles", "supplier": "CHN"}, {"bravo"}),
    ({"tag": "arms", "reliability_max": "A"}, {"bravo"}),
    ({"actor": "Sergei Ryabkov", "system": "Kalibr", "country": "USA", "source": "TASS"}, {"alpha"}),
    (
        {"supplier": ["RUS", "IRN"], "recipient": "VEN", "kind": ["statement", "offer"], "to": "2025-12"},
        {"alpha", "delta"},
    ),
    ({"kind": "statement", "status": "denied"}, set()),
]


def _titles(db: Session, f: EventFilter, corpus: dict[str, Event]) -> set[str]:
    ids = set(db.scalars(matching_ids(f)))
    return {k for k, e in corpus.items() if e.id in ids}


@pytest.mark.parametrize(("params", "expected"), CASES, ids=[str(c[0]) or "all" for c in CASES])
def test_filter_semantics(db: Session, params: dict[str, str | list[str]], expected: set[str]) -> None:
    corpus = make_corpus(db)
    f = from_mapping(params)
    assert f.errors == ()
    assert _titles(db, f, corpus) == expected
    # every path through the filter agrees: ids, count and the keyset page
    assert count_events(db, f) == len(expected)
    page = timeline_page(db, f, None, 50)
    assert {e.id for e in page.events} == {corpus[k].id for k in expected}


def test_deleted_events_never_match(db: Session) -> None:
    from app.services.events import delete_event

    corpus = make_corpus(db)
    delete_event(db, corpus["alpha"].id, None)
    db.flush()
    assert _titles(db, EventFilter(), corpus) == ALL - {"alpha"}
    assert _titles(db, from_mapping({"actor": "Sergei Ryabkov"}), corpus) == set()


@pytest.mark.parametrize(
    ("params", "param", "fragment"),
    [
        ({"country": "Atlantis"}, "country", "unknown country"),
        ({"supplier": "XXX"}, "supplier", "unknown country"),
        ({"kind": "parade"}, "kind", "unknown kind"),
        ({"status": "rumoured"}, "status", "unknown status"),
        ({"stage_min": "9"}, "stage_min", "stage number"),
        ({"stage_min": "high"}, "stage_min", "stage number"),
        ({"stage_min": "²"}, "stage_min", "stage number"),  # a digit to str.isdigit, not to int()
        ({"from": "2025-13"}, "from", "not a real date"),
        ({"to": "yesterday"}, "to", "not a date"),
        ({"from": "2025-11", "to": "2025-10"}, "to", "before"),
        ({"reliability_max": "Z"}, "reliability_max", "grade"),
        ({"q": ["a", "b"]}, "q", "once"),
        ({"tag": "x" * 300}, "tag", "at most"),
    ],
)
def test_bad_values_are_reported_and_left_out(
    params: dict[str, str | list[str]], param: str, fragment: str
) -> None:
    f = from_mapping(params)
    assert [e.param for e in f.errors] == [param]
    assert fragment in f.errors[0].message


def test_bad_value_leaves_the_good_ones() -> None:
    f = from_mapping({"kind": ["statement", "parade"], "country": ["RUS", "Atlantis"]})
    assert f.kind == ("statement",) and f.country == ("RUS",)
    assert {e.param for e in f.errors} == {"kind", "country"}


def test_unknown_actor_and_system_are_dropped_with_a_message(db: Session) -> None:
    make_corpus(db)
    f, errors = drop_unknown_names(
        db, from_mapping({"actor": ["Сергей Рябков", "Nobody Atall"], "system": "Zircon"})
    )
    assert f.actor == ("Сергей Рябков",) and f.system == ()
    assert [(e.param, "Nobody Atall" in e.message or "Zircon" in e.message) for e in errors] == [
        ("actor", True),
        ("system", True),
    ]


def test_query_string_round_trips() -> None:
    params = {
        "q": "oreshnik  missiles",
        "supplier": ["RUS", "CHN"],
        "kind": "statement",
        "stage_min": "2",
        "from": "2025-10",
        "to": "2025",
        "actor": "Сергей Рябков",
        "tag": "Arms",
    }
    f = from_mapping(params)
    again = EventFilter.from_pairs(f.pairs())
    assert again == f
    assert "actor=%D0%A1" in f.query_string()
    assert f.without("supplier", "RUS").supplier == ("CHN",)
    assert f.adding("kind", "offer").kind == ("statement", "offer")


def test_parse_strict_raises_for_the_api() -> None:
    from app.filters import InvalidFilter

    with pytest.raises(InvalidFilter) as info:
        EventFilter.parse_strict(_Multi({"kind": ["parade"]}))
    assert info.value.errors[0].param == "kind"


class _Multi:
    def __init__(self, data: dict[str, list[str]]) -> None:
        self.data = data

    def getlist(self, key: str) -> list[str]:
        return self.data.get(key, [])


def test_no_offset_in_the_page_query(db: Session) -> None:
    make_corpus(db)
    from app.queries.events import event_select

    sql = str(event_select(EventFilter()).limit(10).compile(compile_kwargs={"literal_binds": True})).upper()
    assert "OFFSET" not in sql


def test_a_name_of_marks_only_still_has_a_match_key() -> None:
    """ "¨" folds to itself, not to nothing: it can be found (and imported twice) like any other name."""
    from app.domain.textkeys import fold, match_keys

    assert fold("¨") == "¨" and match_keys("¨") == ["¨"]
    assert fold("  Nicolás   MADURO ") == "nicolas maduro" and fold("   ") == ""
