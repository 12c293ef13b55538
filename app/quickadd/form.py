"""A draft's kept suggestions written into the new-event form (app.forms.EventForm); the text marked up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from app.forms import EventForm, blank_form
from app.quickadd.extract import Draft, Suggestion


@dataclass(frozen=True)
class Source:
    """What the analyst said about the report: its address, publisher and publication date (YYYY-MM-DD)."""

    url: str = ""
    publisher: str = ""
    published: str = ""


def draft_form(draft: Draft, dropped: Sequence[str], source: Source) -> EventForm:
    """The new-event form pre-filled with the kept suggestions: the first date and kind, every name found."""
    form = blank_form()
    kept = draft.kept(dropped)

    def first(field: str) -> Suggestion | None:
        return next((s for s in kept if s.field == field), None)

    if title := first("title"):
        form.values["title"] = title.value
    if kind := first("kind"):
        form.values["kind"] = kind.value
    if when := first("date"):
        parts = when.value.split("-")
        for name, part in zip(("year", "month", "day"), parts, strict=False):
            form.values[f"date_{name}"] = part
        if when.value_end:
            end = when.value_end.split("-")
            form.values["date_end_year"], form.values["date_end_month"] = end[0], end[1]
    countries = [{"code": s.value, "role": s.role or "supplier"} for s in kept if s.field == "country"]
    actors = [{"name": s.value, "role": s.role or "speaker"} for s in kept if s.field == "actor"]
    systems = [{"designation": s.value, "quantity": s.quantity or ""} for s in kept if s.field == "system"]
    quotes = [s.value for s in kept if s.field == "quote"]
    form.rows["countries"] = countries or form.rows["countries"]
    form.rows["actors"] = actors or form.rows["actors"]
    form.rows["systems"] = systems or form.rows["systems"]
    form.rows["sources"][0].update(
        {
            "publisher": source.publisher,
            "url": source.url,
            "published": source.published,
            "quote": "\n\n".join(quotes),
        }
    )
    return form


@dataclass(frozen=True)
class Piece:
    """A stretch of the pasted text and the ids of the kept suggestions that came from it (none: plain)."""

    text: str
    ids: tuple[str, ...]
    field: str


def marked_text(draft: Draft, dropped: Sequence[str]) -> list[Piece]:
    """The pasted text cut where kept suggestions' spans begin and end, for <mark> in the template.

    The template escapes each piece; nothing of the text is ever inserted as HTML.
    """
    kept = draft.kept(dropped)
    cuts = {0, len(draft.text)}
    for s in kept:
        for span in s.spans:
            if s.field != "title":
                cuts.update((span.start, span.end))
    bounds = sorted(c for c in cuts if 0 <= c <= len(draft.text))
    covering: dict[int, list[Suggestion]] = {}
    for s in kept:
        if s.field == "title":
            continue  # the whole first sentence: marking it would hide the names inside
        for span in s.spans:
            for b in bounds:
                if span.start <= b < span.end:
                    covering.setdefault(b, []).append(s)
    pieces = []
    for lo, hi in pairwise(bounds):
        if lo == hi:
            continue
        owners = covering.get(lo, [])
        pieces.append(
            Piece(draft.text[lo:hi], tuple(s.id for s in owners), owners[0].field if owners else "")
        )
    return pieces
