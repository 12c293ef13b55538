"""EXPLAIN (ANALYZE, BUFFERS) of the SQL the timeline really sends for a filter (page, count, facets, chart).

Runs the app's own query functions against DATABASE_URL, captures every statement they execute, then
explains each one with the same parameters and prints the slowest plans as Markdown.

    DATABASE_URL=postgresql://... .venv/bin/python bench/explain.py --filter 'supplier=RUS' --top 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def capture(database_url: str, query: str) -> list[tuple[str, Any, str]]:
    """Statements (SQL, parameters, label) the timeline issues for one filter."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.orm import Session

    from app.db import to_psycopg_url
    from app.filters import EventFilter
    from app.queries.aggregates.chart import chart_series
    from app.queries.aggregates.facets import facet_counts
    from app.queries.events import count_events, timeline_page

    engine = create_engine(to_psycopg_url(database_url))
    seen: list[tuple[str, Any, str]] = []
    label = [""]

    @event.listens_for(engine, "before_cursor_execute")
    def grab(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        seen.append((statement, parameters, label[0]))

    f = EventFilter.from_pairs(parse_qsl(query))
    with Session(engine) as s:
        for name, call in (
            ("page", lambda: timeline_page(s, f)),
            ("count", lambda: count_events(s, f)),
            ("facets", lambda: facet_counts(s, f)),
            ("chart", lambda: chart_series(s, f)),
        ):
            label[0] = name
            call()
    engine.dispose()
    return seen


def explain(database_url: str, statements: list[tuple[str, Any, str]]) -> list[tuple[float, str, str]]:
    """(milliseconds, label, plan text) per statement, measured by EXPLAIN ANALYZE."""
    from sqlalchemy import create_engine

    from app.db import to_psycopg_url

    engine = create_engine(to_psycopg_url(database_url))
    out = []
    with engine.connect() as conn:
        for sql, params, label in statements:
            began = time.perf_counter()
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).all()
            ms = (time.perf_counter() - began) * 1000
            out.append((ms, label, "\n".join(r[0] for r in rows)))
        conn.rollback()
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the slowest plans per filter."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--filter", action="append", help="query string, e.g. 'supplier=RUS&kind=offer'")
    p.add_argument("--top", type=int, default=2, help="plans shown per filter")
    args = p.parse_args(argv)
    if not args.database_url:
        p.error("set DATABASE_URL or pass --database-url")
    for query in args.filter or [""]:
        results = sorted(explain(args.database_url, capture(args.database_url, query)), reverse=True)
        print(f"### Filter `{query or '(none)'}`\n")
        print(" · ".join(f"{label} {ms:.0f} ms" for ms, label, _ in results) + "\n")
        for ms, label, plan in results[: args.top]:
            print(f"{label} ({ms:.0f} ms):\n\n```\n{plan}\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
