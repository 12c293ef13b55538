"""Checked uploads kept between a question and its answer, keyed by a one-time token.

The import preview stores the CSV (any size up to the upload limit) and hands the page a random token; only
its SHA-256 is stored. The commit takes the row with a lock and deletes it in the import's own
transaction, so a second submit (or a concurrent one) finds nothing to import. The event form keeps its
checked evidence files the same way while it asks a question (kind "evidence", app.web.evidence_form).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from app.auth.tokens import new_token, sha256
from app.models import StagedImport

# How long a preview can be committed; after that the file must be uploaded (and checked) again.
LIFETIME = timedelta(hours=1)
# Previews a user may have waiting at once (other tabs, a file checked twice); older ones are dropped.
PER_USER = 5
IMPORT = "import"  # the kind of an import preview's row; other kinds say theirs in options["kind"]


def _kind() -> Any:
    return func.coalesce(StagedImport.options["kind"].astext, IMPORT)


class StagingRefused(Exception):
    """The token names no usable upload; `status` and the message say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Staged:
    """An upload taken for import: its text and the options saved with the preview."""

    text: str
    options: dict[str, Any]


def purge(session: Session, user_id: int | None = None, kind: str = IMPORT) -> None:
    """Delete expired uploads (everyone's) and, for `user_id`, all but its newest PER_USER - 1 of `kind`.

    A row an import is committing right now is locked: it is skipped rather than waited for.
    """
    stale = StagedImport.created_at < func.now() - LIFETIME
    if user_id is not None:
        mine = and_(StagedImport.user_id == user_id, _kind() == kind)
        newest = select(StagedImport.id).where(mine).order_by(StagedImport.created_at.desc())
        newest = newest.limit(PER_USER - 1)
        stale = or_(stale, and_(mine, StagedImport.id.not_in(newest)))
    doomed = select(StagedImport.id).where(stale).with_for_update(skip_locked=True)
    session.execute(delete(StagedImport).where(StagedImport.id.in_(doomed.scalar_subquery())))


def stage(session: Session, user_id: int, text: str, options: dict[str, Any]) -> str:
    """Keep a checked upload for its commit; return the one-time token (the caller commits)."""
    return stage_bytes(session, user_id, text.encode(), options)


def stage_bytes(
    session: Session, user_id: int, content: bytes, options: dict[str, Any], token: str | None = None
) -> str:
    """Keep checked bytes (of `options["kind"]`, import by default) until taken; return the one-time token.

    `token` when the caller had to hand it out before (new_token()); the caller commits.
    """
    purge(session, user_id, options.get("kind", IMPORT))
    token = token or new_token()
    session.add(
        StagedImport(
            id=sha256(token),
            user_id=user_id,
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            options=options,
            created_at=func.clock_timestamp(),  # the real time: keeps "newest" exact within a transaction
        )
    )
    session.flush()
    return token


def discard(session: Session, token: str, user_id: int, kind: str) -> None:
    """Forget the user's upload of `kind` for `token` if it is still there (a newer one replaces it)."""
    mine = and_(StagedImport.id == sha256(token), StagedImport.user_id == user_id, _kind() == kind)
    session.execute(delete(StagedImport).where(mine))


def locked(session: Session, token: str, kind: str = IMPORT) -> tuple[StagedImport, bool] | None:
    """The row of `kind` for `token`, locked, and whether it expired; None when there is none."""
    return session.execute(
        select(StagedImport, StagedImport.created_at < func.now() - LIFETIME)
        .where(StagedImport.id == sha256(token), _kind() == kind)
        .with_for_update()  # a concurrent submit of the same token waits here, then finds it gone
    ).one_or_none()


def take(session: Session, token: str, user_id: int | None) -> Staged:
    """The upload for `token`, deleted in the caller's transaction (kept if it rolls back).

    Raises StagingRefused when the token is unknown or used (409), another user's (403), expired (410)
    or its content damaged (422).
    """
    row = locked(session, token)
    if row is None:
        raise StagingRefused(
            409,
            "This preview was already imported or has expired, so nothing was added. Its events are on "
            "the timeline if it was imported; otherwise upload the file again.",
        )
    staged, expired = row
    if staged.user_id != user_id:
        raise StagingRefused(
            403, "This preview belongs to another account. Upload the file yourself to import it."
        )
    if expired:
        raise StagingRefused(
            410, "This preview expired (a checked file is kept for an hour). Upload the file again."
        )
    if hashlib.sha256(staged.content).hexdigest() != staged.sha256:
        raise StagingRefused(422, "The checked file was damaged while it waited; upload it again.")
    session.delete(staged)
    session.flush()
    return Staged(staged.content.decode(), dict(staged.options))
