"""What a desk uses to follow events: saved views (and when each user opened them), feed tokens, notes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, created_at_column
from app.models.users import HashedToken, User

VIEW_PATHS = ("/", "/dyads")  # the pages whose query string a view keeps


class SavedView(Base):
    """A named filter of the timeline or the dyads page, private to its owner or shared with the desk."""

    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    path: Mapped[str] = mapped_column(String(20), nullable=False, server_default="/")
    # The filter as a query string, kept as written (an actor later deleted stays in, to be reported).
    query: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    shared: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()

    owner: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint("path IN ('/', '/dyads')", name="path_known"),
        CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),
        Index("uq_saved_views_owner_name", "owner_id", text("lower(name)"), unique=True),
    )


class SavedViewOpen(Base):
    """When one user last opened one view: what the Views menu counts "new" from."""

    __tablename__ = "saved_view_opens"

    view_id: Mapped[int] = mapped_column(ForeignKey("saved_views.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class FeedToken(HashedToken, Base):
    """A read-only token for Atom feeds, stored hashed; it opens feeds only (no page, no API)."""

    __tablename__ = "feed_tokens"
    __table_args__ = (Index("ix_feed_tokens_user_id", "user_id"),)


class EventNote(Base):
    """A reader's remark on an event, in Markdown: not one of the event's fields, outside its version."""

    __tablename__ = "event_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    # Kept as written so a note still names its author after the account is removed.
    author_name: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        # The app's limit is a setting (NOTE_MAX_LENGTH); this bound only stops a runaway write.
        CheckConstraint("length(body) BETWEEN 1 AND 100000", name="body_length"),
        Index("ix_event_notes_event_id", "event_id", "created_at"),
    )
