"""Export → import into an empty database → export gives the same file (apart from ids and timestamps)."""

from __future__ import annotations

import csv
import html
import io
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.cli import main as cli_main
from app.csvio import COLUMNS, HEADER, read_csv, write_lines
from app.models import Actor, AuditEntry, Event, Origin, System
from app.queries.transfer.export import export_batches
from app.queries.transfer.imports import commit_import
from tests.conftest import Client, truncate_all
from tests.factories import from_mapping, make_event

IGNORED = [c.name for c in COLUMNS if not c.imported]

AWKWARD: list[dict[str, Any]] = [
    {
        "title": 'Commas, "quotes" and a title that goes = on',
        "summary": 'Line one\r\nLine two, with "quotes"\nLine three; semicolon',
        "location": "Caracas, Distrito Capital",
        "tags": ["a;b", "comma,tag", "кириллица"],
    },
    {
        "title": '=HYPERLINK("http://evil.example","x")',
        "summary": "+SUM(1,2)",
        "location": "@home",
        "kind": "statement",
        "date": "2025-10",
        "sources": [
            {
                "publisher": "-Minus Press",
                "quote": "=1+1",
                "note": "'already quoted",
                "reliability": "A",
                "credibility": 1,
            },
            {
                "publisher": "@Handle",
                "origin": "=Wire; Agency",  # a relay, its origin's name a formula with a semicolon
                "url": "https://x.example/a;b",
                "title": "semi; colon",
                "published": "2025",
                "archive_url": "https://archive.ph/a;b",
                "accessed": "2025-10-16",
            },
            {"publisher": "Plain", "quote": "\tTabbed; inside", "origin": "-Minus Press"},
        ],
        "likelihood": "very likely",
        "likelihood_rationale": "=two origins; one relayed twice",
        "confidence": "moderate",
    },
    {
        "title": "Москва обещает поставки — 中文 — العربية",
        "date": "2025",
        "date_end": "2026-01",
        "kind": "agreement",
        "status": "confirmed",
        "actors": [
            {"name": "Сергей Рябков", "role": "speaker"},
            {"name": "Ministry of Defence (Russia)", "role": "authoriser"},
            {"name": "Odd; Name", "role": "other"},
            {"name": "Weird (speaker)", "role": "negotiator"},
        ],
        "systems": [
            {"designation": "С-400 «Триумф»", "quantity": 2, "quantity_note": "as many as [4]; maybe"},
            {"designation": "Kalibr", "quantity": 0},
            {"designation": "Igla;S", "quantity_note": "undisclosed"},
        ],
        "countries": [
            {"code": "RUS", "role": "supplier"},
            {"code": "CHN", "role": "supplier"},
            {"code": "VEN", "role": "recipient"},
            {"code": "USA", "role": "target"},
            {"code": "CUB", "role": "intermediary"},
        ],
        "stage_override": 4,
    },
    {
        "title": "'Leading apostrophe",
        "summary": "''two",
        "date": "2024-02-29",
        "kind": "transfer",
        "tags": [],
    },
    {
        "title": "Minimal",
        "summary": "",
        "date": "2019",
        "kind": "assessment",
        "countries": [],
        "actors": [],
        "systems": [],
        "sources": [],
        "tags": [],
    },
]


def export_bytes(db: Session, bom: bool = False) -> bytes:
    return b"".join(write_lines(export_batches(db, from_mapping({})), bom=bom))


def without_ignored(body: bytes) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    return [{k: v for k, v in row.items() if k not in IGNORED} for row in rows]


def empty_database(db: Session) -> None:
    for model in (AuditEntry, Event, Actor, System, Origin):
        db.execute(delete(model))
    db.flush()


