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
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from app.queries.cache import VERSION_SQL, data_version
from app.queries.facts import terms
from app.queries.facts.columns import Facts, Mask, build, patch_on, refresh_on

log = logging.getLogger(__name__)


@dataclass
class _Holder:
    """The current copy per database engine, the lock that makes one build at a time, and SQL masks."""

    facts: Facts | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Rows matching the SQL-only conditions (full text, ...) per copy version and filter part: the
    # total, facets and chart of one view arrive as three requests that would each run the same search.
    masks: OrderedDict[tuple[Any, ...], Mask] = field(default_factory=OrderedDict)
    # Held while a mask is computed: concurrent requests for it wait instead of repeating the search.
    mask_lock: threading.Lock = field(default_factory=threading.Lock)
    refresher: threading.Thread | None = None  # a background full read in progress
    preparer: threading.Thread | None = None  # a background read of the prepared search terms
    prepare_after: float = 0.0  # time.monotonic() before which no new one starts (after a failure)


# Writes made outside Signalboard (SQL by hand) may not move the data version; a copy older than this is
# read again in the background (the current one serves meanwhile), which bounds how long they go unseen.
MAX_AGE_SECONDS = 600.0


MAX_MASKS = 32

# Prepare search terms in the background after each full read (off in tests, which prepare them where they
# need them: a thread per copy would race their truncations and their checks of which copy is current).
AUTO_PREPARE = True
# Attempts per background preparation, the pause between them, and how long after the last one failed a
# request may start another.
PREPARE_ATTEMPTS = 3
PREPARE_PAUSE_SECONDS = 5.0
PREPARE_RETRY_SECONDS = 30.0


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


def current(session: Session, wait: bool = True) -> Facts | None:
    """The copy for the session's current data version, built if needed (one build at a time).

    With `wait=False` it never builds or waits: a copy that is missing or behind gives None, and the
    caller uses SQL (the timeline page must not stall on a rebuild; its lazy aggregates do the build).
    """
    bind = session.get_bind()
    version = data_version(session)
    holder = _holder(bind)
    facts = holder.facts
    if facts is not None and facts.version == version:
        if isinstance(bind, Engine):
            if time.monotonic() - facts.full_read_at > MAX_AGE_SECONDS:
                _refresh_in_background(bind, holder)
            elif facts.terms is None:
                _prepare_in_background(bind, holder)
        return facts
    if not wait:
        return None
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
    if isinstance(bind, Engine) and facts.terms is None:
        _prepare_in_background(bind, holder)
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
                return
            _prepare_in_background(engine, holder)

        holder.refresher = threading.Thread(target=run, name="facts-refresh", daemon=True)
        holder.refresher.start()


def _auto_prepare() -> bool:
    from app.config import get_settings

    return AUTO_PREPARE and get_settings().environment != "test"


def _prepare_in_background(engine: Engine, holder: _Holder) -> None:
    """Start one read of the prepared search terms in a thread (none when one runs or failed lately)."""
    if not _auto_prepare():
        return
    with _holders_lock:
        if holder.preparer is not None and holder.preparer.is_alive():
            return
        if time.monotonic() < holder.prepare_after:
            return

        def run() -> None:
            # A write racing the catch-up makes an attempt give up (never guess): try again a little later,
            # then leave it to the requests (each asks again once PREPARE_RETRY_SECONDS have passed).
            for attempt in range(PREPARE_ATTEMPTS):
                if attempt:
                    time.sleep(PREPARE_PAUSE_SECONDS)
                try:
                    if prepare_terms(engine):
                        return
                except Exception:  # full text goes to SQL meanwhile
                    log.exception("facts copy: preparing search terms failed")
            holder.prepare_after = time.monotonic() + PREPARE_RETRY_SECONDS

        holder.prepare_after = 0.0
        holder.preparer = threading.Thread(target=run, name="facts-terms", daemon=True)
        holder.preparer.start()


def prepare_terms(engine: Engine, lexemes: Sequence[str] | None = None) -> bool:
    """Read the prepared search terms and attach them to the current copy; False when it was not exact.

    The long scan runs without the holder's lock (requests go on); the short catch-up to the copy's data
    version runs under it, patching the copy first if it is behind, as a request would.
    """
    holder = _holder(engine)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # Serial: one core stays free for requests on a two-core machine.
            conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            chosen = terms.frequent_lexemes(conn) if lexemes is None else tuple(lexemes)
            snap = terms.read_snapshot(conn, chosen)
        # Close this connection rather than pool it: libpq keeps its input buffer as large as the
        # largest row it received (the scan's one bytea, hex-encoded: ~50 MB at a million events).
        conn.invalidate()
    with holder.lock:
        facts = holder.facts
        if facts is None:
            return False
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))  # as build() reads
                patched = None
                if tuple(conn.execute(VERSION_SQL).one()) != facts.version:
                    patched = patch_on(conn, replace(facts, terms=None))
                    if patched is None:  # a full read is due; the request that does it starts us again
                        return False
                    facts = patched
                prepared = terms.attach_on(conn, facts, snap)
        if prepared is None:
            return False
        holder.facts = replace(facts, terms=prepared)
        if patched is not None:
            with holder.mask_lock:  # masks of older versions are dead weight
                holder.masks.clear()
    _trim()  # the scan's records (16 bytes per event) are scratch
    log.info(
        "facts copy: %d search terms prepared in %.3f s (%d bytes)",
        len(prepared.lexemes),
        prepared.built_seconds,
        prepared.bits.nbytes,
    )
    return True


def _trim() -> None:
    """Give a full read's scratch memory back to the system (glibc keeps ~150 MB of it otherwise)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to give back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def warm_up(engine: Engine) -> None:
    """Build the copy ahead of the first request (run in a background thread at start)."""
    from app.config import get_settings

    if not get_settings().facts_copy:
        return
    try:
        with Session(engine) as session:
            current(session)
    except Exception:  # the first request will try again; a failed warm-up must not stop the app
        log.exception("facts copy: warm-up failed")


def for_session(session: Session, wait: bool = True) -> Facts | None:
    """The copy when it is switched on (settings.facts_copy), else None: the caller runs SQL."""
    from app.config import get_settings

    if not get_settings().facts_copy:
        return None
    return current(session, wait=wait)


def state(engine: Engine) -> str:
    """'off', 'building' (nothing read yet) or 'ready' (a copy is held; it may be a patch behind)."""
    from app.config import get_settings

    if not get_settings().facts_copy:
        return "off"
    return "ready" if _holder(engine).facts is not None else "building"


def terms_state(engine: Engine) -> str:
    """'off', 'building', 'ready' (possibly with nothing prepared) or 'waiting' (the last attempt gave up)."""
    # While 'building' or 'waiting', SQL answers full text; after 'waiting' the next request tries again.
    from app.config import get_settings

    if not get_settings().facts_copy:
        return "off"
    holder = _holder(engine)
    facts = holder.facts
    if facts is None:
        return "building"
    if facts.terms is not None:
        return "ready"
    if not _auto_prepare():
        return "off"
    failed = holder.prepare_after > 0.0 and not (holder.preparer is not None and holder.preparer.is_alive())
    return "waiting" if failed else "building"


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
