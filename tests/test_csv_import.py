"""CSV import: the preview lists each bad row with its line and reason; commit writes all rows or none."""

from __future__ import annotations

import html
import io
import re
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.cli import main as cli_main
from app.config import get_settings
from app.csvio import ParsedRow, parse_actor, parse_system, read_csv, split_items, text_lines
from app.models import Actor, AuditEntry, Event, System
from app.queries.transfer.imports import commit_import
from app.schemas import EventInput
from app.services.events import create_event, event_input, load_event, snapshot
from tests.conftest import Client, truncate_all
from tests.factories import event_data, make_event

FRIENDLY = (
    "Title,Date,Kind,Supplier,Recipient,Actor,System,Publisher,URL,Grade,Tags,Notes to self\r\n"
    "Russia offers Igla-S to Venezuela,2025-10-14,Offer,Russia,VEN,Sergei Ryabkov (speaker),Igla-S ×12,"
    "TASS,https://tass.com/x,C3,caribbean,mine\r\n"
    '"Iran ships drones, reportedly",2025-11,transfer,IRN,Venezuela,"Brand New Person (operator); '
    'Sergei Ryabkov","Shahed-136 [undisclosed]",Reuters; Latin Times,https://reuters.com/a; ,B2; C3,,\r\n'
)


def upload(client: Client, body: bytes | str, name: str = "events.csv"):  # type: ignore[no-untyped-def]
    data = body.encode() if isinstance(body, str) else body
    return client.post("/import", files={"file": (name, data, "text/csv")})


def commit_form(page: str, duplicates: str = "include") -> dict[str, str]:
    """The preview's commit form: its one-time token (the file itself stays on the server)."""
    m = re.search(r'name="token" value="([^"]*)"', page)
    assert m, "no token in the preview"
    return {"token": html.unescape(m.group(1)), "duplicates": duplicates}


def count(db: Session, model: type) -> int:  # type: ignore[type-arg]
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


# ---- the cell formats --------------------------------------------------------------------------------


