"""EventFilter: the one filter, parsed once from a query string, that drives every view and export."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol
from urllib.parse import urlencode

from app.countries import country_name, resolve_country
from app.dates import PartialDate, PartialDateError, parse_partial
from app.vocab import KINDS, RELIABILITY, STAGES, STATUSES

# Query parameter -> EventFilter attribute (`from` is a Python keyword).
PARAMS: dict[str, str] = {
    "q": "q",
    "country": "country",
    "supplier": "supplier",
    "recipient": "recipient",
    "target": "target",
    "actor": "actor",
    "system": "system",
    "kind": "kind",
    "status": "status",
    "stage_min": "stage_min",
    "from": "date_from",
    "to": "date_to",
    "source": "source",
    "reliability_max": "reliability_max",
    "tag": "tag",
}
COUNTRY_PARAMS = ("country", "supplier", "recipient", "target")
# Codes and vocabulary words never hold commas, so "RUS, VEN" typed in one box means two values.
SPLIT_ON_COMMA = frozenset({*COUNTRY_PARAMS, "kind", "status", "tag"})
MAX_VALUES = 50
MAX_LENGTH = 200


class MultiMapping(Protocol):
    """What a query string gives: repeated keys (Starlette's QueryParams, or pairs via from_pairs)."""

    def getlist(self, key: str) -> list[str]: ...


@dataclass(frozen=True)
class FilterError:
    """A bad filter value: which parameter, and a sentence a person can act on."""

    param: str
    message: str


class InvalidFilter(ValueError):
    """Raised by EventFilter.parse_strict; carries every problem found."""

    def __init__(self, errors: list[FilterError]) -> None:
        super().__init__("; ".join(f"{e.param}: {e.message}" for e in errors))
        self.errors = errors


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
    kind: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    stage_min: int | None = None
    date_from: PartialDate | None = None
    date_to: PartialDate | None = None
    source: tuple[str, ...] = ()
    reliability_max: str | None = None
    tag: tuple[str, ...] = ()
    errors: tuple[FilterError, ...] = field(default=(), compare=False)

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
                    errors.append(FilterError(name, f"a {name} value may be at most {MAX_LENGTH} characters"))
                elif v not in out:
                    out.append(v)
            if len(raw) > MAX_VALUES:
                errors.append(FilterError(name, f"at most {MAX_VALUES} {name} values"))
            return out

        def one(name: str) -> str | None:
            got = many(name)
            if len(got) > 1:
                errors.append(FilterError(name, f"give {name} once"))
            return got[0] if got else None

        q = one("q")
        values["q"] = " ".join(q.split()) if q else None
        for name in COUNTRY_PARAMS:
            codes = []
            for v in many(name):
                code = resolve_country(v)
                if code is None:
                    errors.append(FilterError(name, f"unknown country “{v}”; use an ISO code such as RUS"))
                elif code not in codes:
                    codes.append(code)
            values[name] = tuple(codes)
        values["actor"] = tuple(many("actor"))
        values["system"] = tuple(many("system"))
        values["source"] = tuple(many("source"))
        values["tag"] = tuple(t.lower() for t in many("tag"))
        for name, vocab in (("kind", KINDS), ("status", STATUSES)):
            picked = []
            for v in many(name):
                if v.lower() in vocab:
                    picked.append(v.lower())
                else:
                    errors.append(FilterError(name, f"unknown {name} “{v}”; one of {', '.join(vocab)}"))
            values[name] = tuple(dict.fromkeys(picked))
        stage = one("stage_min")
        if stage is not None:
            if stage.isdecimal() and int(stage) in STAGES:
                values["stage_min"] = int(stage)
            else:
                errors.append(FilterError("stage_min", "stage_min is a stage number from 0 to 6"))
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
                errors.append(FilterError("reliability_max", "reliability_max is a grade from A (best) to F"))
        d_from, d_to = values.get("date_from"), values.get("date_to")
        if d_from and d_to and d_to.end < d_from.start:
            errors.append(FilterError("to", "the “to” date is before the “from” date"))
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
            if value is None or value == ():
                continue
            if isinstance(value, tuple):
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
        if isinstance(current, tuple) and value is not None:
            changes: dict[str, Any] = {attr: tuple(v for v in current if v != value)}
            return replace(self, **changes)
        cleared: dict[str, Any] = {attr: () if isinstance(current, tuple) else None}
        return replace(self, **cleared)

    def adding(self, param: str, value: str) -> EventFilter:
        """A copy with one more value for a repeatable parameter (or the single value replaced)."""
        attr = PARAMS[param]
        current = getattr(self, attr)
        if isinstance(current, tuple):
            added: dict[str, Any] = {attr: (*current, value)}
            return self if value in current else replace(self, **added)
        return EventFilter.parse(_Pairs([*self.without(param).pairs(), (param, value)]))

    def chips(self) -> list[dict[str, str]]:
        """Active filters as removable chips: label and the query string without that value."""
        chips = []
        for param, value in self.pairs():
            label = value
            if param in COUNTRY_PARAMS:
                label = country_name(value)
            elif param == "stage_min":
                label = f"{value} {STAGES[int(value)]}"
            name = {"q": "text", "from": "from", "to": "to"}.get(param, param.replace("_", " "))
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
            if f.name == "errors":
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


def from_mapping(mapping: Mapping[str, str | list[str]]) -> EventFilter:
    """Parse from a plain dict whose values may be lists (handy in tests)."""
    pairs: list[tuple[str, str]] = []
    for k, v in mapping.items():
        pairs.extend((k, x) for x in ([v] if isinstance(v, str) else v))
    return EventFilter.from_pairs(pairs)
