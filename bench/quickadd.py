"""Time quick add: a 10,000-character report against a 10,000-entry catalogue (see docs/quickadd.md).

In-process by default, with a synthetic catalogue (10,000 actors and 10,000 systems, each with an alias)
and a synthetic report whose every sentence differs, so no cache inside dateparser or the scanner helps
more than it would for a real new report. With --database-url, the catalogue is read from that database
through the same cached index the page uses (its build is timed apart: it happens once per catalogue
version). Prints the median and worst of several runs of the whole extraction and of its parts.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.quickadd import warm_up  # noqa: E402
from app.quickadd.catalogue import CatalogueScanner  # noqa: E402
from app.quickadd.dates import find_dates  # noqa: E402
from app.quickadd.extract import extract  # noqa: E402
from app.quickadd.tokens import sentences, tokenize  # noqa: E402

SYLLABLES = ["ka", "ro", "mi", "sha", "ven", "dor", "li", "ta", "nov", "ev", "ski", "ra", "bo", "tu", "gan"]
FILLER = [
    "officials",
    "discussed",
    "the",
    "harbour,",
    "oil",
    "output,",
    "grain",
    "prices",
    "and",
    "the",
    "weather",
    "for",
    "hours",
    "without",
    "any",
    "conclusion",
    "while",
    "reporters",
    "waited",
    "outside",
    "the",
    "building",
]
TEMPLATES = [
    "{actor} said on {day} November that {c1} could supply {n} {system} launchers to {c2}.",
    "In {month}, {c1} delivered {system} units to {c2} via {c3}, according to {actor}.",
    "{c2} asked {c1} for more {system} jets earlier this week, {actor} told reporters.",
    "“We are ready to send {system} to our friends in {c2},” {actor} said {rel}.",
    "Since {month}, {c1} has deployed advisers and {system} crews to {c2}.",
]
COUNTRIES = ["Russia", "Iran", "North Korea", "Venezuela", "Cuba", "Belarus", "China", "Syria", "Nicaragua"]
MONTHS = ["January", "March", "April", "June", "July", "August", "September", "October"]
RELATIVE = ["last week", "last month", "last year", "yesterday", "in 2023", "on 3 October"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def synthetic_catalogue(
    size: int, seed: int = 1
) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """`size` actors ("First Last", alias "Last") and `size` systems ("Word-123", alias "Word")."""
    rng = random.Random(seed)
    actors = {f"{_word(rng)} {_word(rng)}{i}": [_word(rng)] for i in range(size)}
    systems = {f"{_word(rng)}-{i}": [f"{_word(rng)} {i}"] for i in range(size)}
    return [(k, v) for k, v in actors.items()], [(k, v) for k, v in systems.items()]


def synthetic_report(actors: list[str], systems: list[str], chars: int = 10_000, seed: int = 2) -> str:
    """A report of about `chars` characters, every sentence different, naming catalogue entries."""
    rng = random.Random(seed)
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < chars:
        template = rng.choice(TEMPLATES)
        sentence = template.format(
            actor=rng.choice(actors),
            system=rng.choice(systems),
            c1=rng.choice(COUNTRIES),
            c2=rng.choice(COUNTRIES),
            c3=rng.choice(COUNTRIES),
            n=rng.randint(2, 40),
            day=rng.randint(1, 13),
            month=rng.choice(MONTHS),
            rel=rng.choice(RELATIVE),
        )
        filler = " ".join(rng.sample(FILLER, rng.randint(5, 12)))
        out.append(f"{sentence} The {filler} {rng.randint(1, 999)}.")
    return " ".join(out)[:chars]


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    """Milliseconds of each of `runs` calls."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    """Run the benchmark and print a small Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=10_000, help="catalogue entries of each kind")
    parser.add_argument("--chars", type=int, default=10_000, help="report length")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", help="read the catalogue from this database instead")
    args = parser.parse_args()
    warm_up()
    if args.database_url:
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        from app.web.quick import scanners

        with Session(create_engine(args.database_url)) as session:
            t0 = time.perf_counter()
            actor_scanner, system_scanner = scanners(session)
            build = (time.perf_counter() - t0) * 1000
            lookup = timed(lambda: scanners(session), args.runs)
        actor_names = actor_scanner.names()[:500] or ["Sergei Ryabkov"]
        system_names = system_scanner.names()[:500] or ["S-400"]
    else:
        actors, systems = synthetic_catalogue(args.size)
        t0 = time.perf_counter()
        actor_scanner, system_scanner = CatalogueScanner(actors), CatalogueScanner(systems)
        build = (time.perf_counter() - t0) * 1000
        lookup = []
        actor_names = [name for name, _ in actors]
        system_names = [name for name, _ in systems]
    published = date(2025, 11, 14)
    rows = []
    for seed in range(args.runs):
        text = synthetic_report(actor_names, system_names, args.chars, seed=100 + seed)
        cuts = sentences(text)
        tokens = tokenize(text, cuts)
        t0 = time.perf_counter()
        draft = extract(text, published, actor_scanner, system_scanner)
        total = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        find_dates(text, cuts, date(2025, 11, 13 - seed % 5))  # another base: nothing cached
        dates = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        actor_scanner.find(tokens)
        system_scanner.find(tokens)
        names = (time.perf_counter() - t0) * 1000
        rows.append((total, dates, names, len(draft.suggestions)))
    totals = [r[0] for r in rows]
    print(
        f"catalogue: {args.size if not args.database_url else 'database'} actors and systems; "
        f"report: {args.chars} characters; {args.runs} different reports"
    )
    print("| measure | median ms | worst ms |\n|---|---|---|")
    print(f"| whole extraction (fresh report) | {statistics.median(totals):.0f} | {max(totals):.0f} |")
    print(f"| of which dates | {statistics.median(r[1] for r in rows):.0f} | {max(r[1] for r in rows):.0f} |")
    print(
        f"| of which actors+systems | {statistics.median(r[2] for r in rows):.0f} | "
        f"{max(r[2] for r in rows):.0f} |"
    )
    print(f"| catalogue index build (once per catalogue version) | {build:.0f} | {build:.0f} |")
    if lookup:
        print(f"| cached index lookup (digest query) | {statistics.median(lookup):.0f} | {max(lookup):.0f} |")
    print(f"suggestions per report: {statistics.median(r[3] for r in rows):.0f}")


if __name__ == "__main__":
    main()
