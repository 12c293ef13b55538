"""The event form: posted fields (indexed rows such as sources-0-publisher) to EventInput and back.

A form keeps every value exactly as typed, so a page with errors re-renders with nothing lost; errors
are keyed by the same names as the inputs ("title", "date", "sources-1-url") so the template can put
each message beside its field and link the summary to it.
"""

from __future__ import annotations

import calendar
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.domain.dates import PartialDateError, parse_partial
from app.schemas import EventInput, end_before_start

# Which fields each repeated row carries, and which of them make a row "filled in".
ROW_FIELDS: dict[str, tuple[str, ...]] = {
    "countries": ("code", "role"),
    "actors": ("name", "role", "type", "country", "title"),
    "systems": ("designation", "quantity", "quantity_note", "category", "origin"),
    "sources": (
        "publisher",
        "origin",
        "url",
        "title",
        "published",
        "quote",
        "note",
        "reliability",
        "credibility",
        "archive_url",
        "accessed",
    ),
}
# Row values the form carries that are not EventInput fields: a source's stored evidence files (ids, comma
# separated), those ticked for removal, and the files the server keeps for it while the form asks a question
# (their numbers in the kept upload, and their names): app.web.evidence_form turns them into a FilePlan.
ROW_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {"sources": ("file_ids", "drop_files", "kept", "kept_names")}
# Extra fields whose checkboxes may be posted several times; their values are joined with commas.
MULTI_VALUE_FIELDS = frozenset({"drop_files"})
# A row counts as filled in when a field other than its choices (a role, a grade) has a value: the choices
# start set (or are asked for), so they alone do not make a row.
_CHOICE_FIELDS = frozenset({"role", "reliability", "credibility"})
ROW_KEY_FIELDS: dict[str, tuple[str, ...]] = {
    group: tuple(f for f in fields if f not in _CHOICE_FIELDS) for group, fields in ROW_FIELDS.items()
}
ROW_DEFAULTS: dict[str, dict[str, str]] = {
    "countries": {"role": "supplier"},
    "actors": {"role": "speaker"},
    "systems": {},
    # No grade is assumed: a new source's grades start unchosen and the form asks for them (_check_grades).
    "sources": {},
}
# What the form says beside a source's grade left unchosen (F and 6 are choices like any other).
GRADE_MESSAGES = {
    "reliability": "Choose how reliable the source is, A to F (F: reliability cannot be judged).",
    "credibility": "Choose how credible the information is, 1 to 6 (6: truth cannot be judged).",
}
# Singular names used by the add_/remove_ buttons ("add_source") and the row partials.
SINGULAR = {"countries": "country", "actors": "actor", "systems": "system", "sources": "source"}
PLURAL = {v: k for k, v in SINGULAR.items()}
JUDGEMENT = ("likelihood", "likelihood_rationale", "confidence", "confidence_rationale")
SCALARS = ("title", "summary", "kind", "status", "stage_override", "location", "tags", *JUDGEMENT, "reason")
DATE_PARTS = ("year", "month", "day")
MONTHS = [(f"{m:02d}", calendar.month_name[m]) for m in range(1, 13)]
_ROW_KEY = re.compile(r"^(countries|actors|systems|sources)-(\d{1,3})-([a-z_]+)$")


