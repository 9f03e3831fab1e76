from __future__ import annotations

from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import DialogManager

from bot import keyboards as kb
from handlers import Handlers

router = Handlers(__name__)


async def end_conversation(state: FSMContext, dialog_manager: DialogManager) -> bool:
    """Leave whatever the person was in (a declared dialog, a plain FSM step); False if there was nothing."""
    in_dialog = dialog_manager.has_context()
    if await state.get_state() is None and not in_dialog:
        return False
    await state.clear()
    if in_dialog:
        await dialog_manager.reset_stack()
    return True


@router.message(Command("cancel"))
async def cancel(message: Message, state: FSMContext, dialog_manager: DialogManager) -> None:
    if not await end_conversation(state, dialog_manager):
        await message.answer(_("There is nothing to cancel."), reply_markup=kb.main_menu())
        return
    await message.answer(_("Cancelled. Nothing was saved."), reply_markup=kb.main_menu())
