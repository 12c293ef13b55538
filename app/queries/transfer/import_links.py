"""The `links` column on import: which event each `#N` names, checked before anything is written.

`#N` is the row of the same file whose `id` cell is N (so an export imported anywhere, even into the
database it came from, links its new events to each other as the originals were), else event N of this
database, which must exist and not be deleted. Anything else is a row error: a link is never guessed.
Links are added after every row is loaded (a row may name a later one), in the import's transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.csvio import ParsedRow, RowError
from app.models import Event, EventLink
from app.queries.transfer.export_lines import store_lines
from app.services.audit import Who, record
from app.services.links import MAX_ID, link_label


class LinksRefused(Exception):
    """A link of the file names no usable event (a row error for each)."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(f"line {e.line}: {e.message}" for e in errors))
        self.errors = errors


@dataclass
class FileLinks:
    """What the rows say about links: each row's file id and links, gathered batch by batch."""

    ids: Counter[int] = field(default_factory=Counter)  # file id -> rows carrying it
    new_ids: dict[int, int] = field(default_factory=dict)  # file id -> the new event's id
    pending: list[tuple[int, int, int | None, tuple[tuple[str, int], ...]]] = field(default_factory=list)

    def add(self, rows: Iterable[ParsedRow], event_ids: Iterable[int | None]) -> None:
        """Note a batch: rows with the new event ids (None before they are known, e.g. at preview)."""
        for row, event_id in zip(rows, event_ids, strict=True):
            if row.file_id is not None:
                self.ids[row.file_id] += 1
                if event_id is not None:
                    self.new_ids[row.file_id] = event_id
            if row.links:
                self.pending.append((row.line, event_id or 0, row.file_id, row.links))

    def check(self, session: Session, every_id: Counter[int] | None = None) -> dict[int, str]:
        """Raise LinksRefused for links naming nothing usable; else the outside events linked (id -> title).

        `every_id` holds the file ids of every row of the file, imported or not (rows left out as likely
        duplicates): a link to one of those is refused, never sent to an unrelated event of that number.
        """
        every_id = every_id if every_id is not None else self.ids
        outside = {n for _, _, _, links in self.pending for _, n in links if n not in every_id}
        askable = sorted(n for n in outside if n <= MAX_ID)  # a larger number names no event
        stmt = select(Event.id, Event.title, Event.deleted_at.is_not(None)).where(Event.id.in_(askable))
        found = {i: (title, deleted) for i, title, deleted in session.execute(stmt)}
        errors: list[RowError] = []
        for line, _, own, links in self.pending:
            for link_type, n in links:
                item = f"{link_type} #{n}"
                if own is not None and n == own:
                    errors.append(RowError(line, "links", f"“{item}”: a row cannot link to itself"))
                elif n in every_id and every_id[n] > 1:
                    errors.append(RowError(line, "links", f"“{item}”: {every_id[n]} rows have id {n}"))
                elif n in every_id and n not in self.ids:
                    errors.append(
                        RowError(line, "links", f"“{item}”: the row with id {n} is left out of this import")
                    )
                elif n not in every_id and n not in found:
                    message = (
                        f"“{item}”: #{n} is neither a row of this file (its id column) nor an event here"
                    )
                    errors.append(RowError(line, "links", message))
                elif n not in every_id and found[n][1]:
                    errors.append(RowError(line, "links", f"“{item}”: event #{n} was deleted"))
        if errors:
            raise LinksRefused(errors)
        return {i: found[i][0] for i in sorted(outside)}

    def write(self, session: Session, who: Who | None, every_id: Counter[int] | None = None) -> int:
        """Check, then add every link and its history rows; re-make the sources' export lines."""
        self.check(session, every_id)
        made = [
            (source, self.new_ids.get(n, n), link_type)
            for _, source, _, links in self.pending
            for link_type, n in links
        ]
        if not made:
            return 0
        by = who.id if who else None
        session.execute(
            insert(EventLink),
            [{"source_id": s, "target_id": t, "type": k, "created_by": by} for s, t, k in made],
        )
        for source, target, link_type in made:
            label, back = link_label(link_type, target), link_label(link_type, source, incoming=True)
            record(session, who, "link", "event", source, {"links": {"before": None, "after": label}})
            record(session, who, "link", "event", target, {"links": {"before": None, "after": back}})
        store_lines(session, [source for source, _, _ in made])
        return len(made)
