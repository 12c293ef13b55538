"""The data version: a number that moves after every write that can change what a filter matches.

Caches of counts (queries/cache.py) and the in-memory facts copy (queries/facts/) are keyed by it.
It is the newest id of `data_changes`, a table of marker rows, and not the newest audit id: ids are
handed out before commit, so a transaction that commits after a later one would leave the newest audit id
unchanged and its change unseen. Here the writer adds a marker *after* its commit (and one inside its
transaction, so its own reads see a new version): the data commit precedes the marker's id, so whoever
reads an id at or past it takes a snapshot that holds the change. Marker rows (not a sequence, whose value
a standby sees only every 32 calls) replicate exactly, so a read replica's version is as exact.
Bulk loads outside the ORM (import, seed-synthetic, restore) add or rewrite the newest event, which the
version's second part (the newest event's id and row version) notices.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from app.models import Actor, Country, Event, EventActor, EventCountry, EventSystem, Source, System

DATA_MODELS = (Event, EventCountry, EventActor, EventSystem, Source, Actor, System, Country)
BUMP = text("INSERT INTO data_changes DEFAULT VALUES RETURNING id")
# Markers older than the newest KEEP are removed now and then; only the newest id matters.
KEEP = 1000
PRUNE = text("DELETE FROM data_changes WHERE id <= :below")
VERSION_SQL = text(
    "SELECT (SELECT max(id) FROM data_changes), "
    "(SELECT id::text || ':' || xmin::text FROM events ORDER BY id DESC LIMIT 1)"
)
_FLAG = "data_changed"
# The version read by this session's transaction (queries/cache.py), forgotten on every write and end.
VERSION_KEY = "data_version"


def _mark(session: Session) -> None:
    """Note the change and move the version inside the transaction, so the session's own reads see it."""
    session.info[_FLAG] = True
    session.info.pop(VERSION_KEY, None)
    session.connection().execute(BUMP)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    if any(isinstance(o, DATA_MODELS) for o in chain(session.new, session.dirty, session.deleted)):
        _mark(session)


@event.listens_for(Session, "do_orm_execute")
def _orm_execute(state: ORMExecuteState) -> None:
    # Bulk UPDATE/DELETE statements (merges move links this way) bypass the flush.
    writes = state.is_update or state.is_delete or state.is_insert
    if writes and state.bind_mapper is not None and issubclass(state.bind_mapper.class_, DATA_MODELS):
        _mark(state.session)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_FLAG, False):
        bind: Any = session.get_bind()
        engine: Engine = bind if isinstance(bind, Engine) else bind.engine
        with engine.connect() as conn:
            marker = int(conn.execute(BUMP).scalar_one())
            if marker % KEEP == 0:
                conn.execute(PRUNE, {"below": marker - KEEP})
            conn.commit()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # A new transaction (or savepoint) may see other writers' commits: read the version again.
    session.info.pop(VERSION_KEY, None)
