"""Dyads: the supplier x recipient matrix of counts for a filter, and one dyad's support ladder."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from app.domain.dates import format_human
from app.domain.vocab import KINDS
from app.filters import EventFilter
from app.models import Event
from app.queries.aggregates import facts

# The matrix shows the busiest suppliers and recipients; a filter narrows it to the rest.
MATRIX_SIZE = 15
# Statuses that do not move a dyad up the ladder unless the filter asks for them by name.
NOT_REACHED = ("denied", "retracted")
# DESIGN.md: a denial never raises a ladder, even one an analyst moved off stage 0 by override; the
# ladder reads this instead of Event.stage (denials still count as events of their month).
LADDER_STAGE = case((Event.kind == "denial", 0), else_=Event.stage)


@dataclass
class Matrix:
    """Counts of events per (supplier, recipient), with row and column orders by total."""

    suppliers: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], int] = field(default_factory=dict)
    supplier_totals: dict[str, int] = field(default_factory=dict)
    recipient_totals: dict[str, int] = field(default_factory=dict)
    truncated: bool = False
    # The highest stage each pair reached, by the ladder's rules (a pair of denials only: absent).
    stages: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def max_count(self) -> int:
        """The largest cell (for shading)."""
        return max(self.cells.values(), default=0)


def dyad_matrix(session: Session, f: EventFilter, size: int = MATRIX_SIZE) -> Matrix:
    """Every supplier x recipient pair of the filter's events and its count (from the in-memory copy)."""
    cells = facts.selection(session, f).dyad_cells()
    m = Matrix(cells=cells)
    for (s, r), c in cells.items():
        m.supplier_totals[s] = m.supplier_totals.get(s, 0) + c
        m.recipient_totals[r] = m.recipient_totals.get(r, 0) + c
    m.suppliers = sorted(m.supplier_totals, key=lambda c: (-m.supplier_totals[c], c))
    m.recipients = sorted(m.recipient_totals, key=lambda c: (-m.recipient_totals[c], c))
    m.truncated = len(m.suppliers) > size or len(m.recipients) > size
    m.suppliers, m.recipients = m.suppliers[:size], m.recipients[:size]
    m.stages = pair_stages(session, f)
    return m


def pair_stages(session: Session, f: EventFilter) -> dict[tuple[str, str], int]:
    """The highest stage each supplier -> recipient pair of the filter reached: the top of its ladder."""
    picked = facts.selection(session, ladder_filter(f)[0])
    return picked.dyad_highest(ladder_stages(picked.facts))


def ladder_stages(copy: facts.Facts, rows: npt.NDArray[Any] | slice = slice(None)) -> npt.NDArray[np.int16]:
    """LADDER_STAGE on the copy's columns (of `rows`): a denial stays at 0 whatever its stored stage."""
    return np.where(copy.kind[rows] == KINDS.index("denial"), 0, copy.stage[rows]).astype(np.int16)


@dataclass(frozen=True)
class LadderEvent:
    """An event behind a step of the ladder."""

    id: int
    title: str
    date_start: date
    date_precision: str
    kind: str
    status: str
    stage: int
    # No event of the dyad with two or more independent origins reached this stage (or a higher one):
    # the step rests on single-origin evidence only.
    single_origin: bool = False


# An event with at least this many independent origins corroborates the stage it reached.
CORROBORATED = 2


def mark_single_origin(ladder: Ladder, corroborated: int | None) -> None:
    """Mark the steps above `corroborated`, the highest stage an event of CORROBORATED origins reached."""
    top = -1 if corroborated is None else int(corroborated)
    ladder.steps = [replace(step, single_origin=step.stage > top) for step in ladder.steps]


@dataclass
class Month:
    """One month of a dyad: its events, the highest stage that month and the highest reached so far."""

    month: date
    events: int
    highest: int
    reached: int
    year_only: bool = False

    @property
    def label(self) -> str:
        """'Oct 2025', or '2018' when every event of the bucket is known only to its year."""
        return format_human(self.month, "year" if self.year_only else "month")


@dataclass
class Ladder:
    """A dyad's climb: the events that first reached each new stage, and the month-by-month line."""

    supplier: str
    recipient: str
    steps: list[LadderEvent] = field(default_factory=list)
    months: list[Month] = field(default_factory=list)
    excluded_statuses: tuple[str, ...] = ()

    @property
    def top(self) -> int | None:
        """The highest stage reached, None with no events."""
        return self.steps[-1].stage if self.steps else None