def test_cell_formats_parse() -> None:
    assert split_items("") == [] and split_items("  ") == []
    assert split_items("RUS; CHN;IRN") == ["RUS", "CHN", "IRN"]
    assert split_items("a;;b; c") == ["a;b", "c"]
    assert split_items("a;;; b") == ["a;", "b"]
    assert split_items("x; ; y") == ["x", "", "y"]
    assert split_items("https://a; ") == ["https://a", ""]
    assert parse_actor("Sergei Ryabkov (speaker)") == ("Sergei Ryabkov", "speaker")
    assert parse_actor("Ministry of Defence (Russia)") == ("Ministry of Defence (Russia)", "other")
    assert parse_actor("X (speaker) (Financier)") == ("X (speaker)", "financier")
    assert parse_actor("Putin") == ("Putin", "other")
    assert parse_system("Kalibr ×4 [as many as [14]]") == ("Kalibr", 4, "as many as [14]")
    assert parse_system("S-300 x 2") == ("S-300", 2, None)
    assert parse_system("Su-30MK2 [repair]") == ("Su-30MK2", None, "repair")
    assert parse_system("Oreshnik") == ("Oreshnik", None, None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", ",", '"', "\r", "\n", "\r\n", "\u2028", "\x1c", "\x85", "\x0b"])))
def test_text_lines_split_as_stringio_does(parts: list[str]) -> None:
    text = "".join(parts)
    assert list(text_lines(text)) == list(io.StringIO(text, newline=""))


def test_bare_carriage_returns_end_records() -> None:
    parsed = read_csv('title,date,kind\rOld Mac,2025,offer\r"Two\rlines",2024,offer\r')
    assert parsed.ok, parsed.errors
    assert [(r.line, r.data.title) for r in parsed.rows] == [(2, "Old Mac"), (3, "Two lines")]


# ---- preview and commit over HTTP --------------------------------------------------------------------


def test_friendly_headers_preview_then_commit(analyst: Client, db: Session) -> None:
    make_event(db, title="Something else entirely", kind="statement", date="2020")  # knows Ryabkov
    before = count(db, Event)
    r = upload(analyst, FRIENDLY)
    assert r.status_code == 200, r.text
    page = r.text
    assert "2</strong> events ready to import" in page
    assert "Brand New Person" in page and "Shahed-136" in page and "Igla-S" in page
    assert "“Russia” → <strong>RUS</strong>" in page and "“Venezuela” → <strong>VEN</strong>" in page
    assert "Notes to self" in page  # reported as ignored
    assert count(db, Event) == before  # a preview writes nothing
    done = analyst.post("/import/commit", data=commit_form(page))
    assert done.status_code == 200, done.text
    assert "Imported 2 events" in done.text
    assert done.text.count("<h1") == 1 and "<h1>Import done</h1>" in done.text  # one heading names the page
    assert count(db, Event) == before + 2
    drones = db.scalars(select(Event).where(Event.title == "Iran ships drones, reportedly")).one()
    full = load_event(db, drones.id)
    assert (full.date_start.isoformat(), full.date_precision) == ("2025-11-01", "month")
    assert [(c.role, c.country_code) for c in full.countries] == [("supplier", "IRN"), ("recipient", "VEN")]
    assert [(a.actor.name, a.role) for a in full.actors] == [
        ("Brand New Person", "operator"),
        ("Sergei Ryabkov", "other"),
    ]
    assert [(s.system.designation, s.quantity, s.quantity_note) for s in full.systems] == [
        ("Shahed-136", None, "undisclosed")
    ]
    assert [(s.publisher, s.url, s.reliability, s.credibility) for s in full.sources] == [
        ("Reuters", "https://reuters.com/a", "B", 2),
        ("Latin Times", None, "C", 3),
    ]
    # Existing actors are reused (one Ryabkov), each new event has its audit row and is searchable.
    assert db.scalar(select(func.count()).select_from(Actor).where(Actor.name == "Sergei Ryabkov")) == 1
    audit = db.scalars(select(AuditEntry).where(AuditEntry.entity_id == drones.id)).all()
    assert [a.action for a in audit] == ["create"] and audit[0].username == analyst.user.username  # type: ignore[union-attr]
    assert analyst.get("/?q=drones").text.count("Iran ships drones") >= 1


def test_committing_the_same_preview_twice_adds_nothing_twice(analyst: Client, db: Session) -> None:
    form = commit_form(upload(analyst, FRIENDLY).text)
    assert analyst.post("/import/commit", data=form).status_code == 200
    after_first = count(db, Event)
    again = analyst.post("/import/commit", data=form)
    assert again.status_code == 409 and "already imported" in again.text
    assert count(db, Event) == after_first


def test_row_errors_are_listed_with_line_numbers_and_reasons(analyst: Client, db: Session) -> None:
    body = (
        "title,date,kind,suppliers,source_publishers,source_urls,source_grades,summary\r\n"
        "Fine row,2025-10-01,offer,RUS,TASS,https://tass.com/a,C3,ok\r\n"
        '"Multi-line summary row",2025-10-02,offer,RUS,TASS,,C3,"line one\nline two"\r\n'
        "Bad kind,2025-10-03,wishful,RUS,,,,\r\n"
        ",2025-10-04,offer,RUS,,,,\r\n"
        "Bad date,2025-13-40,offer,RUS,,,,\r\n"
        "Bad country,2025-10-05,offer,Atlantis,,,,\r\n"
        "Bad grade,2025-10-06,offer,RUS,TASS,,Z9,\r\n"
        "Misaligned,2025-10-07,offer,RUS,TASS; Reuters,https://a.example/1; https://b.example; x,,\r\n"
        "Bad second URL,2025-10-08,offer,RUS,TASS; Reuters,https://a.example/1; ftp://b,,\r\n"
        "Future,2999-01-01,offer,RUS,,,,\r\n"
    )
    # A superscript two is a digit to str.isdigit but not a number to int(): a message, not a crash.
    body = (
        body.replace("summary\r\n", "summary,stage_override\r\n", 1)
        + "Odd stage,2025-10-09,offer,RUS,,,,,²\r\n"
    )
    before = count(db, Event)
    r = upload(analyst, body)
    assert r.status_code == 422
    rows = re.findall(
        r'<tr><td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>', html.unescape(r.text)
    )
    by_line = {int(line): (column, message) for line, column, message in rows}
    assert set(by_line) == {5, 6, 7, 8, 9, 10, 11, 12, 13}, rows  # the multi-line record is lines 3-4
    assert by_line[5][0] == "kind" and by_line[5][1].startswith("“wishful” is not one of: statement, offer")
    assert by_line[6] == ("title", "empty, but a value is needed here")  # not pydantic's "String should…"
    assert by_line[7][0] == "date" and "not a real date" in by_line[7][1]
    assert by_line[8][0] == "suppliers" and "Atlantis" in by_line[8][1]
    assert by_line[9][0] == "source_grades" and "Z9" in by_line[9][1]
    assert by_line[10][0] == "source_urls" and "3 items" in by_line[10][1]
    assert by_line[11] == (
        "source_urls",
        "source 2: a source URL must be a web address starting with http:// or https://",
    )
    assert by_line[12][0] == "date" and "future" in by_line[12][1]
    assert by_line[13][0] == "stage_override" and "0 to 6" in by_line[13][1]
    assert "2 of 11 rows are fine" in r.text
    assert 'name="token"' not in r.text  # no commit button while anything is wrong
    assert count(db, Event) == before


def test_nothing_is_written_when_one_row_is_bad(analyst: Client, db: Session) -> None:
    good = "".join(f"Good row {i},2025-10-{i + 1:02d},statement,RUS,New Actor {i}\r\n" for i in range(20))
    body = (
        "title,date,kind,suppliers,actors\r\n" + good + "Last row is bad,2025-10-21,statement,Atlantis,X\r\n"
    )
    before, actors = count(db, Event), count(db, Actor)
    r = upload(analyst, body)
    assert r.status_code == 422 and "Atlantis" in r.text
    assert 'name="token"' not in r.text  # nothing staged to commit
    # A hand-made commit request (skipping the preview) names no checked file and is refused whole.
    forged = analyst.post("/import/commit", data={"token": "made-up", "duplicates": "include"})
    assert forged.status_code == 409
    assert count(db, Event) == before
    assert count(db, Actor) == actors


def test_a_failure_while_writing_rolls_everything_back(
    analyst: Client,
    db: Session,
    app,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    from fastapi.testclient import TestClient

    import app.web.transfer as transfer

    form = commit_form(upload(analyst, FRIENDLY).text)
    events, actors = count(db, Event), count(db, Actor)

    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        commit_import(*args, **kwargs)  # the rows are written, then the commit fails
        raise RuntimeError("disk full")

    monkeypatch.setattr(transfer, "commit_import", explode)
    quiet = TestClient(app, raise_server_exceptions=False, cookies=analyst.http.cookies)
    r = quiet.post("/import/commit", data=form, headers={"X-CSRF-Token": analyst.csrf})
    assert r.status_code == 500 and "Nothing was saved" in r.text
    assert (count(db, Event), count(db, Actor)) == (events, actors)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 422, "The file is empty."),
        (b"\xef\xbb\xbf\r\n", 422, "The file is empty."),
        (b"title,date,kind\r\n", 422, "a header row but no events"),
        ("title,date,kind\r\nCaf\xe9,2025,offer\r\n".encode("latin-1"), 422, "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 422, "not a CSV file"),
        (b"%PDF-1.7 lorem ipsum dolor", 422, "No known column"),
        (b"title,summary\r\nA,B\r\n", 422, "Missing required columns: date, kind"),
        (b"Title,TITLE\r\nA,B\r\n", 422, "both mean title"),
        (b'title,date,kind\r\n"unterminated,2025,offer\r\n', 422, "malformed"),
    ],
)
def test_unusable_files_get_a_clear_message(analyst: Client, body: bytes, status: int, message: str) -> None:
    r = upload(analyst, body)
    assert r.status_code == status
    assert message in html.unescape(r.text)


