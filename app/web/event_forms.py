"""New, edit and delete pages for events: validation, duplicate warning, version conflicts, row fragments."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth.deps import AnalystDep
from app.config import get_settings
from app.db import SessionDep
from app.domain.textkeys import fold
from app.domain.vocab import (
    ACTOR_ROLES,
    ACTOR_TYPES,
    CONFIDENCES,
    COUNTRY_ROLES,
    CREDIBILITY_LABELS,
    KINDS,
    LIKELIHOODS,
    LINK_WORDS,
    RELIABILITY_LABELS,
    STAGES,
    STATUSES,
)
from app.queries.audit import event_history
from app.queries.duplicates import find_duplicates
from app.queries.editing import event_id_for_token
from app.queries.new_names import LINK_FIELDS, NearName, confirmation_key, known_keys, near_names
from app.schemas import EventInput
from app.services.events import (
    EventNotFound,
    VersionConflict,
    create_event,
    delete_event,
    event_input,
    find_actor,
    find_origin,
    find_system,
    independent_origins,
    input_snapshot,
    load_event,
    shown_origin,
    snapshot,
    update_event,
)
from app.services.evidence import FilePlan, event_files
from app.services.links import LinkRefused, add_link, check_link, parse_ref
from app.templating import env, render
from app.web.evidence_form import (
    PostedUploads,
    file_plan,
    files_context,
    keep_for_answer,
    limit_words,
    remember_chosen,
    take_kept,
)
from app.web.forms import (
    MONTHS,
    PLURAL,
    ROW_DEFAULTS,
    EventForm,
    base_snapshot,
    blank_form,
    copy_field,
    form_from_input,
    parse_form,
    row_action,
    row_indexes,
    validate,
)

router = APIRouter()


def utc_time(moment: datetime) -> str:
    """A timestamp as '14 Oct 2025 09:30 UTC' whatever the database session's time zone."""
    return moment.astimezone(UTC).strftime("%d %b %Y %H:%M UTC")


def utc_iso(moment: datetime) -> str:
    """A timestamp as ISO 8601 in UTC, for <time datetime>."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


# History and conflict templates (event page, admin lists) show audit times in UTC.
env.filters["utc_time"] = utc_time
env.filters["utc_iso"] = utc_iso

# Field labels for the conflict page, in the order the form shows them.
FIELD_LABELS = {
    "title": "Title",
    "summary": "Summary",
    "kind": "Kind",
    "status": "Status",
    "stage_override": "Stage override",
    "date": "Date",
    "date_end": "End date",
    "location": "Location",
    "tags": "Tags",
    "countries": "Countries",
    "actors": "Actors",
    "systems": "Systems",
    "sources": "Sources",
}
REASON_MAX = 1000


async def posted_form(request: Request) -> EventForm:
    """The posted event form, parsed once (async so the route itself can stay a sync DB function)."""
    return parse_form(await request.form())


PostedForm = Annotated[EventForm, Depends(posted_form)]


def _pairs(values: Any) -> list[tuple[str, str]]:
    return [(str(v), str(v)) for v in values]


def _vocab() -> dict[str, Any]:
    """Option lists for the form's selects, as (value, text) pairs."""
    return {
        "KIND_OPTIONS": _pairs(KINDS),
        "STATUS_OPTIONS": _pairs(STATUSES),
        "STAGE_OPTIONS": [(str(n), f"{n} · {label}") for n, label in STAGES.items()],
        "COUNTRY_ROLE_OPTIONS": _pairs(COUNTRY_ROLES),
        "ACTOR_ROLE_OPTIONS": _pairs(ACTOR_ROLES),
        "ACTOR_TYPE_OPTIONS": _pairs(ACTOR_TYPES),
        "RELIABILITY_OPTIONS": [(k, f"{k} — {v}") for k, v in RELIABILITY_LABELS.items()],
        "CREDIBILITY_OPTIONS": [(str(k), f"{k} — {v}") for k, v in CREDIBILITY_LABELS.items()],
        "MONTHS": MONTHS,
        "LIKELIHOOD_OPTIONS": _pairs(LIKELIHOODS),
        "CONFIDENCE_OPTIONS": _pairs(CONFIDENCES),
        # The per-file limit, in words for the hint and in bytes for the browser's early check (forms.js).
        "evidence_limit": limit_words(),
        "evidence_max_bytes": get_settings().max_evidence_bytes,
        "request_max_bytes": get_settings().max_request_bytes,
    }


