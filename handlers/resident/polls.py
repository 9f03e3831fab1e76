"""A resident answers a poll: presses on its message (an option, «Other», «Submit»), and the free text of «Other».

The message is edited to show the current choice. A press the service refuses (a closed poll, a poll not sent to
them, a forged option) is answered with a popup and changes nothing; refused as closed, the message is redrawn as
closed. An option or «Submit» pressed while the free text of «Other» is awaited ends that step."""

from __future__ import annotations

from contextlib import suppress

from aiogram import Bot, F
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.ballot import ballot
from bot.callbacks import PollAction, PollCb
from bot.config import Settings
from bot.i18n import N_
from bot.keyboards import MenuButton
from bot.services import Services
from bot.services.polls import OTHER_CHARS, Ballot, PollRefused
from bot.services.users import Actor
from bot.states import PollOther
from handlers import Handlers
from handlers.resident.steps import draft_in_progress

router = Handlers(__name__)

REFUSALS = {
    "not_recipient": N_("This poll was not sent to you."),
    "closed": N_("This poll is closed; answers are no longer accepted."),
    "unknown_option": N_("This answer is not one of the poll's options."),
    "no_other": N_("This poll has no free-text answer."),
    "empty": N_("Choose at least one answer first."),
    "too_long": N_("The answer is too long: at most {max} characters. Please shorten it."),
}


def refused(error: PollRefused) -> str:
    return _(REFUSALS.get(error.detail, REFUSALS["closed"])).format(max=OTHER_CHARS)


def rendered(view: Ballot, settings: Settings) -> tuple[str, object]:
    return ballot(
        view.poll_id, view.question, view.options, multiple=view.multiple, other=view.allow_other,
        closes_at=view.closes_at, tz=settings.tz, chosen=view.chosen, other_text=view.other,
        submitted=view.submitted, is_open=view.is_open,
    )


async def show(bot: Bot, chat_id: int, message_id: int, view: Ballot, settings: Settings) -> None:
    text, markup = rendered(view, settings)
    with suppress(TelegramBadRequest):  # unchanged (the same press twice) or deleted by the person
        await bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id, reply_markup=markup)  # type: ignore[arg-type]


@router.callback_query(PollCb.filter())
async def on_press(
    callback: CallbackQuery,
    callback_data: PollCb,
    callback_answer: CallbackAnswer,
    state: FSMContext,
    actor: Actor,
    services: Services,
    settings: Settings,
    bot: Bot,
) -> None:
    polls = services.polls
    if callback_data.a != PollAction.other and await state.get_state() == PollOther.text:
        await state.clear()  # an option or «Submit» pressed instead of typing: a later text is no longer the answer
    try:
        if callback_data.a == PollAction.choose:
            view = await polls.choose(actor, callback_data.p, callback_data.o)
        elif callback_data.a == PollAction.submit:
            view = await polls.submit(actor, callback_data.p)
        else:
            toggled = await polls.other_wanted(actor, callback_data.p)
            if toggled is None:
                busy = await draft_in_progress(state)
                if busy:
                    callback_answer.text, callback_answer.show_alert = busy, True
                    return
                await state.set_state(PollOther.text)
                message_id = callback.message.message_id if callback.message else 0
                await state.set_data({"poll_id": callback_data.p, "message_id": message_id})
                if isinstance(callback.message, Message):
                    await callback.message.answer(
                        _("Type your answer (up to {max} characters). /cancel to stop.").format(max=OTHER_CHARS)
                    )
                return
            view = toggled
    except PollRefused as error:
        callback_answer.text = refused(error)
        callback_answer.show_alert = True
        if error.detail == "closed" and callback.message is not None:  # no live-looking buttons left behind
            closed = await polls.ballot(actor, callback_data.p)
            await show(bot, callback.message.chat.id, callback.message.message_id, closed, settings)
        return
    if view.submitted:
        callback_answer.text = _("Your answer is saved.")
    if callback.message is not None:
        await show(bot, callback.message.chat.id, callback.message.message_id, view, settings)


@router.message(StateFilter(PollOther.text), F.text, ~F.text.startswith("/"), ~MenuButton())
async def on_other_text(
    message: Message, state: FSMContext, actor: Actor, services: Services, settings: Settings, bot: Bot
) -> None:
    data = await state.get_data()
    try:
        view = await services.polls.answer_other(actor, int(data.get("poll_id", 0)), message.text or "")
    except PollRefused as error:
        await message.answer(refused(error))
        if error.detail in ("too_long", "empty"):
            return  # asked again: the state stays
        await state.clear()
        return
    await state.clear()
    await message.answer(_("Your answer is saved.") if view.submitted else _("Ticked. Press «Submit» on the poll to send your answer."))
    if data.get("message_id"):
        await show(bot, message.chat.id, int(data["message_id"]), view, settings)


@router.message(StateFilter(PollOther.text), ~F.text, ~MenuButton())
async def on_other_not_text(message: Message) -> None:
    await message.answer(_("Please type your answer as text, or send /cancel."))
