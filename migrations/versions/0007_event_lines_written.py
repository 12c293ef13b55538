"""Export lines written with their event: no xmin, no triggers; a format version bumped by hand.

The lines are now written by the write path in the event's own transaction (app.queries.export_lines),
so the touch triggers of 0004 and the xmin a line was matched by go. `fmt` now holds app.csvio's
FORMAT_VERSION. The old lines are emptied (TRUNCATE: instant, where rewriting a million rows is not) and
`signalboard db upgrade` makes them again after migrating; until then the export makes each missing line
itself, so it stays correct.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:30:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINK_TABLES = ("event_countries", "event_actors", "event_systems", "sources")
TOUCH_FUNCTIONS = ("new_links", "old_links", "moved_links", "renamed_actors", "renamed_systems")


def upgrade() -> None:
    for table in (*LINK_TABLES, "actors", "systems"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_forget_lines ON {table}")
    op.execute("DROP FUNCTION IF EXISTS forget_event_lines()")
    for table in ("actors", "systems"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_touch_rename ON {table}")
    for table in LINK_TABLES:
        for action in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_touch_{action} ON {table}")
    for name in TOUCH_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS touch_events_of_{name}()")
    op.execute("TRUNCATE event_lines")
    op.drop_column("event_lines", "src_xmin")
    # Lets a start or a health check ask "any line of another version?" without reading every line.
    op.create_index("ix_event_lines_fmt", "event_lines", ["fmt"])


def downgrade() -> None:
    # 0004's lines are matched by xmin, which none of these hold: the table and its triggers are made anew
    # (empty; 0004's filler makes the lines).
    op.drop_table("event_lines")
    path = Path(__file__).with_name("0004_event_lines.py")
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.upgrade()
