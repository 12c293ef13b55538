"""Initial schema: reference data, events with their links, sources, audit and accounts.

Revision ID: 0001
Revises: -
Create Date: 2026-11-26 17:38:19.295614
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.domain.countries import country_rows

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # pg_trgm powers the duplicate warning (title similarity) and name autocomplete.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "countries",
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("alpha2", sa.String(length=2), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.CheckConstraint("code ~ '^[A-Z]{3}$'", name=op.f("ck_countries_code_format")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_countries")),
    )
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index("ix_login_attempts_ip_at", "login_attempts", ["ip", "at"], unique=False)
    op.create_index(
        "ix_login_attempts_username_at",
        "login_attempts",
        [sa.literal_column("lower(username)"), "at"],
        unique=False,
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=10), server_default="viewer", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('viewer', 'analyst', 'admin')", name=op.f("ck_users_role_known")),
        sa.CheckConstraint("username ~ '^[A-Za-z0-9_.@-]{2,64}$'", name=op.f("ck_users_username_format")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index("uq_users_username_lower", "users", [sa.literal_column("lower(username)")], unique=True)
    op.create_table(
        "actors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("match_keys", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("type", sa.String(length=20), server_default="person", nullable=False),
        sa.Column("country_code", sa.String(length=3), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "type IN ('person', 'government', 'military', 'company', 'organisation', 'other')",
            name=op.f("ck_actors_type_known"),
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_actors_name_not_blank")),
        sa.ForeignKeyConstraint(
            ["country_code"], ["countries.code"], name=op.f("fk_actors_country_code_countries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actors")),
        sa.UniqueConstraint("name", name=op.f("uq_actors_name")),
    )
    op.create_index("ix_actors_match_keys", "actors", ["match_keys"], unique=False, postgresql_using="gin")
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("entity_type", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ip", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_audit_log_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id", "at"], unique=False)
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), server_default="", nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="reported", nullable=False),
        sa.Column("stage_override", sa.SmallInteger(), nullable=True),
        sa.Column(
            "stage",
            sa.SmallInteger(),
            sa.Computed(
                "COALESCE(stage_override, CASE kind WHEN 'assessment' THEN 0 WHEN 'economic' THEN 0 WHEN 'statement' THEN 1 WHEN 'denial' THEN 1 WHEN 'offer' THEN 2 WHEN 'request' THEN 2 WHEN 'agreement' THEN 3 WHEN 'financing' THEN 3 WHEN 'transfer' THEN 5 WHEN 'maintenance' THEN 5 WHEN 'training' THEN 5 WHEN 'deployment' THEN 6 WHEN 'exercise' THEN 6 WHEN 'strike' THEN 6 ELSE 0 END)",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("date_start", sa.Date(), nullable=False),
        sa.Column("date_precision", sa.String(length=5), server_default="day", nullable=False),
        sa.Column("date_end", sa.Date(), nullable=True),
        sa.Column("date_end_precision", sa.String(length=5), nullable=True),
        sa.Column(
            "period_end",
            sa.Date(),
            sa.Computed(
                "CASE COALESCE(date_end_precision, date_precision) WHEN 'year' THEN (date_trunc('year', (COALESCE(date_end, date_start))::timestamp) + interval '1 year - 1 day')::date WHEN 'month' THEN (date_trunc('month', (COALESCE(date_end, date_start))::timestamp) + interval '1 month - 1 day')::date ELSE COALESCE(date_end, date_start) END",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("search_vector", postgresql.TSVECTOR(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("client_token", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "date_end_precision IS NULL OR date_end_precision = 'day' OR (date_end_precision = 'month' AND extract(day FROM date_end) = 1) OR (date_end_precision = 'year' AND extract(doy FROM date_end) = 1)",
            name=op.f("ck_events_end_normalised"),
        ),
        sa.CheckConstraint(
            "date_end_precision IS NULL OR date_end_precision IN ('day', 'month', 'year')",
            name=op.f("ck_events_end_precision_known"),
        ),
        sa.CheckConstraint(
            "date_precision IN ('day', 'month', 'year')", name=op.f("ck_events_precision_known")
        ),
        sa.CheckConstraint(
            "date_precision IS NULL OR date_precision = 'day' OR (date_precision = 'month' AND extract(day FROM date_start) = 1) OR (date_precision = 'year' AND extract(doy FROM date_start) = 1)",
            name=op.f("ck_events_start_normalised"),
        ),
        sa.CheckConstraint(
            "kind IN ('statement', 'offer', 'request', 'agreement', 'financing', 'transfer', 'deployment', 'exercise', 'training', 'maintenance', 'strike', 'assessment', 'economic', 'denial')",
            name=op.f("ck_events_kind_known"),
        ),
        sa.CheckConstraint(
            "status IN ('claimed', 'reported', 'confirmed', 'denied', 'retracted')",
            name=op.f("ck_events_status_known"),
        ),
        sa.CheckConstraint(
            "(date_end IS NULL) = (date_end_precision IS NULL)", name=op.f("ck_events_end_with_precision")
        ),
        sa.CheckConstraint(
            "date_end IS NULL OR date_end >= date_start", name=op.f("ck_events_end_after_start")
        ),
        sa.CheckConstraint("length(btrim(title)) > 0", name=op.f("ck_events_title_not_blank")),
        sa.CheckConstraint(
            "stage_override IS NULL OR stage_override BETWEEN 0 AND 6", name=op.f("ck_events_stage_range")
        ),
        sa.CheckConstraint("version > 0", name=op.f("ck_events_version_positive")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_events_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["deleted_by"], ["users.id"], name=op.f("fk_events_deleted_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_events_updated_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("client_token", name=op.f("uq_events_client_token")),
    )
    op.create_index(
        "ix_events_deleted_at",
        "events",
        ["deleted_at"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
    )
    op.create_index(
        "ix_events_kind_timeline",
        "events",
        ["kind", sa.literal_column("date_start DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_events_period",
        "events",
        ["period_end", "date_start"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_events_search_vector", "events", ["search_vector"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "ix_events_stage", "events", ["stage"], unique=False, postgresql_where=sa.text("deleted_at IS NULL")
    )
    op.create_index(
        "ix_events_status", "events", ["status"], unique=False, postgresql_where=sa.text("deleted_at IS NULL")
    )
    op.create_index("ix_events_tags", "events", ["tags"], unique=False, postgresql_using="gin")
    op.create_index(
        "ix_events_timeline",
        "events",
        [sa.literal_column("date_start DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_events_title_trgm",
        "events",
        ["title"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.create_table(
        "systems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("designation", sa.Text(), nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("match_keys", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("origin_code", sa.String(length=3), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("length(btrim(designation)) > 0", name=op.f("ck_systems_designation_not_blank")),
        sa.ForeignKeyConstraint(
            ["origin_code"], ["countries.code"], name=op.f("fk_systems_origin_code_countries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_systems")),
        sa.UniqueConstraint("designation", name=op.f("uq_systems_designation")),
    )
    op.create_index("ix_systems_match_keys", "systems", ["match_keys"], unique=False, postgresql_using="gin")
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"], unique=False)
    op.create_table(
        "event_actors",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("position", sa.SmallInteger(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "role IN ('speaker', 'requester', 'financier', 'operator', 'authoriser', 'negotiator', 'supplier', 'recipient', 'manufacturer', 'carrier', 'subject', 'other')",
            name=op.f("ck_event_actors_role_known"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_event_actors_actor_id_actors"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_actors_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_id", "actor_id", "role", name=op.f("pk_event_actors")),
    )
    op.create_index("ix_event_actors_lookup", "event_actors", ["actor_id", "event_id"], unique=False)
    op.create_table(
        "event_countries",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("country_code", sa.String(length=3), nullable=False),
        sa.Column("position", sa.SmallInteger(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "role IN ('supplier', 'recipient', 'target', 'intermediary')",
            name=op.f("ck_event_countries_role_known"),
        ),
        sa.ForeignKeyConstraint(
            ["country_code"], ["countries.code"], name=op.f("fk_event_countries_country_code_countries")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_countries_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_id", "role", "country_code", name=op.f("pk_event_countries")),
    )
    op.create_index(
        "ix_event_countries_lookup", "event_countries", ["country_code", "role", "event_id"], unique=False
    )
    op.create_table(
        "event_systems",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("quantity_note", sa.Text(), nullable=True),
        sa.Column("position", sa.SmallInteger(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "quantity IS NULL OR quantity >= 0", name=op.f("ck_event_systems_quantity_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_systems_event_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["systems.id"],
            name=op.f("fk_event_systems_system_id_systems"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("event_id", "system_id", name=op.f("pk_event_systems")),
    )
    op.create_index("ix_event_systems_lookup", "event_systems", ["system_id", "event_id"], unique=False)
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("publisher", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("published_on", sa.Date(), nullable=True),
        sa.Column("published_precision", sa.String(length=5), nullable=True),
        sa.Column("quote", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reliability", sa.String(length=1), server_default="F", nullable=False),
        sa.Column("credibility", sa.SmallInteger(), server_default="6", nullable=False),
        sa.CheckConstraint(
            "published_precision IS NULL OR published_precision IN ('day', 'month', 'year')",
            name=op.f("ck_sources_published_precision_known"),
        ),
        sa.CheckConstraint(
            "reliability IN ('A', 'B', 'C', 'D', 'E', 'F')", name=op.f("ck_sources_reliability_grade")
        ),
        sa.CheckConstraint("url IS NULL OR url ~* '^https?://'", name=op.f("ck_sources_url_http")),
        sa.CheckConstraint(
            "(published_on IS NULL) = (published_precision IS NULL)",
            name=op.f("ck_sources_published_with_precision"),
        ),
        sa.CheckConstraint("credibility IN (1, 2, 3, 4, 5, 6)", name=op.f("ck_sources_credibility_grade")),
        sa.CheckConstraint("length(btrim(publisher)) > 0", name=op.f("ck_sources_publisher_not_blank")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_sources_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
    )
    op.create_index("ix_sources_event_id", "sources", ["event_id"], unique=False)
    op.create_index(
        "ix_sources_publisher_lower",
        "sources",
        [sa.literal_column("lower(publisher)"), "event_id"],
        unique=False,
    )
    op.create_index("ix_sources_reliability", "sources", ["reliability", "event_id"], unique=False)

    countries = sa.table(
        "countries", sa.column("code", sa.String), sa.column("alpha2", sa.String), sa.column("name", sa.Text)
    )
    op.bulk_insert(countries, country_rows())


def downgrade() -> None:
    op.drop_index("ix_sources_reliability", table_name="sources")
    op.drop_index("ix_sources_publisher_lower", table_name="sources")
    op.drop_index("ix_sources_event_id", table_name="sources")
    op.drop_table("sources")
    op.drop_index("ix_event_systems_lookup", table_name="event_systems")
    op.drop_table("event_systems")
    op.drop_index("ix_event_countries_lookup", table_name="event_countries")
    op.drop_table("event_countries")
    op.drop_index("ix_event_actors_lookup", table_name="event_actors")
    op.drop_table("event_actors")
    op.drop_index("ix_user_sessions_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
    op.drop_index("ix_systems_match_keys", table_name="systems", postgresql_using="gin")
    op.drop_table("systems")
    op.drop_index(
        "ix_events_title_trgm",
        table_name="events",
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.drop_index("ix_events_timeline", table_name="events", postgresql_where=sa.text("deleted_at IS NULL"))
    op.drop_index("ix_events_tags", table_name="events", postgresql_using="gin")
    op.drop_index("ix_events_status", table_name="events", postgresql_where=sa.text("deleted_at IS NULL"))
    op.drop_index("ix_events_stage", table_name="events", postgresql_where=sa.text("deleted_at IS NULL"))
    op.drop_index("ix_events_search_vector", table_name="events", postgresql_using="gin")
    op.drop_index("ix_events_period", table_name="events", postgresql_where=sa.text("deleted_at IS NULL"))
    op.drop_index(
        "ix_events_kind_timeline", table_name="events", postgresql_where=sa.text("deleted_at IS NULL")
    )
    op.drop_index(
        "ix_events_deleted_at", table_name="events", postgresql_where=sa.text("deleted_at IS NOT NULL")
    )
    op.drop_table("events")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_actors_match_keys", table_name="actors", postgresql_using="gin")
    op.drop_table("actors")
    op.drop_index("uq_users_username_lower", table_name="users")
    op.drop_table("users")
    op.drop_index("ix_login_attempts_username_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_ip_at", table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_table("countries")
