"""Admins, declared with aiogram-dialog: invite links for a role (and an agency, or a block head's thematic block),
people by role with revocation, the routing matrix (category → district → agency). Started from the /staff menu, on
its message.

Every window's getter asks a service that refuses anyone but an admin (`access.check_admin`, `access.people`,
`routing.routes`), so a forged press opens nothing; the changes are authorized again by their services.
"""

from __future__ import annotations

from html import escape
from typing import Any

from aiogram import Bot
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, Window
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, Group, Select, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.command_menu import CommandMenus
from bot.domain import AGENCY_ROLES, Role
from bot.notifications import ROLES
from bot.services import Services
from bot.services.access import Person
from bot.services.errors import Gone, InvalidInput, NotFound
from bot.services.users import Actor
from bot.states import Admin
from bot.texts import local_time
from handlers.dialogs import BUTTON_CHARS, buttons_only, deps, fit, heading, notice, picker, popup

# People listed in the text of the people screen (all of them are in its paged buttons).
PEOPLE_LINES = 40
# Of Telegram's 4096 characters of a message, what the people's lines may take (names are up to 128 + 64).
TEXT_CHARS = 3800


def choice(widget_id: str, on_click: Any, *, type_factory: Any = int) -> Select[Any]:
    return Select(
        Format("{item[1]}"),
        id=widget_id,
        item_id_getter=lambda item: item[0],
        items="items",
        type_factory=type_factory,
        on_click=on_click,
    )


def common(manager: DialogManager, text: str, **values: Any) -> dict[str, Any]:
    return {"notice": notice(manager), "text": text, "back": _("⬅️ Back"), **values}


def back_to(state: Any) -> SwitchTo:
    return SwitchTo(Format("{back}"), id="back", state=state)


def to_menu() -> Cancel:
    return Cancel(Format("{back}"))


# --- invites --------------------------------------------------------------------------------------------------


async def roles_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.access.check_admin(actor, "invite")
    return common(dialog_manager, _("Invite for which role?"), items=[(role.value, _(ROLES[role])) for role in Role])


async def on_role(callback: CallbackQuery, widget: Any, manager: DialogManager, role: str) -> None:
    if role not in Role.__members__:
        raise Gone()
    manager.dialog_data["role"] = role
    if role in AGENCY_ROLES:
        await manager.switch_to(Admin.invite_agency)
        return
    if role == Role.block_head:
        await manager.switch_to(Admin.invite_block)
        return
    await make_invite(manager, role, None)


async def invite_agency_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.access.check_admin(actor, "invite")
    items = [(a.id, a.name(actor.lang)) for a in services.directory.agencies()]
    return common(dialog_manager, _("Which agency?"), items=items)


async def on_invite_agency(callback: CallbackQuery, widget: Any, manager: DialogManager, agency_id: int) -> None:
    await make_invite(manager, str(manager.dialog_data.get("role", "")), agency_id)


async def invite_block_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.access.check_admin(actor, "invite")
    items = [(b.id, b.name(actor.lang)) for b in services.directory.blocks()]
    return common(dialog_manager, _("Which thematic block?"), items=items)


async def on_invite_block(callback: CallbackQuery, widget: Any, manager: DialogManager, block_id: int) -> None:
    services, _settings, _actor = deps(manager)
    if services.directory.block(block_id) is None:
        raise Gone("block")  # a forged or stale button (the service refuses an unknown block too)
    await make_invite(manager, str(manager.dialog_data.get("role", "")), None, block_id)


async def make_invite(manager: DialogManager, role: str, agency_id: int | None, block_id: int | None = None) -> None:
    services, settings, actor = deps(manager)
    invite = await services.access.create_invite(actor, role, agency_id, block_id)
    bot: Bot = manager.middleware_data["bot"]
    me = await bot.me()
    where = services.directory.agency(agency_id or 0) or services.directory.block(block_id or 0)
    manager.dialog_data["invite"] = _(
        "Invite for the role «{role}»{agency}. Single use, valid until {until}:\n<code>{link}</code>"
    ).format(
        role=_(ROLES[role]),
        agency=f" ({escape(where.name(actor.lang))})" if where else "",
        until=local_time(invite.expires_at, settings.tz),
        link=f"https://t.me/{me.username}?start=inv_{invite.token}",
    )
    await manager.switch_to(Admin.invite)


