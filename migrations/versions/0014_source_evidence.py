"""Evidence on sources: an archived-copy URL, an accessed-on date, and files kept in PostgreSQL.

Files go to their own table (source_files) so event and source rows stay narrow; they belong to the
event (deleted with its row, kept while it is only soft-deleted) and to a source by its position.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("archive_url", sa.Text(), nullable=True))
    op.add_column("sources", sa.Column("accessed_on", sa.Date(), nullable=True))
    op.create_check_constraint(
        op.f("ck_sources_archive_url_http"), "sources", "archive_url IS NULL OR archive_url ~* '^https?://'"
    )
    op.create_table(
        "source_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("source_position", sa.SmallInteger(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", postgresql.BYTEA(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("size > 0", name=op.f("ck_source_files_size_positive")),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_source_files_sha256_hex")),
        sa.CheckConstraint("source_position >= 0", name=op.f("ck_source_files_position_non_negative")),
        sa.CheckConstraint("length(btrim(filename)) > 0", name=op.f("ck_source_files_filename_not_blank")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_source_files_event_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_source_files_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_files")),
    )
    op.create_index("ix_source_files_event_id", "source_files", ["event_id", "source_position"], unique=False)
    # The files' bytes are already compressed formats for the most part: store them out of line, uncompressed.
    op.execute("ALTER TABLE source_files ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_index("ix_source_files_event_id", table_name="source_files")
    op.drop_table("source_files")
    op.drop_constraint(op.f("ck_sources_archive_url_http"), "sources", type_="check")
    op.drop_column("sources", "accessed_on")
    op.drop_column("sources", "archive_url")
