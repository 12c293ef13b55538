"""The CSV contract: the column list, formula-safe cells and their inverse, streaming writer, reader."""

from __future__ import annotations

import csv
import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic import ValidationError

from app.domain.countries import resolve_country
from app.domain.dates import format_iso
from app.domain.vocab import ACTOR_ROLES, LINK_TYPES
from app.schemas import ActorLink, CountryLink, EventInput, SystemLink


@dataclass(frozen=True)
class Column:
    """One CSV column: its header and what it holds (the README table is written from these)."""

    name: str
    meaning: str
    imported: bool = True


# The export's columns, in order. Stable: scripts and spreadsheets rely on these names.
COLUMNS: tuple[Column, ...] = (
    Column(
        "id",
        "event number (imported rows become new events; the id only names the row for other rows' links)",
        imported=False,
    ),
    Column("date", "start date at its precision: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`"),
    Column("date_end", "end of a span, same formats; empty when none"),
    Column("title", "one-line title"),
    Column("kind", "statement, offer, request, agreement, financing, transfer, deployment, …"),
    Column("status", "claimed, reported, confirmed, denied or retracted"),
    Column("stage", "support-ladder stage 0–6 (derived; ignored by import)", imported=False),
    Column("stage_override", "analyst's stage override 0–6, empty when the kind decides"),
    Column("suppliers", "supplier countries, ISO alpha-3 codes: `RUS; CHN`"),
    Column("recipients", "recipient countries"),
    Column("targets", "target countries"),
    Column("intermediaries", "intermediary countries"),
    Column("actors", "`Name (role); …` — role one of speaker, requester, financier, …"),
    Column("systems", "`Designation ×quantity [quantity note]; …` — both parts optional"),
    Column("location", "free text"),
    Column("tags", "`tag; tag`"),
    Column("summary", "free text (may hold line breaks)"),
    Column("source_publishers", "one item per source: `TASS; Reuters`"),
    Column("source_urls", "per source, aligned with source_publishers (empty items allowed)"),
    Column("source_titles", "per source"),
    Column("source_dates", "per source: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`"),
    Column("source_grades", "per source, Admiralty reliability + credibility: `B3; C2`"),
    Column("source_quotes", "per source"),
    Column("source_notes", "per source"),
    Column(
        "source_origins",
        "per source, who first reported it when the publisher relays it (`; The Times`); empty item: the "
        "publisher is the origin",
    ),
    Column("source_archive_urls", "per source: an archived copy of the page (`https://archive.ph/…`)"),
    Column("source_accessed", "per source: the day the analyst read it, `YYYY-MM-DD`"),
    Column(
        "source_files",
        "per source: its evidence files as `sha256:<hex>` joined with `,` (ignored by import: files do not "
        "travel in CSV)",
        imported=False,
    ),
    Column(
        "origins",
        "the event's independent origins, distinct (ignored by import: from the sources)",
        imported=False,
    ),
    Column("origin_count", "how many independent origins (ignored by import)", imported=False),
    Column(
        "likelihood", "ICD 203: almost no chance, very unlikely, unlikely, roughly even chance, likely, …"
    ),
    Column("likelihood_rationale", "why that likelihood"),
    Column("confidence", "analytic confidence: low, moderate or high"),
    Column("confidence_rationale", "why that confidence"),
    Column(
        "links",
        "links to other events: `denies #12; follows_up #40` (confirms, denies, retracts, fulfils, "
        "follows_up, same_as); on import `#N` is the file's row with id N, else event N of this database",
    ),
    Column("created_at", "UTC, `YYYY-MM-DDTHH:MM:SSZ` (ignored by import)", imported=False),
    Column("updated_at", "UTC (ignored by import)", imported=False),
    Column("version", "edit counter (ignored by import)", imported=False),
)
HEADER: tuple[str, ...] = tuple(c.name for c in COLUMNS)
IMPORTED: frozenset[str] = frozenset(c.name for c in COLUMNS if c.imported)
REQUIRED: tuple[str, ...] = ("title", "date", "kind")
COUNTRY_COLUMNS: dict[str, str] = {
    "suppliers": "supplier",
    "recipients": "recipient",
    "targets": "target",
    "intermediaries": "intermediary",
}
SOURCE_COLUMNS: dict[str, str] = {
    "source_publishers": "publisher",
    "source_urls": "url",
    "source_titles": "title",
    "source_dates": "published",
    "source_grades": "grade",
    "source_quotes": "quote",
    "source_notes": "note",
    "source_origins": "origin",
    "source_archive_urls": "archive_url",
    "source_accessed": "accessed",
}
# What a spreadsheet user might type as a header (after folding case, spaces, dashes to `_`).
HEADER_ALIASES: dict[str, str] = {
    **{c.name: c.name for c in COLUMNS},
    "event_id": "id",
    "start": "date",
    "start_date": "date",
    "date_start": "date",
    "when": "date",
    "end": "date_end",
    "end_date": "date_end",
    "until": "date_end",
    "headline": "title",
    "type": "kind",
    "event_type": "kind",
    "event_kind": "kind",
    "supplier": "suppliers",
    "recipient": "recipients",
    "target": "targets",
    "intermediary": "intermediaries",
    "actor": "actors",
    "system": "systems",
    "materiel": "systems",
    "weapon": "systems",
    "weapons": "systems",
    "place": "location",
    "tag": "tags",
    "description": "summary",
    "source": "source_publishers",
    "sources": "source_publishers",
    "publisher": "source_publishers",
    "publishers": "source_publishers",
    "source_publisher": "source_publishers",
    "url": "source_urls",
    "urls": "source_urls",
    "link": "source_urls",
    "source_url": "source_urls",
    "source_title": "source_titles",
    "source_date": "source_dates",
    "published": "source_dates",
    "grade": "source_grades",
    "grades": "source_grades",
    "source_grade": "source_grades",
    "quote": "source_quotes",
    "quotes": "source_quotes",
    "source_quote": "source_quotes",
    "source_note": "source_notes",
    "origin": "source_origins",
    "source_origin": "source_origins",
    "relaying": "source_origins",
    "analytic_confidence": "confidence",
    "archive_url": "source_archive_urls",
    "archive_urls": "source_archive_urls",
    "source_archive_url": "source_archive_urls",
    "archived": "source_archive_urls",
    "accessed": "source_accessed",
    "accessed_on": "source_accessed",
    "source_accessed_on": "source_accessed",
    "source_file": "source_files",
}

