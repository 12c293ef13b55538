"""Notes in Markdown made safe to show: rendered without raw HTML, then cleaned by an allow-list."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

# CommonMark with raw HTML off: `<script>` typed in a note stays text. Images are off too, so a note
# cannot make every reader's browser fetch a remote address (a tracking pixel).
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).disable("image")
TAGS = {
    "p", "br", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
# Anything else (javascript:, data:, vbscript:) loses its href, whatever markdown-it let through.
URL_SCHEMES = {"http", "https", "mailto"}


def note_html(body: str) -> str:
    """A note's Markdown as HTML holding only allowed tags, attributes and link schemes."""
    rendered = _MARKDOWN.render(body)
    # The allow-list is the last word, so a future markdown-it option or plugin cannot open a hole.
    return nh3.clean(
        rendered,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
