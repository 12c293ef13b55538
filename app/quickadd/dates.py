"""Dates in a report, resolved against its publication date at the precision the words give.

dateparser finds and resolves the phrases ("earlier this week", "in October", "14 ноября", "el 3 de
noviembre"); its own reading of each phrase says which parts were given (day, week, month or year), and
a date is never made more precise than that: a month word gives a month, a bare year a year, a week the
month it lies in (or the two months it straddles). dateparser works offline from its bundled language
data; only sentences holding a date-like word are handed to it, which keeps a long report fast.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from app.quickadd.tokens import Sentence

_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|enero|febrero|marzo|abril|junio|julio|agosto|"
    r"septiembre|setiembre|octubre|noviembre|diciembre|январ\w*|феврал\w*|март\w*|апрел\w*|ма[йяе]|"
    r"июн\w*|июл\w*|август\w*|сентябр\w*|октябр\w*|ноябр\w*|декабр\w*"
)
_SPANISH_MONTHS = (
    r"enero|febrero|marzo|abril|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre"
)
_RELATIVE = (
    r"week|month|year|yesterday|today|ago|semana|mes|año|ayer|hoy|недел\w*|месяц\w*|год\w*|вчера|сегодня"
)
# A sentence is handed to dateparser only when it holds one of these.
_CUE = re.compile(rf"\b(?:{_MONTHS}|{_RELATIVE}|(?:19|20)\d\d)\b", re.IGNORECASE)
_MONTH_ONLY = re.compile(rf"^(?:{_MONTHS})$", re.IGNORECASE)
# Words that dateparser keeps at the edges of a phrase ("and last year the").
_EDGE = re.compile(r"^(?:(?:the|and|of|a|an|y|el|la|и)\s+)+|(?:\s+(?:the|and|of|a|an|y|el|la|и))+$", re.I)
# A month named alone counts after one of these ("in May", not "May said" or "may supply").
_MONTH_LEAD = re.compile(r"\b(?:in|on|since|of|by|early|late|mid|until|from|during|since)\s+$", re.I)
_SINCE = re.compile(r"\b(?:since|desde|с|со)\s+$", re.I)
# dateparser reads Russian months in the genitive ("14 ноября") but not after "в" ("в октябре"): the
# prepositional form is rewritten to the genitive, which has the same length, so offsets stay true.
_RU_PREPOSITIONAL = {
    "январе": "января", "феврале": "февраля", "марте": "марта", "апреле": "апреля", "мае": "мая",
    "июне": "июня", "июле": "июля", "августе": "августа", "сентябре": "сентября", "октябре": "октября",
    "ноябре": "ноября", "декабре": "декабря",
}  # fmt: skip
_RU_PATTERN = re.compile(r"\b(" + "|".join(_RU_PREPOSITIONAL) + r")\b", re.IGNORECASE)


@dataclass(frozen=True)
class FoundDate:
    """A date phrase at [start, end) of the text and its value: YYYY, YYYY-MM or YYYY-MM-DD (and an end)."""

    start: int
    end: int
    value: str
    value_end: str | None
    precision: str
    since: bool


def languages_for(text: str) -> list[str]:
    """The dateparser languages worth trying for the scripts in the text (fewer languages, faster)."""
    langs = []
    if re.search(r"[A-Za-z]", text):
        langs += ["en", "es"]
    if re.search(r"[\u0400-\u04FF]", text):
        langs += ["ru", "uk"]
    if re.search(r"[\u0600-\u06FF]", text):
        langs += ["fa", "ar"]
    return langs or ["en"]


def _settings(base: date) -> dict[str, Any]:
    return {
        "RELATIVE_BASE": datetime(base.year, base.month, base.day, 12),
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }


@lru_cache(maxsize=4096)
def _search(sentence: str, base: date, langs: tuple[str, ...]) -> list[tuple[str, datetime]]:
    from dateparser.search import search_dates  # loaded on first use: it takes a moment to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dateparser warns about pytz/locale details
        try:
            return list(search_dates(sentence, languages=list(langs), settings=_settings(base)) or [])
        except Exception:  # a library hiccup on odd text is not worth an error page: no dates found
            return []


@lru_cache(maxsize=16)
def _parser(base: date, langs: tuple[str, ...]) -> Any:
    from dateparser.date import DateDataParser

    return DateDataParser(languages=list(langs), settings=_settings(base))


@lru_cache(maxsize=4096)
def _period(phrase: str, base: date, langs: tuple[str, ...]) -> tuple[str | None, str | None]:
    """Which parts the phrase gives (day, week, month, year) and its language, by dateparser's reading."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            data = _parser(base, langs).get_date_data(phrase)
        except Exception:
            return None, None
    return (data.period if data.date_obj else None), data.locale


