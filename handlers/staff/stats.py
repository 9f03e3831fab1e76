"""/stats (and «📊 Statistics» in the /staff menu): the report builder and the presets, declared with aiogram-dialog.

The builder's screen states the slice being built (metric, period, dimensions, filters) and changes it by buttons;
«Show» sends the result as new messages below it (the table, the chart when there is one) and the builder follows,
ready for the next change. Under the table: the exports (XLSX, CSV) and «Save as preset». Their buttons carry the
number of the table among the person's latest ones; the slice itself is kept in the dialog storage (persistent,
shared by the instances: `TABLES`), since a slice with many filter values does not fit in 64 bytes of callback data.

Every getter and action asks `services.stats` / `services.presets`, which refuse a person without a statistics role
and hold the slice to their scope (a block head's block, a supervisor's agency, imposed and said on the screen); a
forged metric, dimension or value in a button is refused before it reaches the slice."""

from __future__ import annotations

import asyncio
import secrets
from datetime import date
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.enums import ContentType
from aiogram.filters import Command
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, Group, Select, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.callbacks import StatsAction, StatsCb
from bot.config import Settings
from bot.domain import (
    ID_DIMENSIONS,
    MAX_DIMENSIONS,
    TIME_DIMENSIONS,
    AppealKind,
    AppealStatus,
    Dimension,
    Metric,
    PeriodKind,
    ReportSchedule,
    SliceSpec,
)
from bot.i18n import N_
from bot.services import Services
from bot.services.errors import Gone
from bot.services.presets import NAME_CHARS, Preset, PresetRefused
from bot.services.stats import EARLIEST_DAY, Period, PeriodRefused, Scope, Table, parse_days
from bot.services.users import Actor
from bot.states import Stats, StatsSave
from bot.stats_files import chart_png, csv_bytes, table_sheet, xlsx_bytes
from bot.stats_view import (
    DIMENSION_NAMES,
    METRIC_NAMES,
    PERIOD_NAMES,
    SHORT_KINDS,
    filter_names,
    label,
    period_text,
    table_text,
)
from bot.texts import status_name
from handlers import Handlers
from handlers.dialogs import COMMAND, buttons_only, deps, fit, heading, notice, picker, popup, say, unknown_command
from handlers.dialogs import unmatched as unmatched_press
from handlers.staff.appeals import text_expected

router = Handlers(__name__)
S = Stats
FILTER_DIMENSIONS = tuple(d for d in Dimension if d not in TIME_DIMENSIONS)
# How many of a person's latest tables keep working export buttons (one storage row per person).
TABLES_KEPT = 20
TABLES = "stats_tables"  # the storage destiny of a person's latest tables
PERIOD_REFUSED = {
    "malformed": N_("Please type two dates as DD.MM.YYYY DD.MM.YYYY, e.g. {example}."),
    "future": N_("A period cannot end after today ({today})."),
    "reversed": N_("The first date is after the second one: type the earlier date first."),
    "too_long": N_("A period can cover at most {days} days."),
    "too_old": N_("The statistics start in {year}: type a later date."),
}
PRESET_REFUSED = {
    "name_empty": N_("The name is empty: type a name of 1 to {max} characters."),
    "name_long": N_("The name is too long: at most {max} characters."),
    "name_taken": N_("You already have a preset with this name: type another name."),
    "no_recipients": N_("A scheduled preset needs at least one recipient."),
    "preset_spec": N_("This preset can no longer be read: delete it and save the slice again."),
}
SCHEDULES = {
    ReportSchedule.weekly: N_("Weekly (Mondays)"),
    ReportSchedule.monthly: N_("Monthly (on the 1st)"),
}


