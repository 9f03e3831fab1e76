"""The English catalog is the source language: copy every msgid into an empty msgstr, so that a test can
insist that no catalog has an empty translation.

A few msgids carry Russian terms (the ЦУР, a law's «ФЗ»): in English they read as the glossary below says. The
Regional Management Center's abbreviation, RMC, is defined once, in /help. A msgstr that is empty or still a copy
of its msgid is (re)filled; one written by hand is kept. `tests/test_english.py` checks that no Cyrillic is left.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

# Longest first: the help's heading defines the abbreviation that the other strings use.
GLOSSARY = (
    ("How the ЦУР bot works", "How the bot of the Regional Management Center (RMC) works"),
    ("ЦУР", "RMC"),
    ("-ФЗ", "-FZ"),
)


def english(msgid: str) -> str:
    for term, meaning in GLOSSARY:
        msgid = msgid.replace(term, meaning)
    return msgid


def fill(msgid: str | tuple[str, ...], msgstr: str | tuple[str, ...]) -> str | tuple[str, ...]:
    if isinstance(msgid, tuple):  # a plural: English has the two forms of its msgids
        forms = tuple(msgstr) if isinstance(msgstr, tuple) else ()
        return tuple(english(m) for m in msgid) if not any(forms) or forms == msgid else msgstr
    return english(msgid) if not msgstr or msgstr == msgid else msgstr


def main(path: str = "locales/en/LC_MESSAGES/messages.po") -> None:
    po = Path(path)
    with po.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    for message in catalog:
        if message.id:
            message.string = fill(message.id, message.string)
    with po.open("wb") as fh:
        write_po(fh, catalog, width=100)


if __name__ == "__main__":
    main(*sys.argv[1:])
