"""From a report's text to a draft: countries with roles, actors, systems, dates, kind, quotes, title.

Pure functions: the same text, catalogue and publication date always give the same draft, offline.
Every suggestion keeps the character spans of the words it came from, so the page can highlight them,
and a stable id, so the analyst can drop it and get the same draft without it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date

from app.countries import country_name
from app.quickadd.catalogue import CatalogueScanner, Mention
from app.quickadd.countries import STEM_SLACK, country_forms
from app.quickadd.dates import find_dates
from app.quickadd.tokens import Sentence, Token, sentences, tokenize

# Longer pasted texts are refused by the page; extraction itself would only be slower.
MAX_TEXT = 100_000
TITLE_MAX = 140
QUOTE_MIN, QUOTE_MAX = 15, 1000

# The kind a report's words suggest, strongest first where one sentence holds several.
KIND_CUES: tuple[tuple[str, str], ...] = (
    (
        "denial",
        r"den(?:y|ied|ies|ial)|rejected (?:the )?(?:claims?|reports?)|neg(?:ó|aron)|niega|desminti\w*"
        r"|опроверг\w*|отрица\w*",
    ),
    (
        "transfer",
        r"land(?:ed|ing)|deliver(?:ed|y|ies)|arriv(?:ed|al)|handed over|shipped|entreg\w*|llegaron"
        r"|llegó|aterriz\w*|доставил\w*|поставил\w*|передал\w*|прибыл\w*|приземлил\w*",
    ),
    ("deployment", r"deploy(?:ed|s|ment|ing)?|stationed|despleg\w*|desplieg\w*|разверну\w*|развернул\w*"),
    ("agreement", r"signed|agreed|agreement|firm(?:ó|aron)|acuerdo|подписал\w*|соглашени\w*"),
    ("financing", r"financ(?:ed|ing|es)|loans?|credit line|préstamo\w*|financi\w*|кредит\w*|финансир\w*"),
    (
        "request",
        r"ask(?:ed|s)?|request(?:ed|s)?|sought|seek(?:s|ing)?|pidió|pidieron|solicit\w*|попросил\w*"
        r"|просил\w*|запросил\w*|просьб\w*",
    ),
    (
        "offer",
        r"offer(?:ed|s)?|could (?:supply|send|provide|deliver)|ready to (?:supply|send|provide|deliver)"
        r"|nothing prevents|willing to|ofrec\w*|dispuest[oa]s?|предлож\w*|готов[аы]?|ничто не мешает",
    ),
    ("exercise", r"exercises?|drills?|maniobras|учени[яей]\w*"),
    ("training", r"train(?:ed|ing|s)|entren\w*|обучени\w*"),
    ("strike", r"struck|(?:air)?strikes?|ataques?|удар\w*"),
    ("maintenance", r"repair(?:ed|s)?|maintenance|overhaul\w*|ремонт\w*"),
    ("statement", r"said|says|stated|told|announced|declared|dijo|afirmó|declaró|заявил\w*|сказал\w*"),
)
_KIND_RE = [(kind, re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)) for kind, pattern in KIND_CUES]

# Cues for a country's role in its sentence.
_SUPPLY = re.compile(
    r"\b(?:suppl(?:y|ies|ied)|send(?:s|ing)?|sent|ship(?:s|ped)?|offer(?:s|ed)?|deliver(?:s|ed)?|provid(?:e|es|ed)"
    r"|sold|sells?|transferr?(?:s|ed)?|gave|give[sn]?|export(?:s|ed)?|donat(?:es|ed)|lend(?:s)?|lent"
    r"|financ(?:es|ed)|deploy(?:s|ed)?|suministr\w*|envi(?:ó|a|aron|ará)|entreg\w*|ofrec\w*|vend\w*"
    r"|поставл\w*|поставил\w*|поставля\w*|передал\w*|переда[её]т|направил\w*|предлож\w*|отправил\w*)\b",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"\b(?:ask(?:s|ed)?|request(?:s|ed)?|sought|seeks?|appeal(?:s|ed)? to|pidi(?:ó|eron)|solicit\w*"
    r"|попросил\w*|просил\w*|запросил\w*)\b",
    re.IGNORECASE,
)
_BEFORE_ROLE = (
    ("recipient", re.compile(r"\b(?:to|for|into|para|для)\s+(?:the\s+|la\s+|el\s+)?$", re.IGNORECASE)),
    ("target", re.compile(r"\b(?:against|targeting|contra|против)\s+(?:the\s+)?$", re.IGNORECASE)),
    ("intermediary", re.compile(r"\b(?:via|through|vía|a través de|через)\s+(?:the\s+)?$", re.IGNORECASE)),
)
_SPEECH = re.compile(r"\b(?:said|says|told|stated|announced|dijo|declaró|afirmó|заявил\w*|сказал\w*)\b", re.I)
_N = f"{{{QUOTE_MIN},{QUOTE_MAX}}}"
_QUOTES = re.compile(f'“([^”\\n]{_N})”|«([^»]{_N})»|"([^"\\n]{_N})"|„([^“”\\n]{_N})[“”]')


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of the pasted text that a suggestion came from."""

    start: int
    end: int


