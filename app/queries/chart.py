"""The timeline chart: events over time by kind for a filter, as series ready for Chart.js."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from app.dates import format_human, format_iso
from app.filters import EventFilter
from app.queries import facts
from app.vocab import KINDS

# Beyond this many months a monthly chart becomes a comb; it switches to years.
MAX_MONTHS = 120


@dataclass
class ChartData:
    """Buckets (months or years), one count series per kind, and a note on what the chart leaves out."""

    granularity: str = "month"
    buckets: list[date] = field(default_factory=list)
    series: dict[str, list[int]] = field(default_factory=dict)
    note: str = ""

    @property
    def labels(self) -> list[str]:
        """Human labels of the buckets ('Oct 2025' or '2025')."""
        return [format_human(b, self.granularity) for b in self.buckets]

    @property
    def total(self) -> int:
        """Events drawn."""
        return sum(sum(v) for v in self.series.values())

    def rows(self) -> list[tuple[str, list[int], int]]:
        """Per bucket, newest first like the timeline: label, count per kind (`series` order), total."""
        kinds = list(self.series)
        rows = [
            (label, [self.series[k][i] for k in kinds], sum(self.series[k][i] for k in kinds))
            for i, label in enumerate(self.labels)
        ]
        return rows[::-1]

    def as_json(self) -> dict[str, Any]:
        """What static/js/timeline.js draws."""
        return {
            "granularity": self.granularity,
            # ISO buckets (2025-10, 2025): the script words them, so the page text stays in timeline order.
            "buckets": [format_iso(b, self.granularity) for b in self.buckets],
            "series": [{"kind": k, "data": v} for k, v in self.series.items()],
            "note": self.note,
        }


def _months(first: date, last: date) -> list[date]:
    out, d = [], first
    while d <= last:
        out.append(d)
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return out


def chart_series(session: Session, f: EventFilter) -> ChartData:
    """Counts by month (or by year over long spans) and kind, from the in-memory copy.

    An event counts in the month it starts. Events known only to the year have no month: a monthly chart
    leaves them out and says so in `note`; a yearly chart includes them.
    """
    return assemble(facts.selection(session, f).chart_rows())


def assemble(rows: list[tuple[date, bool, str, int]]) -> ChartData:
    """Monthly or yearly series from (month, year precision?, kind, count) rows."""
    if not rows:
        return ChartData()
    monthly = [r for r in rows if not r[1]]
    span = _months(min(r[0] for r in monthly), max(r[0] for r in monthly)) if monthly else []
    if not monthly or len(span) > MAX_MONTHS:
        years = sorted({r[0].year for r in rows})
        buckets = [date(y, 1, 1) for y in range(years[0], years[-1] + 1)]
        by_year = {b.year: i for i, b in enumerate(buckets)}
        series = _series(rows, len(buckets), lambda d: by_year[d.year])
        return ChartData("year", buckets, series)
    index = {b: i for i, b in enumerate(span)}
    series = _series(monthly, len(span), lambda d: index[d])
    hidden = sum(r[3] for r in rows if r[1])
    note = ""
    if hidden:
        note = (
            f"{hidden} event{' is' if hidden == 1 else 's are'} dated only to the year and "
            f"{'is' if hidden == 1 else 'are'} not drawn by month."
        )
    return ChartData("month", span, series, note)


def _series(rows: list[tuple[date, bool, str, int]], size: int, slot: Any) -> dict[str, list[int]]:
    """Counts per kind, kinds in vocabulary order, only kinds that occur."""
    series: dict[str, list[int]] = {}
    for d, _, kind, n in rows:
        series.setdefault(kind, [0] * size)[slot(d)] += n
    return {k: series[k] for k in KINDS if k in series}
