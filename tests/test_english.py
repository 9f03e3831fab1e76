"""The English interface is English (issue 10, defect 12): the en catalog has no Cyrillic left, the Regional
Management Center is named in English and its abbreviation (RMC) is defined once, in /help."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from tests.conftest import Harness
from tests.test_resident_e2e import english_resident

CYRILLIC = re.compile("[\u0400-\u04ff]")
EN = Path(__file__).parent.parent / "locales" / "en" / "LC_MESSAGES" / "messages.po"
# English msgstrs that may keep Cyrillic, and why. None today: proper names and user data come from the data files
# (names in English there) or from people, never from the catalog.
EXCEPTIONS: dict[str, str] = {}


def english_strings() -> dict[str, str]:
    with EN.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    found: dict[str, str] = {}
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for msgid, msgstr in zip(ids, strings, strict=False):
            found[msgid] = msgstr
    return found


def test_no_cyrillic_in_the_english_catalog() -> None:
    strings = english_strings()
    assert len(strings) > 100
    left = {msgid: msgstr for msgid, msgstr in strings.items() if CYRILLIC.search(msgstr) and msgid not in EXCEPTIONS}
    assert left == {}
    assert strings["ЦУР coordinator"] == "RMC coordinator"


async def test_english_help_defines_the_abbreviation_and_has_no_cyrillic(harness: Harness) -> None:
    user = await english_resident(harness)
    await user.send_text("/help")
    await harness.settle()
    text = user.last_message.text
    assert "Regional Management Center (RMC)" in text
    assert not CYRILLIC.search(text), text
    await user.send_text("/staff")
    await harness.settle()
    assert user.last_message.text == "This menu is for the staff of the RMC and the agencies."
