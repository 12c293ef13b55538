"""Streamed bodies that fail after their headers went out: cut the stream, log one line, no traceback."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

from app.db import one_line

log = logging.getLogger(__name__)


class StreamCut(Exception):
    """A streamed body stopped by a failure after its headers were sent (already logged).

    No error response can follow headers, and ending the body normally would pass a truncated file off
    as complete: SecurityHeadersMiddleware returns without finishing the response, so the server closes
    the connection and the client sees an incomplete transfer.
    """


def guarded(chunks: Iterator[bytes], what: str, prime: int = 2) -> Iterator[bytes]:
    """Pull the first `prime` chunks now, so a failure before any data is an error response (a 503 when
    the database is down); a later failure cuts the stream with one log line."""
    head = list(itertools.islice(chunks, prime))
    return _cut_on_failure(itertools.chain(head, chunks), what)


def _cut_on_failure(chunks: Iterator[bytes], what: str) -> Iterator[bytes]:
    sent = 0
    try:
        for chunk in chunks:
            yield chunk
            sent += len(chunk)
    except Exception as exc:
        log.warning("%s cut after %d bytes: %s", what, sent, one_line(exc))
        raise StreamCut() from None
