"""The current time in UTC, in one place so tests can freeze it."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Timezone-aware now (UTC)."""
    return datetime.now(UTC)
