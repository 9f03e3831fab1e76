"""Telegram-compatible ``parse_mode=HTML`` parser.

This is a faithful Python port of the algorithm tdlib (the library behind the
Bot API server) uses, including its error messages, so that a bot which passes
here does not fail in production with ``can't parse entities``.  One deliberate
difference, switchable with ``strict_ampersand``: Telegram silently keeps a bare
``&`` that does not start an entity, the emulator rejects it by default because
such text almost always comes from unescaped user input, which will later
break on a ``<``.

Offsets and lengths of the produced entities are in UTF-16 code units, as in
the Bot API.  Error offsets are UTF-8 byte offsets in the raw text, as Telegram
reports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)

# tdlib treats NUL as whitespace; we use it as the end-of-text sentinel, like its C strings.
_SPACES = frozenset(" \t\r\n\v\f\0")
_SPECIAL = re.compile(r"[<&]")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SIMPLE_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}


class EntityParseError(Exception):
    """The text cannot be parsed; ``str(exc)`` is the part after ``can't parse entities: ``."""


@dataclass(slots=True)
class ParsedText:
    """Result of parsing: the plain text the user sees and its Bot API entities."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _OpenTag:
    name: str
    argument: str
    utf16_offset: int
    expandable: bool


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (the unit of Bot API entity offsets)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    # Only computed on the error path, so the O(n) encode is fine.
    return len(text[:index].encode("utf-8"))


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode an HTML entity starting at ``text[pos] == '&'``.

    Returns the character and the index after the entity, or None when it is
    not an entity Telegram understands.  Like tdlib, the trailing ``;`` is
    optional.
    """
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        value = 0
        digits = 0
        if end < n and text[end] == "x":
            end += 1
            while end < n and text[end] in "0123456789abcdefABCDEF":
                value = value * 16 + int(text[end], 16)
                end += 1
                digits += 1
                if value >= 0x10FFFF:
                    return None
        else:
            while end < n and text[end].isdigit() and text[end].isascii():
                value = value * 10 + int(text[end])
                end += 1
                digits += 1
                if value >= 0x10FFFF:
                    return None
        if value == 0 or digits == 0 or end - pos >= 10 or 0xD800 <= value <= 0xDFFF:
            return None
        char = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if named is None:
            return None
        char = named
    if end < n and text[end] == ";":
        end += 1
    return char, end


def _is_name_token_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char in ".-")


def parse_html(
    html: str, *, strict_ampersand: bool = True, users: dict[int, dict[str, Any]] | None = None
) -> ParsedText:
    """Parse Telegram HTML into plain text and entities.

    :param html: the raw text as the bot sent it.
    :param strict_ampersand: reject a bare ``&`` (see module docstring).
    :param users: known users by id, to fill ``text_mention`` entities for
        ``<a href="tg://user?id=N">``.
    :raises EntityParseError: with Telegram's wording.
    """
    n = len(html)

    def at(index: int) -> str:
        return html[index] if index < n else "\0"

    out: list[str] = []
    utf16 = 0
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    # Plain text start (in ``out`` chunks) per open tag is not needed: the inner
    # text of <a> without href is rebuilt from the utf16 offsets at close time.
    i = 0
    while i < n:
        char = html[i]
        if char == "&":
            decoded = _decode_entity(html, i)
            if decoded is not None:
                value, i = decoded
                out.append(value)
                utf16 += utf16_len(value)
                continue
            if strict_ampersand:
                raise EntityParseError(
                    f'Character "&" at byte offset {_byte_offset(html, i)} must be escaped as "&amp;"'
                )
            out.append("&")
            utf16 += 1
            i += 1
            continue
        if char != "<":
            match = _SPECIAL.search(html, i)
            end = match.start() if match else n
            chunk = html[i:end]
            out.append(chunk)
            utf16 += utf16_len(chunk)
            i = end
            continue

        begin = i
        i += 1
        if at(i) != "/":
            i = _parse_start_tag(html, at, begin, i, stack, utf16)
        else:
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(html, begin)}")
            i += 1
            name_begin = i
            while at(i) not in _SPACES and at(i) != ">":
                i += 1
            end_name = html[name_begin:i].lower()
            while at(i) in _SPACES and i < n:
                i += 1
            if at(i) != ">":
                raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(html, begin)}")
            tag = stack.pop()
            if end_name and end_name != tag.name:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(html, begin)}, "
                    f'expected "</{tag.name}>", found "</{end_name}>"'
                )
            length = utf16 - tag.utf16_offset
            if length > 0:
                _close_entity(tag, length, entities, out, users)
        i += 1  # skip the closing '>'

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    for entity in entities:
        entity.pop("_language", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText("".join(out), entities)


def _parse_start_tag(
    html: str,
    at: Any,
    begin: int,
    i: int,
    stack: list[_OpenTag],
    utf16: int,
) -> int:
    """Parse ``<tag attr=...>`` starting after ``<``; push it and return the index of ``>``."""
    name_begin = i
    while at(i) not in _SPACES and at(i) != ">":
        i += 1
    if at(i) == "\0":
        raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(html, begin)}")
    name = html[name_begin:i].lower()
    if name not in SUPPORTED_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {_byte_offset(html, begin)}')

    argument = ""
    expandable = False
    while at(i) != ">":
        while at(i) != "\0" and at(i) in _SPACES:
            i += 1
        if at(i) == ">":
            break
        attr_begin = i
        while at(i) not in _SPACES and at(i) not in "=>":
            i += 1
        attr_name = html[attr_begin:i].lower()
        if not attr_name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{name}" at byte offset {_byte_offset(html, begin)}'
            )
        while at(i) != "\0" and at(i) in _SPACES:
            i += 1
        if at(i) != "=":
            if name == "blockquote" and attr_name == "expandable":
                expandable = True
                continue
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{name}" '
                f"at byte offset {_byte_offset(html, begin)}"
            )
        i += 1
        while at(i) != "\0" and at(i) in _SPACES:
            i += 1
        if at(i) == "\0":
            raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {_byte_offset(html, begin)}')

        if at(i) not in "'\"":
            # An unquoted "name token": letters, digits, periods and hyphens only.
            token_begin = i
            while _is_name_token_char(at(i)):
                i += 1
            value = html[token_begin:i].lower()
            if at(i) not in _SPACES and at(i) != ">":
                raise EntityParseError(f"Unexpected end of name token at byte offset {_byte_offset(html, token_begin)}")
        else:
            quote = at(i)
            i += 1
            chars: list[str] = []
            while at(i) != quote and at(i) != "\0":
                if at(i) == "&":
                    decoded = _decode_entity(html, i)
                    if decoded is not None:
                        chars.append(decoded[0])
                        i = decoded[1]
                        continue
                chars.append(at(i))
                i += 1
            if at(i) == quote:
                i += 1
            value = "".join(chars)
        if at(i) == "\0":
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(html, begin)}")

        if name == "a" and attr_name == "href":
            argument = value
        elif name == "code" and attr_name == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif name == "span" and attr_name == "class" and value.startswith("tg-"):
            argument = value[len("tg-") :]
        elif name == "tg-emoji" and attr_name == "emoji-id":
            argument = value
        elif name == "blockquote" and attr_name == "expandable":
            expandable = True

    if name == "span" and argument != "spoiler":
        raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(html, begin)}')
    stack.append(_OpenTag(name, argument, utf16, expandable))
    return i


