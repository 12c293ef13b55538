"""`signalboard seed-synthetic --events N [--seed S]`: load synthetic events for scale tests."""

from __future__ import annotations

import argparse
import sys


def cmd_seed_synthetic(args: argparse.Namespace) -> int:
    """Upgrade the schema, COPY N synthetic events (with links and sources), then make their export lines."""
    import time

    from sqlalchemy.engine import make_url

    from app import migrate
    from app.db import database_url, get_engine
    from app.queries.export_lines import remake
    from app.synthetic import seed_synthetic

    if args.events < 0:
        print("error: --events must be zero or more", file=sys.stderr)
        return 2
    migrate.upgrade()
    url = make_url(database_url()).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\r  {done:,} / {total:,} events", end="", file=sys.stderr, flush=True)

    result = seed_synthetic(conninfo, args.events, seed=args.seed, batch_size=args.batch, progress=progress)
    if not args.quiet:
        print(file=sys.stderr)
    links = ", ".join(f"{v:,} {k}" for k, v in result.counts.items() if k != "events")
    print(
        f"seeded {result.events:,} synthetic events (ids {result.first_id}-{result.last_id}; {links}) "
        f"in {result.seconds:.1f} s",
        file=sys.stderr,
    )
    if not args.no_lines:
        began = time.monotonic()
        made = remake(get_engine())
        print(f"made {made:,} export lines in {time.monotonic() - began:.1f} s", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the seed-synthetic verb."""
    p = sub.add_parser("seed-synthetic", help="load N synthetic events (scale tests, benchmarks)")
    p.add_argument("--events", type=int, required=True, help="how many events to add")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same data")
    p.add_argument("--batch", type=int, default=20_000, help="events per COPY batch")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument(
        "--no-lines",
        action="store_true",
        help="leave the export's stored lines to the app (made at its start)",
    )
    p.set_defaults(func=cmd_seed_synthetic)
