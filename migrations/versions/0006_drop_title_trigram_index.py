"""Drop ix_events_title_trgm: no query can use it, and it was a quarter of the cost of inserting events.

The duplicate checks compare titles with `similarity(title, …) >= 0.45`, a function call that no index
serves; they read the events within 14 days of the new event's period through ix_events_period. Keeping
the trigram index up cost about 4.5 s of the 18 s it took to insert 100,000 events at a million
(docs/benchmarks.md) and 183 MB.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 02:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_events_title_trgm", table_name="events", if_exists=True)


def downgrade() -> None:
    op.create_index(
        "ix_events_title_trgm",
        "events",
        ["title"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
