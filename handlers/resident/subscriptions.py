"""/subscriptions: a resident chooses the news they get (thematic blocks, districts, or none), and «🔕 Unsubscribe from
such news» under a broadcast item, with «↩️ Undo».

The screen is one message edited in place, with typed callback data (bot.callbacks.SubsCb) and no FSM state: what it
shows is read from the database on every press, so it survives restarts, works on any instance, and opening it in
the middle of filing an appeal loses nothing of the draft. A toggle asks for the state its button showed, so a
press on an old copy of the screen sets, never flips. Typed text is not taken here: it goes where it would go
anyway (the fallback, or a step in progress)."""

from __future__ import annotations

from contextlib import suppress
from html import escape

from aiogram import Bot, F
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import keyboards as kb
from bot.callbacks import NewsAction, NewsCb, NewsUndoCb, SubsAction, SubsCb
from bot.i18n import N_
from bot.services import Services
from bot.services.directory import DirectoryService
from bot.services.errors import ConsentRequired
from bot.services.subscriptions import NewsChange, NewsChoices, NewsRefused
from bot.services.users import Actor
from handlers import Handlers
from handlers.dialogs import BUTTON_CHARS, width
from handlers.resident.steps import leave_optional

router = Handlers(__name__)

ON, OFF = "✅", "▫️"
REFUSALS = {
    "staff": N_("News broadcasts go to residents only: staff accounts do not get them, so there is nothing to choose."),
    "unknown_broadcast": N_("This news item is unknown, so nothing was changed. Your choice of news: /subscriptions"),
}


def refused(error: NewsRefused) -> str:
    return _(REFUSALS.get(error.detail, REFUSALS["unknown_broadcast"]))


# --- the screens ---------------------------------------------------------------------------------------------


def district_names(choices: NewsChoices, directory: DirectoryService, lang: str) -> list[str]:
    """In the directory's order."""
    return [d.name(lang) for d in directory.districts() if d.id in choices.districts]


def districts_button(names: list[str]) -> str:
    """«📍 Districts: …», the names cut to fit a button."""
    label = _("📍 Districts: {names}").format(names=", ".join(names) if names else _("none chosen"))
    if width(label) <= BUTTON_CHARS:
        return label
    return _("📍 Districts: {names}").format(names=_("{count} chosen").format(count=len(names)))


