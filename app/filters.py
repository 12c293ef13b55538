"""EventFilter: the one filter, parsed once from a query string, that drives every view and export."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from app.domain.countries import country_name, resolve_country
from app.domain.dates import PartialDate, PartialDateError, parse_partial
from app.domain.vocab import CONFIDENCES, KINDS, LIKELIHOODS, RELIABILITY, STAGES, STATUSES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Query parameter -> EventFilter attribute (`from` is a Python keyword).
PARAMS: dict[str, str] = {
    "q": "q",
    "country": "country",
    "supplier": "supplier",
    "recipient": "recipient",
    "target": "target",
    "actor": "actor",
    "system": "system",
    "system_exact": "system_exact",
    "kind": "kind",
    "status": "status",
    "stage_min": "stage_min",
    "from": "date_from",
    "to": "date_to",
    "source": "source",
    "reliability_max": "reliability_max",
    "tag": "tag",
    "due": "due",
    "origins_min": "origins_min",
    "origins_max": "origins_max",
    "likelihood": "likelihood",
    "confidence": "confidence",
}
# The highest origins_min worth asking (an event has at most 100 sources).
MAX_ORIGINS = 100
# What /export.csv and `signalboard export` take besides the filter (`bom=1`: the Excel variant).
EXPORT_EXTRA = ("bom",)
BOM_ON, BOM_OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
COUNTRY_PARAMS = ("country", "supplier", "recipient", "target")
# Codes and vocabulary words never hold commas, so "RUS, VEN" typed in one box means two values.
SPLIT_ON_COMMA = frozenset({*COUNTRY_PARAMS, "kind", "status", "tag", "likelihood", "confidence"})
MAX_VALUES = 50
MAX_LENGTH = 200


class MultiMapping(Protocol):
    """What a query string gives: repeated keys (Starlette's QueryParams, or pairs via from_pairs)."""

    def getlist(self, key: str) -> list[str]: ...


class QueryParams(MultiMapping, Protocol):
    """A query string whose parameter names can be listed (to refuse the ones no filter knows)."""

    def keys(self) -> Iterable[str]: ...


@dataclass(frozen=True)
class FilterError:
    """A bad filter value: which parameter, a sentence naming the value, and close known values."""

    param: str
    message: str
    value: str | None = None  # the value refused, when one value is to blame (to look for close ones)
    suggestions: tuple[str, ...] = ()

    def text(self) -> str:
        """The message with its suggestions in words (for machines, which cannot follow a link)."""
        if not self.suggestions:
            return self.message
        return f"{self.message}; did you mean {' or '.join(f'“{s}”' for s in self.suggestions)}?"


class InvalidFilter(ValueError):
    """Raised by EventFilter.parse_strict and `strict_filter`; carries every problem found."""

    def __init__(self, errors: list[FilterError]) -> None:
        super().__init__("; ".join(f"{e.param}: {e.text()}" for e in errors))
        self.errors = errors

    def detail(self) -> list[dict[str, Any]]:
        """The 422 body's `detail` list, the same for the API and the CSV export."""
        return [{"loc": ["query", e.param], "msg": e.text(), "type": "value_error"} for e in self.errors]


@dataclass(frozen=True)
class EventFilter:
    """A parsed, validated filter. Repeated values OR together; different parameters AND."""

    q: str | None = None
    country: tuple[str, ...] = ()
    supplier: tuple[str, ...] = ()
    recipient: tuple[str, ...] = ()
    target: tuple[str, ...] = ()
    actor: tuple[str, ...] = ()
    system: tuple[str, ...] = ()
    # Only the systems named, not their variants (`system=Shahed-136` alone also finds Geran-2).
    system_exact: bool = False
    kind: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    stage_min: int | None = None
    date_from: PartialDate | None = None
    date_to: PartialDate | None = None
    source: tuple[str, ...] = ()
    reliability_max: str | None = None
    tag: tuple[str, ...] = ()
    # Only events due for review (claimed or reported, clock run out: app/domain/review.py). "Now" is
    # read from app/domain/clock.py by each engine when it evaluates the filter.
    due: bool = False
    # At least this many independent origins (sources' distinct origins): 2 leaves single-origin claims out.
    origins_min: int | None = None
    # At most this many: origins_min=1&origins_max=1 is "rests on a single origin".
    origins_max: int | None = None
    likelihood: tuple[str, ...] = ()  # ICD 203 words, OR
    confidence: tuple[str, ...] = ()  # low / moderate / high, OR
    errors: tuple[FilterError, ...] = field(default=(), compare=False)
    # Ids of the systems `system` covers (each named one and, unless system_exact, its variants at any
    # depth), filled once by `page_filter`/`strict_filter` (app/queries/families.py) so every engine
    # evaluates the same set; None: not resolved, engines match the names alone. Not part of the URL:
    # caches keyed by the query string also hold the data version, which moves on any system edit.
    system_family: tuple[int, ...] | None = field(default=None, compare=False)

    # ---- parsing -------------------------------------------------------------------------------
    @classmethod
    def parse(cls, params: MultiMapping) -> EventFilter:
        """Parse a query string; bad values are dropped and reported in `errors`, never raised."""
        errors: list[FilterError] = []
        values: dict[str, Any] = {}

        def many(name: str) -> list[str]:
            given = params.getlist(name)
            if name in SPLIT_ON_COMMA:
                given = [part for v in given for part in v.split(",")]
            raw = [v.strip() for v in given if v and v.strip()]
            out: list[str] = []
            for v in raw[:MAX_VALUES]:
                if len(v) > MAX_LENGTH:
                    errors.append(
                        FilterError(
                            name, f"a {name} value may be at most {MAX_LENGTH} characters (“{v[:20]}…”)"
                        )
                    )
                elif v not in out:
                    out.append(v)
            if len(raw) > MAX_VALUES:
                errors.append(FilterError(name, f"at most {MAX_VALUES} {name} values (got {len(raw)})"))
            return out

        def one(name: str) -> str | None:
            got = many(name)
            if len(got) > 1:
                shown = ", ".join(f"“{v}”" for v in got)
                errors.append(FilterError(name, f"give {name} once (got {shown})"))
            return got[0] if got else None

        q = one("q")
        values["q"] = " ".join(q.split()) if q else None
        for name in COUNTRY_PARAMS:
            codes = []
            for v in many(name):
                code = resolve_country(v)
                if code is None:
                    errors.append(
                        FilterError(name, f"unknown country “{v}”; use an ISO code such as RUS", value=v)
                    )
                elif code not in codes:
                    codes.append(code)
            values[name] = tuple(codes)
        values["actor"] = tuple(many("actor"))
        values["system"] = tuple(many("system"))
        exact = one("system_exact")
        if exact is not None:
            if exact in ("0", "1"):
                values["system_exact"] = exact == "1"
            else:
                errors.append(
                    FilterError(
                        "system_exact",
                        f"“{exact}” is not 0 or 1: system_exact=1 leaves the named systems' variants out",
                    )
                )
        due = one("due")
        if due is not None:
            if due in ("0", "1"):
                values["due"] = due == "1"
            else:
                errors.append(
                    FilterError("due", f"“{due}” is not 0 or 1: due=1 keeps the events due for review")
                )
        values["source"] = tuple(many("source"))
        values["tag"] = tuple(t.lower() for t in many("tag"))
        for name, vocab in (
            ("kind", KINDS),
            ("status", STATUSES),
            ("likelihood", LIKELIHOODS),
            ("confidence", CONFIDENCES),
        ):
            picked = []
            for v in many(name):
                word = " ".join(v.lower().split())
                if word in vocab:
                    picked.append(word)
                else:
                    errors.append(
                        FilterError(name, f"unknown {name} “{v}”; one of {', '.join(vocab)}", value=v)
                    )
            values[name] = tuple(dict.fromkeys(picked))
        stage = one("stage_min")
        if stage is not None:
            if stage.isdecimal() and int(stage) in STAGES:
                values["stage_min"] = int(stage)
            else:
                errors.append(
                    FilterError(
                        "stage_min", f"“{stage}” is not a stage: stage_min is a stage number from 0 to 6"
                    )
                )
        for name, example in (
            ("origins_min", "2: corroborated by at least two independent origins"),
            ("origins_max", "1 with origins_min=1: rests on a single origin"),
        ):
            origins = one(name)
            if origins is None:
                continue
            if origins.isdecimal() and int(origins) <= MAX_ORIGINS:
                values[name] = int(origins)
            else:
                errors.append(
                    FilterError(
                        name,
                        f"“{origins}” is not a number of origins: {name} is a whole number from 0 to "
                        f"{MAX_ORIGINS} ({example})",
                    )
                )
        for param, attr in (("from", "date_from"), ("to", "date_to")):
            raw_date = one(param)
            if raw_date is not None:
                try:
                    values[attr] = parse_partial(raw_date)
                except PartialDateError as exc:
                    errors.append(FilterError(param, str(exc)))
        rel = one("reliability_max")
        if rel is not None:
            if rel.upper() in RELIABILITY:
                values["reliability_max"] = rel.upper()
            else:
                errors.append(
                    FilterError(
                        "reliability_max",
                        f"“{rel}” is not a grade: reliability_max is a grade from A (best) to F",
                    )
                )
        low, high = values.get("origins_min"), values.get("origins_max")
        if low is not None and high is not None and high < low:
            # The panel's "at least" picked above a "1 origin" click: the range is left out at its top.
            errors.append(
                FilterError(
                    "origins_max",
                    f"origins_max {high} is below origins_min {low}: no event has fewer origins than it has",
                )
            )
        d_from, d_to = values.get("date_from"), values.get("date_to")
        if d_from and d_to and d_to.end < d_from.start:
            errors.append(
                FilterError("to", f"the “to” date “{d_to.iso()}” is before the “from” date “{d_from.iso()}”")
            )
        return cls(**values, errors=tuple(errors))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> EventFilter:
        """Parse from (key, value) pairs, e.g. command-line arguments."""
        return cls.parse(_Pairs(list(pairs)))

    @classmethod
    def parse_strict(cls, params: MultiMapping) -> EventFilter:
        """Parse, raising InvalidFilter on any bad value (the API's 422)."""
        parsed = cls.parse(params)
        if parsed.errors:
            raise InvalidFilter(list(parsed.errors))
        return parsed

    # ---- back to a URL ---------------------------------------------------------------------------
    def pairs(self) -> list[tuple[str, str]]:
        """The filter as query-string pairs, in a stable order."""
        out: list[tuple[str, str]] = []
        for param, attr in PARAMS.items():
            value = getattr(self, attr)
            if value is None or value == () or value is False:
                continue
            if value is True:
                out.append((param, "1"))
            elif isinstance(value, tuple):
                out.extend((param, str(v)) for v in value)
            else:
                out.append((param, value.iso() if isinstance(value, PartialDate) else str(value)))
        return out

    def query_string(self, **extra: str) -> str:
        """The filter as a query string ('' when empty), with optional extra parameters."""
        pairs = self.pairs() + [(k, v) for k, v in extra.items() if v]
        return urlencode(pairs)

    def is_empty(self) -> bool:
        """True when no filter is set."""
        return not self.pairs()

    def without(self, param: str, value: str | None = None) -> EventFilter:
        """A copy with one value (or the whole parameter) removed: the link behind a filter chip."""
        attr = PARAMS[param]
        current = getattr(self, attr)
        # A family resolved for other system values is no longer the right one (see `system_family`).
        stale: dict[str, Any] = {"system_family": None} if param.startswith("system") else {}
        if isinstance(current, tuple) and value is not None:
            changes: dict[str, Any] = {attr: tuple(v for v in current if v != value), **stale}
            return replace(self, **changes)
        empty = () if isinstance(current, tuple) else (False if isinstance(current, bool) else None)
        cleared: dict[str, Any] = {attr: empty, **stale}
        return replace(self, **cleared)

    def adding(self, param: str, value: str) -> EventFilter:
        """A copy with one more value for a repeatable parameter (or the single value replaced)."""
        attr = PARAMS[param]
        current = getattr(self, attr)
        if isinstance(current, tuple):
            if value in current:
                return self
            added: dict[str, Any] = {attr: (*current, value)}
            if attr == "system":
                added["system_family"] = None  # resolved for the other values (see `system_family`)
            return replace(self, **added)
        return EventFilter.parse(_Pairs([*self.without(param).pairs(), (param, value)]))

    def with_origins(self, low: int | None, high: int | None) -> EventFilter:
        """A copy asking for between `low` and `high` independent origins (None: no bound)."""
        return replace(self, origins_min=low, origins_max=high)

    def chips(self) -> list[dict[str, str]]:
        """Active filters as removable chips: label and the query string without that value."""
        chips = []
        for param, value in self.pairs():
            label = value
            if param in COUNTRY_PARAMS:
                label = country_name(value)
            elif param == "stage_min":
                label = f"{value} {STAGES[int(value)]}"
            elif param == "system_exact":
                label = "left out"
            elif param == "due":
                label = "for review"
            elif param == "origins_min":
                label = f"at least {value}"
            elif param == "origins_max":
                label = f"at most {value}"
            name = {
                "q": "text",
                "from": "from",
                "to": "to",
                "system_exact": "variants",
                "due": "due",
                "origins_min": "origins",
                "origins_max": "origins",
            }.get(param, param.replace("_", " "))
            chips.append(
                {
                    "param": param,
                    "name": name,
                    "label": label,
                    "remove": self.without(param, value).query_string(),
                }
            )
        return chips

    def describe(self) -> str:
        """A short slug of the filter for file names: 'supplier-RUS_kind-statement'."""
        parts = []
        for param, value in self.pairs():
            slug = "".join(ch if ch.isalnum() else "-" for ch in value)[:30].strip("-")
            parts.append(f"{param}-{slug}")
        text = "_".join(parts)[:120]
        return text or "all"

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for JSON responses and templates."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("errors", "system_family"):
                continue
            v = getattr(self, f.name)
            out[f.name] = v.iso() if isinstance(v, PartialDate) else (list(v) if isinstance(v, tuple) else v)
        return out


class _Pairs:
    """A minimal multi-mapping over a list of pairs."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]

    def keys(self) -> list[str]:
        return list(dict.fromkeys(k for k, _ in self._pairs))


def pairs_of(pairs: Iterable[tuple[str, str]]) -> QueryParams:
    """A query string given as (key, value) pairs, e.g. from the command line."""
    return _Pairs(list(pairs))


# ---- the one policy for bad values ---------------------------------------------------------------------
# A problem with a single-valued parameter ("to" before "from", q given twice) leaves it out whole.
SINGLE_VALUED = (
    "q",
    "system_exact",
    "stage_min",
    "from",
    "to",
    "reliability_max",
    "due",
    "origins_min",
    "origins_max",
)


def page_filter(session: Session, params: MultiMapping) -> tuple[EventFilter, list[FilterError]]:
    """For people: the filter with every bad value left out, and one message per value left out.

    A value is bad when it is malformed (a date that is no date, stage 9, too long, given twice) or
    unknown: a country, kind or status outside its list, or an actor or system that no name or alias
    names. Messages offer close known values ("did you mean"). The page, its partial and lazy parts,
    and /dyads use the returned filter for their rows and for every link they build (export, chips,
    pager), so the export link gives exactly the rows on screen.

    Tags and publishers (`tag`, `source`) are never unknown: they are words written on events, not
    entries of a catalogue, so one that no event carries is a valid question whose answer is "no
    events" (a saved query keeps working before its first event); only a malformed one is refused.
    """
    from app.queries.events import drop_unknown_names
    from app.queries.families import with_family
    from app.queries.reference import with_suggestions

    f = EventFilter.parse(params)
    errors = list(f.errors)
    for e in errors:
        if e.param in SINGLE_VALUED and getattr(f, PARAMS[e.param]) is not None:
            f = f.without(e.param)
    f, unknown = drop_unknown_names(session, f)
    return with_family(session, f), with_suggestions(session, [*errors, *unknown])


def wants_bom(params: MultiMapping) -> bool:
    """Whether `bom` asks for the Excel variant (UTF-8 with a BOM); InvalidFilter if neither on nor off."""
    values = [v.strip().lower() for v in params.getlist("bom")]
    bad = [v for v in values if v not in BOM_ON + BOM_OFF]
    if bad:
        message = f"“{bad[0][:20]}” is not a switch: bom is 1 (Excel's byte-order mark) or 0"
        raise InvalidFilter([FilterError("bom", message)])
    return any(v in BOM_ON for v in values)


def strict_filter(session: Session, params: QueryParams, allowed: Collection[str] = ()) -> EventFilter:
    """For machines (the API, /export.csv, the CLI): the filter, or InvalidFilter naming each bad value.

    The same values are bad as for `page_filter`; a parameter name that is neither a filter nor in
    `allowed` is refused too, since a misspelt name would otherwise widen the answer without a word.
    """
    f, errors = page_filter(session, params)
    strange = sorted(set(params.keys()) - set(PARAMS) - set(allowed))
    errors += [FilterError(name, f"unknown parameter “{name}”", value=name) for name in strange]
    if errors:
        raise InvalidFilter(errors)
    return f
