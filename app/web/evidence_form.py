"""The event form's evidence files: uploads read from the multipart post, checked, turned into a FilePlan.

Files are posted per source row (`sources-{i}-files`, several per input); stored files travel in the row
as ids (`sources-{i}-file_ids`) with those ticked for removal (`sources-{i}-drop_files`). A bad file puts
its message beside its row's file input and nothing is saved. A browser never re-sends chosen files, so when
the form comes back (an error, a question) the server keeps the checked ones for an hour (a staged upload,
app.queries.transfer.staging, kind "evidence"): the page carries its one-time token (`kept_files`) and per
row the files' numbers in it (`sources-{i}-kept`), and the answering post takes them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from app.config import get_settings
from app.domain.evidence_types import EvidenceRejected, mebibytes
from app.models import SourceFile
from app.queries.transfer.staging import discard, locked, stage_bytes
from app.services.evidence import CheckedFile, FilePlan, check_file
from app.web.forms import ROW_EXTRA_FIELDS, ROW_FIELDS, EventForm

_SOURCE_KEY = re.compile(r"^sources-(\d{1,3})-([a-z_]+)$")
FILES_PER_SOURCE = 20
CHOOSE_AGAIN = "Choose the files again: a browser does not keep chosen files when a form comes back."
KIND = "evidence"  # the staged uploads' kind for files kept while the form asks a question
TOKEN_FIELD = "kept_files"  # noqa: S105 (a form field's name)

Posted = dict[int, list[tuple[str, bytes]]]
Kept = dict[int, list[CheckedFile]]


async def posted_uploads(request: Request) -> Posted:
    """Source row (its place in the form's rows) -> the files chosen for it, read up to the limit + 1 byte."""
    form = await request.form()  # parsed once per request; posted_form reads the same object
    limit = get_settings().max_evidence_bytes
    rows: set[int] = set()
    chosen: dict[int, list[tuple[str, bytes]]] = {}
    for name, value in form.multi_items():
        m = _SOURCE_KEY.match(name)
        if not m:
            continue
        idx, key = int(m[1]), m[2]
        if isinstance(value, str):
            if key in ROW_FIELDS["sources"] or key in ROW_EXTRA_FIELDS["sources"]:
                rows.add(idx)
        elif key == "files" and isinstance(value, UploadFile) and value.filename:
            # One byte past the limit is enough to say "too large" without holding the rest.
            chosen.setdefault(idx, []).append((value.filename, await value.read(limit + 1)))
    place = {idx: n for n, idx in enumerate(sorted(rows))}
    return {place[idx]: files for idx, files in chosen.items() if idx in place}


PostedUploads = Annotated[Posted, Depends(posted_uploads)]


def remember_chosen(form: EventForm, uploads: Posted) -> None:
    """Note in each row which files were chosen, for the reminder shown if the form comes back."""
    rows = form.rows.get("sources", [])
    for position, files in uploads.items():
        if position < len(rows):
            rows[position]["files_chosen"] = ", ".join(name for name, _ in files)


def _ids(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip().isdecimal()]


def _unpack(content: bytes, options: dict[str, Any]) -> list[CheckedFile]:
    """The files of a kept upload, each checked against its SHA-256 (ValueError when one was damaged)."""
    files, at = [], 0
    for meta in options.get("files", []):
        data = content[at : at + int(meta["size"])]
        at += len(data)
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise ValueError("damaged")
        files.append(CheckedFile(str(meta["filename"]), str(meta["content_type"]), data, meta["sha256"]))
    return files


def take_kept(db: Session, form: EventForm, user_id: int) -> Kept:
    """Source row -> the files the server kept for it while the form asked a question, taken in this
    transaction (they come back if it rolls back). A token that is used, expired or another user's puts a
    message beside each row that had kept files: they are never dropped silently.
    """
    token = form.get(TOKEN_FIELD)  # left in the form: keep_for_answer replaces it, a save ignores it
    rows = form.rows.get("sources", [])
    wanted = {i: (_ids(row.pop("kept", "")), row.pop("kept_names", "")) for i, row in enumerate(rows)}
    wanted = {i: w for i, w in wanted.items() if w[0]}
    if not wanted:
        return {}
    found = locked(db, token, KIND) if token else None
    files: list[CheckedFile] = []
    why = "they were already saved or have expired"
    if found is not None:
        staged, expired = found
        if staged.user_id != user_id:
            why = "they were kept for another account"
        elif expired:
            why = "they are kept for an hour and that hour has passed"
        else:
            try:
                files = _unpack(staged.content, staged.options)
            except (ValueError, KeyError, TypeError):
                why = "they were damaged while they waited"
            db.delete(staged)
            db.flush()
    out: Kept = {}
    for i, (numbers, names) in wanted.items():
        picked = [files[n] for n in numbers if n < len(files)]
        if len(picked) == len(numbers):
            out[i] = picked
        else:
            gone = f"The files kept for this source ({names}) are gone: {why}."
            form.errors[f"sources-{i}-files"] = f"{gone} {CHOOSE_AGAIN}"
    return out


def keep_for_answer(db: Session, form: EventForm, user_id: int, plan: FilePlan, filled: list[int]) -> None:
    """Keep the checked new files on the server while the form asks a question, and say so in each row.

    Stored in this transaction: the caller commits before the page goes out (or after a rollback).
    """
    previous = form.values.pop(TOKEN_FIELD, "")
    if previous:
        discard(db, previous, user_id, KIND)
    rows = form.rows.get("sources", [])
    kept: list[CheckedFile] = []
    for position, files in sorted(plan.add.items()):
        row = rows[filled[position]]
        numbers = list(range(len(kept), len(kept) + len(files)))
        kept.extend(files)
        row["kept"] = ",".join(map(str, numbers))
        row["kept_names"] = ", ".join(f.filename for f in files)
        row.pop("files_chosen", None)
    if not kept:
        return
    meta = [
        {"filename": f.filename, "content_type": f.content_type, "size": f.size, "sha256": f.sha256}
        for f in kept
    ]
    content = b"".join(f.data for f in kept)
    form.values[TOKEN_FIELD] = stage_bytes(db, user_id, content, {"kind": KIND, "files": meta})


def file_plan(form: EventForm, uploads: Posted, filled: list[int], kept: Kept | None = None) -> FilePlan:
    """Check every chosen file and say per source what it keeps and gains; messages go into form.errors.

    `filled` is, for each source of the input, its row in the form (blank rows are not sources); `kept`
    the files the server kept for rows while the form asked a question (already checked). A row with a bad
    file still lists its good ones in the plan: the error stops the save, and they are kept for the answer.
    """
    limit = get_settings().max_evidence_bytes
    rows = form.rows.get("sources", [])
    plan = FilePlan(known=set(_ids(form.get("known_files"))))
    for position, row_index in enumerate(filled):
        row = rows[row_index]
        dropped = set(_ids(row.get("drop_files", "")))
        plan.keep[position] = [i for i in _ids(row.get("file_ids", "")) if i not in dropped]
    kept = kept or {}
    for row_index in sorted(set(uploads) | set(kept)):
        files = uploads.get(row_index, [])
        key = f"sources-{row_index}-files"
        if row_index not in filled:
            form.errors[key] = "These files need a source: enter its publisher too. " + CHOOSE_AGAIN
            continue
        problems: list[str] = []
        checked: list[CheckedFile] = list(kept.get(row_index, []))
        for name, data in files[:FILES_PER_SOURCE]:
            try:
                checked.append(check_file(name, data, limit))
            except EvidenceRejected as exc:
                problems.append(str(exc))
        if len(files) > FILES_PER_SOURCE:
            problems.append(f"A source keeps at most {FILES_PER_SOURCE} files per save.")
        if problems:
            form.errors[key] = " ".join(problems) + " " + CHOOSE_AGAIN
        if checked:
            plan.add[filled.index(row_index)] = checked
    return plan


def files_context(files: list[SourceFile]) -> dict[int, SourceFile]:
    """Stored files by id, for the form to show each row's kept files."""
    return {f.id: f for f in files}


def limit_words() -> str:
    """The per-file size limit as the form's hint says it."""
    return mebibytes(get_settings().max_evidence_bytes)
