"""/staff: the menu of each role and its lists (queue, answers to check, requests, inbox, a block head's appeals of
the block), declared with aiogram-dialog. One message: the menu, a list, a card opened from it and back are all edits of it.

Each list's getter asks the service for it (`services.views`), which refuses a person without the role; the card
opened from a list is a dialog of its own (handlers.staff.appeals: its window shows the card through
`services.views.show_card`, which refuses an appeal out of scope and logs the view), which returns here when a
decision takes the appeal off the list.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, LaunchMode, ShowMode, StartMode, Window
from aiogram_dialog.widgets.kbd import Button, Cancel, Group, Row, Select, Start, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.clock import Clock
from bot.config import Settings
from bot.domain import AGENCY_ROLES, COORDINATING_ROLES, STATS_ROLES, Role
from bot.domain import AppealStatus as S
from bot.services import Services
from bot.services.broadcasts import AUTHORS as BROADCASTERS
from bot.services.directory import DirectoryService
from bot.services.errors import Forbidden, Gone
from bot.services.polls import READERS
from bot.services.stats import RATING_ROLES
from bot.services.users import Actor
from bot.services.views import QueueItem
from bot.states import AccessLog, Admin, AppealCard, Broadcasts, Polls, Rating, StaffLists, Stats
from bot.texts import STATUS_NAMES, status_name
from handlers import Handlers
from handlers.dialogs import PAGE_ROWS, buttons_only, fit, heading, notice, picker
from handlers.staff.render import request_label

router = Handlers(__name__)
L = StaffLists
# How many appeals a list holds (paged by handlers.dialogs.PAGE_ROWS).
LIST_LIMIT = 100


@router.message(Command("staff"))
async def show_menu(message: Message, actor: Actor, services: Services, dialog_manager: DialogManager) -> None:
    if not actor.is_staff:
        await message.answer(_("This menu is for the staff of the ЦУР and the agencies."))
        return
    if message.from_user is not None:  # the admins' list of people shows the name the person has now
        await services.access.remember_name(actor, message.from_user.full_name, message.from_user.username)
    await dialog_manager.start(L.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


# --- the menu -------------------------------------------------------------------------------------------------


async def menu_getter(dialog_manager: DialogManager, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    # Roles are read afresh for every update: a revoked person's old menu opens nothing.
    if not actor.is_staff:
        raise Forbidden("staff_menu")
    return {
        "notice": notice(dialog_manager),
        "text": _("What do you want to do?"),
        "coordinator": actor.has(*COORDINATING_ROLES),
        "agency": actor.has(*AGENCY_ROLES),
        "admin": actor.has(Role.admin),
        "block_head": actor.has(Role.block_head) and actor.block_id is not None,
        "block": _("📂 Appeals of the block"),
        "polls": actor.has(*READERS),
        "polls_label": _("📊 Polls"),
        "broadcasts": actor.has(*BROADCASTERS),
        "broadcasts_label": _("📣 Broadcasts"),
        "stats": actor.has(*STATS_ROLES),
        "stats_label": _("📊 Statistics"),
        "rating": actor.has(*RATING_ROLES),
        "rating_label": _("🏆 Agency rating"),
        "queue": _("📥 Queue"),
        "reviews": _("🧾 Answers to check"),
        "requests": _("📨 Requests"),
        "inbox": _("📂 Inbox of my agency"),
        "invite": _("🔗 Invite"),
        "people": _("👥 People"),
        "routes": _("🗺 Routing"),
        "access_log": _("🔏 Access log"),
        "close": _("✖ Close"),
    }


# --- the lists ------------------------------------------------------------------------------------------------


# The status of an agency's appeal, as the mark that starts its row (the inbox's text says what each means).
MARKS = {S.assigned: "🆕", S.in_progress: "🛠", S.clarification: "❓", S.answer_review: "🧾", S.reopened: "🔁"}


def age(since: datetime, now: datetime) -> str:
    """How long ago, in the largest whole unit: days, hours or minutes."""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds >= 86400:
        return _("{count} d.").format(count=seconds // 86400)
    if seconds >= 3600:
        return _("{count} h.").format(count=seconds // 3600)
    return _("{count} min.").format(count=seconds // 60)


def item_label(
    item: QueueItem, now: datetime, settings: Settings, directory: DirectoryService, lang: str, deadline: bool
) -> str:
    """What the appeal is about, for triage without opening it: number, topic, district and age, or (`deadline`, for
    the agencies' lists) the deadline, the overdue marked."""
    category, district = directory.category(item.category_id), directory.district(item.district_id)
    names = [category.name(lang) if category else "—", district.name(lang) if district else "—"]
    head = " ".join(filter(None, (MARKS.get(item.status, ""), f"№ {item.number}")))
    if not deadline or item.deadline_at is None:
        return fit([head, age(item.created_at, now)], names)
    due = _("due {date}").format(date=item.deadline_at.astimezone(settings.tz).strftime("%d.%m"))
    if item.deadline_at < now:
        head = "⚠️ " + head
    return fit([head, due], names)


def rows(
    items: list[QueueItem], now: datetime, settings: Settings, services: Services, actor: Actor, deadline: bool = True
) -> list[tuple[int, str]]:
    return [(i.id, item_label(i, now, settings, services.directory, actor.lang, deadline)) for i in items]


def listed(text: str, items: list[tuple[int, str]], manager: DialogManager) -> dict[str, Any]:
    return {"notice": notice(manager), "text": text, "items": items, "back": _("⬅️ Back")}


async def queue_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, clock: Clock, **_kwargs: Any
) -> dict[str, Any]:
    queue = await services.views.queue(actor, LIST_LIMIT)
    c = queue.counts
    text = _("<b>Queue</b>: new {new}, reopened {reopened}, answers to check {review}, requests {requests}.").format(
        new=c["moderation"], reopened=c["reopened"], review=c["answer_review"], requests=c["requests"]
    )
    if c["reopened"]:
        text += "\n" + _("🔁 sent back by the resident: at the top of the list")
    return listed(text, rows(queue.items, clock.now(), settings, services, actor, deadline=False), dialog_manager)