async def invite_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.access.check_admin(actor, "invite")
    text = dialog_manager.dialog_data.get("invite")
    if not text:
        raise Gone()
    return common(dialog_manager, text, another=_("🔗 Invite"))


# --- people ---------------------------------------------------------------------------------------------------


def who(person: Person) -> str:
    """The person as the admin knows them: the Telegram name and @username (the id until they open /staff)."""
    name = person.full_name or _("id {id}").format(id=person.tg_id)
    return f"{name} (@{person.username})" if person.username else name


async def people_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    current = dialog_manager.dialog_data.get("role") or None
    found = await services.access.people(actor, current)
    lines = [_("<b>People with roles</b>: {count}").format(count=len(found))]
    items: list[tuple[str, str]] = []
    for person in found:
        agency = services.directory.agency(person.agency_id or 0)
        block = services.directory.block(person.block_id or 0)  # a block head's thematic block
        role = _(ROLES.get(person.role, person.role))
        where = [place.name(actor.lang) for place in (agency, block) if place]
        line = "• " + escape(" · ".join([who(person), f"id {person.tg_id}", role, *where]))
        if len(lines) <= PEOPLE_LINES and sum(len(x) + 1 for x in lines) + len(line) < TEXT_CHARS:
            lines.append(line)
        if person.user_id == actor.id and person.role == Role.admin:
            continue  # the services refuse it: nobody locks the door behind themselves
        items.append((f"{person.user_id}:{person.role}", "✖ " + fit([role], [who(person), *where], BUTTON_CHARS - 2)))
    if len(lines) <= len(found):
        lines.append("…")
    roles = [(role.value, ("• " if role == current else "") + _(ROLES[role])) for role in Role]
    return common(dialog_manager, "\n".join(lines), items=items, roles=roles)


async def on_role_filter(callback: CallbackQuery, widget: Any, manager: DialogManager, role: str) -> None:
    # The same role again shows everyone.
    manager.dialog_data["role"] = None if manager.dialog_data.get("role") == role else role


async def holder(manager: DialogManager, key: str) -> Person:
    """The person and role of a revoke button, if they still hold it; Gone for a stale or forged one."""
    services, _settings, actor = deps(manager)
    user_id, _sep, role = key.partition(":")
    found = await services.access.people(actor, role) if user_id.isdigit() and role in Role.__members__ else []
    person = next((p for p in found if p.user_id == int(user_id)), None)
    if person is None:
        raise Gone("role")
    return person


async def on_revoke(callback: CallbackQuery, widget: Any, manager: DialogManager, key: str) -> None:
    """A press asks first (Admin.revoke)."""
    await holder(manager, key)
    manager.dialog_data["revoke"] = key
    await manager.switch_to(Admin.revoke)


async def revoke_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    person = await holder(dialog_manager, str(dialog_manager.dialog_data.get("revoke", "")))
    text = _("Revoke the role «{role}» from {person}?").format(
        role=_(ROLES.get(person.role, person.role)), person=escape(who(person))
    )
    return common(dialog_manager, text, revoke=_("✖ Revoke"))


