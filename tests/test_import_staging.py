"""Web import of a checked file kept on the server: any size up to the limit, once, by its uploader only."""

from __future__ import annotations

import html
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.auth.tokens import sha256
from app.models import Event, StagedImport
from app.queries.transfer import staging
from app.queries.transfer.imports import commit_import
from tests.conftest import Client, make_user
from tests.factories import make_event
from tests.test_csv_import import FRIENDLY, commit_form, committed, count, upload

__all__ = ["committed"]  # the fixture, imported to be used here

KINDS = ("statement", "offer", "transfer", "deployment")


def large_csv(rows: int) -> str:
    """A valid file of `rows` distinct events, about 200 bytes a row."""
    lines = ["title,date,kind,suppliers,recipients,actors,summary"]
    for i in range(rows):
        lines.append(
            f"Staging shipment lot {i:05d} reported,{2010 + i % 15}-{1 + i % 12:02d},{KINDS[i % 4]},RUS,VEN,"
            f"Actor {i % 40},Lot {i} as listed in the manifest; the summary is long, as real ones are, "
            "so that the file passes a mebibyte with few rows"
        )
    return "\r\n".join(lines) + "\r\n"


def staged_rows(db: Session) -> int:
    return count(db, StagedImport)


def test_a_file_over_one_mib_previews_then_commits(analyst: Client, db: Session) -> None:
    """The commit form carries a token, not the file: a field limit of 1 MiB no longer matters."""
    body = large_csv(6_000)
    assert len(body.encode()) > 1024 * 1024
    before = count(db, Event)
    preview = upload(analyst, body, "large.csv")
    assert preview.status_code == 200, preview.text[:2000]
    assert "6,000</strong> events ready to import" in preview.text
    assert len(preview.text) < 200_000  # the page no longer embeds the file
    form = commit_form(preview.text)
    stored = db.scalars(select(StagedImport)).one()
    assert stored.id == sha256(form["token"]) and form["token"] not in stored.id  # only the hash is kept
    assert stored.user_id == analyst.user.id  # type: ignore[union-attr]
    done = analyst.post("/import/commit", data=form)
    assert done.status_code == 200, done.text[:2000]
    assert "Imported 6,000 events" in done.text and "large.csv" in done.text
    assert count(db, Event) == before + 6_000
    assert staged_rows(db) == 0  # used up by the import's transaction


def test_a_used_token_is_refused(analyst: Client, db: Session) -> None:
    form = commit_form(upload(analyst, FRIENDLY).text)
    assert analyst.post("/import/commit", data=form).status_code == 200
    after = count(db, Event)
    again = analyst.post("/import/commit", data={**form, "duplicates": "skip"})
    assert again.status_code == 409
    assert "already imported or has expired, so nothing was added" in html.unescape(again.text)
    assert count(db, Event) == after


def test_another_users_token_is_refused(client: Client, db: Session) -> None:
    client.login("analyst")
    form = commit_form(upload(client, FRIENDLY).text)
    before = count(db, Event)
    client.login("admin")  # same browser, another account: the token alone is not enough
    r = client.post("/import/commit", data=form)
    assert r.status_code == 403 and "belongs to another account" in r.text
    assert count(db, Event) == before and staged_rows(db) == 1  # still there for its owner


def test_an_expired_token_is_refused_and_later_purged(analyst: Client, db: Session) -> None:
    form = commit_form(upload(analyst, FRIENDLY).text)
    db.execute(text("UPDATE staged_imports SET created_at = created_at - interval '61 minutes'"))
    db.commit()  # (the refused request rolls back its own work only)
    before = count(db, Event)
    r = analyst.post("/import/commit", data=form)
    assert r.status_code == 410 and "expired" in r.text and "Upload the file again" in r.text
    assert count(db, Event) == before
    upload(analyst, FRIENDLY)  # any new upload clears expired ones
    assert [sha256(form["token"])] != db.scalars(select(StagedImport.id)).all()
    assert staged_rows(db) == 1


def test_each_user_keeps_only_a_few_waiting_files(analyst: Client, db: Session) -> None:
    tokens = [commit_form(upload(analyst, FRIENDLY).text)["token"] for _ in range(staging.PER_USER + 2)]
    assert staged_rows(db) == staging.PER_USER
    assert analyst.post("/import/commit", data={"token": tokens[0]}).status_code == 409  # dropped
    assert analyst.post("/import/commit", data={"token": tokens[-1]}).status_code == 200


