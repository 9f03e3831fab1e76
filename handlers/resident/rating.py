"""The resident judges the answer: the five scores, what could be better, sending the appeal back with their words
and photos, "Is the problem actually fixed?", and a new appeal prefilled when the appeal can no longer go back."""

from __future__ import annotations

import dataclasses
from contextlib import suppress

from aiogram import Bot, F
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import DialogManager

from bot import keyboards as kb
from bot.callbacks import FixCb, RateAction, RateCb
from bot.config import Settings
from bot.domain import FollowupAnswer
from bot.i18n import N_
from bot.keyboards import MenuButton
from bot.services import Services
from bot.services.appeals import DraftAttachment
from bot.services.ratings import LIMITS, RatingRefused
from bot.services.users import Actor
from bot.states import ResidentRate
from handlers import Handlers
from handlers.common.cancel import BUTTONS
from handlers.resident import filing
from handlers.resident.clarification import remember_buttons
from handlers.resident.steps import draft_in_progress, take_file, take_text

router = Handlers(__name__)

# RatingRefused, by its detail: what the popup says.
WHY = {
    "score": N_("There is no such rating. Choose from 1 to 5."),
    "not_answered": N_("This appeal has no answer to rate yet."),
    "already_rated": N_("You have already rated this answer."),
    "not_rated": N_("Please rate the answer first."),
    "not_asked": N_("This question is no longer open."),
    "answer": N_("This button is no longer active."),
    "text_length": N_("This text cannot be accepted."),
    "earlier_answer": N_(
        "These buttons are for an earlier answer. The appeal has a newer one: rate it from its message or from "
        "«📋 My appeals»."
    ),
}


def button(text: str, action: RateAction, appeal_id: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=RateCb(action=action, id=appeal_id).pack())


def popup(callback_answer: CallbackAnswer, error: RatingRefused) -> None:
    callback_answer.text = _(WHY.get(error.detail, N_("This action is not possible now.")))
    callback_answer.show_alert = True


async def past_limits(message: Message, error: RatingRefused, appeal_id: int, settings: Settings) -> None:
    """The appeal cannot go back any more: say why, and offer a new appeal about the same problem."""
    config = settings.ratings
    if error.detail == "reopen_days":
        why = _("An appeal can be sent back within {days} days of the answer, and that time has passed.").format(
            days=config.reopen_days
        )
    else:
        why = _("This appeal has already been sent back {count} times, the most there can be.").format(
            count=config.max_reopens
        )
    markup = InlineKeyboardMarkup(inline_keyboard=[[button(_("📝 File a new appeal"), RateAction.refile, appeal_id)]])
    await message.answer(
        why
        + "\n\n"
        + _(
            "You can file a new appeal about the problem: the topic and the place are filled in from this one, "
            "you only describe what is wrong now."
        ),
        reply_markup=markup,
    )


# --- the score ------------------------------------------------------------------------------------------


@router.callback_query(RateCb.filter(F.action == RateAction.score))
async def on_score(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: RateCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
) -> None:
    try:
        rated = await services.ratings.rate(actor, callback_data.id, callback_data.v, callback_data.n)
    except RatingRefused as error:
        popup(callback_answer, error)
        return
    if rated.same:
        callback_answer.text = _("Your rating is already {score} of 5.").format(score=rated.score)
        if not rated.ask_reopen:
            return
    else:
        callback_answer.text = _("Thank you! Your rating: {score} of 5.").format(score=rated.score)
    if not isinstance(callback.message, Message):
        return
    message = callback.message
    changed = _("Your rating is changed to {score} of 5.").format(score=rated.score) + "\n" if rated.changed else ""
    if rated.ask_reopen:
        markup = InlineKeyboardMarkup(
            inline_keyboard=[
                [button(_("🔁 Yes, send it back"), RateAction.reopen, callback_data.id)],
                [button(_("No, close the appeal"), RateAction.keep, callback_data.id)],
            ]
        )
        await message.answer(
            changed
            + _("We are sorry the answer to appeal № {number} did not help. Send it back for another review?").format(
                number=rated.number
            ),
            reply_markup=markup,
        )
        return
    closed = _("Thank you for your rating! Appeal № {number} is closed.").format(number=rated.number)
    if rated.score > 3 or await draft_in_progress(state):  # a draft of another step is not thrown away for a comment
        await message.answer(changed + closed, reply_markup=comment_offer(callback_data.id))
        return
    await state.set_state(ResidentRate.comment)
    await state.set_data({"appeal_id": callback_data.id})
    sent = await message.answer(
        changed
        + closed
        + "\n\n"
        + _("What could have been better? Write a few words, or press «Skip»."),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button(_("⏭ Skip"), RateAction.skip, callback_data.id)]]),
    )
    await remember_buttons(state, sent)


