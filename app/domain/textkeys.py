"""Folding names into match keys, so "Nicolas Maduro" finds "Nicolás Maduro" and case never matters."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def fold(text: str) -> str:
    """Case-fold, strip accents and collapse spaces; Cyrillic and other scripts keep their letters.

    A name made only of marks ("¨") would fold to nothing and could never be found again (a second
    import of it would then try to create it twice); such a name keeps its case-folded form.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split()) or " ".join(text.casefold().split())


def match_keys(name: str, aliases: Iterable[str] = ()) -> list[str]:
    """The distinct folded forms of a name and its aliases."""
    keys: list[str] = []
    for value in (name, *aliases):
        key = fold(value)
        if key and key not in keys:
            keys.append(key)
    return keys
