"""Indexes for the facet counts: live events by kind, status, stage and date; country links by role.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 19:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_events_facets",
        "events",
        ["kind", "status", "stage", "date_start"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        postgresql_include=["id"],
    )
    op.create_index(
        "ix_event_countries_role", "event_countries", ["role", "country_code", "event_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_event_countries_role", table_name="event_countries")
    op.drop_index("ix_events_facets", table_name="events", postgresql_where=sa.text("deleted_at IS NULL"))
