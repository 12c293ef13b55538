"""System families: a system may name its parent (Geran-2 -> Shahed-136); filters include variants.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("parent_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_systems_parent_id_systems"), "systems", "systems", ["parent_id"], ["id"], ondelete="SET NULL"
    )
    op.create_index(op.f("ix_systems_parent_id"), "systems", ["parent_id"], unique=False)
    op.create_check_constraint(op.f("ck_systems_not_own_parent"), "systems", "parent_id <> id")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_systems_not_own_parent"), "systems", type_="check")
    op.drop_index(op.f("ix_systems_parent_id"), table_name="systems")
    op.drop_constraint(op.f("fk_systems_parent_id_systems"), "systems", type_="foreignkey")
    op.drop_column("systems", "parent_id")