async def on_confirm_revoke(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    person = await holder(manager, str(manager.dialog_data.pop("revoke", "")))
    try:
        await services.access.revoke(actor, person.user_id, person.role)
    except NotFound as error:  # revoked meanwhile (by another admin)
        raise Gone(error.detail) from error
    # The person's «/» menu loses the role's commands (their other roles' stay).
    menus: CommandMenus = manager.middleware_data["menus"]
    await menus.sync(manager.middleware_data["bot"], await services.users.identify(person.tg_id, reachable=False))
    popup(manager, _("Role revoked."), alert=True)
    await manager.switch_to(Admin.people)


# --- the routing matrix ---------------------------------------------------------------------------------------


async def route_blocks_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.access.check_admin(actor, "routes")
    items = [(b.id, b.name(actor.lang)) for b in services.directory.blocks()]
    return common(dialog_manager, _("Routing matrix: choose the category."), items=items)


async def on_route_block(callback: CallbackQuery, widget: Any, manager: DialogManager, block_id: int) -> None:
    manager.dialog_data["block_id"] = block_id
    await manager.switch_to(Admin.route_categories)


async def route_categories_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.access.check_admin(actor, "routes")
    block_id = int(dialog_manager.dialog_data.get("block_id", 0))
    items = [(c.id, c.name(actor.lang)) for c in services.directory.categories(block_id)]
    if not items:
        raise Gone()
    return common(dialog_manager, _("Routing matrix: choose the category."), items=items)


async def on_route_category(callback: CallbackQuery, widget: Any, manager: DialogManager, category_id: int) -> None:
    manager.dialog_data["category_id"] = category_id
    await manager.switch_to(Admin.route_districts)


async def route_districts_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.access.check_admin(actor, "routes")
    category = services.directory.category(int(dialog_manager.dialog_data.get("category_id", 0)))
    if category is None:
        raise Gone()
    routes = await services.routing.routes(actor, category.id)
    lines = [
        _("<b>{category}</b>: where appeals go, by district. Press a district to change.").format(
            category=escape(category.name(actor.lang))
        )
    ]
    items: list[tuple[int, str]] = []
    for district in services.directory.districts():
        agency = services.directory.agency(routes.get(district.id, 0))
        lines.append(f"• {escape(district.name(actor.lang))} → {escape(agency.name(actor.lang)) if agency else '—'}")
        items.append((district.id, district.name(actor.lang)))
    return common(dialog_manager, "\n".join(lines), items=items)


async def on_route_district(callback: CallbackQuery, widget: Any, manager: DialogManager, district_id: int) -> None:
    services, _settings, _actor = deps(manager)
    if services.directory.district(district_id) is None:
        raise Gone()
    manager.dialog_data["district_id"] = district_id
    await manager.switch_to(Admin.route_agency)


async def route_agency_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.access.check_admin(actor, "routes")
    items = [(a.id, a.name(actor.lang)) for a in services.directory.agencies()]
    return common(dialog_manager, _("Which agency handles it?"), items=items)


async def on_route_agency(callback: CallbackQuery, widget: Any, manager: DialogManager, agency_id: int) -> None:
    services, _settings, actor = deps(manager)
    category_id = int(manager.dialog_data.get("category_id", 0))
    district_id = int(manager.dialog_data.get("district_id", 0))
    try:
        await services.routing.set_route(actor, category_id, district_id, agency_id)
    except InvalidInput as error:  # a category, district or agency that is gone
        raise Gone(error.detail) from error
    popup(manager, _("Saved."), alert=True)
    await manager.switch_to(Admin.route_districts)


# --- the dialog -----------------------------------------------------------------------------------------------


def window(state: Any, getter: Any, *widgets: Any) -> Window:
    return Window(heading(), *buttons_only(), *widgets, state=state, getter=getter)


def dialog() -> Dialog:
    """Built anew for each Dispatcher; started from the /staff menu, back to it with Back."""
    return Dialog(
        window(Admin.roles, roles_getter, Group(choice("role", on_role, type_factory=str), width=2), to_menu()),
        window(Admin.invite_agency, invite_agency_getter, picker("agency", on_invite_agency), back_to(Admin.roles)),
        window(Admin.invite_block, invite_block_getter, picker("block", on_invite_block), back_to(Admin.roles)),
        window(Admin.invite, invite_getter, SwitchTo(Format("{another}"), id="another", state=Admin.roles), to_menu()),
        window(
            Admin.people,
            people_getter,
            Group(
                Select(
                    Format("{item[1]}"),
                    id="filter",
                    item_id_getter=lambda item: item[0],
                    items="roles",
                    on_click=on_role_filter,
                ),
                width=3,
            ),
            picker("revoke", on_revoke, type_factory=str),
            to_menu(),
        ),
        window(
            Admin.revoke,
            revoke_getter,
            Button(Format("{revoke}"), id="confirm", on_click=on_confirm_revoke),
            back_to(Admin.people),
        ),
        window(Admin.route_blocks, route_blocks_getter, Column(choice("block", on_route_block)), to_menu()),
        window(
            Admin.route_categories,
            route_categories_getter,
            Column(choice("category", on_route_category)),
            back_to(Admin.route_blocks),
        ),
        window(
            Admin.route_districts,
            route_districts_getter,
            Group(choice("district", on_route_district), width=2),
            back_to(Admin.route_categories),
        ),
        window(
            Admin.route_agency, route_agency_getter, picker("agency", on_route_agency), back_to(Admin.route_districts)
        ),
    )
