"""Unique dialog ids for aiogram-dialog, until the library's own are.

aiogram-dialog 2.6 makes the id of every opened dialog (intent) and stack from the current second and one of 100
random numbers (`aiogram_dialog.api.entities.stack.new_int_id`): two dialogs opened within one second share an id
once in a hundred times. A card opened from a list in the same second as the list then takes the list's id, the
stack holds one id twice, and the card's buttons are refused as outdated (seen in `tests/test_staff_e2e.py` under
load, 1 run in about 25). The fix is proposed upstream (Tishka17/aiogram_dialog pull request 501, open).

`use_unique_dialog_ids()` replaces that one function with 36 random bits (ids stay six or seven characters, so
button data stays well under Telegram's 64 bytes). It is the only library internal the bot replaces; it checks that
the function is where it expects and fails loudly, naming the version, if not. Remove it once aiogram-dialog's
own ids are unique.
"""

from __future__ import annotations

import secrets
from importlib.metadata import version

from aiogram_dialog.api.entities import stack

library_int_id = stack.new_int_id  # the library's own, kept for the test that shows why it is replaced


class DialogIdsUnsupported(RuntimeError):
    pass


def unique_int_id() -> int:
    return secrets.randbits(36)


def use_unique_dialog_ids() -> None:
    if not callable(getattr(stack, "new_int_id", None)) or not callable(getattr(stack, "new_id", None)):
        raise DialogIdsUnsupported(
            f"aiogram-dialog {version('aiogram-dialog')}: stack.new_int_id is gone; see bot/dialog_ids.py"
        )
    stack.new_int_id = unique_int_id