def test_skip_the_likely_duplicates(analyst: Client, db: Session) -> None:
    make_event(db, title="Russia offers Kalibr missiles to Venezuela", date="2025-10-14")
    body = (
        "title,date,kind,suppliers,recipients\r\n"
        "Russia offers Kalibr missiles to Venezuela,2025-10-15,offer,RUS,VEN\r\n"  # like an existing event
        "Completely unrelated headline,2019,economic,FRA,DEU\r\n"
        "Completely unrelated headline,2019,economic,FRA,DEU\r\n"  # like line 3
        "A second new headline,2020,economic,FRA,DEU\r\n"
    )
    preview = upload(analyst, body)
    page = html.unescape(preview.text)
    assert 'name="duplicates" value="skip">Skip the likely duplicates: import 2 events</button>' in page
    assert 'name="duplicates" value="include">Import 4 events, 2 likely duplicates included</button>' in page
    before = count(db, Event)
    done = analyst.post("/import/commit", data=commit_form(preview.text, "skip"))
    assert done.status_code == 200, done.text
    assert "Imported 2 events" in done.text and "skipped 2 likely duplicates" in done.text
    assert count(db, Event) == before + 2
    titles = db.scalars(select(Event.title).order_by(Event.id.desc()).limit(2)).all()
    assert sorted(titles) == ["A second new headline", "Completely unrelated headline"]


def test_import_all_keeps_the_duplicates(analyst: Client, db: Session) -> None:
    make_event(db, title="Russia offers Kalibr missiles to Venezuela", date="2025-10-14")
    body = (
        "title,date,kind\r\n"
        "Russia offers Kalibr missiles to Venezuela,2025-10-15,offer\r\n"
        "Other,2020,offer\r\n"
    )
    before = count(db, Event)
    preview = upload(analyst, body)
    assert "Skip the likely duplicates: import 1 event</button>" in preview.text
    assert analyst.post("/import/commit", data=commit_form(preview.text)).status_code == 200
    assert count(db, Event) == before + 2


def test_a_large_import_that_fails_writes_nothing_and_keeps_the_file(
    analyst: Client,
    db: Session,
    app,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """All or nothing: rows written before the failure are rolled back, and the token is not used up."""
    from fastapi.testclient import TestClient

    import app.web.transfer as transfer

    form = commit_form(upload(analyst, large_csv(1_000)).text)
    events = count(db, Event)

    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        commit_import(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(transfer, "commit_import", explode)
    quiet = TestClient(app, raise_server_exceptions=False, cookies=analyst.http.cookies)
    r = quiet.post("/import/commit", data=form, headers={"X-CSRF-Token": analyst.csrf})
    assert r.status_code == 500 and "Nothing was saved" in r.text
    assert count(db, Event) == events and staged_rows(db) == 1
    monkeypatch.undo()
    assert analyst.post("/import/commit", data=form).status_code == 200
    assert count(db, Event) == events + 1_000


def test_a_file_of_only_duplicates_cannot_be_skipped_to_nothing(analyst: Client, db: Session) -> None:
    body = "title,date,kind\r\nSame,2020,offer\r\nSame,2020,offer\r\n"
    preview = upload(analyst, body)
    assert "Skip the likely duplicates: import 1 event</button>" in preview.text  # line 3 is like line 2
    # Were every row flagged, skipping them would leave nothing: said, and the file is kept.
    db.execute(text("UPDATE staged_imports SET options = jsonb_set(options, '{duplicate_lines}', '[2, 3]')"))
    r = analyst.post("/import/commit", data=commit_form(preview.text, "skip"))
    assert r.status_code == 422 and "nothing to import" in r.text
    assert staged_rows(db) == 1
    assert db.scalar(select(func.count()).select_from(Event).where(Event.title == "Same")) == 0


def test_two_submits_at_once_import_once(committed: Engine) -> None:
    """The second submit waits on the first one's row lock, then finds the file used up."""
    with Session(committed) as s:
        user = make_user(s, "analyst")
        token = staging.stage(s, user.id, FRIENDLY, {"filename": "x"})
        s.commit()
        user_id = user.id
    first, second = Session(committed), Session(committed)
    try:
        assert staging.take(first, token, user_id).text == FRIENDLY  # locked and deleted, not committed
        outcome: list[object] = []
        waiter = threading.Thread(target=lambda: outcome.append(_take_or_refusal(second, token, user_id)))
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive()  # waiting on the first transaction's lock
        first.commit()
        waiter.join(10)
        assert outcome == [409]
    finally:
        first.close()
        second.close()


def _take_or_refusal(session: Session, token: str, user_id: int) -> object:
    try:
        return staging.take(session, token, user_id)
    except staging.StagingRefused as exc:
        return exc.status
