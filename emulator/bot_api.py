"""Implementations of the emulated Bot API methods.

Each method is an ``async (state, params) -> result`` function registered
under its Bot API name with :func:`method`.  A method either returns the
``result`` of a successful answer or raises :class:`ApiError`; it must
validate everything before changing state, so a rejected call leaves no
trace (no half-sent album, no recorded message).
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import ApiError, bad_request, conflict, forbidden
from .html_parser import EntityParseError, ParsedText, parse_html, strip_text
from .markup import validate_markup
from .models import BotMessage, ChatState
from .params import Params, UploadedFile
from .state import COPYABLE_KEYS, EmulatorState, message_kind

Handler = Callable[[EmulatorState, Params], Awaitable[Any]]

METHODS: dict[str, tuple[str, Handler]] = {}
"""Lower-cased method name -> (canonical name, implementation); Telegram ignores case."""
SENDING_METHODS: set[str] = set()
"""Canonical names of methods that post a new message (rate limits, blocked users)."""

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
MEDIA_KINDS = frozenset({"photo", "video", "document", "audio", "voice", "animation"})
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")


def method(*names: str, sending: bool = False) -> Callable[[Handler], Handler]:
    """Register an implementation under one or more Bot API method names."""

    def register(func: Handler) -> Handler:
        for name in names:
            METHODS[name.lower()] = (name, func)
            if sending:
                SENDING_METHODS.add(name)
        return func

    return register


def lookup(name: str) -> tuple[str, Handler] | None:
    """Find a method by name, case-insensitively like Telegram."""
    return METHODS.get(name.lower())


# ---------------------------------------------------------------------- helpers


def format_text(
    state: EmulatorState,
    raw: str,
    parse_mode: str | None,
    entities: Any,
    *,
    caption: bool,
) -> ParsedText:
    """Parse text or caption by ``parse_mode``/``entities`` and apply Telegram's limits."""
    if parse_mode:
        mode = parse_mode.lower()
        if mode == "html":
            try:
                parsed = parse_html(raw, strict_ampersand=state.strict_ampersand, users=state.user_objects)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        elif mode in ("markdown", "markdownv2"):
            # Markdown is accepted but not parsed (the project uses HTML); the text is kept as is.
            parsed = ParsedText(raw, [])
        else:
            raise bad_request("unsupported parse_mode")
    else:
        if entities is not None and not isinstance(entities, list):
            raise bad_request("can't parse entities JSON object")
        parsed = ParsedText(raw, list(entities or []))
    parsed = strip_text(parsed.text, parsed.entities)
    if not caption and not parsed.text:
        raise bad_request("message text is empty")
    if len(parsed.text) > (CAPTION_LIMIT if caption else TEXT_LIMIT):
        raise bad_request("message caption is too long" if caption else "message is too long")
    return parsed


def _caption_fields(state: EmulatorState, caption: str | None, parse_mode: str | None, entities: Any) -> dict[str, Any]:
    """``caption``/``caption_entities`` message fields (empty when there is no caption)."""
    if not caption:
        return {}
    parsed = format_text(state, caption, parse_mode, entities, caption=True)
    fields: dict[str, Any] = {}
    if parsed.text:
        fields["caption"] = parsed.text
    if parsed.entities:
        fields["caption_entities"] = parsed.entities
    return fields


def _target(state: EmulatorState, p: Params) -> ChatState:
    """The chat a sending method posts to; 403 when the user blocked the bot."""
    chat = state.resolve_chat(p.get("chat_id"))
    if chat.blocked:
        raise forbidden("bot was blocked by the user")
    return chat


