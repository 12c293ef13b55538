"""Property tests (hypothesis) against real PostgreSQL: filters, facets and the CSV round trip."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app import migrate
from app.domain import clock
from app.domain.vocab import KINDS, ORIGIN_STEPS, RELIABILITY, STATUSES
from app.filters import EventFilter
from app.queries.events import count_events, event_select, matching_ids
from app.schemas import EventInput
from tests.factories import make_event
from tests.test_backup import scratch_database

pytestmark = pytest.mark.property

SUPPLIERS = ["RUS", "IRN", "CHN", "PRK", "USA", "FRA"]
RECIPIENTS = ["VEN", "SYR", "UKR", "YEM", "BLR", "IND"]
TARGETS = ["UKR", "ISR", "USA", "SAU"]
COUNTRIES = sorted({*SUPPLIERS, *RECIPIENTS, *TARGETS, "DEU", "BRA"})  # two that no event mentions
ACTORS = ["Sergei Ryabkov", "Nicolás Maduro", "Ali Akbar Ahmadian", "Rosoboronexport", "Kim Jong Un", "IRGC"]
SYSTEMS = ["Kalibr", "Shahed-136", "Su-30MK2", "Oreshnik", "S-400", "KN-23"]
PUBLISHERS = ["TASS", "Reuters", "Al Mayadeen", "Le Monde", "Yonhap"]
TAGS = ["caribbean", "drones", "sanctions", "navy", "air-defence"]
WORDS = ["missiles", "drones", "tanks", "shipment", "talks", "frigate", "loan", "radar"]
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _partial_date(rng: random.Random) -> str:
    year = rng.randint(2019, 2025)
    precision = rng.choice(["year", "month", "month", "day", "day", "day"])
    if precision == "year":
        return str(year)
    if precision == "month":
        return f"{year}-{rng.randint(1, 12):02d}"
    return f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def generated_event(rng: random.Random, i: int) -> dict[str, Any]:
    """One varied event: every filterable field drawn from the small vocabularies above."""
    supplier, recipient = rng.choice(SUPPLIERS), rng.choice(RECIPIENTS)
    countries = [{"code": supplier, "role": "supplier"}, {"code": recipient, "role": "recipient"}]
    if rng.random() < 0.3:
        countries.append({"code": rng.choice(TARGETS), "role": "target"})
    when = _partial_date(rng)
    data: dict[str, Any] = {
        "title": f"{supplier} {rng.choice(WORDS)} for {recipient} #{i} {rng.choice(WORDS)}",
        "kind": rng.choice(KINDS),
        "status": rng.choice(STATUSES),
        "stage_override": rng.choice([None, None, None, rng.randint(0, 6)]),
        "date": when,
        "summary": " ".join(rng.sample(WORDS, 3)),
        "countries": countries,
        "actors": [
            {"name": name, "role": rng.choice(["speaker", "supplier", "recipient"])}
            for name in rng.sample(ACTORS, rng.randint(0, 2))
        ],
        "systems": [
            {"designation": d, "quantity": rng.choice([None, rng.randint(1, 50)])}
            for d in rng.sample(SYSTEMS, rng.randint(0, 2))
        ],
        "sources": [
            {
                "publisher": p,
                "reliability": rng.choice(RELIABILITY),
                "credibility": rng.randint(1, 6),
                "quote": " ".join(rng.sample(WORDS, 2)),
            }
            for p in rng.sample(PUBLISHERS, rng.randint(1, 3))
        ],
        "tags": rng.sample(TAGS, rng.randint(0, 2)),
    }
    return data


@pytest.fixture(scope="module")
def dataset() -> Iterator[Engine]:
    """A database of its own with ~80 generated events (plus a few soft-deleted), built once."""
    from app.services.events import delete_event

    with scratch_database("signalboard_props") as eng:
        with eng.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
        rng = random.Random(20251126)
        with Session(eng) as s:
            events = []
            for i in range(80):
                # Review clocks spread over 90 days back, so `due` splits the events.
                started = clock.utcnow() - timedelta(days=rng.randint(0, 90), seconds=rng.randint(0, 86399))
                with mock.patch.object(clock, "utcnow", return_value=started):
                    events.append(make_event(s, **generated_event(rng, i)))
            for event in events[::16]:  # deleted events must never match any filter
                delete_event(s, event.id, None)
            s.commit()
        yield eng


# ---- filter strategies -----------------------------------------------------------------------------
def _values(pool: list[str] | tuple[str, ...], max_size: int = 2) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(list(pool)), min_size=1, max_size=max_size, unique=True)


_dates = st.one_of(
    st.integers(2018, 2026).map(str),
    st.tuples(st.integers(2018, 2026), st.integers(1, 12)).map(lambda t: f"{t[0]}-{t[1]:02d}"),
    st.dates(min_value=date(2018, 1, 1), max_value=date(2026, 12, 31)).map(lambda d: d.isoformat()),
)
PARAM_VALUES: dict[str, st.SearchStrategy[list[str]]] = {
    "q": st.sampled_from([*WORDS, *SUPPLIERS, "missiles drones", '"for VEN"', "-tanks"]).map(lambda w: [w]),
    "country": _values(COUNTRIES),
    "supplier": _values([*SUPPLIERS, "VEN"]),
    "recipient": _values(RECIPIENTS),
    "target": _values(TARGETS),
    "actor": _values([*ACTORS, "sergey rybakov", "Nobody At All"]),
    "system": _values([*SYSTEMS, "kalibr", "Nothing-1"]),
    "kind": _values(KINDS, 3),
    "status": _values(STATUSES),
    "stage_min": st.integers(0, 6).map(lambda n: [str(n)]),
    "from": _dates.map(lambda d: [d]),
    "to": _dates.map(lambda d: [d]),
    "source": _values([*PUBLISHERS, "reuters", "Nobody"]),
    "reliability_max": st.sampled_from(RELIABILITY).map(lambda g: [g]),
    "tag": _values([*TAGS, "DRONES", "unused"]),
    "due": st.sampled_from(["1", "0"]).map(lambda w: [w]),
    "origins_min": st.integers(0, 3).map(lambda n: [str(n)]),
    "origins_max": st.integers(0, 2).map(lambda n: [str(n)]),
}
MULTI = ["country", "supplier", "recipient", "target", "actor", "system", "kind", "status", "source", "tag"]


@st.composite
def params(draw: st.DrawFn, keys: list[str]) -> list[tuple[str, str]]:
    """Query-string pairs for the given parameters."""
    return [(k, v) for k in keys for v in draw(PARAM_VALUES[k])]


@st.composite
def two_disjoint_filters(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Two filters over different parameters (the same parameter twice would OR, not AND)."""
    keys = draw(st.lists(st.sampled_from(sorted(PARAM_VALUES)), min_size=1, max_size=6, unique=True))
    cut = draw(st.integers(0, len(keys)))
    return draw(params(keys[:cut])), draw(params(keys[cut:]))


