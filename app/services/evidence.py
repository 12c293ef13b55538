"""Evidence files on sources: check, attach, move with their source, remove; each add and remove audited.

A file belongs to an event and to one of its sources by position (`source_files.source_position`). The
event's sources are rewritten by every edit, so a save says, per source, which stored files it keeps (a
`FilePlan`); a save without one (the API's PUT and PATCH) matches each stored source to a new one by its
identity (`source_key`), so files follow their source. Every change re-stores the event's export line, which
lists the files' SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.evidence_types import EvidenceRejected, identify, mebibytes
from app.domain.textkeys import fold
from app.models import Event, SourceFile
from app.queries.transfer.export_lines import store_lines
from app.services.audit import Who, record

FILENAME_MAX = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


class FileNotFound(LookupError):
    """No file of that number on that event's source."""


class DuplicateFile(ValueError):
    """The source already keeps a file with the same content (same SHA-256)."""


class AmbiguousSources(ValueError):
    """Two new sources have the identity of a stored source that keeps files: which one keeps them?"""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position  # the new source (from 0) the message is about
        self.message = message


SOURCE_REMOVED = "its source was removed"


@dataclass(frozen=True)
class CheckedFile:
    """An upload that passed the checks: a safe name, its type by content, size and SHA-256."""

    filename: str
    content_type: str
    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        return len(self.data)


@dataclass
class FilePlan:
    """What a form save does with files, per source position: the stored ids it keeps and new files.

    `known` are the ids the form was shown: a file it did not know (added meanwhile, through the API) is
    neither kept nor dropped by it, and stays on its source.
    """

    keep: dict[int, list[int]] = field(default_factory=dict)
    add: dict[int, list[CheckedFile]] = field(default_factory=dict)
    known: set[int] = field(default_factory=set)
    reason: str | None = None  # the save's reason, recorded with each file it removes


def clean_filename(name: str) -> str:
    """The name a browser or client sent, without any folder part or control characters, at most 200."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = unicodedata.normalize("NFC", _UNSAFE.sub("", base)).strip().strip(".") or "file"
    if len(base) > FILENAME_MAX:
        stem, dot, ext = base.rpartition(".")
        base = (
            (stem[: FILENAME_MAX - len(ext) - 1] + dot + ext)
            if dot and len(ext) < 12
            else base[:FILENAME_MAX]
        )
    return base


def check_file(filename: str, data: bytes, limit: int) -> CheckedFile:
    """The upload ready to keep, or EvidenceRejected saying why not (empty, too large, not what it says)."""
    name = clean_filename(filename)
    kind = identify(name, data, limit)
    return CheckedFile(name, kind.content_type, data, hashlib.sha256(data).hexdigest())


def label(f: SourceFile | CheckedFile, position: int) -> str:
    """A file as the history shows it: 'report.pdf (application/pdf, 12 KiB, sha256:ab12…) on source 1'."""
    return f"{f.filename} ({f.content_type}, {mebibytes(f.size)}, sha256:{f.sha256}) on source {position + 1}"


def event_files(session: Session, event_ids: Iterable[int]) -> dict[int, list[SourceFile]]:
    """Each event's files (without their bytes) in source then upload order."""
    ids = sorted(set(event_ids))
    out: dict[int, list[SourceFile]] = {i: [] for i in ids}
    if not ids:
        return out
    stmt = (
        select(SourceFile)
        .where(SourceFile.event_id.in_(ids))
        .order_by(SourceFile.event_id, SourceFile.source_position, SourceFile.id)
    )
    for f in session.scalars(stmt):
        out[f.event_id].append(f)
    return out


def by_source(files: Sequence[SourceFile]) -> dict[int, list[SourceFile]]:
    """One event's files grouped by source position."""
    out: dict[int, list[SourceFile]] = {}
    for f in files:
        out.setdefault(f.source_position, []).append(f)
    return out


def _insert(
    session: Session, event: Event, position: int, checked: CheckedFile, who: Who | None
) -> SourceFile:
    row = SourceFile(
        event_id=event.id,
        source_position=position,
        filename=checked.filename,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        data=checked.data,
        created_by=who.id if who else None,
    )
    session.add(row)
    record(
        session,
        who,
        "file_add",
        "event",
        event.id,
        {"file": {"before": None, "after": label(checked, position)}},
    )
    return row


def _delete(session: Session, f: SourceFile, who: Who | None, reason: str | None = None) -> None:
    record(
        session,
        who,
        "file_remove",
        "event",
        f.event_id,
        {"file": {"before": label(f, f.source_position), "after": None}},
        reason,
    )
    session.delete(f)


def apply_plan(session: Session, event: Event, plan: FilePlan | None, who: Who | None) -> bool:
    """Make the event's files what the save says (called by the event writes before the line is stored).

    Without a plan, files stay on their position and those of a source that no longer exists go.
    Returns True when a file was added, moved or removed.
    """
    changed = _apply(session, event, plan, who)
    if changed:
        session.flush()
        _forget_files(session, event.id)
    return changed


def _forget_files(session: Session, event_id: int) -> None:
    """Expire the event's loaded file list, if this session holds the event: it is out of date."""
    loaded = session.identity_map.get(session.identity_key(Event, event_id))
    if loaded is not None:
        session.expire(loaded, ["files"])


class _Cited(Protocol):
    publisher: str
    url: str | None
    title: str | None
    published: str | None


