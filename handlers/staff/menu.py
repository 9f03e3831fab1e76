"""/staff: the menu of each role, and the lists: queue, reviews, requests, inbox."""

from __future__ import annotations

from datetime import datetime

from aiogram import F
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import AdminAction, AdminCb, StaffAction, StaffCb
from bot.clock import Clock
from bot.config import Settings
from bot.domain import AGENCY_ROLES, COORDINATING_ROLES, RequestKind, Role
from bot.services import Services
from bot.services.users import Actor
from bot.services.views import QueueItem
from bot.texts import local_date, status_name
from handlers import Handlers

router = Handlers(__name__)
LIST_QUEUE, LIST_REVIEWS, LIST_REQUESTS, LIST_INBOX = 1, 2, 3, 4


def staff_menu(actor: Actor) -> InlineKeyboardMarkup | None:
    b = InlineKeyboardBuilder()
    if actor.has(*COORDINATING_ROLES):
        b.button(text=_("📥 Queue"), callback_data=StaffCb(action=StaffAction.open, v=LIST_QUEUE))
        b.button(text=_("🧾 Answers to check"), callback_data=StaffCb(action=StaffAction.open, v=LIST_REVIEWS))
        b.button(text=_("📨 Requests"), callback_data=StaffCb(action=StaffAction.open, v=LIST_REQUESTS))
    if actor.has(*AGENCY_ROLES):
        b.button(text=_("📂 Inbox of my agency"), callback_data=StaffCb(action=StaffAction.open, v=LIST_INBOX))
    if actor.has(Role.admin):
        b.button(text=_("🔗 Invite"), callback_data=AdminCb(action=AdminAction.invite))
        b.button(text=_("👥 People"), callback_data=AdminCb(action=AdminAction.people))
        b.button(text=_("🗺 Routing"), callback_data=AdminCb(action=AdminAction.routes))
    b.adjust(1)
    markup = b.as_markup()
    return markup if markup.inline_keyboard else None


@router.message(Command("staff"))
async def show_menu(message: Message, actor: Actor) -> None:
    markup = staff_menu(actor)
    if markup is None:
        await message.answer(_("This menu is for the staff of the ЦУР and the agencies."))
        return
    await message.answer(_("What do you want to do?"), reply_markup=markup)


def item_label(item: QueueItem, now: datetime, settings: Settings) -> str:
    label = f"№ {item.number} · {status_name(item.status)}"
    if item.deadline_at is not None:
        label += f" · {local_date(item.deadline_at, settings.tz)}"
        if item.deadline_at < now:
            label = "⚠️ " + label
    return label


def items_keyboard(items: list[QueueItem], now: datetime, settings: Settings) -> InlineKeyboardMarkup:
    b = InlineKeyboardBuilder()
    for item in items[:30]:
        b.button(text=item_label(item, now, settings), callback_data=StaffCb(action=StaffAction.open, id=item.id))
    b.adjust(1)
    return b.as_markup()


@router.callback_query(StaffCb.filter((F.action == StaffAction.open) & (F.id == 0)))
async def show_list(
    callback: CallbackQuery, callback_data: StaffCb, actor: Actor, services: Services, settings: Settings, clock: Clock
) -> None:
    views = services.views
    now = clock.now()
    if callback_data.v == LIST_QUEUE:
        queue = await views.queue(actor)
        c = queue.counts
        text = _(
            "<b>Queue</b>: new {new}, reopened {reopened}, answers to check {review}, requests {requests}."
        ).format(new=c["moderation"], reopened=c["reopened"], review=c["answer_review"], requests=c["requests"])
        items = queue.items
    elif callback_data.v == LIST_REVIEWS:
        items = await views.reviews(actor)
        text = _("<b>Answers to check</b>: {count}").format(count=len(items))
    elif callback_data.v == LIST_REQUESTS:
        requests = await views.pending_requests(actor)
        text = _("<b>Requests</b>: {count}").format(count=len(requests))
        b = InlineKeyboardBuilder()
        for r in requests:
            kind = _("redirect") if r.kind == RequestKind.redirect else _("extension")
            b.button(text=f"№ {r.number} · {kind}", callback_data=StaffCb(action=StaffAction.open, id=r.appeal_id))
        b.adjust(1)
        if isinstance(callback.message, Message):
            await callback.message.answer(text, reply_markup=b.as_markup())
        return
    else:
        items = await views.inbox(actor)
        overdue = sum(1 for i in items if i.deadline_at is not None and i.deadline_at < now)
        text = _("<b>Inbox</b>: {count} open, {overdue} overdue.").format(count=len(items), overdue=overdue)
    if isinstance(callback.message, Message):
        await callback.message.answer(text, reply_markup=items_keyboard(items, now, settings))