def test_too_large_is_413(analyst: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 1024)
    r = upload(analyst, "title,date,kind\r\n" + "x,2025,offer\r\n" * 200)
    assert r.status_code == 413
    assert "larger than the limit" in r.text


def test_no_file_chosen(analyst: Client) -> None:
    r = analyst.post("/import", data={})
    assert r.status_code == 422 and "Choose a CSV file" in r.text


def test_commit_without_a_token(analyst: Client) -> None:
    r = analyst.post("/import/commit", data={})
    assert r.status_code == 409 and "already imported or has expired" in r.text


def test_duplicates_of_existing_events_are_flagged(analyst: Client, db: Session) -> None:
    existing = make_event(db, title="Russia offers Kalibr missiles to Venezuela", date="2025-10-14")
    body = (
        "title,date,kind,suppliers,recipients\r\n"
        "Russia offers Kalibr missiles to Venezuela,2025-10-15,offer,RUS,VEN\r\n"
        "Completely unrelated headline,2019,economic,FRA,DEU\r\n"
        "Completely unrelated headline,2019,economic,FRA,DEU\r\n"
    )
    r = upload(analyst, body)
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert "Likely duplicates (2)" in page
    assert f'href="/events/{existing.id}"' in page
    assert "line 3 of this file" in page
    assert "Import 3 events, 2 likely duplicates included</button>" in page  # the button says so too


