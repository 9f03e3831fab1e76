"""The staff card of an appeal and every action on it."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import StaffAction, StaffCb
from bot.clock import Clock
from bot.config import Settings
from bot.domain import AGENCY_ROLES, AppealKind, RejectReason
from bot.notifications import REASONS
from bot.services import Services
from bot.services.appeals import DraftAttachment
from bot.services.errors import Forbidden, InvalidInput, NotFound
from bot.services.users import Actor
from bot.services.views import StaffCard
from bot.states import StaffInput
from handlers import Handlers
from handlers.media import extract_media, send_files
from handlers.staff.render import card_keyboard, card_text, reply

router = Handlers(__name__)


def prompt(key: str, settings: Settings) -> str:
    texts = {
        "clarify": _("Type the question to the resident:"),
        "interim": _("Type the interim answer for the resident:"),
        "duplicate": _("Type the number of the original appeal (e.g. 2026-000123):"),
        "return": _("Type what must be reworked in the answer:"),
        "redirect": _("Type the reason for the redirect:"),
        "extension_days": _("By how many days (1–{days})?").format(days=settings.limits.extension_max_days),
        "extension_reason": _("Type the reason for the extension:"),
        "answer": _("Type the final answer to the resident:"),
    }
    return texts[key] + "\n" + _("/cancel to stop.")


async def show_card(
    message: Message, appeal_id: int, actor: Actor, services: Services, settings: Settings, clock: Clock
) -> None:
    card = await services.views.card(actor, appeal_id)
    await send_card(message, card, actor, services, settings, clock)


async def send_card(
    message: Message, card: StaffCard, actor: Actor, services: Services, settings: Settings, clock: Clock
) -> None:
    await message.answer(
        card_text(card, services.directory, actor, clock.now(), settings.tz),
        reply_markup=card_keyboard(card, services.directory, actor),
    )
    if card.latitude is not None and card.longitude is not None:
        await message.answer_location(card.latitude, card.longitude)


@router.callback_query(StaffCb.filter((F.action == StaffAction.open) & (F.id != 0)))
async def open_card(
    callback: CallbackQuery, callback_data: StaffCb, actor: Actor, services: Services, settings: Settings, clock: Clock
) -> None:
    if not isinstance(callback.message, Message):
        return
    card = await services.views.card(actor, callback_data.id)
    await send_card(callback.message, card, actor, services, settings, clock)


@router.callback_query(StaffCb.filter(F.action == StaffAction.files))
async def files(callback: CallbackQuery, callback_data: StaffCb, actor: Actor, services: Services) -> None:
    card = await services.views.card(actor, callback_data.id)
    if isinstance(callback.message, Message):
        all_files = [*card.attachments, *(f for n in card.notes for f in n.attachments)]
        await send_files(callback.message, all_files)


async def act(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    action: Any,
    done: str,
    actor: Actor,
    services: Services,
    settings: Settings,
    clock: Clock,
    appeal_id: int,
) -> None:
    """Run a service action; on success say so and show the card as it is now."""
    await action
    callback_answer.text = done
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await show_card(callback.message, appeal_id, actor, services, settings, clock)


def button_action(actor: Actor, services: Services, data: StaffCb) -> tuple[Awaitable[Any], str]:
    """The buttons that act at once: the service call and what to say when it worked."""
    coordination, agency = services.coordination, services.agency
    match data.action:
        case StaffAction.route:
            return coordination.route(actor, data.id), _("Sent to the agency.")
        case StaffAction.route_to:
            return coordination.route(actor, data.id, data.v), _("Sent to the agency.")
        case StaffAction.set_category:
            return coordination.change(actor, data.id, category_id=data.v), _("Category changed.")
        case StaffAction.kind:
            kind = AppealKind.appeal if data.v == 1 else AppealKind.message
            return coordination.change(actor, data.id, kind=kind), _("Kind changed.")
        case StaffAction.reject_reason:
            return coordination.reject(actor, data.id, data.s), _("Rejected.")
        case StaffAction.take:
            return agency.take(actor, data.id), _("Taken in work.")
        case StaffAction.approve:
            return coordination.review(actor, data.id, True), _("Approved: the resident receives the answer.")
        case _:  # StaffAction.decide: v is the request, s is y or n
            approve = data.s == "y"
            return coordination.decide(actor, data.v, approve), _("Approved.") if approve else _("Declined.")


BUTTON_ACTIONS = {
    StaffAction.route,
    StaffAction.route_to,
    StaffAction.set_category,
    StaffAction.kind,
    StaffAction.reject_reason,
    StaffAction.take,
    StaffAction.approve,
    StaffAction.decide,
}


@router.callback_query(StaffCb.filter(F.action.in_(BUTTON_ACTIONS)))
async def button(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: StaffCb,
    actor: Actor,
    services: Services,
    settings: Settings,
    clock: Clock,
) -> None:
    action, done = button_action(actor, services, callback_data)
    await act(callback, callback_answer, action, done, actor, services, settings, clock, callback_data.id)


def agency_list(
    appeal_id: int, action: StaffAction, services: Services, actor: Actor, exclude: int | None = None
) -> InlineKeyboardMarkup:
    b = InlineKeyboardBuilder()
    for agency in services.directory.agencies():
        if agency.id != exclude:
            b.button(text=agency.name(actor.lang), callback_data=StaffCb(action=action, id=appeal_id, v=agency.id))
    b.adjust(2)
    return b.as_markup()


@router.callback_query(StaffCb.filter(F.action == StaffAction.agencies))
async def choose_agency(callback: CallbackQuery, callback_data: StaffCb, actor: Actor, services: Services) -> None:
    if not actor.has("coordinator", "admin"):
        raise NotFound()
    await reply(callback, _("Choose the agency:"), agency_list(callback_data.id, StaffAction.route_to, services, actor))


@router.callback_query(StaffCb.filter(F.action == StaffAction.category))
async def choose_category(callback: CallbackQuery, callback_data: StaffCb, actor: Actor, services: Services) -> None:
    b = InlineKeyboardBuilder()
    if callback_data.v == 0:
        for block in services.directory.blocks():
            b.button(
                text=block.name(actor.lang),
                callback_data=StaffCb(action=StaffAction.category, id=callback_data.id, v=block.id),
            )
    else:
        for category in services.directory.categories(callback_data.v):
            b.button(
                text=category.name(actor.lang),
                callback_data=StaffCb(action=StaffAction.set_category, id=callback_data.id, v=category.id),
            )
    b.adjust(1)
    await reply(callback, _("Choose the category:"), b)


@router.callback_query(StaffCb.filter((F.action == StaffAction.reject) & (F.s == "")))
async def choose_reason(callback: CallbackQuery, callback_data: StaffCb) -> None:
    b = InlineKeyboardBuilder()
    for code in RejectReason:
        b.button(
            text=_(REASONS[code]), callback_data=StaffCb(action=StaffAction.reject_reason, id=callback_data.id, s=code)
        )
    b.adjust(1)
    await reply(callback, _("Why is it left without consideration? The resident receives this explanation."), b)


@router.callback_query(StaffCb.filter(F.action == StaffAction.redirect))
async def choose_redirect(callback: CallbackQuery, callback_data: StaffCb, actor: Actor, services: Services) -> None:
    if not actor.has(*AGENCY_ROLES):
        raise NotFound()
    await reply(
        callback,
        _("To which agency should it go?"),
        agency_list(callback_data.id, StaffAction.redirect_to, services, actor, exclude=actor.agency_id),
    )


# --- actions that need typed input ----------------------------------------------------------------

INPUT_ACTIONS = {
    StaffAction.clarify: "clarify",
    StaffAction.interim: "interim",
    StaffAction.duplicate: "duplicate",
    StaffAction.send_back: "return",
    StaffAction.redirect_to: "redirect",
    StaffAction.extension: "extension_days",
    StaffAction.answer: "answer",
}


@router.callback_query(StaffCb.filter(F.action.in_(set(INPUT_ACTIONS)) & (F.s == "")))
async def ask_input(
    callback: CallbackQuery,
    callback_data: StaffCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
    settings: Settings,
) -> None:
    # Check access before asking anything: a forged button must not even open the prompt.
    await services.views.card(actor, callback_data.id)
    key = INPUT_ACTIONS[callback_data.action]
    await state.set_state(StaffInput.text)
    await state.set_data({"act": key, "appeal_id": callback_data.id, "agency_id": callback_data.v, "files": []})
    await reply(callback, prompt(key, settings))


@router.message(StaffInput.text, F.text, ~F.text.startswith("/"))
async def typed(
    message: Message, state: FSMContext, actor: Actor, services: Services, settings: Settings, clock: Clock
) -> None:
    data = await state.get_data()
    key, appeal_id, text = data["act"], int(data["appeal_id"]), (message.text or "").strip()
    coordination, agency = services.coordination, services.agency
    if key == "extension_days":
        most = settings.limits.extension_max_days
        if not text.isdigit() or not 1 <= int(text) <= most:
            await message.answer(_("Please type a number from 1 to {max}.").format(max=most))
            return
        await state.update_data(act="extension_reason", days=int(text))
        await message.answer(prompt("extension_reason", settings))
        return
    if key == "answer":
        await state.update_data(text=text)
        await state.set_state(StaffInput.answer_files)
        await message.answer(
            _("Attach photos or documents to the answer if needed, then press «Send»."),
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[
                    [
                        InlineKeyboardButton(
                            text=_("📤 Send"),
                            callback_data=StaffCb(action=StaffAction.answer, id=appeal_id, s="send").pack(),
                        )
                    ]
                ]
            ),
        )
        return
    actions = {
        "clarify": lambda: agency.ask_clarification(actor, appeal_id, text),
        "interim": lambda: agency.interim(actor, appeal_id, text),
        "duplicate": lambda: coordination.mark_duplicate(actor, appeal_id, text),
        "return": lambda: coordination.review(actor, appeal_id, False, text),
        "redirect": lambda: agency.request_redirect(actor, appeal_id, int(data["agency_id"]), text),
        "extension_reason": lambda: agency.request_extension(actor, appeal_id, int(data["days"]), text),
    }
    try:
        await actions[key]()
    except InvalidInput as error:
        if key == "duplicate" and error.detail == "original":
            await message.answer(_("No such appeal to be the original. Type its number, e.g. 2026-000123."))
            return
        await state.clear()
        await message.answer(_("This action is not possible now."))
        return
    except (NotFound, Forbidden):
        await state.clear()  # the refusal itself is said by ServiceErrorMiddleware
        raise
    await state.clear()
    await message.answer(_("Done."))
    await show_card(message, appeal_id, actor, services, settings, clock)


@router.message(StaffInput.answer_files, F.photo | F.document | F.video)
async def answer_file(message: Message, state: FSMContext) -> None:
    media = extract_media(message)
    if media is None:
        return
    data = await state.get_data()
    files = [*data.get("files", []), [media.kind, media.file_id, media.file_unique_id]][:10]
    await state.update_data(files=files)
    if not message.media_group_id:
        await message.answer(_("📎 Files attached: {count} of {max}.").format(count=len(files), max=10))


@router.callback_query(StaffInput.answer_files, StaffCb.filter((F.action == StaffAction.answer) & (F.s == "send")))
async def send_answer(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: StaffCb,
    state: FSMContext,
    actor: Actor,
    services: Services,
    settings: Settings,
    clock: Clock,
) -> None:
    data = await state.get_data()
    if int(data.get("appeal_id", 0)) != callback_data.id:
        callback_answer.text = _("This button is no longer active.")
        callback_answer.show_alert = True
        return
    files = [DraftAttachment(k, f, u) for k, f, u in data.get("files", [])]
    await state.clear()
    await act(
        callback,
        callback_answer,
        services.agency.answer(actor, callback_data.id, data.get("text", ""), files),
        _("The answer went to the ЦУР for a check."),
        actor,
        services,
        settings,
        clock,
        callback_data.id,
    )


@router.message(StaffInput.text, ~F.text.startswith("/"))
@router.message(StaffInput.answer_files, ~F.text.startswith("/"))
async def wrong_input(message: Message) -> None:
    await message.answer(_("Please type the text, or /cancel."))