@router.message(Command("stats"))
async def show_stats(message: Message, actor: Actor, services: Services, dialog_manager: DialogManager) -> None:
    await services.stats.scope(actor)  # a person without a statistics role is refused here, with the reason
    await dialog_manager.start(S.main, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


# --- the slice being built ----------------------------------------------------------------------------------


def current(manager: DialogManager) -> SliceSpec:
    stored = manager.dialog_data.get("spec")
    if isinstance(stored, dict):
        try:
            return SliceSpec.from_json(stored)
        except ValueError:
            pass
    return SliceSpec()


def keep(manager: DialogManager, spec: SliceSpec) -> None:
    manager.dialog_data["spec"] = spec.to_json()


def common(manager: DialogManager, text: str, **values: Any) -> dict[str, Any]:
    return {"notice": notice(manager), "text": text, "back": _("⬅️ Back"), **values}


def scope_line(scope: Scope, services: Services, lang: str) -> str | None:
    """What the person's statistics are held to, said on the screen."""
    if scope.block_id is not None:
        return _("Only: block {name}").format(name=escape(label(Dimension.block, scope.block_id, lang, services.directory)))
    if scope.agency_id is not None:
        return _("Only: agency {name}").format(
            name=escape(label(Dimension.agency, scope.agency_id, lang, services.directory))
        )
    if scope.official_id is not None:
        return _("Only: the appeals you handle")
    return None


def imposed(scope: Scope) -> Dimension | None:
    if scope.block_id is not None:
        return Dimension.block
    if scope.agency_id is not None:
        return Dimension.agency
    return None


def period_line(spec: SliceSpec, period: Period) -> str:
    if spec.period == PeriodKind.custom:
        return period_text(period)
    return f"{_(PERIOD_NAMES[spec.period])} ({period_text(period)})"


def describe(spec: SliceSpec, scope: Scope, period: Period, services: Services, lang: str) -> list[str]:
    """The slice in words: metric, period, dimensions, filters, and what the scope imposes."""
    dims = " × ".join(_(DIMENSION_NAMES[d]) for d in spec.dims) or _("none")
    filters = [
        f"{_(DIMENSION_NAMES[dim])}: {filter_names(dim, values, lang, services.directory)}"
        for dim, values in spec.filters
        if dim != imposed(scope)
    ]
    lines = [
        _("Metric: {metric}").format(metric=escape(_(METRIC_NAMES[spec.metric]))),
        _("Period: {period}").format(period=escape(period_line(spec, period))),
        _("Dimensions: {dimensions}").format(dimensions=escape(dims)),
        _("Filters: {filters}").format(filters=escape("; ".join(filters) or _("none"))),
    ]
    line = scope_line(scope, services, lang)
    if line:
        lines.append(line)
    return lines


async def main_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    scope = await services.stats.scope(actor)
    spec = services.stats.allowed(scope, current(dialog_manager))
    period = services.stats.period(spec)
    text = "\n".join([_("<b>📊 Statistics</b>"), *describe(spec, scope, period, services, actor.lang)])
    return common(
        dialog_manager,
        text,
        metric=_("📏 Metric"),
        period=_("📅 Period"),
        dims=_("🧩 Dimensions"),
        filters=_("🔎 Filters"),
        show=_("▶️ Show"),
        presets=_("⭐ Presets"),
        close=_("✖ Close"),
    )


async def on_show(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    await show(manager, current(manager))


async def show(manager: DialogManager, spec: SliceSpec) -> None:
    """The table (and the chart) as new messages; the builder follows below them."""
    services, settings, actor = deps(manager)
    table = await services.stats.slice(actor, spec)
    bot: Bot = manager.middleware_data["bot"]
    chat: Chat = manager.middleware_data["event_chat"]
    number = await remember(manager.middleware_data, spec, table.period)
    await bot.send_message(
        chat.id,
        table_text(table, actor.lang, services.directory, settings.stats.top_rows),
        reply_markup=table_buttons(number),
    )
    png = await chart(table, actor.lang, services)
    if png is not None:
        await bot.send_photo(chat.id, BufferedInputFile(png, filename=f"{file_stem(table)}.png"))
    manager.show_mode = ShowMode.SEND


def table_buttons(number: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=_("⬇️ XLSX"), callback_data=StatsCb(a=StatsAction.xlsx, n=number).pack()),
                InlineKeyboardButton(text=_("⬇️ CSV"), callback_data=StatsCb(a=StatsAction.csv, n=number).pack()),
            ],
            [InlineKeyboardButton(text=_("💾 Save as preset"), callback_data=StatsCb(a=StatsAction.save, n=number).pack())],
        ]
    )


