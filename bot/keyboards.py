"""Keyboards. Labels are translated when the keyboard is built, in the person's language."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import gettext as _

from bot.callbacks import ConsentAction, ConsentCb, FixCb, LangCb, RateAction, RateCb
from bot.domain import FollowupAnswer
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
    """Matches a main-menu button in any of the bot's languages (the person may have just switched); without a
    key, any of them (a typed step lets them through: `~MenuButton()`)."""

    def __init__(self, key: str | None = None) -> None:
        self.keys = [key] if key else list(MENU)

    async def __call__(self, message: Message) -> bool:
        if not message.text:
            return False
        return any(message.text in {f"{MENU[k][0]} {v}" for v in variants(MENU[k][1])} for k in self.keys)


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
    # Built directly rather than with InlineKeyboardBuilder (which deep-copies every button): every new person gets it.
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


# --- the resident's judgement of an answer (issue 12) --------------------------------------------------------

SCORE_LABELS = {
    1: N_("1 — did not help at all"),
    2: N_("2 — rather did not help"),
    3: N_("3 — helped in part"),
    4: N_("4 — helped"),
    5: N_("5 — the problem is solved"),
}


def rating(appeal_id: int, note_id: int = 0) -> InlineKeyboardMarkup:
    """The five scores, one a row (the labels are long), the best on top as people read a list; `note_id` ties the
    buttons to the answer they were sent for (a re-opened appeal's next answer is not rated from the old ones)."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_(SCORE_LABELS[score]),
                    callback_data=RateCb(action=RateAction.score, id=appeal_id, v=score, n=note_id).pack(),
                )
            ]
            for score in sorted(SCORE_LABELS, reverse=True)
        ]
    )


def followup(appeal_id: int) -> InlineKeyboardMarkup:
    """"Is the problem actually fixed?": Yes / No / Don't know."""
    labels = ((FollowupAnswer.yes, _("✅ Yes")), (FollowupAnswer.no, _("❌ No")), (FollowupAnswer.unknown, _("🤷 Don't know")))
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=label, callback_data=FixCb(id=appeal_id, answer=answer).pack())
                for answer, label in labels
            ]
        ]
    )
