"""Trust: an origins catalogue, each source's origin, the event's corroboration count and confidence.

A downgrade loses what only this revision holds: relays (each source's origin becomes its publisher
again on the way back up), origin aliases and the events' likelihood and confidence.

Every existing source gets its publisher as its origin (one origin per folded publisher name, the other
spellings as aliases), so an old event's corroboration is its number of distinct publishers until an
analyst says which sources relay another's report. `events.origin_count` is filled from the sources and
kept by the write path from then on. ix_events_facts takes the new columns the facts copy reads.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIKELIHOODS = (
    "almost no chance",
    "very unlikely",
    "unlikely",
    "roughly even chance",
    "likely",
    "very likely",
    "almost certain",
)
CONFIDENCES = ("low", "moderate", "high")
FACTS_INCLUDE = ["period_end", "date_precision", "kind", "status", "stage"]


def _in(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _backfill_origins(bind: sa.Connection) -> None:
    """One origin per folded publisher (first spelling as name, the others as aliases); sources point to it."""
    from app.domain.textkeys import fold, match_keys

    groups: dict[str, list[str]] = {}
    for (publisher,) in bind.execute(sa.text("SELECT DISTINCT publisher FROM sources ORDER BY publisher")):
        groups.setdefault(fold(publisher), []).append(publisher)
    if not groups:
        return
    bind.execute(sa.text("CREATE TEMP TABLE publisher_origin (publisher text PRIMARY KEY, origin_id int)"))
    insert = sa.text(
        "INSERT INTO origins (name, aliases, match_keys) VALUES (:name, :aliases, :keys) RETURNING id"
    )
    pairs = []
    for spellings in groups.values():
        name, aliases = spellings[0], spellings[1:]
        origin_id = bind.scalar(insert, {"name": name, "aliases": aliases, "keys": match_keys(name, aliases)})
        pairs += [{"p": p, "o": origin_id} for p in spellings]
    bind.execute(sa.text("INSERT INTO publisher_origin VALUES (:p, :o)"), pairs)
    bind.execute(
        sa.text(
            "UPDATE sources s SET origin_id = m.origin_id FROM publisher_origin m WHERE m.publisher = s.publisher"
        )
    )
    bind.execute(sa.text("DROP TABLE publisher_origin"))
    # First seen: when the first event citing it was recorded (the same after a downgrade and upgrade).
    bind.execute(
        sa.text(
            "UPDATE origins o SET created_at = f.first FROM (SELECT s.origin_id, min(e.created_at) AS first"
            " FROM sources s JOIN events e ON e.id = s.event_id GROUP BY s.origin_id) f WHERE f.origin_id = o.id"
        )
    )
    bind.execute(
        sa.text(
            "UPDATE events e SET origin_count = c.n FROM"
            " (SELECT event_id, count(DISTINCT origin_id)::int2 AS n FROM sources GROUP BY event_id) c"
            " WHERE c.event_id = e.id"
        )
    )


def upgrade() -> None:
    op.create_table(
        "origins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("match_keys", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_origins_name_not_blank")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_origins")),
        sa.UniqueConstraint("name", name=op.f("uq_origins_name")),
    )
    op.create_index("ix_origins_match_keys", "origins", ["match_keys"], postgresql_using="gin")
    op.add_column("sources", sa.Column("origin_id", sa.Integer(), nullable=True))
    op.add_column("events", sa.Column("origin_count", sa.SmallInteger(), server_default="0", nullable=False))
    op.add_column("events", sa.Column("likelihood", sa.String(length=20), nullable=True))
    op.add_column("events", sa.Column("likelihood_rationale", sa.Text(), nullable=True))
    op.add_column("events", sa.Column("confidence", sa.String(length=10), nullable=True))
    op.add_column("events", sa.Column("confidence_rationale", sa.Text(), nullable=True))
    _backfill_origins(op.get_bind())
    op.alter_column("sources", "origin_id", nullable=False)
    op.create_foreign_key(
        op.f("fk_sources_origin_id_origins"), "sources", "origins", ["origin_id"], ["id"], ondelete="RESTRICT"
    )
    op.create_index("ix_sources_origin", "sources", ["origin_id", "event_id"])
    op.create_check_constraint(op.f("ck_events_origin_count_non_negative"), "events", "origin_count >= 0")
    op.create_check_constraint(
        op.f("ck_events_likelihood_known"),
        "events",
        f"likelihood IS NULL OR likelihood IN ({_in(LIKELIHOODS)})",
    )
    op.create_check_constraint(
        op.f("ck_events_confidence_known"),
        "events",
        f"confidence IS NULL OR confidence IN ({_in(CONFIDENCES)})",
    )
    op.drop_index("ix_events_facts", table_name="events")
    op.create_index(
        "ix_events_facts",
        "events",
        ["date_start", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        postgresql_include=[*FACTS_INCLUDE, "origin_count", "likelihood", "confidence"],
    )


def downgrade() -> None:
    # Stored export lines show origins and judgements: mark them outdated (not deleted: they are re-made
    # by whichever code runs next, `signalboard db upgrade` or the app's start).
    op.execute("UPDATE event_lines SET fmt = 0 WHERE fmt > 1")
    op.drop_index("ix_events_facts", table_name="events")
    op.create_index(
        "ix_events_facts",
        "events",
        ["date_start", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        postgresql_include=FACTS_INCLUDE,
    )
    op.drop_constraint(op.f("ck_events_confidence_known"), "events", type_="check")
    op.drop_constraint(op.f("ck_events_likelihood_known"), "events", type_="check")
    op.drop_constraint(op.f("ck_events_origin_count_non_negative"), "events", type_="check")
    for column in (
        "confidence_rationale",
        "confidence",
        "likelihood_rationale",
        "likelihood",
        "origin_count",
    ):
        op.drop_column("events", column)
    op.drop_index("ix_sources_origin", table_name="sources")
    op.drop_constraint(op.f("fk_sources_origin_id_origins"), "sources", type_="foreignkey")
    op.drop_column("sources", "origin_id")
    op.drop_index("ix_origins_match_keys", table_name="origins")
    op.drop_table("origins")