def _reply_target(chat: ChatState, p: Params) -> dict[str, Any] | None:
    """The message replied to via ``reply_parameters`` or legacy ``reply_to_message_id``."""
    parameters = p.get_json("reply_parameters")
    allow_missing = p.get_bool("allow_sending_without_reply")
    message_id: Any = None
    if isinstance(parameters, dict):
        message_id = parameters.get("message_id")
        allow_missing = allow_missing or bool(parameters.get("allow_sending_without_reply"))
        if parameters.get("chat_id") not in (None, chat.id):
            # Cross-chat replies are not emulated; treat the target as missing.
            message_id = None if allow_missing else -1
    else:
        message_id = p.get_int("reply_to_message_id")
    if not message_id:
        return None
    target = chat.messages.get(message_id) if isinstance(message_id, int) else None
    if target is None and not allow_missing:
        raise bad_request("message to be replied not found")
    return target


def _extra(p: Params) -> dict[str, Any]:
    """Flags that show up on the sent Message."""
    extra: dict[str, Any] = {}
    if p.get_bool("protect_content"):
        extra["has_protected_content"] = True
    return extra


def _opt_int(options: dict[str, Any], key: str, default: int) -> int:
    value = options.get(key)
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _media_meta(kind: str, options: dict[str, Any], file_name: str | None, mime: str | None) -> dict[str, Any]:
    """Kind-specific fields Telegram fills for an uploaded file (required by aiogram's models)."""
    if kind == "video":
        meta = {
            "width": _opt_int(options, "width", 1280),
            "height": _opt_int(options, "height", 720),
            "duration": _opt_int(options, "duration", 10),
            "mime_type": "video/mp4",
        }
    elif kind == "animation":
        meta = {
            "width": _opt_int(options, "width", 480),
            "height": _opt_int(options, "height", 270),
            "duration": _opt_int(options, "duration", 3),
            "mime_type": "video/mp4",
        }
    elif kind == "audio":
        meta = {"duration": _opt_int(options, "duration", 180), "mime_type": "audio/mpeg"}
        for key in ("title", "performer"):
            if options.get(key):
                meta[key] = options[key]
    elif kind == "voice":
        meta = {"duration": _opt_int(options, "duration", 3), "mime_type": "audio/ogg"}
    elif kind == "video_note":
        meta = {"length": _opt_int(options, "length", 240), "duration": _opt_int(options, "duration", 5)}
    elif kind == "sticker":
        meta = {"type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False}
        if options.get("emoji"):
            meta["emoji"] = options["emoji"]
    else:
        meta = {"mime_type": mime or EmulatorState.guess_mime(file_name)}
    if file_name and kind in ("document", "video", "animation", "audio"):
        meta["file_name"] = file_name
    return meta


def media_content(
    state: EmulatorState, kind: str, value: str | UploadedFile, options: dict[str, Any]
) -> dict[str, Any]:
    """Message fields for media sent by the bot as an upload, a URL or a file_id."""
    if isinstance(value, UploadedFile) or value.startswith(("http://", "https://")):
        if isinstance(value, UploadedFile):
            content, file_name, mime = value.content, value.filename, value.content_type
        else:
            content = f"downloaded from {value}".encode()
            file_name = value.rstrip("/").rsplit("/", 1)[-1] or None
            mime = None
        if kind == "photo":
            return {"photo": state.register_photo(content)}
        if mime == "application/octet-stream":
            mime = None
        record = state.register_file(
            kind, content, meta=_media_meta(kind, options, file_name, mime), file_name=file_name
        )
        return _with_document({kind: record.to_object()})

    record = state.files.get(value)
    if record is None:
        if state.strict_file_ids:
            raise bad_request("wrong file identifier/HTTP URL specified")
        # Lenient mode: accept foreign file_ids by registering them on first use.
        content = state.generated_content(kind, value)
        if kind == "photo":
            sizes = state.register_photo(content)
            record = state.files[sizes[-1]["file_id"]]
        else:
            record = state.register_file(kind, content, meta=_media_meta(kind, options, None, None))
        state.files[value] = record
    if (record.kind == "photo") != (kind == "photo"):
        raise bad_request("type of file mismatch")
    if kind == "photo":
        return {"photo": record.photo_sizes}
    return _with_document({kind: {**_media_meta(kind, options, None, None), **record.to_object()}})


def _with_document(content: dict[str, Any]) -> dict[str, Any]:
    """Telegram puts an animation also in ``document`` (so F.document matches GIFs too)."""
    animation = content.get("animation")
    if animation is not None:
        content["document"] = {
            key: animation[key]
            for key in ("file_id", "file_unique_id", "file_size", "file_name", "mime_type")
            if key in animation
        }
    return content


def _editable(state: EmulatorState, p: Params) -> tuple[ChatState, BotMessage]:
    """The bot message an edit method targets, with Telegram's errors."""
    if p.get("inline_message_id") is not None:
        raise bad_request("inline message editing is not supported by the emulator")
    chat = state.resolve_chat(p.get("chat_id"))
    message_id = p.get_int("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    message = chat.bot_index.get(message_id)
    if message is None or message.deleted:
        if message_id in chat.messages:
            raise bad_request("message can't be edited")
        raise bad_request("message to edit not found")
    return chat, message


def _finish_edit(
    state: EmulatorState,
    chat: ChatState,
    message: BotMessage,
    raw: dict[str, Any],
    markup: dict[str, Any] | None,
    *,
    html: str | None = None,
    parse_mode: str | None = None,
    content_changed: bool = True,
) -> dict[str, Any]:
    """Commit an edit: a new raw dict (old ones may sit in queued updates), counters, wake-ups."""
    if markup is not None:
        raw["reply_markup"] = markup
    raw["edit_date"] = state.now()
    if content_changed:
        message.history.append(message.text)
        message.text = raw.get("text", raw.get("caption"))
        message.entities = raw.get("entities", raw.get("caption_entities", []))
        message.html = html
        message.parse_mode = parse_mode
    message.reply_markup = markup
    message.raw = raw
    message.edits += 1
    message.kind = message_kind(raw)
    EmulatorState.fill_media_fields(message)
    chat.messages[message.message_id] = raw
    chat.notify()
    return raw


def _without(raw: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in keys}


# ---------------------------------------------------------------------- bot & updates


@method("getMe")
async def get_me(state: EmulatorState, p: Params) -> Any:
    return {
        **state.bot_user,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@method("logOut", "close")
async def log_out(state: EmulatorState, p: Params) -> Any:
    return True


@method("getUpdates")
async def get_updates(state: EmulatorState, p: Params) -> Any:
    if state.webhook_url:
        raise conflict(
            "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
        )
    state.terminate_poller()
    offset = p.get_int("offset", default=0) or 0
    limit = min(max(p.get_int("limit", default=100) or 100, 1), 100)
    timeout = max(p.get_int("timeout", default=0) or 0, 0)
    state.set_allowed_updates(p.get_json("allowed_updates"))
    state.confirm(offset)
    await state.wait_for_updates(timeout)
    return state.take_updates(limit)


@method("setWebhook")
async def set_webhook(state: EmulatorState, p: Params) -> Any:
    url = p.get_str("url") or ""
    if url and not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.get_str("secret_token") or ""
    if len(secret) > 256 or not re.fullmatch(r"[A-Za-z0-9_-]*", secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = p.get_int("max_connections", default=40) or 40
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    state.webhook_url = url
    state.set_allowed_updates(p.get_json("allowed_updates"))
    if p.get_bool("drop_pending_updates"):
        state.drop_pending_updates()
    # A waiting getUpdates ends: it may not be used while a webhook is set.
    state.terminate_poller()
    if state.webhook is not None:
        state.webhook.configure(url, secret, max_connections)
    return True


@method("deleteWebhook")
async def delete_webhook(state: EmulatorState, p: Params) -> Any:
    state.webhook_url = ""
    if state.webhook is not None:
        state.webhook.configure("", "", 40)
    if p.get_bool("drop_pending_updates"):
        state.drop_pending_updates()
    return True


@method("getWebhookInfo")
async def get_webhook_info(state: EmulatorState, p: Params) -> Any:
    info = {"url": state.webhook_url, "has_custom_certificate": False, "pending_update_count": len(state.updates)}
    if state.webhook is not None and state.webhook_url:
        info.update(state.webhook.info())
        info["allowed_updates"] = sorted(state.allowed_updates)
    return info


# ---------------------------------------------------------------------- sending


@method("sendMessage", sending=True)
async def send_message(state: EmulatorState, p: Params) -> Any:
    chat = _target(state, p)
    markup = validate_markup(p.get_json("reply_markup"))
    reply_to = _reply_target(chat, p)
    text = p.get_str("text")
    if not text:
        raise bad_request("message text is empty")
    parse_mode = p.get_str("parse_mode")
    parsed = format_text(state, text, parse_mode, p.get_json("entities"), caption=False)
    content: dict[str, Any] = {"text": parsed.text}
    if parsed.entities:
        content["entities"] = parsed.entities
    message = state.add_bot_message(
        chat, content, html=text, parse_mode=parse_mode, reply_markup=markup, reply_to=reply_to, extra=_extra(p)
    )
    return message.raw


def _media_sender(kind: str, has_caption: bool = True) -> Handler:
    """Build the implementation of sendPhoto/sendVideo/... for one media kind."""

    async def send_media(state: EmulatorState, p: Params) -> Any:
        chat = _target(state, p)
        markup = validate_markup(p.get_json("reply_markup"))
        reply_to = _reply_target(chat, p)
        value = p.file_or_id(kind)
        if value is None:
            raise bad_request(f"there is no {kind} in the request")
        caption = p.get_str("caption") if has_caption else None
        parse_mode = p.get_str("parse_mode")
        caption_fields = _caption_fields(state, caption, parse_mode, p.get_json("caption_entities"))
        content = media_content(state, kind, value, p.data)
        content.update(caption_fields)
        extra = _extra(p)
        if p.get_bool("has_spoiler"):
            extra["has_media_spoiler"] = True
        message = state.add_bot_message(
            chat, content, html=caption, parse_mode=parse_mode, reply_markup=markup, reply_to=reply_to, extra=extra
        )
        return message.raw

    send_media.__name__ = f"send_{kind}"
    return send_media


for _name, _kind, _caption in (
    ("sendPhoto", "photo", True),
    ("sendVideo", "video", True),
    ("sendDocument", "document", True),
    ("sendAudio", "audio", True),
    ("sendVoice", "voice", True),
    ("sendAnimation", "animation", True),
    ("sendSticker", "sticker", False),
    ("sendVideoNote", "video_note", False),
):
    method(_name, sending=True)(_media_sender(_kind, _caption))


@method("sendMediaGroup", sending=True)
async def send_media_group(state: EmulatorState, p: Params) -> Any:
    chat = _target(state, p)
    reply_to = _reply_target(chat, p)
    media = p.get_json("media", error="can't parse media JSON object")
    if not isinstance(media, list) or not all(isinstance(item, dict) for item in media):
        raise bad_request("can't parse media JSON object")
    if not 2 <= len(media) <= 10:
        raise bad_request("wrong number of messages in the media group: 2-10 items required")
    kinds = [item.get("type") for item in media]
    for kind in kinds:
        if kind not in ("photo", "video", "document", "audio"):
            raise bad_request(f'unsupported media type "{kind}" in the media group')
    for single in ("document", "audio"):
        if single in kinds and any(kind != single for kind in kinds):
            raise bad_request(f"{single} can't be mixed with other media types")

    # Validate every item before registering anything, then build the album.
    prepared: list[tuple[str, str | UploadedFile, dict[str, Any], dict[str, Any]]] = []
    for item in media:
        reference = item.get("media")
        if isinstance(reference, str) and reference.startswith("attach://"):
            value: str | UploadedFile = p.attachment(reference)
        elif isinstance(reference, str) and reference:
            value = reference
        else:
            raise bad_request("media is empty")
        caption_fields = _caption_fields(
            state, item.get("caption"), item.get("parse_mode"), item.get("caption_entities")
        )
        prepared.append((item["type"], value, item, caption_fields))
    contents = [media_content(state, kind, value, item) | fields for kind, value, item, fields in prepared]

    group_id = state.next_media_group_id()
    extra = _extra(p)
    results = []
    for content, item in zip(contents, media, strict=True):
        message = state.add_bot_message(
            chat,
            {**content, "media_group_id": group_id},
            html=item.get("caption"),
            parse_mode=item.get("parse_mode"),
            reply_to=reply_to,
            extra=extra,
        )
        results.append(message.raw)
    return results


def _coordinates(p: Params) -> dict[str, Any]:
    latitude = p.get_float("latitude", required=True)
    longitude = p.get_float("longitude", required=True)
    assert latitude is not None and longitude is not None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise bad_request("wrong location specified")
    location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    for key in ("horizontal_accuracy", "live_period", "heading", "proximity_alert_radius"):
        if p.get(key) is not None:
            location[key] = p.get_float(key)
    return location


@method("sendLocation", sending=True)
async def send_location(state: EmulatorState, p: Params) -> Any:
    chat = _target(state, p)
    markup = validate_markup(p.get_json("reply_markup"))
    reply_to = _reply_target(chat, p)
    content = {"location": _coordinates(p)}
    return state.add_bot_message(chat, content, reply_markup=markup, reply_to=reply_to, extra=_extra(p)).raw


@method("sendVenue", sending=True)
async def send_venue(state: EmulatorState, p: Params) -> Any:
    chat = _target(state, p)
    markup = validate_markup(p.get_json("reply_markup"))
    reply_to = _reply_target(chat, p)
    location = _coordinates(p)
    venue = {
        "location": location,
        "title": p.get_str("title", required=True),
        "address": p.get_str("address", required=True),
    }
    content = {"venue": venue, "location": location}
    return state.add_bot_message(chat, content, reply_markup=markup, reply_to=reply_to, extra=_extra(p)).raw


@method("sendContact", sending=True)
async def send_contact(state: EmulatorState, p: Params) -> Any:
    chat = _target(state, p)
    markup = validate_markup(p.get_json("reply_markup"))
    reply_to = _reply_target(chat, p)
    contact: dict[str, Any] = {
        "phone_number": p.get_str("phone_number", required=True),
        "first_name": p.get_str("first_name", required=True),
    }
    for key in ("last_name", "vcard"):
        if p.get(key) is not None:
            contact[key] = p.get_str(key)
    return state.add_bot_message(
        chat, {"contact": contact}, reply_markup=markup, reply_to=reply_to, extra=_extra(p)
    ).raw


@method("sendDice", sending=True)
async def send_dice(state: EmulatorState, p: Params) -> Any:
    chat = _target(state, p)
    markup = validate_markup(p.get_json("reply_markup"))
    reply_to = _reply_target(chat, p)
    emoji = p.get_str("emoji", default="🎲") or "🎲"
    top = {"🎯": 6, "🎲": 6, "🎳": 6, "🏀": 5, "⚽": 5, "🎰": 64}.get(emoji)
    if top is None:
        raise bad_request("wrong emoji specified")
    dice = {"emoji": emoji, "value": random.randint(1, top)}
    return state.add_bot_message(chat, {"dice": dice}, reply_markup=markup, reply_to=reply_to, extra=_extra(p)).raw


@method("sendChatAction")
async def send_chat_action(state: EmulatorState, p: Params) -> Any:
    chat = _target(state, p)
    action = p.get_str("action")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.chat_actions.append(action)
    return True


def _source_message(state: EmulatorState, p: Params, verb: str) -> dict[str, Any]:
    source_chat = state.resolve_chat(p.get("from_chat_id"))
    message_id = p.get_int("message_id")
    source = source_chat.messages.get(message_id) if message_id is not None else None
    if source is None:
        raise bad_request(f"message to {verb} not found")
    return source


@method("copyMessage", sending=True)
async def copy_message(state: EmulatorState, p: Params) -> Any:
    source = _source_message(state, p, "copy")
    chat = _target(state, p)
    markup = validate_markup(p.get_json("reply_markup"))
    reply_to = _reply_target(chat, p)
    content = {k: v for k, v in source.items() if k in COPYABLE_KEYS}
    html = content.get("text", content.get("caption"))
    parse_mode = None
    if p.get("caption") is not None and "text" not in content:
        content.pop("caption", None)
        content.pop("caption_entities", None)
        html = p.get_str("caption")
        parse_mode = p.get_str("parse_mode")
        content.update(_caption_fields(state, html, parse_mode, p.get_json("caption_entities")))
    message = state.add_bot_message(
        chat, content, html=html, parse_mode=parse_mode, reply_markup=markup, reply_to=reply_to, extra=_extra(p)
    )
    return {"message_id": message.message_id}


@method("forwardMessage", sending=True)
async def forward_message(state: EmulatorState, p: Params) -> Any:
    source = _source_message(state, p, "forward")
    chat = _target(state, p)
    content = {k: v for k, v in source.items() if k in COPYABLE_KEYS}
    origin = source.get("forward_origin") or {"type": "user", "sender_user": source["from"], "date": source["date"]}
    message = state.add_bot_message(
        chat,
        content,
        html=content.get("text", content.get("caption")),
        extra={"forward_origin": origin, **_extra(p)},
    )
    return message.raw


# ---------------------------------------------------------------------- editing & deleting


@method("editMessageText")
async def edit_message_text(state: EmulatorState, p: Params) -> Any:
    chat, message = _editable(state, p)
    if message.kind != "text":
        raise bad_request("there is no text in the message to edit")
    text = p.get_str("text")
    if not text:
        raise bad_request("message text is empty")
    parse_mode = p.get_str("parse_mode")
    parsed = format_text(state, text, parse_mode, p.get_json("entities"), caption=False)
    markup = validate_markup(p.get_json("reply_markup"), inline_only=True)
    old = message.raw
    same_content = parsed.text == old.get("text") and parsed.entities == old.get("entities", [])
    if same_content and markup == old.get("reply_markup"):
        raise bad_request(NOT_MODIFIED)
    raw = _without(old, "text", "entities", "reply_markup", "edit_date")
    raw["text"] = parsed.text
    if parsed.entities:
        raw["entities"] = parsed.entities
    if same_content:
        # Markup-only change: keep what the bot originally sent as html.
        return _finish_edit(state, chat, message, raw, markup, content_changed=False)
    return _finish_edit(state, chat, message, raw, markup, html=text, parse_mode=parse_mode)


@method("editMessageCaption")
async def edit_message_caption(state: EmulatorState, p: Params) -> Any:
    chat, message = _editable(state, p)
    if message.kind not in MEDIA_KINDS:
        raise bad_request("there is no caption in the message to edit")
    caption = p.get_str("caption") or ""
    parse_mode = p.get_str("parse_mode")
    fields = _caption_fields(state, caption, parse_mode, p.get_json("caption_entities"))
    markup = validate_markup(p.get_json("reply_markup"), inline_only=True)
    old = message.raw
    same_content = fields.get("caption") == old.get("caption") and fields.get("caption_entities") == old.get(
        "caption_entities"
    )
    if same_content and markup == old.get("reply_markup"):
        raise bad_request(NOT_MODIFIED)
    raw = _without(old, "caption", "caption_entities", "reply_markup", "edit_date") | fields
    if same_content:
        return _finish_edit(state, chat, message, raw, markup, content_changed=False)
    return _finish_edit(state, chat, message, raw, markup, html=caption or None, parse_mode=parse_mode)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(state: EmulatorState, p: Params) -> Any:
    chat, message = _editable(state, p)
    markup = validate_markup(p.get_json("reply_markup"), inline_only=True)
    if markup == message.raw.get("reply_markup"):
        raise bad_request(NOT_MODIFIED)
    raw = _without(message.raw, "reply_markup", "edit_date")
    return _finish_edit(state, chat, message, raw, markup, content_changed=False)


@method("editMessageMedia")
async def edit_message_media(state: EmulatorState, p: Params) -> Any:
    chat, message = _editable(state, p)
    if message.kind not in MEDIA_KINDS:
        raise bad_request("there is no media in the message to edit")
    media = p.get_json("media", error="can't parse InputMedia JSON object")
    if not isinstance(media, dict) or media.get("type") not in ("photo", "video", "document", "audio", "animation"):
        raise bad_request("can't parse InputMedia JSON object")
    reference = media.get("media")
    if isinstance(reference, str) and reference.startswith("attach://"):
        value: str | UploadedFile = p.attachment(reference)
    elif isinstance(reference, str) and reference:
        value = reference
    else:
        raise bad_request("media is empty")
    fields = _caption_fields(state, media.get("caption"), media.get("parse_mode"), media.get("caption_entities"))
    markup = validate_markup(p.get_json("reply_markup"), inline_only=True)
    old = message.raw
    if isinstance(value, str) and value == message.file_id and fields.get("caption") == old.get("caption"):
        if markup == old.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
    content = media_content(state, media["type"], value, media)
    raw = _without(old, *MEDIA_KINDS, "caption", "caption_entities", "reply_markup", "edit_date") | content | fields
    return _finish_edit(state, chat, message, raw, markup, html=media.get("caption"), parse_mode=media.get("parse_mode"))


def _delete(chat: ChatState, message_id: int) -> bool:
    if chat.messages.pop(message_id, None) is None:
        return False
    message = chat.bot_index.get(message_id)
    if message is not None:
        message.deleted = True
    chat.notify()
    return True


@method("deleteMessage")
async def delete_message(state: EmulatorState, p: Params) -> Any:
    chat = state.resolve_chat(p.get("chat_id"))
    message_id = p.get_int("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    if not _delete(chat, message_id):
        raise bad_request("message to delete not found")
    return True


@method("deleteMessages")
async def delete_messages(state: EmulatorState, p: Params) -> Any:
    chat = state.resolve_chat(p.get("chat_id"))
    ids = p.get_json("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids is empty" if not ids else "too many message identifiers specified")
    # Telegram skips the ones it cannot find.
    for message_id in ids:
        if isinstance(message_id, int):
            _delete(chat, message_id)
    return True


@method("pinChatMessage")
async def pin_chat_message(state: EmulatorState, p: Params) -> Any:
    chat = state.resolve_chat(p.get("chat_id"))
    message_id = p.get_int("message_id")
    if message_id not in chat.messages:
        raise bad_request("message to pin not found")
    chat.pinned_message_id = message_id
    return True


@method("unpinChatMessage", "unpinAllChatMessages")
async def unpin_chat_message(state: EmulatorState, p: Params) -> Any:
    chat = state.resolve_chat(p.get("chat_id"))
    chat.pinned_message_id = None
    return True


# ---------------------------------------------------------------------- callbacks & files


@method("answerCallbackQuery")
async def answer_callback_query(state: EmulatorState, p: Params) -> Any:
    query_id = p.get_str("callback_query_id")
    record = state.callback_queries.get(query_id or "")
    if record is None or record.answered:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    record.answered = True
    answer = {
        "callback_query_id": record.id,
        "text": p.get_str("text"),
        "show_alert": p.get_bool("show_alert"),
        "url": p.get_str("url"),
        "cache_time": p.get_int("cache_time"),
    }
    chat = state.chats.get(record.chat_id)
    if chat is not None:
        chat.callback_answers.append(answer)
        chat.notify()
    return True


@method("getFile")
async def get_file(state: EmulatorState, p: Params) -> Any:
    file_id = p.get_str("file_id")
    record = state.files.get(file_id or "")
    if record is None:
        raise bad_request("invalid file_id")
    info = record.to_object()
    if info["file_size"] > MAX_DOWNLOAD_SIZE:
        raise bad_request("file is too big")
    return {
        "file_id": file_id,
        "file_unique_id": record.file_unique_id,
        "file_size": info["file_size"],
        "file_path": record.file_path,
    }


# ---------------------------------------------------------------------- chats


@method("getChat")
async def get_chat(state: EmulatorState, p: Params) -> Any:
    chat = state.resolve_chat(p.get("chat_id"))
    info: dict[str, Any] = {
        **chat.chat,
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }
    if chat.pinned_message_id is not None and chat.pinned_message_id in chat.messages:
        info["pinned_message"] = chat.messages[chat.pinned_message_id]
    return info


@method("getChatMember")
async def get_chat_member(state: EmulatorState, p: Params) -> Any:
    chat = state.resolve_chat(p.get("chat_id"))
    user_id = p.get_int("user_id", required=True)
    if user_id == chat.id and chat.id in state.user_objects:
        status = "kicked" if chat.blocked else "member"
        member: dict[str, Any] = {"status": status, "user": state.user_objects[chat.id]}
        if status == "kicked":
            member["until_date"] = 0
        return member
    if user_id == state.bot_id:
        return {"status": "member", "user": state.bot_user}
    raise bad_request("user not found")


# ---------------------------------------------------------------------- bot settings


@method("setMyCommands")
async def set_my_commands(state: EmulatorState, p: Params) -> Any:
    commands = p.get_json("commands", error="can't parse commands JSON object")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    cleaned = []
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("can't parse BotCommand JSON object")
        name = command.get("command")
        description = command.get("description")
        if not isinstance(name, str) or not _COMMAND_RE.match(name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        cleaned.append({"command": name, "description": description})
    state.commands[state.commands_key(p.get_json("scope"), p.get_str("language_code"))] = cleaned
    return True


@method("getMyCommands")
async def get_my_commands(state: EmulatorState, p: Params) -> Any:
    return state.commands.get(state.commands_key(p.get_json("scope"), p.get_str("language_code")), [])


@method("deleteMyCommands")
async def delete_my_commands(state: EmulatorState, p: Params) -> Any:
    state.commands.pop(state.commands_key(p.get_json("scope"), p.get_str("language_code")), None)
    return True


def _text_setting(field: str, limit: int) -> tuple[Handler, Handler]:
    """setMy*/getMy* pair for the bot name, description and short description."""
    result_key = "name" if field == "name" else field

    async def setter(state: EmulatorState, p: Params) -> Any:
        value = p.get_str(result_key) or ""
        if len(value) > limit:
            raise bad_request(f"bot {field.replace('_', ' ')} is too long")
        state.texts[(field, p.get_str("language_code") or "")] = value
        return True

    async def getter(state: EmulatorState, p: Params) -> Any:
        language = p.get_str("language_code") or ""
        value = state.texts.get((field, language), state.texts.get((field, ""), ""))
        if field == "name" and not value:
            value = state.bot_user["first_name"]
        return {result_key: value}

    return setter, getter


for _field, _suffix, _limit in (
    ("description", "Description", 512),
    ("short_description", "ShortDescription", 120),
    ("name", "Name", 64),
):
    _setter, _getter = _text_setting(_field, _limit)
    method(f"setMy{_suffix}")(_setter)
    method(f"getMy{_suffix}")(_getter)


@method("setChatMenuButton")
async def set_chat_menu_button(state: EmulatorState, p: Params) -> Any:
    button = p.get_json("menu_button")
    state.menu_buttons[p.get_int("chat_id")] = button if isinstance(button, dict) else {"type": "default"}
    return True


@method("getChatMenuButton")
async def get_chat_menu_button(state: EmulatorState, p: Params) -> Any:
    chat_id = p.get_int("chat_id")
    return state.menu_buttons.get(chat_id, state.menu_buttons.get(None, {"type": "default"}))


__all__ = ["METHODS", "SENDING_METHODS", "ApiError", "Handler", "lookup", "method"]
