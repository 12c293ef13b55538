"""A filter evaluated on the copy: masks, totals, facet rows, chart rows, dyads and page ids."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, literal, select, text
from sqlalchemy.orm import Session

from app.domain.vocab import CONFIDENCES, KINDS, LIKELIHOODS, ORIGIN_STEPS, REVIEWABLE, STATUSES
from app.filters import EventFilter
from app.models import Event
from app.queries.aggregates.facts.columns import EPOCH, FILTER_ROLES, ROLES, Facts, Mask, from_bytea, pack_key
from app.queries.aggregates.facts.store import MAX_MASKS, current, holder_of
from app.queries.due import due_cutoffs
from app.queries.events import conditions

# Filter attributes the copy cannot answer: they go to PostgreSQL as one id query.
SQL_ONLY = ("q", "source", "reliability_max", "tag")


# For this transaction only (the previous values are put back right after the query).
_PARALLEL_ON = text(
    "SELECT current_setting('parallel_tuple_cost'), current_setting('parallel_setup_cost'),"
    " set_config('parallel_tuple_cost', '0', true), set_config('parallel_setup_cost', '0', true)"
)
_PARALLEL_BACK = text(
    "SELECT set_config('parallel_tuple_cost', :tuple_cost, true),"
    " set_config('parallel_setup_cost', :setup_cost, true)"
)


def selection(session: Session, f: EventFilter) -> Selection:
    """The filter evaluated on the session's current copy (the one engine for totals, facets, pages...)."""
    return Selection(session, current(session), f)


def needs_sql(f: EventFilter) -> bool:
    """True when the filter has a condition the copy does not hold (full text, publisher, ...)."""
    return any(getattr(f, a) for a in SQL_ONLY)


def sql_part(f: EventFilter) -> EventFilter:
    """The part of a filter only PostgreSQL can test."""
    return EventFilter(q=f.q, source=f.source, reliability_max=f.reliability_max, tag=f.tag)


def _mask_key(facts: Facts, f: EventFilter) -> tuple[object, ...]:
    """Cache key of a filter's SQL-only mask: the copy's version and layout (a background full read may
    replace a copy by one of the same version whose rows are in another order), and the filter part."""
    return (facts.version, facts.full_read_at, facts.size, sql_part(f))


def _lookup(size: int, picked: Iterable[int]) -> Mask:
    table = np.zeros(max(size, 1), dtype=bool)
    for i in picked:
        if 0 <= i < size:
            table[i] = True
    return table


