"""Bot API text + entities -> safe HTML for the web chat page.

The page never shows the bot's raw HTML: it shows what a Telegram client would draw from ``text`` and
``entities``. Everything is escaped; only a whitelist of entity types becomes tags, links only for
http/https/tg URLs. Offsets and lengths are UTF-16 code units, as in the Bot API.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlsplit

_TAGS: dict[str, tuple[str, str]] = {
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "code": ("<code>", "</code>"),
    "pre": ("<pre>", "</pre>"),
    "spoiler": ('<span class="spoiler">', "</span>"),
    "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ("<blockquote>", "</blockquote>"),
}
SAFE_SCHEMES = frozenset({"http", "https", "tg"})


def safe_url(url: Any) -> str | None:
    """The URL when its scheme is http, https or tg (and it has no control characters); otherwise None."""
    if not isinstance(url, str) or not url or any(ord(ch) < 32 or ch.isspace() for ch in url):
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in SAFE_SCHEMES else None


def _link_open(url: str) -> str:
    return f'<a href="{escape(url, quote=True)}" rel="noopener noreferrer" target="_blank">'


def _tags(entity: dict[str, Any]) -> tuple[str, str] | None:
    kind = entity.get("type")
    if kind == "text_link":
        url = safe_url(entity.get("url"))
        return (_link_open(url), "</a>") if url else None
    return _TAGS.get(str(kind))


def escape_text(text: str) -> str:
    """Plain text as HTML: everything escaped, newlines as <br>."""
    return escape(text, quote=True).replace("\r\n", "\n").replace("\n", "<br>")


def render_plain(text: str | None) -> str:
    """A user's own message: escaped plain text (their bot_command entities draw nothing special)."""
    return escape_text(text or "")


def render_entities(text: str | None, entities: list[dict[str, Any]] | None) -> str:
    """``text`` with its ``entities`` as HTML; unknown entity types and unsafe links are left as plain text.

    Overlapping (not nested) entities are closed and reopened around each other, so the HTML always nests.
    """
    if not text:
        return ""
    units = text.encode("utf-16-le")
    size = len(units) // 2
    spans: list[tuple[int, int, int, tuple[str, str]]] = []
    for order, entity in enumerate(entities or []):
        if not isinstance(entity, dict):
            continue
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int) or length <= 0 or offset < 0:
            continue
        end = min(offset + length, size)
        tags = _tags(entity)
        if tags is None or offset >= end:
            continue
        spans.append((offset, end, order, tags))
    # Outer entities first: earlier start, then the longer one, then the order given.
    spans.sort(key=lambda span: (span[0], -span[1], span[2]))
    points = sorted({0, size, *(s[0] for s in spans), *(s[1] for s in spans)})

    def chunk(start: int, stop: int) -> str:
        return escape_text(units[start * 2 : stop * 2].decode("utf-16-le", errors="replace"))

    out: list[str] = []
    stack: list[tuple[int, int, int, tuple[str, str]]] = []
    pending = list(spans)
    for index, point in enumerate(points):
        # Close what ends here; an inner entity still open is closed and reopened after.
        if any(span[1] == point for span in stack):
            reopen = []
            while stack:
                span = stack.pop()
                out.append(span[3][1])
                if span[1] != point:
                    reopen.append(span)
            for span in reversed(reopen):
                out.append(span[3][0])
                stack.append(span)
        while pending and pending[0][0] == point:
            span = pending.pop(0)
            out.append(span[3][0])
            stack.append(span)
        if index + 1 < len(points):
            out.append(chunk(point, points[index + 1]))
    while stack:
        out.append(stack.pop()[3][1])
    return "".join(out)
