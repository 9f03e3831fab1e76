"""Validating the HTML an author types for a broadcast before it is stored, so that Telegram never rejects it at
sending time ("can't parse entities"): the tags Telegram supports, properly nested and closed, their attributes, and
the entities it decodes. A problem is reported with what is wrong and where (line and column, from 1), for the
author to find it.

Built on the standard library's `html.parser` (tags and their positions); entities are checked by a scan of the
source, since `html.parser` passes a bare "&" or "<" on as text. Stricter than Telegram in one way: a bare "&" that
starts no entity is refused (Telegram keeps it, but such text breaks on the next "<"), and an attribute Telegram would
ignore is refused rather than silently dropped."""

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
# What Telegram decodes: the four named entities and numeric ones.
ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
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
        if tag == "tg-emoji" and not (given.get("emoji-id") or "").isdigit():
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


def _check_entities(source: str) -> None:
    for found in re.finditer("&", source):
        if ENTITY.match(source, found.start()) is None:
            line, column = _position(source, found.start())
            text = re.match(r"&[#\w]{0,12};?", source[found.start():])
            raise HtmlError(HtmlProblem(Problem.bad_entity, line, column, text=text.group(0) if text else "&"))


def check_html(source: str) -> Checked:
    """The visible text of `source`, or HtmlError with the first problem (in reading order)."""
    problems: list[HtmlProblem] = []
    try:
        _check_entities(source)
    except HtmlError as error:
        problems.append(error.found)
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