# ---- cells ------------------------------------------------------------------------------------------

# A spreadsheet runs a cell starting with one of these as a formula (tab/CR/LF are DDE tricks).
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n")
APOSTROPHE = "'"
ESCAPE_PREFIXES = FORMULA_TRIGGERS | {APOSTROPHE}
ITEM_SEPARATOR = "; "
# What EventInput's str_strip_whitespace trims (Unicode White_Space). Python's bare str.strip() and re's
# \s also take the separators U+001C–U+001F, which input keeps: stripping with them would change text
# on an export → import round trip.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and c not in "\x1c\x1d\x1e\x1f")
_WS = "[" + re.escape(WHITESPACE) + "]"


def neutralise(value: str) -> str:
    """Formula-safe cell: prefix an apostrophe to a formula trigger, and to a leading apostrophe too.

    Escaping the apostrophe itself is what makes `restore` an exact inverse.
    """
    if value and value[0] in ESCAPE_PREFIXES:
        return APOSTROPHE + value
    return value


def restore(value: str) -> str:
    """Exact inverse of `neutralise`: drop one leading apostrophe."""
    return value[1:] if value.startswith(APOSTROPHE) else value


def escape_item(item: str) -> str:
    """A literal `;` inside an item is written `;;` so it is not read as a separator."""
    return item.replace(";", ";;")


def join_items(items: Iterable[str]) -> str:
    """Multi-valued cell: items joined with `; `, each with its semicolons doubled."""
    return ITEM_SEPARATOR.join(escape_item(i) for i in items)


def split_items(cell: str) -> list[str]:
    """Inverse of `join_items`: a lone `;` separates, `;;` is a literal `;`; items are stripped.

    An empty cell has no items; empty items in between are kept (sources align by position).
    """
    if ";" not in cell:  # most cells hold one item or none
        item = cell.strip(WHITESPACE)
        return [item] if item else []
    if ";;" not in cell:  # the common case, at C speed (a cell with a `;` is never blank)
        return [item.strip(WHITESPACE) for item in cell.split(";")]
    items: list[str] = []
    buf: list[str] = []
    i, n = 0, len(cell)
    while i < n:
        ch = cell[i]
        if ch == ";":
            if i + 1 < n and cell[i + 1] == ";":
                buf.append(";")
                i += 2
                continue
            items.append("".join(buf).strip(WHITESPACE))
            buf = []
        else:
            buf.append(ch)
        i += 1
    items.append("".join(buf).strip(WHITESPACE))
    return items


def format_actor(name: str, role: str) -> str:
    """`Name (role)`."""
    return f"{name} ({role})"


