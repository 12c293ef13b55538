"""Evidence file downloads: only for signed-in readers, always as an attachment, typed by content."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.auth.deps import Principal, SignedInViewerDep
from app.db import SessionDep
from app.domain.evidence_types import served_type
from app.http.downloads import download_headers
from app.http.streaming import guarded
from app.queries.evidence import file_chunks
from app.services.events import EventNotFound, load_event
from app.services.evidence import FileNotFound, find_file

router = APIRouter()


def file_response(db: Session, principal: Principal, event_id: int, file_id: int) -> StreamingResponse:
    """The file streamed as a download; 404 when the reader cannot see the event or it has no such file."""
    try:
        # Admins still reach a soft-deleted event's files, as they reach the event's page.
        load_event(db, event_id, include_deleted=principal.can("admin"))
        f = find_file(db, event_id, file_id)
    except (EventNotFound, FileNotFound):
        raise HTTPException(404, "No such file on this event. It may have been removed.") from None
    return StreamingResponse(
        guarded(file_chunks(db, f.id, f.size), "evidence download", prime=1),
        media_type=served_type(f.content_type),
        headers=download_headers(f.filename, f.size),
    )


@router.get(
    "/events/{event_id:int}/files/{file_id:int}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file, as a download"}},
)
def download_file(
    request: Request, event_id: int, file_id: int, db: SessionDep, principal: SignedInViewerDep
) -> StreamingResponse:
    """One evidence file of an event, as a download (signed-in readers only, even with PUBLIC_READ on)."""
    return file_response(db, principal, event_id, file_id)