@dataclass
class EventForm:
    """Every value of the event form as typed, the rows in order, and the errors to show."""

    values: dict[str, str] = field(default_factory=dict)
    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        """A scalar value as typed."""
        return self.values.get(name, default)

    def error(self, name: str) -> str | None:
        """The message for one field, if any."""
        return self.errors.get(name)

    def row_error(self, group: str, index: int, name: str) -> str | None:
        """The message for a field of a repeated row."""
        return self.errors.get(f"{group}-{index}-{name}")

    def add_row(self, group: str) -> None:
        """Append an empty row (the "add source" buttons)."""
        self.rows.setdefault(group, []).append(dict(ROW_DEFAULTS[group]))

    def remove_row(self, group: str, index: int) -> None:
        """Drop one row (the "remove" buttons without JavaScript)."""
        rows = self.rows.get(group, [])
        if 0 <= index < len(rows):
            del rows[index]

    def pairs(self) -> list[tuple[str, str]]:
        """The form as (name, value) pairs, for hidden fields that re-post it (the conflict page)."""
        out = [(k, v) for k, v in self.values.items() if v != ""]
        for group, rows in self.rows.items():
            for i, row in enumerate(rows):
                out.extend((f"{group}-{i}-{k}", v) for k, v in row.items() if v != "")
        return out

    def summary_errors(self) -> list[tuple[str, str, str]]:
        """(field id, field label, message) for the error summary, in page order."""
        order = [
            "title",
            "kind",
            "status",
            "stage_override",
            "date",
            "date_end",
            "location",
            "tags",
            *JUDGEMENT,
        ]

        def rank(key: str) -> tuple[int, int, int, str]:
            if key in order:
                return (order.index(key), 0, 0, "")
            m = _ROW_KEY.match(key)
            if not m:
                return (len(order) + 9, 0, 0, key)
            # Rows in number order (row 10 after row 2), a row's fields in their order (reliability first).
            fields = ROW_FIELDS[m[1]]
            place = fields.index(m[3]) if m[3] in fields else len(fields)
            return (len(order) + list(ROW_FIELDS).index(m[1]), int(m[2]), place, key)

        ordered = sorted(self.errors.items(), key=lambda kv: rank(kv[0]))
        return [(key, field_label(key), message) for key, message in ordered]


FIELD_NAMES = {
    "link_target": "Link",
    "title": "Title",
    "summary": "Summary",
    "kind": "Kind",
    "status": "Status",
    "stage_override": "Stage",
    "date": "Date",
    "date_end": "End date",
    "location": "Location",
    "tags": "Tags",
    "likelihood": "Likelihood",
    "likelihood_rationale": "Why that likelihood",
    "confidence": "Confidence",
    "confidence_rationale": "Why that confidence",
    "reason": "Reason",
    "code": "country",
    "role": "role",
    "name": "name",
    "type": "type",
    "country": "country",
    "designation": "designation",
    "quantity": "quantity",
    "quantity_note": "quantity note",
    "category": "category",
    "origin": "origin",
    "publisher": "publisher",
    "url": "URL",
    "published": "published",
    "quote": "quote",
    "note": "note",
    "reliability": "reliability",
    "credibility": "credibility",
    "archive_url": "archived copy",
    "accessed": "accessed on",
    "files": "files",
}


def field_label(key: str) -> str:
    """How the error summary names a field: "Title", "Source 2 URL"."""
    m = _ROW_KEY.match(key)
    if m:
        return f"{SINGULAR[m[1]].capitalize()} {int(m[2]) + 1} {FIELD_NAMES.get(m[3], m[3])}"
    return FIELD_NAMES.get(key, key)


def blank_form() -> EventForm:
    """A new-event form: one empty source row and a fresh client token."""
    form = EventForm(values={"status": "reported", "client_token": str(uuid.uuid4())})
    form.rows = {
        "countries": [{"role": "supplier"}, {"role": "recipient"}],
        "actors": [dict(ROW_DEFAULTS["actors"])],
        "systems": [{}],
        "sources": [dict(ROW_DEFAULTS["sources"])],
    }
    return form


def _split_date(value: str | None, prefix: str) -> dict[str, str]:
    """'2025-10' -> {date_year: '2025', date_month: '10', date_day: ''}."""
    parts = (value or "").split("-")
    out = {f"{prefix}_{p}": "" for p in DATE_PARTS}
    for p, v in zip(DATE_PARTS, parts, strict=False):
        out[f"{prefix}_{p}"] = v
    return out


