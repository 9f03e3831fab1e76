"""Keyboards. Labels are translated when the keyboard is built, in the person's language."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiogram.filters import Filter
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import gettext as _

from bot.callbacks import ConsentAction, ConsentCb, FileAction, FileCb, LangCb
from bot.i18n import N_, variants

MENU = {
    "file": ("📝", N_("File an appeal")),
    "mine": ("📋", N_("My appeals")),
    "help": ("ℹ️", N_("Help")),
    "language": ("🌐", N_("Language")),
}
LANGUAGE_NAMES = {"ru": "Русский", "ce": "Нохчийн", "en": "English"}


def menu_label(key: str) -> str:
    emoji, msgid = MENU[key]
    return f"{emoji} {_(msgid)}"


class MenuButton(Filter):
    """Matches a main-menu button in any of the bot's languages (the person may have just switched)."""

    def __init__(self, key: str) -> None:
        self.emoji, self.msgid = MENU[key]

    async def __call__(self, message: Message) -> bool:
        if not message.text:
            return False
        return message.text in {f"{self.emoji} {v}" for v in variants(self.msgid)}


def main_menu() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=menu_label("file"))],
            [KeyboardButton(text=menu_label("mine")), KeyboardButton(text=menu_label("help"))],
            [KeyboardButton(text=menu_label("language"))],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )


def languages(preselected: str) -> InlineKeyboardMarkup:
    # Built directly (see choice_list): every new person gets this keyboard.
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=f"{'✅ ' if code == preselected else ''}{name}", callback_data=LangCb(code=code).pack()
                )
            ]
            for code, name in LANGUAGE_NAMES.items()
        ]
    )


def consent() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=_("✅ I agree"), callback_data=ConsentCb(action=ConsentAction.accept).pack())],
            [
                InlineKeyboardButton(
                    text=_("❌ I do not agree"), callback_data=ConsentCb(action=ConsentAction.decline).pack()
                )
            ],
        ]
    )


def consent_again() -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text=_("Read the consent"), callback_data=ConsentCb(action=ConsentAction.show).pack())
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def back_button(draft: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=_("⬅️ Back"), callback_data=FileCb(action=FileAction.back, d=draft).pack())


def choice_list(
    items: Iterable[tuple[int, str]],
    action: FileAction,
    draft: str,
    columns: int = 1,
    back: bool = True,
    cancel: bool = False,
) -> InlineKeyboardMarkup:
    # Built directly rather than with InlineKeyboardBuilder, which deep-copies every button: these
    # lists (districts, categories) are sent at every step of every filing.
    flat = [
        InlineKeyboardButton(text=text, callback_data=FileCb(action=action, d=draft, v=value).pack())
        for value, text in items
    ]
    keyboard = [flat[i : i + columns] for i in range(0, len(flat), columns)]
    if back:
        keyboard.append([back_button(draft)])
    if cancel:
        keyboard.append(
            [InlineKeyboardButton(text=_("❌ Cancel"), callback_data=FileCb(action=FileAction.cancel, d=draft).pack())]
        )
    return InlineKeyboardMarkup(inline_keyboard=keyboard)


def buttons(
    rows: Sequence[Sequence[tuple[str, FileAction, int]]], draft: str, back: bool = True
) -> InlineKeyboardMarkup:
    keyboard = [
        [
            InlineKeyboardButton(text=text, callback_data=FileCb(action=action, d=draft, v=value).pack())
            for text, action, value in row
        ]
        for row in rows
    ]
    if back:
        keyboard.append([back_button(draft)])
    return InlineKeyboardMarkup(inline_keyboard=keyboard)


def location_request() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("📍 Send my location"), request_location=True)],
            [KeyboardButton(text=_("⬅️ Back"))],
        ],
        resize_keyboard=True,
        one_time_keyboard=False,
    )


def contact_request() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("📱 Share my phone number"), request_contact=True)],
            [KeyboardButton(text=_("⬅️ Back"))],
        ],
        resize_keyboard=True,
    )
