"""The English catalog is the source language: copy every msgid into an empty msgstr, so that a test can
insist that no catalog has an empty translation."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po


def main(path: str = "locales/en/LC_MESSAGES/messages.po") -> None:
    po = Path(path)
    with po.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    for message in catalog:
        if message.id and not message.string:
            message.string = message.id
    with po.open("wb") as fh:
        write_po(fh, catalog, width=100)


if __name__ == "__main__":
    main(*sys.argv[1:])
