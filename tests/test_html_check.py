"""bot/html_check.py: Telegram's HTML as an author types it, checked before a broadcast is stored. Every text the
check passes is also accepted by the emulator's port of Telegram's own parser (tdlib), and every text that parser
rejects is refused here, with what is wrong and where."""

from __future__ import annotations

import random

import pytest

from bot.html_check import HtmlError, Problem, check_html, utf16_len, visible_text
from emulator.html_parser import EntityParseError, parse_html


def problem(source: str) -> tuple[Problem, int, int, str]:
    with pytest.raises(HtmlError) as caught:
        check_html(source)
    found = caught.value.found
    return found.problem, found.line, found.column, found.attribute or found.tag or found.text


VALID = [
    "plain text",
    "<b>bold</b> <strong>strong</strong> <i>i</i> <em>em</em> <u>u</u> <ins>ins</ins>",
    "<s>s</s> <strike>strike</strike> <del>del</del> <tg-spoiler>spoiler</tg-spoiler>",
    '<span class="tg-spoiler">spoiler</span>',
    '<a href="https://example.org/?a=1&amp;b=2">link</a>',
    "<code>x = 1</code> <pre>block</pre>",
    '<pre><code class="language-python">print(1)</code></pre>',
    "<blockquote>quote</blockquote> <blockquote expandable>long quote</blockquote>",
    '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>',
    "<b>nested <i>italic <u>underlined</u></i></b>",
    "&lt;tag&gt; &amp; &quot;quoted&quot; &#33; &#x21;",
    "<B>upper case</B>",
    "line 1\nline 2\n<b>line 3</b>",
    # a bare "&" inside a quoted attribute value: Telegram keeps it
    '<a href="https://x.ru/?a=1&b=2">x</a>',
    # unquoted values that are name tokens (letters, digits, ".", "-")
    "<span class=tg-spoiler>x</span> <tg-emoji emoji-id=5368324170671202286>👍</tg-emoji>",
    "<b>closing tag with a space before its end</b >",
    "&#1; &#xD7FF; &#xE000; &#1114110;",
]


@pytest.mark.parametrize("source", VALID)
def test_valid_html_passes_and_telegram_agrees(source: str) -> None:
    checked = check_html(source)
    parsed = parse_html(source)
    assert checked.visible == parsed.text.strip()


def test_the_visible_text_and_its_length() -> None:
    checked = check_html("  <b>Внимание</b> &lt;МФЦ&gt; 👍  ")
    assert checked.visible == "Внимание <МФЦ> 👍"
    assert checked.length == utf16_len("Внимание <МФЦ> 👍") == 17  # the emoji counts two, as Telegram counts
    assert check_html("<b> </b>").visible == ""
    assert visible_text("<i>broken") == "<i>broken"  # not valid: shown as it is


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # unclosed: where it was opened
        ("Внимание!\n    <b>Отключение", (Problem.unclosed, 2, 5, "b")),
        ("<b>one <i>two</i>", (Problem.unclosed, 1, 1, "b")),
        # mis-nested: where the wrong closing tag is
        ("<b><i>x</b></i>", (Problem.misnested, 1, 8, "b")),
        # closing with nothing open
        ("x</b>", (Problem.not_opened, 1, 2, "b")),
        ("<i>x</i></i>", (Problem.not_opened, 1, 9, "i")),
        # unknown tags
        ("a\n<font color=red>x</font>", (Problem.unknown_tag, 2, 1, "font")),
        ("<script>alert(1)</script>", (Problem.unknown_tag, 1, 1, "script")),
        ("<br>", (Problem.unknown_tag, 1, 1, "br")),
        ("<b/>", (Problem.self_closing, 1, 1, "b")),
        # attribute rules
        ('<b class="x">x</b>', (Problem.attribute, 1, 1, "class")),
        ('<a href="https://e.org" target="_blank">x</a>', (Problem.attribute, 1, 1, "target")),
        ("<a>x</a>", (Problem.missing_attribute, 1, 1, "href")),
        ('<a href="javascript:alert(1)">x</a>', (Problem.bad_value, 1, 1, "href")),
        ('<a href="">x</a>', (Problem.bad_value, 1, 1, "href")),
        ("<span>x</span>", (Problem.missing_attribute, 1, 1, "class")),
        ('<span class="red">x</span>', (Problem.bad_value, 1, 1, "class")),
        ("<tg-emoji>👍</tg-emoji>", (Problem.missing_attribute, 1, 1, "emoji-id")),
        ('<tg-emoji emoji-id="abc">👍</tg-emoji>', (Problem.bad_value, 1, 1, "emoji-id")),
        ('<code class="python">x</code>', (Problem.bad_value, 1, 1, "class")),
        # entities
        ("a &nbsp; b", (Problem.bad_entity, 1, 3, "&nbsp;")),
        ("Tom & Jerry", (Problem.bad_entity, 1, 5, "&")),
        ("x\ny &lt z", (Problem.bad_entity, 2, 3, "&lt")),
        ("&#X21;", (Problem.bad_entity, 1, 1, "&#X21;")),  # Telegram's "x" is lower case only
        # numeric entities of characters Telegram refuses: 0, a surrogate, beyond Unicode (0x10FFFF included)
        ("a\n  &#0;", (Problem.bad_character, 2, 3, "&#0;")),
        ("&#xD800;", (Problem.bad_character, 1, 1, "&#xD800;")),
        ("x &#xdfff;", (Problem.bad_character, 1, 3, "&#xdfff;")),
        ("&#1114112;", (Problem.bad_character, 1, 1, "&#1114112;")),
        ("&#x10FFFF;", (Problem.bad_character, 1, 1, "&#x10FFFF;")),
        ("&#55296;", (Problem.bad_character, 1, 1, "&#55296;")),
        # an unquoted attribute value with more than letters, digits, "." and "-": where the value starts
        ("Сайт: <a href=https://gudermes.ru>сайт</a>", (Problem.unquoted, 1, 15, "href")),
        ("<code class=language-c_sharp>x</code>", (Problem.unquoted, 1, 13, "class")),  # "_" too
        ("<code\nclass=language-c++>x</code>", (Problem.unquoted, 2, 7, "class")),
        # a closing tag with a space after "</", more than its name, or no name
        ("<b>x</ b>", (Problem.end_tag, 1, 5, "</ b>")),
        ("<b>x</b class=y>", (Problem.end_tag, 1, 5, "</b class=y>")),
        ("x</>", (Problem.end_tag, 1, 2, "</>")),
        # a "<" that starts no tag
        ("price < 100", (Problem.bare_bracket, 1, 7, "")),
        ("ok\n  <", (Problem.bare_bracket, 2, 3, "")),
        ("<b>x</b", (Problem.end_tag, 1, 5, "</b")),
        # other markup
        ("<!-- note -->", (Problem.markup, 1, 1, "")),
    ],
)
def test_problems_say_what_and_where(source: str, expected: tuple[Problem, int, int, str]) -> None:
    assert problem(source) == expected


