"""Add staged_imports: a previewed upload waits on the server for its commit, keyed by a one-time token.

The preview used to send the whole checked file back to the browser in a form field, and the commit
failed for files over the 1 MiB limit of a form field. A row lives an hour at most.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staged_imports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_staged_imports_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staged_imports")),
    )
    op.create_index("ix_staged_imports_user_id", "staged_imports", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_staged_imports_user_id", table_name="staged_imports")
    op.drop_table("staged_imports")
