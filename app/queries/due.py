"""Due for review as SQL and as per-kind cutoffs at "now" (the clock of app/domain/clock.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case

from app.config import get_settings
from app.domain import clock
from app.domain.review import cutoffs
from app.domain.vocab import REVIEWABLE
from app.models import Event


def due_cutoffs(now: datetime | None = None) -> dict[str, datetime]:
    """Per kind, the latest review clock start that is due now (settings: REVIEW_AFTER_DAYS[_BY_KIND])."""
    return cutoffs(now or clock.utcnow(), get_settings().review_days())


def due_condition(now: datetime | None = None) -> ColumnElement[bool]:
    """WHERE clause: claimed or reported, and the review clock ran out for the event's kind."""
    now = now or clock.utcnow()
    limits = due_cutoffs(now)
    default = now - timedelta(days=get_settings().review_after_days)
    per_kind = {kind: at for kind, at in limits.items() if at != default}
    cutoff = case(per_kind, value=Event.kind, else_=default) if per_kind else default
    return and_(Event.status.in_(REVIEWABLE), Event.review_clock_at <= cutoff)
