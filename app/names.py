"""Names that almost match: "Peskov", "peskóv" or "Песков" for "Dmitry Peskov", ranked by rapidfuzz.

Every form (a name and its aliases) is folded once: case, accents and script (anyascii turns Cyrillic,
Greek, Arabic, CJK... into Latin letters), then punctuation. A typed text is folded the same way and
scored against every form with rapidfuzz's WRatio, which rates a surname or a first few letters of any
word high ("ryab" in "sergei ryabkov") and a typo or two well ("madurro"). Used by the filters' "did
you mean" links and the autocomplete; a form can use `NameIndex.close` before creating a new entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from anyascii import anyascii
from rapidfuzz import fuzz, process, utils

from app.textkeys import fold

# Below this WRatio score a name is not offered: at 75 "shoygu" still finds "Sergei Shoigu", while
# unrelated names sharing a few letters score 40-60.
CUTOFF = 75.0
# Fewer letters than this match too much of any catalogue to be worth suggesting.
MIN_LETTERS = 3

Candidate = str | tuple[str, Iterable[str]]


@dataclass(frozen=True)
class CloseName:
    """One suggestion: the entry's name, the form that matched (the name or an alias), and its score."""

    name: str
    matched: str
    score: float


def name_key(text: str) -> str:
    """The comparison form of a name: folded, in Latin letters, punctuation as spaces, lower case."""
    return str(utils.default_process(anyascii(fold(text))))


class NameIndex:
    """Candidate names and aliases folded once, to be searched many times."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self._keys: list[str] = []
        self._owners: list[tuple[str, str]] = []  # (entry name, the form that gave the key)
        for candidate in candidates:
            name, aliases = (candidate, ()) if isinstance(candidate, str) else candidate
            seen: set[str] = set()
            for form in (name, *aliases):
                key = name_key(form)
                if key and key not in seen:
                    seen.add(key)
                    self._keys.append(key)
                    self._owners.append((name, form))

    def close(self, typed: str, limit: int = 5, cutoff: float = CUTOFF) -> list[CloseName]:
        """Entries whose name or an alias is close to `typed`, best first, each entry once."""
        key = name_key(typed)
        if len(key.replace(" ", "")) < MIN_LETTERS or limit <= 0:
            return []
        # Several forms of one entry may match: ask for more than `limit`, keep each entry's best.
        hits = process.extract(
            key, self._keys, scorer=fuzz.WRatio, processor=None, score_cutoff=cutoff, limit=limit * 4
        )
        out: dict[str, CloseName] = {}
        for _, score, i in hits:
            name, form = self._owners[i]
            if name not in out:
                out[name] = CloseName(name, form, float(score))
        ranked = sorted(out.values(), key=lambda c: (-c.score, len(c.name), c.name))
        return ranked[:limit]


def close_names(candidates: Iterable[Candidate], typed: str, limit: int = 5) -> list[CloseName]:
    """Names among `candidates` (a name, or a (name, aliases) pair) close to `typed`, best first."""
    return NameIndex(candidates).close(typed, limit)