@dataclass
class Suggestion:
    """One thing the draft proposes, the words it came from, and a stable id to drop it by."""

    id: str
    field: str  # country, actor, system, date, kind, quote, title
    value: str
    label: str
    spans: list[Span] = dataclass_field(default_factory=list)
    role: str | None = None
    value_end: str | None = None
    quantity: str | None = None


@dataclass
class Draft:
    """Every suggestion found in one report, in the order the page lists them."""

    text: str
    published: date
    suggestions: list[Suggestion]

    def kept(self, dropped: Sequence[str] = ()) -> list[Suggestion]:
        """The suggestions the analyst has not dropped."""
        gone = set(dropped)
        return [s for s in self.suggestions if s.id not in gone]


def _short_id(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]


# -- countries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CountryHit:
    code: str
    first: int
    last: int


def _country_hits(tokens: Sequence[Token]) -> list[_CountryHit]:
    """Every country form in the tokens: longest first ("North Korea" before "Korea"), in text order."""
    forms = country_forms()
    hits: list[_CountryHit] = []
    i, n = 0, len(tokens)
    while i < n:
        found = None
        for size in range(min(forms.longest, n - i), 0, -1):
            window = tokens[i : i + size]
            if window[-1].sentence != window[0].sentence:
                continue
            words = tuple(t.key for t in window)
            code = forms.exact.get(words)
            if code is None and all(t.upper for t in window):
                code = forms.capitals.get(words)
            if code is None and size == 1:
                code = _stem_or_plural(tokens[i].key, forms.exact, forms.stems)
            if code is not None:
                found = _CountryHit(code, i, i + size)
                break
        if found:
            hits.append(found)
            i = found.last
        else:
            i += 1
    return hits


def _stem_or_plural(key: str, exact: dict[tuple[str, ...], str], stems: dict[str, str]) -> str | None:
    """A declined or plural form: "russians", "венесуэле" (a known stem and a short ending)."""
    if len(key) >= 5 and key.endswith("s") and (key[:-1],) in exact:
        return exact[(key[:-1],)]
    for cut in range(len(key), max(2, len(key) - STEM_SLACK) - 1, -1):
        code = stems.get(key[:cut])
        if code is not None:
            return code
    return None


def _role_of(text: str, sentence: Sentence, start: int) -> str | None:
    """The role a sentence's words give a country named at `start` (None when they say nothing)."""
    before = text[max(sentence.start, start - 30) : start]
    for role, pattern in _BEFORE_ROLE:
        if pattern.search(before):
            return role
    body = text[sentence.start : sentence.end]
    at = start - sentence.start
    supply, request = _SUPPLY.search(body), _REQUEST.search(body)
    first = min((m for m in (supply, request) if m), key=lambda m: m.start(), default=None)
    if first is None:
        return None
    giving = first is supply
    if at < first.start():
        return "supplier" if giving else "recipient"
    return "recipient" if giving else "supplier"


def _countries(text: str, cuts: list[Sentence], tokens: Sequence[Token]) -> list[Suggestion]:
    out: dict[str, Suggestion] = {}
    for hit in _country_hits(tokens):
        span = Span(tokens[hit.first].start, tokens[hit.last - 1].end)
        s = out.get(hit.code)
        if s is None:
            s = out[hit.code] = Suggestion(f"country-{hit.code}", "country", hit.code, country_name(hit.code))
        s.spans.append(span)
        if s.role is None:
            s.role = _role_of(text, cuts[tokens[hit.first].sentence], span.start)
    found = list(out.values())
    # A country the words give no role: the first such one supplies if nobody does yet, then recipients.
    roles = {s.role for s in found}
    for s in found:
        if s.role is None:
            s.role = "supplier" if "supplier" not in roles else "recipient"
            roles.add(s.role)
    return found


