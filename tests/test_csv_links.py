"""The CSV `links` column: exported with each event's own links; on import `#N` is the file's row with id N,
else a live event of this database, and anything else is a row error (web preview, commit and CLI)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.cli import main as cli_main
from app.models import AuditEntry, Event, EventLink
from app.services.events import delete_event, restore_event
from app.services.links import add_link
from tests.conftest import Client, truncate_all
from tests.factories import make_event
from tests.test_csv_import import commit_form, upload

HEAD = "id,title,date,kind,status,links\r\n"


def rows_of(body: str) -> dict[str, dict[str, str]]:
    return {r["title"]: r for r in csv.DictReader(io.StringIO(body))}


def links_in(db: Session) -> set[tuple[str, str, str]]:
    """(source title, type, target title) of every link."""
    stmt = select(EventLink.source_id, EventLink.type, EventLink.target_id)
    titles = dict(db.execute(select(Event.id, Event.title)).tuples().all())
    return {(titles[s], t, titles[d]) for s, t, d in db.execute(stmt)}


def test_export_shows_each_events_own_links(analyst: Client, db: Session) -> None:
    claim = make_event(db, title="Claim", status="claimed")
    denial = make_event(db, title="Denial", kind="denial")
    later = make_event(db, title="Later")
    add_link(db, denial.id, claim.id, "denies", None)
    add_link(db, later.id, denial.id, "follows_up", None)
    add_link(db, later.id, claim.id, "confirms", None)
    db.commit()
    rows = rows_of(analyst.get("/export.csv").text)
    assert list(rows["Later"])[-4:] == ["links", "created_at", "updated_at", "version"]
    assert rows["Denial"]["links"] == f"denies #{claim.id}"
    assert rows["Later"]["links"] == f"follows_up #{denial.id}; confirms #{claim.id}"
    assert rows["Claim"]["links"] == ""  # incoming links belong to their source's row


def test_a_link_to_a_deleted_event_leaves_the_export_and_comes_back(analyst: Client, db: Session) -> None:
    """The export names only live events (as the pages do), so the file it gives imports again."""
    claim = make_event(db, title="Claim", status="claimed")
    denial = make_event(db, title="Denial", kind="denial")
    add_link(db, denial.id, claim.id, "denies", None)
    db.commit()
    delete_event(db, claim.id, None)
    db.commit()
    exported = analyst.get("/export.csv").text
    assert rows_of(exported)["Denial"]["links"] == ""
    assert upload(analyst, exported).status_code == 200
    restore_event(db, claim.id, None)
    db.commit()
    assert rows_of(analyst.get("/export.csv").text)["Denial"]["links"] == f"denies #{claim.id}"


def test_round_trip_into_the_same_database_links_the_copies(analyst: Client, db: Session) -> None:
    claim = make_event(db, title="Claim", status="claimed")
    denial = make_event(db, title="Denial", kind="denial")
    add_link(db, denial.id, claim.id, "denies", None)
    db.commit()
    exported = analyst.get("/export.csv").text
    preview = upload(analyst, exported.replace("Claim", "Claim copy").replace("Denial", "Denial copy"))
    assert preview.status_code == 200, preview.text
    done = analyst.post("/import/commit", data=commit_form(preview.text))
    assert done.status_code == 200, done.text
    assert links_in(db) == {("Denial", "denies", "Claim"), ("Denial copy", "denies", "Claim copy")}
    copy_id = db.scalar(select(Event.id).where(Event.title == "Denial copy"))
    again = rows_of(analyst.get("/export.csv").text)
    assert again["Denial copy"]["links"].startswith("denies #") and again["Denial copy"]["links"] != (
        f"denies #{claim.id}"
    )
    history = db.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == copy_id)).all()
    assert "link" in history


def test_links_to_events_already_here_are_shown_in_the_preview(analyst: Client, db: Session) -> None:
    claim = make_event(db, title="Existing claim", status="claimed")
    db.commit()
    body = HEAD + f"1,New denial,2025-11-02,denial,reported,denies #{claim.id}\r\n"
    preview = upload(analyst, body)
    assert preview.status_code == 200 and f"#{claim.id} Existing claim" in preview.text
    assert analyst.post("/import/commit", data=commit_form(preview.text)).status_code == 200
    assert links_in(db) == {("New denial", "denies", "Existing claim")}


@pytest.mark.parametrize(
    ("links", "message"),
    [
        ("denies #1", "a row cannot link to itself"),
        ("denies #999999", "#999999 is neither a row of this file"),
        ("denies #999999999999", "#999999999999 is neither a row of this file"),
        ("praises #2", "is not a link"),
        ("denies 2", "is not a link"),
        ("denies #3", "2 rows have id 3"),
    ],
)
def test_bad_links_are_row_errors(analyst: Client, db: Session, links: str, message: str) -> None:
    body = (
        HEAD
        + f"1,First,2025-10-01,statement,claimed,{links}\r\n"
        + "2,Second,2025-10-02,statement,claimed,\r\n"
        + "3,Third,2025-10-03,statement,claimed,\r\n"
        + "3,Third again,2025-10-04,statement,claimed,\r\n"
    )
    before = db.scalar(select(func.count()).select_from(Event))
    preview = upload(analyst, body)
    assert preview.status_code == 422 and message in preview.text
    assert db.scalar(select(func.count()).select_from(Event)) == before


def test_a_link_to_a_deleted_event_is_refused(analyst: Client, db: Session) -> None:
    gone = make_event(db, title="Gone")
    delete_event(db, gone.id, None)
    db.commit()
    preview = upload(analyst, HEAD + f"1,Linker,2025-10-01,statement,claimed,same as #{gone.id}\r\n")
    assert preview.status_code == 422 and f"event #{gone.id} was deleted" in preview.text


def test_a_link_to_a_row_left_out_as_a_duplicate_is_refused(analyst: Client, db: Session) -> None:
    make_event(db, title="Kremlin denies Igla-S", kind="denial", date="2025-10-02", status="reported")
    db.commit()
    body = (
        HEAD
        + "7,Kremlin denies Igla-S,2025-10-02,denial,reported,\r\n"
        + "8,A follow-up,2025-10-09,statement,reported,follows up #7\r\n"
    )
    preview = upload(analyst, body)
    assert preview.status_code == 200 and "Likely duplicates (1)" in preview.text
    refused = analyst.post("/import/commit", data=commit_form(preview.text, duplicates="skip"))
    assert refused.status_code == 422 and "the row with id 7 is left out of this import" in refused.text
    assert db.scalar(select(func.count()).select_from(Event)) == 1


@pytest.fixture
def committed(engine: Engine) -> Iterator[Engine]:
    truncate_all(engine)
    yield engine
    truncate_all(engine)


def test_cli_import_links_rows_across_batches(committed: Engine, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from app.cli import transfer

    lines = [HEAD]
    for i in range(1, 8):
        target = f"follows_up #{i + 1}" if i < 7 else "confirms #1"  # forward and backward references
        lines.append(f"{i},Event {i},2025-10-0{i},statement,claimed,{target}\r\n")
    path = tmp_path / "links.csv"
    path.write_text("".join(lines), encoding="utf-8")
    original = transfer.BATCH_ROWS
    transfer.BATCH_ROWS = 2  # several batches: a link may name a row of a later batch
    try:
        assert cli_main(["import", str(path), "--dry-run"]) == 0
        assert cli_main(["import", str(path)]) == 0
    finally:
        transfer.BATCH_ROWS = original
    with Session(committed) as s:
        found = links_in(s)
    assert ("Event 3", "follows_up", "Event 4") in found and ("Event 7", "confirms", "Event 1") in found
    assert len(found) == 7
    bad = tmp_path / "bad.csv"
    bad.write_text(HEAD + "1,Alone,2025-10-01,statement,claimed,denies #424242\r\n", encoding="utf-8")
    capsys.readouterr()
    assert cli_main(["import", str(bad)]) == 1
    assert "#424242 is neither a row of this file" in capsys.readouterr().err
    assert cli_main(["import", str(bad), "--dry-run"]) == 1
