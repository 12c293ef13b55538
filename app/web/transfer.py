"""Moving events in and out: /export.csv (the filtered timeline, streamed) and /import (preview, commit)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from app.auth.deps import AnalystDep, ViewerDep
from app.config import get_settings
from app.csvio import COLUMNS, ParsedRow, decode_upload, read_csv, write_lines
from app.db import ReadSessionDep, SessionDep
from app.domain.textkeys import fold
from app.filters import EXPORT_EXTRA, EventFilter, InvalidFilter, strict_filter, wants_bom
from app.http.downloads import content_disposition
from app.http.streaming import guarded
from app.queries.new_names import NearName, close_to_new, use_existing
from app.queries.transfer import staging
from app.queries.transfer.export import export_batches
from app.queries.transfer.import_links import FileLinks, LinksRefused
from app.queries.transfer.imports import (
    ImportPlan,
    ReferenceGone,
    already_imported,
    commit_import,
    plan_import,
)
from app.templating import render

router = APIRouter()

log = logging.getLogger(__name__)


def export_filename(f: EventFilter, today: date | None = None) -> str:
    """`signalboard-YYYY-MM-DD-<filter>.csv`."""
    return f"signalboard-{(today or date.today()).isoformat()}-{f.describe()}.csv"


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "the filtered events as CSV"}},
)
def export_csv(request: Request, db: ReadSessionDep, principal: ViewerDep) -> Response:
    """Every event the timeline filter matches, in timeline order, streamed as CSV (`bom=1` for Excel)."""
    try:
        f = strict_filter(db, request.query_params, EXPORT_EXTRA)
        bom = wants_bom(request.query_params)
    except InvalidFilter as exc:
        # The API's refusal, word for word: a script gets the same answer from either address.
        return JSONResponse({"detail": exc.detail()}, status_code=422)
    return StreamingResponse(
        guarded(write_lines(export_batches(db, f), bom=bom), "export"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition(export_filename(f)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# ---- import ------------------------------------------------------------------------------------------


def _page(request: Request, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    base = {
        "columns": COLUMNS,
        "max_mib": get_settings().max_upload_bytes // (1024 * 1024),
        "parsed": None,
        "plan": None,
        "filename": "",
        "problem": None,
        "near": [],
        "near_complete": True,
    }
    base.update(context)
    return render(request, "import/index.html", base, status_code=status_code)


# Comparing every new name of a big file with the catalogue could take long: the preview stops after this.
NEAR_BUDGET_SECONDS = 2.0


def _near_in_plan(db: SessionDep, plan: ImportPlan) -> tuple[list[NearName], bool]:
    """The new actors and systems close to known ones, and whether every new name was compared."""
    deadline = time.monotonic() + NEAR_BUDGET_SECONDS
    near: list[NearName] = []
    complete = True
    for kind, names in (("actor", plan.new_actors), ("system", plan.new_systems)):
        found, compared = close_to_new(db, kind, names, deadline)
        near += found
        complete = complete and compared == len(names)
    return near, complete


async def _posted_fields(request: Request) -> dict[str, str]:
    """The commit form's text fields (the per-name choices have one field each, "near-3")."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


class ChoiceRefused(ValueError):
    """A posted name choice that the preview did not offer."""


