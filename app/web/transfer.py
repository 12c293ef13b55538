"""Moving events in and out: /export.csv (the filtered timeline, streamed) and /import (preview, commit)."""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
import zlib
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, StreamingResponse

from app.auth.deps import AnalystDep, ViewerDep
from app.config import get_settings
from app.csvio import COLUMNS, ParsedFile, decode_upload, read_csv, write_lines
from app.db import ReadSessionDep, SessionDep
from app.filters import EventFilter, InvalidFilter
from app.queries.export import export_batches
from app.queries.imports import ReferenceGone, already_imported, commit_import, plan_import
from app.streaming import guarded
from app.templating import render

router = APIRouter()

log = logging.getLogger(__name__)


def export_filename(f: EventFilter, today: date | None = None) -> str:
    """`signalboard-YYYY-MM-DD-<filter>.csv`."""
    return f"signalboard-{(today or date.today()).isoformat()}-{f.describe()}.csv"


def content_disposition(filename: str) -> str:
    """An attachment header with an ASCII fallback name and the exact UTF-8 name (RFC 6266)."""
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "-" for ch in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def wants_bom(request: Request) -> bool:
    """`bom=1` asks for the Excel variant."""
    return request.query_params.get("bom", "").lower() in ("1", "true", "yes", "on")


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "the filtered events as CSV"}},
)
def export_csv(request: Request, db: ReadSessionDep, principal: ViewerDep) -> StreamingResponse:
    """Every event the timeline filter matches, in timeline order, streamed as CSV (`bom=1` for Excel)."""
    try:
        f = EventFilter.parse_strict(request.query_params)
    except InvalidFilter as exc:
        raise HTTPException(
            422, "The export was not made because of these filters: " + str(exc) + ". Fix them and retry."
        ) from None
    return StreamingResponse(
        guarded(write_lines(export_batches(db, f), bom=wants_bom(request)), "export"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition(export_filename(f)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# ---- import ------------------------------------------------------------------------------------------


def pack(text: str) -> str:
    """The checked file carried to the commit form: compressed, URL-safe (the app keeps no state)."""
    return base64.urlsafe_b64encode(zlib.compress(text.encode(), 6)).decode()


def unpack(payload: str, max_bytes: int) -> str | None:
    """Inverse of `pack`, refusing anything larger than the upload limit; None when damaged."""
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.urlsafe_b64decode(payload.encode()), max_bytes + 1)
        if len(raw) > max_bytes or inflater.unconsumed_tail:
            return None
        return raw.decode()
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError):
        return None


def _page(request: Request, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    base = {
        "columns": COLUMNS,
        "max_mib": get_settings().max_upload_bytes // (1024 * 1024),
        "parsed": None,
        "plan": None,
        "filename": "",
        "problem": None,
    }
    base.update(context)
    return render(request, "import/index.html", base, status_code=status_code)


@router.get("/import", response_class=HTMLResponse)
def import_form(request: Request, principal: AnalystDep) -> HTMLResponse:
    """The upload form and the column guide."""
    return _page(request, {})


@router.post("/import", response_class=HTMLResponse)
def import_preview(
    request: Request,
    db: SessionDep,
    principal: AnalystDep,
    file: Annotated[UploadFile | None, File(description="a CSV file")] = None,
) -> HTMLResponse:
    """Check an upload and show what it would do; nothing is written yet."""
    settings = get_settings()
    if file is None or not file.filename:
        return _page(request, {"problem": "Choose a CSV file to check."}, 422)
    filename = file.filename[:200]
    raw = file.file.read(settings.max_upload_bytes + 1)
    text, problem = decode_upload(raw, settings.max_upload_bytes)
    if text is None:
        status = 413 if len(raw) > settings.max_upload_bytes else 422
        return _page(request, {"problem": problem, "filename": filename}, status)
    parsed = read_csv(text)
    return _preview(request, db, parsed, text, filename, uuid.uuid4())


def _preview(
    request: Request, db: SessionDep, parsed: ParsedFile, text: str, filename: str, token: uuid.UUID
) -> HTMLResponse:
    if not parsed.ok:
        return _page(request, {"parsed": parsed, "filename": filename}, 422)
    plan = plan_import(db, parsed, token)
    context = {
        "parsed": parsed,
        "plan": plan,
        "filename": filename,
        "payload": pack(text),
        "token": str(token),
    }
    return _page(request, context)


@router.post("/import/commit", response_class=HTMLResponse)
def import_commit(
    request: Request,
    db: SessionDep,
    principal: AnalystDep,
    payload: Annotated[str, Form()],
    token: Annotated[str, Form()],
    filename: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Write every row of a checked file in one transaction: all of it, or nothing."""
    settings = get_settings()
    filename = filename[:200]
    text = unpack(payload, settings.max_upload_bytes)
    try:
        import_token = uuid.UUID(token)
    except ValueError:
        text = None
    if text is None:
        return _page(request, {"problem": "The checked file did not arrive intact; upload it again."}, 422)
    parsed = read_csv(text)
    if not parsed.ok:
        return _preview(request, db, parsed, text, filename, import_token)
    if already_imported(db, import_token, parsed.rows):
        return _page(
            request,
            {"problem": "This file was already imported (its events are on the timeline); nothing added."},
            409,
        )
    try:
        result = commit_import(
            db, parsed.rows, principal.user, import_token, reason=f"CSV import {filename}".strip()
        )
        db.commit()
    except ReferenceGone as exc:
        db.rollback()
        log.info("import refused: %s", exc)
        problem = (
            "An actor, system or country named in the file was deleted or merged while importing, so "
            "nothing was added. Upload the file again to check it against the current names."
        )
        return _page(request, {"problem": problem}, 409)
    except Exception:
        db.rollback()
        raise
    return render(
        request,
        "import/done.html",
        {"count": len(result.event_ids), "result": result, "filename": filename},
    )
