"""Before a typed name becomes a new catalogue entry: the close existing names to offer ("did you mean").

A name that folds to an existing name or alias is that entry and is never asked about; a name that
matches nothing exactly but is close to entries (another script, a transliteration, a typo, other
punctuation) is returned with those entries, so the form, the import preview and the API can ask before
creating a second "Zelensky". Generic over the catalogue kind: another catalogue (origins) plugs in by
adding its model to CATALOGUES and its names to app/queries/reference.catalogue_index.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Actor, System
from app.queries.reference import catalogue_index
from app.schemas import EventInput
from app.textkeys import fold

# Catalogue kind -> model with `match_keys` (folded name and aliases).
CATALOGUES: dict[str, Any] = {"actor": Actor, "system": System}
# What each kind is called in a sentence ("create it as a new actor").
NOUNS = {"actor": "actor", "system": "system"}
# Where an event names an entry of each kind: the EventInput list and its link's name field.
LINK_FIELDS = {"actor": ("actors", "name"), "system": ("systems", "designation")}
# How many existing names one typed name offers.
OFFERED = 3


@dataclass(frozen=True)
class NearName:
    """A typed name that is not in the catalogue, and the existing entries close to it, best first."""

    kind: str
    typed: str
    suggestions: tuple[str, ...]

    def sentence(self) -> str:
        """'“Зеленський” is not a known actor; did you mean “Volodymyr Zelensky”?'."""
        offered = " or ".join(f"“{s}”" for s in self.suggestions)
        return f"“{self.typed}” is not a known {NOUNS.get(self.kind, self.kind)}; did you mean {offered}?"


def confirmation_key(kind: str, name: str) -> str:
    """How a "yes, create it as new" answer is remembered: the kind and the folded name."""
    return f"{kind}:{fold(name)}"


def known_keys(session: Session, kind: str, names: Iterable[str]) -> set[str]:
    """The folded forms among `names` that are a name or alias in the `kind` catalogue (one query)."""
    model = CATALOGUES[kind]
    keys = sorted({fold(n) for n in names})
    if not keys:
        return set()
    found = session.scalars(select(model.match_keys).where(model.match_keys.overlap(keys)))
    have = {key for row in found for key in row}
    return {key for key in keys if key in have}


def close_to_new(
    session: Session, kind: str, new: Iterable[str], deadline: float | None = None
) -> tuple[list[NearName], int]:
    """For names known to be new: those close to existing entries, and how many names were compared.

    `deadline` (time.monotonic()) stops comparing a long list (an import) so its preview stays quick.
    """
    index = None
    out: list[NearName] = []
    compared = 0
    for name in new:
        if deadline is not None and time.monotonic() > deadline:
            break
        index = index or catalogue_index(session, kind)
        compared += 1
        close = index.close(name, OFFERED)
        if close:
            out.append(NearName(kind, name, tuple(c.name for c in close)))
    return out, compared


def near_names(
    session: Session, kind: str, names: Iterable[str], confirmed: Collection[str] = ()
) -> list[NearName]:
    """Each of `names` not in the `kind` catalogue but close to entries there (unless confirmed as new)."""
    distinct: dict[str, str] = {}
    for name in names:
        if name.strip() and confirmation_key(kind, name) not in confirmed:
            distinct.setdefault(fold(name), name)
    known = known_keys(session, kind, distinct.values())
    return close_to_new(session, kind, [n for k, n in distinct.items() if k not in known])[0]


def use_existing(data: EventInput, chosen: dict[tuple[str, str], str]) -> EventInput:
    """`data` with each name the analyst matched to an entry ((kind, folded typed name) -> entry name)
    replaced by that entry's name; unchanged (the same object) when it names none of them."""
    update: dict[str, Any] = {}
    for kind, (group, field) in LINK_FIELDS.items():
        links = getattr(data, group)
        names = [getattr(link, field) for link in links]
        if any((kind, fold(name)) in chosen for name in names):
            update[group] = [
                link.model_copy(update={field: chosen.get((kind, fold(name)), name)})
                for link, name in zip(links, names, strict=True)
            ]
    return data.model_copy(update=update) if update else data
