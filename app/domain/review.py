"""Due for review: when a claimed or reported event's review clock has run for its kind's number of days."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.domain.vocab import KINDS


def review_days(default: int, by_kind: dict[str, int]) -> dict[str, int]:
    """Days before review per kind: the kind's own setting, else the default."""
    return {kind: by_kind.get(kind, default) for kind in KINDS}


def cutoffs(now: datetime, days: dict[str, int]) -> dict[str, datetime]:
    """Per kind, the latest clock start that makes an event due at `now` (due: clock <= cutoff)."""
    return {kind: now - timedelta(days=n) for kind, n in days.items()}


def due_since(clock_at: datetime, kind: str, days: dict[str, int]) -> datetime:
    """When an event whose clock started at `clock_at` is (or was) due."""
    return clock_at + timedelta(days=days.get(kind, 30))
