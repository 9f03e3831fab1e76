"""/rating (and «🏆 Agency rating» in the /staff menu): the agencies ranked by their index over a period, with the
change since the period before, the chart, and each agency's breakdown. Declared with aiogram-dialog: the ranking
and a breakdown are edits of one message; the chart comes as a photo above it when the dialog opens and when the
period changes.

Every screen and press asks `services.stats` (`rating`, `breakdown`, `rating_period`), which refuses block heads and
officials, holds a supervisor to their own agency (a forged press for another agency is refused and audited), and
refuses a forged period or agency id."""

from __future__ import annotations

from html import escape
from operator import itemgetter
from typing import Any

from aiogram import Bot
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.kbd import Cancel, Group, Select, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.rating_view import agency_name, breakdown_text, rating_chart, rating_text, score_text, title_lines
from bot.services import Services
from bot.services.errors import Forbidden, Gone
from bot.services.stats import RATING_PERIODS, Period, PeriodRefused
from bot.services.users import Actor
from bot.states import Rating
from bot.stats_view import PERIOD_NAMES, period_text
from handlers import Handlers
from handlers.dialogs import buttons_only, deps, fit, heading, notice, picker, popup

router = Handlers(__name__)
R = Rating


def not_for_role() -> str:
    return _("The agency rating is not available for your role.")


@router.message(Command("rating"))
async def show_rating(message: Message, actor: Actor, services: Services, dialog_manager: DialogManager) -> None:
    if not actor.is_staff:
        await message.answer(_("This menu is for the staff of the ЦУР and the agencies."))
        return
    try:
        await services.stats.rating_reader(actor)
    except Forbidden:
        await message.answer(not_for_role())
        return
    await dialog_manager.start(R.ranking, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


def agency_key(text: str) -> int:
    """An agency button's id; 0 (no agency: "not found") for a forged one that is not a number."""
    return int(text) if text.isdigit() and len(text) < 10 else 0


def period_kind(manager: DialogManager) -> str:
    found = manager.dialog_data.get("period")
    return found if isinstance(found, str) else RATING_PERIODS[0].value


def period_of(manager: DialogManager) -> Period:
    services, _settings, _actor = deps(manager)
    return services.stats.rating_period(period_kind(manager))


async def send_chart(manager: DialogManager) -> None:
    """The chart of the current period as a photo; the screen follows below it (none for a supervisor's view or a
    period where no agency is ranked)."""
    services, _settings, actor = deps(manager)
    rating = await services.stats.rating(actor, period_of(manager))
    png = rating_chart(rating, actor.lang, services.directory)
    if png is None:
        return
    bot: Bot = manager.middleware_data["bot"]
    chat = manager.middleware_data["event_chat"]
    await bot.send_photo(
        chat.id,
        BufferedInputFile(png, filename=f"rating-{rating.period.first_day:%Y%m%d}-{rating.period.last_day:%Y%m%d}.png"),
        caption=_("Agency rating, {period}").format(period=period_text(rating.period)),
    )
    manager.show_mode = ShowMode.SEND


async def on_start(start_data: Any, manager: DialogManager) -> None:
    await send_chart(manager)


async def ranking_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    rating = await services.stats.rating(actor, period_of(dialog_manager))
    lang = actor.lang
    items = [
        (e.agency_id, fit([f"{e.rank}.", score_text(e.index)], [agency_name(services.directory, e.agency_id, lang)]))
        for e in rating.ranked
    ]
    items += [
        (e.agency_id, fit(["—", str(e.answered)], [agency_name(services.directory, e.agency_id, lang)]))
        for e in rating.apart
    ]
    current = period_kind(dialog_manager)
    periods = [(k.value, ("• " if k.value == current else "") + _(PERIOD_NAMES[k])) for k in RATING_PERIODS]
    text = rating_text(rating, lang, services.directory)
    if rating.held_to is None and items:
        text += "\n\n" + _("Press an agency for its breakdown.")
    return {
        "notice": notice(dialog_manager),
        "text": text,
        "items": items if rating.held_to is None else [],
        "periods": periods,
        "close": _("✖ Close"),
    }


async def on_period(callback: CallbackQuery, widget: Any, manager: DialogManager, kind: str) -> None:
    services, _settings, _actor = deps(manager)
    try:
        services.stats.rating_period(kind)
    except PeriodRefused:  # a forged press
        popup(manager, _("Unknown period."), alert=True)
        manager.show_mode = ShowMode.NO_UPDATE
        return
    manager.dialog_data["period"] = kind
    await send_chart(manager)


async def on_agency(callback: CallbackQuery, widget: Any, manager: DialogManager, agency_id: int) -> None:
    services, _settings, actor = deps(manager)
    try:
        await services.stats.breakdown(actor, agency_id, period_of(manager))
    except Gone:
        popup(manager, _("Agency not found."), alert=True)
        manager.show_mode = ShowMode.NO_UPDATE
        return
    manager.dialog_data["agency"] = agency_id
    await manager.switch_to(R.breakdown)


async def breakdown_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    agency_id = dialog_manager.dialog_data.get("agency")
    if not isinstance(agency_id, int):
        raise Gone("agency")
    rating = await services.stats.breakdown(actor, agency_id, period_of(dialog_manager))
    entry = rating.entry(agency_id)
    lines = title_lines(rating)
    lines.append("")
    if entry is None:
        lines.append(f"<b>{escape(agency_name(services.directory, agency_id, actor.lang))}</b>")
        lines.append(_("No appeals answered in this period."))
    else:
        lines.append(breakdown_text(entry, actor.lang, services.directory, rating.weights, rating.places))
    return {"notice": notice(dialog_manager), "text": "\n".join(lines), "back": _("⬅️ Back")}


def dialog() -> Dialog:
    """Built anew for each Dispatcher; entered by /rating or from the /staff menu."""
    return Dialog(
        Window(
            heading(),
            *buttons_only(),
            Group(
                Select(
                    Format("{item[1]}"),
                    id="period",
                    item_id_getter=itemgetter(0),
                    items="periods",
                    type_factory=str,
                    on_click=on_period,
                ),
                width=2,
            ),
            picker("agency", on_agency, type_factory=agency_key),
            Cancel(Format("{close}")),
            state=R.ranking,
            getter=ranking_getter,
        ),
        Window(
            heading(),
            *buttons_only(),
            SwitchTo(Format("{back}"), id="back", state=R.ranking),
            state=R.breakdown,
            getter=breakdown_getter,
        ),
        on_start=on_start,
    )
