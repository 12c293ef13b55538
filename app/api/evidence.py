"""/api/v1 evidence files: upload to a source (multipart), list, download (attachment only), delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Path, Query, Security, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.api.events import AUTH_ERRORS, COMMON_ERRORS, EventId, bearer
from app.api.schemas import FileOut, Problem
from app.auth.deps import AnalystDep, SignedInViewerDep, ViewerDep
from app.config import get_settings
from app.db import SessionDep
from app.domain.evidence_types import ACCEPTED_WORDS, EvidenceRejected, mebibytes
from app.models import Event
from app.services.events import EventNotFound, load_event
from app.services.evidence import DuplicateFile, FileNotFound, add_file, check_file, find_file, remove_file
from app.web.evidence import file_response

router = APIRouter(tags=["evidence"], dependencies=[Security(bearer)], responses=COMMON_ERRORS)

SourceNumber = Annotated[
    int, Path(ge=1, le=1000, description="the source, numbered from 1 as on the event page")
]
FileId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the file's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No visible event with this id, no such source, or no such file."}
}


def _source(db: SessionDep, event_id: int, n: int, lock: bool = False) -> Event:
    """The visible event that has a source number `n`, or 404; `lock`: row-locked, as edits lock it, so a
    file never lands on a source an edit is removing."""
    try:
        event = load_event(db, event_id, lock=lock)
    except EventNotFound:
        raise HTTPException(404, f"No event {event_id}. It may have been deleted.") from None
    if n > len(event.sources):
        raise HTTPException(
            404, f"Event {event_id} has {len(event.sources)} source(s); there is no source {n}."
        )
    return event


async def _read_upload(
    file: Annotated[UploadFile, File(description=f"the file: {ACCEPTED_WORDS}")],
) -> tuple[str, bytes]:
    """The upload's name and bytes, read up to one byte past the limit (async, so the route stays sync)."""
    return file.filename or "file", await file.read(get_settings().max_evidence_bytes + 1)


Upload = Annotated[tuple[str, bytes], Depends(_read_upload)]


@router.post(
    "/events/{event_id}/sources/{n}/files",
    response_model=FileOut,
    status_code=201,
    summary="Attach an evidence file to a source",
    responses={
        201: {"description": "Kept; `Location` names the file."},
        **AUTH_ERRORS,
        **NOT_FOUND,
        409: {"model": Problem, "description": "This source already keeps a file with the same SHA-256."},
        413: {
            "model": Problem,
            "description": "The file is larger than MAX_EVIDENCE_BYTES (default 20 MiB).",
        },
        422: {
            "model": Problem,
            "description": f"The file is empty, or its content is not what its name says ({ACCEPTED_WORDS}).",
        },
    },
)
def upload(event_id: EventId, n: SourceNumber, principal: AnalystDep, db: SessionDep, posted: Upload) -> Any:
    """Keep a file for source `n`: checked by content, stored in the database with its SHA-256; audited."""
    limit = get_settings().max_evidence_bytes
    name, data = posted
    if len(data) > limit:
        raise HTTPException(413, f"“{name}” is over {mebibytes(limit)}; each file can be at most that.")
    try:
        checked = check_file(name, data, limit)
    except EvidenceRejected as exc:
        raise HTTPException(422, str(exc)) from None
    event = _source(db, event_id, n, lock=True)
    try:
        row = add_file(db, event, n - 1, checked, principal.user)
    except DuplicateFile as exc:
        db.rollback()
        raise HTTPException(409, f"Not kept: {exc}.") from None
    out = FileOut.of(row)
    db.commit()
    return JSONResponse(out.model_dump(mode="json"), status_code=201, headers={"Location": out.url})


@router.get(
    "/events/{event_id}/sources/{n}/files",
    response_model=list[FileOut],
    summary="A source's evidence files",
    responses={**AUTH_ERRORS, **NOT_FOUND},
)
def list_files(event_id: EventId, n: SourceNumber, db: SessionDep, principal: ViewerDep) -> Any:
    """Every file kept for source `n`, oldest first (metadata; follow `download` for the bytes)."""
    event = _source(db, event_id, n)
    return [FileOut.of(f) for f in event.files if f.source_position == n - 1]


@router.get(
    "/events/{event_id}/sources/{n}/files/{file_id}",
    response_model=FileOut,
    summary="One evidence file's metadata",
    responses={**AUTH_ERRORS, **NOT_FOUND},
)
def get_file(
    event_id: EventId, n: SourceNumber, file_id: FileId, db: SessionDep, principal: ViewerDep
) -> Any:
    """The file's name, type, size, SHA-256 and download address."""
    _source(db, event_id, n)
    try:
        return FileOut.of(find_file(db, event_id, file_id, n - 1))
    except FileNotFound:
        raise HTTPException(404, f"Source {n} of event {event_id} keeps no file {file_id}.") from None


@router.get(
    "/events/{event_id}/files/{file_id}",
    response_class=StreamingResponse,
    summary="Download an evidence file",
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The bytes, as an attachment, typed by content (saved pages as "
            "application/octet-stream, never text/html).",
        },
        **AUTH_ERRORS,
        **NOT_FOUND,
    },
)
def download(
    event_id: EventId, file_id: FileId, db: SessionDep, principal: SignedInViewerDep
) -> StreamingResponse:
    """The file's bytes (signed-in readers only, even when PUBLIC_READ is on)."""
    return file_response(db, principal, event_id, file_id)


@router.delete(
    "/events/{event_id}/sources/{n}/files/{file_id}",
    status_code=204,
    response_class=Response,
    summary="Remove an evidence file",
    responses={204: {"description": "Removed (recorded in the history)."}, **AUTH_ERRORS, **NOT_FOUND},
)
def delete_file(
    event_id: EventId,
    n: SourceNumber,
    file_id: FileId,
    db: SessionDep,
    principal: AnalystDep,
    reason: Annotated[str | None, Query(max_length=500, description="recorded in the history")] = None,
) -> Response:
    """Remove one file of source `n`; the history keeps its name and SHA-256."""
    _source(db, event_id, n, lock=True)
    try:
        f = find_file(db, event_id, file_id, n - 1)
    except FileNotFound:
        raise HTTPException(404, f"Source {n} of event {event_id} keeps no file {file_id}.") from None
    remove_file(db, f, principal.user, reason)
    db.commit()
    return Response(status_code=204)