def file_stem(table: Table) -> str:
    return f"stats-{table.spec.metric.value}-{table.period.first_day:%Y-%m-%d}-{table.period.last_day:%Y-%m-%d}"


# --- the person's latest tables (their export buttons) --------------------------------------------------------


def tables_key(data: dict[str, Any]) -> tuple[BaseStorage, StorageKey]:
    bot: Bot = data["bot"]
    chat: Chat = data["event_chat"]
    user = data["event_from_user"]
    return data["fsm_storage"], StorageKey(bot_id=bot.id, chat_id=chat.id, user_id=user.id, destiny=TABLES)


async def remember(data: dict[str, Any], spec: SliceSpec, period: Period) -> int:
    """Keep the slice of a table just shown; its number goes into the buttons under it (the latest TABLES_KEPT).

    The number is random, not a counter: two tables shown at once (two instances, or two presses) never share one,
    whatever order their writes land in."""
    storage, key = tables_key(data)
    kept = await storage.get_data(key)
    number = secrets.randbelow(2**31 - 2) + 1
    tables = dict(kept.get("tables", {}))
    order = [k for k in kept.get("order", []) if k in tables][-(TABLES_KEPT - 1) :]
    tables = {k: tables[k] for k in order}
    # The days the table covered: its export covers them too, even after midnight has moved «today».
    tables[str(number)] = {**spec.to_json(), "first_day": period.first_day.isoformat(), "last_day": period.last_day.isoformat()}
    await storage.set_data(key, {"order": [*order, str(number)], "tables": tables})
    return number


async def recall(data: dict[str, Any], number: int) -> tuple[SliceSpec, date | None, date | None] | None:
    """The slice of a table shown earlier and the days it covered (None for a table kept before they were)."""
    storage, key = tables_key(data)
    stored = dict((await storage.get_data(key)).get("tables", {})).get(str(number))
    if not isinstance(stored, dict):
        return None
    try:
        first, last = stored.get("first_day"), stored.get("last_day")
        return (
            SliceSpec.from_json(stored),
            date.fromisoformat(first) if first else None,
            date.fromisoformat(last) if last else None,
        )
    except (ValueError, TypeError):
        return None


@router.callback_query(StatsCb.filter())
async def on_table_button(
    query: CallbackQuery,
    callback_data: StatsCb,
    actor: Actor,
    services: Services,
    settings: Settings,
    bot: Bot,
    callback_answer: CallbackAnswer,
    dialog_manager: DialogManager,
    **data: Any,
) -> None:
    data = {**data, "bot": bot}
    await services.stats.scope(actor)
    kept = await recall(data, callback_data.n)
    if kept is None:
        callback_answer.text = _("This table is too old: press «▶️ Show» again.")
        callback_answer.show_alert = True
        return
    spec, first_day, last_day = kept
    if callback_data.a == StatsAction.save:
        services.stats.allowed(await services.stats.scope(actor), spec)
        await dialog_manager.start(StatsSave.name, data={"spec": spec.to_json()}, show_mode=ShowMode.SEND)
        # aiogram-dialog takes the pressed message for its own previous screen and removes its keyboard when it sends
        # the question below: the table keeps its buttons.
        if isinstance(query.message, Message):
            await query.message.edit_reply_markup(reply_markup=table_buttons(callback_data.n))
        return
    period = services.stats.days(first_day, last_day) if first_day and last_day else None
    table = await services.stats.slice(actor, spec, period)
    if not (table.rows if spec.dims else (table.total.base or table.total.value)):
        callback_answer.text = _("Nothing to export: the slice is empty.")
        callback_answer.show_alert = True
        return
    chat: Chat = data["event_chat"]
    extension = "xlsx" if callback_data.a == StatsAction.xlsx else "csv"
    content = await export_file(table, actor.lang, services, settings, xlsx=extension == "xlsx")
    await bot.send_document(
        chat.id,
        BufferedInputFile(content, filename=f"{file_stem(table)}.{extension}"),
        caption=_("{metric}, {period}").format(
            metric=escape(_(METRIC_NAMES[spec.metric])), period=period_text(table.period)
        ),
    )