def _inner_text(out: list[str], utf16_offset: int) -> str:
    """Rebuild the plain text from ``utf16_offset`` to the end (only for ``<a>`` without href)."""
    full = "".join(out)
    encoded = full.encode("utf-16-le")
    return encoded[utf16_offset * 2 :].decode("utf-16-le", errors="replace")


def _close_entity(
    tag: _OpenTag,
    length: int,
    entities: list[dict[str, Any]],
    out: list[str],
    users: dict[int, dict[str, Any]] | None,
) -> None:
    """Append the Bot API entity for a closed tag spanning ``length`` UTF-16 units."""
    offset = tag.utf16_offset
    simple = _SIMPLE_ENTITY_TYPES.get(tag.name)
    if simple is not None:
        entities.append({"type": simple, "offset": offset, "length": length})
    elif tag.name == "tg-emoji":
        if not tag.argument.isdigit():
            raise EntityParseError("Invalid custom emoji identifier specified")
        entities.append({"type": "custom_emoji", "offset": offset, "length": length, "custom_emoji_id": tag.argument})
    elif tag.name == "a":
        url = tag.argument or _inner_text(out, offset)
        if url.startswith("tg://user?id="):
            raw_id = url[len("tg://user?id=") :]
            if raw_id.isdigit():
                user_id = int(raw_id)
                user = (users or {}).get(user_id) or {"id": user_id, "is_bot": False, "first_name": ""}
                entities.append({"type": "text_mention", "offset": offset, "length": length, "user": user})
        elif url and not any(c in _SPACES for c in url):
            # Telegram drops the entity (not the text) for an invalid URL.
            entities.append({"type": "text_link", "offset": offset, "length": length, "url": url})
    elif tag.name == "code":
        entity: dict[str, Any] = {"type": "code", "offset": offset, "length": length}
        if tag.argument:
            entity["_language"] = tag.argument
        entities.append(entity)
    elif tag.name == "pre":
        last = entities[-1] if entities else None
        if last is not None and last["type"] == "code" and last["offset"] == offset and last["length"] == length:
            # <pre><code class="language-x">...</code></pre> is one pre entity with a language.
            language = last.pop("_language", None)
            last["type"] = "pre"
            if language:
                last["language"] = language
        else:
            entities.append({"type": "pre", "offset": offset, "length": length})
    elif tag.name == "blockquote":
        kind = "expandable_blockquote" if tag.expandable else "blockquote"
        entities.append({"type": kind, "offset": offset, "length": length})


def strip_text(text: str, entities: list[dict[str, Any]]) -> ParsedText:
    """Trim surrounding whitespace like Telegram does, shifting and clipping entities."""
    stripped = text.strip()
    if stripped == text:
        return ParsedText(text, entities)
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    kept: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return ParsedText(stripped, kept)
