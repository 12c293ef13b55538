"""A report's words with their place in the text, folded the way catalogue names are (app.names.name_key)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from app.names import name_key

_WORD = re.compile(r"[^\W_]+")
# A sentence ends at . ! ? … or a line break; "U.S." and "Su-30" stay whole because a sentence end
# needs a space or the end of the text after it.
_SENTENCE_END = re.compile(r"(?<=[.!?…。؟])\s+|\n\s*")


@dataclass(frozen=True)
class Token:
    """One folded word of the text: where it is (character offsets), its key and how it was written."""

    start: int
    end: int
    key: str
    proper: bool  # starts with a capital, or is in a script without case (Arabic, Persian, CJK)
    upper: bool  # written all in capitals ("US", "DPRK")
    sentence: int


@dataclass(frozen=True)
class Sentence:
    """A sentence's offsets in the text."""

    start: int
    end: int


@lru_cache(maxsize=65536)
def word_key(word: str) -> str:
    """One word's key: folded into Latin letters as one word ("Зеленський" -> "zelenskiy")."""
    return "".join(name_key(word).split())


def form_words(form: str) -> tuple[str, ...]:
    """A name's words as the text's words are keyed ("Su-30MK2" -> ("su", "30mk2"))."""
    return tuple(k for k in (word_key(m.group()) for m in _WORD.finditer(form)) if k)


def sentences(text: str) -> list[Sentence]:
    """The text cut into sentences (offsets), empty ones left out."""
    out, pos = [], 0
    for m in _SENTENCE_END.finditer(text):
        if text[pos : m.start()].strip():
            out.append(Sentence(pos, m.start()))
        pos = m.end()
    if text[pos:].strip():
        out.append(Sentence(pos, len(text)))
    return out


def tokenize(text: str, cuts: list[Sentence]) -> list[Token]:
    """Every word of the text in order, keyed by `word_key` (words that fold to nothing are left out)."""
    out: list[Token] = []
    s = 0
    for m in _WORD.finditer(text):
        while s + 1 < len(cuts) and m.start() >= cuts[s + 1].start:
            s += 1
        word = m.group()
        first = word[0]
        proper = first.isupper() or not (first.isupper() or first.islower())
        upper = word.isupper()
        key = word_key(word)
        if key:
            out.append(Token(m.start(), m.end(), key, proper, upper, s))
    return out