# --- charts and spreadsheets (bot/stats_files.py) ---------------------------------------------------------------
# Drawing and writing a big table takes CPU seconds: they run in a worker thread (which keeps the reader's locale, a
# context variable), so the bot keeps answering everyone else meanwhile.


async def chart(table: Table, lang: str, services: Services) -> bytes | None:
    return await asyncio.to_thread(chart_png, table, lang, services.directory)


async def export_file(table: Table, lang: str, services: Services, settings: Settings, xlsx: bool) -> bytes:
    def build() -> bytes:
        sheet = table_sheet(table, lang, services.directory, settings.stats.small_cell)
        return xlsx_bytes([sheet]) if xlsx else csv_bytes(sheet)

    return await asyncio.to_thread(build)


# --- metric, period, dimensions ----------------------------------------------------------------------------------


def mark(on: bool, text: str) -> str:
    return f"✅ {text}" if on else text


async def metric_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.stats.scope(actor)
    chosen = current(dialog_manager).metric
    items = [(m.value, mark(m == chosen, _(name))) for m, name in METRIC_NAMES.items()]
    return common(dialog_manager, _("What to count?"), items=items)


async def on_metric(callback: CallbackQuery, widget: Any, manager: DialogManager, value: str) -> None:
    if value not in Metric.__members__:
        raise Gone("metric")
    spec = current(manager)
    keep(manager, SliceSpec(Metric(value), spec.dims, spec.filters, spec.period, spec.start, spec.end))
    await manager.switch_to(S.main)


async def period_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.stats.scope(actor)
    chosen = current(dialog_manager).period
    items = [(p.value, mark(p == chosen, _(name))) for p, name in PERIOD_NAMES.items() if p != PeriodKind.custom]
    return common(
        dialog_manager,
        _("Which period? The current ones end today; «Two dates…» takes any days you type."),
        items=items,
        dates=mark(chosen == PeriodKind.custom, _(PERIOD_NAMES[PeriodKind.custom])),
    )


async def on_period(callback: CallbackQuery, widget: Any, manager: DialogManager, value: str) -> None:
    if value not in PeriodKind.__members__ or value == PeriodKind.custom:
        raise Gone("period")
    spec = current(manager)
    keep(manager, SliceSpec(spec.metric, spec.dims, spec.filters, PeriodKind(value)))
    await manager.switch_to(S.main)


def dates_example(services: Services) -> str:
    today = services.stats.clock.now().astimezone(services.stats.tz).date()
    return f"{today.replace(day=1):%d.%m.%Y} {today:%d.%m.%Y}"


async def dates_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.stats.scope(actor)
    text = _("Type the first and the last day of the period as DD.MM.YYYY DD.MM.YYYY, e.g. {example}.").format(
        example=dates_example(services)
    )
    return common(dialog_manager, text)


def period_refusal(error: PeriodRefused, services: Services, settings: Settings) -> str:
    today = services.stats.clock.now().astimezone(services.stats.tz).date()
    return _(PERIOD_REFUSED.get(error.detail, PERIOD_REFUSED["malformed"])).format(
        example=dates_example(services),
        today=f"{today:%d.%m.%Y}",
        days=settings.stats.max_period_days,
        year=EARLIEST_DAY.year,
    )