# -- actors and systems ---------------------------------------------------------------------------


def _catalogue(
    field_name: str, mentions: list[Mention], tokens: Sequence[Token], text: str, cuts: list[Sentence]
) -> list[Suggestion]:
    out: dict[str, Suggestion] = {}
    for m in mentions:
        span = Span(tokens[m.first].start, tokens[m.last - 1].end)
        s = out.get(m.name)
        if s is None:
            s = out[m.name] = Suggestion(f"{field_name}-{_short_id(m.name)}", field_name, m.name, m.name)
            sentence = cuts[tokens[m.first].sentence]
            body = text[sentence.start : sentence.end]
            if field_name == "actor":
                s.role = "speaker" if _SPEECH.search(body) else "subject"
                if _REQUEST.search(body) and not _SPEECH.search(body):
                    s.role = "requester"
            elif m.first > 0 and tokens[m.first - 1].key.isdigit() and len(tokens[m.first - 1].key) <= 5:
                s.quantity = tokens[m.first - 1].key  # "14 S-400 launchers"
        s.spans.append(span)
    return list(out.values())


# -- kind, quotes, title, dates ---------------------------------------------------------------------


def _kinds(text: str, cuts: list[Sentence]) -> list[Suggestion]:
    """One suggestion per kind the words suggest; the strongest cue of the first sentence with one first."""
    by_kind: dict[str, Suggestion] = {}
    order: list[str] = []
    for cut in cuts:
        body = text[cut.start : cut.end]
        in_sentence = []
        for kind, pattern in _KIND_RE:
            for m in pattern.finditer(body):
                s = by_kind.get(kind)
                if s is None:
                    s = by_kind[kind] = Suggestion(f"kind-{kind}", "kind", kind, kind)
                    in_sentence.append(kind)
                s.spans.append(Span(cut.start + m.start(), cut.start + m.end()))
        order += in_sentence
    # "said" is weaker than any other cue wherever it is.
    order.sort(key=lambda k: k == "statement")
    return [by_kind[k] for k in order]


def _quotes(text: str) -> list[Suggestion]:
    out = []
    for m in _QUOTES.finditer(text):
        group = next(g for g in range(1, 5) if m.group(g) is not None)
        quote = m.group(group).strip()
        if len(quote.split()) < 3:
            continue
        span = Span(m.start(group), m.end(group))
        label = quote if len(quote) <= 80 else quote[:79] + "…"
        out.append(Suggestion(f"quote-{span.start}", "quote", quote, label, [span]))
    return out


def _title(text: str, cuts: list[Sentence]) -> list[Suggestion]:
    if not cuts:
        return []
    first = cuts[0]
    line = " ".join(text[first.start : first.end].split())
    end = first.end
    if len(line) > TITLE_MAX:
        cut = line.rfind(" ", 0, TITLE_MAX - 1)
        line = line[: cut if cut > 40 else TITLE_MAX - 1].rstrip(" ,;:") + "…"
        end = first.start + len(line)
    line = line.rstrip(".")
    if not line:
        return []
    return [Suggestion("title", "title", line, line, [Span(first.start, min(end, first.end))])]


def _dates(text: str, cuts: list[Sentence], published: date) -> list[Suggestion]:
    out = []
    for d in find_dates(text, cuts, published):
        shown = d.value + (f" to {d.value_end}" if d.value_end else "")
        label = f"since {shown}" if d.since else shown
        out.append(
            Suggestion(
                f"date-{d.start}",
                "date",
                d.value,
                f"{label} ({d.precision})",
                [Span(d.start, d.end)],
                value_end=d.value_end,
            )
        )
    return out


def extract(
    text: str,
    published: date,
    actors: CatalogueScanner | None = None,
    systems: CatalogueScanner | None = None,
) -> Draft:
    """The draft for a report: every suggestion, each with the spans it came from and a stable id."""
    text = text[:MAX_TEXT]
    cuts = sentences(text)
    tokens = tokenize(text, cuts)
    suggestions = _title(text, cuts)
    suggestions += _kinds(text, cuts)
    suggestions += _dates(text, cuts, published)
    suggestions += _countries(text, cuts, tokens)
    if actors is not None:
        suggestions += _catalogue("actor", actors.find(tokens), tokens, text, cuts)
    if systems is not None:
        suggestions += _catalogue("system", systems.find(tokens), tokens, text, cuts)
    suggestions += _quotes(text)
    return Draft(text, published, suggestions)
