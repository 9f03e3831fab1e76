"""Plain data records kept by the emulator and handed to tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, eq=False)
class BotMessage:
    """A message the bot sent, as the user currently sees it.

    The record is updated in place by edits and deletions, so a test holding
    it always sees the current state.  ``raw`` is the Bot API ``Message``
    object the emulator returns for it (after edits).
    """

    message_id: int
    chat_id: int
    kind: str
    """Content type: ``text``, ``photo``, ``video``, ``document``, ``audio``, ``voice``,
    ``animation``, ``sticker``, ``video_note``, ``location``, ``venue``, ``contact``, ``dice``.
    Album items keep their content type and have ``media_group_id`` set."""
    date: int
    text: str | None = None
    """Plain text the user sees: the message text or the media caption."""
    html: str | None = None
    """Text or caption exactly as the bot sent it (raw HTML when ``parse_mode`` is HTML)."""
    parse_mode: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    """The markup as sent (inline keyboard, reply keyboard, remove or force reply)."""
    deleted: bool = False
    edits: int = 0
    history: list[str | None] = field(default_factory=list)
    """Previous values of ``text`` (one per edit that changed the content)."""
    file_id: str | None = None
    """file_id of the media (largest size for photos)."""
    latitude: float | None = None
    longitude: float | None = None
    media_group_id: str | None = None
    reply_to_message_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def inline_keyboard(self) -> list[list[tuple[str, str | None]]]:
        """Rows of ``(text, callback_data or url)`` of the inline keyboard, empty if none."""
        rows = (self.reply_markup or {}).get("inline_keyboard")
        if not rows:
            return []
        return [[(button.get("text", ""), _button_value(button)) for button in row] for row in rows]

    @property
    def buttons(self) -> list[str]:
        """Texts of all inline buttons, row by row."""
        return [text for row in self.inline_keyboard for text, _ in row]

    def button_data(self, text: str) -> str | None:
        """callback_data (or url) of the inline button with exactly this text."""
        for row in self.inline_keyboard:
            for button_text, value in row:
                if button_text == text:
                    return value
        raise AssertionError(f"message {self.message_id} has no inline button {text!r}; buttons: {self.buttons}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used by the HTTP user API)."""
        return {
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "kind": self.kind,
            "date": self.date,
            "text": self.text,
            "html": self.html,
            "parse_mode": self.parse_mode,
            "entities": self.entities,
            "reply_markup": self.reply_markup,
            "inline_keyboard": [[list(button) for button in row] for row in self.inline_keyboard],
            "buttons": self.buttons,
            "deleted": self.deleted,
            "edits": self.edits,
            "history": self.history,
            "file_id": self.file_id,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "media_group_id": self.media_group_id,
            "reply_to_message_id": self.reply_to_message_id,
        }

    def describe(self) -> str:
        """One-line human summary for assertion messages."""
        flags = []
        if self.deleted:
            flags.append("deleted")
        if self.edits:
            flags.append(f"edited x{self.edits}")
        head = f"#{self.message_id} {self.kind}" + (f" ({', '.join(flags)})" if flags else "")
        text = (self.text or "").replace("\n", "\\n")
        if len(text) > 120:
            text = text[:117] + "..."
        buttons = f" buttons={self.buttons}" if self.buttons else ""
        return f"{head}: {text!r}{buttons}"


def _button_value(button: dict[str, Any]) -> str | None:
    for key in ("callback_data", "url"):
        if key in button:
            return button[key]
    web_app = button.get("web_app")
    if isinstance(web_app, dict):
        return web_app.get("url")
    return None


@dataclass(slots=True)
class ApiCall:
    """One Bot API request as received, with the answer it got."""

    method: str
    params: dict[str, Any]
    ok: bool = False
    status: int = 0
    """HTTP status answered; 0 when the connection was dropped by a fault."""
    result: Any = None
    error_code: int | None = None
    description: str | None = None
    fault: str | None = None
    """Kind of the injected fault that answered this call, if any."""
    time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used by the HTTP user API)."""
        return {
            "method": self.method,
            "params": self.params,
            "ok": self.ok,
            "status": self.status,
            "result": self.result,
            "error_code": self.error_code,
            "description": self.description,
            "fault": self.fault,
            "time": self.time,
        }


@dataclass(slots=True)
class FileRecord:
    """A file known to the emulator (uploaded by the bot or generated for a user)."""

    file_id: str
    file_unique_id: str
    kind: str
    file_path: str
    content: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    """Kind-specific fields of the Bot API object (width, duration, file_name, ...)."""
    photo_sizes: list[dict[str, Any]] | None = None
    """For photos: every PhotoSize of the same picture (shared between the sizes)."""

    def to_object(self) -> dict[str, Any]:
        """The Bot API media object (PhotoSize, Video, Document, ...)."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.content),
            **self.meta,
        }


@dataclass(slots=True)
class CallbackQueryRecord:
    """A callback query sent to the bot, to validate answerCallbackQuery."""

    id: str
    chat_id: int
    message_id: int
    data: str | None
    answered: bool = False


@dataclass(slots=True)
class ChatState:
    """Everything the emulator knows about one chat (private chats only for now)."""

    id: int
    chat: dict[str, Any]
    """The Bot API ``Chat`` object."""
    started: bool = False
    """True once the user wrote to the bot; before that the bot gets ``chat not found``."""
    blocked: bool = False
    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Every message of the chat by id (user and bot ones), as Bot API ``Message`` dicts."""
    bot_messages: list[BotMessage] = field(default_factory=list)
    bot_index: dict[int, BotMessage] = field(default_factory=dict)
    pinned_message_id: int | None = None
    reply_keyboard: dict[str, Any] | None = None
    """The active ``ReplyKeyboardMarkup`` or None when removed/never sent."""
    callback_answers: list[dict[str, Any]] = field(default_factory=list)
    chat_actions: list[str] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    """Futures woken whenever the bot sends a message to this chat."""
    listeners: list[Callable[[int], None]] = field(default_factory=list)
    """Change listeners called with the chat id (the list is the emulator-wide one, shared by every chat:
    see :meth:`EmulatorState.add_listener`)."""

    def allocate_message_id(self) -> int:
        """Next message id; user and bot messages share the counter like in Telegram."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def notify(self) -> None:
        """Wake everybody waiting for a new bot message here, then tell the change listeners."""
        if self.waiters:
            waiters, self.waiters = self.waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self.changed()

    def changed(self) -> None:
        """Call the change listeners with this chat's id (a bot message, an edit, a deletion, a callback answer,
        or a message the user posted)."""
        for listener in list(self.listeners):
            listener(self.id)
