"""/broadcast (compose) and /broadcasts (the list; «📣 Broadcasts» in the /staff menu): admins and editors tell
residents about an outage, a closure, a new service. Declared with aiogram-dialog: the Russian text, texts in other
languages, a file, a URL button, the audience, urgency, a preview exactly as residents see it, then «send now» or a
chosen time. The draft lives in the dialog's data (the persistent FSM storage), with a `draft_key` made when the
dialog starts, so a confirmation pressed twice stores one broadcast.

The author types HTML markup as text (`<b>Внимание</b>`): `message.text` is the source, validated by
bot/html_check.py, which says what is wrong and where. Every getter and action asks `services.broadcasts`, which
refuses anyone without the role; the controls under the progress message (BroadcastCb) are plain callback handlers,
checked there too."""

from __future__ import annotations

import logging
import uuid
from contextlib import suppress
from datetime import datetime, timedelta
from html import escape
from typing import Any

from aiogram import Bot, F
from aiogram.enums import ContentType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Cancel, Column, Group, Select, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot.callbacks import BroadcastAction, BroadcastCb
from bot.clock import Clock
from bot.config import Settings
from bot.domain import AttachmentKind, BroadcastAudience, BroadcastStatus
from bot.html_check import HtmlProblem, Problem, visible_text
from bot.i18n import N_
from bot.keyboards import LANGUAGE_NAMES
from bot.notices import BroadcastContent
from bot.notifications import render_broadcast
from bot.progress import edit_progress
from bot.services import Services
from bot.services.broadcasts import (
    CAPTION_LIMIT,
    DEFAULT_LANGUAGE,
    LABEL_CHARS,
    TEXT_LIMIT,
    URL_CHARS,
    BroadcastCard,
    BroadcastDraft,
    BroadcastRefused,
    StaleControl,
    Stored,
    TextRefused,
    check_captions,
    check_file,
    check_label,
    check_text,
    check_url,
)
from bot.services.calendar import next_allowed_time
from bot.services.errors import Gone
from bot.services.users import Actor
from bot.states import Broadcasts
from bot.texts import clip, local_time
from handlers import Handlers
from handlers.dialogs import COMMAND, buttons_only, deps, fit, heading, notice, picker, popup, say, unknown_command
from handlers.dialogs import unmatched as unmatched_press
from handlers.staff.appeals import text_expected

router = Handlers(__name__)
logger = logging.getLogger(__name__)
B = Broadcasts
DATE_FORMAT = "%d.%m.%Y %H:%M"
OTHER_LANGUAGES = ("ce", "en")
CARD_TEXT_CHARS = 200
# The keys of a draft in the dialog's data (cleared when a new broadcast is started).
DRAFT_KEYS = (
    "draft_key", "texts", "lang", "media", "label", "button_text", "button_url", "districts", "block_id", "language",
    "urgent", "created", "quiet_until",
)

STATUS = {
    BroadcastStatus.scheduled: N_("scheduled"),
    BroadcastStatus.running: N_("sending"),
    BroadcastStatus.paused: N_("paused"),
    BroadcastStatus.done: N_("done"),
    BroadcastStatus.cancelled: N_("cancelled"),
}
LANGUAGE_IN = {
    "ru": N_("in Russian"),
    "ce": N_("in Chechen"),
    "en": N_("in English"),
}
HTML_PROBLEMS = {
    Problem.unknown_tag: N_("The tag <{tag}> at line {line}, column {column} is not supported by Telegram."),
    Problem.unclosed: N_("Unclosed tag <{tag}> opened at line {line}, column {column}."),
    Problem.not_opened: N_("The closing tag </{tag}> at line {line}, column {column} has no opening tag."),
    Problem.misnested: N_(
        "The closing tag </{tag}> at line {line}, column {column} comes before </{other}> of the tag <{other}> "
        "opened at line {other_line}, column {other_column}: close the inner tag first."
    ),
    Problem.self_closing: N_("The tag <{tag}/> at line {line}, column {column}: write <{tag}>…</{tag}> instead."),
    Problem.attribute: N_("The attribute «{attribute}» of <{tag}> at line {line}, column {column} is not allowed."),
    Problem.missing_attribute: N_(
        "The tag <{tag}> at line {line}, column {column} needs the attribute «{attribute}»."
    ),
    Problem.bad_value: N_(
        "The attribute «{attribute}» of <{tag}> at line {line}, column {column} has a value Telegram does not accept."
    ),
    Problem.bad_entity: N_(
        "«{text}» at line {line}, column {column} is not an entity Telegram knows: write &amp; for the sign &."
    ),
    Problem.bad_character: N_(
        "«{text}» at line {line}, column {column} is a character Telegram does not accept (0, a surrogate or beyond "
        "Unicode)."
    ),
    Problem.unquoted: N_(
        "The value of the attribute «{attribute}» of <{tag}> at line {line}, column {column} must be in quotes: "
        "{attribute}=\"…\"."
    ),
    Problem.end_tag: N_(
        "The closing tag «{text}» at line {line}, column {column} is malformed: the tag's name goes right after "
        "«</», and «>» right after the name, e.g. </b>."
    ),
    Problem.bare_bracket: N_(
        "The sign < at line {line}, column {column} starts no tag: write &lt; for the sign, or complete the tag."
    ),
    Problem.markup: N_("Comments and declarations (line {line}, column {column}) are not allowed."),
}
REFUSED = {
    "file_kind": N_("Only one photo or one document can be attached (no video, sticker, voice or album)."),
    "photo_size": N_(
        "The photo is over 5 MB: it goes to every recipient, so it must be light. Please send a smaller one."
    ),
    "document_size": N_("The document is over Telegram's limit of 20 MB. Please send a smaller one."),
    "label": N_("The button's label must be 1 to {max} characters."),
    "url": N_("Please type a link that starts with https:// or http://, with a site name, at most {max} characters."),
    "no_recipients": N_("Nobody is in this audience: the broadcast would reach no one. Please change the filters."),
    "past": N_("This time has passed. Please type a future date and time."),
}


