"""Uploads checked by the import preview (or the event form's evidence files while it asks a question),
kept on the server until they are taken or expire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column


class StagedImport(Base):
    """One previewed CSV (or one form's kept evidence files, `options["kind"] == "evidence"`): the id is the
    SHA-256 of a one-time token that only its uploader's page holds."""

    __tablename__ = "staged_imports"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # the file as checked (UTF-8)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)  # of content: damage is refused
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (Index("ix_staged_imports_user_id", "user_id"),)