async def reviews_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, clock: Clock, **_kwargs: Any
) -> dict[str, Any]:
    items = (await services.views.reviews(actor))[:LIST_LIMIT]
    text = _("<b>Answers to check</b>: {count}").format(count=len(items))
    return listed(text, rows(items, clock.now(), settings, services, actor), dialog_manager)


async def requests_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    requests = (await services.views.pending_requests(actor))[:LIST_LIMIT]
    text = _("<b>Requests</b>: {count}").format(count=len(requests))
    return listed(text, [(r.appeal_id, f"№ {r.number} · {request_label(r.kind)}") for r in requests], dialog_manager)


async def inbox_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, clock: Clock, **_kwargs: Any
) -> dict[str, Any]:
    items = await services.views.inbox(actor)
    now = clock.now()
    overdue = sum(1 for i in items if i.deadline_at is not None and i.deadline_at < now)
    text = _("<b>Inbox</b>: {count} open, {overdue} overdue.").format(count=len(items), overdue=overdue)
    text += "\n" + _("🆕 new · 🛠 in progress · ❓ waiting for the resident · 🧾 answer under review")
    return listed(text, rows(items[:LIST_LIMIT], now, settings, services, actor), dialog_manager)


# --- a block head's appeals of the block ----------------------------------------------------------------------


async def block_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, clock: Clock, **_kwargs: Any
) -> dict[str, Any]:
    """A page of the block's appeals, newest first, each with its number and status; a status narrows them."""
    data = dialog_manager.dialog_data
    chosen = data.get("status") or None
    status = S(chosen) if chosen in S.__members__ else None
    found = await services.views.block_appeals(actor, status, int(data.get("page") or 0), PAGE_ROWS)
    data["page"] = found.page  # held to the pages there are now
    block = services.directory.block(found.block_id)
    lines = [
        _("<b>Appeals of the block «{block}»</b>: {count}").format(
            block=escape(block.name(actor.lang)) if block else "—", count=found.total
        ),
        _("Page {page} of {pages}").format(page=found.page + 1, pages=found.pages),
    ]
    if status is not None:
        lines.append(_("Status: {status}").format(status=status_name(status)))
    directory = services.directory
    items = []
    for item in found.items:
        category, district = directory.category(item.category_id), directory.district(item.district_id)
        names = [category.name(actor.lang) if category else "—", district.name(actor.lang) if district else "—"]
        items.append((item.id, fit([f"№ {item.number}", status_name(item.status)], names)))
    statuses = [(code, ("• " if code == chosen else "") + status_name(code)) for code in STATUS_NAMES]
    return {
        **listed("\n".join(lines), items, dialog_manager),
        "statuses": statuses,
        "newer": found.page > 0,
        "older": found.page + 1 < found.pages,
    }


