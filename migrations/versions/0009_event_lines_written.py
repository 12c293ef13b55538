"""Export lines written with their event: no xmin, no triggers; a format version bumped by hand.

The lines are now written by the write path in the event's own transaction (app.queries.export_lines),
so the touch triggers of 0004 and the xmin a line was matched by go; `fmt` now holds app.csvio's
FORMAT_VERSION (a small number). Lines of 0004's scheme carry a fingerprint of the code instead (a large
number): they are emptied (TRUNCATE: instant, where deleting a million rows is not), and
`signalboard db upgrade` or the app's start makes them again; until then the export makes each missing
line itself, so it stays correct. A database downgraded from here and upgraded again keeps its lines.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 06:30:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINK_TABLES = ("event_countries", "event_actors", "event_systems", "sources")
TOUCH_FUNCTIONS = ("new_links", "old_links", "moved_links", "renamed_actors", "renamed_systems")


# Below this, `fmt` is a format version written by this scheme; 0004's fingerprints are 31-bit hashes.
VERSIONS_BELOW = 1000


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
    versioned = op.get_bind().scalar(
        sa.text(f"SELECT EXISTS (SELECT 1 FROM event_lines WHERE fmt < {VERSIONS_BELOW})")
    )
    if versioned:
        # Downgraded from here earlier: the write path kept these lines current until then; those changed
        # since (their event's xmin moved, or 0004's filler rewrote them with its fingerprint) go.
        op.execute(
            f"DELETE FROM event_lines l WHERE l.fmt >= {VERSIONS_BELOW} OR NOT EXISTS (SELECT 1 FROM events e"
            " WHERE e.id = l.event_id AND e.xmin::text::bigint = l.src_xmin)"
        )
    else:
        op.execute("TRUNCATE event_lines")
    op.drop_column("event_lines", "src_xmin")
    # Lets a start or a health check ask "any line of another version?" without reading every line.
    op.create_index("ix_event_lines_fmt", "event_lines", ["fmt"])


def _migration_0004() -> ModuleType:
    path = Path(__file__).with_name("0004_event_lines.py")
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    # The lines are kept, each with its event's current xmin: 0004's scheme ignores them anyway (their
    # `fmt` is not its fingerprint) and its filler makes them again.
    op.drop_index("ix_event_lines_fmt", table_name="event_lines")
    op.add_column("event_lines", sa.Column("src_xmin", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE event_lines l SET src_xmin = e.xmin::text::bigint FROM events e WHERE e.id = l.event_id"
    )
    op.alter_column("event_lines", "src_xmin", nullable=False)
    m0004 = _migration_0004()
    for name, ids in m0004._FUNCTIONS.items():
        op.execute(m0004._TOUCH.format(name=name, ids=ids))
    for table in LINK_TABLES:
        for action, rows, function in (
            ("insert", "NEW TABLE AS new_rows", "new_links"),
            ("delete", "OLD TABLE AS old_rows", "old_links"),
            ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows", "moved_links"),
        ):
            op.execute(
                f"CREATE TRIGGER {table}_touch_{action} AFTER {action.upper()} ON {table} REFERENCING {rows}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION touch_events_of_{function}()"
            )
    op.execute(m0004._FORGET)
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
