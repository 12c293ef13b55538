"""`python -m app.cli`: the same as the `signalboard` console script."""

from app.cli import main

raise SystemExit(main())