@router.callback_query(RateCb.filter(F.action == RateAction.ask))
async def ask_again(
    callback: CallbackQuery, callback_answer: CallbackAnswer, callback_data: RateCb, actor: Actor, services: Services
) -> None:
    """From the card: the rating buttons again, for a resident who lost the message."""
    try:
        number = await services.ratings.check(actor, callback_data.id)
    except RatingRefused as error:
        popup(callback_answer, error)
        return
    if isinstance(callback.message, Message):
        await callback.message.answer(
            _("How helpful was the answer to your appeal № {number}? Please rate it:").format(number=number),
            reply_markup=kb.rating(callback_data.id),
        )


# --- a comment: what could be better (asked after a 3), or offered after any other score ---------------


def comment_offer(appeal_id: int) -> InlineKeyboardMarkup:
    """«Add a comment» under the closing words: optional, the resident may just go on."""
    return InlineKeyboardMarkup(inline_keyboard=[[button(_("💬 Add a comment"), RateAction.comment, appeal_id)]])


@router.callback_query(RateCb.filter(F.action == RateAction.comment))
async def start_comment(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: RateCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
) -> None:
    try:
        number = await services.ratings.may_comment(actor, callback_data.id)
    except RatingRefused as error:
        popup(callback_answer, error)
        return
    busy = await draft_in_progress(state)
    if busy:
        callback_answer.text, callback_answer.show_alert = busy, True
        return
    await state.set_state(ResidentRate.comment)
    await state.set_data({"appeal_id": callback_data.id})
    if isinstance(callback.message, Message):
        sent = await callback.message.answer(
            _("Appeal № {number}: write your comment in one message, or press «Skip».").format(number=number),
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[button(_("⏭ Skip"), RateAction.skip, callback_data.id)]]
            ),
        )
        await remember_buttons(state, sent)



@router.message(ResidentRate.comment, F.text, ~F.text.startswith("/"), ~MenuButton())
async def on_comment(
    message: Message, state: FSMContext, actor: Actor, services: Services, settings: Settings, bot: Bot
) -> None:
    text = (message.text or "").strip()
    most = settings.limits.comment_max
    if len(text) > most:
        await message.answer(
            _("The comment is too long: {count} characters, at most {max}. Please shorten it.").format(
                count=len(text), max=most
            )
        )
        return
    data = await state.get_data()
    try:
        await services.ratings.comment(actor, int(data["appeal_id"]), text)
    except RatingRefused as error:
        await state.clear()
        await message.answer(_(WHY.get(error.detail, WHY["already_rated"])), reply_markup=kb.main_menu())
        return
    await state.clear()
    # The question's «Skip» is over too.
    for message_id in data.get(BUTTONS, []):
        with suppress(TelegramBadRequest):  # deleted by the person, or already without buttons
            await bot.edit_message_reply_markup(chat_id=message.chat.id, message_id=int(message_id), reply_markup=None)
    await message.answer(_("Thank you, your comment is passed on."), reply_markup=kb.main_menu())


@router.message(ResidentRate.comment, ~F.text.startswith("/"), ~MenuButton())
async def comment_wrong(message: Message) -> None:
    await message.answer(_("Please write the comment as text, or press «Skip»."))