def _value(moment: date, period: str, base: date) -> tuple[str, str | None, str] | None:
    """(value, end value, precision) for a resolved date, never more precise than `period`."""
    if period in ("day", "time"):
        return moment.isoformat(), None, "day"
    if period == "month":
        return f"{moment:%Y-%m}", None, "month"
    if period == "year":
        return f"{moment:%Y}", None, "year"
    if period == "week":
        first = moment - timedelta(days=moment.weekday())
        last = min(first + timedelta(days=6), base)
        if (first.year, first.month) == (last.year, last.month):
            return f"{first:%Y-%m}", None, "month"
        return f"{first:%Y-%m}", f"{last:%Y-%m}", "month"
    return None


_DAY_WORDS = re.compile(
    r"\b(?:yesterday|today|tonight|days? ago|ayer|hoy|вчера|сегодня|monday|tuesday|wednesday|thursday"
    r"|friday|saturday|sunday)\b|\b\d{1,2}\b(?!\d)",
    re.IGNORECASE,
)
_WEEK_WORDS = re.compile(r"\b(?:weeks?|semanas?|недел\w*)\b", re.IGNORECASE)
_MONTH_WORDS = re.compile(rf"\b(?:{_MONTHS}|months?|mes|месяц\w*)\b", re.IGNORECASE)
_YEAR_WORDS = re.compile(r"\b(?:(?:19|20)\d\d|years?|años?|год\w*)\b", re.IGNORECASE)
# dateparser takes a few milliseconds per sentence: only the first sentences holding a date word are read
# (a report states the date of what it reports in its opening; later dates are background).
DATE_SENTENCES = 12


def _given(phrase: str, base: date, langs: tuple[str, ...]) -> str | None:
    """Which parts a phrase gives: day, week, month or year (else dateparser's own reading of it)."""
    has_day = _DAY_WORDS.search(phrase) and (_MONTH_WORDS.search(phrase) or not _YEAR_WORDS.search(phrase))
    if has_day and (not _WEEK_WORDS.search(phrase) or re.search(r"ago|назад|hace", phrase, re.I)):
        return "day"
    if _WEEK_WORDS.search(phrase):
        return "week"
    if _MONTH_WORDS.search(phrase):
        return "month"
    if _YEAR_WORDS.search(phrase):
        return "year"
    return _period(phrase, base, langs)[0]


def find_dates(text: str, cuts: list[Sentence], base: date) -> list[FoundDate]:
    """Every date phrase in the text with its value, in text order (future dates left out)."""
    langs = tuple(languages_for(text))
    out: list[FoundDate] = []
    searched = 0
    for cut in cuts:
        sentence = text[cut.start : cut.end]
        if not _CUE.search(sentence):
            continue
        sentence = _RU_PATTERN.sub(lambda m: _RU_PREPOSITIONAL.get(m[1].lower(), m[1]), sentence)
        searched += 1
        if searched > DATE_SENTENCES:
            break
        cursor = 0
        for phrase, moment in _search(sentence, base, langs):
            at = sentence.find(phrase, cursor)
            if at < 0:
                continue
            cursor = at + len(phrase)
            found = _found(sentence, at, phrase, moment, base, langs)
            if found is not None:
                out.append(replace(found, start=cut.start + found.start, end=cut.start + found.end))
    return out


def _found(
    sentence: str, at: int, phrase: str, moment: datetime, base: date, langs: tuple[str, ...]
) -> FoundDate | None:
    """One phrase dateparser found at `at` in the sentence, checked and given its precision."""
    trimmed = _EDGE.sub("", phrase)
    at += phrase.find(trimmed)
    phrase = trimmed
    if not phrase or not _CUE.search(phrase):
        return None  # "now", "136", "second": not a date an analyst means
    before = sentence[max(0, at - 12) : at]
    english = re.match(r"[A-Za-z]", phrase) and not re.match(rf"^(?:{_SPANISH_MONTHS})$", phrase, re.I)
    if _MONTH_ONLY.match(phrase) and not _MONTH_LEAD.search(before) and english:
        return None  # "May said", "march": a bare English month word without "in"/"on" is too risky
    period = _given(phrase, base, langs)
    day = moment.date()
    if period is None or day > base or day.year < 1900:
        return None
    value = _value(day, period, base)
    if value is None:
        return None
    return FoundDate(at, at + len(phrase), value[0], value[1], value[2], bool(_SINCE.search(before)))
