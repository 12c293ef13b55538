"""Names that almost match: "Peskov", "peskóv" or "Песков" for "Dmitry Peskov", ranked by rapidfuzz.

Every form of an entry (its name and aliases) is folded once: case, accents and script (anyascii
turns Cyrillic, Greek, Arabic, CJK... into Latin letters), punctuation to spaces. A typed text is
folded the same way and compared with rapidfuzz's plain ratio against the whole forms and against
their single words, and as a prefix of a word ("ryab" in "sergei ryabkov"), so a surname, a first
name, a typo or two ("madurro") or another script all find the entry. Used by the filters' "did you
mean" links and the autocomplete; a form can ask `NameIndex.close` before creating a new entry.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from anyascii import anyascii
from rapidfuzz import fuzz, process, utils

from app.domain.textkeys import fold

# Below this score (0-100) a name is not offered: "shoygu" still finds "Sergei Shoigu" (83), while
# unrelated names sharing a few letters score 40-60.
CUTOFF = 75.0
# What a typed text that begins a word of a name scores ("ryab" for "Ryabkov"): close, not exact.
PREFIX_SCORE = 90.0
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
    """The comparison form of a name: folded, in Latin letters, punctuation as spaces, lower case.

    Apostrophes are dropped rather than spaced: the Cyrillic soft sign becomes one ("Зеленський" is
    "Zelens'kii"), and a word cut in two there would no longer look like "Zelensky".
    """
    return str(utils.default_process(anyascii(fold(text)).replace("'", "")))


K = TypeVar("K", bound=Hashable)


def distinct_forms(name: str, aliases: Iterable[str], key: Callable[[str], K]) -> Iterator[tuple[str, K]]:
    """The entry's name and aliases with their keys, skipping empty keys and keys already given."""
    seen: set[K] = set()
    for form in (name, *aliases):
        k = key(form)
        if not k or k in seen:
            continue
        seen.add(k)
        yield form, k


class NameIndex:
    """Candidate names and aliases folded once, to be searched many times (thousands in milliseconds)."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self._forms: list[str] = []  # folded whole forms
        self._form_owner: list[tuple[str, str]] = []  # (entry name, the form as written)
        self._words: list[str] = []  # every word of every form, with the index of its form
        self._word_form: list[int] = []
        for candidate in candidates:
            name, aliases = (candidate, ()) if isinstance(candidate, str) else candidate
            for form, key in distinct_forms(name, aliases, name_key):
                i = len(self._forms)
                self._forms.append(key)
                self._form_owner.append((name, form))
                for word in key.split():
                    self._words.append(word)
                    self._word_form.append(i)
        # Words in order, to find the ones a typed text begins without reading them all.
        order = sorted(range(len(self._words)), key=self._words.__getitem__)
        self._sorted_words = [self._words[j] for j in order]
        self._sorted_form = [self._word_form[j] for j in order]

    def close(self, typed: str, limit: int = 5, cutoff: float = CUTOFF) -> list[CloseName]:
        """Entries whose name or an alias is close to `typed`, best first, each entry once."""
        key = name_key(typed)
        if len(key.replace(" ", "")) < MIN_LETTERS or limit <= 0:
            return []
        scores: dict[int, float] = {}  # form index -> best score

        def note(form: int, score: float) -> None:
            if score > scores.get(form, 0.0):
                scores[form] = score

        many = max(limit * 8, 32)  # several forms and words of one entry may match
        for _, score, i in process.extract(
            key, self._forms, scorer=fuzz.ratio, processor=None, score_cutoff=cutoff, limit=many
        ):
            note(i, score)
        typed_words = [w for w in key.split() if len(w) >= MIN_LETTERS]
        # Each typed word against single words: a surname alone, or "medvedev dmitri" in any order.
        per_form: dict[int, list[float]] = {}
        for n, word in enumerate(typed_words):
            for _, score, j in process.extract(
                word, self._words, scorer=fuzz.ratio, processor=None, score_cutoff=cutoff, limit=many
            ):
                best = per_form.setdefault(self._word_form[j], [0.0] * len(typed_words))
                best[n] = max(best[n], score)
        for form, best in per_form.items():
            note(form, sum(best) / len(best))
        if len(typed_words) == 1:
            j = bisect_left(self._sorted_words, key)
            while j < len(self._sorted_words) and self._sorted_words[j].startswith(key):
                note(self._sorted_form[j], PREFIX_SCORE)
                j += 1
        out: dict[str, CloseName] = {}
        for form, score in sorted(scores.items(), key=lambda item: -item[1]):
            if score < cutoff:
                continue
            name, written = self._form_owner[form]
            if name not in out:
                out[name] = CloseName(name, written, round(score, 1))
        return sorted(out.values(), key=lambda c: (-c.score, len(c.name), c.name))[:limit]


def close_names(candidates: Iterable[Candidate], typed: str, limit: int = 5) -> list[CloseName]:
    """Names among `candidates` (a name, or a (name, aliases) pair) close to `typed`, best first."""
    return NameIndex(candidates).close(typed, limit)
