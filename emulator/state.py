"""In-memory state of the emulated Telegram: chats, messages, updates, files.

Everything runs in one asyncio loop, so plain dicts and deques are enough; no
locks.  Lookups are indexed (chat id, message id, file id, update queue
order) so thousands of updates per second stay cheap.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any

from .errors import bad_request, conflict
from .models import ApiCall, BotMessage, CallbackQueryRecord, ChatState, FileRecord

if TYPE_CHECKING:
    from .user import EmulatedUser
    from .webhook import WebhookDelivery

# What Telegram delivers when ``allowed_updates`` was never specified (or given as []).
ALL_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
DEFAULT_ALLOWED_UPDATES = ALL_UPDATE_TYPES - {"chat_member", "message_reaction", "message_reaction_count"}

# Content keys of a Message, in the order used to tell its kind (aiogram's order:
# an animation message also carries a ``document`` field, as in Telegram).
CONTENT_KINDS = (
    "text",
    "audio",
    "animation",
    "document",
    "photo",
    "sticker",
    "video",
    "video_note",
    "voice",
    "contact",
    "dice",
    "venue",
    "location",
)
COPYABLE_KEYS = frozenset(CONTENT_KINDS) | {
    "entities",
    "caption",
    "caption_entities",
    "show_caption_above_media",
    "has_media_spoiler",
}

_PHOTO_SIZES = ((90, 68), (1280, 960))
_KIND_EXTENSIONS = {
    "photo": ".jpg",
    "video": ".mp4",
    "animation": ".mp4",
    "video_note": ".mp4",
    "voice": ".oga",
    "audio": ".mp3",
    "sticker": ".webp",
    "document": ".bin",
}
_KIND_FOLDERS = {
    "photo": "photos",
    "video": "videos",
    "animation": "animations",
    "video_note": "video_notes",
    "voice": "voice",
    "audio": "music",
    "sticker": "stickers",
    "document": "documents",
}


def message_kind(message: dict[str, Any]) -> str:
    """The content type of a Bot API Message dict."""
    for key in CONTENT_KINDS:
        if key in message:
            return key
    return "unknown"


def strip_reply(message: dict[str, Any]) -> dict[str, Any]:
    """A message as embedded in ``reply_to_message`` (Telegram does not nest replies further)."""
    if "reply_to_message" not in message:
        return message
    return {k: v for k, v in message.items() if k != "reply_to_message"}


class EmulatorState:
    """All data of one emulated bot and its users."""

    def __init__(
        self,
        *,
        bot_user: dict[str, Any],
        strict_ampersand: bool = True,
        strict_file_ids: bool = True,
        request_log_limit: int | None = 100_000,
        first_update_id: int = 1,
        clock: Callable[[], float] | None = None,
        file_id_tag: str = "",
    ) -> None:
        self.bot_user = bot_user
        self.clock: Callable[[], float] = clock or time.time
        """Unix time of the ``date`` fields (the sandbox's travelled clock; the real one by default)."""
        self.file_id_tag = file_id_tag
        """Part of every file id issued, so that ids of an earlier run (stored by the bot) are never issued again."""
        self.bot_id: int = bot_user["id"]
        self.strict_ampersand = strict_ampersand
        self.strict_file_ids = strict_file_ids
        self.request_log_limit = request_log_limit

        self.chats: dict[int, ChatState] = {}
        self.listeners: list[Callable[[int], None]] = []
        """Change listeners (see :meth:`add_listener`); every chat shares this very list."""
        self.users: dict[int, EmulatedUser] = {}
        self.user_objects: dict[int, dict[str, Any]] = {}
        self.bot_messages: list[BotMessage] = []
        self.requests: list[ApiCall] = []

        self.updates: deque[dict[str, Any]] = deque()
        self.next_update_id = first_update_id
        self.acked_update_id = first_update_id - 1
        """Every update with an id up to this one was confirmed (or dropped)."""
        self.allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self.last_updates: dict[int, dict[str, Any]] = {}
        """The newest update caused by each user (for redelivery tests)."""
        self._poller: asyncio.Future[None] | None = None
        self._confirm_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.closing = False

        self.files: dict[str, FileRecord] = {}
        self.files_by_path: dict[str, FileRecord] = {}
        self._file_counter = 0
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self._callback_counter = 0
        self._media_group_counter = 0

        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.texts: dict[tuple[str, str], str] = {}
        """Bot name/description/short_description by (field, language_code)."""
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.webhook_url = ""
        self.webhook: WebhookDelivery | None = None
        """Delivery to the webhook (emulator/webhook.py), set by the server."""

    def now(self) -> int:
        """Unix time as Telegram puts it in ``date`` fields, on this emulator's clock."""
        return int(self.clock())

    # ------------------------------------------------------------------ updates

    def enqueue_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Queue an update for getUpdates; None when ``allowed_updates`` filters it out.

        Telegram filters at creation time, so a filtered update never gets an id.
        """
        if kind not in self.allowed_updates:
            return None
        update = {"update_id": self.next_update_id, kind: payload}
        self.next_update_id += 1
        self.updates.append(update)
        sender = payload.get("from")
        if isinstance(sender, dict):
            self.last_updates[sender["id"]] = update
        poller = self._poller
        if poller is not None and not poller.done():
            poller.set_result(None)
        if self.webhook_url and self.webhook is not None:
            self.webhook.wake()
        return update

    def delivered(self, update_id: int) -> None:
        """A webhook answered 2xx to this update: it leaves the queue. Updates are confirmed out of order (chats
        go side by side), so the confirmed mark is the one before the oldest update still queued."""
        for index, update in enumerate(self.updates):
            if update["update_id"] == update_id:
                del self.updates[index]
                break
        self._ack(self.updates[0]["update_id"] - 1 if self.updates else self.next_update_id - 1)

    def set_allowed_updates(self, value: Any) -> None:
        """Remember ``allowed_updates`` like Telegram does (sticky until changed; [] resets)."""
        if isinstance(value, list):
            self.allowed_updates = frozenset(value) if value else DEFAULT_ALLOWED_UPDATES

    def confirm(self, offset: int) -> None:
        """Apply a getUpdates ``offset``: forget confirmed updates."""
        if offset > 0:
            updates = self.updates
            while updates and updates[0]["update_id"] < offset:
                updates.popleft()
            self._ack(min(offset - 1, self.next_update_id - 1))
        elif offset < 0:
            # Negative offset: keep only the last -offset updates.
            updates = self.updates
            while len(updates) > -offset:
                self._ack(updates.popleft()["update_id"])

    def drop_pending_updates(self) -> None:
        """deleteWebhook/setWebhook with drop_pending_updates."""
        self.updates.clear()
        self._ack(self.next_update_id - 1)

    def _ack(self, update_id: int) -> None:
        if update_id <= self.acked_update_id:
            return
        self.acked_update_id = update_id
        if self._confirm_waiters:
            still_waiting = []
            for target, waiter in self._confirm_waiters:
                if target <= update_id:
                    if not waiter.done():
                        waiter.set_result(None)
                else:
                    still_waiting.append((target, waiter))
            self._confirm_waiters = still_waiting

    def take_updates(self, limit: int) -> list[dict[str, Any]]:
        """The earliest ``limit`` unconfirmed updates (they stay queued until confirmed)."""
        return list(islice(self.updates, limit))

    def terminate_poller(self) -> None:
        """A new getUpdates cancels a pending one with 409, as Telegram does."""
        poller = self._poller
        if poller is not None and not poller.done():
            poller.set_exception(
                conflict("terminated by other getUpdates request; make sure that only one bot instance is running")
            )
        self._poller = None

    async def wait_for_updates(self, timeout: float) -> None:  # noqa: ASYNC109 - getUpdates' own timeout
        """Long polling: return when an update is queued or ``timeout`` passes."""
        if self.updates or timeout <= 0 or self.closing:
            return
        poller: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._poller = poller
        try:
            await asyncio.wait([poller], timeout=timeout)
            if poller.done() and poller.exception() is not None:
                raise poller.exception()  # type: ignore[misc]
        finally:
            if self._poller is poller:
                self._poller = None
            if not poller.done():
                poller.cancel()

    async def wait_confirmed(self, timeout: float) -> None:  # noqa: ASYNC109 - the public API takes seconds
        """Wait until every update queued so far was confirmed by the bot."""
        target = self.next_update_id - 1
        if self.acked_update_id >= target:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm_waiters.append((target, waiter))
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the bot did not confirm updates up to #{target} within {timeout}s "
                f"(confirmed up to #{self.acked_update_id}, {len(self.updates)} pending); "
                f"is it polling?{self.recent_errors_dump()}"
            ) from None

    def shutdown(self) -> None:
        """Release long polls so the HTTP server can stop at once."""
        self.closing = True
        if self._poller is not None and not self._poller.done():
            self._poller.set_result(None)

    # ------------------------------------------------------------------ change listeners

    def add_listener(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(chat_id)`` whenever anything changes in a chat: a bot message, an edit, a deletion,
        a callback answer, or a message the user posted. It runs synchronously inside the emulator's handler,
        so it must be quick and must not raise (the web chat page queues an event and returns)."""
        self.listeners.append(callback)

    def remove_listener(self, callback: Callable[[int], None]) -> None:
        """Stop calling a listener added with :meth:`add_listener` (absent ones are ignored)."""
        if callback in self.listeners:
            self.listeners.remove(callback)

    # ------------------------------------------------------------------ chats

    def resolve_chat(self, chat_id: Any, *, started: bool = True) -> ChatState:
        """The chat a bot call targets; ``chat not found`` unless the user wrote to the bot."""
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        chat: ChatState | None = None
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            chat = self.chats.get(chat_id)
        elif isinstance(chat_id, str) and chat_id.startswith("@"):
            # Only public groups/channels are addressable by @username; private chats never are.
            chat = None
        else:
            raise bad_request("chat not found")
        if chat is None or (started and not chat.started):
            raise bad_request("chat not found")
        return chat

    def private_chat(self, user: dict[str, Any]) -> ChatState:
        """Get or create the private chat with a user (chat id == user id)."""
        chat_obj = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if user.get(key):
                chat_obj[key] = user[key]
        chat = self.chats.get(user["id"])
        if chat is None:
            chat = ChatState(id=user["id"], chat=chat_obj, listeners=self.listeners)
            self.chats[user["id"]] = chat
        else:
            chat.chat = chat_obj
        return chat

    # ------------------------------------------------------------------ messages

    def add_bot_message(
        self,
        chat: ChatState,
        content: dict[str, Any],
        *,
        html: str | None = None,
        parse_mode: str | None = None,
        reply_markup: dict[str, Any] | None = None,
        reply_to: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> BotMessage:
        """Store a message sent by the bot and wake tests waiting for it."""
        message_id = chat.allocate_message_id()
        date = self.now()
        raw: dict[str, Any] = {"message_id": message_id, "from": self.bot_user, "chat": chat.chat, "date": date}
        if reply_to is not None:
            raw["reply_to_message"] = strip_reply(reply_to)
        raw.update(content)
        if extra:
            raw.update(extra)
        # Only inline keyboards are part of a Message object; reply keyboards live on the client.
        if reply_markup is not None and "inline_keyboard" in reply_markup:
            raw["reply_markup"] = reply_markup
        kind = message_kind(raw)
        message = BotMessage(
            message_id=message_id,
            chat_id=chat.id,
            kind=kind,
            date=date,
            text=content.get("text", content.get("caption")),
            html=html,
            parse_mode=parse_mode,
            entities=content.get("entities", content.get("caption_entities", [])),
            reply_markup=reply_markup,
            media_group_id=raw.get("media_group_id"),
            reply_to_message_id=reply_to["message_id"] if reply_to is not None else None,
            raw=raw,
        )
        self.fill_media_fields(message)
        chat.messages[message_id] = raw
        chat.bot_messages.append(message)
        chat.bot_index[message_id] = message
        self.bot_messages.append(message)
        if reply_markup is not None:
            if "keyboard" in reply_markup:
                chat.reply_keyboard = reply_markup
            elif reply_markup.get("remove_keyboard"):
                chat.reply_keyboard = None
        chat.notify()
        return message

    @staticmethod
    def fill_media_fields(message: BotMessage) -> None:
        """Copy file_id / coordinates from ``raw`` onto the record."""
        raw = message.raw
        kind = message.kind
        if kind == "photo":
            message.file_id = raw["photo"][-1]["file_id"]
        elif kind in _KIND_FOLDERS:
            message.file_id = raw[kind]["file_id"]
        else:
            message.file_id = None
        location = raw.get("location") or (raw.get("venue") or {}).get("location")
        if location:
            message.latitude = location["latitude"]
            message.longitude = location["longitude"]

    def next_media_group_id(self) -> str:
        """A fresh media_group_id (Telegram uses long numeric strings)."""
        self._media_group_counter += 1
        return str(13_000_000_000_000_000 + self._media_group_counter)

    def new_callback_query(self, chat_id: int, message_id: int, data: str | None) -> CallbackQueryRecord:
        """Register a callback query so answerCallbackQuery can be validated."""
        self._callback_counter += 1
        record = CallbackQueryRecord(
            id=str(4_000_000_000_000_000_000 + self._callback_counter),
            chat_id=chat_id,
            message_id=message_id,
            data=data,
        )
        self.callback_queries[record.id] = record
        return record

    # ------------------------------------------------------------------ files

    def register_file(
        self,
        kind: str,
        content: bytes,
        *,
        meta: dict[str, Any] | None = None,
        file_name: str | None = None,
    ) -> FileRecord:
        """Store a non-photo file and return its record (a fresh file_id)."""
        self._file_counter += 1
        number = self._file_counter
        extension = _KIND_EXTENSIONS.get(kind, ".bin")
        if file_name and "." in file_name:
            extension = "." + file_name.rsplit(".", 1)[1]
        record = FileRecord(
            file_id=f"emu{self.file_id_tag}_{kind}_{number:06d}",
            file_unique_id=f"u{self.file_id_tag}_{kind}_{number:06d}",
            kind=kind,
            file_path=f"{_KIND_FOLDERS.get(kind, 'documents')}/file_{number}{extension}",
            content=content,
            meta=dict(meta or {}),
        )
        self.files[record.file_id] = record
        self.files_by_path[record.file_path] = record
        return record

    def register_photo(self, content: bytes) -> list[dict[str, Any]]:
        """Store a photo as two PhotoSize files (thumbnail and full) and return the sizes."""
        sizes: list[dict[str, Any]] = []
        records = []
        for width, height in _PHOTO_SIZES:
            record = self.register_file("photo", content, meta={"width": width, "height": height})
            records.append(record)
            sizes.append(record.to_object())
        for record in records:
            record.photo_sizes = sizes
        return sizes

    def generated_content(self, kind: str, label: str) -> bytes:
        """Placeholder bytes for media created by emulated users."""
        return f"EMULATED {kind.upper()} {label}\n".encode()

    @staticmethod
    def guess_mime(file_name: str | None, default: str = "application/octet-stream") -> str:
        """MIME type from a file name, as Telegram reports for documents."""
        if not file_name:
            return default
        return mimetypes.guess_type(file_name)[0] or default

    # ------------------------------------------------------------------ diagnostics

    def log_call(self, call: ApiCall) -> None:
        """Append to the request log, trimming the oldest entries past the limit."""
        self.requests.append(call)
        limit = self.request_log_limit
        if limit is not None and len(self.requests) > limit:
            # Trim in chunks so the amortised cost per request stays O(1).
            del self.requests[: max(1, limit // 10)]

    def recent_errors_dump(self, chat_id: int | None = None, count: int = 5) -> str:
        """Recent failed bot API calls (optionally for one chat), for assertion messages."""
        failed = []
        for call in reversed(self.requests):
            if not call.ok and call.method != "getUpdates":
                if chat_id is None or call.params.get("chat_id") == chat_id:
                    failed.append(call)
                    if len(failed) >= count:
                        break
        if not failed:
            return ""
        lines = [
            f"  {c.method} -> {c.error_code or 'dropped'} {c.description or c.fault or ''}" for c in reversed(failed)
        ]
        return "\nrecent failed bot API calls:\n" + "\n".join(lines)

    def commands_key(self, scope: Any, language_code: str | None) -> tuple[str, str]:
        """Storage key of a command list (scope + language), as Telegram separates them."""
        if not isinstance(scope, dict):
            scope = {"type": "default"}
        return json.dumps(scope, sort_keys=True), language_code or ""

    def menu(self, chat_id: int | None, language_code: str | None) -> list[dict[str, Any]]:
        """The command menu a client shows in a private chat, as Telegram picks it: the narrowest scope the bot set
        (the chat, all private chats, the default), each in the app's language first, then for any language."""
        scopes: list[dict[str, Any]] = []
        if chat_id is not None:
            scopes.append({"type": "chat", "chat_id": chat_id})
        scopes += [{"type": "all_private_chats"}, {"type": "default"}]
        for scope in scopes:
            for language in (language_code, None):
                found = self.commands.get(self.commands_key(scope, language))
                if found:
                    return [{"command": c["command"], "description": c["description"]} for c in found]
        return []