def form_from_input(data: EventInput, version: int | None = None) -> EventForm:
    """An edit form prefilled from a stored event (via services.events.event_input)."""
    values: dict[str, str] = {
        "title": data.title,
        "summary": data.summary or "",
        "kind": data.kind,
        "status": data.status,
        "stage_override": "" if data.stage_override is None else str(data.stage_override),
        "location": data.location or "",
        "tags": ", ".join(data.tags),
        **{name: getattr(data, name) or "" for name in JUDGEMENT},
    }
    values.update(_split_date(data.date, "date"))
    values.update(_split_date(data.date_end, "date_end"))
    if version is not None:
        values["version"] = str(version)

    def text(v: Any) -> str:
        return "" if v is None else str(v)

    rows = {
        "countries": [{"code": c.code, "role": c.role} for c in data.countries],
        "actors": [{"name": a.name, "role": a.role} for a in data.actors],
        "systems": [
            {
                "designation": s.designation,
                "quantity": text(s.quantity),
                "quantity_note": text(s.quantity_note),
            }
            for s in data.systems
        ],
        "sources": [
            {k: text(getattr(s, k)) for k in ROW_FIELDS["sources"]} | {"credibility": str(s.credibility)}
            for s in data.sources
        ],
    }
    return EventForm(values=values, rows=rows)


