"""The access log, for admins (issue 16): `/accesslog` or «🔏 Access log» of the /staff menu → by appeal (its
registration number) or by person (a Telegram id, or the number of an appeal for its resident) → the listing, newest
first, a page at a time, with its export as XLSX or CSV. Declared with aiogram-dialog, like the other admin screens.

Every getter and press asks `services.access_log`, which refuses anyone but an admin (audited) and logs each page
shown and each export as a reading of the log."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, CallbackQuery, Chat, ContentType, Message
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Cancel, Row, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.clock import Clock
from bot.config import Settings
from bot.domain import AccessKind
from bot.i18n import N_
from bot.notifications import ROLES
from bot.services import Services
from bot.services.access_log import AccessRow, AccessTarget
from bot.services.errors import Gone, InvalidInput
from bot.services.users import Actor
from bot.states import AccessLog
from bot.stats_files import Sheet, csv_bytes, xlsx_bytes
from bot.texts import local_time
from handlers import Handlers
from handlers.dialogs import COMMAND, buttons_only, deps, heading, notice, popup, say, unknown_command, unmatched

router = Handlers(__name__)
L = AccessLog

KIND_NAMES = {
    AccessKind.appeal_card: N_("appeal card"),
    AccessKind.appeal_files: N_("appeal files"),
    AccessKind.appeal_location: N_("place on the map"),
    AccessKind.resident_contact: N_("applicant's name and contact"),
    AccessKind.resident_reply: N_("resident's reply"),
    AccessKind.access_log_read: N_("access log read"),
    AccessKind.access_log_export: N_("access log exported"),
}
# What a typed number or id that leads nowhere is answered with (the prompt stays).
WHY_NOT = {
    "number_format": N_("That is not a registration number. Type it like 2026-000123."),
    "no_appeal": N_("There is no appeal with this number."),
    "person_format": N_("Type a Telegram id (digits only) or an appeal's number like 2026-000123."),
    "no_person": N_("Nobody with this Telegram id is known to the bot."),
    "anonymized_resident": N_(
        "This appeal is anonymized (its resident withdrew the consent, or its retention term passed): no person is "
        "linked to it any more. Its own log is under «📄 By appeal»."
    ),
}


@router.message(Command("accesslog"))
async def show_access_log(message: Message, actor: Actor, services: Services, dialog_manager: DialogManager) -> None:
    await services.access_log.check(actor)  # anyone but an admin is refused here (audited), with the reason
    await dialog_manager.start(L.menu, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


def common(manager: DialogManager, text: str, **values: Any) -> dict[str, Any]:
    return {"notice": notice(manager), "text": text, "back": _("⬅️ Back"), **values}


# --- what to list ---------------------------------------------------------------------------------------------


async def menu_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.access_log.check(actor)
    text = _(
        "<b>Access log</b>: who of the staff was shown an appeal's card, its files, its place or the applicant's "
        "contact, and when. List it by appeal or by person."
    )
    return common(dialog_manager, text, by_appeal=_("📄 By appeal"), by_person=_("👤 By person"))


async def prompt_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.access_log.check(actor)
    if dialog_manager.current_context().state == L.appeal:
        text = _("Type the appeal's registration number, e.g. 2026-000123:")
    else:
        text = _("Type the person's Telegram id, or the number of an appeal (e.g. 2026-000123) for its resident:")
    return common(dialog_manager, text)


async def on_typed(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    typed = (message.text or "").strip()
    try:
        if manager.current_context().state == L.appeal:
            target = await services.access_log.appeal_target(actor, typed)
        else:
            target = await services.access_log.person_target(actor, typed)
    except InvalidInput as error:
        if error.detail not in WHY_NOT:
            raise
        say(manager, _(WHY_NOT[error.detail]))
        return
    manager.dialog_data.update(target=asdict(target), page=0, upto=None)
    await manager.switch_to(L.entries)


async def text_expected(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    say(manager, _("Please type the number, or press «⬅️ Back»."))


# --- the listing -----------------------------------------------------------------------------------------------


def target_of(manager: DialogManager) -> AccessTarget:
    stored = manager.dialog_data.get("target")
    if not isinstance(stored, dict):
        raise Gone()
    return AccessTarget(**stored)


def target_text(target: AccessTarget) -> str:
    if target.appeal_id is not None:
        return _("appeal № {number}").format(number=target.number)
    if target.number is not None:
        return _("the resident of appeal № {number}").format(number=target.number)
    return _("the person with Telegram id {id}").format(id=target.tg_id)


def who(row: AccessRow) -> str:
    """The staff member as stored: the name (their Telegram id until they open /staff) and the roles held now."""
    name = row.actor_name or _("id {id}").format(id=row.actor_tg_id)
    roles = ", ".join(_(ROLES[role]) for role in row.actor_roles) or _("no role now")
    return f"{name} ({roles})"


def what(row: AccessRow) -> str:
    kind = _(KIND_NAMES[row.kind])
    return f"{kind}, № {row.number}" if row.number else kind


def line(row: AccessRow, tz: ZoneInfo) -> str:
    return "• " + escape(f"{local_time(row.at, tz)} · {who(row)} · {what(row)}")


async def entries_getter(
    dialog_manager: DialogManager, services: Services, settings: Settings, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    data = dialog_manager.dialog_data
    upto = data.get("upto")
    found = await services.access_log.page(
        actor, target_of(dialog_manager), int(data.get("page") or 0), int(upto) if upto is not None else None
    )
    data["page"], data["upto"] = found.page, found.upto
    lines = [
        _("<b>Access log</b> of {target}").format(target=escape(target_text(found.target))),
        _("Entries: {count} · page {page} of {pages}").format(
            count=found.total, page=found.page + 1, pages=found.pages
        ),
        "",
    ]
    lines += [line(row, settings.tz) for row in found.rows] or [_("Nobody has been shown these data yet.")]
    return common(
        dialog_manager,
        "\n".join(lines),
        newer=found.page > 0,
        older=found.page + 1 < found.pages,
        any=found.total > 0,
        xlsx=_("⬇️ XLSX"),
        csv=_("⬇️ CSV"),
        another=_("🔎 Another search"),
        by_appeal=found.target.appeal_id is not None,
        its_resident=_("👤 Its resident"),
    )


async def on_its_resident(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """From an appeal's listing to its resident's: the person whose data the appeal holds."""
    services, _settings, actor = deps(manager)
    target = target_of(manager)
    if target.number is None or target.appeal_id is None:
        raise Gone()
    try:
        person = await services.access_log.person_target(actor, target.number)
    except InvalidInput as error:
        if error.detail not in WHY_NOT:
            raise
        popup(manager, _(WHY_NOT[error.detail]), alert=True)
        return
    manager.dialog_data.update(target=asdict(person), page=0, upto=None)


def turn(step: int) -> Any:
    async def on_click(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
        manager.dialog_data["page"] = int(manager.dialog_data.get("page") or 0) + step

    return on_click


def sheet_of(rows: list[AccessRow], target: AccessTarget, tz: ZoneInfo, now: datetime) -> Sheet:
    headers = [_("When"), _("Staff member"), _("Telegram id"), _("Roles now"), _("What"), _("Appeal")]
    values: list[list[Any]] = [
        [
            local_time(r.at, tz),
            r.actor_name or "",
            r.actor_tg_id,
            ", ".join(_(ROLES[role]) for role in r.actor_roles),
            _(KIND_NAMES[r.kind]),
            r.number or "",
        ]
        for r in rows
    ]
    note = _("Access log of {target}, exported {at}").format(target=target_text(target), at=local_time(now, tz))
    return Sheet(_("Access log"), headers, values, [None, None, "int", None, None, None], note)


def on_export(xlsx: bool) -> Any:
    async def on_click(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
        services, settings, actor = deps(manager)
        target = target_of(manager)
        # What the listing counts, no more: the readings logged since it was opened are in the next listing.
        upto = manager.dialog_data.get("upto")
        rows = await services.access_log.export(actor, target, int(upto) if upto is not None else None)
        # The listing stays as it is: the export is a reading of its own, not another page shown.
        manager.show_mode = ShowMode.NO_UPDATE
        clock: Clock = manager.middleware_data["clock"]
        now = clock.now()
        sheet = sheet_of(rows, target, settings.tz, now)
        content = await asyncio.to_thread(xlsx_bytes, [sheet]) if xlsx else csv_bytes(sheet)
        # The file says whose log it is once saved (QA: «person» alone), as its caption and its note do.
        if target.appeal_id is not None:
            subject = f"appeal-{target.number}"
        elif target.tg_id is not None:
            subject = f"person-{target.tg_id}"
        else:
            subject = f"resident-of-{target.number}"
        name = f"access-log-{subject}-{now.astimezone(settings.tz):%Y%m%d-%H%M}.{'xlsx' if xlsx else 'csv'}"
        bot: Bot = manager.middleware_data["bot"]
        chat: Chat = manager.middleware_data["event_chat"]
        caption = _("Access log of {target}: {count} entries").format(
            target=escape(target_text(target)), count=len(rows)
        )
        await bot.send_document(chat.id, BufferedInputFile(content, filename=name), caption=caption)

    return on_click


# --- the dialog -----------------------------------------------------------------------------------------------


def typed_window(state: Any) -> Window:
    return Window(
        heading(),
        MessageInput(unknown_command, filter=COMMAND),
        MessageInput(on_typed, content_types=[ContentType.TEXT]),
        MessageInput(text_expected),
        unmatched(),
        SwitchTo(Format("{back}"), id="back", state=L.menu),
        state=state,
        getter=prompt_getter,
    )


def dialog() -> Dialog:
    """Built anew for each Dispatcher; from the /staff menu (back to it) or /accesslog."""
    return Dialog(
        Window(
            heading(),
            *buttons_only(),
            Row(
                SwitchTo(Format("{by_appeal}"), id="by_appeal", state=L.appeal),
                SwitchTo(Format("{by_person}"), id="by_person", state=L.person),
            ),
            Cancel(Format("{back}")),
            state=L.menu,
            getter=menu_getter,
        ),
        typed_window(L.appeal),
        typed_window(L.person),
        Window(
            heading(),
            *buttons_only(),
            Row(
                Button(Format("◀️"), id="newer", on_click=turn(-1), when="newer"),
                Button(Format("▶️"), id="older", on_click=turn(1), when="older"),
            ),
            Row(
                Button(Format("{xlsx}"), id="xlsx", on_click=on_export(True), when="any"),
                Button(Format("{csv}"), id="csv", on_click=on_export(False), when="any"),
            ),
            Button(Format("{its_resident}"), id="its_resident", on_click=on_its_resident, when="by_appeal"),
            SwitchTo(Format("{another}"), id="another", state=L.menu),
            state=L.entries,
            getter=entries_getter,
        ),
    )
