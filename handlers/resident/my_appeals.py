"""«My appeals»: a paginated list, newest first, and the card of each appeal."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import MyAction, MyCb
from bot.clock import Clock
from bot.config import Settings
from bot.keyboards import MenuButton
from bot.services import Services
from bot.services.appeals import AppealPage
from bot.services.users import Actor
from bot.texts import local_date, status_name
from handlers import Handlers
from handlers.media import send_files
from handlers.resident import rating, render
from handlers.resident.steps import leave_optional

router = Handlers(__name__)


def list_view(page: AppealPage, settings: Settings, consent: bool = True) -> tuple[str, InlineKeyboardMarkup | None]:
    if not page.total and not consent:  # never consented, or withdrew it: no menu to file from (QA)
        return _(
            "You have no appeals. To file one, send /start and give your consent to the processing of personal data."
        ), None
    if not page.total:
        return _("You have no appeals yet. Press «📝 File an appeal» to send one."), None
    text = _("<b>Your appeals</b>: {total} in all. Page {page} of {pages}.").format(
        total=page.total, page=page.page + 1, pages=page.pages
    )
    builder = InlineKeyboardBuilder()
    for item in page.items:
        label = f"№ {item.number} · {local_date(item.created_at, settings.tz)} · {status_name(item.status)}"
        builder.button(text=label, callback_data=MyCb(action=MyAction.open, id=item.id, page=page.page))
    builder.adjust(1)
    nav = []
    if page.page > 0:
        nav.append(InlineKeyboardButton(text="◀️", callback_data=MyCb(action=MyAction.page, page=page.page - 1).pack()))
    if page.page + 1 < page.pages:
        nav.append(InlineKeyboardButton(text="▶️", callback_data=MyCb(action=MyAction.page, page=page.page + 1).pack()))
    if nav:
        builder.row(*nav)
    return text, builder.as_markup()


@router.message(Command("my"))
@router.message(MenuButton("mine"))
async def my_appeals(message: Message, state: FSMContext, actor: Actor, services: Services, settings: Settings) -> None:
    await leave_optional(state)
    text, markup = list_view(await services.appeals.list_mine(actor, 0), settings, actor.has_consent or actor.is_staff)
    await message.answer(text, reply_markup=markup)


@router.callback_query(MyCb.filter(F.action == MyAction.page))
async def turn_page(
    callback: CallbackQuery, callback_data: MyCb, actor: Actor, services: Services, settings: Settings
) -> None:
    text, markup = list_view(await services.appeals.list_mine(actor, callback_data.page), settings)
    if isinstance(callback.message, Message):
        if callback.message.html_text == text and callback.message.reply_markup == markup:
            return
        await callback.message.edit_text(text, reply_markup=markup)


@router.callback_query(MyCb.filter(F.action == MyAction.open))
async def open_card(
    callback: CallbackQuery, callback_data: MyCb, actor: Actor, services: Services, settings: Settings, clock: Clock
) -> None:
    appeal = await services.appeals.card_for_resident(actor, callback_data.id)
    rating_line, rate_button = await rating.card_extras(actor, services, appeal.id)
    builder = InlineKeyboardBuilder()
    if rate_button is not None:
        builder.add(rate_button)
    if appeal.attachments:
        builder.button(
            text=_("📎 Show files ({count})").format(count=len(appeal.attachments)),
            callback_data=MyCb(action=MyAction.media, id=appeal.id),
        )
    builder.button(text=_("⬅️ To the list"), callback_data=MyCb(action=MyAction.page, page=callback_data.page))
    builder.adjust(1)
    if isinstance(callback.message, Message):
        text = render.card(appeal, services.directory, actor.lang, settings.tz, clock.now())
        await callback.message.answer(
            text + ("\n\n" + rating_line if rating_line else ""),
            reply_markup=builder.as_markup(),
        )


@router.callback_query(MyCb.filter(F.action == MyAction.media))
async def show_media(callback: CallbackQuery, callback_data: MyCb, actor: Actor, services: Services) -> None:
    appeal = await services.appeals.card_for_resident(actor, callback_data.id)
    if not isinstance(callback.message, Message):
        return
    await send_files(callback.message, appeal.attachments)