def main_view(choices: NewsChoices, directory: DirectoryService, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    names = district_names(choices, directory, lang)
    lines = [
        _("<b>📰 News from the ЦУР</b>"),
        _(
            "Choose the topics and the districts you want news about. Messages about your own appeals, ratings "
            "and polls are not affected: they always come."
        ),
    ]
    if names:
        where = ", ".join(escape(name) for name in names)
        if not choices.districts_chosen:
            where = _("{districts} (the district of your latest appeal)").format(districts=where)
    else:
        where = _("none chosen")
    lines.append(_("📍 Districts: {districts}. News for the whole region comes in any case.").format(districts=where))
    if choices.stopped:
        lines.append(_("🔕 <b>News is stopped</b>: you get no broadcasts. Press «🔔 Resume news» to get them again."))
    else:
        lines.append(_("Topics: {on} you get news about it, {off} you do not. Press one to change it.").format(on=ON, off=OFF))
    builder = InlineKeyboardBuilder()
    for block in directory.blocks():
        on = choices.block_on(block.id)
        builder.button(
            text=f"{ON if on else OFF} {block.name(lang)}", callback_data=SubsCb(a=SubsAction.block, id=block.id, on=not on)
        )
    builder.button(text=districts_button(names), callback_data=SubsCb(a=SubsAction.districts))
    if choices.stopped:
        builder.button(text=_("🔔 Resume news"), callback_data=SubsCb(a=SubsAction.resume))
    else:
        builder.button(text=_("🔕 Stop all news"), callback_data=SubsCb(a=SubsAction.stop))
    builder.adjust(1)
    return "\n\n".join(lines), builder.as_markup()


def districts_view(choices: NewsChoices, directory: DirectoryService, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    lines = [
        _("<b>📍 Districts</b>"),
        _(
            "Choose the districts whose news you want: {on} chosen, {off} not. News for the whole region comes "
            "in any case."
        ).format(on=ON, off=OFF),
    ]
    if not choices.districts_chosen and choices.appeal_district is not None:
        lines.append(_("The district of your latest appeal is chosen until you change it."))
    builder = InlineKeyboardBuilder()
    for district in directory.districts():
        on = district.id in choices.districts
        builder.button(
            text=f"{ON if on else OFF} {district.name(lang)}",
            callback_data=SubsCb(a=SubsAction.district, id=district.id, on=not on),
        )
    builder.adjust(2)
    builder.row(InlineKeyboardButton(text=_("⬅️ Back"), callback_data=SubsCb(a=SubsAction.main).pack()))
    return "\n\n".join(lines), builder.as_markup()


async def show(callback: CallbackQuery, view: tuple[str, InlineKeyboardMarkup]) -> None:
    if not isinstance(callback.message, Message):
        return
    text, markup = view
    with suppress(TelegramBadRequest):  # unchanged (a press that set what was already set) or deleted by the person
        await callback.message.edit_text(text, reply_markup=markup)


# --- /subscriptions ------------------------------------------------------------------------------------------


@router.message(Command("subscriptions"))
async def open_screen(message: Message, state: FSMContext, actor: Actor, services: Services) -> None:
    await leave_optional(state)
    try:
        choices = await services.subscriptions.choices(actor)
    except ConsentRequired:
        await message.answer(
            _("To choose your news, please accept the consent to the processing of personal data first."),
            reply_markup=kb.consent_again(),
        )
        return
    except NewsRefused as error:
        await message.answer(refused(error))
        return
    text, markup = main_view(choices, services.directory, actor.lang)
    await message.answer(text, reply_markup=markup)


@router.callback_query(SubsCb.filter())
async def on_press(
    callback: CallbackQuery, callback_data: SubsCb, callback_answer: CallbackAnswer, actor: Actor, services: Services
) -> None:
    subs, action = services.subscriptions, callback_data.a
    try:
        if action == SubsAction.block:
            choices = await subs.set_block(actor, callback_data.id, callback_data.on)
        elif action == SubsAction.district:
            choices = await subs.set_district(actor, callback_data.id, callback_data.on)
        elif action in (SubsAction.stop, SubsAction.resume):
            choices = await subs.set_stopped(actor, action == SubsAction.stop)
            callback_answer.text = (
                _("News stopped. Messages about your own appeals, ratings and polls still come.")
                if choices.stopped
                else _("News resumed.")
            )
        else:
            choices = await subs.choices(actor)
    except NewsRefused as error:
        callback_answer.text, callback_answer.show_alert = refused(error), True
        return
    picker = action in (SubsAction.district, SubsAction.districts)
    view = districts_view if picker else main_view
    await show(callback, view(choices, services.directory, actor.lang))


# --- under a broadcast item ----------------------------------------------------------------------------------


def topic(change: NewsChange, directory: DirectoryService, lang: str) -> str:
    block = directory.block(change.block_id) if change.block_id is not None else None
    return escape(block.name(lang)) if block is not None else _("this topic")


def places(ids: frozenset[int] | tuple[int, ...], directory: DirectoryService, lang: str) -> str:
    """District names, in the directory's order."""
    return ", ".join(escape(d.name(lang)) for d in directory.districts() if d.id in ids)


def unsubscribed(change: NewsChange, directory: DirectoryService, lang: str) -> tuple[str, bool]:
    """The answer to «Unsubscribe from such news»: (text, True) for a message with «Undo», (text, False) for a popup
    (nothing changed)."""
    if change.block_id is not None:
        name = topic(change, directory, lang)
        if not change.changed:
            return _("News about «{topic}» is already off. To change what you get: /subscriptions").format(topic=name), False
        return _(
            "🔕 You will no longer get news about «{topic}». Other news, and messages about your own appeals, "
            "ratings and polls, still come. To change what you get: /subscriptions"
        ).format(topic=name), True
    if change.districts:
        if not change.changed:
            return _(
                "You already get no news for these districts: {districts}. To change what you get: /subscriptions"
            ).format(districts=places(change.districts, directory, lang)), False
        return _(
            "🔕 You will no longer get news for these districts: {districts}. News for the whole region and news "
            "on topics still come, and so do messages about your own appeals, ratings and polls. To change what "
            "you get: /subscriptions"
        ).format(districts=places(change.removed, directory, lang)), True
    if not change.changed:
        return _("News is already stopped. To get it again or choose topics: /subscriptions"), False
    return _(
        "🔕 You will no longer get news from the ЦУР. Messages about your own appeals, ratings and polls still "
        "come. To get news again or choose topics and districts: /subscriptions"
    ), True


def undone(change: NewsChange, directory: DirectoryService, lang: str) -> str:
    if change.block_id is not None:
        name = topic(change, directory, lang)
        if change.changed:
            return _("↩️ Undone: you get news about «{topic}» again. Your choice of news: /subscriptions").format(topic=name)
        return _("News about «{topic}» is already on. Your choice of news: /subscriptions").format(topic=name)
    if change.districts:
        names = places(change.removed, directory, lang)
        if change.changed:
            return _("↩️ Undone: you get news for these districts again: {districts}. Your choice of news: /subscriptions").format(
                districts=names
            )
        return _("Nothing to undo: your districts are as they were. Your choice of news: /subscriptions")
    if change.changed:
        return _("↩️ Undone: you get news from the ЦУР again. Your choice of news: /subscriptions")
    return _("News is already on. Your choice of news: /subscriptions")


@router.callback_query(NewsCb.filter(F.a == NewsAction.unsubscribe))
async def unsubscribe(
    callback: CallbackQuery,
    callback_data: NewsCb,
    callback_answer: CallbackAnswer,
    actor: Actor,
    services: Services,
    bot: Bot,
) -> None:
    try:
        change = await services.subscriptions.unsubscribe(actor, callback_data.b)
    except NewsRefused as error:
        callback_answer.text, callback_answer.show_alert = refused(error), True
        return
    text, changed = unsubscribed(change, services.directory, actor.lang)
    if not changed:
        callback_answer.text, callback_answer.show_alert = text, True
        return
    data = NewsUndoCb(b=callback_data.b, m=format(change.undo_mask, "x") if change.undo_mask else "", d=change.was_default)
    undo = InlineKeyboardButton(text=_("↩️ Undo"), callback_data=data.pack())
    # To the person's chat (its id is theirs): the item itself may be too old for Telegram to show it here.
    await bot.send_message(callback.from_user.id, text, reply_markup=InlineKeyboardMarkup(inline_keyboard=[[undo]]))


@router.callback_query(NewsUndoCb.filter())
async def undo(
    callback: CallbackQuery, callback_data: NewsUndoCb, callback_answer: CallbackAnswer, actor: Actor, services: Services
) -> None:
    try:
        mask = int(callback_data.m or "0", 16)
        change = await services.subscriptions.undo(actor, callback_data.b, mask, callback_data.d)
    except NewsRefused as error:
        callback_answer.text, callback_answer.show_alert = refused(error), True
        return
    text = undone(change, services.directory, actor.lang)
    if not change.changed or not isinstance(callback.message, Message):  # no message to edit: say it in a popup
        callback_answer.text, callback_answer.show_alert = text, True
    if isinstance(callback.message, Message):
        with suppress(TelegramBadRequest):  # the same text already (a second press), or the message deleted
            await callback.message.edit_text(text, reply_markup=None)
