"""Find the catalogue's actors and systems in a report: word n-grams against every name and alias.

Names and aliases are folded into words once (`app.domain.names.name_key`: case, accents, script). A text word
proposes the forms that begin with it or with a close word (rapidfuzz ratio, only among words of about
the same length and the same first letter, so a 10,000-entry catalogue is searched in milliseconds);
the form's next words are then compared with the text's next words. "Sergey Rybakov" finds "Sergei
Ryabkov", "Рябкова" finds him too, and a surname alone finds the person once the full name is in the
text or when no other entry has that surname.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from app.domain.names import distinct_forms
from app.quickadd.tokens import Token, form_words

# A word of a several-word name may differ this much ("sergey"/"sergei" 83, "rybakov"/"ryabkov" 86)...
WORD_CUTOFF = 75.0
# ...as long as the whole name stays this close on average.
NAME_CUTOFF = 84.0
# A one-word name or a surname alone is a weaker clue: it must be closer.
SINGLE_CUTOFF = 88.0
# Words shorter than this compare only exactly ("S" in "S-400", "Kh" in "Kh-101").
FUZZY_LETTERS = 4
# A surname alone must be at least this long to count ("Kim" alone is too common).
SURNAME_LETTERS = 5


@dataclass(frozen=True)
class Mention:
    """An entry named in the text: tokens [first, last) and how close the words were (100 = exact)."""

    name: str
    first: int
    last: int
    score: float


class CatalogueScanner:
    """Every name and alias of a catalogue (actors or systems), folded into words, ready to scan texts."""

    def __init__(self, entries: Iterable[tuple[str, Sequence[str]]]) -> None:
        self._owner: list[str] = []
        self._words: list[tuple[str, ...]] = []
        self._by_first: dict[str, list[int]] = {}
        self._by_last: dict[str, list[int]] = {}
        for name, aliases in entries:
            for _form, words in distinct_forms(name, aliases, form_words):
                i = len(self._words)
                self._owner.append(name)
                self._words.append(words)
                self._by_first.setdefault(words[0], []).append(i)
                last = words[-1]
                if len(words) > 1 and last.isalpha() and len(last) >= SURNAME_LETTERS:
                    self._by_last.setdefault(last, []).append(i)
        self._first_buckets = _buckets(self._by_first)
        self._last_buckets = _buckets(self._by_last)
        self._close_cache: dict[tuple[str, bool], list[tuple[str, float]]] = {}

    def names(self) -> list[str]:
        """Every entry's name, once each, in catalogue order."""
        return list(dict.fromkeys(self._owner))

    def _close(self, word: str, last: bool) -> list[tuple[str, float]]:
        """Catalogue words (first words, or surnames when `last`) close to a text word, with scores."""
        hit = self._close_cache.get((word, last))
        if hit is not None:
            return hit
        exact = self._by_last if last else self._by_first
        out = [(word, 100.0)] if word in exact else []
        if len(word) >= FUZZY_LETTERS and not word.isdigit():
            bucket = (self._last_buckets if last else self._first_buckets).get((word[0], len(word)), [])
            for other, score, _ in process.extract(
                word, bucket, scorer=fuzz.ratio, score_cutoff=WORD_CUTOFF, limit=8
            ):
                if other != word:
                    out.append((other, score))
        if len(self._close_cache) > 50_000:
            self._close_cache.clear()
        self._close_cache[(word, last)] = out
        return out

    def find(self, tokens: Sequence[Token]) -> list[Mention]:
        """Every mention of an entry in the tokens, longest and closest first where they overlap."""
        found: list[Mention] = []
        n = len(tokens)
        for i, tok in enumerate(tokens):
            for word, first_score in self._close(tok.key, last=False):
                for f in self._by_first[word]:
                    mention = self._compare(tokens, i, f, first_score, n)
                    if mention is not None:
                        found.append(mention)
        full = _non_overlapping(found)
        named = {m.name for m in full}
        surnames = []
        for i, tok in enumerate(tokens):
            if not tok.proper or len(tok.key) < SURNAME_LETTERS or not tok.key.isalpha():
                continue
            for word, score in self._close(tok.key, last=True):
                if score < SINGLE_CUTOFF:
                    continue
                owners = {self._owner[f] for f in self._by_last[word]}
                # A surname shared by several entries names the one already in the text, or none.
                known = owners & named
                if len(known) == 1 or len(owners) == 1:
                    owner = next(iter(known or owners))
                    surnames.append(Mention(owner, i, i + 1, round(score * 0.95, 1)))
        return _non_overlapping(full + surnames)

    def _compare(self, tokens: Sequence[Token], i: int, f: int, first_score: float, n: int) -> Mention | None:
        words = self._words[f]
        m = len(words)
        if i + m > n or tokens[i + m - 1].sentence != tokens[i].sentence:
            return None
        if not _word_ok(tokens[i].key, words[0], first_score):
            return None
        scores = [first_score]
        for j in range(1, m):
            score = 100.0 if tokens[i + j].key == words[j] else fuzz.ratio(tokens[i + j].key, words[j])
            if not _word_ok(tokens[i + j].key, words[j], score):
                return None
            scores.append(score)
        mean = sum(scores) / m
        if m == 1:
            # One word: exact, or close and written as a name ("Kalibr", not "calibre" in a sentence).
            if mean < 100.0 and (mean < SINGLE_CUTOFF or not tokens[i].proper):
                return None
        elif mean < NAME_CUTOFF:
            return None
        return Mention(self._owner[f], i, i + m, round(mean, 1))


def _word_ok(typed: str, known: str, score: float) -> bool:
    """Short words and numbers must be equal ("S-300" is not "S-400"); longer ones close enough."""
    if typed == known:
        return True
    if len(known) < FUZZY_LETTERS or any(ch.isdigit() for ch in typed + known):
        return False
    return score >= WORD_CUTOFF


def _buckets(words: Iterable[str]) -> dict[tuple[str, int], list[str]]:
    """Words by (first letter, length ± 2): a close word shares its first letter and about its length."""
    out: dict[tuple[str, int], list[str]] = {}
    for word in words:
        if len(word) < FUZZY_LETTERS or word.isdigit():
            continue
        for length in range(len(word) - 2, len(word) + 3):
            out.setdefault((word[0], length), []).append(word)
    return out


def _non_overlapping(mentions: list[Mention]) -> list[Mention]:
    """Keep the longest, then closest, mention where several claim the same words; in text order."""
    taken: set[int] = set()
    kept = []
    for m in sorted(mentions, key=lambda m: (-(m.last - m.first), -m.score, m.first, m.name)):
        span = range(m.first, m.last)
        if any(t in taken for t in span):
            continue
        taken.update(span)
        kept.append(m)
    return sorted(kept, key=lambda m: (m.first, m.name))
