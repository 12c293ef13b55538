"""Download responses: attachment names (RFC 6266) and the headers that keep a file from being rendered."""

from __future__ import annotations

from urllib.parse import quote

# A downloaded file may run nothing, load nothing and be framed nowhere, even if a browser opened it.
DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"


def content_disposition(filename: str) -> str:
    """An attachment header with an ASCII fallback name and the exact UTF-8 name (RFC 6266)."""
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "-" for ch in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download_headers(filename: str, size: int | None = None) -> dict[str, str]:
    """Headers for a file sent as a download only: attachment, no sniffing, no rendering, not cached."""
    headers = {
        "Content-Disposition": content_disposition(filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": DOWNLOAD_CSP,
        "Cache-Control": "no-store",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if size is not None:
        headers["Content-Length"] = str(size)
    return headers
