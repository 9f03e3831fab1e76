"""The staff card of an appeal and every action on it, declared with aiogram-dialog: the card, its pickers
(agency and category: the likely ones first, every one behind a button; reason) and its typed inputs (question,
interim answer, duplicate with the likely originals as buttons, return comment, redirect reason, extension days and
reason, final answer with files), one window each, all editing the card's message.

The card window's getter shows the card through `services.views.show_card` (which refuses an appeal out of the
person's scope and writes the access log's row of the view); every other window's getter loads it through
`services.views.card` (the same refusal, no row: nothing of the card is shown again) and checks that the card offers
the window's action (`render.require`), so a forged or stale press opens nothing; the action itself is authorized
again by its service.

The notifications of the outbox carry plain `StaffCb` buttons («Open», «Take in work»): the plain handlers below
check access and start this dialog on the notification's message.
"""

from __future__ import annotations

from typing import Any

from aiogram import F
from aiogram.types import CallbackQuery, ContentType, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, LaunchMode, ShowMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Cancel, Group, Select, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.albums import AlbumDebouncer
from bot.callbacks import StaffAction, StaffCb
from bot.clock import Clock
from bot.config import Settings
from bot.domain import AppealKind, AppealStatus, RejectReason
from bot.middlewares.errors import refusal
from bot.notifications import REASONS
from bot.services import Services
from bot.services.appeals import DraftAttachment
from bot.services.errors import Gone, IllegalTransition, InvalidInput
from bot.services.users import Actor
from bot.services.views import StaffCard
from bot.states import AppealCard
from handlers import Handlers
from handlers.dialogs import (
    COMMAND,
    buttons_only,
    deps,
    fit,
    heading,
    notice,
    picker,
    popup,
    say,
    unknown_command,
    unmatched,
)
from handlers.media import extract_media, send_files
from handlers.staff.render import Action, actions, card_text, files_count, request_label, require

router = Handlers(__name__)
A = AppealCard
MAX_ANSWER_FILES = 10


# --- the appeal of the dialog -----------------------------------------------------------------------------


def appeal_id(manager: DialogManager) -> int:
    start: dict[str, Any] = manager.start_data or {}  # type: ignore[assignment]
    return int(start.get("appeal_id", 0))


def from_list(manager: DialogManager) -> bool:
    start: dict[str, Any] = manager.start_data or {}  # type: ignore[assignment]
    return bool(start.get("from_list"))


async def load(manager: DialogManager, action: Action | None = None) -> StaffCard:
    """The card as the person may see it now; with `action`, only if the card offers it."""
    services, _settings, actor = deps(manager)
    # With `action`, the service refuses a read-only reader (a block head) whatever the card would offer.
    card = await services.views.card(actor, appeal_id(manager), action.value if action else None)
    if action is not None:
        require(card, actor, action, services.directory)
    return card


async def decided(manager: DialogManager, said: str | None = None) -> None:
    """After a decision that takes the appeal off the list it was opened from: back to that list (refreshed),
    ready for the next one; opened from a notification, the card shows the appeal as it is now. `said` is the line
    above the next screen after typed input (a press says it in its popup instead)."""
    if from_list(manager):
        await manager.done({"notice": said} if said else None)
        return
    if said:
        say(manager, said)
    await manager.switch_to(A.card)


def labels() -> dict[str, str]:
    return {"back": _("⬅️ Back"), "cancel": _("❌ Cancel")}


# --- the card ---------------------------------------------------------------------------------------------


