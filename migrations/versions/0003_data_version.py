"""The data version sequence: writers move it after commit, caches and the facts copy compare it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 20:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE data_version_seq")


def downgrade() -> None:
    op.execute("DROP SEQUENCE data_version_seq")