@st.composite
def a_filter(draw: st.DrawFn) -> EventFilter:
    """Any filter of up to four parameters."""
    keys = draw(st.lists(st.sampled_from(sorted(PARAM_VALUES)), max_size=4, unique=True))
    return EventFilter.from_pairs(draw(params(keys)))


def ids(session: Session, f: EventFilter) -> set[int]:
    """The ids a filter matches."""
    return set(session.scalars(matching_ids(f)))


# ---- properties -----------------------------------------------------------------------------------
@SETTINGS
@given(pair=two_disjoint_filters())
def test_a_and_b_is_within_a_and_within_b(dataset: Engine, pair: tuple[list[Any], list[Any]]) -> None:
    a_pairs, b_pairs = pair
    a, b = EventFilter.from_pairs(a_pairs), EventFilter.from_pairs(b_pairs)
    both = EventFilter.from_pairs(a_pairs + b_pairs)
    with Session(dataset) as s:
        in_a, in_b, in_both = ids(s, a), ids(s, b), ids(s, both)
        assert in_both <= in_a
        assert in_both <= in_b
        # Different parameters AND together exactly: nothing more, nothing less than the intersection.
        assert in_both == in_a & in_b
        # The timeline's select and the count agree with the id set.
        assert {e.id for e in s.scalars(event_select(both))} == in_both
        assert count_events(s, both) == len(in_both)


