"""Synthetic events for scale tests: the mix of real reporting, reproducible by seed, loaded with COPY."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg

from app.domain.countries import country_name
from app.domain.textkeys import match_keys
from app.domain.vocab import KIND_STAGE
from app.queries.search_document import CatalogueWords, document_sql, load_words

# ---- the mix ------------------------------------------------------------------------------------
# Supplier -> recipient pairs with weights: a long tail behind a few dominant dyads, as in real reporting.
DYADS: list[tuple[str, str, int]] = [
    ("RUS", "SYR", 60),
    ("IRN", "RUS", 55),
    ("PRK", "RUS", 50),
    ("USA", "UKR", 70),
    ("RUS", "VEN", 30),
    ("CHN", "RUS", 35),
    ("IRN", "YEM", 30),
    ("IRN", "LBN", 28),
    ("USA", "ISR", 40),
    ("USA", "TWN", 25),
    ("CHN", "PAK", 22),
    ("RUS", "IND", 20),
    ("FRA", "UKR", 22),
    ("GBR", "UKR", 22),
    ("DEU", "UKR", 24),
    ("TUR", "AZE", 15),
    ("ISR", "AZE", 12),
    ("RUS", "IRN", 25),
    ("CHN", "IRN", 18),
    ("RUS", "MLI", 12),
    ("RUS", "CAF", 10),
    ("RUS", "BLR", 18),
    ("TUR", "UKR", 12),
    ("FRA", "IND", 12),
    ("USA", "SAU", 14),
    ("USA", "POL", 14),
    ("CHN", "SRB", 6),
    ("RUS", "PRK", 15),
    ("IRN", "SYR", 20),
    ("IRN", "IRQ", 10),
    ("USA", "KOR", 8),
    ("USA", "JPN", 8),
    ("FRA", "EGY", 6),
    ("DEU", "ISR", 6),
    ("RUS", "DZA", 8),
    ("CHN", "MMR", 8),
    ("RUS", "MMR", 6),
    ("TUR", "QAT", 5),
    ("ISR", "IND", 6),
    ("GBR", "SAU", 6),
    ("RUS", "CUB", 6),
    ("RUS", "NIC", 4),
    ("CHN", "VEN", 5),
    ("IRN", "VEN", 5),
    ("USA", "PHL", 6),
]
# What an event is aimed at (the context country), by supplier.
TARGETS: dict[str, list[str]] = {
    "RUS": ["UKR", "USA", "POL", "LTU"],
    "IRN": ["ISR", "USA", "SAU", "UKR"],
    "PRK": ["UKR", "KOR", "USA"],
    "CHN": ["TWN", "USA", "IND", "PHL"],
    "USA": ["RUS", "CHN", "IRN"],
    "FRA": ["RUS"],
    "GBR": ["RUS"],
    "DEU": ["RUS"],
    "TUR": ["ARM", "SYR"],
    "ISR": ["IRN", "ARM"],
}
INTERMEDIARIES = ["BLR", "ARE", "KAZ", "ARM", "GEO", "TUR", "SRB", "CYP", "OMN", "SYR"]

KIND_WEIGHTS: dict[str, int] = {
    "statement": 30,
    "deployment": 10,
    "transfer": 10,
    "agreement": 7,
    "offer": 6,
    "request": 6,
    "exercise": 6,
    "assessment": 6,
    "financing": 4,
    "training": 4,
    "strike": 4,
    "economic": 3,
    "maintenance": 2,
    "denial": 2,
}
STATUS_WEIGHTS: dict[str, int] = {"reported": 55, "claimed": 22, "confirmed": 16, "denied": 5, "retracted": 2}
PRECISION_WEIGHTS: dict[str, int] = {"day": 70, "month": 22, "year": 8}
SOURCE_COUNT_WEIGHTS = [8, 45, 30, 12, 5]  # 0..4 sources

VERBS: dict[str, list[str]] = {
    "statement": ["pledges support for", "vows to back", "signals readiness to arm", "praises ties with"],
    "offer": ["offers", "proposes to supply", "offers to sell"],
    "request": ["asks for", "requests", "seeks"],
    "agreement": ["signs deal on", "agrees to supply", "concludes contract for"],
    "financing": ["finances", "extends credit line for", "funds purchase of"],
    "transfer": ["delivers", "ships", "hands over"],
    "deployment": ["deploys", "stations", "moves"],
    "exercise": ["holds drills with", "exercises", "rehearses use of"],
    "training": ["trains crews on", "trains operators of", "runs course on"],
    "maintenance": ["repairs", "services", "overhauls"],
    "strike": ["uses", "fires", "strikes with"],
    "assessment": ["assessed to hold", "estimated to operate", "believed to field"],
    "economic": ["expands trade linked to", "opens plant for", "licenses production of"],
    "denial": ["denies supplying", "rejects reports on", "dismisses claims about"],
}
PUBLISHERS: list[tuple[str, str, str, int]] = [
    # name, domain, typical reliability, weight
    ("Reuters", "reuters.com", "B", 14),
    ("Associated Press", "apnews.com", "B", 10),
    ("AFP", "afp.com", "B", 7),
    ("BBC", "bbc.com", "B", 6),
    ("The New York Times", "nytimes.com", "B", 5),
    ("The Wall Street Journal", "wsj.com", "B", 4),
    ("Financial Times", "ft.com", "B", 3),
    ("Bloomberg", "bloomberg.com", "B", 4),
    ("Al Jazeera", "aljazeera.com", "C", 5),
    ("TASS", "tass.com", "D", 9),
    ("RIA Novosti", "ria.ru", "D", 6),
    ("Interfax", "interfax.ru", "C", 4),
    ("Xinhua", "xinhuanet.com", "D", 4),
    ("IRNA", "irna.ir", "D", 3),
    ("Tasnim", "tasnimnews.com", "E", 3),
    ("KCNA", "kcna.kp", "E", 2),
    ("Kyiv Independent", "kyivindependent.com", "C", 5),
    ("Ukrainska Pravda", "pravda.com.ua", "C", 3),
    ("ISW", "understandingwar.org", "B", 4),
    ("Janes", "janes.com", "A", 3),
    ("Defense News", "defensenews.com", "B", 3),
    ("SIPRI", "sipri.org", "A", 2),
    ("Oryx", "oryxspioenkop.com", "B", 2),
    ("Meduza", "meduza.io", "C", 2),
    ("The War Zone", "twz.com", "C", 2),
    ("Anadolu Agency", "aa.com.tr", "C", 2),
    ("Times of Israel", "timesofisrael.com", "C", 2),
    ("Telegram channel", "t.me", "F", 3),
    ("X post", "x.com", "F", 3),
]
TAGS = [
    "drones",
    "air-defence",
    "missiles",
    "artillery",
    "sanctions",
    "shipping",
    "black-sea",
    "red-sea",
    "nuclear",
    "ammunition",
    "armour",
    "naval",
    "aviation",
    "cyber",
    "mercenaries",
    "space",
    "logistics",
    "rail",
    "port-call",
    "budget",
    "export-licence",
    "denial",
    "satellite-imagery",
    "train-and-equip",
]
SYSTEM_FAMILIES: list[tuple[str, str, str]] = [
    # designation stem, category, origin
    ("Su-", "fighter aircraft", "RUS"),
    ("MiG-", "fighter aircraft", "RUS"),
    ("Mi-", "helicopter", "RUS"),
    ("Ka-", "helicopter", "RUS"),
    ("Il-", "transport aircraft", "RUS"),
    ("S-", "air-defence system", "RUS"),
    ("Pantsir-", "air-defence system", "RUS"),
    ("Kh-", "missile", "RUS"),
    ("Iskander-", "missile", "RUS"),
    ("T-", "tank", "RUS"),
    ("BMP-", "armoured vehicle", "RUS"),
    ("Orlan-", "drone", "RUS"),
    ("Shahed-", "drone", "IRN"),
    ("Mohajer-", "drone", "IRN"),
    ("Fateh-", "missile", "IRN"),
    ("Zolfaghar-", "missile", "IRN"),
    ("Hwasong-", "missile", "PRK"),
    ("KN-", "missile", "PRK"),
    ("Koksan M", "artillery", "PRK"),
    ("J-", "fighter aircraft", "CHN"),
    ("HQ-", "air-defence system", "CHN"),
    ("Wing Loong ", "drone", "CHN"),
    ("CH-", "drone", "CHN"),
    ("Type 0", "ship", "CHN"),
    ("F-", "fighter aircraft", "USA"),
    ("AH-", "helicopter", "USA"),
    ("MIM-", "air-defence system", "USA"),
    ("AGM-", "missile", "USA"),
    ("M", "armoured vehicle", "USA"),
    ("MQ-", "drone", "USA"),
    ("Rafale ", "fighter aircraft", "FRA"),
    ("CAESAR Mk", "artillery", "FRA"),
    ("SCALP-", "missile", "FRA"),
    ("Storm Shadow Block ", "missile", "GBR"),
    ("Challenger ", "tank", "GBR"),
    ("Leopard ", "tank", "DEU"),
    ("IRIS-T SL", "air-defence system", "DEU"),
    ("Bayraktar TB", "drone", "TUR"),
    ("Akinci-", "drone", "TUR"),
    ("Harop-", "drone", "ISR"),
    ("Barak-", "air-defence system", "ISR"),
    ("Spike-", "missile", "ISR"),
]
REAL_SYSTEMS = [
    ("Oreshnik", "missile", "RUS"),
    ("Kalibr", "missile", "RUS"),
    ("Igla-S", "air-defence system", "RUS"),
    ("Su-30MK2", "fighter aircraft", "RUS"),
    ("Il-76", "transport aircraft", "RUS"),
    ("Shahed-136", "drone", "IRN"),
    ("HIMARS", "artillery", "USA"),
    ("ATACMS", "missile", "USA"),
    ("Patriot", "air-defence system", "USA"),
    ("Javelin", "missile", "USA"),
    ("Kinzhal", "missile", "RUS"),
    ("Lancet", "drone", "RUS"),
    ("Geran-2", "drone", "RUS"),
    ("KN-23", "missile", "PRK"),
]
FIRST_NAMES: dict[str, list[str]] = {
    "RUS": ["Sergei", "Dmitry", "Alexei", "Nikolai", "Andrei", "Yuri", "Viktor", "Maria", "Elena", "Igor"],
    "IRN": ["Ali", "Hossein", "Mohammad", "Reza", "Abbas", "Mahmoud", "Hassan", "Fatemeh"],
    "CHN": ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang"],
    "PRK": ["Kim", "Pak", "Choe", "Ri", "Jong", "Kang"],
    "USA": ["John", "Lloyd", "Antony", "Mark", "Sarah", "Linda", "James", "Karen"],
    "UKR": ["Oleksii", "Andrii", "Rustem", "Dmytro", "Olena", "Kyrylo", "Mykhailo"],
    "TUR": ["Mehmet", "Hulusi", "Hakan", "Yasar", "Ayse", "Selcuk"],
    "FRA": ["Sebastien", "Florence", "Jean", "Emmanuel", "Claire", "Pierre"],
    "GBR": ["John", "Grant", "Ben", "Rachel", "James", "Emma"],
    "DEU": ["Boris", "Olaf", "Annalena", "Christine", "Markus", "Jens"],
    "ISR": ["Yoav", "Benny", "Eyal", "Tamar", "Avi", "Noa"],
    "SYR": ["Bashar", "Ali", "Faisal", "Walid", "Fahd"],
    "VEN": ["Nicolas", "Vladimir", "Delcy", "Diosdado", "Carlos"],
}
LAST_NAMES: dict[str, list[str]] = {
    "RUS": ["Ryabkov", "Shoigu", "Lavrov", "Peskov", "Belousov", "Medvedev", "Zakharova", "Gerasimov"],
    "IRN": ["Araghchi", "Bagheri", "Salami", "Nasirzadeh", "Pezeshkian", "Hajizadeh", "Larijani"],
    "CHN": ["Yi", "Jun", "Qiang", "Dong", "Shangfu", "Xiaoming", "Wei"],
    "PRK": ["Jong-un", "Yo-jong", "Son-hui", "Yong-chol", "Chang-ho"],
    "USA": ["Austin", "Blinken", "Milley", "Kirby", "Sullivan", "Hegseth", "Rubio"],
    "UKR": ["Reznikov", "Umerov", "Kuleba", "Sybiha", "Budanov", "Syrskyi", "Yermak"],
    "TUR": ["Akar", "Guler", "Fidan", "Bayraktar", "Demir"],
    "FRA": ["Lecornu", "Parly", "Barrot", "Macron", "Bonnafont"],
    "GBR": ["Healey", "Shapps", "Wallace", "Lammy", "Cameron"],
    "DEU": ["Pistorius", "Scholz", "Baerbock", "Lambrecht", "Wadephul"],
    "ISR": ["Gallant", "Katz", "Zamir", "Halevi", "Gantz"],
    "SYR": ["al-Assad", "Mekdad", "Abbas", "al-Shaar"],
    "VEN": ["Maduro", "Padrino", "Rodriguez", "Cabello"],
}
TITLES = [
    "minister of defence",
    "foreign minister",
    "deputy foreign minister",
    "spokesperson",
    "chief of staff",
    "commander",
    "ambassador",
    "president",
    "head of delegation",
    "director",
]
BODIES = [
    "Ministry of Defence",
    "Foreign Ministry",
    "General Staff",
    "Presidential Office",
    "Security Council",
    "Air Force",
    "Navy",
    "Defence Procurement Agency",
    "Export Control Service",
    "State Arms Exporter",
]
UNITS = ["Brigade", "Regiment", "Division", "Flotilla", "Air Wing", "Battalion"]
ACTOR_ROLE_BY_KIND: dict[str, list[str]] = {
    "statement": ["speaker"],
    "denial": ["speaker"],
    "assessment": ["speaker", "subject"],
    "offer": ["speaker", "supplier"],
    "request": ["requester", "speaker"],
    "agreement": ["negotiator", "authoriser"],
    "financing": ["financier"],
    "transfer": ["supplier", "carrier", "recipient"],
    "deployment": ["operator"],
    "exercise": ["operator"],
    "training": ["operator", "supplier"],
    "maintenance": ["manufacturer"],
    "strike": ["operator"],
    "economic": ["manufacturer", "financier"],
}
LOCATIONS = [
    "Moscow",
    "Tehran",
    "Beijing",
    "Pyongyang",
    "Damascus",
    "Caracas",
    "Kyiv",
    "Washington",
    "Latakia",
    "Tartus",
    "Bandar Abbas",
    "Novorossiysk",
    "Vladivostok",
    "Minsk",
    "Sevastopol",
    "Hodeidah",
    "Beirut",
    "Ankara",
    "Paris",
    "London",
    "Berlin",
    "Rzeszow",
    "Baku",
    "Islamabad",
]
WORDS = (  # noqa: SIM905 - prose reads better than a list of words
    "officials said the package would include spare parts ammunition and training for crews over the "
    "coming months while analysts cautioned that satellite imagery showed no sign of the systems at "
    "the reported base the ministry declined to comment on the timing of deliveries and the cost of "
    "the contract which diplomats described as part of a wider security partnership aimed at air "
    "defence naval cooperation and joint production of drones under licence local media reported "
    "additional flights by cargo aircraft and a ship carrying containers was tracked leaving port "
    "under escort"
).split()
DAY0 = date(2011, 1, 1)
DAYS = (date(2026, 6, 30) - DAY0).days


def _weighted(pairs: dict[str, int]) -> tuple[list[str], list[int]]:
    keys = list(pairs)
    acc, total = [], 0
    for k in keys:
        total += pairs[k]
        acc.append(total)
    return keys, acc


def _copy_text(value: Any) -> str:
    """One value in COPY text format (\\N for NULL; backslash, tab and newlines escaped)."""
    if value is None:
        return "\\N"
    s = str(value)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def _pg_array(values: list[str]) -> str:
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


@dataclass
class Catalogue:
    """Actors and systems to draw from, indexed by country for a plausible match with the dyad."""

    actors: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # name, type, country, title
    systems: list[tuple[str, str, str]] = field(default_factory=list)  # designation, category, origin
    actor_ids: dict[str, list[int]] = field(default_factory=dict)
    system_ids: dict[str, list[int]] = field(default_factory=dict)
    all_actor_ids: list[int] = field(default_factory=list)
    all_system_ids: list[int] = field(default_factory=list)
    system_names: dict[int, str] = field(default_factory=dict)
    origin_ids: dict[str, int] = field(default_factory=dict)  # publisher -> its own origin
    # Each entry's words for the events' search documents (app.queries.search_document).
    words: CatalogueWords = field(default_factory=lambda: CatalogueWords({}, {}, {}))


def build_catalogue(rng: random.Random, n_actors: int = 320, n_systems: int = 300) -> Catalogue:
    """A few hundred actors (people, bodies, units, companies) and systems, names unique."""
    cat = Catalogue()
    seen: set[str] = set()
    countries = list(FIRST_NAMES)
    for code in countries:  # every catalogue country gets its bodies first
        for body in BODIES[:6]:
            name = f"{country_name(code)} {body}"
            seen.add(name)
            cat.actors.append((name, "government", code, None))
    while len(cat.actors) < n_actors:
        code = rng.choice(countries)
        roll = rng.random()
        if roll < 0.7:
            name = f"{rng.choice(FIRST_NAMES[code])} {rng.choice(LAST_NAMES[code])}"
            kind, title = "person", f"{rng.choice(TITLES)}, {country_name(code)}"
        elif roll < 0.88:
            name = f"{rng.randint(1, 400)}th {rng.choice(UNITS)} ({code})"
            kind, title = "military", None
        else:
            name = (
                f"{rng.choice(LAST_NAMES[code])} {rng.choice(['Industries', 'Arms', 'Aerospace', 'Group'])}"
            )
            kind, title = "company", None
        if name not in seen:
            seen.add(name)
            cat.actors.append((name, kind, code, title))
    designations: set[str] = set()
    for d, c, o in REAL_SYSTEMS:
        designations.add(d)
        cat.systems.append((d, c, o))
    while len(cat.systems) < n_systems:
        stem, category, origin = rng.choice(SYSTEM_FAMILIES)
        d = f"{stem}{rng.randint(2, 99)}{rng.choice(['', '', 'M', 'A', 'K', 'MK'])}"
        if d not in designations:
            designations.add(d)
            cat.systems.append((d, category, origin))
    return cat


def _load_catalogue(conn: psycopg.Connection[Any], cat: Catalogue) -> None:
    """Insert the catalogue rows that are missing (by name) and learn every id."""
    with conn.cursor() as cur:
        for name, kind, code, title in cat.actors:
            cur.execute(
                "INSERT INTO actors (name, aliases, match_keys, type, country_code, title) "
                "VALUES (%s, '{}', %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                (name, match_keys(name), kind, code, title),
            )
        for d, category, origin in cat.systems:
            cur.execute(
                "INSERT INTO systems (designation, aliases, match_keys, category, origin_code) "
                "VALUES (%s, '{}', %s, %s, %s) ON CONFLICT (designation) DO NOTHING",
                (d, match_keys(d), category, origin),
            )
        for name, *_ in PUBLISHERS:
            cur.execute(
                "INSERT INTO origins (name, aliases, match_keys) VALUES (%s, '{}', %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, match_keys(name)),
            )
        cur.execute("SELECT id, name FROM origins WHERE name = ANY(%s)", ([p[0] for p in PUBLISHERS],))
        cat.origin_ids.update({name: origin_id for origin_id, name in cur.fetchall()})
        cur.execute("SELECT id, country_code FROM actors WHERE name = ANY(%s)", ([a[0] for a in cat.actors],))
        for actor_id, code in cur.fetchall():
            cat.actor_ids.setdefault(code or "", []).append(actor_id)
            cat.all_actor_ids.append(actor_id)
        cur.execute(
            "SELECT id, origin_code, designation FROM systems WHERE designation = ANY(%s)",
            ([s[0] for s in cat.systems],),
        )
        for system_id, origin, d in cur.fetchall():
            cat.system_ids.setdefault(origin or "", []).append(system_id)
            cat.all_system_ids.append(system_id)
            cat.system_names[system_id] = d
    for ids in (*cat.actor_ids.values(), *cat.system_ids.values(), cat.all_actor_ids, cat.all_system_ids):
        ids.sort()  # the order of SELECT results must not change what a seed generates
    with conn.cursor() as cur:
        cat.words = load_words(cur, cat.all_actor_ids, cat.all_system_ids)


@dataclass
class Batch:
    """COPY text lines for one batch of events and their links."""

    events: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    systems: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


class Generator:
    """Draws events one by one from the mix; the same seed gives the same rows."""

    def __init__(self, seed: int, cat: Catalogue) -> None:
        self.rng = random.Random(seed)
        self.cat = cat
        self.dyads = [(s, r) for s, r, _ in DYADS]
        self.dyad_acc = _acc([w for _, _, w in DYADS])
        self.kinds, self.kind_acc = _weighted(KIND_WEIGHTS)
        self.statuses, self.status_acc = _weighted(STATUS_WEIGHTS)
        self.precisions, self.precision_acc = _weighted(PRECISION_WEIGHTS)
        self.source_acc = _acc(SOURCE_COUNT_WEIGHTS)
        self.publishers = PUBLISHERS
        self.publisher_acc = _acc([p[3] for p in PUBLISHERS])
        self.names = {code: country_name(code) for pair in DYADS for code in pair[:2]}

    def _date(self) -> tuple[date, str]:
        # Reporting grows over the years: a square-root draw puts more events in recent years.
        offset = int(DAYS * (self.rng.random() ** 0.6))
        d = DAY0 + timedelta(days=offset)
        precision = self.rng.choices(self.precisions, cum_weights=self.precision_acc)[0]
        if precision == "month":
            d = d.replace(day=1)
        elif precision == "year":
            d = date(d.year, 1, 1)
        return d, precision

    def _sentence(self, lo: int, hi: int) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(lo, hi))
        return " ".join(words).capitalize() + "."

    def event(self, event_id: int, out: Batch) -> None:
        """Append one event and its links to the batch."""
        rng = self.rng
        supplier, recipient = rng.choices(self.dyads, cum_weights=self.dyad_acc)[0]
        kind = rng.choices(self.kinds, cum_weights=self.kind_acc)[0]
        status = rng.choices(self.statuses, cum_weights=self.status_acc)[0]
        start, precision = self._date()
        end = end_precision = None
        if kind in ("deployment", "exercise", "training") and rng.random() < 0.25:
            end = start + timedelta(days=rng.randint(1, 120))
            end_precision = "day"
            if precision != "day":
                end, end_precision = None, None
        stage_override = 4 if kind == "transfer" and rng.random() < 0.15 else None
        if stage_override is None and rng.random() < 0.01:
            stage_override = min(6, KIND_STAGE[kind] + 1)

        systems: list[int] = []
        if kind not in ("statement", "denial", "economic") or rng.random() < 0.3:
            pool = self.cat.system_ids.get(supplier) or self.cat.all_system_ids
            systems = sorted(set(rng.sample(pool, min(len(pool), rng.choice((1, 1, 1, 2, 3))))))
        system_name = self.cat.system_names[systems[0]] if systems else rng.choice(("weapons", "arms", "aid"))
        verb = rng.choice(VERBS[kind])
        sname, rname = self.names[supplier], self.names[recipient]
        if kind == "request":
            title = f"{rname} {verb} {system_name} from {sname}"
        elif kind == "assessment":
            title = f"{rname} {verb} {sname}-supplied {system_name}"
        else:
            title = (
                f"{sname} {verb} {system_name} to {rname}"
                if kind != "statement"
                else f"{sname} {verb} {rname}"
            )
        summary = " ".join(self._sentence(10, 28) for _ in range(rng.randint(1, 4)))
        location = rng.choice(LOCATIONS) if rng.random() < 0.4 else None
        tags = sorted(set(rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2, 3)))))
        # Sources, graded; their quotes and titles feed the full-text document.
        docs: list[str] = []
        n_sources = rng.choices(range(5), cum_weights=self.source_acc)[0]
        origins: list[int] = []
        for pos in range(n_sources):
            name, domain, grade, _ = rng.choices(self.publishers, cum_weights=self.publisher_acc)[0]
            reliability = grade if rng.random() < 0.8 else rng.choice("ABCDEF")
            credibility = rng.choice((1, 2, 2, 2, 3, 3, 4, 6)) if reliability != "F" else 6
            published = start + timedelta(days=rng.randint(0, 5))
            url = f"https://{domain}/{published:%Y/%m}/{event_id}-{pos}" if rng.random() < 0.9 else None
            quote = self._sentence(8, 40) if rng.random() < 0.8 else None
            src_title = f"{title} ({name})" if rng.random() < 0.7 else None
            pub_precision = "day" if rng.random() < 0.95 else None
            docs.append(f"{quote or ''} {src_title or ''}")
            # Some later sources relay the first one's report (no draw: earlier seeds keep their rows).
            origin = origins[0] if pos and (event_id + pos) % 4 == 0 else self.cat.origin_ids[name]
            origins.append(origin)
            out.sources.append(
                "\t".join(
                    (
                        str(event_id),
                        str(pos),
                        _copy_text(name),
                        _copy_text(url),
                        _copy_text(src_title),
                        _copy_text(published.isoformat() if pub_precision else None),
                        _copy_text(pub_precision),
                        _copy_text(quote),
                        reliability,
                        str(credibility),
                        str(origin),
                    )
                )
            )
        out.events.append(
            "\t".join(
                (
                    str(event_id),
                    _copy_text(title),
                    _copy_text(summary),
                    kind,
                    status,
                    _copy_text(stage_override),
                    start.isoformat(),
                    precision,
                    _copy_text(end.isoformat() if end else None),
                    _copy_text(end_precision),
                    _copy_text(location),
                    _pg_array(tags),
                    str(len(set(origins))),
                    _copy_text(" ".join(docs)),
                )
            )
        )
        event_line = len(out.events) - 1
        # Countries: the dyad, sometimes a second supplier, a target, an intermediary.
        codes = {(supplier, "supplier"), (recipient, "recipient")}
        if rng.random() < 0.05:
            other = rng.choices(self.dyads, cum_weights=self.dyad_acc)[0][0]
            codes.add((other, "supplier"))
        if rng.random() < 0.3 and supplier in TARGETS:
            codes.add((rng.choice(TARGETS[supplier]), "target"))
        if rng.random() < 0.05:
            codes.add((rng.choice(INTERMEDIARIES), "intermediary"))
        ordered_codes = sorted(codes, key=lambda c: (c[1] != "supplier", c[1], c[0]))
        for pos, (code, role) in enumerate(ordered_codes):
            out.countries.append(f"{event_id}\t{role}\t{code}\t{pos}")
        # Actors: speakers and operators mostly from the supplier side.
        n_actors = rng.choice((0, 1, 1, 1, 2, 2, 3))
        links: set[tuple[int, str]] = set()
        for _ in range(n_actors):
            side = supplier if rng.random() < 0.7 else recipient
            pool = self.cat.actor_ids.get(side) or self.cat.all_actor_ids
            links.add((rng.choice(pool), rng.choice(ACTOR_ROLE_BY_KIND[kind])))
        for pos, (actor_id, role) in enumerate(sorted(links)):
            out.actors.append(f"{event_id}\t{actor_id}\t{role}\t{pos}")
        for pos, system_id in enumerate(systems):
            r = rng.random()
            quantity = rng.randint(1, 200) if r < 0.4 else None
            note = (
                rng.choice(("as many as 14", "undisclosed", "several batteries", "a squadron"))
                if r > 0.85
                else None
            )
            out.systems.append(f"{event_id}\t{system_id}\t{_copy_text(quantity)}\t{_copy_text(note)}\t{pos}")
        catalogue = self.cat.words.text((c for c, _ in ordered_codes), (a for a, _ in sorted(links)), systems)
        out.events[event_line] += "\t" + _copy_text(catalogue)


def _acc(weights: list[int]) -> list[int]:
    out, total = [], 0
    for w in weights:
        total += w
        out.append(total)
    return out


EVENT_COLUMNS = (
    "id, title, summary, kind, status, stage_override, date_start, date_precision, "
    "date_end, date_end_precision, location, tags, origin_count"
)
COUNTRY_COLUMNS = "event_id, role, country_code, position"
ACTOR_COLUMNS = "event_id, actor_id, role, position"
SYSTEM_COLUMNS = "event_id, system_id, quantity, quantity_note, position"
SOURCE_COLUMNS = (
    "event_id, position, publisher, url, title, published_on, published_precision, quote, "
    "reliability, credibility, origin_id"
)
# Events go through an index-free staging table so the full-text document is computed on the way in
# (one write per row instead of an INSERT plus an UPDATE). The document is the one of
# app.queries.search_document: title (A), summary (B), source quotes and titles (C), catalogue names (D).
STAGING = (
    "CREATE TEMP TABLE synthetic_events (id bigint, title text, summary text, kind text, status text, "
    "stage_override smallint, date_start date, date_precision text, date_end date, "
    "date_end_precision text, location text, tags text[], origin_count smallint, quotes text, "
    "catalogue text) ON COMMIT DROP"
)
# Review clocks spread over the last 90 days by id (not by the seeded generator, so a seed still gives
# the same events), so the review queue and `due=1` have realistic sizes at scale.
SYNTHETIC_CLOCK = (
    "now() - ((id * 7919) % 90) * interval '1 day' - ((id * 104729) % 86400) * interval '1 second'"
)
FROM_STAGING = (
    f"INSERT INTO events ({EVENT_COLUMNS}, search_vector, review_clock_at) SELECT {EVENT_COLUMNS}, "
    f"{document_sql('title', 'summary', 'quotes', 'catalogue')}, {SYNTHETIC_CLOCK} FROM synthetic_events"
)
LINK_TABLES = ("event_countries", "event_actors", "event_systems", "sources")
# Above this many events (and at least as many as the table holds) secondary indexes are dropped and
# rebuilt after the load: a sorted bulk build is several times faster than row-by-row maintenance.
BULK_THRESHOLD = 100_000


@dataclass
class SeedResult:
    """What a seed run added and how long it took."""

    events: int
    first_id: int
    last_id: int
    seconds: float
    counts: dict[str, int]
    rebuilt_indexes: bool = False


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    done = 0
    while done < total:
        n = min(size, total - done)
        yield done, n
        done += n


def _secondary_indexes() -> list[Any]:
    """The models' declared (non-constraint) indexes on the tables the seed fills."""
    from app.models import Event, EventActor, EventCountry, EventSystem, Source

    return [
        idx
        for model in (Event, EventCountry, EventActor, EventSystem, Source)
        for idx in model.__table__.indexes  # type: ignore[attr-defined]
    ]