def _wanted_link(db: Session, form: EventForm, event_id: int | None) -> tuple[str, int, bool] | None:
    """The link the form asks for (type, target, set status?), checked; None when none or refused (then
    the message is in form.errors, beside the field)."""
    link_type, target = form.get("link_type").strip(), form.get("link_target").strip()
    if not link_type and not target:
        return None
    if not link_type:
        form.errors["link_target"] = "pick what this event does to the other one (denies, confirms, …)"
        return None
    try:
        target_id = check_link(db, event_id, parse_ref(target), link_type)
    except LinkRefused as exc:
        form.errors["link_target"] = str(exc)
        return None
    return link_type, target_id, form.get("link_set_status") == "1"


def _render_form(
    request: Request,
    form: EventForm,
    *,
    event_id: int | None = None,
    status_code: int = 200,
    duplicates: list[Any] | None = None,
    near: dict[str, NearName] | None = None,
    quick: dict[str, Any] | None = None,
    single_origin: list[str] | None = None,
    db: Session | None = None,
) -> HTMLResponse:
    stored = event_files(db, [event_id])[event_id] if db is not None and event_id is not None else []
    ctx = {
        "single_origin": single_origin is not None,
        "single_origin_name": single_origin[0] if single_origin else None,
        "stored_files": files_context(stored),
        "quick": quick,
        "form": form,
        "event_id": event_id,
        "mode": "edit" if event_id is not None else "new",
        "duplicates": duplicates or [],
        "near": near or {},
        "link_type_options": [(t, words[0]) for t, words in LINK_WORDS.items()],
        **_vocab(),
    }
    return render(request, "events/form.html", ctx, status_code=status_code)


def render_event_form(request: Request, form: EventForm, quick: dict[str, Any]) -> HTMLResponse:
    """The new-event form pre-filled by quick add (app.web.quick), the pasted report shown above it."""
    return _render_form(request, form, quick=quick)


QUICK_FIELDS = ("quick_text", "quick_url", "quick_publisher", "quick_published")


def _saved_from_report(request: Request, form: EventForm, event_id: int) -> HTMLResponse:
    """After saving a quick-add draft: the event's link, and the report kept for another draft from it."""
    report = {k.removeprefix("quick_"): form.get(k) for k in QUICK_FIELDS}
    return render(
        request,
        "events/quick_saved.html",
        {"event_id": event_id, "report": report, "title": form.get("title")},
    )


def _saved(event_id: int) -> RedirectResponse:
    return RedirectResponse(f"/events/{event_id}?saved=1", status_code=303)


def _user_id(principal: AnalystDep) -> int:
    """The analyst's id (an analyst is always a logged-in user)."""
    assert principal.user is not None
    return principal.user.id


def _keep(db: Session, form: EventForm, principal: AnalystDep, files: FilePlan, filled: list[int]) -> None:
    """Before the form comes back with an error or a question: keep its checked files on the server (a
    browser does not send them again), committed now so the answer finds them."""
    keep_for_answer(db, form, _user_id(principal), files, filled)
    db.commit()


def _reason(form: EventForm) -> str | None:
    return (form.get("reason").strip()[:REASON_MAX]) or None


# The rows whose typed name may become a new catalogue entry: group -> (catalogue kind, the name field).
NAME_FIELDS = {group: (kind, name_field) for kind, (group, name_field) in LINK_FIELDS.items()}
_NAME_ROW = re.compile(r"^(actors|systems)-(\d{1,3})$")
# How many "create it as new" answers a form carries (one per actor and system row at most).
CONFIRMED_MAX = 200


def _confirmed(form: EventForm) -> list[str]:
    """The names the analyst said to create as new ("kind:folded name"), carried in a hidden field."""
    try:
        keys = json.loads(form.get("new_names") or "[]")
    except ValueError:
        return []
    if not isinstance(keys, list):
        return []
    return [k for k in keys if isinstance(k, str)][:CONFIRMED_MAX]


def _named_row(form: EventForm, value: str) -> tuple[str, dict[str, str]] | None:
    """The actor or system row a "did you mean" button names ("actors-0"), if the form has it."""
    m = _NAME_ROW.match(value)
    rows = form.rows.get(m[1], []) if m else []
    if not m or not int(m[2]) < len(rows):
        return None
    return m[1], rows[int(m[2])]


