"""The export line's format is versioned by hand: its bytes for a fixed rich event are pinned per version."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from app.csvio import FORMAT_VERSION, EventRecord, SourceRecord, format_events

GOLDEN = Path(__file__).with_name("golden") / "export_line.json"

# Every kind of cell: dates at each precision, formula triggers, quotes, separators, line breaks,
# non-ASCII, empty and missing items, quantities and notes.
RICH = EventRecord(
    id=42,
    date_start=date(2025, 10, 1),
    date_precision="month",
    date_end=date(2026, 1, 1),
    date_end_precision="year",
    title='=Commas, "quotes"; and a formula',
    kind="transfer",
    status="confirmed",
    stage=5,
    stage_override=4,
    location="Caracas,\nDistrito Capital",
    tags=["air defence", "a;b", "-minus"],
    summary="Line one\r\nLine two; 'quoted'\n@mention",
    created_at=datetime(2025, 11, 20, 8, 30, 5, 999999, tzinfo=UTC),
    updated_at=datetime(2025, 11, 21, 23, 59, 59, tzinfo=UTC),
    version=3,
    origin_count=2,
    likelihood="very likely",
    likelihood_rationale="=two independent; origins",
    confidence="moderate",
    confidence_rationale=None,
    countries=[("supplier", "RUS"), ("recipient", "VEN"), ("supplier", "BLR"), ("intermediary", "CUB")],
    actors=[("Сергей Рябков", "speaker"), ("Odd; Name", "other")],
    systems=[("S-300VM", 2, "as many as 14; reported"), ("Kalibr", None, None), ("Igla-S", 0, "")],
    sources=[
        SourceRecord(
            "TASS",
            "https://tass.com/a",
            None,
            date(2025, 10, 3),
            "day",
            "C",
            3,
            "+quote",
            None,
            "TASS",
            False,
            "https://archive.ph/a;b",
            date(2025, 10, 4),
            ("ab" * 32, "cd" * 32),
        ),
        SourceRecord("Reuters; wire", None, "A title", None, None, "B", 2, None, "note", "TASS", True),
        SourceRecord(
            "'Apostrophe",
            None,
            None,
            date(2025, 1, 1),
            "year",
            "F",
            6,
            None,
            None,
            "The Times; London",
            True,
            files=("ef" * 32,),
        ),
    ],
    links=[("denies", 12), ("follows_up", 40)],
)


def test_the_formatted_line_is_pinned_to_its_version() -> None:
    golden: dict[str, str] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    (line,) = format_events([RICH])
    newest = max(golden, key=int)
    assert int(newest) == FORMAT_VERSION, (
        f"csvio.FORMAT_VERSION is {FORMAT_VERSION} but {GOLDEN.name} ends at version {newest}: "
        "add the new version's line there"
    )
    assert line == golden[newest], (
        "The export line's bytes changed. Raise csvio.FORMAT_VERSION (so stored lines are made again) and "
        f"add the new line to {GOLDEN} under the new version; never edit an earlier version's line.\n"
        f"now: {line!r}"
    )


def test_each_version_is_a_different_line() -> None:
    golden: dict[str, str] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert len(set(golden.values())) == len(golden)
