"""The event aggregate: one dated signal with its countries, actors, systems and sources."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.vocab import (
    ACTOR_ROLES,
    CONFIDENCES,
    COUNTRY_ROLES,
    CREDIBILITY,
    KINDS,
    LIKELIHOODS,
    LINK_TYPES,
    PRECISIONS,
    RELIABILITY,
    STATUSES,
    sql_in,
    stage_case_sql,
)
from app.models.base import Base, created_at_column
from app.models.reference import Actor, Country, Origin, System

# Last day of the period an event covers, at its precision (the end date's when it has one).
# date::timestamp keeps every function immutable, as a generated column requires.
_END = "COALESCE(date_end, date_start)"
_END_PRECISION = "COALESCE(date_end_precision, date_precision)"
PERIOD_END_SQL = (
    f"CASE {_END_PRECISION} "
    f"WHEN 'year' THEN (date_trunc('year', ({_END})::timestamp) + interval '1 year - 1 day')::date "
    f"WHEN 'month' THEN (date_trunc('month', ({_END})::timestamp) + interval '1 month - 1 day')::date "
    f"ELSE {_END} END"
)


def _normalised_date_check(column: str, precision: str) -> str:
    """A month-precision date is stored as the 1st of its month, a year-precision one as 1 January."""
    return (
        f"{precision} IS NULL OR {precision} = 'day' "
        f"OR ({precision} = 'month' AND extract(day FROM {column}) = 1) "
        f"OR ({precision} = 'year' AND extract(doy FROM {column}) = 1)"
    )


class Event(Base):
    """One dated signal of military support."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    summary: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="reported")
    stage_override: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    stage: Mapped[int] = mapped_column(
        SmallInteger, Computed(f"COALESCE(stage_override, {stage_case_sql()})", persisted=True)
    )
    date_start: Mapped[date] = mapped_column(Date, nullable=False)
    date_precision: Mapped[str] = mapped_column(String(5), nullable=False, server_default="day")
    date_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    date_end_precision: Mapped[str | None] = mapped_column(String(5), nullable=True)
    period_end: Mapped[date] = mapped_column(Date, Computed(PERIOD_END_SQL, persisted=True))
    location: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    # Independent origins over the sources (distinct sources.origin_id), kept by every write that changes
    # sources or merges origins, so counts, the facts copy and the export read it without a join.
    origin_count: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    # The analyst's judgement of the event as a whole (ICD 203 likelihood, analytic confidence).
    likelihood: Mapped[str | None] = mapped_column(String(20), nullable=True)
    likelihood_rationale: Mapped[str | None] = mapped_column(Text, nullable=True)
    confidence: Mapped[str | None] = mapped_column(String(10), nullable=True)
    confidence_rationale: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Full-text document: title, summary, source quotes and catalogue names (app.queries.search_document).
    # Deferred: only SQL reads it, and loading it with every page of rows costs a third of their load.
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR, nullable=True, deferred=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    # Lets a client retry a create without making a duplicate.
    client_token: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True, unique=True)
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deleted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    # When the review clock last started: creation, "reviewed, still unconfirmed" or a status change
    # (app/domain/review.py says when a claimed or reported event is due again).
    review_clock_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

    countries: Mapped[list[EventCountry]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="EventCountry.position"
    )
    actors: Mapped[list[EventActor]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="EventActor.position"
    )
    systems: Mapped[list[EventSystem]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="EventSystem.position"
    )
    sources: Mapped[list[Source]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="Source.position"
    )
    # Read only: files are written by app.services.evidence, and go with the event's row by the foreign key.
    files: Mapped[list[SourceFile]] = relationship(
        viewonly=True, order_by="[SourceFile.source_position, SourceFile.id]"
    )

    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(KINDS)})", name="kind_known"),
        CheckConstraint(f"status IN ({sql_in(STATUSES)})", name="status_known"),
        CheckConstraint("stage_override IS NULL OR stage_override BETWEEN 0 AND 6", name="stage_range"),
        CheckConstraint(f"date_precision IN ({sql_in(PRECISIONS)})", name="precision_known"),
        CheckConstraint(
            f"date_end_precision IS NULL OR date_end_precision IN ({sql_in(PRECISIONS)})",
            name="end_precision_known",
        ),
        CheckConstraint("(date_end IS NULL) = (date_end_precision IS NULL)", name="end_with_precision"),
        CheckConstraint("date_end IS NULL OR date_end >= date_start", name="end_after_start"),
        CheckConstraint(_normalised_date_check("date_start", "date_precision"), name="start_normalised"),
        CheckConstraint(_normalised_date_check("date_end", "date_end_precision"), name="end_normalised"),
        CheckConstraint("length(btrim(title)) > 0", name="title_not_blank"),
        CheckConstraint("version > 0", name="version_positive"),
        CheckConstraint("origin_count >= 0", name="origin_count_non_negative"),
        CheckConstraint(
            f"likelihood IS NULL OR likelihood IN ({sql_in(LIKELIHOODS)})", name="likelihood_known"
        ),
        CheckConstraint(
            f"confidence IS NULL OR confidence IN ({sql_in(CONFIDENCES)})", name="confidence_known"
        ),
        # The timeline's keyset order; partial so deleted events cost nothing.
        Index(
            "ix_events_timeline",
            text("date_start DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "ix_events_kind_timeline",
            "kind",
            text("date_start DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_events_status", "status", postgresql_where=text("deleted_at IS NULL")),
        Index("ix_events_stage", "stage", postgresql_where=text("deleted_at IS NULL")),
        Index("ix_events_period", "period_end", "date_start", postgresql_where=text("deleted_at IS NULL")),
        Index("ix_events_tags", "tags", postgresql_using="gin"),
        Index("ix_events_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_events_deleted_at", "deleted_at", postgresql_where=text("deleted_at IS NOT NULL")),
        # The facts copy's start-up read (migration 0009): every column it takes from events, read by an
        # index-only scan of a narrow index instead of the wide heap (summaries, search documents).
        Index(
            "ix_events_facts",
            "date_start",
            "id",
            postgresql_include=[
                "period_end",
                "date_precision",
                "kind",
                "status",
                "stage",
                "origin_count",
                "likelihood",
                "confidence",
                "review_clock_at",
            ],
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )


class EventCountry(Base):
    """A country named by an event, in one role (supplier, recipient, target, intermediary)."""

    __tablename__ = "event_countries"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    country_code: Mapped[str] = mapped_column(ForeignKey("countries.code"), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")

    event: Mapped[Event] = relationship(back_populates="countries")
    country: Mapped[Country] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(f"role IN ({sql_in(COUNTRY_ROLES)})", name="role_known"),
        Index("ix_event_countries_lookup", "country_code", "role", "event_id"),
    )


class EventActor(Base):
    """An actor's part in an event (speaker, requester, financier...)."""

    __tablename__ = "event_actors"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="RESTRICT"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")

    event: Mapped[Event] = relationship(back_populates="actors")
    actor: Mapped[Actor] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(f"role IN ({sql_in(ACTOR_ROLES)})", name="role_known"),
        Index("ix_event_actors_lookup", "actor_id", "event_id"),
    )


class EventSystem(Base):
    """A catalogued system named by an event, with an optional quantity or quantity note."""

    __tablename__ = "event_systems"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id", ondelete="RESTRICT"), primary_key=True)
    quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quantity_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")

    event: Mapped[Event] = relationship(back_populates="systems")
    system: Mapped[System] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint("quantity IS NULL OR quantity >= 0", name="quantity_non_negative"),
        Index("ix_event_systems_lookup", "system_id", "event_id"),
    )


