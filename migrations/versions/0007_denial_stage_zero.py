"""A denial's default stage is 0 (context), not 1: a denial is evidence against support.

`events.stage` is generated from `COALESCE(stage_override, <kind's default>)`. PostgreSQL before 17
cannot change a generated column's expression, so the column is dropped and added again (a rewrite of
the events table) with its two indexes. Denials an analyst put on a stage by override keep it; the rest
move to 0. The rewrite gives every event row a new xmin, so no stored export line (0004) matches any
more and each is written again with the new stage. The in-memory counts are read afresh by each process
that starts after the migration.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of app.domain.vocab.KIND_STAGE before and after this revision (a migration must not follow
# later edits of the app).
_BEFORE = {
    "assessment": 0,
    "economic": 0,
    "statement": 1,
    "denial": 1,
    "offer": 2,
    "request": 2,
    "agreement": 3,
    "financing": 3,
    "transfer": 5,
    "maintenance": 5,
    "training": 5,
    "deployment": 6,
    "exercise": 6,
    "strike": 6,
}
_AFTER = {**_BEFORE, "denial": 0}


def _set_stage(kind_stage: dict[str, int]) -> None:
    """Re-create events.stage from the kind map, with ix_events_stage and ix_events_facets."""
    whens = " ".join(f"WHEN '{k}' THEN {s}" for k, s in kind_stage.items())
    live = sa.text("deleted_at IS NULL")
    op.drop_index("ix_events_facets", table_name="events", postgresql_where=live)
    op.drop_index("ix_events_stage", table_name="events", postgresql_where=live)
    op.drop_column("events", "stage")
    op.add_column(
        "events",
        sa.Column(
            "stage",
            sa.SmallInteger(),
            sa.Computed(f"COALESCE(stage_override, CASE kind {whens} ELSE 0 END)", persisted=True),
            nullable=False,
        ),
    )
    op.create_index("ix_events_stage", "events", ["stage"], unique=False, postgresql_where=live)
    op.create_index(
        "ix_events_facets",
        "events",
        ["kind", "status", "stage", "date_start"],
        unique=False,
        postgresql_where=live,
        postgresql_include=["id"],
    )


def upgrade() -> None:
    _set_stage(_AFTER)


def downgrade() -> None:
    _set_stage(_BEFORE)