def _name_choices(staged_near: list[dict[str, Any]], fields: dict[str, str]) -> dict[tuple[str, str], str]:
    """(kind, folded typed name) -> the known name chosen instead, from the preview's "near-N" choices.

    Each value is "new" (create the name as typed) or the number of one of that name's suggestions; a
    name left unanswered (a client that predates the question) is created as typed, as before.
    """
    chosen: dict[tuple[str, str], str] = {}
    for n, item in enumerate(staged_near):
        answer = fields.get(f"near-{n}", "new")
        if answer == "new":
            continue
        suggestions = item["suggestions"]
        if not answer.isdecimal() or not int(answer) < len(suggestions):
            raise ChoiceRefused(answer)
        chosen[(item["kind"], fold(item["typed"]))] = suggestions[int(answer)]
    return chosen


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
    """Check an upload and show what it would do; nothing is imported yet (the file waits for its commit)."""
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
    outside: dict[int, str] = {}
    if parsed.ok:
        try:
            outside = file_links(parsed.rows).check(db)
        except LinksRefused as exc:
            parsed.errors.extend(exc.errors)
    if not parsed.ok:
        return _page(request, {"parsed": parsed, "filename": filename}, 422)
    import_token = uuid.uuid4()
    plan = plan_import(db, parsed, import_token)
    near, near_complete = _near_in_plan(db, plan)
    # The checked file stays on the server (any size up to the upload limit); the page gets a token.
    # The duplicate lines are the preview's, so "skip the likely duplicates" skips exactly those shown;
    # the close names too, so a commit can only choose among the suggestions the preview offered.
    options = {
        "filename": filename,
        "import_token": str(import_token),
        "duplicate_lines": [d.line for d in plan.duplicates],
        "near_names": [{"kind": n.kind, "typed": n.typed, "suggestions": list(n.suggestions)} for n in near],
    }
    token = staging.stage(db, _user_id(principal), text, options)
    db.commit()
    context = {"parsed": parsed, "plan": plan, "filename": filename, "token": token, "outside": outside}
    return _page(request, context | {"near": near, "near_complete": near_complete})


def file_links(rows: list[ParsedRow]) -> FileLinks:
    """The file's rows' ids and links, before any event exists (the preview's check)."""
    links = FileLinks()
    links.add(rows, [None] * len(rows))
    return links


def _user_id(principal: AnalystDep) -> int:
    """The uploader's id (an analyst is always a logged-in user)."""
    assert principal.user is not None
    return principal.user.id


@router.post("/import/commit", response_class=HTMLResponse)
def import_commit(
    request: Request,
    db: SessionDep,
    principal: AnalystDep,
    fields: Annotated[dict[str, str], Depends(_posted_fields)],
    token: Annotated[str, Form(max_length=200)] = "",
    duplicates: Annotated[str, Form(max_length=20)] = "include",
) -> HTMLResponse:
    """Import a previewed file in one transaction (all rows, or all but its likely duplicates), once.

    Names the preview found close to known ones are linked to the known entry the analyst chose.
    """
    try:
        staged = staging.take(db, token, _user_id(principal))
    except staging.StagingRefused as exc:
        db.rollback()
        return _page(request, {"problem": exc.message}, exc.status)
    try:
        chosen = _name_choices(staged.options.get("near_names", []), fields)
    except ChoiceRefused:
        db.rollback()  # the file stays for a corrected commit
        problem = "A name choice was not one the preview offered; go back to the preview and choose again."
        return _page(request, {"problem": problem}, 422)
    filename = str(staged.options.get("filename", ""))
    import_token = uuid.UUID(staged.options["import_token"])
    parsed = read_csv(staged.text)
    if not parsed.ok:  # checked at preview; the rules may have changed since (a new version, a country)
        db.rollback()
        return _page(request, {"parsed": parsed, "filename": filename}, 422)
    rows = [replace(r, data=use_existing(r.data, chosen)) for r in parsed.rows] if chosen else parsed.rows
    skipped = 0
    if duplicates == "skip":
        flagged = set(staged.options.get("duplicate_lines", []))
        rows = [r for r in rows if r.line not in flagged]
        skipped = len(parsed.rows) - len(rows)
    if not rows:
        db.rollback()
        problem = "Every row is a likely duplicate, so there is nothing to import without them."
        return _page(request, {"problem": problem}, 422)
    if already_imported(db, import_token, rows):
        db.rollback()
        return _page(
            request,
            {"problem": "This file was already imported (its events are on the timeline); nothing added."},
            409,
        )
    every_id = file_links(parsed.rows).ids  # a link to a row left out is refused, never re-aimed
    try:
        result = commit_import(
            db, rows, principal.user, import_token, reason=f"CSV import {filename}".strip()
        )
        links = FileLinks()
        links.add(rows, result.event_ids)
        links.write(db, principal.user, every_id)
        db.commit()
    except LinksRefused as exc:
        db.rollback()
        parsed.errors.extend(exc.errors)
        return _page(request, {"parsed": parsed, "filename": filename}, 422)
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
        {"count": len(result.event_ids), "result": result, "filename": filename, "skipped": skipped},
    )
