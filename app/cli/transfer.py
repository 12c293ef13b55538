"""`signalboard export` and `signalboard import`: the web export's bytes and the web import's checks."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from app.filters import EXPORT_EXTRA, PARAMS, InvalidFilter, pairs_of, strict_filter, wants_bom

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.csvio import ParsedFile, ParsedRow
    from app.queries.transfer.imports import BatchPayload, ImportResult, References


# Rows validated, built and loaded at a time by `signalboard import` (memory holds about three batches).
BATCH_ROWS = 5000


def cmd_export(args: argparse.Namespace) -> int:
    """Write the filtered events as CSV to standard output (the same bytes as /export.csv)."""
    from app.csvio import write_lines
    from app.db import replica_session_factory
    from app.queries.transfer.export import export_batches

    pairs: list[tuple[str, str]] = []
    for query in args.query:
        pairs.extend(parse_qsl(query.lstrip("?"), keep_blank_values=True))
    for param, attr in PARAMS.items():
        pairs.extend((param, v) for v in getattr(args, f"filter_{attr}") or [])
    out = sys.stdout.buffer
    try:
        with replica_session_factory()() as session:
            try:
                f = strict_filter(session, pairs_of(pairs), EXPORT_EXTRA)
                bom = args.bom or wants_bom(pairs_of(pairs))
            except InvalidFilter as exc:
                # The same refusal as /export.csv and the API give, one line per bad value.
                for e in exc.errors:
                    print(f"error: {e.param}: {e.text()}", file=sys.stderr)
                return 2
            for chunk in write_lines(export_batches(session, f), bom=bom):
                out.write(chunk)
        out.flush()
    except BrokenPipeError:
        # The reader stopped early (`signalboard export | head`): its choice, not a failure. Standard output
        # goes to /dev/null so the interpreter's own flush at exit does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Check a CSV file and, unless --dry-run, add every row as an event in one transaction."""
    from app.config import get_settings
    from app.csvio import ParsedFile, decode_upload, read_csv
    from app.db import session_factory
    from app.queries.transfer.imports import ReferenceGone

    path = Path(args.file)
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    # The command line is trusted with bigger files than the web form (bulk loads); --max-mib sets the cap.
    limit = max(get_settings().max_upload_bytes, args.max_mib * 1024 * 1024)
    text, problem = decode_upload(raw, limit)
    if text is None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    del raw
    factory = session_factory()
    with factory() as session, factory() as helper, gc_paused():
        if args.dry_run:
            parsed = read_csv(text)
            if not parsed.ok:
                return _report_errors(parsed, args.file)
            _note_ignored(parsed)
            return _dry_run(session, parsed)
        parsed = ParsedFile()
        try:
            reason = f"CSV import {path.name} (command line)"
            results = _load(session, helper, text, parsed, uuid.uuid4(), reason)
            if parsed.errors or not parsed.total_rows:
                session.rollback()
                return _report_errors(parsed, args.file)
            session.commit()
        except ReferenceGone as exc:
            session.rollback()
            print(f"error: {exc}; nothing was imported, run the import again", file=sys.stderr)
            return 1
        except Exception:
            session.rollback()
            raise
    _note_ignored(parsed)
    imported = sum(len(r.event_ids) for r in results)
    new_actors = sum(len(r.new_actors) for r in results)
    new_systems = sum(len(r.new_systems) for r in results)
    new_origins = sum(len(r.new_origins) for r in results)
    print(
        f"imported {imported} event(s); new actors: {new_actors}, new systems: {new_systems}, "
        f"new origins: {new_origins}",
        file=sys.stderr,
    )
    return 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during a bulk import (re-enabled after).

    The validated rows are hundreds of thousands of small objects without cycles (reference counting
    frees them once written); the collector scanning them over and over cost ~10 s of CPU at 100,000 rows.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(
    session: Session, helper: Session, text: str, parsed: ParsedFile, token: uuid.UUID, reason: str
) -> list[ImportResult]:
    """Validate, build and write the rows batch by batch in the session's transaction (not committed).

    Three threads overlap: this one validates batch k+1 and builds batch k into COPY text; a helper
    connection computes batch k-1's search documents (`event_rows`); the import's connection resolves
    names and loads batch k-2 (waiting on PostgreSQL releases the GIL). After the first bad row nothing
    more is written and queued work is cancelled; every row is still checked and reported.
    """
    from app.csvio import iter_csv
    from app.queries.transfer.import_links import FileLinks, LinksRefused
    from app.queries.transfer.imports import (
        ImportResult,
        build_batch,
        event_rows,
        merge_pending,
        prepare_batch,
    )

    results: list[ImportResult] = []
    futures: list[Future[Any]] = []
    links = FileLinks()
    with ThreadPoolExecutor(max_workers=1) as db, ThreadPoolExecutor(max_workers=1) as search:
        # A built batch is queued for loading one round later, when its search documents are nearly
        # always ready. Queued at once, its load would hold the import's connection waiting for them, and
        # the next name lookup (which this thread waits for before building) would wait behind it: the
        # three threads then took turns instead of overlapping.
        unwritten: list[tuple[BatchPayload, Future[bytes]]] = []

        def write_unwritten() -> None:
            for payload, events in unwritten:
                futures.append(db.submit(_write, session, payload, events))
            unwritten.clear()

        def hand_over(rows: list[ParsedRow], refs: Future[References]) -> None:
            payload = build_batch(rows, refs.result(), None, token, reason)
            links.add(rows, payload.event_ids)
            results.append(
                ImportResult(payload.event_ids, payload.new_actors, payload.new_systems, payload.new_origins)
            )
            events = search.submit(event_rows, helper, payload)
            futures.append(events)
            unwritten.append((payload, events))
            futures[:] = _running(futures)

        try:
            ready: tuple[list[ParsedRow], Future[References]] | None = None
            for rows in iter_csv(text, parsed, BATCH_ROWS):
                if parsed.errors:
                    for f in futures:
                        f.cancel()
                    continue
                refs = db.submit(prepare_batch, session, rows)
                futures.append(refs)
                write_unwritten()
                if ready is not None:
                    hand_over(*ready)
                ready = (rows, refs)
            if parsed.errors:
                wait(futures)  # what already runs ends (its failure no longer matters): the caller rolls back
                return []
            if ready is not None:
                hand_over(*ready)
                write_unwritten()
                futures.append(db.submit(merge_pending, session))
            for f in futures:
                f.result()  # the first failure of a worker is raised here
            try:
                links.write(session, None)  # every row is loaded: a link may name a later row
            except LinksRefused as exc:
                parsed.errors.extend(exc.errors)
                return []
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return results


