"""Facet counts for a filter: how many events each country, kind, status, stage, actor or system leaves.

Semantics ("disjunctive faceting", as in most faceted search): the count beside a value is the number of
events the filter would leave if that parameter held just that value. For a parameter the filter does not
use yet, that is simply "add this value". For a parameter already in use, the parameter's own condition
is left out while counting, so the numbers beside its other values stay meaningful: with kind=statement
selected, "offer 12" still says how many offers the rest of the filter matches, instead of collapsing to
0 (AND would be nonsense for one field) or to an OR-union count that hides the value's own weight. Ticking
one more value ORs it in, so the new total is at most the sum of the ticked values' counts.

Counted on the in-memory facts copy (app/queries/aggregates/facts/): one mask per parameter, each facet
over the
mask of the filter minus its own parameter. tests/sql_oracle.py asks PostgreSQL the same in one statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.domain.countries import country_name
from app.domain.textkeys import fold
from app.domain.vocab import CONFIDENCES, KINDS, LIKELIHOODS, ORIGIN_STEPS, STAGES, STATUSES
from app.filters import EventFilter
from app.queries.aggregates import facts

COUNTRY_FACETS = ("supplier", "recipient", "target", "country")
# How many values a long facet (countries, actors, systems) lists besides the selected ones.
TOP_N = 6


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet: what goes in the URL, how it reads, its count, and whether it is ticked."""

    value: str
    label: str
    count: int
    selected: bool = False


@dataclass
class Facets:
    """Facet values by parameter name (kind, status, stage_min, supplier, ..., actor, system)."""

    groups: dict[str, list[FacetValue]] = field(default_factory=dict)
    # False for the instant, count-free panel (vocabulary and ticked values) shown while counts load.
    counted: bool = True

    def __getitem__(self, param: str) -> list[FacetValue]:
        return self.groups.get(param, [])


def facet_counts(session: Session, f: EventFilter, top_n: int = TOP_N) -> Facets:
    """Every facet of the filter, counted on the in-memory copy."""
    return assemble(f, facts.selection(session, f).facet_rows(top_n))


VOCAB_FACETS = (
    ("kind", KINDS),
    ("status", STATUSES),
    ("likelihood", LIKELIHOODS),
    ("confidence", CONFIDENCES),
)


def origin_label(n: int) -> str:
    """A corroboration step as the panel shows it: '1 origin', '2 origins', '3+ origins'."""
    return f"{n}{'+' if n == ORIGIN_STEPS[-1] else ''} origin{'s' if n > 1 else ''}"


def origin_steps(f: EventFilter, exact: dict[int, int], counted: bool = True) -> dict[str, list[FacetValue]]:
    """The corroboration facets: `origins` (exactly 1, exactly 2, 3 or more: the one-click buckets) and
    `origins_min` (at least 1, 2, 3: the select), from events per number of origins (the last step: or more).
    """
    top = ORIGIN_STEPS[-1]
    buckets = []
    for n in ORIGIN_STEPS:
        ticked = f.origins_min == n and (f.origins_max == n if n < top else f.origins_max is None)
        buckets.append(FacetValue(str(n), origin_label(n), exact.get(n, 0), ticked))
    at_least = [
        FacetValue(
            str(n),
            f"at least {n}",
            sum(c for k, c in exact.items() if k >= n),
            f.origins_min == n and f.origins_max is None,
        )
        for n in ORIGIN_STEPS
    ]
    return {"origins": buckets, "origins_min": at_least}


def assemble(f: EventFilter, raw: dict[str, list[tuple[str, int, bool]]]) -> Facets:
    """The panel's facets from (value, count, ticked) rows per facet, however they were counted."""
    facets = Facets()
    facets.groups.update(origin_steps(f, {int(v): c for v, c, _ in raw.get("origins", [])}))
    for param, vocab in VOCAB_FACETS:
        got = {v: c for v, c, _ in raw.get(param, [])}
        chosen = getattr(f, param)
        facets.groups[param] = [FacetValue(v, v, got.get(v, 0), v in chosen) for v in vocab]
    exact = {int(v): c for v, c, _ in raw.get("stage_min", [])}
    facets.groups["stage_min"] = [
        FacetValue(str(s), f"{s} · {label}", sum(c for st, c in exact.items() if st >= s), f.stage_min == s)
        for s, label in STAGES.items()
    ]
    for param in COUNTRY_FACETS:
        got = {v: c for v, c, _ in raw.get(param, [])}
        selected = getattr(f, param)
        values = [FacetValue(code, country_name(code), got.get(code, 0), True) for code in selected]
        values += [FacetValue(c, country_name(c), n, False) for c, n in got.items() if c not in selected]
        facets.groups[param] = values
    for param in ("actor", "system"):
        rows = raw.get(param, [])
        values = [FacetValue(v, v, n, sel) for v, n, sel in rows]
        # A ticked name that matches nothing (or no event under the rest of the filter) stays visible.
        matched = {fold(v.value) for v in values if v.selected}
        ticked_keys = {fold(x) for x in getattr(f, param)}
        if len(matched) < len(ticked_keys):
            values += [FacetValue(x, x, 0, True) for x in getattr(f, param) if fold(x) not in matched][
                : len(ticked_keys) - len(matched)
            ]
        facets.groups[param] = values
    # Publishers and tags are not counted (free text, long tails); the panel still lists the ticked ones.
    for param in ("source", "tag"):
        facets.groups[param] = [FacetValue(v, v, 0, True) for v in getattr(f, param)]
    for param in (*COUNTRY_FACETS, "actor", "system"):
        facets.groups[param].sort(key=lambda x: (not x.selected, -x.count, x.label))
    return facets


def facet_skeleton(f: EventFilter) -> Facets:
    """The panel without counts, from the vocabulary and the filter alone (no SQL): what the first page shows.

    Every kind, status and stage is listed, and every ticked country, actor, system, publisher and tag stays
    a ticked box, so the form keeps the whole filter while the counted lists load in their own request.
    """
    facets = Facets(counted=False)
    facets.groups.update(origin_steps(f, {}))
    for param, vocab in VOCAB_FACETS:
        chosen = getattr(f, param)
        facets.groups[param] = [FacetValue(v, v, 0, v in chosen) for v in vocab]
    facets.groups["stage_min"] = [
        FacetValue(str(s), f"{s} · {label}", 0, f.stage_min == s) for s, label in STAGES.items()
    ]
    for param in COUNTRY_FACETS:
        facets.groups[param] = [FacetValue(c, country_name(c), 0, True) for c in getattr(f, param)]
    for param in ("actor", "system", "source", "tag"):
        facets.groups[param] = [FacetValue(v, v, 0, True) for v in getattr(f, param)]
    return facets