@router.callback_query(RateCb.filter(F.action == RateAction.skip))
async def skip_comment(
    callback: CallbackQuery, callback_answer: CallbackAnswer, callback_data: RateCb, state: FSMContext
) -> None:
    data = await state.get_data()
    if await state.get_state() != ResidentRate.comment or data.get("appeal_id") != callback_data.id:
        callback_answer.text = _("This button is no longer active.")
        callback_answer.show_alert = True
        return
    await state.clear()
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await callback.message.answer(_("Thank you!"), reply_markup=kb.main_menu())


# --- send it back? --------------------------------------------------------------------------------------


@router.callback_query(RateCb.filter(F.action == RateAction.keep))
async def keep_closed(
    callback: CallbackQuery, callback_answer: CallbackAnswer, callback_data: RateCb, actor: Actor, services: Services
) -> None:
    try:
        number = await services.ratings.keep(actor, callback_data.id)
    except RatingRefused as error:
        popup(callback_answer, error)
        return
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await callback.message.answer(
            _("Appeal № {number} is closed; your rating is kept. Thank you.").format(number=number),
            reply_markup=comment_offer(callback_data.id),
        )


@router.callback_query(RateCb.filter(F.action == RateAction.reopen))
async def start_reopen(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: RateCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
    settings: Settings,
) -> None:
    await ask_why(callback, callback_answer, callback_data.id, False, state, actor, services, settings)


@router.callback_query(FixCb.filter())
async def on_followup(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: FixCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
    settings: Settings,
) -> None:
    """"Is the problem actually fixed?": Yes and Don't know are kept; No sends the appeal back (the same limits)."""
    if callback_data.answer == FollowupAnswer.no:
        await ask_why(callback, callback_answer, callback_data.id, True, state, actor, services, settings)
        return
    try:
        await services.ratings.answer_followup(actor, callback_data.id, callback_data.answer)
    except RatingRefused as error:
        popup(callback_answer, error)
        return
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await callback.message.answer(_("Thank you, your answer is saved."), reply_markup=kb.main_menu())


async def ask_why(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    appeal_id: int,
    followup: bool,
    state: FSMContext,
    actor: Actor,
    services: Services,
    settings: Settings,
) -> None:
    """Within the limits: the resident writes what is still wrong; past them: how to file a new appeal."""
    message = callback.message if isinstance(callback.message, Message) else None
    try:
        number = await services.ratings.may_reopen(actor, appeal_id, followup)
    except RatingRefused as error:
        if error.detail in LIMITS and message is not None:
            await past_limits(message, error, appeal_id, settings)
            return
        popup(callback_answer, error)
        return
    data = await state.get_data()
    if await state.get_state() == ResidentRate.reopen.state and data.get("appeal_id") == appeal_id:
        callback_answer.text = _("Describe what is still wrong, then press «📤 Send back».")
        return  # already writing it: what was typed stays
    busy = await draft_in_progress(state)
    if busy:
        callback_answer.text, callback_answer.show_alert = busy, True
        return
    await state.set_state(ResidentRate.reopen)
    await state.set_data({"appeal_id": appeal_id, "followup": followup, "text": "", "files": []})
    if message is not None:
        # The question keeps its buttons: after /cancel the resident can still answer it.
        await message.answer(
            _(
                "Appeal № {number}: describe what is still wrong in one message. You may add photos. Then press "
                "«Send back». /cancel to stop."
            ).format(number=number)
        )


def send_keyboard(appeal_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[button(_("📤 Send back"), RateAction.send, appeal_id)]])


@router.message(ResidentRate.reopen, F.text, ~F.text.startswith("/"), ~MenuButton())
async def reopen_text(message: Message, state: FSMContext, settings: Settings) -> None:
    too_long = _("The text is too long: {count} characters, at most {max}. Please shorten it.")
    data = await take_text(message, state, settings.limits.text_max, too_long)
    if data is None:
        return
    sent = await message.answer(
        _("Text saved. Add photos or press «Send back»."), reply_markup=send_keyboard(int(data["appeal_id"]))
    )
    await remember_buttons(state, sent)


