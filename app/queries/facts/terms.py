"""Prepared search terms: which rows of the copy hold each frequent full-text lexeme, as bits per row.

Why: a word in half the events (`drones`) cannot be listed quickly through the GIN index (every heap
page is visited for the ids); PostgreSQL needed ~0.5 s per such search at a million events. The most
common lexemes of `events.search_vector`, as PostgreSQL's own statistics name them, are evaluated once per
copy in the background (one scan, a bit per lexeme per event) and kept as one uint64 word per 64 lexemes
per row. A full-text filter that PostgreSQL parses into a plain AND of prepared lexemes is then a few
bitwise operations on the copy.

Exactness: bits are read in a snapshot, then brought to the copy's data version by re-reading the events
changed since (the audit window and new ids, as a patch does); patches of the copy read the bits of the
rows they append in their own snapshot. A full read of the copy drops them (SQL serves until the next ones
are ready). A filter is answered from bits only when its parse is a pure AND of prepared lexemes, which is
exactly `search_vector @@ query`.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

from app.queries.cache import VERSION_SQL
from app.queries.search_document import audited_writes_sql

if TYPE_CHECKING:
    from app.queries.facts.columns import Facts

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Bits = npt.NDArray[np.uint64]

# Lexemes in at least this share of events are prepared. Measured at a million events (facets + chart,
# first request, 2 cores): through SQL a word in 2.7 % of events took ~175-220 ms, 3.6-4.8 % ~200-250 ms,
# 5-9 % 340-470 ms (the GIN index lists the matches, but their heap pages must be visited for the ids).
MIN_FREQUENCY = 0.03
# At most this many: each costs ~90 ns per event to evaluate (~6 s per 64 at a million events, in the
# background) and one bit per event to hold (16 MB for 128 at a million events).
MAX_TERMS = 128
# More events changed while the bits were read than this: read them again instead of patching.
MAX_CATCH_UP = 20_000

_STATS_SQL = text(
    "SELECT u.e FROM pg_stats s,"
    " unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS u(e, f)"
    " WHERE s.schemaname = current_schema() AND s.tablename = 'events' AND s.attname = 'search_vector'"
    " AND u.e IS NOT NULL AND u.f >= :least ORDER BY u.f DESC, u.e LIMIT :cap"
)
# A lexeme as tsquery text: quoted; lexemes with a quote or a backslash (escaped in that text) are left
# to SQL, so the text of a prepared lexeme is always just the lexeme in quotes.
_PLAIN = re.compile(r"[^'\\]+")
_PURE_AND = re.compile(r"'[^'\\]+'(?: & '[^'\\]+')*")
_PARSE_SQL = text("SELECT websearch_to_tsquery('english', :q)::text")
_AUDITED_SQL = text(
    "SELECT coalesce(array_agg(DISTINCT id), '{}'), coalesce(array_agg(DISTINCT event_id), '{}') FROM ("
    + audited_writes_sql("at >= :since - interval '15 minutes'")
    + ") w"
)


def tsquery_text(lexeme: str) -> str:
    """The tsquery text that matches exactly this lexeme (any weight, no prefix)."""
    return f"'{lexeme}'"


def frequent_lexemes(conn: Connection) -> tuple[str, ...]:
    """The lexemes worth preparing, most frequent first, from PostgreSQL's statistics (none without)."""
    found = conn.scalars(_STATS_SQL, {"least": MIN_FREQUENCY, "cap": MAX_TERMS})
    return tuple(e for e in found if _PLAIN.fullmatch(e))


