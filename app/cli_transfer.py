"""`signalboard export` and `signalboard import`: the web export's bytes and the web import's checks."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qsl

from app.filters import PARAMS, EventFilter


def cmd_export(args: argparse.Namespace) -> int:
    """Write the filtered events as CSV to standard output (the same bytes as /export.csv)."""
    from app.csvio import write_rows
    from app.db import replica_session_factory
    from app.queries.export import export_rows

    pairs: list[tuple[str, str]] = []
    for query in args.query:
        pairs.extend(parse_qsl(query.lstrip("?"), keep_blank_values=False))
    bom = args.bom or any(k == "bom" and v.lower() in ("1", "true", "yes", "on") for k, v in pairs)
    for param, attr in PARAMS.items():
        pairs.extend((param, v) for v in getattr(args, f"filter_{attr}") or [])
    f = EventFilter.from_pairs(pairs)
    if f.errors:
        for e in f.errors:
            print(f"error: {e.param}: {e.message}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    with replica_session_factory()() as session:
        for chunk in write_rows(export_rows(session, f), bom=bom):
            out.write(chunk)
    out.flush()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Check a CSV file and, unless --dry-run, add every row as an event in one transaction."""
    from app.config import get_settings
    from app.csvio import decode_upload, read_csv
    from app.db import session_factory
    from app.queries.imports import commit_import, plan_import

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
    parsed = read_csv(text)
    if not parsed.ok:
        for e in parsed.errors[:200]:
            where = f"line {e.line}" if e.line else args.file
            column = f" [{e.column}]" if e.column else ""
            print(f"error: {where}{column}: {e.message}", file=sys.stderr)
        if len(parsed.errors) > 200:
            print(f"… and {len(parsed.errors) - 200} more errors", file=sys.stderr)
        print(f"nothing imported: {len(parsed.errors)} problem(s)", file=sys.stderr)
        return 1
    if parsed.ignored_columns:
        print(f"note: ignored columns: {', '.join(parsed.ignored_columns)}", file=sys.stderr)
    with session_factory()() as session:
        if args.dry_run:
            plan = plan_import(session, parsed)
            print(f"{plan.events} event(s) would be imported", file=sys.stderr)
            for label, names in (("actors", plan.new_actors), ("systems", plan.new_systems)):
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
                print(
                    f"possible duplicate: line {flag.line} “{flag.title}” looks like {like}", file=sys.stderr
                )
            return 0
        try:
            result = commit_import(
                session, parsed.rows, None, uuid.uuid4(), reason=f"CSV import {path.name} (command line)"
            )
            session.commit()
        except Exception:
            session.rollback()
            raise
    print(
        f"imported {len(result.event_ids)} event(s); new actors: {len(result.new_actors)}, "
        f"new systems: {len(result.new_systems)}",
        file=sys.stderr,
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `export` and `import` verbs."""
    p = sub.add_parser(
        "export",
        help="write events as CSV to standard output",
        description="Filters as on the timeline: --country RUS --kind statement, or a query string "
        "such as 'supplier=RUS&kind=offer'. Repeat an option for OR.",
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
