"""Where the copies live: one per database (or test connection), its version, locks and refreshes."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from app.queries.aggregates.cache import data_version
from app.queries.aggregates.facts.columns import Facts, Mask, build, refresh_on

log = logging.getLogger(__name__)


@dataclass
class _Holder:
    """The current copy per database engine, the lock that makes one build at a time, and SQL masks."""

    facts: Facts | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Rows matching the SQL-only conditions (full text, tags, ...) per copy version and filter part:
    # paging through one filter, and the lazy parts when they are asked for, reuse its one id query.
    masks: OrderedDict[tuple[Any, ...], Mask] = field(default_factory=OrderedDict)
    # Held while a mask is computed: concurrent requests for it wait instead of repeating the search.
    mask_lock: threading.Lock = field(default_factory=threading.Lock)
    refresher: threading.Thread | None = None  # a background full read in progress


# Writes made outside Signalboard (SQL by hand) may not move the data version; a copy older than this is
# read again in the background (the current one serves meanwhile), which bounds how long they go unseen.
MAX_AGE_SECONDS = 600.0


MAX_MASKS = 32

_holders: dict[str, _Holder] = {}
_holders_lock = threading.Lock()


# Sessions bound to one connection (tests: each test's transaction is rolled back) get a copy of their
# own, which goes with the connection: a copy patched from uncommitted rows must not outlive them.
_by_connection: weakref.WeakKeyDictionary[Connection, _Holder] = weakref.WeakKeyDictionary()


def _holder(bind: Engine | Connection) -> _Holder:
    with _holders_lock:
        if isinstance(bind, Connection):
            return _by_connection.setdefault(bind, _Holder())
        return _holders.setdefault(bind.url.render_as_string(hide_password=True), _Holder())


def current(session: Session) -> Facts:
    """The copy for the session's current data version, patched or read if needed (one build at a time).

    The app reads it before it says ready (warm_up, /healthz), so after start a request waits at most for
    a patch of the events written since the copy's version (milliseconds), never for a full read.
    """
    bind = session.get_bind()
    version = data_version(session)
    holder = _holder(bind)
    facts = holder.facts
    if facts is not None and facts.version == version:
        if isinstance(bind, Engine) and time.monotonic() - facts.full_read_at > MAX_AGE_SECONDS:
            _refresh_in_background(bind, holder)
        return facts
    with holder.lock:
        facts = holder.facts
        if facts is None or facts.version != version:
            # A session bound to a connection (tests) reads through it, to see its own transaction.
            old = holder.facts
            facts = build(bind, old) if isinstance(bind, Engine) else refresh_on(session.connection(), old)
            holder.facts = facts
            with holder.mask_lock:  # masks of older versions are dead weight
                holder.masks.clear()
            if not facts.tail:
                _trim()
            log.info(
                "facts copy: %d rows (%d patched) in %.3f s", facts.size, facts.tail, facts.built_seconds
            )
    # A copy built after yet another write carries a newer label; it still covers this request.
    return facts


def _refresh_in_background(engine: Engine, holder: _Holder) -> None:
    """Start one full read of the copy in a thread; it replaces the copy when done."""
    with _holders_lock:
        if holder.refresher is not None and holder.refresher.is_alive():
            return

        def run() -> None:
            try:
                with holder.lock:
                    holder.facts = build(engine)
                    with holder.mask_lock:
                        holder.masks.clear()
                _trim()
            except Exception:  # the next request tries again; the current copy keeps serving
                log.exception("facts copy: background read failed")

        holder.refresher = threading.Thread(target=run, name="facts-refresh", daemon=True)
        holder.refresher.start()


def _trim() -> None:
    """Give a full read's scratch memory back to the system (glibc keeps ~150 MB of it otherwise)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to give back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


WARM_UP_RETRY_SECONDS = 2.0
_warmer: threading.Thread | None = None


def warm_up(*engines: Engine) -> None:
    """Read the copy of each engine, retrying until it is read (the app is not ready before)."""
    for engine in engines:
        while True:
            try:
                with Session(engine) as session:
                    current(session)
                break
            except Exception:  # the database may still be starting: /healthz says 503 meanwhile
                log.exception("facts copy: warm-up failed; retrying")
                time.sleep(WARM_UP_RETRY_SECONDS)


def start_warm_up(*engines: Engine, then: Sequence[threading.Thread] = ()) -> None:
    """Read the copies in a thread at start; /healthz answers 503 until it is done (see warming()).

    The threads `then` are started once the copies are read: start-up work that does not hold back
    readiness waits for the read that does, instead of taking its CPU (two workers on two cores).
    """
    global _warmer

    def run() -> None:
        try:
            warm_up(*engines)
        finally:
            for thread in then:
                thread.start()

    _warmer = threading.Thread(target=run, name="facts-warm-up", daemon=True)
    _warmer.start()


def warming() -> bool:
    """True while the start-up read of the copy runs: the process is not ready for traffic."""
    return _warmer is not None and _warmer.is_alive()


def state(engine: Engine) -> str:
    """'building' (nothing read yet) or 'ready' (a copy is held; it may be a patch behind)."""
    return "ready" if _holder(engine).facts is not None else "building"


def ready(session: Session) -> bool:
    """True when the session's database has a copy read (answers then take milliseconds, at most a patch)."""
    return holder_of(session).facts is not None


def forget() -> None:
    """Drop every copy (tests)."""
    with _holders_lock:
        _holders.clear()
        _by_connection.clear()


def holder_of(session: Session) -> _Holder:
    """The holder of the session's database (or of its connection, for a connection-bound session)."""
    bind = session.get_bind()
    assert isinstance(bind, (Engine, Connection))
    return _holder(bind)
