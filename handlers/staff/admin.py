"""Admins: invite links for roles, people by role with revocation, the routing matrix."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F
from aiogram.types import CallbackQuery, InlineKeyboardButton
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import AdminAction, AdminCb
from bot.config import Settings
from bot.domain import AGENCY_ROLES, Role
from bot.notifications import ROLES
from bot.services import Services
from bot.services.errors import Forbidden, Gone, InvalidInput, NotFound
from bot.services.users import Actor
from bot.texts import local_time
from handlers import Handlers
from handlers.staff.render import reply

router = Handlers(__name__)


@router.callback_query(AdminCb.filter(F.action == AdminAction.invite))
async def choose_role(callback: CallbackQuery, actor: Actor) -> None:
    if not actor.has(Role.admin):
        raise Forbidden()
    b = InlineKeyboardBuilder()
    for role in Role:
        b.button(text=_(ROLES[role]), callback_data=AdminCb(action=AdminAction.invite_role, s=role))
    b.adjust(2)
    await reply(callback, _("Invite for which role?"), b)


@router.callback_query(AdminCb.filter(F.action == AdminAction.invite_role))
async def choose_invite_agency(
    callback: CallbackQuery, callback_data: AdminCb, actor: Actor, services: Services, bot: Bot, settings: Settings
) -> None:
    if callback_data.s not in AGENCY_ROLES:
        await make_invite(callback, callback_data.s, None, actor, services, bot, settings)
        return
    if not actor.has(Role.admin):
        raise Forbidden()
    b = InlineKeyboardBuilder()
    for agency in services.directory.agencies():
        b.button(
            text=agency.name(actor.lang),
            callback_data=AdminCb(action=AdminAction.invite_agency, s=callback_data.s, v=agency.id),
        )
    b.adjust(2)
    await reply(callback, _("Which agency?"), b)


@router.callback_query(AdminCb.filter(F.action == AdminAction.invite_agency))
async def invite_agency(
    callback: CallbackQuery, callback_data: AdminCb, actor: Actor, services: Services, bot: Bot, settings: Settings
) -> None:
    await make_invite(callback, callback_data.s, callback_data.v, actor, services, bot, settings)


async def make_invite(
    callback: CallbackQuery,
    role: str,
    agency_id: int | None,
    actor: Actor,
    services: Services,
    bot: Bot,
    settings: Settings,
) -> None:
    invite = await services.access.create_invite(actor, role, agency_id)
    me = await bot.me()
    link = f"https://t.me/{me.username}?start=inv_{invite.token}"
    agency = services.directory.agency(agency_id or 0)
    text = _("Invite for the role «{role}»{agency}. Single use, valid until {until}:\n<code>{link}</code>").format(
        role=_(ROLES[role]),
        agency=f" ({escape(agency.name(actor.lang))})" if agency else "",
        until=local_time(invite.expires_at, settings.tz),
        link=link,
    )
    await reply(callback, text)


@router.callback_query(AdminCb.filter(F.action == AdminAction.people))
async def people(callback: CallbackQuery, callback_data: AdminCb, actor: Actor, services: Services) -> None:
    found = await services.access.people(actor, callback_data.s or None)
    b = InlineKeyboardBuilder()
    # Filter by role: one button per role, the current one marked.
    b.row(
        *(
            InlineKeyboardButton(
                text=("• " if role == callback_data.s else "") + _(ROLES[role]),
                callback_data=AdminCb(action=AdminAction.people, s=role).pack(),
            )
            for role in Role
        ),
        width=3,
    )
    lines = [_("<b>People with roles</b>: {count}").format(count=len(found))]
    for person in found:
        agency = services.directory.agency(person.agency_id or 0)
        label = f"{person.tg_id} · {_(ROLES.get(person.role, person.role))}" + (
            f" · {agency.name(actor.lang)}" if agency else ""
        )
        lines.append("• " + escape(label))
        b.button(
            text=f"✖ {label}"[:60], callback_data=AdminCb(action=AdminAction.revoke, v=person.user_id, s=person.role)
        )
    b.adjust(1)
    await reply(callback, "\n".join(lines), b)


@router.callback_query(AdminCb.filter(F.action == AdminAction.revoke))
async def revoke(
    callback: CallbackQuery, callback_answer: CallbackAnswer, callback_data: AdminCb, actor: Actor, services: Services
) -> None:
    try:
        await services.access.revoke(actor, callback_data.v, callback_data.s)
    except NotFound as error:  # nobody of that role: nothing to revoke
        raise InvalidInput(error.detail) from error
    callback_answer.text = _("Role revoked.")
    callback_answer.show_alert = True


@router.callback_query(AdminCb.filter(F.action == AdminAction.routes))
async def routes_blocks(callback: CallbackQuery, callback_data: AdminCb, actor: Actor, services: Services) -> None:
    if not actor.has(Role.admin):
        raise Forbidden()
    b = InlineKeyboardBuilder()
    if callback_data.v == 0:
        for block in services.directory.blocks():
            b.button(text=block.name(actor.lang), callback_data=AdminCb(action=AdminAction.routes, v=block.id))
    else:
        for category in services.directory.categories(callback_data.v):
            b.button(
                text=category.name(actor.lang), callback_data=AdminCb(action=AdminAction.route_category, v=category.id)
            )
    b.adjust(1)
    await reply(callback, _("Routing matrix: choose the category."), b)


@router.callback_query(AdminCb.filter(F.action == AdminAction.route_category))
async def route_category(callback: CallbackQuery, callback_data: AdminCb, actor: Actor, services: Services) -> None:
    routes = await services.routing.routes(actor, callback_data.v)
    category = services.directory.category(callback_data.v)
    if category is None:
        raise Gone()
    b = InlineKeyboardBuilder()
    lines = [
        _("<b>{category}</b>: where appeals go, by district. Press a district to change.").format(
            category=escape(category.name(actor.lang))
        )
    ]
    for district in services.directory.districts():
        agency = services.directory.agency(routes.get(district.id, 0))
        lines.append(f"• {escape(district.name(actor.lang))} → {escape(agency.name(actor.lang)) if agency else '—'}")
        b.button(
            text=district.name(actor.lang),
            callback_data=AdminCb(action=AdminAction.route_district, v=category.id, s=str(district.id)),
        )
    b.adjust(2)
    await reply(callback, "\n".join(lines), b)


@router.callback_query(AdminCb.filter(F.action == AdminAction.route_district))
async def route_district(callback: CallbackQuery, callback_data: AdminCb, actor: Actor, services: Services) -> None:
    if not actor.has(Role.admin):
        raise Forbidden()
    b = InlineKeyboardBuilder()
    for agency in services.directory.agencies():
        b.button(
            text=agency.name(actor.lang),
            callback_data=AdminCb(action=AdminAction.route_set, v=agency.id, s=f"{callback_data.v}.{callback_data.s}"),
        )
    b.adjust(2)
    await reply(callback, _("Which agency handles it?"), b)


@router.callback_query(AdminCb.filter(F.action == AdminAction.route_set))
async def route_set(
    callback: CallbackQuery, callback_answer: CallbackAnswer, callback_data: AdminCb, actor: Actor, services: Services
) -> None:
    try:
        category_id, district_id = (int(x) for x in callback_data.s.split("."))
        await services.routing.set_route(actor, category_id, district_id, callback_data.v)
    except (ValueError, InvalidInput) as error:
        raise Gone() from error
    callback_answer.text = _("Saved.")
    callback_answer.show_alert = True
