"""The controlled vocabularies of DESIGN.md: kinds, statuses, the stage ladder, roles and grades."""

from __future__ import annotations

KINDS: tuple[str, ...] = (
    "statement",
    "offer",
    "request",
    "agreement",
    "financing",
    "transfer",
    "deployment",
    "exercise",
    "training",
    "maintenance",
    "strike",
    "assessment",
    "economic",
    "denial",
)
STATUSES: tuple[str, ...] = ("claimed", "reported", "confirmed", "denied", "retracted")
# Statuses that still wait for corroboration: an event in one of them comes back for review.
REVIEWABLE: tuple[str, ...] = ("claimed", "reported")

# Typed links between events, as stored and written in URLs and CSV; each with how it reads from the
# source ("#12 denies #7") and from the target ("#7 denied by #12").
LINK_TYPES: tuple[str, ...] = ("confirms", "denies", "retracts", "fulfils", "follows_up", "same_as")
LINK_WORDS: dict[str, tuple[str, str]] = {
    "confirms": ("confirms", "confirmed by"),
    "denies": ("denies", "denied by"),
    "retracts": ("retracts", "retracted by"),
    "fulfils": ("fulfils", "fulfilled by"),
    "follows_up": ("follows up", "followed up by"),
    "same_as": ("same as", "same as"),
}
# A link of these types offers to set its target's status to this word.
LINK_SETS_STATUS: dict[str, str] = {"denies": "denied", "retracts": "retracted"}

STAGES: dict[int, str] = {
    0: "context",
    1: "rhetoric",
    2: "offer/request",
    3: "agreement/financing",
    4: "in transit",
    5: "delivered",
    6: "operational",
}

# The stage a kind implies when the analyst sets no override. Transfers default to "delivered";
# an analyst marks a shipment still on its way as stage 4 (in transit) by override. A denial is
# evidence against support, so it sits on 0 and never raises a ladder (migration 0007).
KIND_STAGE: dict[str, int] = {
    "assessment": 0,
    "economic": 0,
    "denial": 0,
    "statement": 1,
    "offer": 2,
    "request": 2,
    "agreement": 3,
    "financing": 3,
    "transfer": 5,
    "maintenance": 5,
    "training": 5,
    "deployment": 6,
    "exercise": 6,
    "strike": 6,
}

PRECISIONS: tuple[str, ...] = ("day", "month", "year")
COUNTRY_ROLES: tuple[str, ...] = ("supplier", "recipient", "target", "intermediary")
ACTOR_ROLES: tuple[str, ...] = (
    "speaker",
    "requester",
    "financier",
    "operator",
    "authoriser",
    "negotiator",
    "supplier",
    "recipient",
    "manufacturer",
    "carrier",
    "subject",
    "other",
)
ACTOR_TYPES: tuple[str, ...] = ("person", "government", "military", "company", "organisation", "other")
RELIABILITY: tuple[str, ...] = ("A", "B", "C", "D", "E", "F")
CREDIBILITY: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
USER_ROLES: tuple[str, ...] = ("viewer", "analyst", "admin")

# The analyst's judgement of an event as a whole (DESIGN "Trust"): ICD 203 estimative language, from the
# least to the most likely, and analytic confidence in that judgement. Both optional.
LIKELIHOODS: tuple[str, ...] = (
    "almost no chance",
    "very unlikely",
    "unlikely",
    "roughly even chance",
    "likely",
    "very likely",
    "almost certain",
)
CONFIDENCES: tuple[str, ...] = ("low", "moderate", "high")
# The corroboration facet's steps: events with at least 1, 2 or 3 independent origins.
ORIGIN_STEPS: tuple[int, ...] = (1, 2, 3)

RELIABILITY_LABELS: dict[str, str] = {
    "A": "completely reliable",
    "B": "usually reliable",
    "C": "fairly reliable",
    "D": "not usually reliable",
    "E": "unreliable",
    "F": "reliability cannot be judged",
}
CREDIBILITY_LABELS: dict[int, str] = {
    1: "confirmed by other sources",
    2: "probably true",
    3: "possibly true",
    4: "doubtful",
    5: "improbable",
    6: "truth cannot be judged",
}


def sql_in(values: tuple[str, ...]) -> str:
    """Render a vocabulary as a SQL IN list for check constraints."""
    return ", ".join(f"'{v}'" for v in values)


def stage_case_sql(kind_column: str = "kind") -> str:
    """SQL CASE expression mapping a kind to its default stage (used by the generated column)."""
    whens = " ".join(f"WHEN '{k}' THEN {s}" for k, s in KIND_STAGE.items())
    return f"CASE {kind_column} {whens} ELSE 0 END"