class Selection:
    """A filter evaluated on the copy: one mask per parameter, combined on demand."""

    def __init__(self, session: Session, facts: Facts, f: EventFilter) -> None:
        self.facts = facts
        self.filter = f
        self.parts: dict[str, Mask] = {}
        n = facts.size
        if needs_sql(f):
            key = _mask_key(facts, f)
            holder = holder_of(session)
            with holder.mask_lock:
                mask = holder.masks.get(key)
                if mask is None:
                    mask = holder.masks[key] = self._sql_mask(session, sql_part(f))
                    while len(holder.masks) > MAX_MASKS:
                        holder.masks.popitem(last=False)
            self.parts["sql"] = mask
        for attr, column, vocab in self._vocab_columns():
            chosen = getattr(f, attr)
            if chosen:
                # -1 (no likelihood or confidence) would index the lookup's last entry: it matches nothing.
                self.parts[attr] = _lookup(len(vocab), [vocab.index(v) for v in chosen])[column] & (
                    column >= 0
                )
        # origins_min and origins_max are one range: their facet leaves both out.
        if f.origins_min is not None or f.origins_max is not None:
            part = facts.origins >= (f.origins_min or 0)
            if f.origins_max is not None:
                part &= facts.origins <= f.origins_max
            self.parts["origins"] = part
        if f.stage_min is not None:
            self.parts["stage_min"] = facts.stage >= f.stage_min
        if f.date_from is not None:
            self.parts["date_from"] = facts.end >= (f.date_from.start - EPOCH).days
        if f.date_to is not None:
            self.parts["date_to"] = facts.start <= (f.date_to.end - EPOCH).days
        for role in FILTER_ROLES:
            codes = getattr(f, role)
            if codes:
                self.parts[role] = facts.roles[role].events_with(n, self._country_lookup(codes))
        if f.country:
            self.parts["country"] = facts.any_country.events_with(n, self._country_lookup(f.country))
        if f.actor:
            wanted = _lookup(facts.actor_links.span(facts.actors), facts.actors.ids_for(f.actor))
            self.parts["actor"] = facts.actor_links.events_with(n, wanted)
        if f.due:
            self.parts["due"] = due_mask(facts)
        if f.system:
            # families: the ids page_filter/strict_filter resolved (app/queries/families.py), if any
            ids = facts.systems.ids_for(f.system) if f.system_family is None else f.system_family
            wanted = _lookup(facts.system_links.span(facts.systems), ids)
            self.parts["system"] = facts.system_links.events_with(n, wanted)
        self._full: Mask | None = None

    def _vocab_columns(self) -> tuple[tuple[str, npt.NDArray[np.int16], tuple[str, ...]], ...]:
        """Parameters naming words of a vocabulary, the copy's column of word indexes, the vocabulary."""
        facts = self.facts
        return (
            ("kind", facts.kind, KINDS),
            ("status", facts.status, STATUSES),
            ("likelihood", facts.likelihood, LIKELIHOODS),
            ("confidence", facts.confidence, CONFIDENCES),
        )

    def _country_lookup(self, codes: Iterable[str]) -> Mask:
        index = self.facts.country_index
        return _lookup(len(self.facts.countries), [index[c] for c in codes if c in index])

    def _sql_mask(self, session: Session, only: EventFilter) -> Mask:
        """Rows matching the conditions only PostgreSQL can test, fetched as one bytea of ids."""
        stmt = select(func.string_agg(func.int8send(Event.id), literal(b""))).where(*conditions(only))
        # A frequent word matches half the table: a seq scan that both cores can share. The planner's
        # per-row transfer cost talks it out of that, so it is lowered for this statement.
        tuple_cost, setup_cost, _, _ = session.execute(_PARALLEL_ON).one()
        try:
            ids = from_bytea(session.scalar(stmt), ">i8")
        finally:
            session.execute(_PARALLEL_BACK, {"tuple_cost": tuple_cost, "setup_cost": setup_cost})
        mask = np.zeros(self.facts.size, dtype=bool)
        mask[self.facts.rows_of(ids)] = True
        return mask

    def mask(self, without: str | None = None) -> Mask:
        """Rows the filter keeps, optionally leaving one parameter out (disjunctive facets)."""
        if without not in self.parts:
            without = None  # leaving out a parameter the filter does not use: the full mask, computed once
        if without is None and self._full is not None:
            return self._full
        out = self.facts.alive.copy()
        for name, part in self.parts.items():
            if name != without:
                out &= part
        if without is None:
            self._full = out
        return out

    def total(self) -> int:
        """How many events match."""
        return int(self.mask().sum())

    def page_ids(self, before: tuple[date, int] | None, limit: int) -> list[int]:
        """Ids of the next `limit` events in timeline order (newest first), after a keyset cursor."""
        facts, mask = self.facts, self.mask()
        ordered = mask[: facts.ordered]
        cut = None if before is None else int(pack_key((before[0] - EPOCH).days, before[1]))
        if cut is not None:
            ordered = ordered[: int(np.searchsorted(facts.keys[: facts.ordered], cut))]
        rows = np.flatnonzero(ordered)[-limit:]
        if facts.tail:
            tail = facts.ordered + np.flatnonzero(mask[facts.ordered :])
            if cut is not None:
                tail = tail[facts.keys[tail] < cut]
            rows = np.concatenate((rows, tail))
            rows = rows[np.argsort(facts.keys[rows], kind="stable")][-limit:]
        return [int(i) for i in facts.ids[rows[::-1]]]

    def review_ids(self, after: tuple[int, int] | None, limit: int) -> list[int]:
        """Ids of the next `limit` matching events by review clock, oldest first, after (clock, id)."""
        facts = self.facts
        rows = np.flatnonzero(self.mask())
        clocks, ids = facts.review_clock[rows], facts.ids[rows]
        if after is not None:
            later = (clocks > after[0]) | ((clocks == after[0]) & (ids > after[1]))
            rows, clocks, ids = rows[later], clocks[later], ids[later]
        if len(rows) > limit:
            # Only the `limit` oldest clocks (and their ties) need sorting: linear, whatever the queue's size.
            edge = clocks[np.argpartition(clocks, limit - 1)[limit - 1]]
            near = clocks <= edge
            clocks, ids = clocks[near], ids[near]
        order = np.lexsort((ids, clocks))[:limit]
        return [int(i) for i in ids[order]]

    def facet_rows(self, top_n: int) -> dict[str, list[tuple[str, int, bool]]]:
        """(value, count, ticked) per facet, in the shape the SQL statement gives, for facets.assemble."""
        facts, f = self.facts, self.filter
        raw: dict[str, list[tuple[str, int, bool]]] = {}
        for attr, column, vocab in self._vocab_columns():
            codes = column[self.mask(attr)]
            counts = np.bincount(codes[codes >= 0], minlength=len(vocab))  # -1: no likelihood/confidence
            raw[attr] = [(v, int(counts[i]), False) for i, v in enumerate(vocab) if counts[i]]
        # Events by number of origins, the last step counting that many or more (1 · 2 · 3+).
        top = ORIGIN_STEPS[-1]
        origins = np.bincount(
            np.minimum(facts.origins[self.mask("origins")], top).astype(np.int64), minlength=top + 1
        )
        raw["origins"] = [(str(n), int(c), False) for n, c in enumerate(origins) if c]
        stages = np.bincount(facts.stage[self.mask("stage_min")].astype(np.int64), minlength=7)
        raw["stage_min"] = [(str(s), int(c), False) for s, c in enumerate(stages) if c]
        for param in (*FILTER_ROLES, "country"):
            links = facts.any_country if param == "country" else facts.roles[param]
            counts = links.counts(self.mask(param), len(facts.countries))
            selected = getattr(f, param)
            names = facts.countries
            rows = [(names[i], int(counts[i]), names[i] in selected) for i in np.flatnonzero(counts)]
            raw[param] = _top(rows, top_n + len(selected))
        for param, links, named in (
            ("actor", facts.actor_links, facts.actors),
            ("system", facts.system_links, facts.systems),
        ):
            counts = links.counts(self.mask(param), links.span(named))
            ticked = set(named.ids_for(getattr(f, param)))
            rows = [(named.names[int(i)], int(counts[i]), int(i) in ticked) for i in np.flatnonzero(counts)]
            raw[param] = _top(rows, top_n + len(getattr(f, param)))
        return raw

    def chart_rows(self) -> list[tuple[date, bool, str, int]]:
        """(month, year-precision?, kind, count) as chart.chart_series groups them."""
        facts = self.facts
        mask = self.mask()
        if not mask.any():
            return []
        months = facts.month[mask].astype(np.int64)
        first = int(months.min())
        slot = (months - first) * 2 + facts.yearly[mask]
        width = len(KINDS)
        counts = np.bincount(slot * width + facts.kind[mask], minlength=(int(slot.max()) + 1) * width)
        out = []
        for cell in np.flatnonzero(counts):
            s, k = divmod(int(cell), width)
            m, yearly = divmod(s, 2)
            month = np.datetime64(first + m, "M").astype("datetime64[D]").item()
            out.append((month, bool(yearly), KINDS[k], int(counts[cell])))
        return out

    def dyad_highest(self, stage: npt.NDArray[np.int16]) -> dict[tuple[str, str], int]:
        """Supplier x recipient pairs and the highest of `stage` (one value per row) among their events."""
        names = self.facts.countries
        size = len(names)
        links = self.facts.dyads
        kept = self.mask()[links.rows]
        top = np.full(size * size, -1, dtype=np.int16)
        np.maximum.at(top, links.values[kept], stage[links.rows[kept]])
        return {(names[c // size], names[c % size]): int(top[c]) for c in np.flatnonzero(top >= 0)}

    def dyad_cells(self) -> dict[tuple[str, str], int]:
        """Supplier x recipient pairs and how many events each holds."""
        names = self.facts.countries
        size = len(names)
        counts = self.facts.dyads.counts(self.mask(), size * size)
        return {(names[c // size], names[c % size]): int(counts[c]) for c in np.flatnonzero(counts)}


def micros(at: datetime) -> int:
    """A moment as microseconds since 1970 (the copy's review clock unit)."""
    return (at - _EPOCH_UTC) // timedelta(microseconds=1)


_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)


def due_mask(facts: Facts, now: datetime | None = None) -> Mask:
    """Rows due for review at `now` (default: the clock): claimed or reported, clock run out for the kind."""
    limits = due_cutoffs(now)
    cutoff = np.array([micros(limits[k]) for k in KINDS], dtype=np.int64)
    reviewable = _lookup(len(STATUSES), [STATUSES.index(s) for s in REVIEWABLE])[facts.status]
    return reviewable & (facts.review_clock <= cutoff[facts.kind])


def _top(rows: list[tuple[str, int, bool]], limit: int) -> list[tuple[str, int, bool]]:
    """Ticked first, then by count, then by value: the SQL branch's order and cut."""
    return sorted(rows, key=lambda r: (not r[2], -r[1], r[0]))[:limit]


def reference_counts(facts: Facts) -> dict[str, npt.NDArray[np.int64]]:
    """Live events per actor id, per system id, per country index (any role) and per country and role."""
    out = {
        "actor": facts.actor_links.counts(facts.alive, facts.actor_links.span(facts.actors)),
        "system": facts.system_links.counts(facts.alive, facts.system_links.span(facts.systems)),
        "country": facts.any_country.counts(facts.alive, len(facts.countries)),
    }
    out.update({role: facts.roles[role].counts(facts.alive, len(facts.countries)) for role in ROLES})
    return out
