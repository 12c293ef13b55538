"""Stored CSV lines: each live event's export line, valid while the event row keeps the xmin it was made from.

Links (countries, actors, systems, sources) and the actor and system names that a line shows change
without the event row; triggers touch the event row then, so its xmin moves and the stored line stops
matching. Events whose row the writing transaction itself wrote (not a savepoint of it) are skipped:
their xmin moves anyway, and for new ones no line can exist yet. That keeps imports and seeding cheap.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINK_TABLES = ("event_countries", "event_actors", "event_systems", "sources")

# A touch rewrites the event row unchanged: a new xmin, nothing else. The xmin test skips events this
# transaction already wrote (new ones, or an edit that also replaces its links).
_TOUCH = """
CREATE FUNCTION touch_events_of_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events e SET updated_at = e.updated_at
    WHERE e.id IN ({ids}) AND e.xmin <> pg_current_xact_id()::xid;
    RETURN NULL;
END
$$
"""

_FUNCTIONS = {
    "new_links": "SELECT event_id FROM new_rows",
    "old_links": "SELECT event_id FROM old_rows",
    "moved_links": "SELECT event_id FROM new_rows UNION SELECT event_id FROM old_rows",
    # Only the names a line shows: an actor's name, a system's designation.
    "renamed_actors": (
        "SELECT l.event_id FROM event_actors l JOIN new_rows n ON n.id = l.actor_id"
        " JOIN old_rows o ON o.id = n.id WHERE n.name IS DISTINCT FROM o.name"
    ),
    "renamed_systems": (
        "SELECT l.event_id FROM event_systems l JOIN new_rows n ON n.id = l.system_id"
        " JOIN old_rows o ON o.id = n.id WHERE n.designation IS DISTINCT FROM o.designation"
    ),
}


# TRUNCATE fires no row or statement triggers of the DML kind: emptying a link or name table by hand
# drops every stored line instead (they are made again in the background).
_FORGET = """
CREATE FUNCTION forget_event_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_lines;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "event_lines",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("src_xmin", sa.BigInteger(), nullable=False),
        sa.Column("fmt", sa.Integer(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_lines_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_lines")),
    )
    for name, ids in _FUNCTIONS.items():
        op.execute(_TOUCH.format(name=name, ids=ids))
    for table in LINK_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_touch_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows"
            " FOR EACH STATEMENT EXECUTE FUNCTION touch_events_of_new_links()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_touch_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows"
            " FOR EACH STATEMENT EXECUTE FUNCTION touch_events_of_old_links()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_touch_update AFTER UPDATE ON {table}"
            " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
            " FOR EACH STATEMENT EXECUTE FUNCTION touch_events_of_moved_links()"
        )
    op.execute(_FORGET)
    for table in (*LINK_TABLES, "actors", "systems"):
        op.execute(
            f"CREATE TRIGGER {table}_forget_lines AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION forget_event_lines()"
        )
    for table in ("actors", "systems"):
        op.execute(
            f"CREATE TRIGGER {table}_touch_rename AFTER UPDATE ON {table}"
            " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION touch_events_of_renamed_{table}()"
        )


def downgrade() -> None:
    for table in (*LINK_TABLES, "actors", "systems"):
        op.execute(f"DROP TRIGGER {table}_forget_lines ON {table}")
    op.execute("DROP FUNCTION forget_event_lines()")
    for table in ("actors", "systems"):
        op.execute(f"DROP TRIGGER {table}_touch_rename ON {table}")
    for table in LINK_TABLES:
        for action in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER {table}_touch_{action} ON {table}")
    for name in _FUNCTIONS:
        op.execute(f"DROP FUNCTION touch_events_of_{name}()")
    op.drop_table("event_lines")