def _create_index_sql(index: Any) -> str:
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex

    return str(CreateIndex(index).compile(dialect=postgresql.dialect()))


def _write_batch(conn: psycopg.Connection[Any], batch: Batch, counts: dict[str, int]) -> None:
    """COPY one batch: events through the staging table (search document computed), then their links."""
    with conn.cursor() as cur:
        with cur.copy(f"COPY synthetic_events ({EVENT_COLUMNS}, quotes, catalogue) FROM STDIN") as copy:
            copy.write("\n".join(batch.events) + "\n")
        cur.execute(FROM_STAGING)
        cur.execute("TRUNCATE synthetic_events")
        counts["events"] += len(batch.events)
        for table, columns, lines in (
            ("event_countries", COUNTRY_COLUMNS, batch.countries),
            ("event_actors", ACTOR_COLUMNS, batch.actors),
            ("event_systems", SYSTEM_COLUMNS, batch.systems),
            ("sources", SOURCE_COLUMNS, batch.sources),
        ):
            if not lines:
                continue
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write("\n".join(lines) + "\n")
            counts[table] += len(lines)


def seed_synthetic(
    conninfo: str,
    n_events: int,
    seed: int = 1,
    batch_size: int = 20_000,
    progress: Any = None,
) -> SeedResult:
    """Generate n_events with their links into the database at `conninfo`, all in one transaction."""
    began = time.perf_counter()
    counts = {"events": 0, "event_countries": 0, "event_actors": 0, "event_systems": 0, "sources": 0}
    with psycopg.connect(conninfo) as conn:
        # Nobody else may take event ids while we use a reserved block.
        conn.execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cat = build_catalogue(random.Random(seed))
        _load_catalogue(conn, cat)
        row = conn.execute("SELECT coalesce(max(id), 0), count(*) FROM events").fetchone()
        first_id = int(row[0]) + 1 if row else 1
        existing = int(row[1]) if row else 0
        bulk = n_events >= BULK_THRESHOLD and n_events >= existing
        indexes = _secondary_indexes() if bulk else []
        for index in indexes:
            conn.execute(f"DROP INDEX IF EXISTS {index.name}")
        conn.execute(STAGING)
        gen = Generator(seed, cat)

        def make_batch(done: int, n: int) -> Batch:
            batch = Batch()
            for i in range(n):
                gen.event(first_id + done + i, batch)
            return batch

        # One worker thread draws the next batch while the server digests this one (the wait on the
        # socket releases the GIL); a single worker keeps the draws in order, so seeds stay reproducible.
        chunks = list(_chunks(n_events, batch_size))
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(make_batch, *chunks[0]) if chunks else None
            for k, (done, n) in enumerate(chunks):
                assert pending is not None
                batch = pending.result()
                pending = pool.submit(make_batch, *chunks[k + 1]) if k + 1 < len(chunks) else None
                _write_batch(conn, batch, counts)
                if progress is not None:
                    progress(done + n, n_events)
        for index in indexes:
            conn.execute(_create_index_sql(index))
        last_id = first_id + n_events - 1
        if n_events:
            # The ids were given explicitly: move the sequence past them.
            conn.execute("SELECT setval(pg_get_serial_sequence('events', 'id'), %s)", (last_id,))
        conn.commit()
        conn.autocommit = True
        for table in ("events", *LINK_TABLES, "actors", "systems", "origins"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return SeedResult(n_events, first_id, last_id, time.perf_counter() - began, counts, bulk)