async def card_getter(
    dialog_manager: DialogManager, services: Services, settings: Settings, actor: Actor, clock: Clock, **_kwargs: Any
) -> dict[str, Any]:
    # The card shown: its service logs the view (the access log, one row each time the card is shown).
    card = await services.views.show_card(actor, appeal_id(dialog_manager))
    directory = services.directory
    can = actions(card, actor, directory)
    suggested = directory.agency(card.suggested_agency_id or 0)
    decisions: list[tuple[str, str]] = []
    for request in card.requests:
        kind = request_label(request.kind)
        decisions.append((f"y{request.id}", _("✅ Approve {kind}").format(kind=kind)))
        decisions.append((f"n{request.id}", _("❌ Decline {kind}").format(kind=kind)))
    return {
        "notice": notice(dialog_manager),
        "text": card_text(card, directory, actor, clock.now(), settings.tz),
        **{f"can_{action.value}": action in can for action in Action},
        "route": _("➡️ Route to {agency}").format(agency=suggested.name(actor.lang)) if suggested else "",
        "route_to": _("🏢 Another agency"),
        "category": _("🗂 Change category"),
        "kind": _("🔁 Change kind"),
        "reject": _("⛔ Reject"),
        "duplicate": _("🔗 Duplicate of…"),
        "approve": _("✅ Approve the answer"),
        "send_back": _("↩️ Return for rework"),
        "decisions": decisions,
        "take": _("🛠 Take in work"),
        "clarify": _("❓ Ask the resident"),
        "interim": _("🕐 Interim answer"),
        "redirect": _("↪️ Redirect"),
        "extension": _("⏳ Ask for an extension"),
        "answer": _("✅ Final answer"),
        "files": _("📎 Files ({count})").format(count=files_count(card)),
        "location": _("📍 Location"),
        "from_list": from_list(dialog_manager),
        "to_list": _("📋 To the list"),
        "close": _("✖ Close"),
    }