_ACTOR = re.compile(rf"^(?P<name>.+?){_WS}*\((?P<role>[^()]*)\)$", re.DOTALL)


def parse_actor(item: str) -> tuple[str, str]:
    """`Name (role)` → (name, role); without a known role in the last brackets the role is `other`."""
    m = _ACTOR.match(item)
    if m and m["role"].strip().lower() in ACTOR_ROLES:
        return m["name"].strip(WHITESPACE), m["role"].strip().lower()
    return item.strip(WHITESPACE), "other"


def format_system(designation: str, quantity: int | None, note: str | None) -> str:
    """`Designation ×quantity [note]`, each extra part only when set."""
    text = designation
    if quantity is not None:
        text += f" ×{quantity}"
    if note:
        text += f" [{note}]"
    return text


_SYSTEM = re.compile(
    rf"^(?P<designation>.+?)(?:{_WS}+[×xX]{_WS}*(?P<quantity>[0-9]+))?(?:{_WS}+\[(?P<note>.*)\])?$", re.DOTALL
)


def parse_system(item: str) -> tuple[str, int | None, str | None]:
    """`Designation ×4 [as many as 14]` → ('Designation', 4, 'as many as 14')."""
    m = _SYSTEM.match(item.strip(WHITESPACE))
    if not m:
        return item.strip(WHITESPACE), None, None
    quantity = int(m["quantity"]) if m["quantity"] else None
    note = m["note"].strip(WHITESPACE) if m["note"] else None
    return m["designation"].strip(WHITESPACE), quantity, note or None


_GRADE = re.compile(r"^\s*([A-Fa-f])\s*([1-6])\s*$")


# ---- writing -----------------------------------------------------------------------------------------


class _LastLine:
    """The csv writer's file: keeps only the line of the latest `writerow`, which writes each row in one call.

    A third cheaper per row than a StringIO read back and emptied after every row.
    """

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line = ""

    def write(self, line: str) -> int:
        self.line = line
        return len(line)


def csv_writer(buffer: Any) -> Any:
    """RFC 4180 writer: comma, minimal double quotes, CRLF line ends."""
    return csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)


class LineFormatter:
    """Turns one row (cells in column order, text or None) into its formula-safe CSV line with CRLF."""

    def __init__(self) -> None:
        self._last = _LastLine()
        self._writer = csv_writer(self._last)

    def __call__(self, row: Sequence[str | None]) -> str:
        self._writer.writerow([neutralise(c) if c else c for c in row])
        return self._last.line


# ---- an event's line ---------------------------------------------------------------------------------

# The version of what `format_event` writes. Stored lines carry it; lines of an older version are made
# again (`signalboard db upgrade`) and, until they are, the export makes them itself. Raise it by hand
# with any change to a line's bytes, and add the new golden line to tests/golden/export_line.json
# (tests/test_csv_format.py fails when the output changes while this stays).
FORMAT_VERSION = 2  # 2: the origins, judgement, evidence and links columns


class SourceRecord(NamedTuple):
    """One source as stored, in the order its cells appear."""

    publisher: str
    url: str | None
    title: str | None
    published_on: date | None
    published_precision: str | None
    reliability: str
    credibility: int
    quote: str | None
    note: str | None
    origin: str  # the origin's catalogue name
    relayed: bool  # the publisher relays the origin (else it is the origin itself)
    archive_url: str | None = None
    accessed_on: date | None = None
    files: Sequence[str] = ()  # the SHA-256 (hex) of each evidence file, in upload order


class EventRecord(NamedTuple):
    """What an event's CSV line shows, as stored: the row's fields and its links in position order."""

    id: int
    date_start: date
    date_precision: str
    date_end: date | None
    date_end_precision: str | None
    title: str
    kind: str
    status: str
    stage: int
    stage_override: int | None
    location: str | None
    tags: Sequence[str]
    summary: str
    created_at: datetime
    updated_at: datetime
    version: int
    origin_count: int
    likelihood: str | None
    likelihood_rationale: str | None
    confidence: str | None
    confidence_rationale: str | None
    countries: Sequence[tuple[str, str]]  # (role, code)
    actors: Sequence[tuple[str, str]]  # (name, role)
    systems: Sequence[tuple[str, int | None, str | None]]  # (designation, quantity, quantity note)
    sources: Sequence[SourceRecord]
    links: Sequence[tuple[str, int]] = ()  # (type, target id) of the event's own links, oldest first


