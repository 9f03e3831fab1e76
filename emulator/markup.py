"""Validation of ``reply_markup`` the way Telegram rejects bad keyboards."""

from __future__ import annotations

import unicodedata
from typing import Any

from .errors import bad_request

INLINE_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
MAX_CALLBACK_DATA_BYTES = 64


def validate_markup(markup: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Check a decoded ``reply_markup`` and return it (None when absent).

    :param inline_only: edit methods accept only inline keyboards.
    """
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _validate_inline(markup["inline_keyboard"])
        return markup
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('can\'t parse keyboard markup JSON object: field "keyboard" must be an Array of Arrays')
        for row in rows:
            for button in row:
                text = button if isinstance(button, str) else button.get("text") if isinstance(button, dict) else None
                if not isinstance(text, str) or not text:
                    raise bad_request("can't parse keyboard button: Text must be non-empty")
        return markup
    if markup.get("remove_keyboard") or markup.get("force_reply"):
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def _validate_inline(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'can\'t parse inline keyboard markup JSON object: field "inline_keyboard" must be an Array of Arrays'
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict):
                raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            text = button.get("text")
            if not isinstance(text, str) or not text:
                raise bad_request("can't parse inline keyboard button: Text must be non-empty")
            if not any(key in button for key in INLINE_ACTIONS):
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button:
                url = button["url"]
                if not isinstance(url, str) or not url or any(c.isspace() for c in url):
                    raise bad_request("BUTTON_URL_INVALID")


def visible(text: str) -> str:
    """What a person sees of a text: invisible format characters (Unicode category Cf, e.g. the ones some
    frameworks append to reply buttons to carry data) take no room on the screen."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def reply_keyboard_rows(markup: dict[str, Any] | None) -> list[list[str]] | None:
    """Texts of a ReplyKeyboardMarkup as shown, row by row (None when there is no keyboard)."""
    if not markup or "keyboard" not in markup:
        return None
    return [
        [visible(button if isinstance(button, str) else button.get("text", "")) for button in row]
        for row in markup["keyboard"]
    ]


def find_reply_button(markup: dict[str, Any] | None, text: str) -> dict[str, Any] | None:
    """The reply keyboard button showing ``text`` (as a dict, with its full text), or None."""
    if not markup or "keyboard" not in markup:
        return None
    for row in markup["keyboard"]:
        for button in row:
            button_dict = {"text": button} if isinstance(button, str) else button
            full = button_dict.get("text", "")
            if full == text or visible(full) == text:
                return button_dict
    return None
