"""Report texts written for the quick-add tests, each with what an analyst would take from it.

Used by tests/test_quickadd.py (assertions) and by the recall/precision figures in docs/quickadd.md
(`python -m tests.quickadd_corpus` prints them). The catalogue below is created by factories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

ACTORS: list[tuple[str, list[str]]] = [
    ("Sergei Ryabkov", ["Сергей Рябков"]),
    ("Nicolás Maduro", ["Николас Мадуро"]),
    ("Dmitry Peskov", ["Дмитрий Песков"]),
    ("Abbas Araghchi", ["عباس عراقچی"]),
    ("Aziz Nasirzadeh", ["عزیز نصیرزاده"]),
    ("Kim Jong Un", ["Ким Чен Ын"]),
    ("Vladimir Padrino López", []),
]
SYSTEMS: list[tuple[str, list[str]]] = [
    ("S-400", ["Triumf", "С-400"]),
    ("Su-30MK2", []),
    ("Shahed-136", ["Geran-2", "Шахед-136"]),
    ("Kalibr", ["Калибр"]),
    ("Pantsir-S1", []),
    ("KN-23", []),
]


@dataclass
class Report:
    """One text, its publication date, and what should be found (dates as value/precision)."""

    name: str
    text: str
    published: date
    countries: dict[str, str]  # code -> role
    actors: set[str]
    systems: set[str]
    dates: set[str]
    kind: str
    quotes: int = 0
    extra: dict[str, str] = field(default_factory=dict)


REPORTS = [
    Report(
        "english-offer",
        "Russia could supply S-400 batteries to Venezuela, deputy foreign minister Sergey Rybakov said "
        "earlier "
        "this week. “Nothing prevents us from sending what our friends in Caracas need,” Ryabkov told "
        "journalists in Moscow. In October, two Su-30MK2 fighters landed at El Libertador air base.",
        date(2025, 11, 14),
        {"RUS": "supplier", "VEN": "recipient"},
        {"Sergei Ryabkov"},
        {"S-400", "Su-30MK2"},
        {"2025-11", "2025-10"},
        "offer",
        quotes=1,
    ),
    Report(
        "english-several-suppliers",
        "Iran and North Korea keep sending Shahed-136 drones and KN-23 missiles to Russia, Ukrainian "
        "intelligence said on 3 November. Pyongyang has shipped shells since September, while Tehran "
        "delivered a first batch of Geran-2 kits via Belarus last year.",
        date(2025, 11, 10),
        {"IRN": "supplier", "PRK": "supplier", "RUS": "recipient", "UKR": "target", "BLR": "intermediary"},
        set(),
        {"Shahed-136", "KN-23"},
        {"2025-11-03", "2025-09", "2024"},
        "transfer",
    ),
    Report(
        "russian",
        "В октябре Сергей Рябков заявил, что Москва готова передать Венесуэле системы С-400. «Ничто не "
        "мешает нам поставить эти системы», — сказал Рябков 14 ноября. Песков отказался от комментариев.",
        date(2025, 11, 20),
        {"RUS": "supplier", "VEN": "recipient"},
        {"Sergei Ryabkov", "Dmitry Peskov"},
        {"S-400"},
        {"2025-10", "2025-11-14"},
        "offer",
        quotes=1,
    ),
    Report(
        "spanish",
        "El gobierno de Venezuela pidió a Rusia más aviones Su-30MK2 y baterías Pantsir-S1. El 3 de "
        "noviembre, Nicolás Maduro dijo que Moscú envía asesores militares desde septiembre. El ministro "
        "Vladimir Padrino López confirmó la llegada de técnicos rusos.",
        date(2025, 11, 10),
        {"VEN": "recipient", "RUS": "supplier"},
        {"Nicolás Maduro", "Vladimir Padrino López"},
        {"Su-30MK2", "Pantsir-S1"},
        {"2025-11-03", "2025-09"},
        "request",
    ),
    Report(
        "persian-names",
        "Iranian foreign minister عباس عراقچی denied on Monday that Tehran had sent Shahed-136 drones to "
        "Moscow. Defence minister عزیز نصیرزاده said in March that Iran signed no new contract with Russia.",
        date(2025, 6, 12),
        {"IRN": "supplier", "RUS": "recipient"},
        {"Abbas Araghchi", "Aziz Nasirzadeh"},
        {"Shahed-136"},
        {"2025-06-09", "2025-03"},
        "denial",
    ),
    Report(
        "vague",
        "Kim Jong Un inspected troops deployed to Russia's Kursk region, state media reported. The "
        "deployment began last year, according to South Korean officials, who asked the U.S. for more "
        "intelligence sharing.",
        date(2025, 4, 28),
        {"PRK": "supplier", "RUS": "recipient", "KOR": "recipient", "USA": "supplier"},
        {"Kim Jong Un"},
        set(),
        {"2024"},
        "deployment",
    ),
]


def found(report: Report) -> dict[str, set[str]]:
    """What quick add suggests for a report, per category (countries as code:role; kind: the first)."""
    from app.quickadd.catalogue import CatalogueScanner
    from app.quickadd.extract import extract

    draft = extract(report.text, report.published, CatalogueScanner(ACTORS), CatalogueScanner(SYSTEMS))
    out: dict[str, set[str]] = {
        "countries": set(),
        "roles": set(),
        "actors": set(),
        "systems": set(),
        "dates": set(),
        "kind": set(),
    }
    for s in draft.suggestions:
        if s.field == "country":
            out["countries"].add(s.value)
            out["roles"].add(f"{s.value}:{s.role}")
        elif s.field in ("actor", "system"):
            out[f"{s.field}s"].add(s.value)
        elif s.field == "date":
            out["dates"].add(s.value)
    kinds = [s.value for s in draft.suggestions if s.field == "kind"]
    out["kind"] = set(kinds[:1])
    return out


def expected(report: Report) -> dict[str, set[str]]:
    """The annotations of a report, in the shape of `found`."""
    return {
        "countries": set(report.countries),
        "roles": {f"{c}:{r}" for c, r in report.countries.items()},
        "actors": report.actors,
        "systems": report.systems,
        "dates": report.dates,
        "kind": {report.kind},
    }


def scores() -> dict[str, tuple[float, float, int, int, int]]:
    """Per category over all reports: (recall, precision, true positives, expected, suggested)."""
    totals: dict[str, list[int]] = {}
    for report in REPORTS:
        got, want = found(report), expected(report)
        for key in want:
            t = totals.setdefault(key, [0, 0, 0])
            t[0] += len(got[key] & want[key])
            t[1] += len(want[key])
            t[2] += len(got[key])
    return {k: (tp / e if e else 1.0, tp / g if g else 1.0, tp, e, g) for k, (tp, e, g) in totals.items()}


if __name__ == "__main__":
    for report in REPORTS:
        got, want = found(report), expected(report)
        for key in want:
            if got[key] != want[key]:
                print(
                    f"{report.name} {key}: missed {sorted(want[key] - got[key])}, "
                    f"extra {sorted(got[key] - want[key])}"
                )
    print("| category | recall | precision | found right / expected / suggested |\n|---|---|---|---|")
    for key, (recall, precision, tp, e, g) in scores().items():
        print(f"| {key} | {recall:.0%} | {precision:.0%} | {tp} / {e} / {g} |")
