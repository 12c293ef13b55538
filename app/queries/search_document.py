"""The stored full-text document of an event: its text, and the catalogue names its links carry.

`events.search_vector` holds title (weight A), summary (B), source quotes and titles (C) and, at the
lowest weight (D), the names of what the event links: each country's name, pycountry's official name
and alpha-3 code; each actor's name, aliases and folded forms; each system's designation, aliases and
folded forms, followed by those of its family's ancestors when systems have a `parent_id`. So
`q=Shahed` finds an event linked to Shahed-136 whose text never says it, from the GIN index.

Every writer builds the document from here: the write path and the reference edits (refresh_documents,
one UPDATE over the affected events), the import and the seed (their staging tables carry the catalogue
text that `CatalogueWords.text` joins from the same per-entry SQL), and migration 0011. The catalogue
part is parsed with the 'english' configuration, as `q` is (websearch_to_tsquery('english', ...)): both
sides stem alike, and other scripts (Cyrillic, Arabic) pass through as lower-cased words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pycountry
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.domain.countries import country_rows

CONFIG = "english"
# A family deeper than this is a cycle the families code failed to refuse: stop rather than loop.
FAMILY_DEPTH = 32


def families_enabled() -> bool:
    """True when the model's systems have a parent (system families)."""
    from app.models import System

    return "parent_id" in System.__table__.c


@lru_cache
def _official_names_sql() -> str:
    """SQL giving pycountry's official name of `c.code` where the stored (common) name differs, else ''."""
    stored = {r["code"]: r["name"] for r in country_rows()}
    cases = []
    for c in pycountry.countries:
        names = [n for n in (c.name, getattr(c, "official_name", None)) if n and n != stored[c.alpha_3]]
        if names:
            quoted = " ".join(dict.fromkeys(names)).replace("'", "''")
            cases.append(f"WHEN '{c.alpha_3}' THEN '{quoted}'")
    return f"(CASE c.code {' '.join(cases)} ELSE '' END)"


def _names(table: str, name: str) -> str:
    """An actor's or system's own words: its name, aliases and folded forms (accent-free)."""
    return (
        f"concat_ws(' ', {table}.{name}, array_to_string({table}.aliases, ' '), "
        f"array_to_string({table}.match_keys, ' '))"
    )


def country_words_sql() -> str:
    """The words of the country `c`."""
    return f"concat_ws(' ', c.name, {_official_names_sql()}, c.code)"


ACTOR_WORDS = _names("a", "name")


def system_words_sql(families: bool) -> str:
    """The words of the system `s`: its own, then its ancestors' nearest first (with families)."""
    if not families:
        return _names("s", "designation")
    return (
        "(WITH RECURSIVE up(id, depth) AS (SELECT s.id, 0 UNION ALL "
        "SELECT p.parent_id, up.depth + 1 FROM up JOIN systems p ON p.id = up.id "
        f"WHERE p.parent_id IS NOT NULL AND up.depth < {FAMILY_DEPTH}) "
        f"SELECT string_agg({_names('f', 'designation')}, ' ' ORDER BY up.depth) "
        "FROM up JOIN systems f ON f.id = up.id)"
    )


def catalogue_text_sql(event: str, families: bool) -> str:
    """SQL for the catalogue text of the event whose id is `event`: countries, actors, systems by position."""
    return (
        "concat_ws(' ', "
        f"(SELECT string_agg({country_words_sql()}, ' ' ORDER BY ec.position, ec.role) "
        f"FROM event_countries ec JOIN countries c ON c.code = ec.country_code WHERE ec.event_id = {event}), "
        f"(SELECT string_agg({ACTOR_WORDS}, ' ' ORDER BY ea.position, ea.role) "
        f"FROM event_actors ea JOIN actors a ON a.id = ea.actor_id WHERE ea.event_id = {event}), "
        f"(SELECT string_agg({system_words_sql(families)}, ' ' ORDER BY es.position) "
        f"FROM event_systems es JOIN systems s ON s.id = es.system_id WHERE es.event_id = {event}))"
    )


def document_sql(title: str, summary: str, quotes: str, catalogue: str) -> str:
    """The document from SQL expressions for the title, summary, source text and catalogue text."""
    return (
        f"setweight(to_tsvector('{CONFIG}', {title}), 'A') "
        f"|| setweight(to_tsvector('{CONFIG}', coalesce({summary}, '')), 'B') "
        f"|| setweight(to_tsvector('{CONFIG}', coalesce({quotes}, '')), 'C') "
        f"|| setweight(to_tsvector('{CONFIG}', coalesce({catalogue}, '')), 'D')"
    )


