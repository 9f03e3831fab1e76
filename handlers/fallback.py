"""Last resort: whatever no other handler took gets a clear answer, never silence or a crash."""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot import keyboards as kb
from handlers import Handlers

router = Handlers(__name__)


@router.message(F.text.startswith("/"))
async def unknown_command(message: Message) -> None:
    await message.answer(_("Unknown command. The commands are listed in /help."))


@router.message()
async def not_understood(message: Message) -> None:
    await message.answer(
        _("I did not understand that. Choose an action in the menu below or send /help."), reply_markup=kb.main_menu()
    )


@router.callback_query()
async def stale_button(callback: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    """A button of a finished dialog, an outdated screen or forged data: refuse, show nothing."""
    callback_answer.text = _("This button is no longer active.")
    callback_answer.show_alert = True