def test_aliases_and_codes_find_existing_references(analyst: Client, db: Session) -> None:
    make_event(db)  # creates Sergei Ryabkov and Kalibr
    actor = db.scalars(select(Actor).where(Actor.name == "Sergei Ryabkov")).one()
    actor.aliases = ["Sergey Rybakov"]
    actor.match_keys = ["sergei ryabkov", "sergey rybakov"]
    db.flush()
    actors, systems = count(db, Actor), count(db, System)
    body = (
        "title,date,kind,actors,systems,supplier\r\n"
        "Alias test,2025-10,statement,SERGEY RYBAKOV (speaker),kalibr ×2,ru\r\n"
    )
    form = commit_form(upload(analyst, body).text)
    assert analyst.post("/import/commit", data=form).status_code == 200
    assert (count(db, Actor), count(db, System)) == (actors, systems)
    event = load_event(db, db.scalars(select(Event.id).where(Event.title == "Alias test")).one())
    assert [a.actor.name for a in event.actors] == ["Sergei Ryabkov"]
    assert [(s.system.designation, s.quantity) for s in event.systems] == [("Kalibr", 2)]
    assert [c.country_code for c in event.countries] == ["RUS"]


def test_viewers_cannot_import(client: Client) -> None:
    client.login("viewer")
    assert client.get("/import").status_code == 403
    assert upload(client, FRIENDLY).status_code == 403


def test_import_page_documents_the_columns(analyst: Client) -> None:
    r = analyst.get("/import")
    assert r.status_code == 200
    assert 'enctype="multipart/form-data"' in r.text and 'name="csrf_token"' in r.text
    assert "<code>source_grades</code>" in r.text


# ---- the bulk path stores exactly what the form path stores -----------------------------------------


def test_bulk_import_matches_create_event(db: Session) -> None:
    data = EventInput.model_validate(
        event_data(
            title="Bulk equals single",
            date_end="2025-11",
            date="2025-10",
            stage_override=4,
            actors=[
                {"name": "Sergei Ryabkov", "role": "speaker"},
                {"name": "Sergei Ryabkov", "role": "speaker"},
                {"name": "Rostec", "role": "financier"},
            ],
            systems=[{"designation": "Kalibr", "quantity": 4}, {"designation": "kalibr", "quantity": 9}],
            sources=[
                {"publisher": "TASS", "published": "2025-10", "quote": "q", "title": "t", "note": "n"},
                {
                    "publisher": "Reuters",
                    "url": "https://reuters.com/x",
                    "reliability": "A",
                    "credibility": 1,
                },
            ],
        )
    )
    single = create_event(db, data, None)
    db.flush()
    bulk_id = commit_import(db, [ParsedRow(2, data)], None, uuid.uuid4()).event_ids[0]
    db.expire_all()
    a, b = load_event(db, single.id), load_event(db, bulk_id)
    assert snapshot(a) == snapshot(b)
    assert (a.stage, a.period_end, a.version) == (b.stage, b.period_end, b.version)
    assert event_input(a).model_dump(exclude={"client_token"}) == event_input(b).model_dump(
        exclude={"client_token"}
    )
    audits = db.scalars(select(AuditEntry).where(AuditEntry.entity_id.in_([a.id, b.id]))).all()
    assert audits[0].changes == audits[1].changes
    vectors = dict(db.execute(select(Event.id, Event.search_vector).where(Event.id.in_([a.id, b.id]))).all())
    assert vectors[b.id] and vectors[a.id] == vectors[b.id]


