"""The event form's evidence files: uploads read from the multipart post, checked, turned into a FilePlan.

Files are posted per source row (`sources-{i}-files`, several per input); stored files travel in the row
as ids (`sources-{i}-file_ids`) with those ticked for removal (`sources-{i}-drop_files`). A bad file puts
its message beside its row's file input and nothing is saved; a browser never re-sends chosen files, so a
form that comes back names the files chosen and asks for them again.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import UploadFile

from app.config import get_settings
from app.domain.evidence_types import EvidenceRejected, mebibytes
from app.models import SourceFile
from app.services.evidence import CheckedFile, FilePlan, check_file
from app.web.forms import ROW_EXTRA_FIELDS, ROW_FIELDS, EventForm

_SOURCE_KEY = re.compile(r"^sources-(\d{1,3})-([a-z_]+)$")
FILES_PER_SOURCE = 20
CHOOSE_AGAIN = "Choose the files again: a browser does not keep chosen files when a form comes back."

Posted = dict[int, list[tuple[str, bytes]]]


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


def file_plan(form: EventForm, uploads: Posted, filled: list[int]) -> FilePlan:
    """Check every chosen file and say per source what it keeps and gains; messages go into form.errors.

    `filled` is, for each source of the input, its row in the form (blank rows are not sources).
    """
    limit = get_settings().max_evidence_bytes
    rows = form.rows.get("sources", [])
    plan = FilePlan(known=set(_ids(form.get("known_files"))))
    for position, row_index in enumerate(filled):
        row = rows[row_index]
        dropped = set(_ids(row.get("drop_files", "")))
        plan.keep[position] = [i for i in _ids(row.get("file_ids", "")) if i not in dropped]
    for row_index, files in uploads.items():
        key = f"sources-{row_index}-files"
        if row_index not in filled:
            form.errors[key] = "These files need a source: enter its publisher too. " + CHOOSE_AGAIN
            continue
        problems: list[str] = []
        checked: list[CheckedFile] = []
        for name, data in files[:FILES_PER_SOURCE]:
            try:
                checked.append(check_file(name, data, limit))
            except EvidenceRejected as exc:
                problems.append(str(exc))
        if len(files) > FILES_PER_SOURCE:
            problems.append(f"A source keeps at most {FILES_PER_SOURCE} files per save.")
        if problems:
            form.errors[key] = " ".join(problems) + " " + CHOOSE_AGAIN
        else:
            plan.add[filled.index(row_index)] = checked
    return plan


def files_context(files: list[SourceFile]) -> dict[int, SourceFile]:
    """Stored files by id, for the form to show each row's kept files."""
    return {f.id: f for f in files}


def limit_words() -> str:
    """The per-file size limit as the form's hint says it."""
    return mebibytes(get_settings().max_evidence_bytes)