# The source part as the form stores it: each source's quote and title, by position.
_QUOTES = (
    "(SELECT string_agg(coalesce(s.quote, '') || ' ' || coalesce(s.title, ''), ' ' ORDER BY s.position) "
    "FROM sources s WHERE s.event_id = e.id)"
)


def refresh_sql(where: str, families: bool | None = None, catalogue: bool = True) -> str:
    """An UPDATE recomputing the document of the events `e` matching `where` (text only: no catalogue)."""
    if families is None:
        families = families_enabled()
    names = catalogue_text_sql("e.id", families) if catalogue else "''"
    document = document_sql("e.title", "e.summary", _QUOTES, names)
    return f"UPDATE events e SET search_vector = {document} WHERE {where}"


def refresh_documents(session: Session, event_ids: Iterable[int] | None = None) -> None:
    """Recompute the documents of these events (all when None) in the session's transaction."""
    if event_ids is None:
        session.execute(text(refresh_sql("true")))
        return
    ids = sorted(set(event_ids))
    if ids:
        session.execute(text(refresh_sql("e.id = ANY(:ids)")), {"ids": ids})


def system_family(session: Session, system_ids: Iterable[int]) -> list[int]:
    """These systems and, with families, every descendant: whose documents name them."""
    ids = sorted(set(system_ids))
    if not ids or not families_enabled():
        return ids
    return list(
        session.scalars(
            text(
                "WITH RECURSIVE down(id, depth) AS (SELECT unnest(CAST(:ids AS integer[])), 0 UNION "
                "SELECT c.id, down.depth + 1 FROM down JOIN systems c ON c.parent_id = down.id "
                f"WHERE down.depth < {FAMILY_DEPTH}) SELECT DISTINCT id FROM down ORDER BY id"
            ),
            {"ids": ids},
        )
    )


@dataclass
class CatalogueWords:
    """Per-entry words (as the SQL above makes them), for writers that build catalogue text in Python."""

    countries: dict[str, str]
    actors: dict[int, str]
    systems: dict[int, str]

    def text(self, codes: Iterable[str], actor_ids: Iterable[int], system_ids: Iterable[int]) -> str:
        """An event's catalogue text from its links in position order, as catalogue_text_sql joins it."""
        parts = [self.countries[c] for c in codes]
        parts += [self.actors[a] for a in actor_ids]
        parts += [self.systems[s] for s in system_ids]
        return " ".join(parts)


def load_words(
    cursor: Any, actor_ids: Iterable[int], system_ids: Iterable[int], families: bool | None = None
) -> CatalogueWords:
    """Every country's words and these actors' and systems' words, read by a psycopg cursor."""
    if families is None:
        families = families_enabled()
    cursor.execute(f"SELECT c.code, {country_words_sql()} FROM countries c")
    countries = dict(cursor.fetchall())
    cursor.execute(
        f"SELECT a.id, {ACTOR_WORDS} FROM actors a WHERE a.id = ANY(%s)", (sorted(set(actor_ids)),)
    )
    actors = dict(cursor.fetchall())
    cursor.execute(
        f"SELECT s.id, {system_words_sql(families)} FROM systems s WHERE s.id = ANY(%s)",
        (sorted(set(system_ids)),),
    )
    systems = dict(cursor.fetchall())
    return CatalogueWords(countries, actors, systems)


def audited_writes_sql(window: str) -> str:
    """Pairs (id, event_id) of audit rows in `window` (SQL on `at`) that can change what an event matches.

    An audited event write pairs with its event; an audited actor or system edit (rename, aliases,
    merge, family) pairs with every event whose document names it now (a variant's too, with families):
    their documents were recomputed without an event audit row, and copies re-read those events.
    """
    if families_enabled():
        systems = (
            "JOIN LATERAL (WITH RECURSIVE down(id, depth) AS (SELECT a.entity_id, 0 UNION "
            "SELECT c.id, down.depth + 1 FROM down JOIN systems c ON c.parent_id = down.id "
            f"WHERE down.depth < {FAMILY_DEPTH}) SELECT DISTINCT id FROM down) f ON true "
            "JOIN event_systems l ON l.system_id = f.id"
        )
    else:
        systems = "JOIN event_systems l ON l.system_id = a.entity_id"
    return (
        "SELECT id, entity_id AS event_id FROM audit_log "
        f"WHERE entity_type = 'event' AND entity_id IS NOT NULL AND {window} "
        "UNION ALL SELECT a.id, l.event_id FROM audit_log a JOIN event_actors l ON l.actor_id = a.entity_id "
        f"WHERE a.entity_type = 'actor' AND a.{window} "
        f"UNION ALL SELECT a.id, l.event_id FROM audit_log a {systems} "
        f"WHERE a.entity_type = 'system' AND a.{window}"
    )
