"""Validated input for events: one model shared by the web forms, the JSON API, CSV import and demo data."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict

from app.domain.countries import resolve_country
from app.domain.dates import PartialDate, parse_partial
from app.domain.textkeys import fold
from app.domain.vocab import (
    ACTOR_ROLES,
    ACTOR_TYPES,
    CONFIDENCES,
    COUNTRY_ROLES,
    KINDS,
    LIKELIHOODS,
    STATUSES,
)

Kind = Literal[KINDS]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
CountryRole = Literal[COUNTRY_ROLES]  # type: ignore[valid-type]
ActorRole = Literal[ACTOR_ROLES]  # type: ignore[valid-type]
ActorType = Literal[ACTOR_TYPES]  # type: ignore[valid-type]
Reliability = Literal["A", "B", "C", "D", "E", "F"]
Likelihood = Literal[LIKELIHOODS]  # type: ignore[valid-type]
Confidence = Literal[CONFIDENCES]  # type: ignore[valid-type]
Rationale = Annotated[str, Field(max_length=2000)]


# The formats the validators below enforce, stated in the OpenAPI schema (the validators keep their own
# clearer messages, so these are documentation for clients and fuzzers, not a second check).
DATE_PATTERN = r"^(1[0-9]|20)[0-9]{2}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$"
URL_PATTERN = r"^$|^[Hh][Tt][Tt][Pp][Ss]?://[^ ]{4,}$"
PARTIAL_DATE: JsonDict = {"pattern": DATE_PATTERN}
OPTIONAL_DATE: JsonDict = {"pattern": "^$|" + DATE_PATTERN}  # empty: no date


def no_bool(value: Any) -> Any:
    """JSON true/false is not a number (lax validation would read it as 1/0); text from forms still is."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true/false")
    return value


NotBool = BeforeValidator(no_bool)
Credibility = Annotated[int, Field(ge=1, le=6), NotBool]
ShortText = Annotated[str, Field(max_length=500)]
LongText = Annotated[str, Field(max_length=20000)]


def today() -> date:
    """Today's date; a function so tests can reason about 'the future'."""
    return date.today()


@lru_cache(maxsize=65536)
def _parsed_iso(value: str) -> tuple[date, str]:
    """The first day and the ISO text of a partial date (cached: a bulk import repeats its dates)."""
    parsed = parse_partial(value)
    return parsed.start, parsed.iso()


# A day that `today()` (the very function, which a test may replace) has shown to be today or earlier: a date
# up to it cannot be in the future, so only a later one asks `today()` again. One day back, so a clock or
# time zone moved back by less than a day is still answered right.
_not_future: tuple[Callable[[], date], date] | None = None


def _partial(value: str, *, allow_future: bool = False) -> str:
    global _not_future
    start, iso = _parsed_iso(value)
    if allow_future:
        return iso
    known = _not_future
    if known is None or known[0] is not today or start > known[1]:
        now = today()
        if start > now:
            raise ValueError("this date is in the future")
        _not_future = (today, now - timedelta(days=1))
    return iso


def _country(value: str) -> str:
    code = resolve_country(value)
    if code is None:
        raise ValueError(f"unknown country “{value}”; use an ISO 3166-1 code such as RUS")
    return code


def country_or_none(value: str | None) -> str | None:
    """The alpha-3 code of a country given by code or name, None for none; ValueError when unknown."""
    return _country(value) if value else None