def _answer_names(db: Session, form: EventForm) -> None:
    """Apply a "did you mean" answer: put the chosen existing name in the row, or remember "create it".

    The chosen name must be in the catalogue (a forged value is ignored and the question comes back).
    """
    use = form.values.pop("use_name", "")
    row_key, _, chosen = use.partition(":")
    found = _named_row(form, row_key)
    if found and chosen.strip():
        group, row = found
        kind, name_field = NAME_FIELDS[group]
        if known_keys(db, kind, [chosen]):
            row[name_field] = chosen.strip()
    found = _named_row(form, form.values.pop("create_new", ""))
    if found:
        group, row = found
        kind, name_field = NAME_FIELDS[group]
        confirmed = _confirmed(form)
        key = confirmation_key(kind, row.get(name_field, "").strip())
        if key not in confirmed:
            confirmed.append(key)
        form.values["new_names"] = json.dumps(confirmed[-CONFIRMED_MAX:], ensure_ascii=False)


def _single_origin(db: Session, data: EventInput, form: EventForm, stored: Any = None) -> list[str] | None:
    """The origins of a `confirmed` event resting on at most one, unless the analyst said "save anyway".

    A warning, not a block: the form asks once (an edit of an event already saved that way does not ask
    again); the API accepts such an event as it is.
    """
    if data.status != "confirmed" or form.get("confirm_single_origin"):
        return None
    if stored is not None and stored.status == "confirmed" and stored.origin_count <= 1:
        return None
    origins = independent_origins(db, data)
    return origins if len(origins) <= 1 else None


def _near_rows(db: Session, form: EventForm) -> dict[str, NearName]:
    """Row key ("actors-0") -> the close existing names, for each typed name that would be a new entry."""
    confirmed = set(_confirmed(form))
    out: dict[str, NearName] = {}
    for group, (kind, name_field) in NAME_FIELDS.items():
        rows = form.rows.get(group, [])
        names = [row.get(name_field, "").strip() for row in rows]
        by_key = {fold(n.typed): n for n in near_names(db, kind, names, confirmed)}
        for i, name in enumerate(names):
            if name and fold(name) in by_key:
                out[f"{group}-{i}"] = by_key[fold(name)]
    return out


@router.get("/events/new", response_class=HTMLResponse)
def new_event_form(request: Request, principal: AnalystDep) -> HTMLResponse:
    """The empty new-event form (with a fresh client token so a double submit makes one event)."""
    return _render_form(request, blank_form())


@router.post("/events/new", response_class=HTMLResponse)
def create_event_submit(
    request: Request, form: PostedForm, principal: AnalystDep, uploads: PostedUploads, db: SessionDep
) -> Response:
    """Validate, warn about likely duplicates, then create the event (and its files) in one transaction."""
    remember_chosen(form, uploads)
    if row_action(form):
        return _render_form(request, form)
    existing = event_id_for_token(db, form.get("client_token"))
    if existing is not None:  # the same form posted twice: show what the first post made
        if load_event(db, existing, include_deleted=True).deleted_at is not None:
            raise HTTPException(
                409,
                f"This form was already saved as event {existing}, which has since been deleted. An admin "
                "can restore it from Admin → Deleted events (/admin/deleted).",
            )
        return _saved(existing)
    _answer_names(db, form)
    data = validate(form)
    link = _wanted_link(db, form, None)
    filled = row_indexes(form, "sources")
    files = file_plan(form, uploads, filled, take_kept(db, form, _user_id(principal)))
    if data is None or form.errors:
        _keep(db, form, principal, files, filled)
        return _render_form(request, form, status_code=422)
    near = _near_rows(db, form)
    if near:  # 200, like the duplicates question: nothing is created until the analyst answers
        _keep(db, form, principal, files, filled)
        return _render_form(request, form, near=near)
    single = _single_origin(db, data, form)
    if single is not None:
        _keep(db, form, principal, files, filled)
        return _render_form(request, form, single_origin=single)
    if not form.get("confirm_duplicate"):
        duplicates = find_duplicates(db, data)
        if duplicates:
            # 200, not 422: the input is valid; the page asks a question before anything is saved.
            _keep(db, form, principal, files, filled)
            return _render_form(request, form, duplicates=duplicates)
    try:
        event = create_event(db, data, principal.user, files=files)
        event_id = event.id
        if link is not None:
            add_link(db, event_id, link[1], link[0], principal.user, set_status=link[2])
        db.commit()
    except LinkRefused as exc:  # the target was deleted meanwhile: nothing is saved
        db.rollback()
        form.errors["link_target"] = str(exc)
        _keep(db, form, principal, files, filled)
        return _render_form(request, form, status_code=422)
    except Exception:
        db.rollback()
        raise
    if form.get("quick_text"):
        return _saved_from_report(request, form, event_id)
    return _saved(event_id)


