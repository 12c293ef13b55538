"""Dyads: the supplier x recipient matrix of counts for a filter, and one dyad's support ladder."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from sqlalchemy import Date, DateTime, cast, func, select
from sqlalchemy.orm import Session

from app.dates import format_human
from app.filters import EventFilter
from app.models import Event
from app.queries import facts
from app.queries.events import conditions

# The matrix shows the busiest suppliers and recipients; a filter narrows it to the rest.
MATRIX_SIZE = 15
# Statuses that do not move a dyad up the ladder unless the filter asks for them by name.
NOT_REACHED = ("denied", "retracted")


@dataclass
class Matrix:
    """Counts of events per (supplier, recipient), with row and column orders by total."""

    suppliers: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], int] = field(default_factory=dict)
    supplier_totals: dict[str, int] = field(default_factory=dict)
    recipient_totals: dict[str, int] = field(default_factory=dict)
    truncated: bool = False

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
    return m


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
    from app.vocab import STATUSES

    return replace(f, status=tuple(s for s in STATUSES if s not in NOT_REACHED)), NOT_REACHED


def support_ladder(session: Session, f: EventFilter) -> Ladder:
    """The ladder of the filter's single supplier -> recipient pair: two queries whatever the event count.

    Steps come from a window over the dyad's events in date order: an event is a step when its stage
    is above every earlier one. Months come from one grouped query; the running maximum is added here.
    """
    g, excluded = ladder_filter(f)
    ladder = Ladder(f.supplier[0], f.recipient[0], excluded_statuses=excluded)
    before = (
        func.max(Event.stage).over(order_by=(Event.date_start, Event.id), rows=(None, -1)).label("before")
    )
    ordered = (
        select(
            Event.id,
            Event.title,
            Event.date_start,
            Event.date_precision,
            Event.kind,
            Event.status,
            Event.stage,
            before,
        )
        .where(*conditions(g))
        .subquery()
    )
    steps = (
        select(ordered)
        .where((ordered.c.before.is_(None)) | (ordered.c.stage > ordered.c.before))
        .order_by(ordered.c.date_start, ordered.c.id)
    )
    ladder.steps = [
        LadderEvent(r.id, r.title, r.date_start, r.date_precision, r.kind, r.status, r.stage)
        for r in session.execute(steps)
    ]
    month = cast(func.date_trunc("month", cast(Event.date_start, DateTime)), Date).label("month")
    monthly = (
        select(month, func.count(), func.max(Event.stage), func.bool_and(Event.date_precision == "year"))
        .where(*conditions(g))
        .group_by(month)
        .order_by(month)
    )
    reached = -1
    for m, count, highest, year_only in session.execute(monthly):
        reached = max(reached, int(highest))
        ladder.months.append(Month(m, int(count), int(highest), reached, bool(year_only)))
    return ladder