async def on_status(callback: CallbackQuery, widget: Any, manager: DialogManager, status: str) -> None:
    """The same status again shows every status; the first page of what is shown now."""
    if status not in S.__members__:
        raise Gone("status")
    manager.dialog_data["status"] = None if manager.dialog_data.get("status") == status else status
    manager.dialog_data["page"] = 0


def turn(step: int) -> Any:
    async def on_click(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
        manager.dialog_data["page"] = max(0, int(manager.dialog_data.get("page") or 0) + step)

    return on_click


def block_window() -> Window:
    return Window(
        heading(),
        *buttons_only(),
        Group(
            Select(
                Format("{item[1]}"),
                id="status",
                item_id_getter=lambda item: item[0],
                items="statuses",
                type_factory=str,
                on_click=on_status,
            ),
            width=3,
        ),
        picker("appeal", open_appeal),
        Row(
            Button(Format("◀️"), id="newer", on_click=turn(-1), when="newer"),
            Button(Format("▶️"), id="older", on_click=turn(1), when="older"),
        ),
        SwitchTo(Format("{back}"), id="back", state=L.menu),
        state=L.block,
        getter=block_getter,
    )


async def open_appeal(callback: CallbackQuery, widget: Any, manager: DialogManager, appeal_id: int) -> None:
    """The card, on this message; its getter asks `services.views.show_card`, which refuses an appeal out of scope
    and writes the access log's row of the view."""
    await manager.start(AppealCard.card, data={"appeal_id": appeal_id, "from_list": True})


async def on_result(start_data: Any, result: Any, manager: DialogManager) -> None:
    """Back from a card after typed input: its word goes above the refreshed list."""
    if isinstance(result, dict) and result.get("notice"):
        manager.dialog_data["notice"] = result["notice"]


def list_window(state: Any, getter: Any) -> Window:
    return Window(
        heading(),
        *buttons_only(),
        picker("appeal", open_appeal),
        SwitchTo(Format("{back}"), id="back", state=L.menu),
        state=state,
        getter=getter,
    )


def dialog() -> Dialog:
    """Built anew for each Dispatcher. ROOT: the menu starts a fresh stack of staff screens."""
    return Dialog(
        Window(
            heading(),
            *buttons_only(),
            SwitchTo(Format("{queue}"), id="queue", state=L.queue, when="coordinator"),
            SwitchTo(Format("{reviews}"), id="reviews", state=L.reviews, when="coordinator"),
            SwitchTo(Format("{requests}"), id="requests", state=L.requests, when="coordinator"),
            SwitchTo(Format("{inbox}"), id="inbox", state=L.inbox, when="agency"),
            SwitchTo(Format("{block}"), id="block_appeals", state=L.block, when="block_head"),
            Start(Format("{invite}"), id="invite", state=Admin.roles, when="admin"),
            Start(Format("{people}"), id="people", state=Admin.people, when="admin"),
            Start(Format("{routes}"), id="routes", state=Admin.route_blocks, when="admin"),
            Start(Format("{access_log}"), id="access_log", state=AccessLog.menu, when="admin"),
            Start(Format("{polls_label}"), id="polls", state=Polls.list, when="polls"),
            Start(Format("{broadcasts_label}"), id="broadcasts", state=Broadcasts.list, when="broadcasts"),
            Start(Format("{stats_label}"), id="stats", state=Stats.main, when="stats"),
            Start(Format("{rating_label}"), id="rating", state=Rating.ranking, when="rating"),
            Cancel(Format("{close}")),
            state=L.menu,
            getter=menu_getter,
        ),
        list_window(L.queue, queue_getter),
        list_window(L.reviews, reviews_getter),
        list_window(L.requests, requests_getter),
        list_window(L.inbox, inbox_getter),
        block_window(),
        on_process_result=on_result,
        launch_mode=LaunchMode.ROOT,
    )