# --- entering ---------------------------------------------------------------------------------------------


@router.message(Command("broadcast"))
async def compose(message: Message, actor: Actor, services: Services, dialog_manager: DialogManager) -> None:
    await services.broadcasts.check_author(actor)
    await dialog_manager.start(B.text, data={"new": True}, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


@router.message(Command("broadcasts"))
async def show_list(message: Message, actor: Actor, services: Services, dialog_manager: DialogManager) -> None:
    await services.broadcasts.check_author(actor, "broadcast_list")
    await dialog_manager.start(B.list, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)


def new_draft(manager: DialogManager) -> None:
    """A fresh draft; its key makes its confirmation idempotent."""
    for key in DRAFT_KEYS:
        data(manager).pop(key, None)
    data(manager)["draft_key"] = str(uuid.uuid4())
    data(manager)["texts"] = {}


async def on_start(start_data: Any, manager: DialogManager) -> None:
    if isinstance(start_data, dict) and start_data.get("new"):
        new_draft(manager)


async def on_new(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.broadcasts.check_author(actor)
    new_draft(manager)
    await manager.switch_to(B.text)


# --- helpers ----------------------------------------------------------------------------------------------


def data(manager: DialogManager) -> dict[str, Any]:
    return manager.dialog_data


def common(manager: DialogManager, text: str, **values: Any) -> dict[str, Any]:
    return {"notice": notice(manager), "text": text, "back": _("⬅️ Back"), **values}


def texts_of(manager: DialogManager) -> dict[str, str]:
    return dict(data(manager).get("texts") or {})


def media_of(manager: DialogManager) -> tuple[AttachmentKind, str] | None:
    media = data(manager).get("media")
    if not media:
        return None
    return AttachmentKind(media[0]), str(media[1])


def audience_of(manager: DialogManager) -> BroadcastAudience:
    d = data(manager)
    return BroadcastAudience(
        districts=tuple(int(x) for x in d.get("districts") or ()),
        block_id=d.get("block_id"),
        language=d.get("language"),
    )


def draft_of(manager: DialogManager) -> BroadcastDraft:
    d = data(manager)
    if not d.get("draft_key") or DEFAULT_LANGUAGE not in texts_of(manager):
        raise Gone("draft")
    media = media_of(manager)
    return BroadcastDraft(
        draft_key=str(d["draft_key"]),
        texts=texts_of(manager),
        audience=audience_of(manager),
        media_kind=media[0] if media else None,
        media_file_id=media[1] if media else None,
        button_text=d.get("button_text"),
        button_url=d.get("button_url"),
        urgent=bool(d.get("urgent")),
    )


def describe_html(found: HtmlProblem) -> str:
    """What is wrong and where, escaped whole: the sentences name tags, which the screen's HTML must not parse."""
    return escape(_(HTML_PROBLEMS[found.problem]).format(
        tag=found.tag, attribute=found.attribute, text=found.text, other=found.other,
        line=found.line, column=found.column, other_line=found.other_line, other_column=found.other_column,
    ))


def describe_text(error: TextRefused) -> str:
    if error.detail == "html" and error.problem is not None:
        return describe_html(error.problem)
    if error.detail == "too_long":
        return _("Too long: {count} characters, at most {max}.").format(count=error.length, max=error.limit)
    return _("The text is empty. Please type the text of the broadcast.")


def describe_refusal(error: BroadcastRefused, settings: Settings) -> str:
    if error.detail == "caption":
        return _(
            "With a file the text is its caption, at most {max} characters: the text {language} is longer. "
            "Please shorten it first, or send no file."
        ).format(max=CAPTION_LIMIT, language=_(LANGUAGE_IN.get(error.language, LANGUAGE_IN["ru"])))
    if error.detail in ("quiet_hours", "quiet_now"):
        config = settings.scheduler
        return _(
            "Quiet hours ({start}–{end}): residents are not disturbed now. Schedule it for {moment}, or mark it "
            "urgent if it cannot wait."
        ).format(
            start=f"{config.quiet_start:%H:%M}", end=f"{config.quiet_end:%H:%M}",
            moment=local_time(error.allowed_at, settings.tz) if error.allowed_at else "—",
        )
    most = LABEL_CHARS if error.detail == "label" else URL_CHARS
    return _(REFUSED.get(error.detail, REFUSED["file_kind"])).format(max=most)


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def audience_lines(audience: BroadcastAudience, services: Services, lang: str) -> list[str]:
    any_ = _("any")
    districts = [services.directory.district(d) for d in audience.districts]
    block = services.directory.block(audience.block_id) if audience.block_id is not None else None
    return [
        _("Districts: {value}").format(value=escape(", ".join(d.name(lang) for d in districts if d) or any_)),
        _("Topic: {value}").format(value=escape(block.name(lang) if block else any_)),
        _("Language: {value}").format(value=escape(language_name(audience.language) if audience.language else any_)),
    ]


def parse_moment(text: str, settings: Settings) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), DATE_FORMAT).replace(tzinfo=settings.tz)
    except ValueError:
        return None


# --- 1. the Russian text ----------------------------------------------------------------------------------


def markup_help() -> str:
    return escape(
        _("You may use <b>bold</b>, <i>italic</i>, <u>underlined</u>, <s>struck</s>, <a href=\"https://…\">a link</a>, "
          "<code>code</code>, <blockquote>a quote</blockquote> and <tg-spoiler>a spoiler</tg-spoiler>: type the tags "
          "as text.")
    )


async def text_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    has_file = media_of(dialog_manager) is not None
    lines = [
        _("<b>New broadcast</b>. Type the text in Russian (required), up to {max} characters.").format(
            max=CAPTION_LIMIT if has_file else TEXT_LIMIT
        ),
        markup_help(),
    ]
    current = texts_of(dialog_manager).get(DEFAULT_LANGUAGE)
    if current:
        lines.append(_("Now: {text}").format(text=clip(visible_text(current), CARD_TEXT_CHARS)))
    return common(dialog_manager, "\n\n".join(lines), has_text=bool(current), keep=_("➡️ Keep it"))


