"""Reference data: countries (ISO 3166-1), actors and the systems catalogue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.vocab import ACTOR_TYPES, sql_in
from app.models.base import Base, created_at_column


class Country(Base):
    """An ISO 3166-1 country, keyed by its alpha-3 code; rows come from pycountry."""

    __tablename__ = "countries"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    alpha2: Mapped[str] = mapped_column(String(2), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (CheckConstraint("code ~ '^[A-Z]{3}$'", name="code_format"),)


class Actor(Base):
    """A person, government body, military unit, company or organisation that appears in events."""

    __tablename__ = "actors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    # Folded (case- and accent-free) name and aliases: what lookups and filters match against.
    match_keys: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    type: Mapped[str] = mapped_column(String(20), nullable=False, server_default="person")
    country_code: Mapped[str | None] = mapped_column(ForeignKey("countries.code"), nullable=True)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(f"type IN ({sql_in(ACTOR_TYPES)})", name="type_known"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
        Index("ix_actors_match_keys", "match_keys", postgresql_using="gin"),
    )


class System(Base):
    """A catalogued piece of materiel (missile, aircraft, ship, radar...)."""

    __tablename__ = "systems"

    id: Mapped[int] = mapped_column(primary_key=True)
    designation: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    match_keys: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    category: Mapped[str | None] = mapped_column(Text, nullable=True)
    origin_code: Mapped[str | None] = mapped_column(ForeignKey("countries.code"), nullable=True)
    # The family it is a variant of (Geran-2 -> Shahed-136): `system=Shahed-136` finds its variants too.
    # Never a cycle: app/services/reference.py refuses one, under a lock so two edits cannot make one.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("systems.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint("length(btrim(designation)) > 0", name="designation_not_blank"),
        CheckConstraint("parent_id <> id", name="not_own_parent"),
        Index("ix_systems_match_keys", "match_keys", postgresql_using="gin"),
    )


class Origin(Base):
    """Who first reported a piece of information (an outlet, agency, official or document).

    A source's publisher is who the analyst read; its origin may be the publisher itself or another
    (a relay). Two sources with one origin are one piece of corroboration, however they are spelt.
    """

    __tablename__ = "origins"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    match_keys: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
        Index("ix_origins_match_keys", "match_keys", postgresql_using="gin"),
    )