@SETTINGS
@given(f=a_filter(), data=st.data())
def test_another_value_of_one_parameter_only_widens(dataset: Engine, f: EventFilter, data: Any) -> None:
    """Values of one parameter OR together: a second value can only add events."""
    param = data.draw(st.sampled_from(MULTI))
    first, extra = data.draw(PARAM_VALUES[param])[0], data.draw(PARAM_VALUES[param])[0]
    narrow = EventFilter.from_pairs([*f.without(param).pairs(), (param, first)])
    wider = EventFilter.from_pairs([*narrow.pairs(), (param, extra)])
    with Session(dataset) as s:
        assert ids(s, narrow) <= ids(s, wider)
        assert ids(s, narrow) <= ids(s, f.without(param))


@SETTINGS
@given(f=a_filter())
def test_deleted_events_never_match(dataset: Engine, f: EventFilter) -> None:
    from app.models import Event

    with Session(dataset) as s:
        deleted = set(s.scalars(select(Event.id).where(Event.deleted_at.is_not(None))))
        assert deleted
        assert not ids(s, f) & deleted


def only(f: EventFilter, param: str, value: str) -> EventFilter:
    """The filter with `param` holding just `value` (what a facet count promises)."""
    if param == "origins":  # exactly n origins, the last step n or more
        n = int(value)
        return f.with_origins(n, None if n == ORIGIN_STEPS[-1] else n)
    if param == "origins_min":  # the select: at least n, whatever the range was
        return f.with_origins(int(value), None)
    return EventFilter.from_pairs([*f.without(param).pairs(), (param, value)])


@settings(max_examples=40, deadline=None)
@given(f=a_filter())
def test_facet_count_equals_the_size_of_the_list_filtered_by_it(dataset: Engine, f: EventFilter) -> None:
    from app.queries.aggregates.facets import facet_counts

    with Session(dataset) as s:
        facets = facet_counts(s, f, top_n=1000)
        checked = 0
        for param, values in facets.groups.items():
            if param in ("source", "tag"):  # listed when ticked, never counted
                continue
            for value in values:
                expected = count_events(s, only(f, param, value.value))
                assert value.count == expected, (param, value, f.pairs())
                checked += 1
        assert checked >= len(KINDS) + len(STATUSES) + 7


# ---- export → import → export ------------------------------------------------------------------------
_ANY_CHAR = st.characters(codec="utf-8", exclude_characters="\x00", exclude_categories=("Cs",))
_TRICKY_START = st.sampled_from(
    [
        "=",
        "+",
        "-",
        "@",
        "\t",
        "\r",
        "\n",
        "\r\n",
        "'",
        "''",
        "'=",
        ";",
        ";;",
        ",",
        '"',
        '""',
        "=1+2",
        '=HYPERLINK("http://x")',
        "@SUM(A1)",
        "-2+3",
        "+cmd|' /C calc'!A0",
        "\ufeff",
        "«",
        "\u202e",
    ]
)
_free = st.text(_ANY_CHAR, max_size=30)
TEXT = st.one_of(_free, st.builds(lambda a, b: a + b, _TRICKY_START, _free))
NAME = TEXT.filter(lambda t: t.strip())