# An import's events share one created_at and updated_at (the transaction's start): formatted once.
@lru_cache(maxsize=1024)
def _utc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _items(items: Sequence[str]) -> str | None:
    """`join_items` of stored text (which never holds NUL), with one escaping pass per cell; None for none.

    A re-make formats every event: one `replace` over the joined cell instead of one per item.
    """
    if not items:
        return None
    if len(items) == 1:
        return items[0].replace(";", ";;")
    return "\0".join(items).replace(";", ";;").replace("\0", ITEM_SEPARATOR)


def _per_source(values: list[str | None]) -> str | None:
    """One item per source, empty where a source has none; no cell when no source has one."""
    if all(v is None for v in values):
        return None
    return _items([v or "" for v in values])


def event_cells(e: EventRecord) -> list[str | None]:
    """An event's cells in HEADER order (None for an empty cell), before formula-neutralising."""
    by_role: dict[str, list[str]] = {role: [] for role in COUNTRY_COLUMNS.values()}
    for role, code in e.countries:
        by_role[role].append(code)
    src = e.sources
    actors = [f"{name} ({role})" for name, role in e.actors]  # format_actor
    return [
        str(e.id),
        format_iso(e.date_start, e.date_precision),
        format_iso(e.date_end, e.date_end_precision) or None,
        e.title,
        e.kind,
        e.status,
        str(e.stage),
        None if e.stage_override is None else str(e.stage_override),
        *(_items(by_role[role]) for role in COUNTRY_COLUMNS.values()),
        _items(actors),
        _items([format_system(*system) for system in e.systems]),
        e.location,
        _items(e.tags),
        e.summary,
        _items([s.publisher for s in src]),
        _per_source([s.url for s in src]),
        _per_source([s.title for s in src]),
        _per_source([format_iso(s.published_on, s.published_precision) or None for s in src]),
        _items([f"{s.reliability}{s.credibility}" for s in src]),
        _per_source([s.quote for s in src]),
        _per_source([s.note for s in src]),
        _per_source([s.origin if s.relayed else None for s in src]),
        _per_source([s.archive_url for s in src]),
        _per_source([s.accessed_on.isoformat() if s.accessed_on else None for s in src]),
        _per_source([",".join(f"sha256:{h}" for h in s.files) or None for s in src]),
        _items(list(dict.fromkeys(s.origin for s in src))),
        str(e.origin_count),
        e.likelihood,
        e.likelihood_rationale,
        e.confidence,
        e.confidence_rationale,
        _items([f"{link_type} #{target}" for link_type, target in e.links]),
        _utc(e.created_at),
        _utc(e.updated_at),
        str(e.version),
    ]


def format_events(events: Iterable[EventRecord]) -> list[str]:
    """Each event's finished CSV line (formula-safe, CRLF): THE formatter of the export."""
    line = LineFormatter()
    return [line(event_cells(e)) for e in events]


def header_line(*, bom: bool = False) -> str:
    """The header line, after a byte order mark for the Excel variant."""
    return ("\ufeff" if bom else "") + LineFormatter()(HEADER)


def write_lines(batches: Iterable[list[bytes]], *, bom: bool = False) -> Iterator[bytes]:
    """The header, then batches of finished UTF-8 lines, as chunks: one chunk per batch.

    Only one batch is ever held, and the first bytes leave before the query ends.
    """
    yield header_line(bom=bom).encode()
    for lines in batches:
        if lines:
            yield b"".join(lines)


def write_rows(rows: Iterable[Sequence[str | None]], *, bom: bool = False) -> Iterator[bytes]:
    """Encode the header then rows (already in column order, as text or None) as UTF-8 CSV chunks."""
    line = LineFormatter()
    batch: list[str] = []
    yield header_line(bom=bom).encode()
    for row in rows:
        batch.append(line(row))
        if len(batch) >= 500:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()


# ---- reading -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """A problem with one row (line 0 = the file itself): where, which column, and why."""

    line: int
    column: str
    message: str


@dataclass
class ParsedRow:
    """A valid row: its first line in the file and the validated event input."""

    line: int
    data: EventInput
    countries_by_name: list[tuple[str, str]] = field(default_factory=list)
    file_id: int | None = None  # the row's `id` cell: what other rows' links call it
    links: tuple[tuple[str, int], ...] = ()  # (type, id) items of its links cell


@dataclass
class ParsedFile:
    """The outcome of reading an upload: valid rows, per-row errors, ignored columns."""

    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    total_rows: int = 0

    @property
    def ok(self) -> bool:
        """True when every row is valid and there is at least one."""
        return not self.errors and bool(self.rows)

    def file_error(self, message: str) -> ParsedFile:
        """Record a problem with the file as a whole."""
        self.errors.append(RowError(0, "", message))
        return self