@router.message(ResidentRate.reopen, F.photo)
async def reopen_photo(message: Message, state: FSMContext, settings: Settings) -> None:
    most = settings.limits.attachments_max
    taken = await take_file(message, state, most)
    if taken is None:
        return
    data, count = taken
    caption = (message.caption or "").strip()
    if caption and not data.get("text") and len(caption) <= settings.limits.text_max:
        await state.update_data(text=caption)  # a photo's caption is the resident's words when none were typed
    if not message.media_group_id or count == 1:
        sent = await message.answer(
            _("📎 Photos attached: {count} of {max}.").format(count=count, max=most),
            reply_markup=send_keyboard(int(data["appeal_id"])),
        )
        await remember_buttons(state, sent)


@router.message(ResidentRate.reopen, ~F.text.startswith("/"), ~MenuButton())
async def reopen_wrong(message: Message) -> None:
    await message.answer(_("Please describe what is wrong as text; you may add photos."))


@router.callback_query(RateCb.filter(F.action == RateAction.send))
async def send_back(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: RateCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
    settings: Settings,
) -> None:
    data = await state.get_data()
    if await state.get_state() != ResidentRate.reopen or callback_data.id != data.get("appeal_id"):
        callback_answer.text = _("This button is no longer active.")
        callback_answer.show_alert = True
        return
    if not data.get("text"):
        callback_answer.text = _("Please describe what is wrong first.")
        callback_answer.show_alert = True
        return
    files = [DraftAttachment(k, f, u) for k, f, u in data.get("files", [])]
    message = callback.message if isinstance(callback.message, Message) else None
    try:
        number = await services.ratings.reopen(
            actor, callback_data.id, data["text"], files, followup=bool(data.get("followup"))
        )
    except RatingRefused as error:
        await state.clear()
        if error.detail in LIMITS and message is not None:
            await past_limits(message, error, callback_data.id, settings)
            return
        popup(callback_answer, error)
        return
    await state.clear()
    if message is not None:
        await message.edit_reply_markup(reply_markup=None)
        await message.answer(
            _(
                "Appeal № {number} is sent back for another review. The Regional Management Center will look at it "
                "again; you will be told of every change."
            ).format(number=number),
            reply_markup=kb.main_menu(),
        )


# --- a new appeal about the same problem ------------------------------------------------------------------


@router.callback_query(RateCb.filter(F.action == RateAction.refile))
async def refile(
    callback: CallbackQuery,
    callback_data: RateCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
    dialog_manager: DialogManager,
) -> None:
    prefill = await services.ratings.refile(actor, callback_data.id)
    await state.clear()
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await callback.message.answer(_("New appeal. You can stop at any time with /cancel."))
    await filing.start_prefilled(dialog_manager, dataclasses.asdict(prefill))


# --- the card -------------------------------------------------------------------------------------------


async def card_extras(actor: Actor, services: Services, appeal_id: int) -> tuple[str, InlineKeyboardButton | None]:
    """The resident's card: their rating of the current answer; «Rate the answer» while it can be rated, or «Send
    it back» while a low-rated answer's appeal may still go back (past the limits, nothing is said of it)."""
    view = await services.ratings.view(actor, appeal_id)
    line = ""
    if view.score is not None and view.earlier:
        line = _("<b>Your rating of the previous answer:</b> {score} of 5").format(score=view.score)
    elif view.score is not None:
        line = _("<b>Your rating:</b> {score} of 5").format(score=view.score)
    action: InlineKeyboardButton | None = None
    if view.can_rate and view.score is None:
        action = button(_("⭐ Rate the answer"), RateAction.ask, appeal_id)
    elif view.can_reopen:
        action = button(_("🔁 Send it back"), RateAction.reopen, appeal_id)
    return line, action