def test_read_csv_accepts_its_own_export_header_in_any_case() -> None:
    parsed = read_csv("TITLE,Date,KIND,Source-Publishers\nx,2025,Offer,TASS\n")
    assert parsed.ok, parsed.errors
    assert parsed.rows[0].data.kind == "offer" and parsed.rows[0].data.sources[0].publisher == "TASS"


# ---- command line ----------------------------------------------------------------------------------


@pytest.fixture
def committed(engine: Engine) -> Iterator[Engine]:
    """The CLI commits for real: empty the tables before and after."""
    truncate_all(engine)
    yield engine
    truncate_all(engine)


def test_cli_import_dry_run_then_real(committed: Engine, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "in.csv"
    path.write_text(FRIENDLY, encoding="utf-8")
    assert cli_main(["import", str(path), "--dry-run"]) == 0
    assert "2 event(s) would be imported" in capsys.readouterr().err
    with Session(committed) as s:
        assert count(s, Event) == 0
    assert cli_main(["import", str(path)]) == 0
    assert "imported 2 event(s)" in capsys.readouterr().err
    with Session(committed) as s:
        assert count(s, Event) == 2


def test_cli_import_refuses_a_file_with_a_bad_row(committed: Engine, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    path.write_text(FRIENDLY + "Bad,2025,offer,Atlantis,,,,,,,,\r\n", encoding="utf-8")
    assert cli_main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 4 [Supplier]" in err and "Atlantis" in err and "nothing imported" in err
    with Session(committed) as s:
        assert count(s, Event) == 0 and count(s, Actor) == 0
    path.write_bytes(b"\xff\xfe not utf-8")
    assert cli_main(["import", str(path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_duplicate_check_says_how_far_it_got(
    analyst: Client, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.queries.transfer.imports as imports

    make_event(db, title="Russia offers Kalibr missiles to Venezuela", date="2025-10-14")
    monkeypatch.setattr(imports, "DUPLICATE_BATCH", 1)
    monkeypatch.setattr(imports, "DUPLICATE_CHECK_LIMIT", 1)
    body = (
        "title,date,kind\r\n"
        "Something unrelated,2025-10-14,offer\r\n"
        "Russia offers Kalibr missiles to Venezuela,2025-10-14,offer\r\n"
    )
    page = html.unescape(upload(analyst, body).text)
    assert "Likely duplicates (0)" in page
    assert "Compared the first 1 rows with existing events" in page
    monkeypatch.setattr(imports, "DUPLICATE_CHECK_LIMIT", 2000)
    page = html.unescape(upload(analyst, body).text)
    assert "Likely duplicates (1)" in page and "Compared the first" not in page


# ---- command line in several batches (the pipelined path) ---------------------------------------------

# Text that COPY's format and array literals must carry unchanged: backslashes (also before N, which
# is COPY's NULL), tabs, line breaks, quotes, braces, commas, a literal NULL tag, non-Latin scripts.
BATCHED = (
    "title,date,date_end,kind,suppliers,recipients,actors,systems,tags,summary,location,"
    "source_publishers,source_urls,source_titles,source_dates,source_grades,source_quotes,source_notes\r\n"
    "Back\\slash \\N title,2025-10-14,,offer,RUS,VEN,Sergei Ryabkov (speaker),Igla-S ×12 [as many as 14],"
    '"a""b; {x}; back\\slash; NULL; comma,tag","tab\there\r\nline two \\N",\\N,'
    'TASS,https://tass.com/x,t,2025-10,C3,"quote\twith tab",\\\\\r\n'
    "Second,2025-11,2026,transfer,IRN,VEN,Brand New Person (operator),Shahed-136,,,,Reuters,,,,B2,,\r\n"
    "Third Москва,2024,,statement,Russia,,Brand New Person (speaker); Sergei Ryabkov (speaker),"
    "kalibr ×2; Kalibr ×3,кириллица,,,,,,,,,\r\n"
    "Fourth,2024-02-29,,agreement,CHN,PRK,Another New One (financier),Shahed-136 [resold],x,s,Pyongyang,"
    "AFP; Reuters,; https://reuters.com/a,,2024; ,A1; F6,; q,n; \r\n"
    "Fifth,2023-01,,deployment,RUS,SYR,,,,,,,,,,,,\r\n"
)


def _stored(engine: Engine) -> dict[str, tuple[object, ...]]:
    """Everything an import writes about each event, by title (ids and timestamps left out)."""
    with Session(engine) as s:
        out = {}
        for event in s.scalars(select(Event)):
            full = load_event(s, event.id)
            audit = s.scalars(select(AuditEntry).where(AuditEntry.entity_id == event.id)).one()
            out[event.title] = (
                snapshot(full),
                full.search_vector,
                full.stage,
                full.period_end,
                full.version,
                audit.changes,
                audit.action,
            )
        return out


def test_cli_import_in_batches_stores_what_the_web_path_stores(  # type: ignore[no-untyped-def]
    committed: Engine, tmp_path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.cli.transfer as cli_transfer

    monkeypatch.setattr(cli_transfer, "BATCH_ROWS", 2)  # three batches; a new actor is seen in two of them
    path = tmp_path / "batched.csv"
    path.write_text(BATCHED, encoding="utf-8")
    assert cli_main(["import", str(path)]) == 0, capsys.readouterr().err
    assert "imported 5 event(s); new actors: 3, new systems: 3" in capsys.readouterr().err
    by_cli = _stored(committed)
    with Session(committed) as s:
        assert count(s, Actor) == 3 and count(s, System) == 3
    back = by_cli["Back\\slash \\N title"][0]
    assert back["summary"] == "tab\there\r\nline two \\N" and back["location"] == "\\N"  # type: ignore[index]
    assert back["tags"] == ['a"b', "{x}", "back\\slash", "null", "comma,tag"]  # type: ignore[index]
    assert back["sources"][0]["quote"] == "quote\twith tab" and back["sources"][0]["note"] == "\\\\"  # type: ignore[index]

    truncate_all(committed)
    parsed = read_csv(BATCHED)
    assert parsed.ok, parsed.errors
    with Session(committed) as s:
        commit_import(s, parsed.rows, None, uuid.uuid4())
        s.commit()
    assert _stored(committed) == by_cli


def test_cli_import_with_bad_rows_in_later_batches_writes_nothing(  # type: ignore[no-untyped-def]
    committed: Engine, tmp_path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.cli.transfer as cli_transfer

    monkeypatch.setattr(cli_transfer, "BATCH_ROWS", 2)
    good = "".join(f"Good {i},2025-10-{i + 1:02d},statement,RUS,New Actor {i}\r\n" for i in range(6))
    body = (
        "title,date,kind,suppliers,actors\r\n"
        + good
        + "Bad,2025-10-21,statement,Atlantis,X\r\n"
        + good
        + "Worse,2999,statement,RUS,Y\r\n"
    )
    path = tmp_path / "late.csv"
    path.write_text(body, encoding="utf-8")
    assert cli_main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 8 [suppliers]" in err and "Atlantis" in err
    assert "line 15 [date]" in err and "future" in err
    assert "nothing imported: 2 problem(s)" in err
    with Session(committed) as s:
        assert (count(s, Event), count(s, Actor), count(s, AuditEntry)) == (0, 0, 0)


def test_cli_import_failing_while_loading_rolls_everything_back(  # type: ignore[no-untyped-def]
    committed: Engine, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.cli.transfer as cli_transfer
    import app.queries.transfer.imports as imports

    monkeypatch.setattr(cli_transfer, "BATCH_ROWS", 2)
    calls = []
    real = imports.write_batch

    def second_fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real(*args, **kwargs)

    monkeypatch.setattr(imports, "write_batch", second_fails)
    path = tmp_path / "batched.csv"
    path.write_text(BATCHED, encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk full"):
        cli_main(["import", str(path)])
    with Session(committed) as s:
        assert (count(s, Event), count(s, Actor), count(s, AuditEntry)) == (0, 0, 0)


def test_row_messages_name_the_value_at_fault() -> None:
    parsed = read_csv(
        "title,date,kind,suppliers,stage_override\r\n"
        "One-letter country,2025-10-01,offer,X,\r\n"
        "Bad kind,2025-10-01,wishful,RUS,\r\n"
        "Stage too high,2025-10-01,offer,RUS,9\r\n"
    )
    messages = {e.line: (e.column, e.message) for e in parsed.errors}
    assert messages[2] == ("suppliers", "unknown country “X”; use an ISO 3166-1 code such as RUS")
    assert messages[3][1].startswith("“wishful” is not one of: statement, offer")
    assert messages[4][0] == "stage_override" and "9" in messages[4][1]
