"""The filing dialog: topic → subcategory → description → files → place → district → kind
(→ full name → contact) → preview → confirm. Every step has Back; /cancel works everywhere."""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiogram import Bot, F
from aiogram.filters import Command, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import gettext as _

from bot import keyboards as kb
from bot.albums import AlbumDebouncer
from bot.callbacks import FileAction, FileCb
from bot.config import Settings
from bot.i18n import variants
from bot.keyboards import MenuButton
from bot.services import Services
from bot.services.appeals import AppealDraft, DraftAttachment
from bot.services.errors import ConsentRequired, InvalidInput, ServiceError
from bot.services.users import Actor
from bot.states import Filing
from bot.texts import kind_name, status_name
from handlers import Handlers
from handlers.media import extract_media
from handlers.resident import render

router = Handlers(__name__)
# Wrong-input fallbacks leave commands alone: an unknown one gets the general answer.
NOT_COMMAND = ~F.text.startswith("/")

NAME_RE = re.compile(r"^[A-Za-zА-Яа-яЁёӀӏ'’\-]{2,}(?:\s+[A-Za-zА-Яа-яЁёӀӏ'’\-]{1,}){1,3}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9\s\-()]{8,18}[0-9]$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
ADDRESS_MIN, ADDRESS_MAX = 5, 500
BACK = "⬅️ Back"

# Where Back leads from each step (the preview's depends on the kind, see previous_step).
PREVIOUS: dict[str, State] = {
    Filing.category.state: Filing.block,
    Filing.description.state: Filing.category,
    Filing.attachments.state: Filing.description,
    Filing.location.state: Filing.attachments,
    Filing.district.state: Filing.location,
    Filing.kind.state: Filing.district,
    Filing.applicant_name.state: Filing.kind,
    Filing.applicant_contact.state: Filing.applicant_name,
    Filing.edit_choice.state: Filing.preview,
}
EDITABLE = {
    "topic": (Filing.block, "Topic"),
    "text": (Filing.description, "Description"),
    "files": (Filing.attachments, "Attachments"),
    "place": (Filing.location, "Place"),
    "district": (Filing.district, "District"),
    "kind": (Filing.kind, "Kind"),
}


class LiveDraft(Filter):
    """The button belongs to the dialog in progress; a button of a finished or older one does not."""

    async def __call__(self, callback: CallbackQuery, state: FSMContext) -> bool | dict[str, Any]:
        if callback.data is None or not callback.data.startswith("f:"):
            return False
        try:
            callback_data = FileCb.unpack(callback.data)
        except (ValueError, TypeError):
            return False
        data = await state.get_data()
        if data.get("draft") != callback_data.d:
            return False
        return {"draft": data}


def _step_label(msgid: str) -> str:
    labels = {
        "Topic": _("Topic"),
        "Description": _("Description"),
        "Attachments": _("Attachments"),
        "Place": _("Place"),
        "District": _("District"),
        "Kind": _("Kind"),
    }
    return labels[msgid]


async def ask(
    message: Message, state: FSMContext, step: State, services: Services, settings: Settings, lang: str
) -> None:
    """Send the question of a step with its keyboard and enter the step."""
    data = await state.get_data()
    draft = data["draft"]
    await state.set_state(step)
    if step == Filing.block:
        items = [(b.id, b.name(lang)) for b in services.directory.blocks()]
        markup = kb.choice_list(items, FileAction.block, draft, back=False, cancel=True)
        await message.answer(_("Choose the topic of your appeal:"), reply_markup=markup)
    elif step == Filing.category:
        block = services.directory.block(data.get("block_id", 0))
        items = [(c.id, c.name(lang)) for c in services.directory.categories(data.get("block_id", 0))]
        await message.answer(
            _("Choose the subcategory ({block}):").format(block=block.name(lang) if block else "—"),
            reply_markup=kb.choice_list(items, FileAction.category, draft),
        )
    elif step == Filing.description:
        await message.answer(
            _(
                "Describe the problem in one message: what happened, where exactly, since when, and what you "
                "ask for. From {min} to {max} characters."
            ).format(min=settings.intake.min_text, max=settings.intake.max_text),
            reply_markup=kb.buttons([], draft),
        )
    elif step == Filing.attachments:
        await message.answer(
            _(
                "Attach photos, videos or documents if you have them: up to {max}, albums too. "
                "Then press «Done». Nothing to attach? Press «Skip»."
            ).format(max=settings.intake.max_attachments),
            reply_markup=attachments_keyboard(draft, len(data.get("attachments", []))),
        )
    elif step == Filing.location:
        await message.answer(
            _(
                "Where is the problem? Share the location with the button below, or type the address: "
                "town or village, street, house."
            ),
            reply_markup=kb.location_request(),
        )
    elif step == Filing.district:
        items = [(d.id, d.name(lang)) for d in services.directory.districts()]
        await message.answer(
            _("Choose the municipal district or city:"),
            reply_markup=kb.choice_list(items, FileAction.district, draft, columns=2),
        )
    elif step == Filing.kind:
        await message.answer(
            _(
                "How should it be handled?\n\n"
                "• <b>Message</b>: a quick report of a problem; the answer is due within 10 days.\n"
                "• <b>Appeal under Federal Law 59-FZ</b>: an official appeal with your full name and contact; "
                "the answer is due within 30 days."
            ),
            reply_markup=kb.buttons(
                [
                    [(_("⚡ Message (10 days)"), FileAction.kind, 0)],
                    [(_("📜 Appeal under 59-FZ (30 days)"), FileAction.kind, 1)],
                ],
                draft,
            ),
        )
    elif step == Filing.applicant_name:
        await message.answer(
            _(
                "An appeal under 59-FZ carries the applicant's name. Type your surname, first name and patronymic (if any)."
            ),
            reply_markup=kb.buttons([], draft),
        )
    elif step == Filing.applicant_contact:
        await message.answer(
            _(
                "How can the answer reach you? Share your phone number with the button below, or type a phone number or an e-mail."
            ),
            reply_markup=kb.contact_request(),
        )
    elif step == Filing.preview:
        await message.answer(
            render.preview(data, services.directory, lang),
            reply_markup=kb.buttons(
                [
                    [(_("✅ Confirm"), FileAction.confirm, 0)],
                    [(_("✏️ Edit"), FileAction.edit, 0), (_("❌ Cancel"), FileAction.cancel, 0)],
                ],
                draft,
                back=False,
            ),
        )
    elif step == Filing.edit_choice:
        rows = [[(_step_label(label), FileAction.edit_field, i)] for i, (_s, label) in enumerate(EDITABLE.values())]
        await message.answer(_("What do you want to change?"), reply_markup=kb.buttons(rows, draft))


def attachments_keyboard(draft: str, count: int) -> Any:
    if count:
        rows = [
            [(_("✅ Done ({count})").format(count=count), FileAction.done, 0)],
            [(_("🗑 Remove all"), FileAction.clear, 0)],
        ]
    else:
        rows = [[(_("⏭ Skip"), FileAction.skip, 0)]]
    return kb.buttons(rows, draft)


async def advance(
    message: Message, state: FSMContext, services: Services, settings: Settings, actor: Actor, natural: State
) -> None:
    """Go to the natural next step, or back to the preview when the person is editing one field."""
    data = await state.get_data()
    if data.get("editing") and natural != Filing.category:
        needs_applicant = data.get("kind") == "appeal" and not data.get("applicant_contact")
        if natural in (Filing.applicant_name, Filing.applicant_contact) and needs_applicant:
            pass
        elif natural != Filing.applicant_contact or not needs_applicant:
            natural = Filing.preview
    if natural == Filing.preview:
        await state.update_data(editing=False)
    await ask(message, state, natural, services, settings, actor.lang)


def previous_step(current: str | None, data: dict[str, Any]) -> State | None:
    if current == Filing.preview.state:
        return Filing.applicant_contact if data.get("kind") == "appeal" else Filing.kind
    if data.get("editing") and current in {s.state for s, _label in EDITABLE.values()}:
        return Filing.edit_choice
    return PREVIOUS.get(current or "")


# --- entering the dialog ---------------------------------------------------------------------------


@router.message(Command("new"))
@router.message(MenuButton("file"))
async def start_filing(
    message: Message, state: FSMContext, actor: Actor, services: Services, settings: Settings
) -> None:
    if not actor.has_consent:
        await message.answer(
            _("To file an appeal, please accept the consent to the processing of personal data first."),
            reply_markup=kb.consent_again(),
        )
        return
    await state.clear()
    await state.set_data({"draft": uuid.uuid4().hex[:16], "attachments": []})
    await message.answer(_("New appeal. You can stop at any time with /cancel."), reply_markup=ReplyKeyboardRemove())
    await ask(message, state, Filing.block, services, settings, actor.lang)


# --- buttons ------------------------------------------------------------------------------------------


@router.callback_query(StateFilter(Filing), FileCb.filter(F.action == FileAction.back), LiveDraft())
async def go_back(
    callback: CallbackQuery,
    state: FSMContext,
    draft: dict[str, Any],
    services: Services,
    settings: Settings,
    actor: Actor,
) -> None:
    await callback.answer()
    target = previous_step(await state.get_state(), draft)
    if target is not None and isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await ask(callback.message, state, target, services, settings, actor.lang)


@router.callback_query(StateFilter(Filing), FileCb.filter(F.action == FileAction.cancel), LiveDraft())
async def cancel_button(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await callback.message.answer(_("Cancelled. Nothing was saved."), reply_markup=kb.main_menu())


async def _chosen(callback: CallbackQuery, label: str) -> Message | None:
    """Acknowledge a choice: the question keeps the answer and loses its buttons."""
    await callback.answer()
    message = callback.message
    if not isinstance(message, Message):
        return None
    await message.edit_text(f"{message.html_text}\n\n✅ <b>{label}</b>")
    return message


@router.callback_query(Filing.block, FileCb.filter(F.action == FileAction.block), LiveDraft())
async def choose_block(
    callback: CallbackQuery,
    callback_data: FileCb,
    state: FSMContext,
    services: Services,
    settings: Settings,
    actor: Actor,
) -> None:
    block = services.directory.block(callback_data.v)
    if block is None:
        await callback.answer(_("This option is no longer available."), show_alert=True)
        return
    await state.update_data(block_id=block.id)
    message = await _chosen(callback, block.name(actor.lang))
    if message:
        await ask(message, state, Filing.category, services, settings, actor.lang)


@router.callback_query(Filing.category, FileCb.filter(F.action == FileAction.category), LiveDraft())
async def choose_category(
    callback: CallbackQuery,
    callback_data: FileCb,
    state: FSMContext,
    draft: dict[str, Any],
    services: Services,
    settings: Settings,
    actor: Actor,
) -> None:
    category = services.directory.category(callback_data.v)
    if category is None or category.parent_id != draft.get("block_id"):
        await callback.answer(_("This option is no longer available."), show_alert=True)
        return
    await state.update_data(category_id=category.id)
    message = await _chosen(callback, category.name(actor.lang))
    if message:
        await advance(message, state, services, settings, actor, Filing.description)


@router.callback_query(Filing.attachments, FileCb.filter(F.action.in_({FileAction.done, FileAction.skip})), LiveDraft())
async def attachments_done(
    callback: CallbackQuery,
    state: FSMContext,
    draft: dict[str, Any],
    services: Services,
    settings: Settings,
    actor: Actor,
) -> None:
    count = len(draft.get("attachments", []))
    message = await _chosen(callback, _("Files attached: {count}").format(count=count) if count else _("No files"))
    if message:
        await advance(message, state, services, settings, actor, Filing.location)


@router.callback_query(Filing.attachments, FileCb.filter(F.action == FileAction.clear), LiveDraft())
async def attachments_clear(callback: CallbackQuery, state: FSMContext, draft: dict[str, Any]) -> None:
    await state.update_data(attachments=[])
    await callback.answer(_("All files removed."))
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=attachments_keyboard(draft["draft"], 0))


@router.callback_query(Filing.district, FileCb.filter(F.action == FileAction.district), LiveDraft())
async def choose_district(
    callback: CallbackQuery,
    callback_data: FileCb,
    state: FSMContext,
    services: Services,
    settings: Settings,
    actor: Actor,
) -> None:
    district = services.directory.district(callback_data.v)
    if district is None:
        await callback.answer(_("This option is no longer available."), show_alert=True)
        return
    await state.update_data(district_id=district.id)
    message = await _chosen(callback, district.name(actor.lang))
    if message:
        await advance(message, state, services, settings, actor, Filing.kind)


@router.callback_query(Filing.kind, FileCb.filter(F.action == FileAction.kind), LiveDraft())
async def choose_kind(
    callback: CallbackQuery,
    callback_data: FileCb,
    state: FSMContext,
    draft: dict[str, Any],
    services: Services,
    settings: Settings,
    actor: Actor,
) -> None:
    kind = "appeal" if callback_data.v == 1 else "message"
    await state.update_data(kind=kind)
    message = await _chosen(callback, kind_name(kind))
    if not message:
        return
    if kind == "appeal" and not (draft.get("applicant_name") and draft.get("applicant_contact")):
        await state.update_data(editing=False)
        await ask(message, state, Filing.applicant_name, services, settings, actor.lang)
    else:
        await ask(message, state, Filing.preview, services, settings, actor.lang)


@router.callback_query(Filing.preview, FileCb.filter(F.action == FileAction.edit), LiveDraft())
async def edit(
    callback: CallbackQuery, state: FSMContext, services: Services, settings: Settings, actor: Actor
) -> None:
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await ask(callback.message, state, Filing.edit_choice, services, settings, actor.lang)


@router.callback_query(Filing.edit_choice, FileCb.filter(F.action == FileAction.edit_field), LiveDraft())
async def edit_field(
    callback: CallbackQuery,
    callback_data: FileCb,
    state: FSMContext,
    services: Services,
    settings: Settings,
    actor: Actor,
) -> None:
    fields = list(EDITABLE.values())
    if not 0 <= callback_data.v < len(fields):
        await callback.answer(_("This option is no longer available."), show_alert=True)
        return
    step, label = fields[callback_data.v]
    await state.update_data(editing=True)
    message = await _chosen(callback, _step_label(label))
    if message:
        await ask(message, state, step, services, settings, actor.lang)


@router.callback_query(Filing.preview, FileCb.filter(F.action == FileAction.confirm), LiveDraft())
async def confirm(
    callback: CallbackQuery, state: FSMContext, draft: dict[str, Any], services: Services, actor: Actor
) -> None:
    appeal_draft = AppealDraft(
        draft_id=draft["draft"],
        category_id=draft.get("category_id", 0),
        district_id=draft.get("district_id", 0),
        kind=draft.get("kind", ""),
        text=draft.get("text", ""),
        attachments=tuple(DraftAttachment(**a) for a in draft.get("attachments", [])),
        address=draft.get("address"),
        latitude=draft.get("lat"),
        longitude=draft.get("lon"),
        applicant_name=draft.get("applicant_name"),
        applicant_contact=draft.get("applicant_contact"),
    )
    try:
        filed = await services.appeals.file(actor, appeal_draft)
    except ConsentRequired:
        await callback.answer(_("Please accept the consent first: /start"), show_alert=True)
        return
    except InvalidInput:
        await callback.answer(_("Something in the appeal is incomplete; please check it with «Edit»."), show_alert=True)
        return
    # Stored: now it is safe to say so.
    await state.clear()
    await callback.answer(_("Sent"))
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        await callback.message.answer(registered_text(filed.number, filed.status), reply_markup=kb.main_menu())


def registered_text(number: str, status: str) -> str:
    return _(
        "✅ Your appeal is registered.\n\n<b>Number:</b> {number}\n<b>Status:</b> {status}\n\n"
        "We will tell you about every change. Follow it in «📋 My appeals»."
    ).format(number=number, status=status_name(status))


@router.callback_query(StateFilter(None), FileCb.filter(F.action == FileAction.confirm))
async def confirm_again(callback: CallbackQuery, callback_data: FileCb, services: Services, actor: Actor) -> None:
    """A second Confirm, or the same update delivered again: point at the appeal made the first time."""
    try:
        filed = await services.appeals.find_by_draft(actor, callback_data.d)
    except ServiceError:
        filed = None
    if filed is None:
        await callback.answer(_("This button is no longer active."), show_alert=True)
        return
    await callback.answer(
        _("This appeal is already registered: № {number}").format(number=filed.number), show_alert=True
    )


# --- typed input --------------------------------------------------------------------------------------


@router.message(Filing.description, F.text, ~F.text.startswith("/"))
async def description(
    message: Message, state: FSMContext, services: Services, settings: Settings, actor: Actor
) -> None:
    text = message.text or ""
    try:
        text = services.appeals.validate_text(text)
    except InvalidInput as error:
        if error.detail == "text_too_short":
            await message.answer(
                _(
                    "The description is too short: {count} characters, at least {min} are needed. Please add details."
                ).format(count=len(text.strip()), min=settings.intake.min_text)
            )
        else:
            await message.answer(
                _("The description is too long: {count} characters, at most {max}. Please shorten it.").format(
                    count=len(text.strip()), max=settings.intake.max_text
                )
            )
        return
    await state.update_data(text=text)
    await advance(message, state, services, settings, actor, Filing.attachments)


@router.message(Filing.description, NOT_COMMAND)
async def description_wrong(message: Message) -> None:
    await message.answer(
        _("Please describe the problem in text. Photos, videos and documents can be attached at the next step.")
    )


@router.message(Filing.attachments, F.photo | F.video | F.document)
async def attachment(message: Message, state: FSMContext, bot: Bot, settings: Settings, albums: AlbumDebouncer) -> None:
    media = extract_media(message)
    if media is None:
        await attachment_wrong(message)
        return
    data = await state.get_data()
    files: list[dict[str, str]] = list(data.get("attachments", []))
    limit = settings.intake.max_attachments
    accepted = len(files) < limit and all(f["file_unique_id"] != media[2] for f in files)
    rejected = int(data.get("rejected", 0))
    if accepted:
        files.append({"kind": media[0], "file_id": media[1], "file_unique_id": media[2]})
        await state.update_data(attachments=files)
    elif len(files) >= limit:
        rejected += 1
        await state.update_data(rejected=rejected)

    async def summary() -> None:
        current = await state.get_data()
        if await state.get_state() != Filing.attachments.state:
            return
        count = len(current.get("attachments", []))
        lost = int(current.get("rejected", 0))
        text = _("📎 Files attached: {count} of {max}.").format(count=count, max=limit)
        if lost:
            text += "\n" + _("{lost} more were not added: at most {max} files per appeal.").format(lost=lost, max=limit)
            await state.update_data(rejected=0)
        text += "\n" + _("Send more, or press «Done».")
        await bot.send_message(message.chat.id, text, reply_markup=attachments_keyboard(current["draft"], count))

    if message.media_group_id:
        albums.touch((message.chat.id, message.media_group_id), summary)
    else:
        await summary()


@router.message(Filing.attachments, NOT_COMMAND)
async def attachment_wrong(message: Message) -> None:
    if message.text:
        await message.answer(_("Send photos, videos or documents, or press «Done» or «Skip» above."))
    else:
        await message.answer(
            _("This kind of message cannot be attached. Send a photo, a video or a document (PDF, DOC, …).")
        )


@router.message(Filing.location, F.location)
async def location(message: Message, state: FSMContext, services: Services, settings: Settings, actor: Actor) -> None:
    assert message.location is not None
    values: dict[str, Any] = {"lat": message.location.latitude, "lon": message.location.longitude}
    if message.venue is not None:
        values["address"] = f"{message.venue.title}, {message.venue.address}"[:ADDRESS_MAX]
    await state.update_data(**values)
    await message.answer(_("📍 Location received."), reply_markup=ReplyKeyboardRemove())
    await advance(message, state, services, settings, actor, Filing.district)


def is_back(text: str | None) -> bool:
    return text is not None and text in variants(BACK)


@router.message(Filing.location, F.text, ~F.text.startswith("/"))
async def address(message: Message, state: FSMContext, services: Services, settings: Settings, actor: Actor) -> None:
    text = (message.text or "").strip()
    if is_back(text):
        await message.answer(_("Going back."), reply_markup=ReplyKeyboardRemove())
        target = previous_step(Filing.location.state, await state.get_data())
        await ask(message, state, target or Filing.attachments, services, settings, actor.lang)
        return
    if not ADDRESS_MIN <= len(text) <= ADDRESS_MAX:
        await message.answer(
            _("Please type the address in {min} to {max} characters, or share the location.").format(
                min=ADDRESS_MIN, max=ADDRESS_MAX
            )
        )
        return
    await state.update_data(address=text, lat=None, lon=None)
    await message.answer(_("Address saved."), reply_markup=ReplyKeyboardRemove())
    await advance(message, state, services, settings, actor, Filing.district)


@router.message(Filing.location, NOT_COMMAND)
async def location_wrong(message: Message) -> None:
    await message.answer(_("Share the location with the button below, or type the address as text."))


@router.message(Filing.applicant_name, F.text, ~F.text.startswith("/"))
async def applicant_name(
    message: Message, state: FSMContext, services: Services, settings: Settings, actor: Actor
) -> None:
    text = " ".join((message.text or "").split())
    if len(text) > 200 or not NAME_RE.match(text):
        await message.answer(
            _(
                "Please type your full name in letters: surname and first name, patronymic if any. For example: Ivanov Ivan Ivanovich."
            )
        )
        return
    await state.update_data(applicant_name=text)
    await ask(message, state, Filing.applicant_contact, services, settings, actor.lang)


@router.message(Filing.applicant_name, NOT_COMMAND)
async def applicant_name_wrong(message: Message) -> None:
    await message.answer(_("Please type your full name as text."))


@router.message(Filing.applicant_contact, F.contact)
async def applicant_phone(
    message: Message, state: FSMContext, services: Services, settings: Settings, actor: Actor
) -> None:
    assert message.contact is not None
    if message.from_user is None or message.contact.user_id != message.from_user.id:
        await message.answer(_("Please share your own phone number with the button below, or type it."))
        return
    await state.update_data(applicant_contact=message.contact.phone_number)
    await message.answer(_("Contact saved."), reply_markup=ReplyKeyboardRemove())
    await ask(message, state, Filing.preview, services, settings, actor.lang)


@router.message(Filing.applicant_contact, F.text, ~F.text.startswith("/"))
async def applicant_contact_typed(
    message: Message, state: FSMContext, services: Services, settings: Settings, actor: Actor
) -> None:
    text = (message.text or "").strip()
    if is_back(text):
        await message.answer(_("Going back."), reply_markup=ReplyKeyboardRemove())
        await ask(message, state, Filing.applicant_name, services, settings, actor.lang)
        return
    if len(text) > 200 or not (PHONE_RE.match(text) or EMAIL_RE.match(text)):
        await message.answer(
            _("This does not look like a phone number or an e-mail. For example: +7 928 000-00-00 or name@example.ru.")
        )
        return
    await state.update_data(applicant_contact=text)
    await message.answer(_("Contact saved."), reply_markup=ReplyKeyboardRemove())
    await ask(message, state, Filing.preview, services, settings, actor.lang)


@router.message(Filing.applicant_contact, NOT_COMMAND)
async def applicant_contact_wrong(message: Message) -> None:
    await message.answer(_("Share your phone number with the button below, or type a phone number or an e-mail."))


@router.message(
    StateFilter(Filing.block, Filing.category, Filing.district, Filing.kind, Filing.preview, Filing.edit_choice)
)
async def buttons_expected(
    message: Message, state: FSMContext, services: Services, settings: Settings, actor: Actor
) -> None:
    """Typed input where a choice is expected: say so and ask the question again."""
    await message.answer(_("Please choose one of the buttons."))
    current = await state.get_state()
    step = next((s for s in Filing.__all_states__ if s.state == current), None)
    if step is not None:
        await ask(message, state, step, services, settings, actor.lang)
