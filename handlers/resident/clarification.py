"""The resident answers an official's clarification question: text and/or files, then Send."""

from __future__ import annotations

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot import keyboards as kb
from bot.callbacks import ReplyCb
from bot.config import Settings
from bot.keyboards import MenuButton
from bot.services import Services
from bot.services.appeals import DraftAttachment
from bot.services.errors import InvalidInput, NotFound
from bot.services.users import Actor
from bot.states import ResidentReply
from handlers import Handlers
from handlers.common.cancel import BUTTONS
from handlers.resident.steps import draft_in_progress, take_file, take_text

router = Handlers(__name__)


def send_keyboard(appeal_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=_("📤 Send the reply"), callback_data=ReplyCb(id=appeal_id, send=True).pack())]
        ]
    )


async def remember_buttons(state: FSMContext, sent: Message) -> None:
    """A message with «Send the reply»: /cancel takes its button away (handlers.common.cancel)."""
    listed = (await state.get_data()).get(BUTTONS, [])
    await state.update_data({BUTTONS: [*listed, sent.message_id]})


def not_waiting(callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("This appeal does not wait for your reply.")
    callback_answer.show_alert = True


@router.callback_query(ReplyCb.filter(~F.send))
async def start_reply(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ReplyCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
) -> None:
    waiting = dict(await services.views.waiting_clarification(actor))
    if callback_data.id not in waiting:
        not_waiting(callback_answer)
        return
    data = await state.get_data()
    same = await state.get_state() == ResidentReply.collecting.state and data.get("appeal_id") == callback_data.id
    if not same:
        busy = await draft_in_progress(state)
        if busy:
            callback_answer.text, callback_answer.show_alert = busy, True
            return
        await state.set_state(ResidentReply.collecting)
        await state.set_data({"appeal_id": callback_data.id, "text": "", "files": []})
    # The same reply pressed again keeps what was already typed and attached.
    if isinstance(callback.message, Message):
        await callback.message.answer(
            _(
                "Reply on appeal № {number}: type the text and/or send photos or documents, then press «Send the reply». /cancel to stop."
            ).format(number=waiting[callback_data.id])
        )


@router.message(ResidentReply.collecting, F.text, ~F.text.startswith("/"), ~MenuButton())
async def reply_text(message: Message, state: FSMContext, settings: Settings) -> None:
    too_long = _("The description is too long: {count} characters, at most {max}. Please shorten it.")
    data = await take_text(message, state, settings.limits.text_max, too_long)
    if data is None:
        return
    sent = await message.answer(
        _("Text saved. Add files or press «Send the reply»."), reply_markup=send_keyboard(int(data["appeal_id"]))
    )
    await remember_buttons(state, sent)


@router.message(ResidentReply.collecting, F.photo | F.video | F.document)
async def reply_file(message: Message, state: FSMContext, settings: Settings) -> None:
    most = settings.limits.attachments_max
    taken = await take_file(message, state, most)
    if taken is None:
        return
    data, count = taken
    if not message.media_group_id or count == 1:
        sent = await message.answer(
            _("📎 Files attached: {count} of {max}.").format(count=count, max=most),
            reply_markup=send_keyboard(int(data["appeal_id"])),
        )
        await remember_buttons(state, sent)


@router.message(ResidentReply.collecting, ~F.text.startswith("/"), ~MenuButton())
async def reply_wrong(message: Message) -> None:
    await message.answer(
        _("This kind of message cannot be attached. Send a photo, a video or a document (PDF, DOC, …).")
    )


@router.callback_query(ResidentReply.collecting, ReplyCb.filter(F.send))
async def send_reply(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ReplyCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
) -> None:
    data = await state.get_data()
    if callback_data.id != data.get("appeal_id"):
        callback_answer.text = _("This button is no longer active.")
        callback_answer.show_alert = True
        return
    files = [DraftAttachment(k, f, u) for k, f, u in data.get("files", [])]
    try:
        await services.replies.reply_clarification(actor, int(data["appeal_id"]), data.get("text", ""), files)
    except (InvalidInput, NotFound):
        await state.clear()
        not_waiting(callback_answer)
        return
    await state.clear()
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await callback.message.answer(_("Your reply is sent to the responsible body."), reply_markup=kb.main_menu())