# An optional country by code or name, stored as its alpha-3 code.
OptionalCountry = Annotated[str | None, AfterValidator(country_or_none)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CountryLink(_Strict):
    """A country in a role."""

    code: Annotated[str, Field(min_length=2, max_length=60, examples=["RUS"])]
    role: CountryRole

    @field_validator("code")
    @classmethod
    def _known(cls, v: str) -> str:
        return _country(v)


class ActorLink(_Strict):
    """An actor in a role, named by name or alias; the other fields create the actor when it is new."""

    name: Annotated[str, Field(min_length=1, max_length=200, examples=["Sergei Ryabkov"])]
    role: ActorRole
    type: ActorType | None = None
    country: OptionalCountry = None
    title: ShortText | None = None


# A system is written "Designation ×4 [note]" in the CSV's systems cell: a designation that itself holds a
# "[" after a space, or ends in a space, "×" (or x) and a number, would be read back split differently.
_LIST_AMBIGUOUS = re.compile(r"\s\[|\s[×xX]\s*[0-9]+$")


def check_designation(value: str) -> str:
    """A designation that the CSV's systems cell can carry unchanged (see _LIST_AMBIGUOUS)."""
    if _LIST_AMBIGUOUS.search(value):
        raise ValueError(
            "a designation cannot contain “ [” or end in “ ×” and a number: in lists they start the note"
            " and the quantity; put those in their own fields"
        )
    return value


class SystemLink(_Strict):
    """A system by designation, with an optional quantity or note; category/origin create a new one."""

    designation: Annotated[str, Field(min_length=1, max_length=200, examples=["Oreshnik"])]
    quantity: Annotated[int, Field(ge=0, le=10_000_000), NotBool] | None = None
    quantity_note: ShortText | None = None
    category: ShortText | None = None
    origin: OptionalCountry = None

    @field_validator("designation")
    @classmethod
    def _listable(cls, v: str) -> str:
        return check_designation(v)


class SourceInput(_Strict):
    """A citation with its Admiralty grades."""

    publisher: Annotated[str, Field(min_length=1, max_length=200)]
    origin: Annotated[
        str | None,
        Field(
            default=None,
            max_length=200,
            description="who first reported it, when the publisher relays another's report; empty or the "
            "publisher's own name: the publisher is the origin",
            examples=["The Times"],
        ),
    ] = None
    url: Annotated[str, Field(max_length=2000, json_schema_extra={"pattern": URL_PATTERN})] | None = None
    title: ShortText | None = None
    published: str | None = Field(
        default=None, description="YYYY, YYYY-MM or YYYY-MM-DD", json_schema_extra=OPTIONAL_DATE
    )
    quote: LongText | None = None
    note: ShortText | None = None
    reliability: Reliability = "F"
    credibility: Credibility = 6
    archive_url: (
        Annotated[
            str,
            Field(
                max_length=2000,
                description="an archived copy of the page",
                json_schema_extra={"pattern": URL_PATTERN},
            ),
        ]
        | None
    ) = None
    accessed: str | None = Field(
        default=None,
        description="the day the analyst read it: YYYY-MM-DD, not in the future",
        examples=["2025-10-14"],
    )

    @field_validator("url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.lower().startswith(("http://", "https://")) or len(v) < 11 or " " in v:
            raise ValueError("a source URL must be a web address starting with http:// or https://")
        return v

    @field_validator("archive_url")
    @classmethod
    def _archive_http(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.lower().startswith(("http://", "https://")) or len(v) < 11 or " " in v:
            raise ValueError("an archived copy must be a web address starting with http:// or https://")
        return v

    @field_validator("accessed")
    @classmethod
    def _accessed_day(cls, v: str | None) -> str | None:
        if not v:
            return None
        try:
            day = date.fromisoformat(v) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) else None
        except ValueError:
            day = None
        if day is None:
            raise ValueError("give the day it was accessed as YYYY-MM-DD, such as 2025-10-14")
        if day > today():
            raise ValueError("the accessed date is in the future")
        return v

    @field_validator("published")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        return _partial(v) if v else None

    @field_validator("title", "quote", "note")
    @classmethod
    def _empty_none(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("origin")
    @classmethod
    def _origin(cls, v: str | None) -> str | None:
        return " ".join(v.split()) or None if v else None

    @model_validator(mode="after")
    def _origin_once(self) -> SourceInput:
        # An origin that is the publisher itself is stored once: as "the publisher is the origin".
        if self.origin is not None and fold(self.origin) == fold(self.publisher):
            self.origin = None
        return self

    def origin_name(self) -> str:
        """Who first reported it: the origin named, else the publisher itself."""
        return self.origin or self.publisher

    def published_date(self) -> PartialDate | None:
        """The publication date as a PartialDate."""
        return parse_partial(self.published) if self.published else None

    def accessed_date(self) -> date | None:
        """The accessed-on day as a date."""
        return date.fromisoformat(self.accessed) if self.accessed else None


def end_before_start(date: str, date_end: str) -> bool:
    """True when two valid dates (any precision) put the end before the start."""
    start, end = parse_partial(date), parse_partial(date_end)
    return end.end < start.start or end.start < start.start


class EventInput(_Strict):
    """Everything an analyst sets on an event."""

    title: Annotated[str, Field(min_length=1, max_length=300)]
    summary: LongText = ""
    kind: Kind
    status: Status = "reported"
    stage_override: Annotated[int, Field(ge=0, le=6), NotBool] | None = None
    date: str = Field(
        description="YYYY, YYYY-MM or YYYY-MM-DD, not in the future",
        examples=["2025-10"],
        json_schema_extra=PARTIAL_DATE,
    )
    date_end: str | None = Field(
        default=None, description="optional end of a span, same formats", json_schema_extra=OPTIONAL_DATE
    )
    location: ShortText | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=50
    )
    countries: list[CountryLink] = Field(default_factory=list, max_length=50)
    actors: list[ActorLink] = Field(default_factory=list, max_length=100)
    systems: list[SystemLink] = Field(default_factory=list, max_length=100)
    sources: list[SourceInput] = Field(default_factory=list, max_length=100)
    likelihood: Likelihood | None = Field(default=None, description="ICD 203 estimative language")
    likelihood_rationale: Rationale | None = None
    confidence: Confidence | None = Field(default=None, description="analytic confidence in the judgement")
    confidence_rationale: Rationale | None = None
    client_token: uuid.UUID | None = Field(
        default=None, description="retry-safe create: same token, same event"
    )

    @field_validator("title")
    @classmethod
    def _one_line(cls, v: str) -> str:
        return " ".join(v.split())

    @field_validator("date")
    @classmethod
    def _start(cls, v: str) -> str:
        return _partial(v)

    @field_validator("date_end")
    @classmethod
    def _end(cls, v: str | None) -> str | None:
        return _partial(v) if v else None

    @field_validator("location")
    @classmethod
    def _loc(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("likelihood", "confidence", mode="before")
    @classmethod
    def _judgement(cls, v: Any) -> Any:
        return (" ".join(v.lower().split()) or None) if isinstance(v, str) else v

    @field_validator("likelihood_rationale", "confidence_rationale")
    @classmethod
    def _rationale(cls, v: str | None, info: ValidationInfo) -> str | None:
        judged = info.field_name.removesuffix("_rationale") if info.field_name else ""
        # Only when the judgement itself is valid and empty (an invalid one has its own message).
        if v and judged in info.data and info.data[judged] is None:
            raise ValueError(f"a rationale explains a {judged}: choose the {judged} too, or leave this empty")
        return v or None

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        seen: list[str] = []
        for tag in v:
            t = tag.strip().lower()
            if t and t not in seen:
                seen.append(t)
        return seen

    @model_validator(mode="after")
    def _coherent(self) -> EventInput:
        if self.date_end and end_before_start(self.date, self.date_end):
            raise ValueError("the end date is before the start date")
        unique: dict[tuple[str, str], CountryLink] = {}
        for link in self.countries:
            unique.setdefault((link.code, link.role), link)
        self.countries = list(unique.values())
        return self

    def start(self) -> PartialDate:
        """The start as a PartialDate."""
        return parse_partial(self.date)

    def end(self) -> PartialDate | None:
        """The end as a PartialDate, if any."""
        return parse_partial(self.date_end) if self.date_end else None
