"""The filing dialog, declared with aiogram-dialog: one window per step, each stating its text, its input, its
Back and (in its handler) where it goes next. Its state lives in the FSM storage (aiogram-dialog's stack and
context destinies), so a restart in the middle loses nothing.

topic → subcategory → description → files → place → district → kind (→ full name → contact) → preview.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from html import escape
from operator import itemgetter
from typing import Any

from aiogram import F
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, ExceptionTypeFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, ContentType, ErrorEvent, Message, ReplyKeyboardRemove
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.api.exceptions import OutdatedIntent, UnknownIntent
from aiogram_dialog.utils import remove_intent_id
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import (
    Button,
    Cancel,
    Column,
    Group,
    RequestContact,
    RequestLocation,
    Row,
    Select,
    SwitchTo,
)
from aiogram_dialog.widgets.markup.reply_keyboard import ReplyKeyboardFactory
from aiogram_dialog.widgets.text import Format, Multi

from bot import keyboards as kb
from bot.albums import AlbumDebouncer
from bot.config import Settings
from bot.i18n import variants
from bot.keyboards import MenuButton
from bot.services import Services
from bot.services.appeals import AppealDraft, DraftAttachment
from bot.services.errors import Gone, InvalidInput, ServiceError
from bot.services.users import Actor
from bot.states import Filing
from bot.texts import status_name
from handlers import Handlers
from handlers.dialogs import unmatched
from handlers.media import Media, extract_media
from handlers.resident import render

router = Handlers(__name__)
BACK = "⬅️ Back"
CONFIRM_ID = "ok"  # the Confirm button's widget id; its item is the draft id (see stale_button)
COMMAND = F.text.startswith("/")
BUTTON_STEPS = (Filing.block, Filing.category, Filing.district, Filing.kind, Filing.preview, Filing.edit_choice)


# --- what every step shares -------------------------------------------------------------------------------


def data(manager: DialogManager) -> dict[str, Any]:
    return manager.dialog_data


def deps(manager: DialogManager) -> tuple[Services, Settings, Actor]:
    middleware = manager.middleware_data
    return middleware["services"], middleware["settings"], middleware["actor"]


async def shared(dialog_manager: DialogManager, **_kwargs: Any) -> dict[str, Any]:
    """Labels of every window, and the complaint about the last wrong input, shown once above the question."""
    return {
        "error": dialog_manager.dialog_data.pop("error", None),
        "back": _("⬅️ Back"),
        "cancel": _("❌ Cancel"),
    }


def complain(manager: DialogManager, text: str) -> None:
    """The window is shown again (below the person's message) with `text` above its question."""
    data(manager)["error"] = text


async def advance(manager: DialogManager, natural: State, show_mode: ShowMode | None = None) -> None:
    """The natural next step, or straight back to the preview while one field is being edited."""
    if data(manager).get("editing"):
        await to_preview(manager, show_mode)
    else:
        await manager.switch_to(natural, show_mode=show_mode)


async def to_preview(manager: DialogManager, show_mode: ShowMode | None = None) -> None:
    data(manager).pop("editing", None)
    await manager.switch_to(Filing.preview, show_mode=show_mode)


async def go_back(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """Back: the previous step, or the list of fields while one field is being edited."""
    await back_from(manager, manager.current_context().state)


async def back_from(manager: DialogManager, state: State, show_mode: ShowMode | None = None) -> None:
    drop_album_summary(manager)
    editable = {step for step, _label in EDITABLE}
    if data(manager).get("editing") and state in editable:
        await manager.switch_to(Filing.edit_choice, show_mode=show_mode)
    else:
        await manager.back(show_mode=show_mode)


async def leave_reply_keyboard(message: Message, text: str) -> None:
    """The reply keyboard (location, contact) goes away with a word on what happened; the question below it is
    deleted and the next one sent (ShowMode.DELETE_AND_SEND), so no empty message is needed to hide it."""
    await message.answer(text, reply_markup=ReplyKeyboardRemove())


async def reply_back(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """Back from a step with a reply keyboard (its button arrives as a message, turned into this click)."""
    # In a private chat the chat id is the person's id.
    await manager.middleware_data["bot"].send_message(
        callback.from_user.id, _("Going back."), reply_markup=ReplyKeyboardRemove()
    )
    await back_from(manager, manager.current_context().state, ShowMode.DELETE_AND_SEND)


async def unknown_command(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    complain(manager, _("Unknown command. The commands are listed in /help."))


async def buttons_expected(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    complain(manager, _("Please choose one of the buttons."))


def question() -> Multi:
    return Multi(Format("{error}", when="error"), Format("{prompt}"), sep="\n\n")


def back_button() -> Button:
    return Button(Format("{back}"), id="back", on_click=go_back)


def step(state: State, getter: Any, *widgets: Any, reply_keyboard: bool = False) -> Window:
    """A window: its question, its widgets, and the answers every step gives to an unknown command, (on the
    steps of buttons) to typed text, and to a press of a button it does not have."""
    inputs: list[Any] = [MessageInput(unknown_command, filter=COMMAND), unmatched()]
    if state in BUTTON_STEPS:
        inputs.append(MessageInput(buttons_expected))
    if reply_keyboard:
        return Window(
            question(), *inputs, *widgets, state=state, getter=getter, markup_factory=ReplyKeyboardFactory(resize_keyboard=True)
        )
    return Window(question(), *inputs, *widgets, state=state, getter=getter)


def choice(widget_id: str, on_click: Any) -> Select[int]:
    return Select(
        Format("{item[1]}"), id=widget_id, item_id_getter=itemgetter(0), items="items", type_factory=int, on_click=on_click
    )


# --- topic and subcategory --------------------------------------------------------------------------------


def popup(manager: DialogManager, text: str, *, alert: bool = False) -> None:
    """What the press is answered with (aiogram's CallbackAnswerMiddleware answers it when the handler ends); a
    reply-keyboard button has no answer to show it in."""
    answer: CallbackAnswer | None = manager.middleware_data.get("callback_answer")
    if answer is not None:
        answer.text = text
        answer.show_alert = alert


async def blocks_getter(services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    return {
        "prompt": _("Choose the topic of your appeal:"),
        "items": [(b.id, b.name(actor.lang)) for b in services.directory.blocks()],
    }


async def on_block(callback: CallbackQuery, widget: Any, manager: DialogManager, block_id: int) -> None:
    services, _settings, _actor = deps(manager)
    if services.directory.block(block_id) is None:
        raise Gone()
    data(manager)["block_id"] = block_id
    await manager.switch_to(Filing.category)


async def categories_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    block_id = data(dialog_manager).get("block_id", 0)
    block = services.directory.block(block_id)
    return {
        "prompt": _("Choose the subcategory ({block}):").format(block=escape(block.name(actor.lang)) if block else "—"),
        "items": [(c.id, c.name(actor.lang)) for c in services.directory.categories(block_id)],
    }


async def on_category(callback: CallbackQuery, widget: Any, manager: DialogManager, category_id: int) -> None:
    services, _settings, _actor = deps(manager)
    category = services.directory.category(category_id)
    if category is None or category.parent_id != data(manager).get("block_id"):
        raise Gone()
    data(manager)["category_id"] = category.id
    await advance(manager, Filing.description)


# --- description ------------------------------------------------------------------------------------------


async def description_getter(settings: Settings, **_kwargs: Any) -> dict[str, Any]:
    return {
        "prompt": _(
            "Describe the problem in one message: what happened, where exactly, since when, and what you "
            "ask for. From {min} to {max} characters."
        ).format(min=settings.limits.text_min, max=settings.limits.text_max)
    }


async def on_description(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    if take_description(manager, message.text or ""):
        await advance(manager, Filing.attachments)


def take_description(manager: DialogManager, text: str) -> bool:
    """Store the description if it fits the limits; else say what is wrong (the step is asked again)."""
    services, settings, _actor = deps(manager)
    try:
        data(manager)["text"] = services.appeals.validate_text(text)
    except InvalidInput as error:
        count = len(text.strip())
        if error.detail == "text_too_short":
            complain(
                manager,
                _(
                    "The description is too short: {count} characters, at least {min} are needed. Please add details."
                ).format(count=count, min=settings.limits.text_min),
            )
        else:
            complain(
                manager,
                _("The description is too long: {count} characters, at most {max}. Please shorten it.").format(
                    count=count, max=settings.limits.text_max
                ),
            )
        return False
    return True


async def description_wrong(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    media = extract_media(message)
    if media is None:
        complain(
            manager,
            _("Please describe the problem in text. Photos, videos and documents can be attached at the next step."),
        )
        return
    # A photo (a video, a document) sent with the description as its caption, as people do: nothing is lost. The
    # file is kept for the files step, and the caption is the description when it fits (QA: it was discarded).
    _services, settings, _actor = deps(manager)
    add_file(manager, media, settings.limits.attachments_max)
    caption = message.caption or ""
    if not caption.strip():
        complain(manager, _("The file is kept: you will see it at the next step. Now describe the problem in text."))
        return
    if take_description(manager, caption):
        await advance(manager, Filing.attachments)


# --- files ------------------------------------------------------------------------------------------------


async def attachments_getter(dialog_manager: DialogManager, settings: Settings, **_kwargs: Any) -> dict[str, Any]:
    count = len(data(dialog_manager).get("attachments", []))
    limit = settings.limits.attachments_max
    if not count:
        prompt = _(
            "Attach photos, videos or documents if you have them: up to {max}, albums too. "
            "Then press «Done». Nothing to attach? Press «Skip»."
        ).format(max=limit)
    elif count < limit:
        prompt = _("📎 Files attached: {count} of {max}.").format(count=count, max=limit)
        prompt += "\n" + _("Send more, or press «Done».")
    else:
        # The limit: nothing more can be attached, so nothing invites to (no «Send more», no «Remove all»).
        prompt = _("📎 Files attached: {count} of {max}: that is the limit. Press «Done» to go on.").format(
            count=count, max=limit
        )
    lost = int(data(dialog_manager).pop("rejected", 0))
    if lost == 1:
        prompt = _("This file was not added: at most {max} files per appeal.").format(max=limit) + "\n\n" + prompt
    elif lost:
        prompt = (
            _("{lost} files were not added: at most {max} files per appeal.").format(lost=lost, max=limit)
            + "\n\n"
            + prompt
        )
    return {
        "prompt": prompt,
        "count": count,
        "more": 0 < count < limit,
        "done": _("✅ Done ({count})").format(count=count),
        "clear": _("🗑 Remove all"),
        "skip": _("⏭ Skip"),
    }


def no_files(values: dict[str, Any], widget: Any, manager: DialogManager) -> bool:
    return not values.get("count")


async def on_file(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    _services, settings, _actor = deps(manager)
    media = extract_media(message)
    if media is None:
        await attachment_wrong(message, widget, manager)
        return
    add_file(manager, media, settings.limits.attachments_max)
    if message.media_group_id:
        # An album is several updates: the window is shown once, after its last item.
        manager.show_mode = ShowMode.NO_UPDATE
        albums: AlbumDebouncer = manager.middleware_data["albums"]
        background = manager.bg()

        async def summary() -> None:
            await background.update({}, show_mode=ShowMode.SEND)

        albums.touch((message.chat.id, message.media_group_id), summary)
        data(manager)["album"] = message.media_group_id


def add_file(manager: DialogManager, media: Media, limit: int) -> None:
    """One more file of the draft (the same file twice counts once); past the limit it is counted as not added."""
    files: list[dict[str, str]] = list(data(manager).get("attachments", []))
    if len(files) >= limit:
        data(manager)["rejected"] = int(data(manager).get("rejected", 0)) + 1
    elif all(f["file_unique_id"] != media.file_unique_id for f in files):
        files.append({"kind": media.kind, "file_id": media.file_id, "file_unique_id": media.file_unique_id})
        data(manager)["attachments"] = files


def drop_album_summary(manager: DialogManager) -> None:
    """Leaving the files step before an album's summary was shown: it would show the next step a second time."""
    album = data(manager).pop("album", None)
    chat = manager.event.from_user.id if manager.event.from_user else None
    if album is not None and chat is not None:
        albums: AlbumDebouncer = manager.middleware_data["albums"]
        albums.cancel((chat, album))


async def attachment_wrong(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    if message.text:
        complain(manager, _("Send photos, videos or documents, or press «Done» or «Skip» above."))
    else:
        complain(manager, _("This kind of message cannot be attached. Send a photo, a video or a document (PDF, DOC, …)."))


async def files_done(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    drop_album_summary(manager)
    await advance(manager, Filing.location)


async def files_clear(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    data(manager)["attachments"] = []
    popup(manager, _("All files removed."))


# --- place ------------------------------------------------------------------------------------------------


async def location_getter(**_kwargs: Any) -> dict[str, Any]:
    return {
        "prompt": _(
            "Where is the problem? Share the location with the button below, or type the address: "
            "town or village, street, house."
        ),
        "send_location": _("📍 Send my location"),
    }


async def on_location(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    _services, settings, _actor = deps(manager)
    assert message.location is not None
    values: dict[str, Any] = {"lat": message.location.latitude, "lon": message.location.longitude, "address": None}
    if message.venue is not None:
        values["address"] = f"{message.venue.title}, {message.venue.address}"[: settings.limits.address_max]
    data(manager).update(values)
    await leave_reply_keyboard(message, _("📍 Location received."))
    await advance(manager, Filing.district, ShowMode.DELETE_AND_SEND)


async def on_address(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, settings, _actor = deps(manager)
    text = message.text or ""
    if text.strip() in variants(BACK):  # the Back button typed rather than pressed
        await leave_reply_keyboard(message, _("Going back."))
        await back_from(manager, Filing.location, ShowMode.DELETE_AND_SEND)
        return
    try:
        address = services.appeals.validate_address(text)
    except InvalidInput:
        complain(
            manager,
            _("Please type the address in {min} to {max} characters, or share the location.").format(
                min=settings.limits.address_min, max=settings.limits.address_max
            ),
        )
        return
    data(manager).update(address=address, lat=None, lon=None)
    await leave_reply_keyboard(message, _("Address saved."))
    await advance(manager, Filing.district, ShowMode.DELETE_AND_SEND)


async def location_wrong(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    complain(manager, _("Share the location with the button below, or type the address as text."))


# --- district and kind ------------------------------------------------------------------------------------


async def districts_getter(services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    return {
        "prompt": _("Choose the municipal district or city:"),
        "items": [(d.id, d.name(actor.lang)) for d in services.directory.districts()],
    }


async def on_district(callback: CallbackQuery, widget: Any, manager: DialogManager, district_id: int) -> None:
    services, _settings, _actor = deps(manager)
    if services.directory.district(district_id) is None:
        raise Gone()
    data(manager)["district_id"] = district_id
    await advance(manager, Filing.kind)


async def kind_getter(**_kwargs: Any) -> dict[str, Any]:
    return {
        "prompt": _(
            "How should it be handled?\n\n"
            "• <b>Message</b>: a quick report of a problem; the answer is due within 10 days.\n"
            "• <b>Appeal under Federal Law 59-FZ</b>: an official appeal with your full name and contact; "
            "the answer is due within 30 days."
        ),
        "message": _("⚡ Message (10 days)"),
        "appeal": _("📜 Appeal under 59-FZ (30 days)"),
    }


async def on_kind(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    kind = "appeal" if button.widget_id == "appeal" else "message"
    data(manager)["kind"] = kind
    if kind == "appeal" and not (data(manager).get("applicant_name") and data(manager).get("applicant_contact")):
        data(manager).pop("editing", None)
        await manager.switch_to(Filing.applicant_name)
    else:
        await to_preview(manager)


# --- the applicant of an обращение -------------------------------------------------------------------------


async def name_getter(**_kwargs: Any) -> dict[str, Any]:
    return {
        "prompt": _(
            "An appeal under 59-FZ carries the applicant's name. Type your surname, first name and patronymic (if any)."
        )
    }


async def on_name(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, _actor = deps(manager)
    try:
        data(manager)["applicant_name"] = services.appeals.validate_name(message.text or "")
    except InvalidInput:
        complain(
            manager,
            _(
                "Please type your full name in letters: surname and first name, patronymic if any. For example: Ivanov Ivan Ivanovich."
            ),
        )
        return
    await manager.switch_to(Filing.applicant_contact)


async def name_wrong(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    complain(manager, _("Please type your full name as text."))


async def contact_getter(**_kwargs: Any) -> dict[str, Any]:
    return {
        "prompt": _(
            "How can the answer reach you? Share your phone number with the button below, or type a phone number or an e-mail."
        ),
        "share_phone": _("📱 Share my phone number"),
    }


async def on_contact(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    assert message.contact is not None
    if message.from_user is None or message.contact.user_id != message.from_user.id:
        complain(manager, _("Please share your own phone number with the button below, or type it."))
        return
    await save_contact(message, manager, message.contact.phone_number)


async def on_contact_text(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    text = message.text or ""
    if text.strip() in variants(BACK):
        await leave_reply_keyboard(message, _("Going back."))
        await back_from(manager, Filing.applicant_contact, ShowMode.DELETE_AND_SEND)
        return
    await save_contact(message, manager, text)


async def save_contact(message: Message, manager: DialogManager, contact: str) -> None:
    services, _settings, _actor = deps(manager)
    try:
        data(manager)["applicant_contact"] = services.appeals.validate_contact(contact)
    except InvalidInput:
        complain(
            manager,
            _("This does not look like a phone number or an e-mail. For example: +7 928 000-00-00 or name@example.ru."),
        )
        return
    await leave_reply_keyboard(message, _("Contact saved."))
    await to_preview(manager, ShowMode.DELETE_AND_SEND)


async def contact_wrong(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    complain(manager, _("Share your phone number with the button below, or type a phone number or an e-mail."))


# --- preview, edit, confirm -------------------------------------------------------------------------------


async def preview_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    return {
        "prompt": render.preview(data(dialog_manager), services.directory, actor.lang),
        "drafts": [data(dialog_manager)["draft"]],
        "confirm": _("✅ Confirm"),
        "edit": _("✏️ Edit"),
    }


# What can be changed from the preview: the step it opens, and its label (translated in edit_getter).
EDITABLE: tuple[tuple[State, str], ...] = (
    (Filing.block, "topic"),
    (Filing.description, "text"),
    (Filing.attachments, "files"),
    (Filing.location, "place"),
    (Filing.district, "district"),
    (Filing.kind, "kind"),
)


async def edit_getter(**_kwargs: Any) -> dict[str, Any]:
    return {
        "prompt": _("What do you want to change?"),
        "topic": _("Topic"),
        "text": _("Description"),
        "files": _("Attachments"),
        "place": _("Place"),
        "district": _("District"),
        "kind": _("Kind"),
    }


async def start_editing(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    data(manager)["editing"] = True


async def on_confirm(callback: CallbackQuery, widget: Any, manager: DialogManager, draft_id: str) -> None:
    services, _settings, actor = deps(manager)
    values = data(manager)
    if draft_id != values.get("draft"):
        popup(manager, _("This button is no longer active."), alert=True)
        return
    appeal_draft = AppealDraft(
        draft_id=values["draft"],
        category_id=values.get("category_id", 0),
        district_id=values.get("district_id", 0),
        kind=values.get("kind", ""),
        text=values.get("text", ""),
        attachments=tuple(DraftAttachment(**a) for a in values.get("attachments", [])),
        address=values.get("address"),
        latitude=values.get("lat"),
        longitude=values.get("lon"),
        applicant_name=values.get("applicant_name"),
        applicant_contact=values.get("applicant_contact"),
    )
    try:
        filed = await services.appeals.file(actor, appeal_draft)
    except InvalidInput:
        popup(manager, _("Something in the appeal is incomplete; please check it with «Edit»."), alert=True)
        return
    # Stored: now it is safe to say so.
    popup(manager, _("Sent"))
    await manager.done()
    if isinstance(callback.message, Message):
        await callback.message.answer(registered_text(filed.number, filed.status), reply_markup=kb.main_menu())


def registered_text(number: str, status: str) -> str:
    return _(
        "✅ Your appeal is registered.\n\n<b>Number:</b> {number}\n<b>Status:</b> {status}\n\n"
        "We will tell you about every change. Follow it in «📋 My appeals»."
    ).format(number=number, status=status_name(status))


async def cancelled(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    if isinstance(callback.message, Message):
        await callback.message.answer(_("Cancelled. Nothing was saved."), reply_markup=kb.main_menu())


# --- the dialog -------------------------------------------------------------------------------------------


async def on_start(start_data: Any, manager: DialogManager) -> None:
    # The draft id makes Confirm idempotent: the appeal filed from it is found again by it.
    manager.dialog_data.update(draft=uuid.uuid4().hex[:16], attachments=[])
    if isinstance(start_data, dict) and start_data.get(PREFILLED):
        # A new appeal about an earlier one's problem (start_prefilled): after the description, the preview.
        manager.dialog_data.update({k: v for k, v in start_data.items() if k in PREFILL_KEYS}, editing=True)


PREFILLED = "prefilled"
PREFILL_KEYS = frozenset(
    {"block_id", "category_id", "district_id", "kind", "address", "lat", "lon", "applicant_name", "applicant_contact"}
)


async def start_prefilled(manager: DialogManager, values: dict[str, Any]) -> None:
    """The filing dialog with the topic, the place, the district and the kind of an earlier appeal taken over
    (one that can no longer be sent back): the resident describes the problem, then sees the preview, where
    «Edit» changes anything, files included."""
    await manager.start(
        Filing.description, data={**values, PREFILLED: True}, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND
    )


def dialog() -> Dialog:
    """Built anew for each Dispatcher: a Dialog is a Router, and a router has one parent for life."""
    text_only = [ContentType.TEXT]
    return Dialog(
        step(
            Filing.block,
            blocks_getter,
            Column(choice("block", on_block)),
            Cancel(Format("{cancel}"), on_click=cancelled),
        ),
        step(Filing.category, categories_getter, Column(choice("category", on_category)), back_button()),
        step(
            Filing.description,
            description_getter,
            MessageInput(on_description, content_types=text_only),
            MessageInput(description_wrong),
            back_button(),
        ),
        step(
            Filing.attachments,
            attachments_getter,
            MessageInput(on_file, content_types=[ContentType.PHOTO, ContentType.VIDEO, ContentType.DOCUMENT]),
            MessageInput(attachment_wrong),
            Button(Format("{done}"), id="done", on_click=files_done, when="count"),
            Button(Format("{clear}"), id="clear", on_click=files_clear, when="more"),
            Button(Format("{skip}"), id="skip", on_click=files_done, when=no_files),
            back_button(),
        ),
        step(
            Filing.location,
            location_getter,
            MessageInput(on_location, content_types=[ContentType.LOCATION, ContentType.VENUE]),
            MessageInput(on_address, content_types=text_only),
            MessageInput(location_wrong),
            RequestLocation(Format("{send_location}")),
            Button(Format("{back}"), id="back", on_click=reply_back),
            reply_keyboard=True,
        ),
        step(Filing.district, districts_getter, Group(choice("district", on_district), width=2), back_button()),
        step(
            Filing.kind,
            kind_getter,
            Button(Format("{message}"), id="message", on_click=on_kind),
            Button(Format("{appeal}"), id="appeal", on_click=on_kind),
            back_button(),
        ),
        step(
            Filing.applicant_name,
            name_getter,
            MessageInput(on_name, content_types=text_only),
            MessageInput(name_wrong),
            back_button(),
        ),
        step(
            Filing.applicant_contact,
            contact_getter,
            MessageInput(on_contact, content_types=[ContentType.CONTACT]),
            MessageInput(on_contact_text, content_types=text_only),
            MessageInput(contact_wrong),
            RequestContact(Format("{share_phone}")),
            Button(Format("{back}"), id="back", on_click=reply_back),
            reply_keyboard=True,
        ),
        step(
            Filing.preview,
            preview_getter,
            Select(Format("{data[confirm]}"), id=CONFIRM_ID, item_id_getter=str, items="drafts", on_click=on_confirm),
            Row(
                SwitchTo(Format("{edit}"), id="edit", state=Filing.edit_choice),
                Cancel(Format("{cancel}"), on_click=cancelled),
            ),
        ),
        step(
            Filing.edit_choice,
            edit_getter,
            Column(
                *(
                    SwitchTo(Format(f"{{{label}}}"), id=f"edit_{label}", state=state, on_click=start_editing)
                    for state, label in EDITABLE
                )
            ),
            SwitchTo(Format("{back}"), id="back", state=Filing.preview),
        ),
        getter=shared,
        on_start=on_start,
    )


# --- entering, and buttons of dialogs that are over -------------------------------------------------------


@router.message(Command("new"))
@router.message(MenuButton("file"))
async def start_filing(message: Message, state: FSMContext, actor: Actor, dialog_manager: DialogManager) -> None:
    if not actor.has_consent:
        await message.answer(
            _("To file an appeal, please accept the consent to the processing of personal data first."),
            reply_markup=kb.consent_again(),
        )
        return
    await state.clear()  # another conversation (a clarification reply) ends here
    await message.answer(_("New appeal. You can stop at any time with /cancel."), reply_markup=ReplyKeyboardRemove())
    await dialog_manager.start(Filing.block, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


@router.errors(ExceptionTypeFilter(UnknownIntent, OutdatedIntent))
async def stale_button(event: ErrorEvent, services: Services, actor: Actor, i18n: I18n) -> None:
    """A button of a finished or replaced dialog. A second Confirm (or the same update delivered again) points
    at the appeal the first one filed; anything else is refused."""
    callback = event.update.callback_query
    if callback is None:
        return
    # The error is handled after the update's middlewares have unwound, the person's locale with them.
    with i18n.use_locale(actor.lang):
        await refuse_stale(callback, services, actor)


def shows_intent(message: Message, intent: str | None) -> bool:
    """Whether the message's buttons are those of the dialog `intent`."""
    markup = message.reply_markup
    rows = markup.inline_keyboard if markup is not None else []
    return intent is not None and any(
        button.callback_data and remove_intent_id(button.callback_data)[0] == intent for row in rows for button in row
    )


async def refuse_stale(callback: CallbackQuery, services: Services, actor: Actor) -> None:
    intent, payload = remove_intent_id(callback.data or "")
    widget, _sep, draft_id = payload.partition(":")
    filed = None
    if widget == CONFIRM_ID and draft_id:
        try:
            filed = await services.appeals.find_by_draft(actor, draft_id)
        except ServiceError:
            filed = None
    if filed is None:
        await callback.answer(_("This button is no longer active."), show_alert=True)
        if isinstance(callback.message, Message) and shows_intent(callback.message, intent):
            # The message's own buttons belong to a dialog that is over or was replaced by a newer screen: it keeps
            # its text, not the dead buttons. (A forged press on a live screen names an intent its buttons lack.)
            with suppress(TelegramBadRequest):
                await callback.message.edit_reply_markup(reply_markup=None)
        return
    await callback.answer(
        _("This appeal is already registered: № {number}").format(number=filed.number), show_alert=True
    )