class Source(Base):
    """A citation supporting an event, graded on the NATO Admiralty scale."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    publisher: Mapped[str] = mapped_column(Text, nullable=False)
    # Who first reported it: the publisher's own origin (its name or an alias folds like the publisher)
    # unless the publisher relays another's report. Always set, so corroboration is one count distinct.
    origin_id: Mapped[int] = mapped_column(ForeignKey("origins.id", ondelete="RESTRICT"), nullable=False)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    published_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    published_precision: Mapped[str | None] = mapped_column(String(5), nullable=True)
    quote: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reliability: Mapped[str] = mapped_column(String(1), nullable=False, server_default="F")
    credibility: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="6")
    # Evidence: where a copy of the page was archived, and the day the analyst read it.
    archive_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    accessed_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    event: Mapped[Event] = relationship(back_populates="sources")
    origin: Mapped[Origin] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(f"reliability IN ({sql_in(RELIABILITY)})", name="reliability_grade"),
        CheckConstraint(
            f"credibility IN ({', '.join(str(c) for c in CREDIBILITY)})", name="credibility_grade"
        ),
        CheckConstraint("length(btrim(publisher)) > 0", name="publisher_not_blank"),
        CheckConstraint("url IS NULL OR url ~* '^https?://'", name="url_http"),
        CheckConstraint("archive_url IS NULL OR archive_url ~* '^https?://'", name="archive_url_http"),
        CheckConstraint(
            "(published_on IS NULL) = (published_precision IS NULL)", name="published_with_precision"
        ),
        CheckConstraint(
            f"published_precision IS NULL OR published_precision IN ({sql_in(PRECISIONS)})",
            name="published_precision_known",
        ),
        Index("ix_sources_event_id", "event_id"),
        Index("ix_sources_publisher_lower", text("lower(publisher)"), "event_id"),
        Index("ix_sources_reliability", "reliability", "event_id"),
        Index("ix_sources_origin", "origin_id", "event_id"),
    )


class SourceFile(Base):
    """A file kept as evidence for one source of an event (a PDF, an image, a saved page).

    Tied to the event and the source's position rather than to the source row: an edit rewrites the
    sources, and the files follow the source they were attached to (app.services.evidence). The bytes
    live here, in their own table, so event rows stay narrow and app processes keep no files.
    """

    __tablename__ = "source_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=False)
    source_position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    filename: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str] = mapped_column(Text, nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    # Deferred: listing an event's files (page, API, export) never loads their bytes.
    data: Mapped[bytes] = mapped_column(BYTEA, nullable=False, deferred=True)
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)

    __table_args__ = (
        CheckConstraint("size > 0", name="size_positive"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        CheckConstraint("source_position >= 0", name="position_non_negative"),
        CheckConstraint("length(btrim(filename)) > 0", name="filename_not_blank"),
        Index("ix_source_files_event_id", "event_id", "source_position"),
    )


class EventLine(Base):
    """An event's CSV export line as app.csvio formats it, of format version `fmt`.

    Written by the write path in the event's own transaction (app.queries.transfer.export_lines), so a line
    of the
    current version always shows the event as committed.
    """

    __tablename__ = "event_lines"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    fmt: Mapped[int] = mapped_column(Integer, nullable=False)
    line: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (Index("ix_event_lines_fmt", "fmt"),)


class EventLink(Base):
    """A typed link from one event (the source) to another (the target): "#12 denies #7"."""

    __tablename__ = "event_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=False)
    target_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=False)
    type: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)

    source: Mapped[Event] = relationship(foreign_keys=[source_id])
    target: Mapped[Event] = relationship(foreign_keys=[target_id])

    __table_args__ = (
        CheckConstraint(f"type IN ({sql_in(LINK_TYPES)})", name="type_known"),
        CheckConstraint("source_id <> target_id", name="not_itself"),
        UniqueConstraint("source_id", "target_id", "type", name="uq_event_links_pair_type"),
        Index("ix_event_links_target_id", "target_id"),
    )