@dataclass(frozen=True)
class Terms:
    """Per row of one copy, bit i % 64 of word i // 64 is set when its event holds lexeme i."""

    lexemes: tuple[str, ...]
    bits: Bits  # shape (rows, words)
    built_seconds: float = 0.0
    where: dict[str, int] = field(init=False, repr=False, compare=False)  # lexeme -> bit number

    def __post_init__(self) -> None:
        object.__setattr__(self, "where", {lx: i for i, lx in enumerate(self.lexemes)})

    def mask(self, lexemes: Iterable[str]) -> Mask:
        """Rows whose event holds every given lexeme (all must be prepared)."""
        wanted: dict[int, int] = {}
        for lx in lexemes:
            i = self.where[lx]
            wanted[i // 64] = wanted.get(i // 64, 0) | (1 << (i % 64))
        out = np.ones(len(self.bits), dtype=bool)
        for word, bits in wanted.items():
            want = np.uint64(bits)
            out &= (self.bits[:, word] & want) == want
        return out

    def plus(self, more: Bits) -> Terms:
        """These bits and those of rows appended after them."""
        return Terms(self.lexemes, np.concatenate((self.bits, more)), self.built_seconds)


def _words(count: int) -> int:
    return (count + 63) // 64


def _bits_sql(lexemes: Sequence[str], only: bool) -> tuple[str, dict[str, Any]]:
    """One statement giving, per live event, its id and its words of lexeme bits as 8-byte records."""
    params: dict[str, Any] = {f"l{i}": tsquery_text(lx) for i, lx in enumerate(lexemes)}
    words = []
    for w in range(_words(len(lexemes))):
        flags = [
            f"((search_vector @@ CAST(:l{i} AS tsquery))::int::int8 << {i % 64})"
            for i in range(w * 64, min(len(lexemes), w * 64 + 64))
        ]
        words.append(f"int8send({' | '.join(flags)})")
    record = " || ".join(["int8send(id)", *words])
    sql = f"SELECT string_agg({record}, ''::bytea) FROM events WHERE deleted_at IS NULL"
    if only:
        sql += " AND id = ANY(:only)"
    return sql, params


def read_bits(conn: Connection, lexemes: Sequence[str], only: Sequence[int] | None) -> tuple[Ints, Bits]:
    """Ids (sorted) and lexeme words of the live events (all, or those with the given ids)."""
    width = 1 + _words(len(lexemes))
    if only is not None and not len(only):
        return np.zeros(0, dtype=np.int64), np.zeros((0, width - 1), dtype=np.uint64)
    sql, params = _bits_sql(lexemes, only is not None)
    if only is not None:
        params["only"] = [int(i) for i in only]
    raw = conn.execute(text(sql), params).scalar()
    # One bytea of fixed-size records: id and words stay paired whatever order or plan produced them.
    records = np.frombuffer(raw or b"", dtype=">i8").astype(np.int64).reshape(-1, width)
    order = np.argsort(records[:, 0], kind="stable")
    return records[order, 0], np.ascontiguousarray(records[order, 1:]).view(np.uint64)


def align(facts_ids: Ints, rows: npt.NDArray[np.int64], ids: Ints, bits: Bits) -> Bits | None:
    """Bits of the given rows (by their event ids) from bits by sorted id; None if an id is missing."""
    out = np.zeros((len(facts_ids), bits.shape[1]), dtype=np.uint64)
    if not len(rows):
        return out
    wanted = facts_ids[rows]
    if not len(ids):
        return None
    pos = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    if not bool((ids[pos] == wanted).all()):
        return None
    out[rows] = bits[pos]
    return out


@dataclass(frozen=True)
class Snapshot:
    """Bits of every live event read in one snapshot, and what is needed to bring them up to date."""

    lexemes: tuple[str, ...]
    version: tuple[Any, ...]
    read_at: datetime
    max_id: int
    applied: list[int]  # audit ids of the window already reflected
    ids: Ints
    bits: Bits
    seconds: float


def read_snapshot(conn: Connection, lexemes: Sequence[str]) -> Snapshot:
    """Read the bits of every live event in the connection's transaction (a repeatable-read one)."""
    began = time.perf_counter()
    version = tuple(conn.execute(VERSION_SQL).one())
    read_at, max_id = conn.execute(text("SELECT now(), coalesce(max(id), 0) FROM events")).one()
    applied, _ = conn.execute(_AUDITED_SQL, {"since": read_at}).one()
    # Nothing prepared (no statistics yet): no scan, and every row's (empty) bits are known.
    ids, bits = read_bits(conn, lexemes, None if lexemes else [])
    return Snapshot(
        tuple(lexemes), version, read_at, int(max_id), list(applied), ids, bits, time.perf_counter() - began
    )


def attach_on(conn: Connection, facts: Facts, snap: Snapshot) -> Terms | None:
    """Terms aligned to `facts`, whose version must be the transaction's, or None when that cannot be exact.

    The events changed between the snapshot and now are re-read here; every live row of the copy then
    takes the bits of its event as it is now, which is as the copy read it (same data version).
    """
    began = time.perf_counter()
    if tuple(conn.execute(VERSION_SQL).one()) != facts.version:
        return None
    if not snap.lexemes:
        return Terms((), np.zeros((facts.size, 0), dtype=np.uint64), snap.seconds)
    audit_ids, audited = conn.execute(_AUDITED_SQL, {"since": snap.read_at}).one()
    if sorted(set(audit_ids) - set(snap.applied)) or snap.version != facts.version:
        # Something was written since the snapshot: re-read every event audited in the window (a few
        # too many is harmless) and the new ones.
        added = conn.scalars(
            text("SELECT id FROM events WHERE id > :max_id ORDER BY id LIMIT :cap"),
            {"max_id": snap.max_id, "cap": MAX_CATCH_UP + 1},
        ).all()
        changed = sorted({int(i) for i in audited} | {int(i) for i in added})
        if len(changed) > MAX_CATCH_UP:
            return None
        keep = ~np.isin(snap.ids, np.asarray(changed, dtype=np.int64))
        new_ids, new_bits = read_bits(conn, snap.lexemes, changed)
        ids = np.concatenate((snap.ids[keep], new_ids))
        order = np.argsort(ids, kind="stable")
        ids, bits = ids[order], np.concatenate((snap.bits[keep], new_bits))[order]
    else:
        ids, bits = snap.ids, snap.bits
    aligned = align(facts.ids, np.flatnonzero(facts.alive), ids, bits)
    if aligned is None:  # a live row whose event is not live now: the copy is not what it claims
        return None
    return Terms(snap.lexemes, aligned, snap.seconds + time.perf_counter() - began)


def prepare_on(conn: Connection, facts: Facts, lexemes: Sequence[str] | None = None) -> Terms | None:
    """Terms for `facts` read in the connection's transaction (tests; lexemes default to the statistics)."""
    chosen = frequent_lexemes(conn) if lexemes is None else tuple(lexemes)
    return attach_on(conn, facts, read_snapshot(conn, chosen))


def extend_on(conn: Connection, terms: Terms, facts_ids: Ints, start: int) -> Terms | None:
    """`terms` plus the bits of rows appended from `start` (read in the patch's own snapshot)."""
    appended = facts_ids[start:]
    if not terms.lexemes:
        return terms.plus(np.zeros((len(appended), 0), dtype=np.uint64))
    ids, bits = read_bits(conn, terms.lexemes, [int(i) for i in appended])
    more = align(appended, np.arange(len(appended), dtype=np.int64), ids, bits)
    return None if more is None else terms.plus(more)


# PostgreSQL's parse of a query text, per text: the lexemes of a pure AND, or None for anything else.
_parsed: OrderedDict[str, tuple[str, ...] | None] = OrderedDict()
_parsed_lock = threading.Lock()
MAX_PARSED = 1024


def and_of_lexemes(conn: Connection, q: str) -> tuple[str, ...] | None:
    """The lexemes when `websearch_to_tsquery('english', q)` is a plain AND of them, else None."""
    with _parsed_lock:
        if q in _parsed:
            return _parsed[q]
    parsed = conn.scalar(_PARSE_SQL, {"q": q}) or ""
    lexemes = tuple(re.findall(r"'([^'\\]+)'", parsed)) if _PURE_AND.fullmatch(parsed) else None
    with _parsed_lock:
        _parsed[q] = lexemes
        while len(_parsed) > MAX_PARSED:
            _parsed.popitem(last=False)
    return lexemes