def _running(futures: list[Future[Any]]) -> list[Future[Any]]:
    """The futures not done yet: finished work lets go of its rows, and a worker's failure is raised now."""
    running = []
    for f in futures:
        if f.done():
            f.result()
        else:
            running.append(f)
    return running


def _write(session: Session, payload: BatchPayload, events: Future[bytes]) -> None:
    """Load a batch once its event rows (with search documents) are ready."""
    from app.queries.transfer.imports import write_batch

    write_batch(session, payload, merge=False, events=events.result())


def _note_ignored(parsed: ParsedFile) -> None:
    if parsed.ignored_columns:
        print(f"note: ignored columns: {', '.join(parsed.ignored_columns)}", file=sys.stderr)


def _report_errors(parsed: ParsedFile, file: str) -> int:
    """Print the first 200 problems and say nothing was imported; the exit status 1."""
    for e in parsed.errors[:200]:
        where = f"line {e.line}" if e.line else file
        column = f" [{e.column}]" if e.column else ""
        print(f"error: {where}{column}: {e.message}", file=sys.stderr)
    if len(parsed.errors) > 200:
        print(f"… and {len(parsed.errors) - 200} more errors", file=sys.stderr)
    print(f"nothing imported: {len(parsed.errors)} problem(s)", file=sys.stderr)
    return 1


def _dry_run(session: Session, parsed: ParsedFile) -> int:
    """Print what importing would do, writing nothing."""
    from app.queries.transfer.import_links import FileLinks, LinksRefused
    from app.queries.transfer.imports import plan_import

    links = FileLinks()
    links.add(parsed.rows, [None] * len(parsed.rows))
    try:
        outside = links.check(session)
    except LinksRefused as exc:
        parsed.errors.extend(exc.errors)
        return _report_errors(parsed, "the file")
    plan = plan_import(session, parsed)
    print(f"{plan.events} event(s) would be imported", file=sys.stderr)
    if outside:
        shown = "; ".join(f"#{i} {title}" for i, title in list(outside.items())[:50])
        print(f"links to events already in this database: {shown}", file=sys.stderr)
    for label, names in (
        ("actors", plan.new_actors),
        ("systems", plan.new_systems),
        ("origins", plan.new_origins),
    ):
        if names:
            print(f"new {label} ({len(names)}): {', '.join(names[:50])}", file=sys.stderr)
    if plan.duplicates_checked < plan.duplicates_checkable:
        print(
            f"compared the first {plan.duplicates_checked} rows with existing events (time limit)",
            file=sys.stderr,
        )
    for flag in plan.duplicates[:50]:
        like = (
            f"line {flag.same_as_line}"
            if flag.same_as_line
            else ", ".join(f"#{m.event.id} {m.event.title}" for m in flag.matches)
        )
        print(f"possible duplicate: line {flag.line} “{flag.title}” looks like {like}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `export` and `import` verbs."""
    p = sub.add_parser(
        "export",
        help="write events as CSV to standard output",
        description="Filters as on the timeline: --country RUS --kind statement, or a query string "
        "such as 'supplier=RUS&kind=offer'. Repeat an option for OR. A bad or unknown value (or parameter) "
        "writes nothing: its reason goes to standard error and the exit status is 2.",
    )
    p.add_argument("query", nargs="*", help="optional query string(s), e.g. 'supplier=RUS&from=2025-10'")
    p.add_argument("--bom", action="store_true", help="start with a UTF-8 BOM (Excel)")
    for param, attr in PARAMS.items():
        p.add_argument(
            f"--{param.replace('_', '-')}", dest=f"filter_{attr}", action="append", metavar="VALUE"
        )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="add the events of a CSV file (all rows or none)")
    p.add_argument("file", help="CSV file in the export format, or - for standard input")
    p.add_argument("--dry-run", action="store_true", help="check and preview only; write nothing")
    p.add_argument("--max-mib", type=int, default=1024, help="largest file accepted, in MiB (default 1024)")
    p.set_defaults(func=cmd_import)