def test_export_import_export_gives_the_same_file(db: Session) -> None:
    for data in AWKWARD:
        make_event(db, **data)
    first = export_bytes(db)
    empty_database(db)
    assert export_bytes(db).count(b"\r\n") == 1  # only the header: the database is empty
    parsed = read_csv(first.decode())
    assert parsed.ok, parsed.errors
    commit_import(db, parsed.rows, None, uuid.uuid4())
    db.expire_all()
    second = export_bytes(db)
    assert without_ignored(second) == without_ignored(first)
    # Byte for byte, once the columns an import ignores (id, stage, timestamps, version) are left out.
    assert _strip_columns(second) == _strip_columns(first)
    assert len(first.splitlines()) == len(AWKWARD) + 3  # two summaries hold line breaks


def _strip_columns(body: bytes) -> bytes:
    """The file re-written without the ignored columns: equal files must give equal bytes."""
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    keep = [i for i, name in enumerate(HEADER) if name not in IGNORED]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([row[i] for i in keep])
    return out.getvalue().encode()


def test_round_trip_through_the_web_pages(analyst: Client, db: Session) -> None:
    for data in AWKWARD:
        make_event(db, **data)
    first = analyst.get("/export.csv?bom=1").content
    assert first.startswith(b"\xef\xbb\xbf")
    empty_database(db)
    preview = analyst.post("/import", files={"file": ("mine.csv", first, "text/csv")})
    assert preview.status_code == 200, preview.text
    fields = {"token": html.unescape(re.search(r'name="token" value="([^"]*)"', preview.text).group(1))}  # type: ignore[union-attr]
    assert analyst.post("/import/commit", data=fields).status_code == 200
    db.expire_all()
    second = analyst.get("/export.csv?bom=1").content
    assert _strip_columns(second) == _strip_columns(first)
    assert second != first  # new ids and timestamps: the comparison above is not trivially true


# ---- the command line gives the web's bytes ------------------------------------------------------------


@pytest.fixture
def committed(engine: Engine) -> Iterator[Engine]:
    truncate_all(engine)
    with Session(engine) as s:
        for data in AWKWARD:
            make_event(s, **data)
        s.commit()
    yield engine
    truncate_all(engine)


def test_cli_export_gives_the_same_bytes_as_the_web(committed: Engine, client: Client, capsysbinary) -> None:  # type: ignore[no-untyped-def]
    client.login("viewer")
    for query, argv in (
        ("", []),
        ("bom=1", ["--bom"]),
        ("kind=statement&kind=agreement", ["--kind", "statement", "--kind", "agreement"]),
        ("supplier=RUS&from=2025", ["supplier=RUS&from=2025"]),
    ):
        web = client.get(f"/export.csv?{query}").content
        assert cli_main(["export", *argv]) == 0
        assert capsysbinary.readouterr().out == web, query
    assert cli_main(["export", "--country", "Atlantis"]) == 2
    assert b"Atlantis" in capsysbinary.readouterr().err


def test_cli_export_into_a_reader_that_stops_early(committed: Engine) -> None:
    # `signalboard export | head`: more than a pipe's buffer of CSV, read 100 bytes of it, then close.
    assert cli_main(["seed-synthetic", "--events", "300", "--seed", "5", "--quiet"]) == 0
    env = {**os.environ, "SEED_DEMO_ON_FIRST_RUN": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "export"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(100) == ",".join(HEADER).encode()[:100]
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err


# ---- what the systems cell cannot carry is refused at the door ---------------------------------------------


@pytest.mark.parametrize("designation", ["0\r[", "Buk [M2]", "Su-30 x2", "Su-30 ×  12", "T-72 X3"])
def test_designations_a_list_would_split_are_refused(designation: str) -> None:
    """`Designation ×4 [note]` is how a system is written in the CSV: these would come back split."""
    from pydantic import ValidationError

    from app.schemas import SystemLink
    from app.services.reference import SystemEdit

    for model in (SystemLink, SystemEdit):
        with pytest.raises(ValidationError, match="cannot contain"):
            model.model_validate({"designation": designation})


@pytest.mark.parametrize(
    "designation", ["Leopard 2A4", "F-16 Block 70", "Kh-101 x", "S-400 «Триумф»", "Igla;S"]
)
def test_ordinary_designations_pass(designation: str) -> None:
    from app.schemas import SystemLink

    assert SystemLink.model_validate({"designation": designation}).designation == designation
