"""`signalboard db downgrade` on a database holding events or accounts asks first, or needs --yes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from app.cli import main as cli_main
from app.config import get_settings
from app.db import database_url, get_engine, session_factory
from tests.test_backup import cli, fingerprints, populate, scratch_database, url_of

pytestmark = pytest.mark.backup


@pytest.fixture
def populated() -> Iterator[Engine]:
    """A scratch database at head holding the demo data, a few events and an account."""
    with scratch_database("signalboard_downgrade") as eng:
        populate(eng, extra_events=2)
        yield eng


def test_downgrade_without_a_terminal_refuses_and_changes_nothing(populated: Engine) -> None:
    with populated.connect() as conn:
        before = fingerprints(conn)
    for target in ("base", ""):
        done = cli(populated, "db", "downgrade", *([target] if target else []), stdin="")
        assert done.returncode == 2, done.stderr
        assert "event(s)" in done.stderr and "--yes" in done.stderr
    assert "EVERY table" in cli(populated, "db", "downgrade", "base", stdin="").stderr
    with populated.connect() as conn:
        assert fingerprints(conn) == before


@contextmanager
def configured(engine: Engine) -> Iterator[None]:
    """The in-process CLI pointed at `engine`'s database (the app's engine caches cleared around it)."""
    settings = get_settings()
    saved = settings.database_url

    def forget() -> None:
        get_engine().dispose()
        for cached in (database_url, get_engine, session_factory):
            cached.cache_clear()

    forget()
    settings.database_url = url_of(engine)
    try:
        yield
    finally:
        forget()
        settings.database_url = saved


def test_downgrade_asks_at_a_terminal(populated: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a terminal: "n" keeps everything (exit 1), "y" downgrades."""
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []

    def answer(reply: str):  # type: ignore[no-untyped-def]
        def fake_input(question: str) -> str:
            asked.append(question)
            return reply

        return fake_input

    monkeypatch.setattr("builtins.input", answer("n"))
    with configured(populated):
        assert cli_main(["db", "downgrade", "base"]) == 1
    assert "downgrading to base drops EVERY table" in asked[0] and asked[0].endswith("[y/N] ")
    with populated.connect() as conn:
        assert "events" in inspect(conn).get_table_names()
    monkeypatch.setattr("builtins.input", answer("y"))
    with configured(populated):
        assert cli_main(["db", "downgrade", "base"]) == 0
    with populated.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}


def test_downgrade_with_yes_does_not_ask(populated: Engine) -> None:
    done = cli(populated, "db", "downgrade", "base", "--yes", stdin="")
    assert done.returncode == 0, done.stderr
    with populated.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    # An empty database has nothing to lose: no question (upgrade, then downgrade again).
    assert cli(populated, "db", "upgrade", stdin="").returncode == 0
    assert cli(populated, "db", "downgrade", "base", stdin="").returncode == 0


def test_help_mentions_the_question_and_yes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["db", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "asks first, or needs --yes" in out and "--yes" in out


def test_downgrade_asks_when_the_database_holds_accounts_but_no_events() -> None:
    # Accounts, their API tokens and the audit log are data too: `base` would drop them without a word.
    with scratch_database("signalboard_downgrade") as eng:
        assert cli(eng, "db", "upgrade", stdin="").returncode == 0
        made = cli(
            eng, "create-user", "--username", "bob", "--password-stdin", stdin="correct-horse-battery-92\n"
        )
        assert made.returncode == 0, made.stderr
        done = cli(eng, "db", "downgrade", "base", stdin="")
        assert done.returncode == 2, done.stderr
        assert "1 account(s)" in done.stderr and "--yes" in done.stderr
        with eng.connect() as conn:
            assert "users" in inspect(conn).get_table_names()