def source_key(source: _Cited) -> tuple[str, ...]:
    """What makes a source the same source across an edit: its URL when it has one (a fixed publisher
    or title typo keeps its files), else its publisher, title and published date (case and accents aside).
    """
    url = (source.url or "").strip().rstrip("/")
    if url:
        return ("url", url)
    return ("cited", fold(source.publisher), fold(source.title or ""), (source.published or "").strip())


def _shown(source: _Cited) -> str:
    return source.url.strip() if source.url and source.url.strip() else f"“{source.publisher}”"


def follow_sources(
    session: Session, event_id: int, old: Sequence[_Cited], new: Sequence[_Cited]
) -> FilePlan | None:
    """The plan that moves each stored file to the new source with its source's identity (`source_key`),
    removing the files of a source no longer there; None when the sources keep their identities and order.

    AmbiguousSources when a stored source keeping files matches two new sources, or two stored sources
    keeping files match one: guessing could pin evidence to the wrong source.
    """
    old_keys, new_keys = [source_key(s) for s in old], [source_key(s) for s in new]
    if old_keys == new_keys:
        return None
    stored = event_files(session, [event_id])[event_id]
    plan = FilePlan(known={f.id for f in stored}, reason=SOURCE_REMOVED)
    for position, files in sorted(by_source(stored).items()):
        if position >= len(old_keys):
            continue  # no stored source of that number: its files go (not in keep)
        key = old_keys[position]
        matches = [i for i, k in enumerate(new_keys) if k == key]
        if not matches:
            continue
        if len(matches) > 1:
            raise AmbiguousSources(
                matches[1],
                f"Sources {matches[0] + 1} and {matches[1] + 1} are both {_shown(new[matches[1]])}, the "
                f"identity of stored source {position + 1}, which keeps files: which one keeps them is not "
                "clear. Give them different URLs (or titles or published dates), or edit in the web form.",
            )
        twins = [i for i, k in enumerate(old_keys) if k == key and i != position]
        if twins:
            raise AmbiguousSources(
                matches[0],
                f"Stored sources {position + 1} and {twins[0] + 1} are both {_shown(old[position])} and one "
                f"keeps files: which of them source {matches[0] + 1} continues is not clear. Keep the "
                "sources in their stored order, or edit in the web form.",
            )
        plan.keep.setdefault(matches[0], []).extend(f.id for f in files)
    return plan


def _apply(session: Session, event: Event, plan: FilePlan | None, who: Who | None) -> bool:
    stored = event_files(session, [event.id])[event.id]
    count = len(event.sources)
    changed = False
    if plan is None:
        for f in stored:
            if f.source_position >= count:
                _delete(session, f, who, SOURCE_REMOVED)
                changed = True
        return changed
    target: dict[int, int] = {}
    for position, ids in plan.keep.items():
        for file_id in ids:
            target.setdefault(file_id, position)  # a forged id listed twice stays on its first source
    kept: set[tuple[int, str]] = set()
    for f in stored:
        moved_to = target.get(f.id)
        if moved_to is None and f.id not in plan.known:
            moved_to = f.source_position  # added after the form was loaded: not the form's to drop
        if moved_to is None or moved_to >= count:
            _delete(session, f, who, plan.reason)
            changed = True
            continue
        if moved_to != f.source_position:
            f.source_position = moved_to
            changed = True
        kept.add((moved_to, f.sha256))
    for position, files in sorted(plan.add.items()):
        for checked in files:
            # The same bytes chosen again for a source that keeps them: already kept, nothing to add.
            if position < count and (position, checked.sha256) not in kept:
                kept.add((position, checked.sha256))
                _insert(session, event, position, checked, who)
                changed = True
    return changed


def add_file(
    session: Session, event: Event, position: int, checked: CheckedFile, who: Who | None
) -> SourceFile:
    """Attach one checked file to source `position` of a visible event (the API's upload); audited.

    DuplicateFile when that source already keeps the same content.
    """
    same = session.scalars(
        select(SourceFile.id).where(
            SourceFile.event_id == event.id,
            SourceFile.source_position == position,
            SourceFile.sha256 == checked.sha256,
        )
    ).first()
    if same is not None:
        raise DuplicateFile(f"source {position + 1} already keeps this file (file {same}, same SHA-256)")
    row = _insert(session, event, position, checked, who)
    session.flush()
    _forget_files(session, event.id)
    store_lines(session, [event.id])
    return row


def find_file(session: Session, event_id: int, file_id: int, position: int | None = None) -> SourceFile:
    """One file of an event (of source `position` when given), without its bytes; else FileNotFound."""
    stmt = select(SourceFile).where(SourceFile.id == file_id, SourceFile.event_id == event_id)
    if position is not None:
        stmt = stmt.where(SourceFile.source_position == position)
    found = session.scalars(stmt).first()
    if found is None:
        raise FileNotFound(file_id)
    return found


def remove_file(session: Session, f: SourceFile, who: Who | None, reason: str | None = None) -> None:
    """Remove one file (the API's delete); audited, the event's line re-stored."""
    event_id = f.event_id
    _delete(session, f, who, reason)
    session.flush()
    _forget_files(session, event_id)
    store_lines(session, [event_id])


__all__ = [
    "AmbiguousSources",
    "CheckedFile",
    "DuplicateFile",
    "EvidenceRejected",
    "FileNotFound",
    "FilePlan",
    "add_file",
    "apply_plan",
    "by_source",
    "check_file",
    "event_files",
    "find_file",
    "follow_sources",
    "remove_file",
    "source_key",
]
