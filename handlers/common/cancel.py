from __future__ import annotations

from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import DialogManager

from bot import keyboards as kb
from handlers import Handlers

router = Handlers(__name__)


@router.message(Command("cancel"))
async def cancel(message: Message, state: FSMContext, dialog_manager: DialogManager) -> None:
    in_dialog = dialog_manager.has_context()
    if await state.get_state() is None and not in_dialog:
        await message.answer(_("There is nothing to cancel."), reply_markup=kb.main_menu())
        return
    await state.clear()
    if in_dialog:
        await dialog_manager.reset_stack()
    await message.answer(_("Cancelled. Nothing was saved."), reply_markup=kb.main_menu())