def take_text(manager: DialogManager, message: Message, language: str) -> bool:
    """Validate and keep the typed text of `language`; False (the author told why) when it cannot go out."""
    source = (message.text or "").strip()
    try:
        check_text(source, caption=media_of(manager) is not None)
    except TextRefused as error:
        say(manager, describe_text(error))
        return False
    texts = texts_of(manager)
    texts[language] = source
    data(manager)["texts"] = texts
    return True


async def on_text(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.broadcasts.check_author(actor)
    if take_text(manager, message, DEFAULT_LANGUAGE):
        await manager.switch_to(B.languages)


# --- 2. texts in other languages --------------------------------------------------------------------------


async def languages_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    texts = texts_of(dialog_manager)
    marks = ", ".join(f"{language_name(code)} {'✅' if code in texts else '—'}" for code in LANGUAGE_NAMES)
    text = "\n".join([
        _("Texts: {marks}.").format(marks=marks),
        _("A resident gets the text in their language, or the Russian one. Add a text in another language?"),
    ])
    items = [
        (code, (_("✏️ Replace the text {language}") if code in texts else _("➕ Add a text {language}")).format(
            language=_(LANGUAGE_IN[code])
        ))
        for code in OTHER_LANGUAGES
    ]
    return common(dialog_manager, text, items=items, next=_("➡️ Next"))


async def on_language_text(callback: CallbackQuery, widget: Any, manager: DialogManager, code: str) -> None:
    if code not in OTHER_LANGUAGES:
        raise Gone("language")
    data(manager)["lang"] = code
    await manager.switch_to(B.text_other)


async def text_other_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    code = str(data(dialog_manager).get("lang") or "")
    if code not in OTHER_LANGUAGES:
        raise Gone("language")
    has_file = media_of(dialog_manager) is not None
    lines = [
        _("Type the text {language}, up to {max} characters.").format(
            language=_(LANGUAGE_IN[code]), max=CAPTION_LIMIT if has_file else TEXT_LIMIT
        ),
        markup_help(),
    ]
    current = texts_of(dialog_manager).get(code)
    if current:
        lines.append(_("Now: {text}").format(text=clip(visible_text(current), CARD_TEXT_CHARS)))
    return common(dialog_manager, "\n\n".join(lines), has_text=bool(current), remove=_("🗑 Remove this text"))


async def on_text_other(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, _settings, actor = deps(manager)
    await services.broadcasts.check_author(actor)
    code = str(data(manager).get("lang") or "")
    if code not in OTHER_LANGUAGES:
        raise Gone("language")
    if take_text(manager, message, code):
        await manager.switch_to(B.languages)


async def on_remove_text(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    texts = texts_of(manager)
    code = str(data(manager).get("lang") or "")
    if code in OTHER_LANGUAGES:  # the Russian text is replaced, never removed
        texts.pop(code, None)
    data(manager)["texts"] = texts
    await manager.switch_to(B.languages)


# --- 3. a photo or a document -----------------------------------------------------------------------------


async def media_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    media = media_of(dialog_manager)
    lines = [
        _("Attach a photo (up to 5 MB) or a document (up to 20 MB)? Send one, or press «{skip}».").format(
            skip=_("➡️ No file")
        )
    ]
    if media is not None:
        lines.append(_("Attached: {kind}.").format(kind=_("a photo") if media[0] == AttachmentKind.photo else _("a document")))
    return common(
        dialog_manager, "\n\n".join(lines), attached=media is not None,
        next=_("➡️ Next") if media is not None else _("➡️ No file"), remove=_("🗑 Remove the file"),
    )


async def on_media(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, settings, actor = deps(manager)
    await services.broadcasts.check_author(actor)
    try:
        if message.media_group_id is not None:
            raise BroadcastRefused("file_kind")
        if message.photo:
            size = message.photo[-1]
            kind = check_file(AttachmentKind.photo, size.file_size)
            file_id = size.file_id
        elif message.document is not None and message.animation is None:
            kind = check_file(AttachmentKind.document, message.document.file_size)
            file_id = message.document.file_id
        else:
            raise BroadcastRefused("file_kind")
        check_captions(texts_of(manager))
    except BroadcastRefused as error:
        say(manager, describe_refusal(error, settings))
        return
    data(manager)["media"] = [str(kind), file_id]
    await manager.switch_to(B.button_label)


async def file_expected(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    say(manager, _("Please send a photo or a document, or press «{skip}».").format(skip=_("➡️ No file")))


async def on_remove_file(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    data(manager).pop("media", None)


# --- 4. a URL button --------------------------------------------------------------------------------------


async def label_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    lines = [_("Add a link button under the message? Type its label (up to {max} characters), or press «{skip}».").format(
        max=LABEL_CHARS, skip=_("➡️ No button")
    )]
    label, url = data(dialog_manager).get("button_text"), data(dialog_manager).get("button_url")
    if label and url:
        lines.append(_("Now: «{label}» → {url}").format(label=escape(label), url=escape(url)))
    return common(
        dialog_manager, "\n\n".join(lines), has_button=bool(label), skip=_("➡️ No button"),
        keep=_("➡️ Keep this button"), remove=_("🗑 Remove the button"),
    )


async def on_label(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, settings, actor = deps(manager)
    await services.broadcasts.check_author(actor)
    try:
        data(manager)["label"] = check_label(message.text or "")
    except BroadcastRefused as error:
        say(manager, describe_refusal(error, settings))
        return
    await manager.switch_to(B.button_url)


async def on_no_button(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    for key in ("label", "button_text", "button_url"):
        data(manager).pop(key, None)
    if button.widget_id == "skip":
        await manager.switch_to(B.audience)


async def url_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    label = str(data(dialog_manager).get("label") or "")
    text = _("Type the link for the button «{label}», starting with https://").format(label=escape(label))
    return common(dialog_manager, text)


async def on_url(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, settings, actor = deps(manager)
    await services.broadcasts.check_author(actor)
    try:
        url = check_url(message.text or "")
    except BroadcastRefused as error:
        say(manager, describe_refusal(error, settings))
        return
    data(manager)["button_text"] = str(data(manager).pop("label", ""))
    data(manager)["button_url"] = url
    await manager.switch_to(B.audience)


# --- 5. the audience --------------------------------------------------------------------------------------


async def audience_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    audience = audience_of(dialog_manager)
    size = await services.broadcasts.audience_size(actor, audience)
    filtered = bool(audience.districts or audience.block_id is not None or audience.language)
    lines = [
        _("<b>Who gets it?</b> Residents who consented and did not stop news; every filter chosen must hold."),
        *audience_lines(audience, services, actor.lang),
        "",
        _("Recipients: {count}").format(count=size),
    ]
    return common(
        dialog_manager, "\n".join(lines), filtered=filtered,
        districts=_("🏘 Districts"), block=_("🗂 Topic"), language=_("🌐 Language"),
        everyone=_("♻️ Everyone who consented"), next=_("➡️ Next"),
    )


async def on_everyone(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    for key in ("districts", "block_id", "language"):
        data(manager).pop(key, None)


async def on_audience_done(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    services, settings, actor = deps(manager)
    if await services.broadcasts.audience_size(actor, audience_of(manager)) == 0:
        popup(manager, describe_refusal(BroadcastRefused("no_recipients"), settings), alert=True)
        return
    await manager.switch_to(B.urgent)


async def districts_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any
) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    chosen = set(data(dialog_manager).get("districts") or ())
    items = [(d.id, ("✅ " if d.id in chosen else "") + d.name(actor.lang)) for d in services.directory.districts()]
    return common(
        dialog_manager,
        _("Residents following which districts (the ones they chose, or the district of their latest appeal)? "
          "Press to choose, then «Done»."),
        items=items,
        done=_("✅ Done ({count} chosen)").format(count=len(chosen)),
    )


async def on_district(callback: CallbackQuery, widget: Any, manager: DialogManager, district_id: int) -> None:
    services, _settings, _actor = deps(manager)
    services.broadcasts.check_audience(BroadcastAudience(districts=(district_id,)))  # a forged id is Gone
    chosen = set(data(manager).get("districts") or ())
    chosen ^= {district_id}
    data(manager)["districts"] = sorted(chosen)


async def block_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    items = [(b.id, b.name(actor.lang)) for b in services.directory.blocks()]
    return common(
        dialog_manager, _("Residents who did not turn off news of which topic?"), items=items, any=_("Any topic")
    )


async def on_block(callback: CallbackQuery, widget: Any, manager: DialogManager, block_id: int) -> None:
    services, _settings, _actor = deps(manager)
    services.broadcasts.check_audience(BroadcastAudience(block_id=block_id))
    data(manager)["block_id"] = block_id
    await manager.switch_to(B.audience)


async def on_any_block(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    data(manager).pop("block_id", None)
    await manager.switch_to(B.audience)


async def language_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    return common(
        dialog_manager, _("Residents whose bot speaks which language?"), items=list(LANGUAGE_NAMES.items()), any=_("Any language")
    )


async def on_language(callback: CallbackQuery, widget: Any, manager: DialogManager, language: str) -> None:
    services, _settings, _actor = deps(manager)
    services.broadcasts.check_audience(BroadcastAudience(language=language))
    data(manager)["language"] = language
    await manager.switch_to(B.audience)


async def on_any_language(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    data(manager).pop("language", None)
    await manager.switch_to(B.audience)


# --- 6. urgency -------------------------------------------------------------------------------------------


async def urgent_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, **_kwargs: Any
) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    config = settings.scheduler
    text = _(
        "Is it urgent? An urgent broadcast goes out even in the quiet hours ({start}–{end}): only for emergencies."
    ).format(start=f"{config.quiet_start:%H:%M}", end=f"{config.quiet_end:%H:%M}")
    return common(dialog_manager, text, normal=_("No, a normal one"), urgent=_("⚡ Yes, urgent"))


async def on_urgency(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    data(manager)["urgent"] = button.widget_id == "urgent"
    data(manager).pop("quiet_until", None)
    if await send_previews(manager):
        await manager.switch_to(B.preview)


# --- 7. the preview ---------------------------------------------------------------------------------------


async def send_previews(manager: DialogManager) -> bool:
    """The preview of every language the broadcast has a text in (Russian first): each text goes through Telegram
    once for real before anything can be stored (the preview screen is the only way to «Send now» and «Schedule»).
    False (the author told which language Telegram refused, and why) when one is refused: the dialog stays on its
    step."""
    for language in (DEFAULT_LANGUAGE, *(code for code in OTHER_LANGUAGES if code in texts_of(manager))):
        if not await send_preview(manager, language):
            return False
    return True


async def send_preview(manager: DialogManager, language: str) -> bool:
    """The item exactly as a resident of `language` sees it (their text or the Russian one, the file, the URL button
    and «Unsubscribe» in their language), sent above the preview screen. False when Telegram refuses it (the author
    is told, with Telegram's reason)."""
    try:
        await post_preview(manager, language)
    except TelegramBadRequest as error:
        say(manager, escape(_(
            "Telegram refused the text {language}: «{reason}». Please correct it; nothing was stored."
        ).format(language=_(LANGUAGE_IN.get(language, LANGUAGE_IN["ru"])), reason=error.message)))
        manager.show_mode = ShowMode.SEND  # below any preview that did go out
        return False
    return True


async def post_preview(manager: DialogManager, language: str) -> None:
    services, _settings, actor = deps(manager)
    draft = draft_of(manager)
    await services.broadcasts.check_author(actor)
    i18n: I18n = manager.middleware_data["i18n"]
    content = BroadcastContent(
        broadcast_id=int(data(manager).get("created") or 0),
        texts=draft.texts,
        media_kind=draft.media_kind,
        media_file_id=draft.media_file_id,
        button_text=draft.button_text,
        button_url=draft.button_url,
        block_id=draft.audience.block_id,
    )
    rendered = render_broadcast(content, language, lambda text: i18n.gettext(text, locale=language))
    bot: Bot = manager.middleware_data["bot"]
    chat_id = manager.middleware_data["event_chat"].id
    text = rendered.text or ""
    if rendered.media:
        kind, file_id = rendered.media[0]
        if kind == AttachmentKind.photo:
            await bot.send_photo(chat_id, file_id, caption=text, reply_markup=rendered.reply_markup)
        else:
            await bot.send_document(chat_id, file_id, caption=text, reply_markup=rendered.reply_markup)
    else:
        await bot.send_message(chat_id, text, reply_markup=rendered.reply_markup)
    manager.show_mode = ShowMode.SEND  # the screen follows the preview, below it


async def preview_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, **_kwargs: Any
) -> dict[str, Any]:
    draft = draft_of(dialog_manager)
    created = data(dialog_manager).get("created")
    size = await services.broadcasts.audience_size(actor, draft.audience)
    texts = ", ".join(language_name(code) for code in LANGUAGE_NAMES if code in draft.texts)
    media = {AttachmentKind.photo: _("a photo"), AttachmentKind.document: _("a document")}
    lines = [
        _("<b>Preview</b> above: the message as residents see it."),
        _("Texts: {languages}").format(languages=texts),
        _("File: {file}").format(file=media[draft.media_kind] if draft.media_kind else _("none")),
        _("Button: {button}").format(
            button=f"«{escape(draft.button_text)}» → {escape(draft.button_url or '')}" if draft.button_text else _("none")
        ),
        *audience_lines(draft.audience, services, actor.lang),
        _("Urgent: {value}").format(value=_("yes") if draft.urgent else _("no")),
        "",
        _("Recipients: {count}").format(count=size),
    ]
    quiet_until = data(dialog_manager).get("quiet_until")
    if created:
        lines = [_("✅ Broadcast № {id} is stored. Its progress is in the message below.").format(id=created)]
    items = [
        (code, _("👁 Preview {language}").format(language=_(LANGUAGE_IN[code])))
        for code in OTHER_LANGUAGES if code in draft.texts
    ]
    return common(
        dialog_manager, "\n".join(lines), items=items, editable=not created, stored=bool(created),
        now=_("🚀 Send now"), later=_("🕒 Schedule…"), discard=_("✖ Discard"), close=_("✖ Close"),
        list=_("📋 Broadcasts"),
        quiet=bool(quiet_until) and not created,
        at_end=_("🕘 Send at {moment}").format(
            moment=local_time(datetime.fromisoformat(quiet_until), settings.tz) if quiet_until else ""
        ),
        as_urgent=_("⚡ Send now as urgent"),
    )


async def on_preview_language(callback: CallbackQuery, widget: Any, manager: DialogManager, code: str) -> None:
    if code not in OTHER_LANGUAGES or code not in texts_of(manager):
        raise Gone("language")
    await send_preview(manager, code)  # (passed once already at the preview step)


# --- 8. storing: now or at a time -------------------------------------------------------------------------


async def store(manager: DialogManager, start_at: datetime | None) -> Stored | None:
    """Store the draft; None (the author told why) when it is refused."""
    services, settings, actor = deps(manager)
    try:
        stored = await services.broadcasts.create(actor, draft_of(manager), start_at)
    except BroadcastRefused as error:
        if error.detail in ("quiet_now", "quiet_hours") and error.allowed_at is not None:
            data(manager)["quiet_until"] = error.allowed_at.isoformat()
        if error.detail == "quiet_hours":
            config = settings.scheduler
            say(manager, _(
                "{moment} is within the quiet hours ({start}–{end}), when residents are not disturbed. "
                "Please choose another time."
            ).format(
                moment=local_time(start_at, settings.tz) if start_at else "—",
                start=f"{config.quiet_start:%H:%M}", end=f"{config.quiet_end:%H:%M}",
            ))
        else:
            popup(manager, describe_refusal(error, settings), alert=True)
            say(manager, describe_refusal(error, settings))
        return None
    except TextRefused as error:
        popup(manager, describe_text(error), alert=True)
        return None
    data(manager)["created"] = stored.broadcast_id
    data(manager).pop("quiet_until", None)
    if stored.existed and stored.has_progress:
        popup(manager, _("Broadcast № {id} is already stored; nothing new was created.").format(
            id=stored.broadcast_id
        ), alert=True)
        return None
    # New, or stored by a press whose progress message did not go out (Telegram failed): post it now.
    await post_progress(manager, stored)
    return stored


async def post_progress(manager: DialogManager, stored: Stored) -> None:
    """The author's progress message (the delivery side edits it as the broadcast goes), below the dialog."""
    services, settings, actor = deps(manager)
    clock: Clock = manager.middleware_data["clock"]
    bot: Bot = manager.middleware_data["bot"]
    chat_id = manager.middleware_data["event_chat"].id
    if stored.start_at > clock.now():
        text = _("📣 Broadcast № {id}: scheduled for {moment}. Recipients now: {count}.").format(
            id=stored.broadcast_id, moment=local_time(stored.start_at, settings.tz), count=stored.planned
        )
    else:
        text = _("📣 Broadcast № {id}: starting… Recipients: {count}.").format(
            id=stored.broadcast_id, count=stored.planned
        )
    sent = await bot.send_message(chat_id, text, reply_markup=controls(stored.broadcast_id, stored.status))
    await services.broadcasts.attach_progress(actor, stored.broadcast_id, chat_id, sent.message_id)
    # The dialog's screen stays where it is (edited above the progress message), whatever the step asked for.
    manager.show_mode = ShowMode.EDIT


async def on_send_now(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    if await store(manager, None) is not None:
        # The scheduler's tick starts it (the delivery side claims it in the database).
        popup(manager, _("Stored: the broadcast starts within a few seconds."))


async def on_send_at_end(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    quiet_until = data(manager).get("quiet_until")
    if not quiet_until:
        raise Gone("quiet")
    await store(manager, datetime.fromisoformat(quiet_until))


async def on_send_urgent(callback: CallbackQuery, button: Any, manager: DialogManager) -> None:
    data(manager)["urgent"] = True
    if await store(manager, None) is not None:
        popup(manager, _("Stored: the broadcast starts within a few seconds."))


def example_moment(clock: Clock, settings: Settings) -> datetime:
    """Tomorrow at this time, or the end of the quiet hours it falls in: an example that would be accepted."""
    config = settings.scheduler
    return next_allowed_time(
        clock.now() + timedelta(days=1), quiet_start=config.quiet_start, quiet_end=config.quiet_end, tz=settings.tz
    )


async def schedule_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, clock: Clock, **_kwargs: Any
) -> dict[str, Any]:
    await services.broadcasts.check_author(actor)
    text = _("When to send it? Type the date and time as DD.MM.YYYY HH:MM (region time), e.g. {example}.").format(
        example=local_time(example_moment(clock, settings), settings.tz)
    )
    return common(dialog_manager, text)


async def on_schedule_typed(message: Message, widget: MessageInput, manager: DialogManager) -> None:
    services, settings, actor = deps(manager)
    await services.broadcasts.check_author(actor)
    clock: Clock = manager.middleware_data["clock"]
    moment = parse_moment(message.text or "", settings)
    if moment is None or moment <= clock.now():
        say(manager, _("Please type a future date and time as DD.MM.YYYY HH:MM, e.g. {example}.").format(
            example=local_time(example_moment(clock, settings), settings.tz)
        ))
        return
    if await store(manager, moment) is not None:
        await manager.switch_to(B.preview)


# --- 9. the controls under the progress message -----------------------------------------------------------


def control_button(text: str, action: BroadcastAction, broadcast_id: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=BroadcastCb(a=action, id=broadcast_id).pack())


def controls(broadcast_id: int, status: BroadcastStatus) -> InlineKeyboardMarkup | None:
    """The buttons of a broadcast in this status: scheduled «Cancel»; running «Pause», «Cancel»; paused «Resume»,
    «Cancel»; an ended one none."""
    cancel = control_button(_("✖️ Cancel"), BroadcastAction.cancel, broadcast_id)
    if status == BroadcastStatus.scheduled:
        return InlineKeyboardMarkup(inline_keyboard=[[cancel]])
    if status == BroadcastStatus.running:
        return InlineKeyboardMarkup(
            inline_keyboard=[[control_button(_("⏸ Pause"), BroadcastAction.pause, broadcast_id), cancel]]
        )
    if status == BroadcastStatus.paused:
        return InlineKeyboardMarkup(
            inline_keyboard=[[control_button(_("▶️ Resume"), BroadcastAction.resume, broadcast_id), cancel]]
        )
    return None


def are_you_sure(broadcast_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        control_button(_("✅ Yes, cancel it"), BroadcastAction.cancel_yes, broadcast_id),
        control_button(_("↩️ No, keep it"), BroadcastAction.keep, broadcast_id),
    ]])


def stale_text(broadcast_id: int, status: BroadcastStatus) -> str:
    return _("Broadcast № {id} is {status} now; nothing was changed.").format(id=broadcast_id, status=_(STATUS[status]))


async def refresh(services: Services, settings: Settings, bot: Bot, broadcast_id: int) -> None:
    """After a control: the progress message shows the new state in full (figures and buttons). No other message is
    touched: a forged or stale press on some other message leaves it as it is."""
    progress = await services.delivery.progress(broadcast_id)
    if progress is not None:
        await edit_progress(bot, progress, _, settings)


async def close_question(callback: CallbackQuery, text: str) -> None:
    """The «Cancel broadcast № …?» message, answered: its text says what happened, its buttons go."""
    if isinstance(callback.message, Message):
        with suppress(TelegramBadRequest):
            await callback.message.edit_text(text, reply_markup=None)


@router.callback_query(BroadcastCb.filter(F.a == BroadcastAction.open))
async def open_card(
    callback: CallbackQuery, callback_data: BroadcastCb, actor: Actor, services: Services, dialog_manager: DialogManager
) -> None:
    """«Open the broadcast» under its final report: its card (refused to anyone without the role, Gone if forged)."""
    await services.broadcasts.card(actor, callback_data.id)
    # On top of whatever dialog the author is in (composing another broadcast…): closing the card returns there.
    await dialog_manager.start(
        B.card, data={"broadcast_id": callback_data.id}, mode=StartMode.NORMAL, show_mode=ShowMode.SEND
    )


@router.callback_query(BroadcastCb.filter())
async def on_control(
    callback: CallbackQuery,
    callback_data: BroadcastCb,
    callback_answer: CallbackAnswer,
    actor: Actor,
    services: Services,
    settings: Settings,
    bot: Bot,
) -> None:
    """Pause, resume, cancel of a broadcast; cancel is asked first in a message of its own (the progress message is
    edited every few seconds and would wipe the question). Stale presses are answered with its status; any admin or
    editor may press them (the service checks)."""
    service = services.broadcasts
    broadcast_id = callback_data.id
    try:
        if callback_data.a == BroadcastAction.pause:
            await service.pause(actor, broadcast_id)
            callback_answer.text = _("Broadcast № {id} is paused.").format(id=broadcast_id)
        elif callback_data.a == BroadcastAction.resume:
            await service.resume(actor, broadcast_id)
            callback_answer.text = _("Broadcast № {id} goes on.").format(id=broadcast_id)
        elif callback_data.a == BroadcastAction.cancel:
            status = await service.status(actor, broadcast_id)
            if status not in (BroadcastStatus.scheduled, BroadcastStatus.running, BroadcastStatus.paused):
                raise StaleControl("cancel", status)
            if isinstance(callback.message, Message):
                await callback.message.answer(
                    _("Cancel broadcast № {id}? What has not been sent yet will not be sent.").format(id=broadcast_id),
                    reply_markup=are_you_sure(broadcast_id),
                    reply_to_message_id=callback.message.message_id,
                )
            return
        elif callback_data.a == BroadcastAction.cancel_yes:
            await service.cancel(actor, broadcast_id)
            callback_answer.text = _("Broadcast № {id} is cancelled.").format(id=broadcast_id)
            callback_answer.show_alert = True
            await close_question(callback, _("Broadcast № {id} is cancelled.").format(id=broadcast_id))
        else:  # «No, keep it»
            await service.status(actor, broadcast_id)
            await close_question(callback, _("Broadcast № {id} goes on as it was.").format(id=broadcast_id))
        await refresh(services, settings, bot, broadcast_id)
    except StaleControl as error:
        callback_answer.text = stale_text(broadcast_id, error.status)
        callback_answer.show_alert = True
        if callback_data.a in (BroadcastAction.cancel_yes, BroadcastAction.keep):
            await close_question(callback, stale_text(broadcast_id, error.status))
        await refresh(services, settings, bot, broadcast_id)


# --- 10. the list and a broadcast's card ------------------------------------------------------------------


async def list_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, **_kwargs: Any
) -> dict[str, Any]:
    found = await services.broadcasts.broadcasts(actor)
    items = [
        (b.id, fit([f"№ {b.id}", _(STATUS[b.status]), local_time(b.start_at, settings.tz)], [" ".join(visible_text(b.text).split())]))
        for b in found
    ]
    text = _("<b>Broadcasts</b>: {count}, the newest first. Open one for its card and report.").format(count=len(found))
    return common(dialog_manager, text, items=items, new=_("➕ New broadcast"), close=_("✖ Close"))


async def on_open(callback: CallbackQuery, widget: Any, manager: DialogManager, broadcast_id: int) -> None:
    services, _settings, actor = deps(manager)
    await services.broadcasts.card(actor, broadcast_id)  # a forged id is Gone
    data(manager)["broadcast_id"] = broadcast_id
    await manager.switch_to(B.card)


def card_text(card: BroadcastCard, services: Services, settings: Settings, lang: str) -> str:
    s = card.summary
    shown = visible_text(s.text)
    if len(shown) > CARD_TEXT_CHARS:
        shown = shown[:CARD_TEXT_CHARS].rstrip() + "…"
    c = card.counts
    lines = [
        _("<b>Broadcast № {id}</b> ({status})").format(id=s.id, status=_(STATUS[s.status])) + (" ⚡" if s.urgent else ""),
        escape(shown),
        "",
        _("Texts: {languages}").format(languages=", ".join(language_name(x) for x in LANGUAGE_NAMES if x in card.texts)),
        *audience_lines(card.audience, services, lang),
        _("Created: {moment}").format(moment=local_time(s.created_at, settings.tz)),
        _("Starts: {moment}").format(moment=local_time(s.start_at, settings.tz)),
    ]
    if s.started_at:
        lines.append(_("Started: {moment}").format(moment=local_time(s.started_at, settings.tz)))
    if s.finished_at:
        lines.append(_("Ended: {moment}").format(moment=local_time(s.finished_at, settings.tz)))
    lines += [
        "",
        _("Recipients: {planned} counted at confirmation, {listed} listed.").format(
            planned=card.planned, listed=card.recipients
        ),
        _("Delivered: {sent} · blocked the bot: {blocked} · other errors: {failed} · cancelled: {cancelled} · "
          "waiting: {pending}").format(
            sent=c.sent, blocked=c.blocked, failed=c.failed, cancelled=c.cancelled, pending=c.pending
        ),
    ]
    if c.unsure:
        lines.append(_("Possibly received twice (a restart while sending): {count}").format(count=c.unsure))
    return "\n".join(lines)


def broadcast_id_of(manager: DialogManager) -> int:
    found = data(manager).get("broadcast_id")
    if found is None and isinstance(manager.start_data, dict):  # opened from the report's «Open the broadcast»
        found = manager.start_data.get("broadcast_id")
    if not isinstance(found, int):
        raise Gone("broadcast")
    return found


async def card_getter(
    dialog_manager: DialogManager, services: Services, actor: Actor, settings: Settings, **_kwargs: Any
) -> dict[str, Any]:
    card = await services.broadcasts.card(actor, broadcast_id_of(dialog_manager))
    status = card.summary.status
    return common(
        dialog_manager, card_text(card, services, settings, actor.lang), refresh=_("🔄 Refresh"),
        running=status == BroadcastStatus.running, paused=status == BroadcastStatus.paused,
        live=status in (BroadcastStatus.scheduled, BroadcastStatus.running, BroadcastStatus.paused),
        pause=_("⏸ Pause"), resume=_("▶️ Resume"), cancel=_("✖️ Cancel"), close=_("✖ Close"),
    )


async def on_card_control(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """The card's «Pause», «Resume» and (after «Are you sure?») «Cancel»: the same service moves as the progress
    message's buttons, for a broadcast whose progress message is out of sight."""
    services, _settings, actor = deps(manager)
    broadcast_id = broadcast_id_of(manager)
    try:
        if button.widget_id == "pause":
            await services.broadcasts.pause(actor, broadcast_id)
            popup(manager, _("Broadcast № {id} is paused.").format(id=broadcast_id))
        elif button.widget_id == "resume":
            await services.broadcasts.resume(actor, broadcast_id)
            popup(manager, _("Broadcast № {id} goes on.").format(id=broadcast_id))
        else:
            await services.broadcasts.cancel(actor, broadcast_id)
            popup(manager, _("Broadcast № {id} is cancelled.").format(id=broadcast_id), alert=True)
    except StaleControl as error:
        popup(manager, stale_text(broadcast_id, error.status), alert=True)
    await manager.switch_to(B.card)


async def card_cancel_getter(dialog_manager: DialogManager, services: Services, actor: Actor, **_kwargs: Any) -> dict[str, Any]:
    broadcast_id = broadcast_id_of(dialog_manager)
    await services.broadcasts.status(actor, broadcast_id)
    return common(
        dialog_manager, _("Cancel broadcast № {id}? Press «Yes» to confirm.").format(id=broadcast_id),
        yes=_("✅ Yes, cancel it"), no=_("↩️ No, keep it"),
    )


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
        Cancel(Format("{cancel}"), id="cancel_dialog"),
        state=state,
        getter=with_cancel(getter),
    )


def with_cancel(getter: Any) -> Any:
    async def wrapped(**kwargs: Any) -> dict[str, Any]:
        return {**await getter(**kwargs), "cancel": _("✖ Discard")}

    return wrapped


def choice(widget_id: str, on_click: Any, *, type_factory: Any = int) -> Select[Any]:
    return Select(
        Format("{item[1]}"), id=widget_id, item_id_getter=lambda item: item[0], items="items",
        type_factory=type_factory, on_click=on_click,
    )


def step(state: Any, getter: Any, back: Any, *widgets: Any) -> Window:
    """A screen of buttons with Back and Discard."""
    return Window(
        heading(), *buttons_only(), *widgets,
        SwitchTo(Format("{back}"), id="back", state=back),
        Cancel(Format("{cancel}"), id="cancel_dialog"),
        state=state, getter=with_cancel(getter),
    )


def dialog() -> Dialog:
    """Built anew for each Dispatcher; entered by /broadcast, /broadcasts or from the /staff menu."""
    return Dialog(
        window(
            B.list, list_getter,
            Button(Format("{new}"), id="new", on_click=on_new),
            picker("broadcast", on_open),
            Cancel(Format("{close}")),
        ),
        window(
            B.card, card_getter,
            Group(
                Button(Format("{pause}"), id="pause", on_click=on_card_control, when="running"),
                Button(Format("{resume}"), id="resume", on_click=on_card_control, when="paused"),
                SwitchTo(Format("{cancel}"), id="cancel", state=B.card_cancel, when="live"),
                width=2,
            ),
            Button(Format("{refresh}"), id="refresh"),
            SwitchTo(Format("{back}"), id="back", state=B.list),
            Cancel(Format("{close}"), id="close_card"),
        ),
        window(
            B.card_cancel, card_cancel_getter,
            Button(Format("{yes}"), id="yes", on_click=on_card_control),
            SwitchTo(Format("{no}"), id="no", state=B.card),
        ),
        typed_window(
            B.text, text_getter, on_text, B.list,
            SwitchTo(Format("{keep}"), id="keep", state=B.languages, when="has_text"),
        ),
        step(
            B.languages, languages_getter, B.text,
            Column(choice("lang", on_language_text, type_factory=str)),
            SwitchTo(Format("{next}"), id="next", state=B.media),
        ),
        typed_window(
            B.text_other, text_other_getter, on_text_other, B.languages,
            Button(Format("{remove}"), id="remove", on_click=on_remove_text, when="has_text"),
        ),
        Window(
            heading(),
            MessageInput(unknown_command, filter=COMMAND),
            MessageInput(file_expected, content_types=[ContentType.TEXT]),
            MessageInput(on_media, content_types=ContentType.ANY),
            unmatched_press(),
            Button(Format("{remove}"), id="remove", on_click=on_remove_file, when="attached"),
            SwitchTo(Format("{next}"), id="next", state=B.button_label),
            SwitchTo(Format("{back}"), id="back", state=B.languages),
            Cancel(Format("{cancel}"), id="cancel_dialog"),
            state=B.media,
            getter=with_cancel(media_getter),
        ),
        typed_window(
            B.button_label, label_getter, on_label, B.media,
            SwitchTo(Format("{keep}"), id="keep", state=B.audience, when="has_button"),
            Button(Format("{remove}"), id="remove", on_click=on_no_button, when="has_button"),
            Button(Format("{skip}"), id="skip", on_click=on_no_button),
        ),
        typed_window(B.button_url, url_getter, on_url, B.button_label),
        step(
            B.audience, audience_getter, B.button_label,
            Group(
                SwitchTo(Format("{districts}"), id="districts", state=B.districts),
                SwitchTo(Format("{block}"), id="block", state=B.block),
                SwitchTo(Format("{language}"), id="language", state=B.language),
                width=3,
            ),
            Button(Format("{everyone}"), id="everyone", on_click=on_everyone, when="filtered"),
            Button(Format("{next}"), id="next", on_click=on_audience_done),
        ),
        step(
            B.districts, districts_getter, B.audience,
            picker("district", on_district, width=2),
            SwitchTo(Format("{done}"), id="done", state=B.audience),
        ),
        step(
            B.block, block_getter, B.audience,
            Column(choice("block", on_block)),
            Button(Format("{any}"), id="any", on_click=on_any_block),
        ),
        step(
            B.language, language_getter, B.audience,
            Group(choice("language", on_language, type_factory=str), width=3),
            Button(Format("{any}"), id="any", on_click=on_any_language),
        ),
        step(
            B.urgent, urgent_getter, B.audience,
            Button(Format("{normal}"), id="normal", on_click=on_urgency),
            Button(Format("{urgent}"), id="urgent", on_click=on_urgency),
        ),
        Window(
            heading(),
            *buttons_only(),
            Column(choice("preview", on_preview_language, type_factory=str), when="editable"),
            Button(Format("{now}"), id="now", on_click=on_send_now, when="editable"),
            SwitchTo(Format("{later}"), id="later", state=B.schedule, when="editable"),
            Button(Format("{at_end}"), id="at_end", on_click=on_send_at_end, when="quiet"),
            Button(Format("{as_urgent}"), id="as_urgent", on_click=on_send_urgent, when="quiet"),
            SwitchTo(Format("{back}"), id="back", state=B.urgent, when="editable"),
            Cancel(Format("{discard}"), id="cancel_dialog", when="editable"),
            SwitchTo(Format("{list}"), id="list", state=B.list, when="stored"),
            Cancel(Format("{close}"), id="close", when="stored"),
            state=B.preview,
            getter=preview_getter,
        ),
        typed_window(B.schedule, schedule_getter, on_schedule_typed, B.preview),
        on_start=on_start,
    )

