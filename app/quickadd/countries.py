"""How reports name countries: pycountry's names and codes plus a curated table of demonyms and capitals.

pycountry knows official and common names and the ISO codes, but no demonyms ("Russian"), capitals
("Moscow" for the Russian government), press short forms ("U.S.", "the Kremlin") or names in other
languages, which is how reports most often name a country; the small table below adds them for the
countries that appear in support reporting. Every form is folded as the text's words are, so a
Cyrillic or Persian form is compared in Latin letters exactly as the text is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pycountry

from app.countries import COMMON_NAMES
from app.quickadd.tokens import form_words, word_key

# code -> forms: demonyms (singular; an English plural "s" is accepted too), capitals and the seats of
# government used as metonyms, press short forms, and the usual Russian, Spanish, Persian and Arabic forms.
CURATED: dict[str, tuple[str, ...]] = {
    "RUS": (
        "Russia",
        "Russian",
        "Moscow",
        "Kremlin",
        "Rusia",
        "ruso",
        "rusa",
        "Moscú",
        "Россия",
        "Москва",
        "Кремль",
        "روسیه",
        "روسيا",
        "مسکو",
        "موسكو",
    ),
    "USA": (
        "US",
        "U.S.",
        "U.S.A.",
        "United States",
        "American",
        "Washington",
        "Pentagon",
        "White House",
        "Estados Unidos",
        "EE.UU.",
        "estadounidense",
        "США",
        "Вашингтон",
        "آمریکا",
        "أمريكا",
        "واشنطن",
    ),
    "IRN": (
        "Iran",
        "Iranian",
        "Tehran",
        "Teheran",
        "Islamic Republic",
        "Irán",
        "iraní",
        "Teherán",
        "Иран",
        "Тегеран",
        "ایران",
        "إيران",
        "تهران",
        "طهران",
    ),
    "PRK": (
        "North Korea",
        "North Korean",
        "Pyongyang",
        "DPRK",
        "Corea del Norte",
        "norcoreano",
        "КНДР",
        "Северная Корея",
        "Пхеньян",
        "کره شمالی",
        "كوريا الشمالية",
    ),
    "KOR": ("South Korea", "South Korean", "Seoul", "ROK", "Corea del Sur", "Сеул", "Южная Корея"),
    "CHN": (
        "China",
        "Chinese",
        "Beijing",
        "Peking",
        "PRC",
        "chino",
        "china",
        "Pekín",
        "Китай",
        "Пекин",
        "چین",
        "الصين",
        "北京",
        "中国",
    ),
    "VEN": (
        "Venezuela",
        "Venezuelan",
        "Caracas",
        "venezolano",
        "venezolana",
        "Венесуэла",
        "Каракас",
        "ونزوئلا",
        "فنزويلا",
        "كاراكاس",
    ),
    "CUB": ("Cuba", "Cuban", "Havana", "La Habana", "cubano", "Куба", "Гавана", "کوبا", "كوبا"),
    "NIC": ("Nicaragua", "Nicaraguan", "Managua", "nicaragüense", "Никарагуа"),
    "BLR": ("Belarus", "Belarusian", "Minsk", "Bielorrusia", "Беларусь", "Белоруссия", "Минск"),
    "SYR": ("Syria", "Syrian", "Damascus", "Siria", "sirio", "Сирия", "Дамаск", "سوریه", "سوريا", "دمشق"),
    "UKR": (
        "Ukraine",
        "Ukrainian",
        "Kyiv",
        "Kiev",
        "Ucrania",
        "ucraniano",
        "Украина",
        "Киев",
        "Київ",
        "Україна",
        "اوکراین",
        "أوكرانيا",
    ),
    "ISR": ("Israel", "Israeli", "Jerusalem", "Tel Aviv", "israelí", "Израиль", "اسرائیل", "إسرائيل"),
    "TUR": ("Turkey", "Türkiye", "Turkish", "Ankara", "Turquía", "turco", "Турция", "Анкара"),
    "IND": ("India", "Indian", "New Delhi", "Индия", "Нью-Дели"),
    "PAK": ("Pakistan", "Pakistani", "Islamabad", "Пакистан"),
    "GBR": ("Britain", "British", "UK", "U.K.", "London", "Reino Unido", "Великобритания", "Лондон"),
    "FRA": ("France", "French", "Paris", "Francia", "Франция"),
    "DEU": ("Germany", "German", "Berlin", "Alemania", "Германия"),
    "IRQ": ("Iraq", "Iraqi", "Baghdad", "Ирак", "عراق", "العراق"),
    "LBN": ("Lebanon", "Lebanese", "Beirut", "Ливан", "لبنان"),
    "YEM": ("Yemen", "Yemeni", "Sanaa", "Йемен", "یمن", "اليمن"),
    "SAU": ("Saudi Arabia", "Saudi", "Riyadh", "Саудовская Аравия"),
    "ARE": ("UAE", "United Arab Emirates", "Emirati", "Abu Dhabi", "ОАЭ"),
    "EGY": ("Egypt", "Egyptian", "Cairo", "Египет"),
    "DZA": ("Algeria", "Algerian", "Algiers", "Алжир"),
    "LBY": ("Libya", "Libyan", "Tripoli", "Ливия"),
    "SDN": ("Sudan", "Sudanese", "Khartoum", "Судан"),
    "MLI": ("Mali", "Malian", "Bamako", "Мали"),
    "BFA": ("Burkina Faso", "Burkinabe", "Ouagadougou"),
    "NER": ("Niger", "Nigerien", "Niamey"),
    "CAF": ("Central African Republic", "CAR", "Bangui"),
    "MMR": ("Myanmar", "Burma", "Burmese", "Naypyidaw", "Мьянма"),
    "BOL": ("Bolivia", "Bolivian", "La Paz", "boliviano", "Боливия"),
    "COL": ("Colombia", "Colombian", "Bogotá", "colombiano", "Колумбия"),
    "BRA": ("Brazil", "Brazilian", "Brasília", "Brasil", "Бразилия"),
    "MEX": ("Mexico", "Mexican", "México", "mexicano", "Мексика"),
    "ARM": ("Armenia", "Armenian", "Yerevan", "Армения", "Ереван"),
    "AZE": ("Azerbaijan", "Azerbaijani", "Baku", "Азербайджан", "Баку"),
    "KAZ": ("Kazakhstan", "Kazakh", "Astana", "Казахстан"),
    "SRB": ("Serbia", "Serbian", "Belgrade", "Сербия", "Белград"),
    "VNM": ("Vietnam", "Vietnamese", "Hanoi", "Вьетнам"),
    "AFG": ("Afghanistan", "Afghan", "Kabul", "Афганистан"),
    "ERI": ("Eritrea", "Eritrean", "Asmara"),
    "ETH": ("Ethiopia", "Ethiopian", "Addis Ababa"),
    "JPN": ("Japan", "Japanese", "Tokyo", "Япония"),
    "POL": ("Poland", "Polish", "Warsaw", "Польша"),
}

# Stems that take case or gender endings (Russian declension, Spanish plurals): a word that begins with
# one and has at most STEM_SLACK more letters names the country ("Венесуэле", "России", "rusos").
STEMS: dict[str, tuple[str, ...]] = {
    "RUS": ("Росси", "Российск", "Москв", "Кремл", "rusos", "rusas"),
    "IRN": ("Иран", "Тегеран", "иранск", "iraníes"),
    "VEN": ("Венесуэл", "venezolan"),
    "CHN": ("Кита", "Пекин", "chinos"),
    "PRK": ("Пхеньян", "северокорейск"),
    "USA": ("Вашингтон", "американск", "estadounidenses"),
    "UKR": ("Украин", "Киев", "украинск"),
    "BLR": ("Белорус", "Беларус"),
    "SYR": ("Сири", "сирийск"),
    "CUB": ("Куб", "кубинск", "cubanos"),
    "NIC": ("Никарагу",),
}
STEM_SLACK = 4

# ISO alpha-3 codes that are also English words: written in capitals in a headline they mean the word.
_CODE_WORDS = frozenset({"AND", "ARE", "ARM", "BEN", "CAN", "GAB", "PER", "TON", "CUB", "MAR", "NOR", "FIN"})
# Forms matched only where the text writes them in capitals: "US" and "CAR" are words in lower case.
_CAPITALS_ONLY = frozenset({"UK", "CAR", "ROK", "PRC", "UAE", "DPRK"})


@dataclass(frozen=True)
class CountryForms:
    """Folded country forms: word tuples (exact), stems, and the forms that count only in capitals."""

    exact: dict[tuple[str, ...], str]
    capitals: dict[tuple[str, ...], str]
    stems: dict[str, str]
    longest: int


@cache
def country_forms() -> CountryForms:
    """Every form of every country, folded once per process."""
    exact: dict[tuple[str, ...], str] = {}
    capitals: dict[tuple[str, ...], str] = {}

    def add(form: str, code: str) -> None:
        words = form_words(form)
        if words:
            exact.setdefault(words, code)

    for c in pycountry.countries:
        code = str(c.alpha_3)
        for attr in ("name", "common_name", "official_name"):
            value = getattr(c, attr, None)
            if value:
                add(value, code)
                # "Korea, Democratic People's Republic of" is also written without the inversion.
                if ", " in value:
                    head, _, tail = value.partition(", ")
                    add(f"{tail} {head}", code)
        if code not in _CODE_WORDS:
            capitals[(code.lower(),)] = code
    for code, name in COMMON_NAMES.items():
        add(name, code)
    for code, forms in CURATED.items():
        for form in forms:
            words = form_words(form)
            if form.replace(".", "") in _CAPITALS_ONLY:
                capitals[words] = code
            elif form.replace(".", "").isupper() and form.isascii() and len(form.replace(".", "")) <= 3:
                capitals[words] = code  # "US", "U.S.": the word "us" is not a country
            else:
                exact[words] = code
    stems = {word_key(stem): code for code, forms in STEMS.items() for stem in forms}
    longest = max(len(k) for k in (*exact, *capitals))
    return CountryForms(exact, capitals, stems, longest)
