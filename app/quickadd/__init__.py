"""Quick add: from a pasted report to a pre-filled draft of the new-event form (see extract.py)."""

from __future__ import annotations

from datetime import date


def warm_up() -> None:
    """Load dateparser's language data now, so the first quick add does not wait a second for it."""
    from app.quickadd.dates import find_dates, languages_for
    from app.quickadd.tokens import sentences

    sample = "In October, on 14 November and last week. В октябре, 14 ноября. El 3 de noviembre."
    assert languages_for(sample)
    find_dates(sample, sentences(sample), date(2000, 1, 1))
