"""Watch: saved views and when each user last opened them, feed tokens, notes on events.

Four new tables, nothing else touched: notes and views are not part of an event, so no export line,
search document or facts column changes. The downgrade drops them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("path", sa.String(length=20), server_default="/", nullable=False),
        sa.Column("query", sa.Text(), server_default="", nullable=False),
        sa.Column("shared", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("path IN ('/', '/dyads')", name=op.f("ck_saved_views_path_known")),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 100", name=op.f("ck_saved_views_name_length")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_saved_views_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_views")),
    )
    op.create_index(
        "uq_saved_views_owner_name", "saved_views", ["owner_id", sa.text("lower(name)")], unique=True
    )
    op.create_table(
        "saved_view_opens",
        sa.Column("view_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["view_id"],
            ["saved_views.id"],
            name=op.f("fk_saved_view_opens_view_id_saved_views"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_saved_view_opens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("view_id", "user_id", name=op.f("pk_saved_view_opens")),
    )
    op.create_table(
        "feed_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feed_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_feed_tokens_token_hash")),
    )
    op.create_index("ix_feed_tokens_user_id", "feed_tokens", ["user_id"], unique=False)
    op.create_table(
        "event_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("length(body) BETWEEN 1 AND 100000", name=op.f("ck_event_notes_body_length")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_notes_event_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_event_notes_author_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_notes")),
    )
    op.create_index("ix_event_notes_event_id", "event_notes", ["event_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_notes_event_id", table_name="event_notes")
    op.drop_table("event_notes")
    op.drop_index("ix_feed_tokens_user_id", table_name="feed_tokens")
    op.drop_table("feed_tokens")
    op.drop_table("saved_view_opens")
    op.drop_index("uq_saved_views_owner_name", table_name="saved_views")
    op.drop_table("saved_views")
