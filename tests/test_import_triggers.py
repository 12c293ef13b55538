"""The bulk import: any role may run it (PostgreSQL checks every foreign key), references held, tokens."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import app.queries.transfer.imports as imports
from app.cli import main as cli_main
from app.csvio import read_csv
from app.domain.textkeys import match_keys
from app.models import Actor, AuditEntry, Event, EventActor
from app.queries.transfer.export_lines import make_lines
from app.queries.transfer.imports import ReferenceGone, build_batch, commit_import, prepare_batch, write_batch
from tests.conftest import Client
from tests.test_csv_import import BATCHED, FRIENDLY, _stored, commit_form, committed, upload

__all__ = ["committed"]  # the fixture, imported to be used here

ONE_ROW = "title,date,kind,suppliers,actors\r\nRussia offers Igla-S,2025-10-14,offer,RUS,Known Person\r\n"


def _psycopg(engine: Engine) -> str:
    """The engine's URL as libpq takes it."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _known_actor(engine: Engine) -> int:
    """A committed actor the import will find by name."""
    with Session(engine) as s:
        actor = Actor(name="Known Person", aliases=[], match_keys=match_keys("Known Person"), type="person")
        s.add(actor)
        s.commit()
        return actor.id


def _count(engine: Engine, model: type) -> int:  # type: ignore[type-arg]
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_plain_role_imports_and_its_lines_are_stored(committed: Engine) -> None:
    """No superuser, no session_replication_role: the import runs as an ordinary owner of nothing."""
    role = f"sb_plain_{secrets.token_hex(3)}"
    admin = create_engine(committed.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    plain = create_engine(committed.url.set(username=role))
    try:
        parsed = read_csv(BATCHED)
        with Session(plain) as s:
            assert not s.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
            result = commit_import(s, parsed.rows, None, uuid.uuid4())
            s.commit()
        assert len(result.event_ids) == 5
        assert len(_stored(committed)) == 5
        with Session(committed) as s:
            lines = dict(s.execute(text("SELECT event_id, line FROM event_lines")).tuples().all())
            assert lines == make_lines(s, result.event_ids)
    finally:
        plain.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_a_reference_deleted_before_loading_fails_the_batch(committed: Engine) -> None:
    actor_id = _known_actor(committed)
    rows = read_csv(ONE_ROW).rows
    with Session(committed) as s:
        payload = build_batch(rows, prepare_batch(s, rows), None, uuid.uuid4())
        assert payload.referenced.actors == [actor_id] and payload.referenced.countries == ["RUS"]
        with psycopg.connect(_psycopg(committed), autocommit=True) as other:
            other.execute("DELETE FROM actors WHERE id = %s", (actor_id,))
        with pytest.raises(ReferenceGone, match=f"actors {actor_id} no longer exist"):
            write_batch(s, payload)
        s.rollback()
    assert _count(committed, Event) == 0


def test_held_references_cannot_be_deleted_until_commit(committed: Engine) -> None:
    actor_id = _known_actor(committed)
    rows = read_csv(ONE_ROW).rows
    with Session(committed) as s:
        write_batch(s, build_batch(rows, prepare_batch(s, rows), None, uuid.uuid4()))
        with psycopg.connect(_psycopg(committed), autocommit=True) as other:
            other.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM actors WHERE id = %s", (actor_id,))
        s.commit()
    with Session(committed) as s:
        assert s.scalar(select(EventActor.actor_id)) == actor_id


def test_events_missing_from_the_load_fail_the_batch(committed: Engine) -> None:
    rows = read_csv(BATCHED).rows
    with Session(committed) as s, Session(committed) as helper:
        payload = build_batch(rows, prepare_batch(s, rows), None, uuid.uuid4())
        staged = payload.copy_text["import_events"]
        short = replace(payload, copy_text={**payload.copy_text, "import_events": staged.split("\n", 1)[1]})
        events = imports.event_rows(helper, short)  # one event lost on the way
        with pytest.raises(RuntimeError, match="4 of the batch's 5 events were loaded"):
            write_batch(s, payload, events=events)
        s.rollback()
    assert _count(committed, Event) == 0


def test_cli_reports_a_reference_gone_and_writes_nothing(  # type: ignore[no-untyped-def]
    committed: Engine, tmp_path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gone(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ReferenceGone("actors 7 no longer exist (deleted or merged while importing)")

    monkeypatch.setattr(imports, "hold_references", gone)
    path = tmp_path / "one.csv"
    path.write_text(BATCHED, encoding="utf-8")
    assert cli_main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "actors 7 no longer exist" in err and "nothing was imported" in err
    assert "Traceback" not in err
    assert (_count(committed, Event), _count(committed, Actor), _count(committed, AuditEntry)) == (0, 0, 0)


def test_web_import_answers_409_when_a_reference_is_gone(
    analyst: Client, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.web.transfer as transfer

    form = commit_form(upload(analyst, FRIENDLY).text)
    before = db.scalar(select(func.count()).select_from(Event))

    def gone(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ReferenceGone("systems 3 no longer exist (deleted or merged while importing)")

    monkeypatch.setattr(transfer, "commit_import", gone)
    r = analyst.post("/import/commit", data=form)
    assert r.status_code == 409
    assert "deleted or merged while importing" in r.text and "nothing was added" in r.text
    assert db.scalar(select(func.count()).select_from(Event)) == before


def test_web_import_records_the_user(analyst: Client, db: Session) -> None:
    # The events' created_by/updated_by and the audit's user_id point to the importing user.
    for allowed in (True, False):
        body = FRIENDLY.replace("Russia offers", f"Russia offers ({allowed})").replace(
            "Iran ships", f"Iran ({allowed}) ships"
        )
        r = analyst.post("/import/commit", data=commit_form(upload(analyst, body).text))
        assert r.status_code == 200, r.text
    user_id = analyst.user.id  # type: ignore[union-attr]
    events = db.scalars(
        select(Event).where(Event.title.like("%(True)%") | Event.title.like("%(False)%"))
    ).all()
    assert len(events) == 4 and {(e.created_by, e.updated_by) for e in events} == {(user_id, user_id)}
    audit = db.scalars(select(AuditEntry.user_id).where(AuditEntry.entity_id.in_([e.id for e in events])))
    assert set(audit) == {user_id}


def test_row_token_texts_are_uuid5_of_the_line() -> None:
    from app.csvio import ParsedRow

    rows = [ParsedRow(line, read_csv(ONE_ROW).rows[0].data, []) for line in (2, 3, 99, 100_001)]
    for token in (uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)):
        expected = [uuid.uuid5(token, str(r.line)) for r in rows]
        assert imports.row_token_texts(token, rows) == [str(t) for t in expected]
        assert imports.row_tokens(token, rows) == expected


def test_cli_imports_without_a_word_about_triggers(  # type: ignore[no-untyped-def]
    committed: Engine, tmp_path, capsys
) -> None:
    path = tmp_path / "batched.csv"
    path.write_text(BATCHED, encoding="utf-8")
    assert cli_main(["import", str(path)]) == 0
    err = capsys.readouterr().err
    assert "session_replication_role" not in err and "imported 5 event(s)" in err
    assert len(_stored(committed)) == 5


def test_batch_checks_keys_by_index_and_puts_the_planner_setting_back(committed: Engine) -> None:
    """write_batch turns sequential scans off for its loads only: what the session had is back after."""
    rows = read_csv(ONE_ROW).rows
    with Session(committed) as s:
        write_batch(s, build_batch(rows, prepare_batch(s, rows), None, uuid.uuid4()))
        assert s.scalar(text("SELECT current_setting('enable_seqscan')")) == "on"
        s.execute(text("SET LOCAL enable_seqscan = off"))
        write_batch(s, build_batch(rows, prepare_batch(s, rows), None, uuid.uuid4()))
        assert s.scalar(text("SELECT current_setting('enable_seqscan')")) == "off"
        s.rollback()


def test_a_batch_naming_a_missing_reference_is_refused_by_the_foreign_key(committed: Engine) -> None:
    """Past the held references, PostgreSQL's own check still refuses a row pointing at nothing."""
    rows = read_csv(ONE_ROW).rows
    with Session(committed) as s:
        payload = build_batch(rows, prepare_batch(s, rows), None, uuid.uuid4())
        countries = payload.copy_text["event_countries"].replace("\tRUS\t", "\tZZZ\t")
        assert "ZZZ" in countries
        bad = replace(payload, copy_text={**payload.copy_text, "event_countries": countries})
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="fk_event_countries_country_code"):
            write_batch(s, bad)
        s.rollback()
    assert _count(committed, Event) == 0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", "é", "“", "\\", "\n", "\r", "\t", "N", "\u2028", "😀"])))
def test_copy_field_escapes_as_copy_text_format(value: str) -> None:
    """copy_field's replace chain gives what one character-by-character mapping gives."""
    reference = value.translate(str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}))
    assert imports.copy_field(value) == reference
    assert imports.copy_field(None) == "\\N"
