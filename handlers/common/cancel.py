from __future__ import annotations

from contextlib import suppress

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import DialogManager

from bot import keyboards as kb
from handlers import Handlers

router = Handlers(__name__)
# The FSM data key of a plain FSM step's messages whose inline buttons belong to the question (the clarification
# reply's «Send the reply»): leaving the step takes them away.
BUTTONS = "buttons"


async def end_conversation(state: FSMContext, dialog_manager: DialogManager) -> bool:
    """Leave whatever the person was in (a declared dialog, a plain FSM step); False if there was nothing.

    The buttons of the abandoned question go with it: aiogram-dialog's `reset_stack()` takes them off the dialog's
    last message, and the messages a plain step listed under BUTTONS lose theirs here."""
    in_dialog = dialog_manager.has_context()
    if await state.get_state() is None and not in_dialog:
        return False
    listed = (await state.get_data()).get(BUTTONS, [])
    await state.clear()
    if in_dialog:
        await dialog_manager.reset_stack()
    bot: Bot = dialog_manager.middleware_data["bot"]
    chat = dialog_manager.middleware_data["event_chat"]
    for message_id in listed:
        # Deleted by the person, or already without buttons: nothing to take away.
        with suppress(TelegramBadRequest):
            await bot.edit_message_reply_markup(chat_id=chat.id, message_id=int(message_id), reply_markup=None)
    return True


@router.message(Command("cancel"))
async def cancel(message: Message, state: FSMContext, dialog_manager: DialogManager) -> None:
    if not await end_conversation(state, dialog_manager):
        await message.answer(_("There is nothing to cancel."), reply_markup=kb.main_menu())
        return
    await message.answer(_("Cancelled. Nothing was saved."), reply_markup=kb.main_menu())
