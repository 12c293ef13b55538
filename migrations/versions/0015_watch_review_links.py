"""Watch: the review clock on events (due for review) and typed links between events.

`events.review_clock_at` is when an event's review clock last started: its creation, a "reviewed, still
unconfirmed", or a status change. Existing events start at their creation. The facts copy reads it at
start-up, so ix_events_facts (the index-only scan of that read) includes it.

`event_links` holds one typed link from a source event to a target event (confirms, denies, retracts,
fulfils, follows_up, same_as): never to itself, at most once per pair and type.

A downgrade loses both by design (the command line asks before downgrading a database holding events):
review clocks start again at each event's creation on the way back up, and the links are gone.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the index holds after 0013 (trust: origin_count, likelihood, confidence); this step adds the clock.
FACTS_COLUMNS = [
    "period_end",
    "date_precision",
    "kind",
    "status",
    "stage",
    "origin_count",
    "likelihood",
    "confidence",
]
LINK_TYPES = "'confirms', 'denies', 'retracts', 'fulfils', 'follows_up', 'same_as'"


def _facts_index(include: list[str]) -> None:
    op.drop_index("ix_events_facts", table_name="events", if_exists=True)
    op.create_index(
        "ix_events_facts",
        "events",
        ["date_start", "id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        postgresql_include=include,
    )


def upgrade() -> None:
    op.add_column("events", sa.Column("review_clock_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE events SET review_clock_at = created_at")
    op.alter_column("events", "review_clock_at", nullable=False, server_default=sa.text("now()"))
    _facts_index([*FACTS_COLUMNS, "review_clock_at"])
    op.create_table(
        "event_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(f"type IN ({LINK_TYPES})", name=op.f("ck_event_links_type_known")),
        sa.CheckConstraint("source_id <> target_id", name=op.f("ck_event_links_not_itself")),
        sa.ForeignKeyConstraint(
            ["source_id"], ["events.id"], name=op.f("fk_event_links_source_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["events.id"], name=op.f("fk_event_links_target_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_event_links_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_links")),
        sa.UniqueConstraint("source_id", "target_id", "type", name="uq_event_links_pair_type"),
    )
    op.create_index("ix_event_links_target_id", "event_links", ["target_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_links_target_id", table_name="event_links")
    op.drop_table("event_links")
    _facts_index(FACTS_COLUMNS)
    op.drop_column("events", "review_clock_at")