async def on_dates(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, settings, _actor = deps(manager)
    try:
        first, last = parse_days(message.text or "")
        services.stats.check_days(first, last)
    except PeriodRefused as error:
        say(manager, period_refusal(error, services, settings))
        return
    spec = current(manager)
    keep(
        manager,
        SliceSpec(spec.metric, spec.dims, spec.filters, PeriodKind.custom, first.isoformat(), last.isoformat()),
    )
    await manager.switch_to(S.main)


async def dims_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.stats.scope(actor)
    dims = current(dialog_manager).dims
    items = [
        (d.value, f"{dims.index(d) + 1}. {_(name)}" if d in dims else _(name)) for d, name in DIMENSION_NAMES.items()
    ]
    text = _("Cut the slice by up to {max} dimensions: press to add or remove; the first chosen is the first column.")
    return common(dialog_manager, text.format(max=MAX_DIMENSIONS), items=items, done=_("✅ Done"))


async def on_dim(callback: CallbackQuery, widget: Any, manager: DialogManager, value: str) -> None:
    if value not in Dimension.__members__:
        raise Gone("dimension")
    spec = current(manager)
    dim = Dimension(value)
    if dim in spec.dims:
        dims = tuple(d for d in spec.dims if d != dim)
    elif len(spec.dims) >= MAX_DIMENSIONS:
        popup(manager, _("At most {max} dimensions: remove one first.").format(max=MAX_DIMENSIONS), alert=True)
        return
    else:
        dims = (*spec.dims, dim)
    keep(manager, SliceSpec(spec.metric, dims, spec.filters, spec.period, spec.start, spec.end))


# --- filters --------------------------------------------------------------------------------------------------


async def filters_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    scope = await services.stats.scope(actor)
    spec = current(dialog_manager)
    items = []
    for dim in FILTER_DIMENSIONS:
        if dim == imposed(scope):
            continue
        count = len(spec.filter_of(dim))
        name = _(DIMENSION_NAMES[dim])
        items.append((dim.value, f"{name} ({count})" if count else name))
    lines = [_("Filter the appeals: choose a dimension, then its values.")]
    line = scope_line(scope, services, actor.lang)
    if line:
        lines.append(line)
    return common(
        dialog_manager, "\n".join(lines), items=items, clear=_("🧹 Clear all filters"), some=bool(spec.filters)
    )


async def on_filter_dim(callback: CallbackQuery, widget: Any, manager: DialogManager, value: str) -> None:
    if value not in Dimension.__members__ or Dimension(value) in TIME_DIMENSIONS:
        raise Gone("dimension")
    manager.dialog_data["filter"] = value
    await manager.switch_to(S.values)


async def on_clear_all(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    spec = current(manager)
    keep(manager, SliceSpec(spec.metric, spec.dims, (), spec.period, spec.start, spec.end))


def filter_dim(manager: DialogManager) -> Dimension:
    value = manager.dialog_data.get("filter")
    if value not in FILTER_DIMENSIONS:
        raise Gone("dimension")
    return Dimension(value)


def options(dim: Dimension, scope: Scope, services: Services, lang: str) -> list[tuple[str, str]]:
    """The values a filter on `dim` offers, as (id, plain label): a block head's categories are those of the block, a
    supervisor's agency is their own; categories come grouped by their block."""
    directory = services.directory
    match dim:
        case Dimension.block:
            return [(str(b.id), b.name(lang)) for b in directory.blocks() if scope.block_id in (None, b.id)]
        case Dimension.category:
            return [
                (str(c.id), f"{b.name(lang)} › {c.name(lang)}")
                for b in directory.blocks()
                if scope.block_id in (None, b.id)
                for c in directory.categories(b.id)
            ]
        case Dimension.agency:
            return [(str(a.id), a.name(lang)) for a in directory.agencies() if scope.agency_id in (None, a.id)]
        case Dimension.district:
            return [(str(d.id), d.name(lang)) for d in directory.districts()]
        case Dimension.status:
            return [(s.value, status_name(s.value)) for s in AppealStatus]
        case Dimension.kind:
            return [(k.value, _(SHORT_KINDS[k.value])) for k in AppealKind]
    return []


async def values_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    scope = await services.stats.scope(actor)
    dim = filter_dim(dialog_manager)
    chosen = {str(v) for v in current(dialog_manager).filter_of(dim)}
    items = [(key, fit([], [mark(key in chosen, name)])) for key, name in options(dim, scope, services, actor.lang)]
    text = _("{dimension}: press the values to keep (several may be chosen); none chosen means all.").format(
        dimension=_(DIMENSION_NAMES[dim])
    )
    return common(dialog_manager, text, items=items, clear=_("🧹 Clear"), some=bool(chosen), done=_("✅ Done"))


async def on_value(callback: CallbackQuery, widget: Any, manager: DialogManager, value: str) -> None:
    services, _settings, actor = deps(manager)
    dim = filter_dim(manager)
    item: int | str = as_id(value, dim.value) if dim in ID_DIMENSIONS else value
    spec = current(manager)
    values = list(spec.filter_of(dim))
    values = [v for v in values if v != item] if item in values else [*values, item]
    changed = spec.with_filter(dim, tuple(values))
    # Checked before it is kept: an unknown value (Gone), another block or agency (Forbidden) is refused here.
    services.stats.allowed(await services.stats.scope(actor), changed)
    keep(manager, changed)


async def on_clear(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    keep(manager, current(manager).with_filter(filter_dim(manager), ()))


# --- presets ----------------------------------------------------------------------------------------------------


async def presets_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    presets = await services.presets.presets(actor)
    items = [
        (p.id, fit([], [("⏰ " if p.schedule else "") + p.name])) for p in presets
    ]
    text = _("<b>Presets</b>: {count}. Open one, or save the slice on the builder's screen.").format(count=len(presets))
    return common(dialog_manager, text, items=items, save=_("💾 Save the current slice"))


async def on_save_current(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    spec = services.stats.allowed(await services.stats.scope(actor), current(manager))
    await manager.start(StatsSave.name, data={"spec": spec.to_json()})


def as_id(value: str, what: str) -> int:
    """An id from a button (forged ones included): digits that fit the INTEGER columns, else Gone."""
    if not value.isdigit() or len(value) > 9:
        raise Gone(what)
    return int(value)


async def on_open_preset(callback: CallbackQuery, widget: Any, manager: DialogManager, value: str) -> None:
    services, _settings, actor = deps(manager)
    preset_id = as_id(value, "preset")
    await services.presets.preset(actor, preset_id)  # not theirs, or no such preset: "not found"
    manager.dialog_data["preset_id"] = preset_id
    await manager.switch_to(S.preset)


async def the_preset(manager: DialogManager) -> Preset:
    services, _settings, actor = deps(manager)
    preset_id = manager.dialog_data.get("preset_id")
    if not isinstance(preset_id, int):
        raise Gone("preset")
    return await services.presets.preset(actor, preset_id)


def schedule_text(preset: Preset) -> str:
    return _(SCHEDULES[preset.schedule]) if preset.schedule else _("not scheduled")


async def preset_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    preset = await the_preset(dialog_manager)
    lines = [_("<b>Preset «{name}»</b>").format(name=escape(preset.name))]
    if preset.spec is None:
        lines.append(_(PRESET_REFUSED["preset_spec"]))
    else:
        scope = await services.stats.scope(actor)
        try:
            spec = services.stats.allowed(scope, preset.spec)
            lines += describe(spec, scope, services.stats.period(spec), services, actor.lang)
        except Gone:
            lines.append(_("Some of its values are no longer in the directory: open it to see which, or delete it."))
        lines.append(_("Sent: {schedule}, to {count} people.").format(
            schedule=schedule_text(preset), count=len(preset.recipients)
        ))
    return common(
        dialog_manager,
        "\n".join(lines),
        readable=preset.spec is not None,
        open=_("▶️ Show"),
        rename=_("✏️ Rename"),
        delete=_("🗑 Delete"),
        schedule=_("⏰ Schedule"),
        recipients=_("👥 Recipients"),
    )


async def on_show_preset(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, _settings, _actor = deps(manager)
    spec = services.presets.spec(await the_preset(manager))
    keep(manager, spec)  # the builder goes on from the preset's slice
    await show(manager, spec)
    await manager.switch_to(S.main, show_mode=ShowMode.SEND)


async def rename_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    preset = await the_preset(dialog_manager)
    text = _("Type a new name for «{name}» (up to {max} characters).").format(name=escape(preset.name), max=NAME_CHARS)
    return common(dialog_manager, text)


def preset_refusal(error: PresetRefused) -> str:
    return _(PRESET_REFUSED.get(error.detail, PRESET_REFUSED["name_empty"])).format(max=NAME_CHARS)


async def on_rename(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    preset = await the_preset(manager)
    try:
        renamed = await services.presets.rename(actor, preset.id, message.text or "")
    except PresetRefused as error:
        say(manager, preset_refusal(error))
        return
    say(manager, _("Renamed to «{name}».").format(name=escape(renamed.name)))
    await manager.switch_to(S.preset)


async def delete_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    preset = await the_preset(dialog_manager)
    return common(
        dialog_manager,
        _("Delete the preset «{name}»? Its scheduled reports stop.").format(name=escape(preset.name)),
        yes=_("🗑 Yes, delete"),
        no=_("No, keep it"),
    )


async def on_delete(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    preset = await the_preset(manager)
    await services.presets.delete(actor, preset.id)
    manager.dialog_data.pop("preset_id", None)
    popup(manager, _("The preset «{name}» is deleted.").format(name=preset.name))
    await manager.switch_to(S.presets)


async def schedule_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    preset = await the_preset(dialog_manager)
    chosen = preset.schedule.value if preset.schedule else "off"
    items = [("off", _("Off"))] + [(s.value, _(name)) for s, name in SCHEDULES.items()]
    items = [(key, mark(key == chosen, name)) for key, name in items]
    text = _("When is «{name}» sent to its recipients? Weekly: the week before, on Monday morning; monthly: the month "
             "before, on the 1st.").format(name=escape(preset.name))
    return common(dialog_manager, text, items=items)


async def on_schedule(callback: CallbackQuery, widget: Any, manager: DialogManager, value: str) -> None:
    services, _settings, actor = deps(manager)
    if value != "off" and value not in ReportSchedule.__members__:
        raise Gone("schedule")
    preset = await the_preset(manager)
    changed = await services.presets.set_schedule(actor, preset.id, ReportSchedule(value) if value != "off" else None)
    popup(manager, _("Schedule: {schedule}.").format(schedule=schedule_text(changed)))
    await manager.switch_to(S.preset)


async def recipients_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    preset = await the_preset(dialog_manager)
    people = await services.presets.candidates(actor, preset.id)
    items = []
    for person in people:
        name = _("you") if person.owner else (person.full_name or (f"@{person.username}" if person.username else _("user № {id}").format(id=person.user_id)))
        items.append((person.user_id, fit([], [mark(person.chosen, name)])))
    text = _("Who gets «{name}»? Press to add or remove; only people whose access covers this slice are listed.").format(
        name=escape(preset.name)
    )
    return common(dialog_manager, text, items=items)


async def on_recipient(callback: CallbackQuery, widget: Any, manager: DialogManager, value: str) -> None:
    services, _settings, actor = deps(manager)
    user_id = as_id(value, "recipient")
    preset = await the_preset(manager)
    try:
        await services.presets.toggle_recipient(actor, preset.id, user_id)
    except PresetRefused as error:
        popup(manager, preset_refusal(error), alert=True)


# --- saving a slice under a name --------------------------------------------------------------------------------


async def name_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.stats.scope(actor)
    text = _("Type a name for the preset (up to {max} characters).").format(max=NAME_CHARS)
    return common(dialog_manager, text)


async def on_name(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    start = manager.start_data if isinstance(manager.start_data, dict) else {}
    try:
        spec = SliceSpec.from_json(start.get("spec") or {})
    except ValueError as error:
        raise Gone("spec") from error
    try:
        preset = await services.presets.save(actor, message.text or "", spec)
    except PresetRefused as error:
        say(manager, preset_refusal(error))
        return
    await message.answer(
        _("Saved as the preset «{name}»: /stats → ⭐ Presets.").format(name=escape(preset.name))
    )
    await manager.done()


# --- the dialogs --------------------------------------------------------------------------------------------------


def window(state: Any, getter: Any, *widgets: Any) -> Window:
    return Window(heading(), *buttons_only(), *widgets, state=state, getter=getter)


def typed_window(state: Any, getter: Any, on_text: Any, *buttons: Any) -> Window:
    return Window(
        heading(),
        MessageInput(unknown_command, filter=COMMAND),
        MessageInput(on_text, content_types=[ContentType.TEXT]),
        MessageInput(text_expected),
        unmatched_press(),
        *buttons,
        state=state,
        getter=getter,
    )


def choice(widget_id: str, on_click: Any, *, type_factory: Any = str) -> Select[Any]:
    return Select(
        Format("{item[1]}"), id=widget_id, item_id_getter=lambda item: item[0], items="items",
        type_factory=type_factory, on_click=on_click,
    )


def back(state: Any) -> SwitchTo:
    return SwitchTo(Format("{back}"), id="back", state=state)


def dialog() -> Dialog:
    """Built anew for each Dispatcher; entered by /stats or from the /staff menu."""
    return Dialog(
        window(
            S.main, main_getter,
            Group(
                SwitchTo(Format("{metric}"), id="metric", state=S.metric),
                SwitchTo(Format("{period}"), id="period", state=S.period),
                SwitchTo(Format("{dims}"), id="dims", state=S.dims),
                SwitchTo(Format("{filters}"), id="filters", state=S.filters),
                width=2,
            ),
            Button(Format("{show}"), id="show", on_click=on_show),
            SwitchTo(Format("{presets}"), id="presets", state=S.presets),
            Cancel(Format("{close}")),
        ),
        window(S.metric, metric_getter, Column(choice("metric", on_metric)), back(S.main)),
        window(
            S.period, period_getter,
            Group(choice("period", on_period), width=2),
            SwitchTo(Format("{dates}"), id="dates", state=S.dates),
            back(S.main),
        ),
        typed_window(S.dates, dates_getter, on_dates, back(S.period)),
        window(
            S.dims, dims_getter,
            Group(choice("dim", on_dim), width=3),
            SwitchTo(Format("{done}"), id="done", state=S.main),
        ),
        window(
            S.filters, filters_getter,
            Group(choice("fdim", on_filter_dim), width=2),
            Button(Format("{clear}"), id="clear_all", on_click=on_clear_all, when="some"),
            back(S.main),
        ),
        window(
            S.values, values_getter,
            picker("value", on_value, type_factory=str),
            Button(Format("{clear}"), id="clear", on_click=on_clear, when="some"),
            SwitchTo(Format("{done}"), id="done", state=S.filters),
        ),
        window(
            S.presets, presets_getter,
            picker("preset", on_open_preset, type_factory=str),
            Button(Format("{save}"), id="save", on_click=on_save_current),
            back(S.main),
        ),
        window(
            S.preset, preset_getter,
            Button(Format("{open}"), id="open", on_click=on_show_preset, when="readable"),
            Group(
                SwitchTo(Format("{rename}"), id="rename", state=S.rename),
                SwitchTo(Format("{delete}"), id="delete", state=S.delete),
                SwitchTo(Format("{schedule}"), id="schedule", state=S.schedule, when="readable"),
                SwitchTo(Format("{recipients}"), id="recipients", state=S.recipients, when="readable"),
                width=2,
            ),
            back(S.presets),
        ),
        typed_window(S.rename, rename_getter, on_rename, back(S.preset)),
        window(
            S.delete, delete_getter,
            Button(Format("{yes}"), id="yes", on_click=on_delete),
            SwitchTo(Format("{no}"), id="no", state=S.preset),
        ),
        window(S.schedule, schedule_getter, Column(choice("schedule", on_schedule)), back(S.preset)),
        window(S.recipients, recipients_getter, picker("person", on_recipient, type_factory=str), back(S.preset)),
    )


def save_dialog() -> Dialog:
    return Dialog(typed_window(StatsSave.name, name_getter, on_name, Cancel(Format("{back}"))))
