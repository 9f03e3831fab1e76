"""Every locale translates every string; placeholders and HTML survive translation."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ("ru", "ce", "en")
PLACEHOLDER = re.compile(r"\{[a-z_]+(?::[^}]*)?\}")
TAG = re.compile(r"</?[a-z]+>")


def catalog(lang: str):
    with (ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def extracted_ids(tmp_path: Path) -> set[str]:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "pybabel"),
            "-q",
            "extract",
            "-k",
            "_",
            "-k",
            "__",
            "-k",
            "N_",
            "-o",
            str(pot),
            "bot",
            "handlers",
        ],
        cwd=ROOT,
        check=True,
    )
    with pot.open("rb") as fh:
        return {m.id for m in read_po(fh) if m.id}


@pytest.mark.parametrize("lang", LOCALES)
def test_every_string_of_the_code_is_translated(lang: str, tmp_path: Path) -> None:
    messages = {m.id: m for m in catalog(lang) if m.id}
    missing = sorted(i for i in extracted_ids(tmp_path) if i not in messages or not messages[i].string)
    assert not missing, f"{lang} lacks translations for: {missing[:10]}"
    fuzzy = sorted(m.id for m in messages.values() if m.fuzzy)
    assert not fuzzy, f"{lang} has fuzzy entries: {fuzzy[:5]}"


@pytest.mark.parametrize("lang", LOCALES)
def test_translations_keep_placeholders_and_markup(lang: str) -> None:
    for message in catalog(lang):
        if not message.id or not message.string:
            continue
        assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), message.id
        assert sorted(TAG.findall(message.id)) == sorted(TAG.findall(message.string)), message.id
