"""Replace ix_events_facets by ix_events_facts: the index the facts copy's start-up read scans.

Facet counts, the chart and totals are answered by the in-memory facts copy, so no request reads
ix_events_facets any more (its SQL lives on as the tests' oracle). What must be fast instead is reading
the copy when a process starts: every column it takes from events (date_start, id, period_end,
date_precision, kind, status, stage) of live events, in one index-only scan of ~56 MB instead of a
sequential scan of the ~1 GB heap at a million events (docs/architecture.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_events_facets", table_name="events", if_exists=True)
    op.create_index(
        "ix_events_facts",
        "events",
        ["date_start", "id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        postgresql_include=["period_end", "date_precision", "kind", "status", "stage"],
    )


def downgrade() -> None:
    op.drop_index("ix_events_facts", table_name="events")
    op.create_index(
        "ix_events_facets",
        "events",
        ["kind", "status", "stage", "date_start"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        postgresql_include=["id"],
    )
