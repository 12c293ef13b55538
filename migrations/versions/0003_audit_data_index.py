"""Index of data-change audit rows: the data version reads its newest id, which logins do not move.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("entity_type IN ('event', 'actor', 'system')")


def upgrade() -> None:
    op.create_index("ix_audit_log_data", "audit_log", ["id"], unique=False, postgresql_where=WHERE)


def downgrade() -> None:
    op.drop_index("ix_audit_log_data", table_name="audit_log", postgresql_where=WHERE)
