"""Partial dates: an event known only as "October 2025" is stored and shown as such."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

_PATTERN = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")
# English month abbreviations, read once: calendar.month_abbr formats a date through the C locale on
# every lookup, and the timeline asks for one per row.
MONTHS = tuple(calendar.month_abbr)


class PartialDateError(ValueError):
    """A value that is not YYYY, YYYY-MM or YYYY-MM-DD, or names no real day."""


@dataclass(frozen=True)
class PartialDate:
    """A date at day, month or year precision; `start` is the first day of the period."""

    start: date
    precision: str

    @property
    def end(self) -> date:
        """The last day of the period."""
        if self.precision == "year":
            return date(self.start.year, 12, 31)
        if self.precision == "month":
            last = calendar.monthrange(self.start.year, self.start.month)[1]
            return date(self.start.year, self.start.month, last)
        return self.start

    def iso(self) -> str:
        """YYYY, YYYY-MM or YYYY-MM-DD: the form used in URLs, CSV and the API."""
        return format_iso(self.start, self.precision)

    def __str__(self) -> str:
        return self.iso()


# A bulk import parses the same few thousand dates again and again; PartialDate is immutable, so one
# instance per distinct text can be shared (a refused text raises each time: errors are not cached).
@lru_cache(maxsize=65536)
def parse_partial(value: str) -> PartialDate:
    """Parse YYYY, YYYY-MM or YYYY-MM-DD into a PartialDate, or raise PartialDateError."""
    m = _PATTERN.match(value.strip())
    if not m:
        raise PartialDateError(f"“{value}” is not a date; use YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = int(m[1]), m[2], m[3]
    try:
        if day is not None:
            return PartialDate(date(year, int(month or 1), int(day)), "day")
        if month is not None:
            return PartialDate(date(year, int(month), 1), "month")
        return PartialDate(date(year, 1, 1), "year")
    except ValueError:
        raise PartialDateError(f"“{value}” is not a real date") from None


def format_iso(start: date | None, precision: str | None) -> str:
    """ISO text for a stored date at its precision ('' when there is none)."""
    if start is None or precision is None:
        return ""
    if precision == "year":
        return f"{start.year:04d}"
    if precision == "month":
        return f"{start.year:04d}-{start.month:02d}"
    return start.isoformat()


def format_human(start: date | None, precision: str | None) -> str:
    """A person's reading of a date at its precision: '2018', 'Oct 2025', '3 Oct 2025'."""
    if start is None or precision is None:
        return ""
    if precision == "year":
        return str(start.year)
    if precision == "month":
        return f"{MONTHS[start.month]} {start.year}"
    return f"{start.day} {MONTHS[start.month]} {start.year}"


def format_span(start: date, precision: str, end: date | None, end_precision: str | None) -> str:
    """A date or a span ('Sep – Nov 2025') at the precisions it was recorded with."""
    first = format_human(start, precision)
    if end is None or end_precision is None:
        return first
    last = format_human(end, end_precision)
    if precision == "month" and end_precision == "month" and start.year == end.year:
        first = MONTHS[start.month]
    return f"{first} – {last}"
