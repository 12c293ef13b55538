"""What kinds of file a source may keep as evidence, each recognised by its content (magic bytes).

puremagic (pure Python, maintained, its signature table ships with the wheel: it needs neither libmagic
nor a network) names binary formats; saved pages are text, recognised by rules of our own because text
has no magic number. A file is kept only when its content is what its name says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import puremagic


class EvidenceRejected(ValueError):
    """An uploaded file that cannot be kept; the message says why, in words for the analyst."""


@dataclass(frozen=True)
class FileKind:
    """One accepted kind of file: its label, content type, and whether it is text."""

    label: str
    content_type: str
    text: bool = False


PDF = FileKind("a PDF", "application/pdf")
PNG = FileKind("a PNG image", "image/png")
JPEG = FileKind("a JPEG image", "image/jpeg")
GIF = FileKind("a GIF image", "image/gif")
WEBP = FileKind("a WebP image", "image/webp")
TIFF = FileKind("a TIFF image", "image/tiff")
HTML = FileKind("a saved web page (HTML)", "text/html", text=True)
MHTML = FileKind("a saved web page (MHTML)", "multipart/related", text=True)
TEXT = FileKind("a text file", "text/plain", text=True)

BY_EXTENSION: dict[str, FileKind] = {
    ".pdf": PDF,
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".gif": GIF,
    ".webp": WEBP,
    ".tif": TIFF,
    ".tiff": TIFF,
    ".html": HTML,
    ".htm": HTML,
    ".mhtml": MHTML,
    ".mht": MHTML,
    ".txt": TEXT,
}
ACCEPT = ",".join(BY_EXTENSION)  # the file input's accept attribute
ACCEPTED_WORDS = "PDF, PNG, JPEG, GIF, WebP, TIFF, or a saved page (.html, .mhtml, .txt)"
_BINARY = {k.content_type: k for k in (PDF, PNG, JPEG, GIF, WEBP, TIFF)}
_HTML_MARK = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)
_MHTML_MARK = re.compile(rb"^mime-version:\s*1\.0", re.IGNORECASE | re.MULTILINE)
_HEAD = 64 * 1024  # how far the text rules look


def extension(filename: str) -> str:
    """The lower-case extension with its dot ('.pdf'), or '' when the name has none."""
    base = filename.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base.strip(".") else ""


def _binary_kind(data: bytes) -> FileKind | None:
    """The accepted binary format the content is, by its signature; None when it is none of them."""
    try:
        matches = puremagic.magic_string(data)
    except puremagic.PureError:
        return None
    for match in matches:
        kind = _BINARY.get(match.mime_type)
        if kind is not None:
            return kind
    return None


def _is_text(head: bytes) -> bool:
    """Text has no NUL byte and decodes (UTF-8, or a one-byte code page: any byte then decodes)."""
    return b"\0" not in head


def content_kind(data: bytes) -> FileKind | None:
    """What the content is, judged from its bytes alone; None when it is no accepted kind."""
    binary = _binary_kind(data)
    if binary is not None:
        return binary
    head = data[:_HEAD]
    if not _is_text(head):
        return None
    if _MHTML_MARK.search(head[:4096]) and b"multipart/related" in head[:4096].lower():
        return MHTML
    if _HTML_MARK.search(head):
        return HTML
    return TEXT


def identify(filename: str, data: bytes, limit: int) -> FileKind:
    """The file's kind when its content matches its name and size rules; else EvidenceRejected."""
    if not data:
        raise EvidenceRejected(f"“{filename}” is empty (0 bytes): choose the file again, or another one.")
    if len(data) > limit:
        raise EvidenceRejected(
            f"“{filename}” is {mebibytes(len(data))}; each file can be at most {mebibytes(limit)}."
        )
    expected = BY_EXTENSION.get(extension(filename))
    if expected is None:
        raise EvidenceRejected(f"“{filename}” is not a kind of file kept as evidence: use {ACCEPTED_WORDS}.")
    found = content_kind(data)
    if found == expected:
        return expected
    # A saved page's text may be plain (a .html whose markup is cut off is still a page the analyst saved).
    if expected.text and found is not None and found.text and expected != MHTML:
        return HTML if HTML in (found, expected) else expected  # markup is served as a download, never text
    what = found.label if found is not None else "no kind of file kept as evidence"
    raise EvidenceRejected(
        f"“{filename}” is named as {expected.label} but its content is {what}: "
        "choose the right file, or give it the right extension."
    )


def mebibytes(size: int) -> str:
    """A size as people read it: '20 MiB', '1.5 MiB', '312 KiB', '12 bytes'."""
    if size >= 1024 * 1024:
        value = size / (1024 * 1024)
        return f"{value:.0f} MiB" if value == int(value) else f"{value:.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size} byte{'s' if size != 1 else ''}"


def served_type(kind_type: str) -> str:
    """The Content-Type a download is sent with: pages never as HTML (a browser must not render them)."""
    if kind_type in (HTML.content_type, MHTML.content_type):
        return "application/octet-stream"
    if kind_type == TEXT.content_type:
        return "text/plain; charset=utf-8"
    return kind_type