def _visible(db: Session, event_id: int) -> Any:
    """The visible event, or a 404 page (deleted events are not edited)."""
    try:
        return load_event(db, event_id)
    except EventNotFound:
        raise HTTPException(404, "No event with this number. It may have been deleted.") from None


@router.get("/events/{event_id:int}/edit", response_class=HTMLResponse)
def edit_event_form(request: Request, event_id: int, db: SessionDep, principal: AnalystDep) -> HTMLResponse:
    """The edit form prefilled with the stored event and carrying its version."""
    event = _visible(db, event_id)
    form = form_from_input(event_input(event), event.version)
    stored = event_files(db, [event.id])[event.id]
    # Every file this form shows: one it no longer lists was removed (with its row, or ticked).
    form.values["known_files"] = ",".join(str(f.id) for f in stored)
    for f in stored:
        rows = form.rows["sources"]
        if f.source_position < len(rows):
            row = rows[f.source_position]
            row["file_ids"] = ",".join(filter(None, [row.get("file_ids", ""), str(f.id)]))
    return _render_form(request, form, event_id=event.id, db=db)


def _canonical(db: Session, mine: dict[str, Any]) -> dict[str, Any]:
    """Actors, systems and origins named by an alias compare under their catalogue name, as stored
    versions do."""
    out = dict(mine)
    actors = []
    for item in mine.get("actors", []):
        role, _, name = item.partition(":")
        found = find_actor(db, name)
        actors.append(f"{role}:{found.name if found else name}")
    out["actors"] = actors
    systems = []
    for item, link in zip(mine.get("systems", []), mine.get("_system_names", []), strict=False):
        system = find_system(db, link)
        systems.append(item.replace(link, system.designation, 1) if system else item)
    out["systems"] = systems or mine.get("systems", [])
    out.pop("_system_names", None)
    sources = []
    for source in mine.get("sources", []):
        # A relay named by an alias, or an origin that is the publisher's own name: as stored ones show it.
        origin = find_origin(db, source["origin"]) if source.get("origin") else None
        shown = shown_origin(source["publisher"], origin) if origin is not None else source.get("origin")
        sources.append({**source, "origin": shown})
    out["sources"] = sources
    return out


