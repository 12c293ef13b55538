"""The import's fast paths and caches give exactly what the plain, slow way gives."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import app.schemas
from app import csvio
from app.csvio import (
    COUNTRY_COLUMNS,
    HEADER,
    SOURCE_COLUMNS,
    WHITESPACE,
    parse_actor,
    parse_system,
    read_csv,
    restore,
    split_items,
    text_lines,
)
from app.domain.countries import resolve_country
from app.domain.dates import PartialDateError, parse_partial
from app.domain.vocab import LINK_TYPES
from app.schemas import EventInput


def slow_split_items(cell: str) -> list[str]:
    """split_items character by character, with no fast path."""
    if not cell.strip(WHITESPACE):
        return []
    items: list[str] = []
    buf: list[str] = []
    i = 0
    while i < len(cell):
        if cell[i] == ";":
            if cell[i + 1 : i + 2] == ";":
                buf.append(";")
                i += 2
                continue
            items.append("".join(buf).strip(WHITESPACE))
            buf = []
        else:
            buf.append(cell[i])
        i += 1
    items.append("".join(buf).strip(WHITESPACE))
    return items


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=[";", " ", "a", "b", "\u3000", "\x1c", "\t", "\n"], max_size=12))
def test_split_items_fast_paths_match_the_slow_way(cell: str) -> None:
    assert split_items(cell) == slow_split_items(cell)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from(["a", ",", '"', "\r", "\n", "\r\n", "\u2028", "\x1c", "\x85", "\x0b", "bcd"])
    )
)
def test_text_lines_in_small_chunks_split_as_stringio_does(chunk: int, parts: list[str]) -> None:
    text = "".join(parts)
    saved = csvio._CHUNK
    csvio._CHUNK = chunk
    try:
        assert list(text_lines(text)) == list(io.StringIO(text, newline=""))
    finally:
        csvio._CHUNK = saved


def test_parse_partial_cache_shares_equal_values_and_refuses_every_time() -> None:
    assert parse_partial("2025-10") == parse_partial(" 2025-10 ")
    assert parse_partial("2025-10").iso() == "2025-10"
    for _ in range(2):
        with pytest.raises(PartialDateError, match="is not a real date"):
            parse_partial("2025-02-30")
        with pytest.raises(PartialDateError, match="is not a date"):
            parse_partial("soon")


def test_resolve_country_cache_answers_as_before() -> None:
    for _ in range(2):
        assert resolve_country(" rus ") == "RUS"
        assert resolve_country("Russia") == "RUS"
        assert resolve_country("Atlantis") is None
        assert resolve_country("  ") is None


def _event(day: str) -> dict[str, Any]:
    return {"title": "t", "kind": "offer", "date": day, "sources": [{"publisher": "P", "published": day}]}


def test_future_check_follows_today_across_midnight(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [date(2031, 5, 1)]
    monkeypatch.setattr(app.schemas, "today", lambda: clock[0])
    assert EventInput.model_validate(_event("2031-05-01")).date == "2031-05-01"
    with pytest.raises(ValidationError, match="this date is in the future"):
        EventInput.model_validate(_event("2031-05-02"))
    clock[0] = date(2031, 5, 2)  # midnight passes
    assert EventInput.model_validate(_event("2031-05-02")).date == "2031-05-02"
    with pytest.raises(ValidationError, match="this date is in the future"):
        EventInput.model_validate(_event("2031-05-03"))


def test_future_check_asks_a_replaced_or_moved_back_today(monkeypatch: pytest.MonkeyPatch) -> None:
    real = date.today()
    assert EventInput.model_validate(_event(real.isoformat())).date == real.isoformat()
    earlier = real - timedelta(days=400)
    monkeypatch.setattr(app.schemas, "today", lambda: earlier)
    with pytest.raises(ValidationError, match="this date is in the future"):
        EventInput.model_validate(_event((earlier + timedelta(days=1)).isoformat()))
    with pytest.raises(ValidationError) as refused:
        EventInput.model_validate(_event(f"{earlier.year + 1}"))
    assert [e["loc"] for e in refused.value.errors()] == [("date",), ("sources", 0, "published")]


# ---- the whole reader against a plain reference: every cell restored, every optional value sent ----


def reference_row(cells: dict[str, str]) -> tuple[dict[str, Any] | None, list[tuple[str, str | None]]]:
    """The row as the import read it before the fast paths: (EventInput dump, or None and errors).

    An error is (column, message); the reader's own messages are not repeated here (None).
    """
    errors: list[tuple[str, str | None]] = []
    get = cells.get
    data: dict[str, Any] = {
        "title": get("title", ""),
        "summary": get("summary", "").strip(WHITESPACE),
        "kind": get("kind", "").strip(WHITESPACE).lower(),
        "date": get("date", "").strip(WHITESPACE),
        "date_end": get("date_end", "").strip(WHITESPACE) or None,
        "location": get("location", "").strip(WHITESPACE) or None,
        "tags": [t for t in slow_split_items(get("tags", "")) if t],
    }
    status = get("status", "").strip(WHITESPACE)
    if status:
        data["status"] = status.lower()
    for name in ("likelihood", "likelihood_rationale", "confidence", "confidence_rationale"):
        data[name] = get(name, "").strip(WHITESPACE) or None
    stage = get("stage_override", "").strip(WHITESPACE)
    if stage:
        if stage.isdecimal():
            data["stage_override"] = int(stage)
        else:
            errors.append(("stage_override", "the stage override is a number from 0 to 6"))
    countries, country_columns = [], []
    for column, role in COUNTRY_COLUMNS.items():
        for item in slow_split_items(get(column, "")):
            if item:
                countries.append({"code": item, "role": role})
                country_columns.append(column)
    data["countries"] = countries
    data["actors"] = [
        {"name": n, "role": r} for n, r in (parse_actor(i) for i in slow_split_items(get("actors", "")) if i)
    ]
    data["systems"] = [
        {"designation": d, "quantity": q, "quantity_note": n}
        for d, q, n in (parse_system(i) for i in slow_split_items(get("systems", "")) if i)
    ]
    columns = {name: slow_split_items(get(name, "")) for name in SOURCE_COLUMNS}
    count = len(columns["source_publishers"])
    for name, items in columns.items():
        if items and len(items) != count:
            errors.append((name, None))
    sources = []
    for i, publisher in enumerate(columns["source_publishers"]):

        def nth(name: str, i: int = i) -> str | None:
            items = columns[name]
            return (items[i] or None) if i < len(items) else None

        source: dict[str, Any] = {
            "publisher": publisher,
            "url": nth("source_urls"),
            "title": nth("source_titles"),
            "published": nth("source_dates"),
            "quote": nth("source_quotes"),
            "note": nth("source_notes"),
            "origin": nth("source_origins"),
            "archive_url": nth("source_archive_urls"),
            "accessed": nth("source_accessed"),
        }
        grade = nth("source_grades")
        if grade:
            m = re.match(r"^\s*([A-Fa-f])\s*([1-6])\s*$", grade)
            if m:
                source["reliability"], source["credibility"] = m[1].upper(), int(m[2])
            else:
                errors.append(("source_grades", None))
        sources.append(source)
    data["sources"] = sources
    for item in slow_split_items(get("links", "")):  # `<type> #<id>`, a two-word type with a space or _
        words = item.strip().lower().replace("#", " # ").split()
        if not words:
            continue
        typed = "_".join(words[: words.index("#")]) if "#" in words else ""
        number = words[-1] if len(words) >= 2 and words[-2] == "#" else ""
        if typed not in LINK_TYPES or not (number.isdecimal() and len(number) <= 12):
            errors.append(("links", None))
    if errors:
        return None, errors
    try:
        return EventInput.model_validate(data).model_dump(), []
    except ValidationError as exc:
        found: list[tuple[str, str | None]] = []
        for e in exc.errors():
            column, prefix = csvio._error_column(tuple(e["loc"]), country_columns)
            found.append((column, prefix + csvio.row_error_message(e)))
        return None, found


POOLS: dict[str, list[str]] = {
    "links": ["", "denies #12", "follows up #3; same_as #4", "praises #2", "confirms 7", "same as#9"],
    "title": ["Talks", " two  words ", "'=quoted", "", "\x1c", "=sum"],
    "date": ["2025", "2025-10", "2025-10-03", "2025-13", "2999", "", "'2024", "soon"],
    "date_end": ["", "2025-12", "2024", "2025-02-30", " "],
    "kind": ["offer", "Statement", "nonsense", ""],
    "status": ["", "confirmed", "bogus"],
    "stage_override": ["", "3", "9", "x"],
    "suppliers": ["", "RUS", "Russia; CHN", "RUS; RUS", "Atlantis", "; ;", "'RUS"],
    "recipients": ["", "VEN", "ven; IRN"],
    "targets": ["", "UKR"],
    "intermediaries": ["", "BLR; "],
    "actors": ["", "Sergei Ryabkov (speaker)", "X (speaker) (Financier); Putin", "A (b); ;"],
    "systems": ["", "Kalibr ×4 [as many as 14]", "S-300 x 2; Su-30 [repair]", "Oreshnik;; mod"],
    "location": ["", " Caracas ", "'@home"],
    "tags": ["", "a; b", "a;;b; A", "; ;"],
    "summary": ["", "Line one\nLine two", "'+SUM(1,2)", "semi; colon"],
    "source_publishers": ["", "TASS", "TASS; Reuters", "; Reuters"],
    "source_urls": ["", "https://tass.com/x", "https://a.example/1; ", "ftp://x", "; https://b.example/2"],
    "source_titles": ["", "T", "T; ", "; U"],
    "source_dates": ["", "2025-10", "2025; 2999", "bad"],
    "source_grades": ["", "B3", "b 3; C2", "Z9", "A1; "],
    "source_quotes": ["", "'=1+1", "q; r"],
    "source_notes": ["", "n", "'already quoted; "],
    "source_origins": ["", "The Times", "; TASS", "TASS; ", "'=Wire"],
    "likelihood": ["", "likely", "Almost  Certain", "probably"],
    "likelihood_rationale": ["", "two origins", "'=why"],
    "confidence": ["", "high", "LOW", "sure"],
    "confidence_rationale": ["", "one origin"],
    "source_archive_urls": ["", "https://archive.ph/x", "; https://web.archive.org/y", "ftp://x"],
    "source_accessed": ["", "2025-10-15", "; 2025-10-16", "2025-10", "2999-01-01"],
    "source_files": ["", "sha256:" + "ab" * 32],  # export only: the import ignores it
}


def test_rows_share_each_validated_link_and_a_bad_one_still_reports_its_field() -> None:
    text = (
        "title,date,kind,suppliers,recipients,actors,systems\r\n"
        "One,2025,offer,Russia,VEN,Sergei Ryabkov (speaker),Kalibr ×4\r\n"
        "Two,2025,offer,Russia,VEN,Sergei Ryabkov (speaker),Kalibr ×4\r\n"
        "Three,2025,offer,RUS,Atlantis,Sergei Ryabkov (speaker),Kalibr ×4\r\n"
    )
    parsed = read_csv(text)
    one, two = (r.data for r in parsed.rows)
    assert one.countries[0] is two.countries[0] and one.countries[0].code == "RUS"  # resolved once
    assert one.actors[0] is two.actors[0] and one.systems[0] is two.systems[0]
    assert one.systems[0].quantity == 4 and one.systems[0].model_fields_set == {"designation", "quantity"}
    assert [(e.line, e.column) for e in parsed.errors] == [(4, "recipients")]
    assert "unknown country “Atlantis”" in parsed.errors[0].message


@st.composite
def csv_text(draw: st.DrawFn) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for _ in range(draw(st.integers(1, 6))):
        row = [draw(st.sampled_from(POOLS[name])) if name in POOLS else "1" for name in HEADER]
        if draw(st.booleans()):
            row = row[: draw(st.integers(0, len(row)))]  # a short row: the missing cells are empty
        writer.writerow(row)
    return buffer.getvalue()


@settings(max_examples=300, deadline=None)
@given(csv_text())
def test_reader_matches_the_plain_reference(text: str) -> None:
    parsed = read_csv(text)
    got_rows = {r.line: r.data.model_dump() for r in parsed.rows}
    got_errors: dict[int, list[tuple[str, str]]] = {}
    for e in parsed.errors:
        got_errors.setdefault(e.line, []).append((e.column, e.message))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = next(reader)
    line = reader.line_num + 1
    events = 0
    for record in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        events += 1
        cells = {name: restore(record[i]) if i < len(record) else "" for i, name in enumerate(header)}
        dump, errors = reference_row(cells)
        if dump is not None:
            assert got_rows.pop(start) == dump
        else:
            got = got_errors.pop(start, [])
            assert [c for c, _ in got] == [c for c, _ in errors]
            assert [m for (_, m), (_, want) in zip(got, errors, strict=True) if want is not None] == [
                want for _, want in errors if want is not None
            ]
    if not events:  # every row blank (rows cut to no cells): the file as a whole is refused
        assert got_errors.pop(0) == [("", "The file has a header row but no events.")]
    assert not got_rows
    assert not got_errors
