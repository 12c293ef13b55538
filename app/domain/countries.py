"""ISO 3166-1 countries from pycountry: names, codes and lookups by code or name."""

from __future__ import annotations

from functools import lru_cache

import pycountry

# Names as analysts write them; pycountry's official names are long ("Russian Federation").
COMMON_NAMES: dict[str, str] = {
    "RUS": "Russia",
    "IRN": "Iran",
    "VEN": "Venezuela",
    "SYR": "Syria",
    "PRK": "North Korea",
    "KOR": "South Korea",
    "BOL": "Bolivia",
    "TZA": "Tanzania",
    "VNM": "Vietnam",
    "LAO": "Laos",
    "MDA": "Moldova",
    "TWN": "Taiwan",
    "PSE": "Palestine",
    "COD": "DR Congo",
    "GBR": "United Kingdom",
    "USA": "United States",
    "TUR": "Türkiye",
}


def country_rows() -> list[dict[str, str]]:
    """Every ISO 3166-1 country as {code, alpha2, name}, for the countries table."""
    rows = []
    for c in pycountry.countries:
        name = COMMON_NAMES.get(c.alpha_3) or getattr(c, "common_name", None) or c.name
        rows.append({"code": c.alpha_3, "alpha2": c.alpha_2, "name": name})
    return sorted(rows, key=lambda r: r["code"])


@lru_cache
def names_by_code() -> dict[str, str]:
    """Map alpha-3 code to display name."""
    return {r["code"]: r["name"] for r in country_rows()}


@lru_cache
def numeric_codes() -> dict[str, str]:
    """Map alpha-3 code to ISO 3166-1 numeric code ("643"), the id of a country on the vendored world map."""
    return {c.alpha_3: c.numeric for c in pycountry.countries}


def country_name(code: str) -> str:
    """Display name for an alpha-3 code (the code itself if unknown)."""
    return names_by_code().get(code, code)


# Forms, the API and every row of an import resolve the same few codes over and over; the answer depends
# only on the text (the ISO data does not change while the process runs).
@lru_cache(maxsize=4096)
def resolve_country(value: str) -> str | None:
    """Turn a code (alpha-3 or alpha-2) or a name into an alpha-3 code, or None if unknown."""
    v = value.strip()
    if not v:
        return None
    upper = v.upper()
    if upper in names_by_code():
        return upper
    folded = v.casefold()
    for code, name in names_by_code().items():
        if name.casefold() == folded:
            return code
    try:
        found = pycountry.countries.lookup(v)
    except LookupError:
        return None
    return str(found.alpha_3)