def test_the_first_problem_in_reading_order_is_reported() -> None:
    assert problem("<x>\n&bad;")[0] == Problem.unknown_tag
    assert problem("&bad;\n<x>")[0] == Problem.bad_entity


@pytest.mark.parametrize(
    "source",
    [
        "<b>x", "<b><i>x</b></i>", "x</b>", "<font>x</font>", "<span>x</span>", "price < 100",
        "<b>x</b", "<tg-emoji>x</tg-emoji>", "<!-- x -->",
        # found by the review and by reading the parser: unquoted values, numeric entities, closing tags
        "<a href=https://gudermes.ru>сайт</a>", "<a href=x/y>x</a>", "<code class=language-c++>x</code>",
        "&#0;", "&#xD800;", "&#xDFFF;", "&#1114112;", "&#x10FFFF;", "&#X21;", "&#x;", "&#;",
        "<b>x</ b>", "<b>x</b x>", "x</>", '<a href="https://x.ru>x</a>',
        "<b>x</b\n", "<b", "<b x=", '<b x="a', "a & b",
    ],
)
def test_what_telegram_rejects_is_refused(source: str) -> None:
    """(The check is stricter in places: a link needs its href, a bare "&" is refused.)"""
    with pytest.raises(EntityParseError):
        parse_html(source)
    with pytest.raises(HtmlError):
        check_html(source)


def test_what_the_check_accepts_telegram_accepts() -> None:
    """A seeded random walk over the pieces Telegram's parser cares about (tags, attributes quoted or not, entities,
    brackets, spaces): whatever the check passes, Telegram's parser passes, with the same visible text."""
    pieces = [
        "<b>", "</b>", "<i>", "</i>", "</ b>", "</b >", "</>", "</b x>", "<a href=", "<a href=\"https://x.ru\">", "</a>",
        "<span class=", "tg-spoiler", "</span>", "<tg-emoji emoji-id=", "123", "</tg-emoji>", "<code class=",
        "language-c", "</code>", "<pre>", "</pre>", "<blockquote", " expandable", ">", "</blockquote>", "\"", "'",
        "=", "<", "&", "&amp;", "&lt", "&#0;", "&#33;", "&#x21;", "&#X21;", "&#xD800;", "&#1114111;", "&#1114110;",
        "&nbsp;", " ", "\n", "\t", "\xa0", "x", "ж", "👍", "/", ":", "_", "+", ".", "-", "?a=1&b=2", "<!--", "-->",
    ]
    generator = random.Random(13)
    accepted = 0
    for _ in range(20000):
        source = "".join(generator.choice(pieces) for _ in range(generator.randint(1, 9)))
        try:
            checked = check_html(source)
        except HtmlError:
            continue
        accepted += 1
        try:
            parsed = parse_html(source)
        except EntityParseError as error:
            raise AssertionError(f"the check accepts {source!r}, Telegram refuses it: {error}") from None
        assert checked.visible == parsed.text.strip(), source
    assert accepted > 1000  # the walk does reach valid texts
