"""After a reply that never reached the person (a Bot API failure that outlived the retries, bot.app.on_error), the
person's next message or press first gets the step they are on, instead of being taken as its answer.

Inside a declared dialog the handler had already moved on (their address was saved, the next question was lost):
the person, who saw nothing, writes again, and that text would silently become the answer to a question they never
read. So the next text after a lost reply is not processed: the current window is sent again, after a line saying their
previous message was received. Only a typed text is held back: a command (/cancel, /start…), a file (an album's
items must all be kept) or a location is handled as usual, and outside a dialog nothing is held back at all (the
plain steps say where they are with every message). The person's next message ends the watch; a press does not
(every press is answered once, by aiogram's middleware, so no handler here may pass one on), and the windows its
dialog shows tell the person where they are anyway."""

from __future__ import annotations

from aiogram import Bot
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import DialogManager, ShowMode

from bot.session import REPLY_LOST as LOST
from handlers import Handlers

router = Handlers(__name__)


class ReplyWasLost(Filter):
    async def __call__(self, event: Message, state: FSMContext) -> bool:
        return bool((await state.get_data()).get(LOST))


@router.message(ReplyWasLost())
async def show_where_they_are(event: Message, state: FSMContext, dialog_manager: DialogManager, bot: Bot) -> None:
    await state.update_data({LOST: None})
    typed = bool(event.text) and not (event.text or "").startswith("/")
    if not typed or not dialog_manager.has_context():
        raise SkipHandler()  # handled as usual
    await bot.send_message(
        event.chat.id, _("We received your previous message, but our answer did not reach you. Here is where you are:")
    )
    await dialog_manager.show(ShowMode.SEND)