def parse_form(posted: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> EventForm:
    """Read a posted form (name/value pairs) into an EventForm, keeping every value as typed."""
    items = posted.multi_items() if hasattr(posted, "multi_items") else posted  # starlette FormData
    if isinstance(items, Mapping):
        items = items.items()
    values: dict[str, str] = {}
    indexed: dict[str, dict[int, dict[str, str]]] = {g: {} for g in ROW_FIELDS}
    for name, raw in items:
        if not isinstance(raw, str):
            continue  # an uploaded file has no place in this form
        m = _ROW_KEY.match(name)
        if m:
            group, idx, key = m[1], int(m[2]), m[3]
            if key in ROW_FIELDS[group] or key in ROW_EXTRA_FIELDS.get(group, ()):
                row = indexed[group].setdefault(idx, {})
                if key in MULTI_VALUE_FIELDS and row.get(key):
                    row[key] += "," + raw
                else:
                    row[key] = raw
        elif len(name) <= 40:
            values[name] = raw
    rows = {g: [indexed[g][i] for i in sorted(indexed[g])] for g in ROW_FIELDS}
    return EventForm(values=values, rows=rows)


def row_action(form: EventForm) -> bool:
    """Apply an add_/remove_ button press (the no-JavaScript path); True when one was pressed."""
    for single, group in PLURAL.items():
        if f"add_{single}" in form.values:
            form.values.pop(f"add_{single}")
            form.add_row(group)
            return True
        removed = form.values.pop(f"remove_{single}", None)
        if removed is not None:
            if removed.isdecimal():
                form.remove_row(group, int(removed))
            return True
    return False


def _is_filled(group: str, row: dict[str, str]) -> bool:
    return any(row.get(k, "").strip() for k in ROW_KEY_FIELDS[group])


def _date_text(form: EventForm, prefix: str, required: bool) -> str | None:
    """Join year/month/day inputs into YYYY[-MM[-DD]], recording a message for a bad combination."""
    year, month, day = (form.get(f"{prefix}_{p}").strip() for p in DATE_PARTS)
    if not year and not month and not day:
        if required:
            form.errors[prefix] = "Enter at least the year of the event."
        return None
    if not re.fullmatch(r"\d{4}", year):
        form.errors[prefix] = "Enter the year as four digits, such as 2025."
        return None
    if day and not month:
        form.errors[prefix] = "Choose a month for this day, or leave the day empty."
        return None
    if month and not re.fullmatch(r"\d{1,2}", month):
        form.errors[prefix] = "Choose a month from the list."
        return None
    if day and not re.fullmatch(r"\d{1,2}", day):
        form.errors[prefix] = "Enter the day as a number from 1 to 31."
        return None
    text = year + (f"-{int(month):02d}" if month else "") + (f"-{int(day):02d}" if day else "")
    try:
        parse_partial(text)
    except PartialDateError:
        form.errors[prefix] = f"There is no such date: {text}."
        return None
    return text


def row_indexes(form: EventForm, group: str) -> list[int]:
    """For each row that goes into EventInput, its index in the form (blank rows are skipped)."""
    return [i for i, row in enumerate(form.rows.get(group, [])) if _is_filled(group, row)]


def to_payload(form: EventForm) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The dict EventInput validates, and the row index maps used to place its errors."""
    v = form.values
    payload: dict[str, Any] = {
        "title": v.get("title", ""),
        "summary": v.get("summary", "").replace("\r\n", "\n"),
        "kind": v.get("kind", ""),
        "status": v.get("status", "") or "reported",
        "stage_override": v.get("stage_override") or None,
        "location": v.get("location", ""),
        "tags": [t for t in re.split(r"[,;\n]", v.get("tags", "")) if t.strip()],
        **{name: v.get(name, "").replace("\r\n", "\n").strip() or None for name in JUDGEMENT},
    }
    date = _date_text(form, "date", required=True)
    if date is not None:
        payload["date"] = date
    date_end = _date_text(form, "date_end", required=False)
    if date_end is not None:
        payload["date_end"] = date_end
    token = v.get("client_token", "").strip()
    if token:
        payload["client_token"] = token
    index_maps = {g: row_indexes(form, g) for g in ROW_FIELDS}
    for group, indexes in index_maps.items():
        items = []
        for i in indexes:
            row = form.rows[group][i]
            item: dict[str, Any] = {}
            for key in ROW_FIELDS[group]:
                value = row.get(key, "").strip()
                if key in ("quote", "note"):
                    value = row.get(key, "").replace("\r\n", "\n").strip()
                if value != "":
                    item[key] = value
            # A started row without its main field (a URL but no publisher) gets that field's message.
            item.setdefault(ROW_KEY_FIELDS[group][0], "")
            items.append(item)
        payload[group] = items
    return payload, index_maps


# Friendlier words for pydantic's stock messages, by (field, error type).
_MESSAGES: dict[tuple[str, str], str] = {
    ("title", "string_too_short"): "Give the event a title.",
    ("title", "string_too_long"): "Keep the title under 300 characters.",
    ("kind", "literal_error"): "Choose what kind of event this is from the list.",
    ("status", "literal_error"): "Choose a status from the list.",
    ("stage_override", "int_parsing"): "Choose a stage from the list.",
    ("code", "string_too_short"): "Enter a country code such as RUS.",
    ("code", "literal_error"): "Choose a role for this country.",
    ("role", "literal_error"): "Choose a role from the list.",
    ("name", "string_too_short"): "Enter the actor's name.",
    ("type", "literal_error"): "Choose a type from the list.",
    ("designation", "string_too_short"): "Enter the system's designation.",
    ("quantity", "greater_than_equal"): "A quantity cannot be below zero.",
    ("quantity", "int_parsing"): "Enter the quantity as a whole number; put words such as "
    "“as many as 14” in the note.",
    ("quantity", "less_than_equal"): "That quantity is too large.",
    ("publisher", "string_too_short"): "Enter who published this source.",
    ("reliability", "literal_error"): "Choose a reliability grade from A to F.",
    ("credibility", "int_parsing"): "Choose a credibility grade from 1 to 6.",
    ("credibility", "greater_than_equal"): "Choose a credibility grade from 1 to 6.",
    ("credibility", "less_than_equal"): "Choose a credibility grade from 1 to 6.",
    ("likelihood", "literal_error"): "Choose a likelihood from the list (almost no chance … almost certain).",
    ("confidence", "literal_error"): "Choose low, moderate or high confidence.",
    ("likelihood_rationale", "string_too_long"): "Keep the rationale under 2,000 characters.",
    ("confidence_rationale", "string_too_long"): "Keep the rationale under 2,000 characters.",
    ("origin", "string_too_long"): "Keep the origin's name under 200 characters.",
}


def _message(name: str, err: Mapping[str, Any]) -> str:
    friendly = _MESSAGES.get((name, str(err["type"])))
    if friendly:
        return friendly
    if name in ("stage_override",):
        return "Choose a stage from the list."
    msg = str(err["msg"]).removeprefix("Value error, ")
    if msg == "this date is in the future":
        return "This date is in the future; record events that have already happened."
    if msg == "the end date is before the start date":
        return "The end date is before the start date."
    return msg[:1].upper() + msg[1:] + ("" if msg.endswith(".") else ".")


def map_errors(form: EventForm, exc: ValidationError, index_maps: dict[str, list[int]]) -> None:
    """Attach pydantic's errors to the form's field names ("sources-2-url")."""
    for err in exc.errors():
        loc = err["loc"]
        if not loc:  # the model-level check: the only one is the end-before-start rule
            form.errors.setdefault("date_end", _message("date_end", err))
            continue
        head = str(loc[0])
        if head in index_maps and len(loc) >= 3 and isinstance(loc[1], int):
            row = index_maps[head][loc[1]]
            name = str(loc[2])
            form.errors.setdefault(f"{head}-{row}-{name}", _message(name, err))
        elif head in ("date", "date_end"):
            form.errors.setdefault(head, _message(head, err))
        elif head == "client_token":
            form.errors.setdefault("title", "The form expired; reload the page and try again.")
        elif head == "tags":
            form.errors.setdefault("tags", "Keep each tag under 60 characters and at most 50 tags.")
        else:
            form.errors.setdefault(head, _message(head, err))


def _check_date_order(form: EventForm, payload: dict[str, Any]) -> None:
    """Flag an end before the start now, with the other errors, not on the next submit (the model's own
    check runs only once every field is valid)."""
    date, date_end = payload.get("date"), payload.get("date_end")
    if not date or not date_end or "date" in form.errors or "date_end" in form.errors:
        return
    try:
        wrong = end_before_start(str(date), str(date_end))
    except PartialDateError:
        return
    if wrong:
        form.errors["date_end"] = "The end date is before the start date."


def _check_grades(form: EventForm, indexes: list[int]) -> None:
    """Every source going into the event has both grades chosen (the API's default is not the form's)."""
    for i in indexes:
        for key, message in GRADE_MESSAGES.items():
            if not form.rows["sources"][i].get(key, "").strip():
                form.errors[f"sources-{i}-{key}"] = message


def validate(form: EventForm) -> EventInput | None:
    """EventInput from the form, or None with form.errors filled in."""
    payload, index_maps = to_payload(form)
    _check_grades(form, index_maps["sources"])
    try:
        data = EventInput.model_validate(payload)
    except ValidationError as exc:
        map_errors(form, exc, index_maps)
        _check_date_order(form, payload)
        return None
    if form.errors:  # a bad date combination the model never saw
        return None
    return data


# Which form inputs carry each field of a snapshot (for taking a field from another version).
GROUP_FIELDS = ("countries", "actors", "systems", "sources")


def copy_field(target: EventForm, source: EventForm, name: str) -> None:
    """Replace one snapshot field of `target` (its inputs or rows) with the value in `source`."""
    if name in GROUP_FIELDS:
        target.rows[name] = [dict(r) for r in source.rows.get(name, [])]
    elif name in ("date", "date_end"):
        for part in DATE_PARTS:
            target.values[f"{name}_{part}"] = source.get(f"{name}_{part}")
    elif name in SCALARS:
        target.values[name] = source.get(name)


def base_snapshot(current: dict[str, Any], history: list[Any], steps: int) -> dict[str, Any] | None:
    """The snapshot the editor started from: `current` with the newest `steps` audited changes undone.

    Every version bump writes exactly one audit row (update, delete, restore, merge), so undoing the
    newest rows walks back to the version the edit form was loaded at. None when history is too short.
    """
    rows = [h for h in history if h.action in ("update", "delete", "restore", "merge")][:steps]
    if steps < 0 or len(rows) < steps:
        return None
    base = dict(current)
    for row in rows:  # newest first
        for field_name, change in (row.changes or {}).items():
            if field_name in base:
                base[field_name] = change.get("before")
    return base