def _conflict_rows(
    theirs: dict[str, Any], mine: dict[str, Any], base: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Field by field: both values and what "re-apply" does with it.

    outcome: "same"; "mine" (only you changed it: yours is applied); "theirs" (only they changed it:
    theirs is kept, so re-applying never undoes a colleague's edit); "both" (you both changed it: you choose).
    """
    rows = []
    for key, label in FIELD_LABELS.items():
        t, m = theirs.get(key), mine.get(key)
        if t == m:
            outcome = "same"
        elif base is None:
            outcome = "both"
        elif m == base.get(key):
            outcome = "theirs"
        elif t == base.get(key):
            outcome = "mine"
        else:
            outcome = "both"
        rows.append({"field": key, "label": label, "theirs": t, "mine": m, "outcome": outcome})
    return rows


def _conflict_page(
    request: Request,
    db: Session,
    form: EventForm,
    conflict: VersionConflict,
    mine: dict[str, Any],
    loaded_version: int,
) -> HTMLResponse:
    current = conflict.current
    theirs = snapshot(current)
    history = event_history(db, current.id)
    base = base_snapshot(theirs, history, current.version - loaded_version)
    rows = _conflict_rows(theirs, _canonical(db, mine), base)
    form.values["version"] = str(current.version)
    ctx = {
        "event": current,
        "rows": rows,
        "form": form,
        "pairs": [(k, v) for k, v in form.pairs() if not k.startswith("pick-")],
        "latest": history[0] if history else None,
        "differences": sum(1 for r in rows if r["outcome"] != "same"),
        "clashes": sum(1 for r in rows if r["outcome"] == "both"),
    }
    return render(request, "events/conflict.html", ctx, status_code=409)


def _apply_picks(db: Session, event_id: int, form: EventForm) -> None:
    """Take the fields the conflict page marked "theirs" from the stored version the form is based on."""
    picks = [k.removeprefix("pick-") for k, v in list(form.values.items()) if k.startswith("pick-")]
    chosen = [p for p in picks if form.values.pop(f"pick-{p}") == "theirs"]
    if not chosen:
        return
    current = load_event(db, event_id)
    if str(current.version) != form.get("version"):
        return  # it moved again: the version check will show a fresh conflict page
    theirs = form_from_input(event_input(current))
    for name in chosen:
        copy_field(form, theirs, name)


@router.post("/events/{event_id:int}/edit", response_class=HTMLResponse)
def update_event_submit(
    request: Request,
    event_id: int,
    form: PostedForm,
    principal: AnalystDep,
    uploads: PostedUploads,  # after the role check: a reader's files are never read into memory
    db: SessionDep,
) -> Response:
    """Validate and save an edit unless someone saved a newer version meanwhile (then: conflict page)."""
    stored = _visible(db, event_id)
    _apply_picks(db, event_id, form)
    remember_chosen(form, uploads)
    if row_action(form) or form.values.pop("review", "") != "":
        return _render_form(request, form, event_id=event_id, db=db)
    try:
        version = int(form.get("version"))
    except ValueError:
        raise HTTPException(400, "The form lost its version number; reload the edit page.") from None
    _answer_names(db, form)
    data = validate(form)
    link = _wanted_link(db, form, event_id)
    filled = row_indexes(form, "sources")
    files = file_plan(form, uploads, filled, take_kept(db, form, _user_id(principal)))
    files.reason = _reason(form)
    if data is None or form.errors:
        _keep(db, form, principal, files, filled)
        return _render_form(request, form, event_id=event_id, status_code=422, db=db)
    near = _near_rows(db, form)
    if near:
        _keep(db, form, principal, files, filled)
        return _render_form(request, form, event_id=event_id, near=near, db=db)
    single = _single_origin(db, data, form, stored)
    if single is not None:
        _keep(db, form, principal, files, filled)
        return _render_form(request, form, event_id=event_id, single_origin=single, db=db)
    try:
        with db.begin_nested():  # a refused save is undone alone: the files taken above are kept again
            update_event(db, event_id, data, principal.user, version, _reason(form), files=files)
            if link is not None:
                add_link(db, event_id, link[1], link[0], principal.user, set_status=link[2])
        db.commit()
    except LinkRefused as exc:
        form.errors["link_target"] = str(exc)
        _keep(db, form, principal, files, filled)
        return _render_form(request, form, event_id=event_id, status_code=422, db=db)
    except VersionConflict as conflict:
        mine = input_snapshot(data) | {"_system_names": [x.designation for x in data.systems]}
        keep_for_answer(db, form, _user_id(principal), files, filled)  # the page re-posts the form
        page = _conflict_page(request, db, form, conflict, mine, version)
        db.commit()
        return page
    except Exception:
        db.rollback()
        raise
    return _saved(event_id)


@router.get("/events/form-row/{group}", response_class=HTMLResponse)
def form_row(request: Request, group: str, principal: AnalystDep, i: int = 0) -> HTMLResponse:
    """One empty country/actor/system/source row for the form (HTMX "add" buttons), next button OOB."""
    plural = PLURAL.get(group)
    if plural is None or not 0 <= i < 1000:
        raise HTTPException(404, "No such kind of row.")
    ctx = {"group": plural, "single": group, "i": i, "row": dict(ROW_DEFAULTS[plural]), "form": EventForm()}
    return render(request, "events/_form_row_fragment.html", {**ctx, **_vocab()})


@router.get("/events/{event_id:int}/delete", response_class=HTMLResponse)
def delete_event_form(
    request: Request, event_id: int, db: SessionDep, principal: AnalystDep, done: int = 0
) -> HTMLResponse:
    """Ask for confirmation (and an optional reason) before a soft delete; after it, confirm it happened."""
    if done:
        try:
            event = load_event(db, event_id, include_deleted=True)
        except EventNotFound:
            raise HTTPException(404, "No event with this number.") from None
        if event.deleted_at is None:
            return RedirectResponse(f"/events/{event_id}", status_code=303)  # type: ignore[return-value]
        return render(request, "events/delete.html", {"event": event, "done": True})
    event = _visible(db, event_id)
    return render(request, "events/delete.html", {"event": event, "done": False, "reason": ""})


@router.post("/events/{event_id:int}/delete", response_class=HTMLResponse)
def delete_event_submit(
    request: Request, event_id: int, form: PostedForm, db: SessionDep, principal: AnalystDep
) -> Response:
    """Soft-delete the event (audited with the reason) and confirm."""
    _visible(db, event_id)
    try:
        delete_event(db, event_id, principal.user, _reason(form))
        db.commit()
    except Exception:
        db.rollback()
        raise
    return RedirectResponse(f"/events/{event_id}/delete?done=1", status_code=303)
