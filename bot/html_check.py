"""Validating the HTML an author types for a broadcast before it is stored, so that Telegram never rejects it at
sending time ("can't parse entities"): the tags Telegram supports, properly nested and closed, their attributes, and
the entities it decodes. A problem is reported with what is wrong and where (line and column, from 1), for the
author to find it.

Two passes, the first problem in reading order wins: the standard library's `html.parser` gives the tags and their
positions (which tags, attributes, nesting); a scan of the source the way Telegram's own parser (tdlib; its port is
emulator/html_parser.py) reads it checks what `html.parser` is lenient about: entities in the text (a bare "&", an
unknown name, a numeric one that is 0, a surrogate or beyond Unicode), an unquoted attribute value with other
characters than letters, digits, "." and "-", a closing tag with anything but its name ("</ b>", "</b x>", "</>").
Stricter than Telegram in places: a bare "&" in the text is refused (Telegram's emulator refuses it too: such text
breaks on the next "<"; inside a quoted attribute value it is accepted, as Telegram does), an entity needs its ";",
and an attribute Telegram would ignore is refused rather than silently dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from html import unescape
from html.parser import HTMLParser

# Telegram's tags (Bot API, "HTML style"), lower case as html.parser gives them.
ALLOWED_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre",
        "blockquote", "tg-emoji",
    }
)
# The attributes each tag may carry (any other is refused).
ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href"}),
    "span": frozenset({"class"}),
    "tg-emoji": frozenset({"emoji-id"}),
    "code": frozenset({"class"}),
    "blockquote": frozenset({"expandable"}),
}
# What Telegram decodes: the four named entities and numeric ones (a lower-case "x" only; at most 7 decimal or 6 hex
# digits, as tdlib reads them; the value is checked by `_character`).
ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));")
# Whitespace as tdlib sees it (ASCII only), and the characters of an unquoted attribute value (a "name token").
SPACES = " \t\r\n\v\f"
NAME_TOKEN = re.compile(r"[A-Za-z0-9.\-]*")
END_TAG = re.compile(r"</([^ \t\r\n\v\f>]*)[ \t\r\n\v\f]*(>?)")
SPECIAL = re.compile(r"[<&]")
HREF_SCHEMES = ("http://", "https://", "tg://", "mailto:")


class Problem(StrEnum):
    unknown_tag = "unknown_tag"  # tag
    unclosed = "unclosed"  # tag: opened at line/column, never closed
    not_opened = "not_opened"  # tag: a closing tag with nothing of its name open
    misnested = "misnested"  # tag closed at line/column while `other` (opened at other_line/other_column) is open
    self_closing = "self_closing"  # tag
    attribute = "attribute"  # tag, attribute: not allowed in this tag
    missing_attribute = "missing_attribute"  # tag, attribute: required
    bad_value = "bad_value"  # tag, attribute: a value Telegram refuses
    bad_entity = "bad_entity"  # text: "&…" that is no entity Telegram knows
    bad_character = "bad_character"  # text: "&#…;" of a character Telegram refuses (0, a surrogate, beyond Unicode)
    unquoted = "unquoted"  # tag, attribute: an unquoted value with characters other than letters, digits, ".", "-"
    end_tag = "end_tag"  # text: a closing tag with a space after "</", without a name, or with more than its name
    bare_bracket = "bare_bracket"  # a "<" that starts no tag
    markup = "markup"  # a comment, a declaration or a processing instruction


@dataclass(frozen=True)
class HtmlProblem:
    problem: Problem
    line: int
    column: int
    tag: str = ""
    attribute: str = ""
    text: str = ""
    other: str = ""
    other_line: int = 0
    other_column: int = 0


class HtmlError(ValueError):
    def __init__(self, found: HtmlProblem) -> None:
        super().__init__(f"{found.problem} at {found.line}:{found.column}")
        self.found = found


def utf16_len(text: str) -> int:
    """The length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Checked:
    """Valid HTML: the text a reader sees (tags removed, entities decoded, stripped as Telegram strips it)."""

    visible: str

    @property
    def length(self) -> int:
        return utf16_len(self.visible)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[tuple[str, int, int]] = []
        self.parts: list[str] = []

    def _where(self) -> tuple[int, int]:
        line, offset = self.getpos()
        return line, offset + 1

    def _fail(self, problem: Problem, **values: object) -> None:
        line, column = self._where()
        raise HtmlError(HtmlProblem(problem, line, column, **values))  # type: ignore[arg-type]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self._fail(Problem.unknown_tag, tag=tag)
        given = dict(attrs)
        for name, _value in attrs:
            if name not in ALLOWED_ATTRIBUTES.get(tag, frozenset()):
                self._fail(Problem.attribute, tag=tag, attribute=name)
        if tag == "a":
            href = (given.get("href") or "").strip()
            if "href" not in given:
                self._fail(Problem.missing_attribute, tag=tag, attribute="href")
            if not href.lower().startswith(HREF_SCHEMES) or len(href) <= len("http://"):
                self._fail(Problem.bad_value, tag=tag, attribute="href")
        if tag == "span" and given.get("class") != "tg-spoiler":
            self._fail(Problem.bad_value if "class" in given else Problem.missing_attribute, tag=tag, attribute="class")
        emoji_id = given.get("emoji-id") or ""
        if tag == "tg-emoji" and not (emoji_id.isascii() and emoji_id.isdigit()):
            self._fail(Problem.bad_value if "emoji-id" in given else Problem.missing_attribute, tag=tag,
                       attribute="emoji-id")
        if tag == "code" and "class" in given and not (given.get("class") or "").startswith("language-"):
            self._fail(Problem.bad_value, tag=tag, attribute="class")
        line, column = self._where()
        self.open.append((tag, line, column))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self._fail(Problem.unknown_tag, tag=tag)
        self._fail(Problem.self_closing, tag=tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ALLOWED_TAGS:
            self._fail(Problem.unknown_tag, tag=tag)
        if not self.open or all(name != tag for name, _l, _c in self.open):
            self._fail(Problem.not_opened, tag=tag)
        name, line, column = self.open[-1]
        if name != tag:
            self._fail(Problem.misnested, tag=tag, other=name, other_line=line, other_column=column)
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:
            # html.parser passes a "<" that starts no tag on as text; Telegram refuses it.
            line, column = self._where()
            before = data[: data.index("<")]
            line += before.count("\n")
            column = column + len(before) if "\n" not in before else len(before) - before.rindex("\n")
            raise HtmlError(HtmlProblem(Problem.bare_bracket, line, column))
        self.parts.append(data)

    def handle_entityref(self, name: str) -> None:
        self.parts.append(unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        # As Telegram decodes it (html.unescape would drop or replace control and non-characters); the scan has
        # refused any that Telegram does not decode.
        try:
            value = int(name[1:], 16) if name[:1] == "x" else int(name, 10)
            self.parts.append(chr(value))
        except ValueError:
            self.parts.append(unescape(f"&#{name};"))

    def handle_comment(self, data: str) -> None:
        self._fail(Problem.markup)

    def handle_decl(self, decl: str) -> None:
        self._fail(Problem.markup)

    def handle_pi(self, data: str) -> None:
        self._fail(Problem.markup)

    def unknown_decl(self, data: str) -> None:
        self._fail(Problem.markup)


def _position(source: str, index: int) -> tuple[int, int]:
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column


def _character(decimal: str | None, hexadecimal: str | None) -> bool:
    """A numeric entity Telegram decodes: not 0, not a surrogate, below 0x10FFFF (tdlib stops at it)."""
    if decimal is None and hexadecimal is None:
        return True  # a named one
    value = int(decimal, 10) if decimal is not None else int(hexadecimal or "0", 16)
    return 0 < value < 0x10FFFF and not 0xD800 <= value <= 0xDFFF


def _entity_problem(source: str, index: int) -> HtmlProblem | None:
    found = ENTITY.match(source, index)
    if found is not None and _character(found.group(1), found.group(2)):
        return None
    line, column = _position(source, index)
    if found is not None:
        return HtmlProblem(Problem.bad_character, line, column, text=found.group(0))
    text = re.match(r"&[#\w]{0,12};?", source[index:])
    return HtmlProblem(Problem.bad_entity, line, column, text=text.group(0) if text else "&")


def _start_tag_problem(source: str, begin: int) -> tuple[HtmlProblem | None, int]:
    """An unquoted attribute value Telegram refuses in the start tag at `begin` (its "<"), and where the tag ends.
    Other problems of the tag are html.parser's to find; an unfinished tag ends the scan (html.parser reports it)."""
    n = len(source)
    i = begin + 1
    while i < n and source[i] not in SPACES and source[i] != ">":
        i += 1
    tag = source[begin + 1 : i].lower()
    while i < n and source[i] != ">":
        while i < n and source[i] in SPACES:
            i += 1
        if i >= n or source[i] == ">":
            break
        name_begin = i
        while i < n and source[i] not in SPACES and source[i] not in "=>":
            i += 1
        attribute = source[name_begin:i].lower()
        while i < n and source[i] in SPACES:
            i += 1
        if i >= n or source[i] != "=":
            continue
        i += 1
        while i < n and source[i] in SPACES:
            i += 1
        if i >= n:
            break
        if source[i] in "'\"":
            close = source.find(source[i], i + 1)
            if close < 0:
                return None, n
            i = close + 1
            continue
        token = NAME_TOKEN.match(source, i)
        end = token.end() if token else i
        if end >= n or (source[end] not in SPACES and source[end] != ">"):
            line, column = _position(source, i)
            return HtmlProblem(Problem.unquoted, line, column, tag=tag, attribute=attribute), n
        i = end
    return None, i + 1


def _scan(source: str) -> HtmlProblem | None:
    """The first problem of the source read the way Telegram reads it (see the module's docstring)."""
    n = len(source)
    i = 0
    while i < n:
        special = SPECIAL.search(source, i)
        if special is None:
            return None
        i = special.start()
        if source[i] == "&":
            problem = _entity_problem(source, i)
            if problem is not None:
                return problem
            i += 1
        elif source.startswith("</", i):
            end_tag = END_TAG.match(source, i)
            if end_tag is None or not end_tag.group(1) or not end_tag.group(2):
                line, column = _position(source, i)
                close = source.find(">", i)
                text = source[i : close + 1] if 0 <= close - i < 30 else source[i : i + 12]
                return HtmlProblem(Problem.end_tag, line, column, text=text)
            i = end_tag.end()
        else:
            problem, i = _start_tag_problem(source, i)
            if problem is not None:
                return problem
    return None


def check_html(source: str) -> Checked:
    """The visible text of `source`, or HtmlError with the first problem (in reading order)."""
    problems: list[HtmlProblem] = []
    scanned = _scan(source)
    if scanned is not None:
        problems.append(scanned)
    parser = _Parser()
    try:
        parser.feed(source)
        parser.close()
    except HtmlError as error:
        problems.append(error.found)
    if parser.open and not problems:
        tag, line, column = parser.open[-1]
        problems.append(HtmlProblem(Problem.unclosed, line, column, tag=tag))
    if problems:
        raise HtmlError(min(problems, key=lambda p: (p.line, p.column)))
    return Checked("".join(parser.parts).strip())


def visible_text(source: str) -> str:
    """What a reader sees of stored (valid) HTML; for a source that does not pass, the source itself."""
    try:
        return check_html(source).visible
    except HtmlError:
        return source