async def on_route(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.coordination.route(actor, appeal_id(manager))
    popup(manager, _("Sent to the agency."))
    await decided(manager)


async def on_kind(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    card = await load(manager, Action.kind)
    kind = AppealKind.appeal if card.kind == AppealKind.message else AppealKind.message
    await services.coordination.change(actor, card.id, kind=kind)
    popup(manager, _("Kind changed."))


async def on_approve(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.coordination.review(actor, appeal_id(manager), True)
    popup(manager, _("Approved: the resident receives the answer."))
    await decided(manager)


async def on_decide(callback: CallbackQuery, widget: Any, manager: DialogManager, key: str) -> None:
    """`key` is y or n and the request's id; a request of another appeal is not decided from this card."""
    services, _settings, actor = deps(manager)
    card = await load(manager, Action.decide)
    approve, request_id = key[:1] == "y", key[1:]
    if not request_id.isdigit() or int(request_id) not in {r.id for r in card.requests}:
        raise Gone()
    await services.coordination.decide(actor, int(request_id), approve)
    popup(manager, _("Approved.") if approve else _("Declined."))


async def on_take(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.agency.take(actor, appeal_id(manager))
    popup(manager, _("Taken in work."))


async def on_files(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """The files of the appeal and its notes, below the card (which stays where it is, not shown again: the
    access log counts the files sent, not another view of the card)."""
    services, _settings, actor = deps(manager)
    files = await services.views.files(actor, appeal_id(manager))
    manager.show_mode = ShowMode.NO_UPDATE
    if isinstance(callback.message, Message):
        await send_files(callback.message, files)


async def on_location(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """The pin of the place, below the card: a message of its own, since a text message cannot carry one (the card
    stays as it is, as for the files)."""
    services, _settings, actor = deps(manager)
    latitude, longitude = await services.views.location(actor, appeal_id(manager))
    manager.show_mode = ShowMode.NO_UPDATE
    if isinstance(callback.message, Message):
        await callback.message.answer_location(latitude, longitude)


async def to_the_list(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """The list as a new message below the card, which stays in the chat to refer to (its buttons, of a closed
    screen, go)."""
    await manager.done(show_mode=ShowMode.SEND)


def guard(action: Action) -> Any:
    """Checked on the press, before the screen changes: a stale or forged press leaves the card as it is."""

    async def check(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
        await load(manager, action)

    return check


async def own_block(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """The category picker opens at the appeal's own block (checked like every screen's button)."""
    await load(manager, Action.category)
    manager.dialog_data.pop("block_id", None)


def open_screen(action: Action, state: Any, text: str) -> SwitchTo:
    """A card button that opens the action's screen; the press is checked, and the screen's getter checks again
    whenever it is shown."""
    return SwitchTo(
        Format(f"{{{text}}}"), id=action.value, state=state, on_click=guard(action), when=f"can_{action.value}"
    )


def act_now(action: Action, on_click: Any) -> Button:
    return Button(Format(f"{{{action.value}}}"), id=action.value, on_click=on_click, when=f"can_{action.value}")


def card_window() -> Window:
    return Window(
        heading(),
        *buttons_only(),
        Button(Format("{route}"), id="route", on_click=on_route, when="can_route"),
        open_screen(Action.route_to, A.agencies, "route_to"),
        SwitchTo(
            Format("{category}"), id="category", state=A.categories, on_click=own_block, when="can_category"
        ),
        act_now(Action.kind, on_kind),
        open_screen(Action.reject, A.reasons, "reject"),
        open_screen(Action.duplicate, A.duplicate, "duplicate"),
        act_now(Action.approve, on_approve),
        open_screen(Action.send_back, A.send_back, "send_back"),
        Group(
            Select(
                Format("{item[1]}"),
                id="decide",
                item_id_getter=lambda item: item[0],
                items="decisions",
                on_click=on_decide,
            ),
            width=2,
            when="can_decide",
        ),
        act_now(Action.take, on_take),
        open_screen(Action.clarify, A.clarify, "clarify"),
        open_screen(Action.interim, A.interim, "interim"),
        open_screen(Action.redirect, A.redirect, "redirect"),
        open_screen(Action.extension, A.extension_days, "extension"),
        open_screen(Action.answer, A.answer, "answer"),
        act_now(Action.files, on_files),
        act_now(Action.location, on_location),
        Button(Format("{to_list}"), id="to_list", on_click=to_the_list, when="from_list"),
        Cancel(Format("{close}"), when=~F["from_list"]),
        state=A.card,
        getter=card_getter,
    )


# --- pickers: agency, category, reason --------------------------------------------------------------------


def picker_getter(action: Action, prompt: Any, items: Any) -> Any:
    async def getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
        card = await load(dialog_manager, action)
        return {
            "notice": None,
            "text": prompt(),
            "items": await items(dialog_manager, card, services, actor),
            "all_agencies": _("📚 All agencies"),
            "all_topics": _("📚 All topics"),
            **labels(),
        }

    return getter


async def likely_agencies(manager: DialogManager, card: StaffCard, services: Services, actor: Actor) -> list[Any]:
    """The routing matrix's suggestion (⭐) and the agencies of the appeal's block and district; not the person's
    own agency (a redirect goes elsewhere)."""
    found = await services.routing.likely_agencies(actor, card.id)
    named = [(i, services.directory.agency(i)) for i in found if i != actor.agency_id]
    return [(i, ("⭐ " if i == card.suggested_agency_id else "") + a.name(actor.lang)) for i, a in named if a]


async def agencies(manager: DialogManager, card: StaffCard, services: Services, actor: Actor) -> list[Any]:
    return [(a.id, a.name(actor.lang)) for a in services.directory.agencies()]


async def other_agencies(manager: DialogManager, card: StaffCard, services: Services, actor: Actor) -> list[Any]:
    return [(a.id, a.name(actor.lang)) for a in services.directory.agencies() if a.id != actor.agency_id]


async def blocks(manager: DialogManager, card: StaffCard, services: Services, actor: Actor) -> list[Any]:
    return [(b.id, b.name(actor.lang)) for b in services.directory.blocks()]


async def categories(manager: DialogManager, card: StaffCard, services: Services, actor: Actor) -> list[Any]:
    """The chosen block's categories; at first the appeal's own block, its current category marked."""
    current = services.directory.category(card.category_id)
    block_id = int(manager.dialog_data.get("block_id") or (current.parent_id if current else 0) or 0)
    return [
        (c.id, ("✓ " if c.id == card.category_id else "") + c.name(actor.lang))
        for c in services.directory.categories(block_id)
    ]


async def reasons(manager: DialogManager, card: StaffCard, services: Services, actor: Actor) -> list[Any]:
    return [(code.value, _(REASONS[code])) for code in RejectReason]


async def on_agency(callback: CallbackQuery, widget: Any, manager: DialogManager, agency_id: int) -> None:
    services, _settings, actor = deps(manager)
    await services.coordination.route(actor, appeal_id(manager), agency_id)
    popup(manager, _("Sent to the agency."))
    await decided(manager)


async def on_block(callback: CallbackQuery, widget: Any, manager: DialogManager, block_id: int) -> None:
    services, _settings, _actor = deps(manager)
    await load(manager, Action.category)
    if services.directory.block(block_id) is None:
        raise Gone()
    manager.dialog_data["block_id"] = block_id
    await manager.switch_to(A.categories)


async def on_category(callback: CallbackQuery, widget: Any, manager: DialogManager, category_id: int) -> None:
    services, _settings, actor = deps(manager)
    await services.coordination.change(actor, appeal_id(manager), category_id=category_id)
    popup(manager, _("Category changed."))
    await manager.switch_to(A.card)


async def on_reason(callback: CallbackQuery, widget: Any, manager: DialogManager, reason: str) -> None:
    services, _settings, actor = deps(manager)
    await services.coordination.reject(actor, appeal_id(manager), reason)
    popup(manager, _("Rejected."))
    await decided(manager)


async def on_redirect_agency(callback: CallbackQuery, widget: Any, manager: DialogManager, agency_id: int) -> None:
    services, _settings, actor = deps(manager)
    await load(manager, Action.redirect)
    if services.directory.agency(agency_id) is None or agency_id == actor.agency_id:
        raise Gone()
    manager.dialog_data["redirect_to"] = agency_id
    await manager.switch_to(A.redirect_reason)


def picker_window(state: Any, getter: Any, choice: Any, back: Any = A.card, *more: Any) -> Window:
    """A picker, with `more` buttons (the way to every choice) above Back."""
    return Window(
        heading(),
        *buttons_only(),
        choice,
        *more,
        SwitchTo(Format("{back}"), id="back", state=back),
        state=state,
        getter=getter,
    )


# --- typed input --------------------------------------------------------------------------------------------


def prompt_getter(action: Action, prompt: Any) -> Any:
    async def getter(dialog_manager: DialogManager, **_kwargs: Any) -> dict[str, Any]:
        await load(dialog_manager, action)
        _services, settings, _actor = deps(dialog_manager)
        return {
            "notice": notice(dialog_manager),
            "text": prompt(settings) + "\n" + _("/cancel to stop."),
            **labels(),
        }

    return getter


async def text_expected(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    say(manager, _("Please type the text, or /cancel."))


def typed_window(state: Any, getter: Any, on_text: Any, back: Any = A.card, *choices: Any) -> Window:
    """A window that waits for text (and offers `choices`, if any): commands and other content get a word and the
    prompt again."""
    return Window(
        heading(),
        MessageInput(unknown_command, filter=COMMAND),
        MessageInput(on_text, content_types=[ContentType.TEXT]),
        MessageInput(text_expected),
        *choices,
        unmatched(),
        SwitchTo(Format("{back}"), id="back", state=back),
        state=state,
        getter=getter,
    )


def typed(message: Message) -> str:
    return (message.text or "").strip()


async def on_duplicate(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    try:
        await services.coordination.mark_duplicate(actor, appeal_id(manager), typed(message))
    except InvalidInput as error:
        if error.detail == "original_self":
            say(manager, _("That is this appeal's own number. Type the number of the original appeal."))
        elif error.detail == "original_closed":
            say(
                manager,
                _(
                    "That appeal is already closed, so its resident would wait for news that will not come. Handle "
                    "this one on its own, or reject it as a repeated appeal."
                ),
            )
        elif error.detail == "original":
            say(manager, _("No such appeal to be the original. Type its number, e.g. 2026-000123."))
        else:
            raise
        return
    await decided(manager, _("Done."))


async def duplicate_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    """The typed number, or one of the likely originals as buttons."""
    await load(dialog_manager, Action.duplicate)
    directory, items = services.directory, []
    for found in await services.views.originals(actor, appeal_id(dialog_manager)):
        category, district = directory.category(found.category_id), directory.district(found.district_id)
        names = [category.name(actor.lang) if category else "—", district.name(actor.lang) if district else "—"]
        if found.same_resident:
            why = _("same resident")
        elif found.meters is not None:
            why = _("{meters} m").format(meters=found.meters)
            names = names[:1]
        else:
            why = ""
        items.append((found.number, fit([f"№ {found.number}", *filter(None, [why])], names)))
    text = _("Type the number of the original appeal (e.g. 2026-000123):")
    if items:
        text += "\n" + _("Or choose it: the resident's other open appeals, and open appeals of the same topic nearby.")
    return {"notice": notice(dialog_manager), "text": text + "\n" + _("/cancel to stop."), "items": items, **labels()}


async def on_original(callback: CallbackQuery, widget: Any, manager: DialogManager, number: str) -> None:
    services, _settings, actor = deps(manager)
    try:
        await services.coordination.mark_duplicate(actor, appeal_id(manager), number)
    except InvalidInput as error:  # the offered appeal was closed or became a duplicate meanwhile
        raise Gone(error.detail) from error
    popup(manager, _("Closed as a duplicate."))
    await decided(manager)


async def on_send_back(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.coordination.review(actor, appeal_id(manager), False, typed(message))
    await decided(manager, _("Done."))


async def done_to_card(manager: DialogManager) -> None:
    """After typed input was stored: back to the card as it is now, with "Done." above it."""
    say(manager, _("Done."))
    await manager.switch_to(A.card)


async def on_clarify(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.agency.ask_clarification(actor, appeal_id(manager), typed(message))
    await done_to_card(manager)


async def on_interim(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.agency.interim(actor, appeal_id(manager), typed(message))
    await done_to_card(manager)


# Refusals of a request typed to its end that no retyping can change: said, and the card shown again (not the step
# re-asked, where every text would meet the same refusal; QA: a second extension while the first one waited).
FINAL_REFUSALS = ("request_pending", "extension_used")


async def back_to_card_if_final(manager: DialogManager, error: InvalidInput) -> None:
    if error.detail not in FINAL_REFUSALS:
        raise error
    say(manager, refusal(error))
    await manager.switch_to(A.card)


async def on_redirect_reason(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    agency_id = int(manager.dialog_data.get("redirect_to", 0))
    try:
        await services.agency.request_redirect(actor, appeal_id(manager), agency_id, typed(message))
    except InvalidInput as error:
        await back_to_card_if_final(manager, error)
        return
    await done_to_card(manager)


async def on_extension_days(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    _services, settings, _actor = deps(manager)
    text, most = typed(message), settings.limits.extension_max_days
    if not text.isdigit() or not 1 <= int(text) <= most:
        say(manager, _("Please type a number from 1 to {max}.").format(max=most))
        return
    manager.dialog_data["days"] = int(text)
    await manager.switch_to(A.extension_reason)


async def on_extension_reason(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    days = int(manager.dialog_data.get("days", 0))
    try:
        await services.agency.request_extension(actor, appeal_id(manager), days, typed(message))
    except InvalidInput as error:
        await back_to_card_if_final(manager, error)
        return
    await done_to_card(manager)


async def on_answer(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    manager.dialog_data.update(answer=typed(message), files=[])
    await manager.switch_to(A.answer_files)


# --- the final answer's files -------------------------------------------------------------------------------


async def answer_files_getter(dialog_manager: DialogManager, **_kwargs: Any) -> dict[str, Any]:
    await load(dialog_manager, Action.answer)
    count = len(dialog_manager.dialog_data.get("files", []))
    text = _("Attach photos or documents to the answer if needed, then press «Send».")
    if count:
        text += "\n" + _("📎 Files attached: {count} of {max}.").format(count=count, max=MAX_ANSWER_FILES)
    return {"notice": notice(dialog_manager), "text": text, "send": _("📤 Send"), **labels()}


async def on_answer_file(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    media = extract_media(message)
    if media is None:
        say(manager, _("Attach photos or documents to the answer if needed, then press «Send»."))
        return
    files: list[list[str]] = list(manager.dialog_data.get("files", []))
    if len(files) < MAX_ANSWER_FILES and all(f[2] != media.file_unique_id for f in files):
        files.append([media.kind, media.file_id, media.file_unique_id])
        manager.dialog_data["files"] = files
    if message.media_group_id:
        # An album is several updates: the window is shown once, after its last item.
        manager.show_mode = ShowMode.NO_UPDATE
        albums: AlbumDebouncer = manager.middleware_data["albums"]
        background = manager.bg()

        async def summary() -> None:
            await background.update({}, show_mode=ShowMode.SEND)

        albums.touch((message.chat.id, message.media_group_id), summary)


async def on_send_answer(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    files = [DraftAttachment(kind, file_id, unique) for kind, file_id, unique in manager.dialog_data.get("files", [])]
    await services.agency.answer(actor, appeal_id(manager), manager.dialog_data.get("answer", ""), files)
    manager.dialog_data.pop("files", None)
    popup(manager, _("The answer went to the ЦУР for a check."))
    await manager.switch_to(A.card)


# --- the dialog ---------------------------------------------------------------------------------------------


def dialog() -> Dialog:
    """Built anew for each Dispatcher. SINGLE_TOP: a card opened from a notification replaces the card on top."""
    return Dialog(
        card_window(),
        picker_window(
            A.agencies,
            picker_getter(Action.route_to, lambda: _("Choose the agency:"), likely_agencies),
            picker("agency", on_agency),
            A.card,
            SwitchTo(Format("{all_agencies}"), id="all", state=A.all_agencies),
        ),
        picker_window(
            A.all_agencies,
            picker_getter(Action.route_to, lambda: _("Choose the agency:"), agencies),
            picker("any_agency", on_agency),
            A.agencies,
        ),
        picker_window(
            A.categories,
            picker_getter(Action.category, lambda: _("Choose the category:"), categories),
            picker("category", on_category),
            A.card,
            SwitchTo(Format("{all_topics}"), id="all", state=A.blocks),
        ),
        picker_window(
            A.blocks,
            picker_getter(Action.category, lambda: _("Choose the topic:"), blocks),
            picker("block", on_block),
            A.categories,
        ),
        picker_window(
            A.reasons,
            picker_getter(
                Action.reject,
                lambda: _("Why is it left without consideration? The resident receives this explanation."),
                reasons,
            ),
            picker("reason", on_reason, type_factory=str),
        ),
        typed_window(A.duplicate, duplicate_getter, on_duplicate, A.card, picker("original", on_original, type_factory=str)),
        typed_window(
            A.send_back,
            prompt_getter(Action.send_back, lambda s: _("Type what must be reworked in the answer:")),
            on_send_back,
        ),
        typed_window(
            A.clarify, prompt_getter(Action.clarify, lambda s: _("Type the question to the resident:")), on_clarify
        ),
        typed_window(
            A.interim,
            prompt_getter(Action.interim, lambda s: _("Type the interim answer for the resident:")),
            on_interim,
        ),
        picker_window(
            A.redirect,
            picker_getter(Action.redirect, lambda: _("To which agency should it go?"), likely_agencies),
            picker("redirect_to", on_redirect_agency),
            A.card,
            SwitchTo(Format("{all_agencies}"), id="all", state=A.redirect_all),
        ),
        picker_window(
            A.redirect_all,
            picker_getter(Action.redirect, lambda: _("To which agency should it go?"), other_agencies),
            picker("redirect_any", on_redirect_agency),
            A.redirect,
        ),
        typed_window(
            A.redirect_reason,
            prompt_getter(Action.redirect, lambda s: _("Type the reason for the redirect:")),
            on_redirect_reason,
            back=A.redirect,
        ),
        typed_window(
            A.extension_days,
            prompt_getter(
                Action.extension,
                lambda s: _("By how many days (1–{days})?").format(days=s.limits.extension_max_days),
            ),
            on_extension_days,
        ),
        typed_window(
            A.extension_reason,
            prompt_getter(Action.extension, lambda s: _("Type the reason for the extension:")),
            on_extension_reason,
            back=A.extension_days,
        ),
        typed_window(
            A.answer, prompt_getter(Action.answer, lambda s: _("Type the final answer to the resident:")), on_answer
        ),
        Window(
            heading(),
            MessageInput(unknown_command, filter=COMMAND),
            MessageInput(on_answer_file, content_types=[ContentType.PHOTO, ContentType.DOCUMENT, ContentType.VIDEO]),
            MessageInput(on_answer_file),
            unmatched(),
            Button(Format("{send}"), id="send", on_click=on_send_answer),
            SwitchTo(Format("{back}"), id="back", state=A.answer),
            state=A.answer_files,
            getter=answer_files_getter,
        ),
        launch_mode=LaunchMode.SINGLE_TOP,
    )


# --- the outbox's buttons -----------------------------------------------------------------------------------


async def open_card(dialog_manager: DialogManager, appeal: int) -> None:
    """The card, on the message pressed (the notification becomes the card)."""
    await dialog_manager.start(A.card, data={"appeal_id": appeal})


@router.callback_query(StaffCb.filter((F.action == StaffAction.show) & (F.id != 0)))
async def show_from_list(
    callback: CallbackQuery, callback_data: StaffCb, actor: Actor, services: Services, dialog_manager: DialogManager
) -> None:
    """A button of a notification that lists several appeals: the card below it, so the list stays to open the
    next one. Started in the background (aiogram-dialog's BgManager), as the pressed message is no dialog's:
    started from the press, the new card would take the list's keyboard away."""
    await services.views.card(actor, callback_data.id)
    await dialog_manager.bg().start(A.card, data={"appeal_id": callback_data.id}, show_mode=ShowMode.SEND)


@router.callback_query(StaffCb.filter((F.action == StaffAction.take) & (F.id != 0)))
async def take_from_notification(
    callback: CallbackQuery,
    callback_data: StaffCb,
    callback_answer: CallbackAnswer,
    actor: Actor,
    services: Services,
    dialog_manager: DialogManager,
) -> None:
    try:
        await services.agency.take(actor, callback_data.id)
    except IllegalTransition:
        card = await services.views.card(actor, callback_data.id)  # a stranger is refused here, as before
        if card.status != AppealStatus.in_progress:
            raise
        # The assignment's button pressed after the appeal was taken (from the inbox, or by a colleague): the card as
        # it is now, not a refusal (QA: the sandbox's demo assignment offered it after the seed took the appeal).
        callback_answer.text = _("This appeal is already in work.")
    else:
        callback_answer.text = _("Taken in work.")
    await open_card(dialog_manager, callback_data.id)


@router.callback_query(StaffCb.filter(F.id != 0))
async def open_from_notification(
    callback: CallbackQuery, callback_data: StaffCb, actor: Actor, services: Services, dialog_manager: DialogManager
) -> None:
    """«Open», and any other button of a card sent before the dialogs: the card, if the person may see it."""
    await services.views.card(actor, callback_data.id)
    await open_card(dialog_manager, callback_data.id)
