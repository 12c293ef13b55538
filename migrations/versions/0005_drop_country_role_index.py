"""Drop ix_event_countries_role: the facts copy counts the country facets now, and the index cost imports.

It was added (0002) so SQL could count one role's links by country in index order. Since the counts come
from the in-memory copy, its only users would be the SQL paths kept for FACTS_COPY=false, which
ix_event_countries_lookup (country_code, role, event_id) serves as well. Keeping it up cost about 3 s of a
100,000-row import at a million events (28 s instead of 31 s; docs/benchmarks.md) and 167 MB.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 23:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_event_countries_role", table_name="event_countries", if_exists=True)


def downgrade() -> None:
    op.create_index(
        "ix_event_countries_role", "event_countries", ["role", "country_code", "event_id"], unique=False
    )