def ladder_filter(f: EventFilter) -> tuple[EventFilter, tuple[str, ...]]:
    """The filter a ladder uses: denied and retracted signals reach nothing unless asked for by status."""
    if f.status:
        return f, ()
    from app.domain.vocab import STATUSES

    return replace(f, status=tuple(s for s in STATUSES if s not in NOT_REACHED)), NOT_REACHED


def support_ladder(session: Session, f: EventFilter) -> Ladder:
    """The ladder of the filter's single supplier -> recipient pair, climbed on the facts copy."""
    g, excluded = ladder_filter(f)
    ladder = Ladder(f.supplier[0], f.recipient[0], excluded_statuses=excluded)
    _climb_on_copy(session, facts.current(session), g, ladder)
    return ladder


def add_months(ladder: Ladder, rows: Iterable[tuple[date, int, int, bool]]) -> None:
    """Append (month, events, highest stage, year-only?) rows in month order, with the running maximum."""
    reached = -1
    for m, count, highest, year_only in rows:
        reached = max(reached, int(highest))
        ladder.months.append(Month(m, int(count), int(highest), reached, bool(year_only)))


def _climb_on_copy(session: Session, copy: facts.Facts, g: EventFilter, ladder: Ladder) -> None:
    """Steps and months from the in-memory copy; only the steps' titles are read from PostgreSQL.

    A big dyad holds tens of thousands of events at a million: PostgreSQL fetched and sorted every one
    of them from the heap for the window, on every request, where the copy's columns take milliseconds.
    """
    rows = _pair_rows(session, copy, g)
    if not len(rows):
        return
    rows = rows[np.argsort(copy.keys[rows], kind="stable")]  # (date_start, id): the SQL window's order
    stage = ladder_stages(copy, rows).astype(np.int64)
    higher = np.ones(len(rows), dtype=bool)
    higher[1:] = stage[1:] > np.maximum.accumulate(stage)[:-1]
    step_ids = [int(i) for i in copy.ids[rows[higher]]]
    found = {
        r.id: r
        for r in session.execute(
            select(*STEP_COLUMNS).where(Event.id.in_(step_ids), Event.deleted_at.is_(None))
        )
    }
    ladder.steps = [ladder_step(found[i]) for i in step_ids if i in found]
    corroborated = stage[copy.origins[rows] >= CORROBORATED]
    mark_single_origin(ladder, int(corroborated.max()) if len(corroborated) else None)
    months = copy.month[rows]  # non-decreasing, as the rows are in date order
    first = np.flatnonzero(np.diff(months, prepend=months[0] - 1))
    counts = np.diff(np.append(first, len(rows)))
    highest = np.maximum.reduceat(stage, first)
    year_only = np.logical_and.reduceat(copy.yearly[rows], first)
    add_months(
        ladder,
        (
            (np.datetime64(int(months[i]), "M").astype("datetime64[D]").item(), n, h, y)
            for i, n, h, y in zip(first, counts, highest, year_only, strict=True)
        ),
    )


def _pair_rows(session: Session, copy: facts.Facts, g: EventFilter) -> npt.NDArray[np.int64]:
    """Rows of the copy in the ladder: the pair's rows (one pass over the pair links) the rest keeps.

    The pair's links pick its rows directly, where a Selection would build the supplier and the recipient
    masks over every country link and combine them, the largest part of the ladder's time.
    """
    index, width = copy.country_index, len(copy.countries)
    supplier, recipient = g.supplier[0], g.recipient[0]
    if supplier not in index or recipient not in index:
        return np.zeros(0, dtype=np.int64)
    pair = index[supplier] * width + index[recipient]
    rows = copy.dyads.rows[copy.dyads.values == pair].astype(np.int64)  # distinct: one link per pair
    rest = facts.Selection(session, copy, g.without("supplier").without("recipient")).mask()
    return rows[rest[rows]]


STEP_COLUMNS = (
    Event.id,
    Event.title,
    Event.date_start,
    Event.date_precision,
    Event.kind,
    Event.status,
    LADDER_STAGE.label("stage"),
)


def ladder_step(r: Any) -> LadderEvent:
    """A ladder step from a row of STEP_COLUMNS."""
    return LadderEvent(r.id, r.title, r.date_start, r.date_precision, r.kind, r.status, r.stage)
