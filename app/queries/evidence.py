"""Reading evidence files' bytes in pieces, so a download streams without holding the whole file."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

CHUNK = 1024 * 1024
# source_files.data is stored uncompressed out of line (migration 0014), so substring reads only the
# TOAST chunks it needs.
_PIECE = text("SELECT substring(data FROM :start FOR :n) FROM source_files WHERE id = :id")


def file_chunks(session: Session, file_id: int, size: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """The file's bytes, `chunk` at a time (1-based substring offsets)."""
    for offset in range(0, size, chunk):
        piece = session.execute(_PIECE, {"start": offset + 1, "n": chunk, "id": file_id}).scalar_one()
        yield bytes(piece)
