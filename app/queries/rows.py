"""Timeline rows: what one event row shows, read for a page of ids in one query, without ORM objects.

The timeline and the review queue show 50 rows a view. Loading them as ORM events (six queries, every
link and source as an object) was most of a page's cost; a row needs a dozen columns, the countries by
role, the systems and two numbers about the sources, which PostgreSQL aggregates in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

ROWS_SQL = text(
    """
    SELECT e.id, e.title, e.kind, e.stage, e.status,
           e.date_start, e.date_precision, e.date_end, e.date_end_precision,
           e.origin_count, e.likelihood, e.likelihood_rationale, e.confidence, e.confidence_rationale,
           e.review_clock_at, c.roles, c.codes, y.designations, y.quantities, s.n, s.best
    FROM events e
    LEFT JOIN LATERAL (
        SELECT array_agg(ec.role ORDER BY ec.position) AS roles,
               array_agg(ec.country_code ORDER BY ec.position) AS codes
        FROM event_countries ec WHERE ec.event_id = e.id
    ) c ON true
    LEFT JOIN LATERAL (
        -- a scalar subquery, not a join: for one or two links PostgreSQL would hash the whole catalogue
        SELECT array_agg(
                   (SELECT sy.designation FROM systems sy WHERE sy.id = es.system_id) ORDER BY es.position
               ) AS designations,
               array_agg(es.quantity ORDER BY es.position) AS quantities
        FROM event_systems es WHERE es.event_id = e.id
    ) y ON true
    LEFT JOIN LATERAL (
        -- the best grade: reliability first, then credibility (both one character, so text order works)
        SELECT count(*) AS n, min(so.reliability || so.credibility::text) AS best
        FROM sources so WHERE so.event_id = e.id
    ) s ON true
    WHERE e.id = ANY(:ids) AND e.deleted_at IS NULL
    """
)


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One event as a timeline or review row shows it."""

    id: int
    title: str
    kind: str
    stage: int
    status: str
    date_start: date
    date_precision: str
    date_end: date | None
    date_end_precision: str | None
    origin_count: int
    likelihood: str | None
    likelihood_rationale: str | None
    confidence: str | None
    confidence_rationale: str | None
    review_clock_at: datetime
    suppliers: tuple[str, ...]
    recipients: tuple[str, ...]
    targets: tuple[str, ...]
    systems: tuple[tuple[str, int | None], ...]
    source_count: int
    best_grade: str | None


def _by_role(roles: list[str] | None, codes: list[str] | None) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for role, code in zip(roles or (), codes or (), strict=True):
        found.setdefault(role, []).append(code)
    return {role: tuple(found_codes) for role, found_codes in found.items()}


def timeline_rows(session: Session, ids: Sequence[int]) -> list[TimelineRow]:
    """The visible events among `ids`, in the order of `ids` (deleted or unknown ids are left out)."""
    if not ids:
        return []
    found: dict[int, TimelineRow] = {}
    for r in session.execute(ROWS_SQL, {"ids": list(ids)}).tuples():
        (id_, title, kind, stage, status, start, precision, end, end_precision, origins) = r[:10]
        (likelihood, likelihood_why, confidence, confidence_why, clock_at) = r[10:15]
        roles, codes, designations, quantities, n, best = r[15:]
        countries = _by_role(roles, codes)
        found[id_] = TimelineRow(
            id_, title, kind, stage, status, start, precision, end, end_precision, origins,
            likelihood, likelihood_why, confidence, confidence_why, clock_at,
            countries.get("supplier", ()),
            countries.get("recipient", ()),
            countries.get("target", ()),
            tuple(zip(designations or (), quantities or (), strict=True)),
            n,
            best,
        )  # fmt: skip
    return [found[i] for i in ids if i in found]