def normalise_header(name: str) -> str:
    """`Source URL` / `source-url` / ` SOURCE_URL ` → `source_url`."""
    return re.sub(r"[\s_\-]+", "_", name.strip().lower()).strip("_")


def decode_upload(raw: bytes, max_bytes: int) -> tuple[str | None, str | None]:
    """(text, None) for a usable upload, or (None, a sentence saying what is wrong)."""
    if len(raw) > max_bytes:
        return None, f"The file is larger than the limit of {max_bytes // (1024 * 1024)} MiB."
    if not raw.strip(b"\xef\xbb\xbf \t\r\n"):
        return None, "The file is empty."
    if b"\x00" in raw[:65536]:
        return None, "This is not a CSV file (it holds binary data). Save the sheet as “CSV UTF-8”."
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, (
            f"The file is not UTF-8 text (first bad byte on line {line}). "
            "Save it as “CSV UTF-8 (comma delimited)”."
        )
    return text, None


def read_csv(text: str) -> ParsedFile:
    """Read CSV text in the export format (or with friendly headers) and validate every row."""
    out = ParsedFile()
    for rows in iter_csv(text, out):
        out.rows.extend(rows)
    return out


_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")


def text_lines(text: str) -> Iterator[str]:
    """The lines of `text` with their ends, split exactly as `io.StringIO(text, newline="")` splits them.

    At `\r\n`, `\r` or `\n` only; StringIO would first copy the whole text at 4 bytes a character
    (350 MB for an 87 MB file).
    """
    return itertools.chain.from_iterable(_line_chunks(text))