@st.composite
def arbitrary_event(draw: st.DrawFn) -> dict[str, Any]:
    """An event whose every free-text field is arbitrary text (formula starts, separators, quotes, …)."""
    return {
        "title": draw(NAME),
        "summary": draw(TEXT),
        "kind": draw(st.sampled_from(KINDS)),
        "status": draw(st.sampled_from(STATUSES)),
        "date": "2025-03",
        "location": draw(TEXT),
        "tags": draw(st.lists(NAME.map(lambda t: t[:60]), max_size=3)),
        "countries": [{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}],
        "actors": [{"name": draw(NAME), "role": draw(st.sampled_from(["speaker", "supplier", "other"]))}],
        "systems": [
            {
                "designation": draw(NAME),
                "quantity": draw(st.none() | st.integers(0, 10_000)),
                "quantity_note": draw(st.none() | NAME),
            }
        ],
        "sources": [
            {
                "publisher": draw(NAME),
                "title": draw(st.none() | TEXT),
                "quote": draw(st.none() | TEXT),
                "note": draw(st.none() | TEXT),
                "reliability": "B",
                "credibility": 2,
            }
            for _ in range(draw(st.integers(1, 2)))
        ],
    }


MASKED = ("id", "created_at", "updated_at", "version")


def export_csv(s: Session) -> list[dict[str, str]]:
    """The unfiltered export as the CSV bytes a user downloads, read back with the csv module."""
    import csv
    import io

    from app.csvio import write_lines
    from app.queries.transfer.export import export_batches

    raw = b"".join(write_lines(export_batches(s, EventFilter())))
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    return [{k: v for k, v in row.items() if k not in MASKED} for row in rows]


NASTY = "\x1f=cmd|' /C calc'!A0; \"q\", \r\n'x\u2028\x1c"
# Found by this test, kept as fixed examples: U+001C–U+001F at the ends of a cell or an item.
KNOWN_CASES = [
    {
        "title": "Known case",
        "summary": NASTY,
        "kind": "offer",
        "date": "2025-03",
        "location": "\x1f",
        "tags": ["\x1ftag"],
        "actors": [{"name": "Name\x1f", "role": "speaker"}],
        "systems": [{"designation": "\x1eS-400\x1f", "quantity": 4, "quantity_note": "\x1d"}],
        "sources": [{"publisher": "@TASS\x1f", "note": "\x1f", "quote": NASTY, "title": "-1"}],
    }
]


@settings(max_examples=80, deadline=None)
@given(data=arbitrary_event())
@example(data=KNOWN_CASES[0])
def test_export_import_export_is_identity_for_arbitrary_text(dataset: Engine, data: dict[str, Any]) -> None:
    from hypothesis import reject
    from pydantic import ValidationError

    from app.csvio import decode_upload, read_csv, write_lines
    from app.queries.transfer.export import export_batches
    from app.queries.transfer.imports import commit_import
    from app.services.events import create_event

    try:
        event_in = EventInput.model_validate(data)
    except ValidationError:
        reject()
    with dataset.connect() as conn:
        trans = conn.begin()
        s = Session(bind=conn, join_transaction_mode="create_savepoint")
        try:
            s.execute(text("UPDATE events SET deleted_at = now() WHERE deleted_at IS NULL"))  # only ours
            original = create_event(s, event_in, None)
            s.flush()
            first = export_csv(s)
            assert len(first) == 1

            raw = b"".join(write_lines(export_batches(s, EventFilter())))
            decoded, problem = decode_upload(raw, 10_000_000)
            assert problem is None and decoded is not None
            parsed = read_csv(decoded)
            assert not parsed.errors, parsed.errors
            commit_import(s, parsed.rows, None, uuid.uuid4())
            original.deleted_at = func.now()
            s.flush()
            second = export_csv(s)
            assert len(second) == 1
            changed = {k: (v, second[0][k]) for k, v in first[0].items() if second[0][k] != v}
            assert not changed, changed
        finally:
            s.close()
            trans.rollback()
