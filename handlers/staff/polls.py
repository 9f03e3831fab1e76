"""/polls (and «📊 Polls» in the /staff menu): admins and editors create and publish polls; admins, editors and
analysts read the results (counts, the breakdown by district, the chart and the CSV). Declared with aiogram-dialog;
the draft lives in the dialog's data (the persistent FSM storage) until it is published.

Every getter and action asks `services.polls`, which refuses anyone without the role, so a forged press shows
nothing; the service validates the draft again when it is stored."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.enums import ContentType
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, Group, Select, SwitchTo
from aiogram_dialog.widgets.text import Format
from sqlalchemy.exc import SQLAlchemyError

from bot.charts import bar_chart, results_csv
from bot.clock import Clock
from bot.config import Settings
from bot.i18n import N_
from bot.keyboards import LANGUAGE_NAMES
from bot.services import Services
from bot.services.errors import Gone, InvalidInput
from bot.services.polls import (
    AUTHORS,
    MAX_OPTIONS,
    MIN_OPTIONS,
    OPTION_CHARS,
    QUESTION_CHARS,
    SMALL_CELL,
    Audience,
    PollDraft,
    PollResults,
    PollStatus,
)
from bot.services.users import Actor
from bot.states import Polls
from bot.texts import local_time
from handlers import Handlers
from handlers.dialogs import COMMAND, buttons_only, deps, fit, heading, notice, picker, popup, say, unknown_command
from handlers.dialogs import unmatched as unmatched_press
from handlers.staff.appeals import text_expected

router = Handlers(__name__)
logger = logging.getLogger(__name__)
P = Polls
DATE_FORMAT = "%d.%m.%Y %H:%M"
CLOSE_IN_DAYS = (1, 3, 7)

STATUS = {
    PollStatus.scheduled: N_("scheduled"),
    PollStatus.publishing: N_("being sent"),
    PollStatus.open: N_("open"),
    PollStatus.closed: N_("closed"),
}
AUDIENCES = {
    Audience.all: N_("Everyone who consented"),
    Audience.districts: N_("Chosen districts"),
    Audience.language: N_("Residents of one language"),
    Audience.block: N_("Residents who filed in a topic"),
}


@router.message(Command("polls"))
async def show_polls(message: Message, actor: Actor, services: Services, dialog_manager: DialogManager) -> None:
    await services.polls.check_reader(actor, "poll_list")
    await dialog_manager.start(P.list, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


def common(manager: DialogManager, text: str, **values: Any) -> dict[str, Any]:
    return {"notice": notice(manager), "text": text, "back": _("⬅️ Back"), **values}


def data(manager: DialogManager) -> dict[str, Any]:
    return manager.dialog_data


def parse_moment(text: str, settings: Settings) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), DATE_FORMAT).replace(tzinfo=settings.tz)
    except ValueError:
        return None


def draft_of(manager: DialogManager) -> PollDraft:
    d = data(manager)
    if not d.get("question") or not d.get("closes_at") or not d.get("audience"):
        raise Gone("draft")
    return PollDraft(
        question=str(d["question"]),
        options=tuple(d.get("options", [])),
        multiple=bool(d.get("multiple")),
        allow_other=bool(d.get("other")),
        audience=Audience(d["audience"]),
        closes_at=datetime.fromisoformat(d["closes_at"]),
        districts=tuple(int(x) for x in d.get("districts", [])),
        language=d.get("language"),
        block_id=d.get("block_id"),
    )


# --- the list ---------------------------------------------------------------------------------------------


async def list_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, **_kwargs: Any
) -> dict[str, Any]:
    polls = await services.polls.polls(actor)
    items = [
        (p.id, fit([f"№ {p.id}", _(STATUS[p.status])], [p.question])) for p in polls
    ]
    text = _("<b>Polls</b>: {count}. Open one for its results.").format(count=len(polls))
    return common(
        dialog_manager, text, items=items, author=actor.has(*AUTHORS), new=_("➕ New poll"), close=_("✖ Close")
    )


async def on_open_poll(callback: CallbackQuery, widget: Any, manager: DialogManager, poll_id: int) -> None:
    data(manager)["poll_id"] = poll_id
    await manager.switch_to(P.results)


async def on_new(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.polls.check_author(actor)
    for key in (
        "question", "options", "multiple", "other", "audience", "districts", "language", "block_id", "closes_at", "created"
    ):
        data(manager).pop(key, None)
    await manager.switch_to(P.question)


# --- creating ---------------------------------------------------------------------------------------------


async def question_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.polls.check_author(actor)
    text = _("New poll. Type the question (up to {max} characters).").format(max=QUESTION_CHARS)
    return common(dialog_manager, text)


async def on_question(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    text = (message.text or "").strip()
    if len(text) > QUESTION_CHARS:
        say(manager, _("Too long: {count} characters, at most {max}.").format(count=len(text), max=QUESTION_CHARS))
        return
    data(manager)["question"] = text
    data(manager)["options"] = []
    await manager.switch_to(P.options)


async def options_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.polls.check_author(actor)
    options = list(data(dialog_manager).get("options", []))
    lines = [f"<b>{escape(str(data(dialog_manager).get('question', '')))}</b>"]
    lines += [f"{n}. {escape(o)}" for n, o in enumerate(options, 1)]
    lines.append(
        _("Type answer option {n} ({min} to {max} options, up to {chars} characters each).").format(
            n=len(options) + 1, min=MIN_OPTIONS, max=MAX_OPTIONS, chars=OPTION_CHARS
        )
    )
    return common(
        dialog_manager,
        "\n".join(lines),
        enough=len(options) >= MIN_OPTIONS,
        some=bool(options),
        done=_("✅ Done ({count} options)").format(count=len(options)),
        undo=_("↩️ Remove the last"),
    )


async def on_option(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    text = (message.text or "").strip()
    if len(text) > OPTION_CHARS:
        say(manager, _("Too long: {count} characters, at most {max}.").format(count=len(text), max=OPTION_CHARS))
        return
    options = list(data(manager).get("options", []))
    if text in options:
        say(manager, _("This option is already there."))
        return
    options.append(text)
    data(manager)["options"] = options
    if len(options) >= MAX_OPTIONS:
        await manager.switch_to(P.mode)


async def on_undo(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    data(manager)["options"] = list(data(manager).get("options", []))[:-1]


async def mode_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.polls.check_author(actor)
    return common(
        dialog_manager, _("How many answers may a resident choose?"), single=_("One answer"), several=_("Several answers")
    )


async def on_mode(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    data(manager)["multiple"] = button.widget_id == "several"
    await manager.switch_to(P.other)


async def other_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.polls.check_author(actor)
    return common(
        dialog_manager,
        _("Add a free-text answer «Other»?"),
        yes=_("Yes, with «Other»"),
        no=_("No, only the options"),
    )


async def on_other(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    data(manager)["other"] = button.widget_id == "yes"
    await manager.switch_to(P.audience)


async def audience_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.polls.check_author(actor)
    items = [(a.value, _(label)) for a, label in AUDIENCES.items()]
    return common(dialog_manager, _("Who is asked?"), items=items)


async def on_audience(callback: CallbackQuery, widget: Any, manager: DialogManager, audience: str) -> None:
    if audience not in Audience.__members__:
        raise Gone("audience")
    data(manager)["audience"] = audience
    data(manager)["districts"] = []
    next_state = {
        Audience.all: P.closes,
        Audience.districts: P.districts,
        Audience.language: P.language,
        Audience.block: P.block,
    }[Audience(audience)]
    await manager.switch_to(next_state)


async def districts_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.polls.check_author(actor)
    chosen = set(data(dialog_manager).get("districts", []))
    items = [(d.id, ("✅ " if d.id in chosen else "") + d.name(actor.lang)) for d in services.directory.districts()]
    return common(
        dialog_manager,
        _("Residents of which districts (the district of their latest appeal)? Press to choose, then «Done»."),
        items=items,
        enough=bool(chosen),
        done=_("✅ Done ({count} chosen)").format(count=len(chosen)),
    )


async def on_district(callback: CallbackQuery, widget: Any, manager: DialogManager, district_id: int) -> None:
    services, _settings, _actor = deps(manager)
    if services.directory.district(district_id) is None:
        raise Gone("district")
    chosen = set(data(manager).get("districts", []))
    chosen ^= {district_id}
    data(manager)["districts"] = sorted(chosen)


async def language_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.polls.check_author(actor)
    return common(dialog_manager, _("Residents of which language?"), items=list(LANGUAGE_NAMES.items()))


async def on_language(callback: CallbackQuery, widget: Any, manager: DialogManager, language: str) -> None:
    if language not in LANGUAGE_NAMES:
        raise Gone("language")
    data(manager)["language"] = language
    await manager.switch_to(P.closes)


async def block_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.polls.check_author(actor)
    items = [(b.id, b.name(actor.lang)) for b in services.directory.blocks()]
    return common(dialog_manager, _("Residents who filed an appeal in which topic?"), items=items)


async def on_block(callback: CallbackQuery, widget: Any, manager: DialogManager, block_id: int) -> None:
    services, _settings, _actor = deps(manager)
    if all(b.id != block_id for b in services.directory.blocks()):
        raise Gone("block")
    data(manager)["block_id"] = block_id
    await manager.switch_to(P.closes)


async def closes_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.polls.check_author(actor)
    text = _("When does the poll close? Choose, or type the date and time as DD.MM.YYYY HH:MM (region time).")
    items = [(days, _("In {count} d.").format(count=days)) for days in CLOSE_IN_DAYS]
    return common(dialog_manager, text, items=items)


async def on_close_in(callback: CallbackQuery, widget: Any, manager: DialogManager, days: int) -> None:
    clock: Clock = manager.middleware_data["clock"]
    if days not in CLOSE_IN_DAYS:
        raise Gone("closes")
    data(manager)["closes_at"] = (clock.now() + timedelta(days=days)).isoformat()
    await manager.switch_to(P.preview)


async def on_closes_typed(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    _services, settings, _actor = deps(manager)
    clock: Clock = manager.middleware_data["clock"]
    moment = parse_moment(message.text or "", settings)
    if moment is None or moment <= clock.now():
        say(manager, _("Please type a future date and time as DD.MM.YYYY HH:MM, e.g. {example}.").format(
            example=local_time(clock.now() + timedelta(days=3), settings.tz)
        ))
        return
    data(manager)["closes_at"] = moment.isoformat()
    await manager.switch_to(P.preview)


def audience_line(draft: PollDraft, services: Services, lang: str) -> str:
    label = _(AUDIENCES[draft.audience])
    if draft.audience == Audience.districts:
        names = [d.name(lang) for d in services.directory.districts() if d.id in draft.districts]
        return f"{label}: {', '.join(names)}"
    if draft.audience == Audience.language and draft.language:
        return f"{label}: {LANGUAGE_NAMES.get(draft.language, draft.language)}"
    if draft.audience == Audience.block:
        block = next((b for b in services.directory.blocks() if b.id == draft.block_id), None)
        return f"{label}: {block.name(lang) if block else '—'}"
    return label


async def preview_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, **_kwargs: Any
) -> dict[str, Any]:
    draft = draft_of(dialog_manager)
    size = await services.polls.audience_size(actor, draft)
    lines = [_("<b>Preview</b>"), f"<b>{escape(draft.question)}</b>"]
    lines += [f"{n}. {escape(o)}" for n, o in enumerate(draft.options, 1)]
    if draft.allow_other:
        lines.append(_("+ a free-text answer «Other»"))
    lines += [
        "",
        _("Choice: {mode}").format(mode=_("several answers") if draft.multiple else _("one answer")),
        _("Audience: {audience}").format(audience=escape(audience_line(draft, services, actor.lang))),
        _("Closes: {moment}").format(moment=local_time(draft.closes_at, settings.tz)),
        _("It will be sent to {count} residents.").format(count=size),
    ]
    return common(
        dialog_manager, "\n".join(lines), now=_("🚀 Publish now"), later=_("🕒 Publish later"), cancel=_("✖ Discard")
    )


async def on_publish_now(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    # Pressed again after publish() failed: the poll stored the first time is published (publish() resumes), not
    # a second one created. The id is in the dialog data, which aiogram-dialog saves even when the handler fails.
    poll_id = data(manager).get("created")
    if not isinstance(poll_id, int):
        if await services.polls.audience_size(actor, draft_of(manager)) == 0:
            popup(manager, _("Nobody is in this audience yet: the poll would reach no one. Choose another audience."), alert=True)
            return
        try:
            poll_id = await services.polls.create(actor, draft_of(manager))
        except InvalidInput as error:
            if error.detail != "closes_at":
                raise
            say(manager, _("The closing time has passed. Please choose it again."))
            await manager.switch_to(P.closes)
            return
        data(manager)["created"] = poll_id
    now = manager.middleware_data["clock"].now()
    goes_out = services.polls.allowed(now)  # create() kept the same moment
    if goes_out > now:
        popup(
            manager,
            _("Quiet hours: residents are not disturbed now. The poll will go out at {moment}.").format(
                moment=local_time(goes_out, _settings.tz)
            ),
            alert=True,
        )
    else:
        try:
            await services.polls.publish(poll_id)
        except (SQLAlchemyError, OSError):
            # Returning normally keeps "created" in the dialog data (aiogram-dialog saves it only then): the next
            # press resumes this poll; the scheduler's tick would finish it anyway.
            logger.exception("publishing poll %s was interrupted", poll_id)
            say(manager, _("Sending was interrupted. Press «🚀 Publish now» again to send the poll to the rest."))
            return
        poll = (await services.polls.results(actor, poll_id)).poll  # a resumed publish counts them all
        if poll.status == PollStatus.open:
            popup(manager, _("Published: sent to {count} residents.").format(count=poll.recipients), alert=True)
        else:  # another instance holds it: it goes on there
            popup(manager, _("Being sent: {count} residents so far, the rest within minutes.").format(
                count=poll.recipients
            ), alert=True)
    data(manager)["poll_id"] = poll_id
    await manager.switch_to(P.results)


async def schedule_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, clock: Clock, **_kwargs: Any
) -> dict[str, Any]:
    await services.polls.check_author(actor)
    text = _("When to publish it? Type the date and time as DD.MM.YYYY HH:MM (region time), e.g. {example}.").format(
        example=local_time(clock.now() + timedelta(days=1), settings.tz)
    )
    return common(dialog_manager, text)


async def on_schedule_typed(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, settings, actor = deps(manager)
    clock: Clock = manager.middleware_data["clock"]
    moment = parse_moment(message.text or "", settings)
    draft = draft_of(manager)
    if moment is None or moment <= clock.now() or moment >= draft.closes_at:
        say(manager, _("Please type a future date and time before the poll closes ({closes}), as DD.MM.YYYY HH:MM.").format(
            closes=local_time(draft.closes_at, settings.tz)
        ))
        return
    try:
        poll_id = await services.polls.create(actor, draft, publish_at=moment)
    except InvalidInput as error:
        if error.detail != "quiet_hours":
            raise
        config = settings.scheduler
        say(manager, _("{moment} is within the quiet hours ({start}–{end}), when residents are not disturbed. Please choose another time.").format(
            moment=local_time(moment, settings.tz), start=f"{config.quiet_start:%H:%M}", end=f"{config.quiet_end:%H:%M}"
        ))
        return
    say(manager, _("Poll № {id} will be published on {moment}.").format(id=poll_id, moment=local_time(moment, settings.tz)))
    await manager.switch_to(P.list)


# --- results ----------------------------------------------------------------------------------------------


def option_labels(results: PollResults) -> list[tuple[int | None, str]]:
    labels: list[tuple[int | None, str]] = list(results.options)
    if results.allow_other or None in results.counts:
        labels.append((None, _("Other (free text)")))
    return labels


def district_name(services: Services, district_id: int | None, lang: str) -> str:
    if district_id is None:
        return _("Other districts")
    district = services.directory.district(district_id)
    return district.name(lang) if district else "—"


def hidden_text() -> str:
    return _("Results are shown once at least {n} residents have answered (now: fewer than {n}).").format(n=SMALL_CELL)


def results_text(results: PollResults, services: Services, settings: Settings, lang: str) -> str:
    poll = results.poll
    state = _(STATUS[poll.status])
    if poll.status == PollStatus.closed:
        title = _("<b>Poll № {id}</b> (closed {moment})").format(
            id=poll.id, moment=local_time(poll.closed_at or poll.closes_at, settings.tz)
        )
    else:
        title = _("<b>Poll № {id}</b> ({status}, closes {moment})").format(
            id=poll.id, status=state, moment=local_time(poll.closes_at, settings.tz)
        )
    lines = [
        title,
        f"<b>{escape(poll.question)}</b>",
    ]
    if results.hidden:  # not even the exact number of respondents under SMALL_CELL
        lines += [_("Sent to {sent}.").format(sent=poll.recipients), "", hidden_text()]
        return "\n".join(lines)
    lines += [_("Sent to {sent}, answered {answered}.").format(sent=poll.recipients, answered=results.respondents), ""]
    for n, (option_id, label) in enumerate(option_labels(results), 1):
        count = results.counts.get(option_id, 0)
        lines.append(f"{n}. {escape(label)} — {count} ({results.percent(count):.1f}%)")
    if results.rows:
        lines += [
            "",
            _("<b>By district</b> (a district with fewer than {n} answers in a cell joins «Other districts»):").format(
                n=SMALL_CELL
            ),
        ]
        numbers = {option_id: n for n, (option_id, _label) in enumerate(option_labels(results), 1)}
        for row in results.rows:
            name = escape(district_name(services, row.district_id, lang))
            if row.district_id is None:
                lines.append(_("{district}: {count} answered").format(district=name, count=row.respondents))
                continue
            cells = [f"#{numbers[o]} {c}" for o, c in sorted(row.counts.items(), key=lambda kv: numbers.get(kv[0], 99))]
            lines.append(_("{district} ({count} answered): {cells}").format(
                district=name, count=row.respondents, cells=" · ".join(cells) or "—"
            ))
    return "\n".join(lines)


def poll_id(manager: DialogManager) -> int:
    found = data(manager).get("poll_id")
    if not isinstance(found, int):
        raise Gone("poll")
    return found


async def results_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, **_kwargs: Any
) -> dict[str, Any]:
    results = await services.polls.results(actor, poll_id(dialog_manager))
    return common(
        dialog_manager,
        results_text(results, services, settings, actor.lang),
        chart=_("📊 Chart"),
        csv=_("📄 CSV"),
        stop=_("⏹ Close the poll"),
        can_close=actor.has(*AUTHORS) and results.poll.status != PollStatus.closed,
        refresh=_("🔄 Refresh"),
        others=_("📝 Other answers"),
        has_others=not results.hidden and results.counts.get(None, 0) > 0,
    )


async def shown_results(manager: DialogManager) -> PollResults | None:
    """The results for a file, or None (and a popup saying why) while they are hidden."""
    services, _settings, actor = deps(manager)
    results = await services.polls.results(actor, poll_id(manager))
    if results.hidden:
        popup(manager, hidden_text(), alert=True)
        return None
    return results


async def on_chart(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    results = await shown_results(manager)
    if results is None:
        return
    bars = [
        (label, results.counts.get(option_id, 0), results.percent(results.counts.get(option_id, 0)))
        for option_id, label in option_labels(results)
    ]
    footer = _("Answered: {answered} of {sent}").format(answered=results.respondents, sent=results.poll.recipients)
    png = bar_chart(results.poll.question, bars, footer)
    bot: Bot = manager.middleware_data["bot"]
    chat = manager.middleware_data["event_chat"]
    await bot.send_photo(
        chat.id, BufferedInputFile(png, filename=f"poll-{results.poll.id}.png"),
        caption=_("Poll № {id}: answers by option").format(id=results.poll.id),
    )
    manager.show_mode = ShowMode.SEND  # the screen follows the chart, below it


async def on_csv(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    results = await shown_results(manager)
    if results is None:
        return
    labels = option_labels(results)
    header = [_("Section"), _("District"), _("Answer"), _("Answers"), _("Percent")]
    rows: list[list[object]] = [
        [_("All"), "", label, results.counts.get(o, 0), f"{results.percent(results.counts.get(o, 0)):.1f}"]
        for o, label in labels
    ]
    names = dict(labels)
    for row in results.rows:
        name = district_name(services, row.district_id, actor.lang)
        if row.district_id is None:  # the merged districts: their respondents only
            rows.append([_("By district"), name, _("Respondents"), row.respondents, ""])
            continue
        for o, _label in labels:
            if row.counts.get(o):
                rows.append([_("By district"), name, names.get(o, "—"), row.counts[o], ""])
    bot: Bot = manager.middleware_data["bot"]
    chat = manager.middleware_data["event_chat"]
    await bot.send_document(
        chat.id, BufferedInputFile(results_csv(header, rows), filename=f"poll-{results.poll.id}.csv"),
        caption=_("Poll № {id}: aggregated results").format(id=results.poll.id),
    )
    manager.show_mode = ShowMode.SEND


async def on_other_answers(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    """The free-text «Other» answers as a UTF-8 text file: random order, no ids, districts or times."""
    services, _settings, actor = deps(manager)
    texts = await services.polls.other_answers(actor, poll_id(manager))
    if not texts:
        popup(manager, hidden_text(), alert=True)
        return
    content = "\n\n".join(f"— {text}" for text in texts) + "\n"
    bot: Bot = manager.middleware_data["bot"]
    chat = manager.middleware_data["event_chat"]
    await bot.send_document(
        chat.id, BufferedInputFile(content.encode("utf-8"), filename=f"poll-{poll_id(manager)}-other.txt"),
        caption=_("Poll № {id}: the free-text «Other» answers ({count}), in random order").format(
            id=poll_id(manager), count=len(texts)
        ),
    )
    manager.show_mode = ShowMode.SEND


async def on_stop(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.polls.close(actor, poll_id(manager))
    popup(manager, _("The poll is closed."), alert=True)


# --- the dialog -------------------------------------------------------------------------------------------


def window(state: Any, getter: Any, *widgets: Any) -> Window:
    return Window(heading(), *buttons_only(), *widgets, state=state, getter=getter)


def typed_window(state: Any, getter: Any, on_text: Any, back: Any, *choices: Any) -> Window:
    return Window(
        heading(),
        MessageInput(unknown_command, filter=COMMAND),
        MessageInput(on_text, content_types=[ContentType.TEXT]),
        MessageInput(text_expected),
        *choices,
        unmatched_press(),
        SwitchTo(Format("{back}"), id="back", state=back),
        state=state,
        getter=getter,
    )


def choice(widget_id: str, on_click: Any, *, type_factory: Any = int) -> Select[Any]:
    return Select(
        Format("{item[1]}"), id=widget_id, item_id_getter=lambda item: item[0], items="items",
        type_factory=type_factory, on_click=on_click,
    )


def dialog() -> Dialog:
    """Built anew for each Dispatcher; entered by /polls or from the /staff menu."""
    return Dialog(
        window(
            P.list, list_getter,
            Button(Format("{new}"), id="new", on_click=on_new, when="author"),
            picker("poll", on_open_poll),
            Cancel(Format("{close}")),
        ),
        typed_window(P.question, question_getter, on_question, P.list),
        typed_window(
            P.options, options_getter, on_option, P.question,
            SwitchTo(Format("{done}"), id="done", state=P.mode, when="enough"),
            Button(Format("{undo}"), id="undo", on_click=on_undo, when="some"),
        ),
        window(
            P.mode, mode_getter,
            Button(Format("{single}"), id="single", on_click=on_mode),
            Button(Format("{several}"), id="several", on_click=on_mode),
            SwitchTo(Format("{back}"), id="back", state=P.options),
        ),
        window(
            P.other, other_getter,
            Button(Format("{yes}"), id="yes", on_click=on_other),
            Button(Format("{no}"), id="no", on_click=on_other),
            SwitchTo(Format("{back}"), id="back", state=P.mode),
        ),
        window(
            P.audience, audience_getter,
            Column(choice("audience", on_audience, type_factory=str)),
            SwitchTo(Format("{back}"), id="back", state=P.other),
        ),
        window(
            P.districts, districts_getter,
            picker("district", on_district, width=2),
            SwitchTo(Format("{done}"), id="done", state=P.closes, when="enough"),
            SwitchTo(Format("{back}"), id="back", state=P.audience),
        ),
        window(
            P.language, language_getter,
            Group(choice("language", on_language, type_factory=str), width=3),
            SwitchTo(Format("{back}"), id="back", state=P.audience),
        ),
        window(
            P.block, block_getter,
            Column(choice("block", on_block)),
            SwitchTo(Format("{back}"), id="back", state=P.audience),
        ),
        typed_window(P.closes, closes_getter, on_closes_typed, P.audience, Group(choice("in", on_close_in), width=3)),
        window(
            P.preview, preview_getter,
            Button(Format("{now}"), id="now", on_click=on_publish_now),
            SwitchTo(Format("{later}"), id="later", state=P.schedule),
            SwitchTo(Format("{cancel}"), id="discard", state=P.list),
            SwitchTo(Format("{back}"), id="back", state=P.closes),
        ),
        typed_window(P.schedule, schedule_getter, on_schedule_typed, P.preview),
        window(
            P.results, results_getter,
            Group(
                Button(Format("{chart}"), id="chart", on_click=on_chart),
                Button(Format("{csv}"), id="csv", on_click=on_csv),
                width=2,
            ),
            Button(Format("{others}"), id="others", on_click=on_other_answers, when="has_others"),
            Button(Format("{refresh}"), id="refresh"),
            Button(Format("{stop}"), id="stop", on_click=on_stop, when="can_close"),
            SwitchTo(Format("{back}"), id="back", state=P.list),
        ),
    )