# str.splitlines also ends a line at these, which StringIO (and so the CSV reader's contract) does not.
_OTHER_BREAKS = ("\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_CHUNK = 1 << 20
_group = operator.methodcaller("group")


def _line_chunks(text: str) -> Iterator[Iterable[str]]:
    """The lines of `text`, about a megabyte at a time, each chunk cut just after a `\n`.

    A chunk without any of the other breaks is split by str.splitlines at C speed (one list per
    chunk, so memory stays flat); a chunk with one goes line by line through `_LINE`.
    """
    pos, size = 0, len(text)
    while pos < size:
        cut = text.find("\n", pos + _CHUNK) + 1 or size
        chunk = text[pos:cut]
        if any(c in chunk for c in _OTHER_BREAKS):
            yield map(_group, _LINE.finditer(chunk))
        else:
            yield chunk.splitlines(True)
        pos = cut


def iter_csv(text: str, out: ParsedFile, batch_size: int = 5000) -> Iterator[list[ParsedRow]]:
    """Validate the rows of CSV text batch by batch: yield the valid rows, record the rest in `out`.

    Errors, ignored columns and the row count go to `out` (not its `rows`), so a caller can write
    each batch while the next is read and hold only one batch of validated rows at a time.
    """
    reader = csv.reader(text_lines(text), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        out.file_error(f"This is not a readable CSV file: {exc}.")
        return
    if header is None or not any(h.strip() for h in header):
        out.file_error("The file has no header row.")
        return
    columns: dict[str, int] = {}
    shown: dict[str, str] = {}
    for index, raw_name in enumerate(header):
        name = normalise_header(restore(raw_name))
        canonical = HEADER_ALIASES.get(name)
        if canonical is None:
            if raw_name.strip():
                out.ignored_columns.append(raw_name.strip())
            continue
        if canonical in columns:
            out.file_error(
                f"The columns “{shown[canonical]}” and “{raw_name.strip()}” both mean {canonical}; keep one."
            )
            return
        columns[canonical] = index
        shown[canonical] = raw_name.strip()
    if not columns:
        out.file_error(
            "No known column in the header row. Is this a CSV file in the export format? "
            "The first line must name columns such as title, date, kind."
        )
        return
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        out.file_error(f"Missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}.")
        return
    line = reader.line_num + 1
    batch: list[ParsedRow] = []
    # Only the columns an import reads are restored (stage, timestamps and version are ignored; the id only
    # names the row for other rows' links).
    wanted = [(c, i) for c, i in columns.items() if c in IMPORTED or c == "id"]
    names = [c for c, _ in wanted]
    # A full-width row's cells are taken at C speed; only a row with an escaped cell (one starting with an
    # apostrophe, seen after a NUL separator; a false alarm just takes the slow way) is restored cell by cell.
    pick = operator.itemgetter(*(i for _, i in wanted))
    need = max(i for _, i in wanted) + 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            # The same test as "some cell is not blank", without a generator per row.
            if not (record and record[0].strip()) and not "".join(record).strip():
                continue
            out.total_rows += 1
            width = len(record)
            if width >= need:
                values = pick(record)
                joined = "\0".join(values)
                if joined.startswith(APOSTROPHE) or "\0'" in joined:
                    values = [restore(v) for v in values]
                cells = dict(zip(names, values, strict=True))
            else:
                cells = {c: restore(record[i]) if i < width else "" for c, i in wanted}
            row, errors = _read_row(start, cells, shown)
            if errors:
                out.errors.extend(errors)
            elif row is not None:
                batch.append(row)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
    except csv.Error as exc:
        out.errors.append(RowError(line, "", f"the CSV is malformed here ({exc}); check the quotes"))
    if batch:
        yield batch
    if not out.total_rows and not out.errors:
        out.file_error("The file has a header row but no events.")


def _read_row(
    line: int, cells: dict[str, str], shown: dict[str, str]
) -> tuple[ParsedRow | None, list[RowError]]:
    """Turn one row's cells into EventInput, or row errors naming the user's own column headers."""
    errors: list[RowError] = []

    def err(column: str, message: str) -> None:
        errors.append(RowError(line, shown.get(column, column), message))

    get = cells.get
    # An optional field left out validates exactly as one given as None (its validators map None to None),
    # and costs pydantic nothing; so empty optional values are left out rather than sent as None.
    data: dict[str, Any] = {
        "title": get("title", ""),
        "summary": get("summary", "").strip(WHITESPACE),
        "kind": get("kind", "").strip(WHITESPACE).lower(),
        "date": get("date", "").strip(WHITESPACE),
    }
    cell = get("tags")
    data["tags"] = [t for t in split_items(cell) if t] if cell else []
    date_end = get("date_end", "").strip(WHITESPACE)
    if date_end:
        data["date_end"] = date_end
    location = get("location", "").strip(WHITESPACE)
    if location:
        data["location"] = location
    status = get("status", "").strip(WHITESPACE)
    if status:
        data["status"] = status.lower()
    for name in ("likelihood", "confidence"):
        value = get(name, "").strip(WHITESPACE)
        if value:
            data[name] = value
    for name in ("likelihood_rationale", "confidence_rationale"):
        value = get(name, "").strip(WHITESPACE)
        if value:
            data[name] = value
    stage = get("stage_override", "").strip(WHITESPACE)
    if stage:
        if stage.isdecimal():
            data["stage_override"] = int(stage)
        else:
            err("stage_override", "the stage override is a number from 0 to 6")
    countries: list[tuple[str, str]] = []
    country_columns: list[str] = []
    by_name: list[tuple[str, str]] = []
    for column, role in COUNTRY_COLUMNS.items():
        cell = get(column)
        if not cell:
            continue
        for item in split_items(cell):
            if not item:
                continue
            countries.append((item, role))
            country_columns.append(column)
            code = resolve_country(item)
            if code is not None and code != item:
                by_name.append((item, code))
    data["countries"] = _links(countries, _country_link, _country_input)
    cell = get("actors")
    data["actors"] = _links(_actor_items(cell), _actor_link, _actor_input) if cell else []
    cell = get("systems")
    data["systems"] = _links(_system_items(cell), _system_link, _system_input) if cell else []
    data["sources"] = _read_sources(cells, err)
    # The id only names the row for other rows' links (`#N`): one that is not a number names nothing.
    file_id = get("id", "").strip(WHITESPACE)
    if not (file_id.isdecimal() and len(file_id) <= 12):
        file_id = ""
    cell = get("links")
    links = _link_items(cell, err) if cell else ()
    if errors:
        return None, errors
    try:
        parsed = EventInput.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors():
            column, prefix = _error_column(tuple(e.get("loc", ())), country_columns)
            err(column, prefix + row_error_message(e))
        return None, errors
    return ParsedRow(line, parsed, by_name, int(file_id) if file_id else None, links), []


_LINK_ITEM = re.compile(r"^([a-z][a-z _]*?)\s*#\s*(\d{1,12})$")


def _link_items(cell: str, err: Any) -> tuple[tuple[str, int], ...]:
    """(type, id) of each item of a links cell (`denies #12`; `follows up #40` reads as follows_up)."""
    found: list[tuple[str, int]] = []
    for item in split_items(cell):
        if not item.strip():
            continue
        match = _LINK_ITEM.match(item.strip().lower())
        link_type = "_".join(match.group(1).split()) if match else ""
        if match is None or link_type not in LINK_TYPES:
            types = ", ".join(LINK_TYPES)
            err("links", f"“{item.strip()[:40]}” is not a link: write `<type> #<id>`, type one of {types}")
            continue
        link = (link_type, int(match.group(2)))
        if link not in found:
            found.append(link)
    return tuple(found)


# The same names, actors and systems recur on row after row of a bulk file: each distinct item is parsed
# once (pure functions of the text; resolve_country caches its own answers), and so is each of the most
# recent actors and systems cells (those recur too, but a big file has many distinct ones: their caches
# are kept small).
_parse_actor = lru_cache(maxsize=65536)(parse_actor)
_parse_system = lru_cache(maxsize=65536)(parse_system)


@lru_cache(maxsize=4096)
def _actor_items(cell: str) -> tuple[tuple[str, str], ...]:
    """The (name, role) of each non-empty item of an actors cell."""
    return tuple(_parse_actor(i) for i in split_items(cell) if i)


@lru_cache(maxsize=4096)
def _system_items(cell: str) -> tuple[tuple[str, int | None, str | None], ...]:
    """The (designation, quantity, note) of each non-empty item of a systems cell."""
    return tuple(_parse_system(i) for i in split_items(cell) if i)


def _country_input(code: str, role: str) -> dict[str, Any]:
    """A country item as CountryLink input."""
    return {"code": code, "role": role}


def _actor_input(name: str, role: str) -> dict[str, Any]:
    """An actors item as ActorLink input."""
    return {"name": name, "role": role}


def _system_input(designation: str, quantity: int | None, note: str | None) -> dict[str, Any]:
    """A systems item as SystemLink input, leaving out the parts it does not have."""
    system: dict[str, Any] = {"designation": designation}
    if quantity is not None:
        system["quantity"] = quantity
    if note is not None:
        system["quantity_note"] = note
    return system


# A bulk file names the same countries, actors and systems in the same roles on row after row: each
# distinct item is validated once, and the rows share the model (EventInput takes a model instance as it
# is; nothing changes one after validation), which cuts pydantic's share of a large file by about a quarter.
def _validated(model: type[Any], fields: dict[str, Any]) -> Any:
    """The model for `fields`, or None when they are invalid (the row then reports why, field by field)."""
    try:
        return model.model_validate(fields)
    except ValidationError:
        return None


@lru_cache(maxsize=4096)
def _country_link(code: str, role: str) -> CountryLink | None:
    return _validated(CountryLink, _country_input(code, role))


@lru_cache(maxsize=65536)
def _actor_link(name: str, role: str) -> ActorLink | None:
    return _validated(ActorLink, _actor_input(name, role))


@lru_cache(maxsize=65536)
def _system_link(designation: str, quantity: int | None, note: str | None) -> SystemLink | None:
    return _validated(SystemLink, _system_input(designation, quantity, note))


def _links(
    items: Iterable[tuple[Any, ...]], cached: Callable[..., Any], fields: Callable[..., dict[str, Any]]
) -> list[Any]:
    """Each item as its shared, validated model; all as plain input when one is invalid (for its errors)."""
    items = list(items)
    links = [cached(*item) for item in items]
    if any(link is None for link in links):
        return [fields(*item) for item in items]
    return links


@lru_cache(maxsize=1024)
def _parse_grade(grade: str) -> tuple[str, int] | None:
    """`b3` → ('B', 3); None when the text is not a grade."""
    m = _GRADE.match(grade)
    return (m[1].upper(), int(m[2])) if m else None


# The source columns after source_publishers, in the order their errors are reported.
_ALIGNED_SOURCE_COLUMNS: tuple[str, ...] = tuple(
    name for name in SOURCE_COLUMNS if name != "source_publishers"
)


def _read_sources(cells: dict[str, str], err: Any) -> list[dict[str, Any]]:
    """Sources from the aligned source_* columns (item i of each column belongs to source i)."""
    get = cells.get
    cell = get("source_publishers")
    publishers = split_items(cell) if cell else []
    count = len(publishers)
    blank = [""] * count  # only read: a column without items has an empty item for every source
    aligned: list[list[str]] = []
    for name in _ALIGNED_SOURCE_COLUMNS:
        cell = get(name)
        if not cell:
            aligned.append(blank)
            continue
        items = split_items(cell)
        if len(items) != count:
            if items and count == 0:
                err(
                    name,
                    f"{name} is filled in but source_publishers is empty; every source needs a publisher",
                )
            elif items:
                err(
                    name,
                    f"{name} has {len(items)} item{'s' if len(items) != 1 else ''} but there "
                    f"{'is' if count == 1 else 'are'} {count} source{'s' if count != 1 else ''}; "
                    "separate items with “; ” (leave an item empty, not out)",
                )
            # A missing item is empty (and a row with a miscounted column is refused anyway).
            items = (items + blank)[:count]
        aligned.append(items)
    if not count:
        return []
    column = dict(zip(_ALIGNED_SOURCE_COLUMNS, aligned, strict=True))  # by name: immune to reordering
    urls, titles, dates = column["source_urls"], column["source_titles"], column["source_dates"]
    grades, quotes, notes = column["source_grades"], column["source_quotes"], column["source_notes"]
    origins = column["source_origins"]
    archives, accessed = column["source_archive_urls"], column["source_accessed"]
    sources: list[dict[str, Any]] = []
    # An empty item is left out: the field's default None is what an empty item means.
    for i, publisher in enumerate(publishers):
        source: dict[str, Any] = {"publisher": publisher}
        if urls[i]:
            source["url"] = urls[i]
        if titles[i]:
            source["title"] = titles[i]
        if dates[i]:
            source["published"] = dates[i]
        if quotes[i]:
            source["quote"] = quotes[i]
        if notes[i]:
            source["note"] = notes[i]
        if origins[i]:
            source["origin"] = origins[i]
        if archives[i]:
            source["archive_url"] = archives[i]
        if accessed[i]:
            source["accessed"] = accessed[i]
        grade = grades[i]
        if grade:
            parsed = _parse_grade(grade)
            if parsed is not None:
                source["reliability"], source["credibility"] = parsed
            else:
                err(
                    "source_grades",
                    f"source {i + 1}: “{grade}” is not a grade; write a letter A–F and a digit 1–6, e.g. B3",
                )
        sources.append(source)
    return sources


_SOURCE_FIELD_COLUMN = {
    "publisher": "source_publishers",
    "url": "source_urls",
    "title": "source_titles",
    "published": "source_dates",
    "quote": "source_quotes",
    "note": "source_notes",
    "origin": "source_origins",
    "archive_url": "source_archive_urls",
    "accessed": "source_accessed",
    "reliability": "source_grades",
    "credibility": "source_grades",
}


def _shown(value: Any) -> str:
    """A cell's value quoted for a message, cut short when long."""
    text = str(value)
    return f"“{text[:60]}…”" if len(text) > 60 else f"“{text}”"


def row_error_message(e: Mapping[str, Any]) -> str:
    """A validation error in words for whoever fixes the spreadsheet: the value at fault and the rule.

    Pydantic's stock texts ("String should have at least 1 character", "Input should be 'statement',
    'offer' or …") name neither; the project's own rules already speak plainly and pass through.
    """
    kind, ctx, value, loc = e.get("type"), e.get("ctx") or {}, e.get("input"), tuple(e.get("loc", ()))
    if loc[:1] == ("countries",) and loc[-1:] == ("code",) and str(value or "").strip():
        # A one-letter country fails the length rule before the lookup would say what is wrong.
        return f"unknown country {_shown(value)}; use an ISO 3166-1 code such as RUS"
    if kind == "string_too_short":
        if str(value or "").strip():
            return f"{_shown(value)} is too short: at least {ctx.get('min_length')} characters"
        return "empty, but a value is needed here"
    if kind == "string_too_long":
        return f"too long: at most {ctx.get('max_length')} characters, this has {len(str(value))}"
    if kind == "literal_error":
        allowed = str(ctx.get("expected", "")).replace("'", "")
        return f"{_shown(value)} is not one of: {allowed}"
    if kind in ("int_parsing", "int_from_float"):
        return f"{_shown(value)} is not a whole number"
    if kind == "greater_than_equal":
        return f"{value} is below the lowest allowed value, {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"{value} is above the highest allowed value, {ctx.get('le')}"
    return str(e.get("msg", "")).removeprefix("Value error, ")


def _error_column(loc: tuple[Any, ...], country_columns: list[str]) -> tuple[str, str]:
    """Which CSV column an EventInput error belongs to, and a prefix naming the item."""
    if not loc:
        return "", ""
    head = loc[0]
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    if head == "countries" and index is not None and index < len(country_columns):
        return country_columns[index], ""
    if head == "sources" and index is not None:
        field_name = loc[2] if len(loc) > 2 else "publisher"
        return _SOURCE_FIELD_COLUMN.get(str(field_name), "source_publishers"), f"source {index + 1}: "
    if head in ("actors", "systems", "tags") and index is not None:
        return str(head), f"item {index + 1}: "
    return str(head), ""
