"""The user side: an emulated Telegram user chatting with the bot in private.

Every ``send_*``/``click``/``press_*`` call creates the update a real client
would cause and queues it for the bot's getUpdates; what the bot sends back
is collected as :class:`BotMessage` records on the user's chat.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from .html_parser import utf16_len
from .markup import find_reply_button, reply_keyboard_rows
from .models import BotMessage, ChatState
from .state import EmulatorState, strip_reply

_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w@])")
_SELF: Any = object()
ALBUM_KINDS = frozenset({"photo", "video", "document", "audio"})


class EmulatedUser:
    """A Telegram user whose private chat with the bot has ``chat_id == user id``.

    Get one with :meth:`BotAPIEmulator.user`; the same object is returned for
    the same id.
    """

    def __init__(self, state: EmulatorState, user: dict[str, Any]) -> None:
        self._state = state
        self._user = user
        self.chat: ChatState = state.private_chat(user)
        self._cursor = 0
        self.phone_number = f"+7900{user['id'] % 10**7:07d}"
        """Sent by :meth:`press_reply_button` on a ``request_contact`` button."""
        state.user_objects[user["id"]] = user

    def __repr__(self) -> str:
        return f"<EmulatedUser id={self.id} first_name={self.first_name!r} messages={len(self.messages)}>"

    # ------------------------------------------------------------------ profile

    @property
    def id(self) -> int:
        """User id (== private chat id)."""
        return int(self._user["id"])

    @property
    def chat_id(self) -> int:
        """Private chat id (== user id)."""
        return self.chat.id

    @property
    def first_name(self) -> str:
        """First name shown to the bot."""
        return str(self._user["first_name"])

    @property
    def last_name(self) -> str | None:
        """Last name, if any."""
        return self._user.get("last_name")

    @property
    def username(self) -> str | None:
        """Username without @, if any."""
        return self._user.get("username")

    @property
    def language_code(self) -> str | None:
        """IETF language tag sent in ``from.language_code``."""
        return self._user.get("language_code")

    @property
    def user_object(self) -> dict[str, Any]:
        """The Bot API ``User`` object sent in updates."""
        return self._user

    def update_profile(self, **fields: Any) -> None:
        """Change profile fields (``first_name``, ``last_name``, ``username``, ``language_code``).

        A new dict is built so that updates already queued keep the old profile.
        """
        user = dict(self._user)
        for key, value in fields.items():
            if value is None:
                continue
            user[key] = value
        self._user = user
        self._state.user_objects[self.id] = user
        self._state.private_chat(user)

    # ------------------------------------------------------------------ what the user sees

    @property
    def messages(self) -> list[BotMessage]:
        """Every message the bot sent here, in order, in its current state (deleted ones flagged)."""
        return self.chat.bot_messages

    def menu(self) -> list[str]:
        """The «/» menu of this user's Telegram app, as "/command description" lines (emulator/state.py `menu`)."""
        return [f"/{c['command']} {c['description']}" for c in self._state.menu(self.id, self.language_code)]

    @property
    def last_message(self) -> BotMessage | None:
        """The newest bot message that is not deleted."""
        for message in reversed(self.chat.bot_messages):
            if not message.deleted:
                return message
        return None

    def message(self, message_id: int) -> BotMessage:
        """The bot message with this id (AssertionError if the bot never sent it)."""
        message = self.chat.bot_index.get(message_id)
        if message is None:
            raise AssertionError(f"the bot sent no message #{message_id} to chat {self.chat_id}")
        return message

    @property
    def callback_answers(self) -> list[dict[str, Any]]:
        """answerCallbackQuery calls for this user's queries: callback_query_id, text, show_alert, url, cache_time."""
        return self.chat.callback_answers

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """Texts of the current reply keyboard, row by row; None when removed or never sent."""
        return reply_keyboard_rows(self.chat.reply_keyboard)

    @property
    def reply_keyboard_markup(self) -> dict[str, Any] | None:
        """The current ReplyKeyboardMarkup as the bot sent it."""
        return self.chat.reply_keyboard

    @property
    def chat_actions(self) -> list[str]:
        """Actions sent with sendChatAction, in order."""
        return self.chat.chat_actions

    @property
    def blocked(self) -> bool:
        """True while the user has the bot blocked."""
        return self.chat.blocked

    @property
    def started(self) -> bool:
        """True once the bot may write here (the user wrote first or :meth:`open_chat`)."""
        return self.chat.started

    # ------------------------------------------------------------------ chat lifecycle

    def open_chat(self) -> None:
        """Let the bot write here without the user sending anything (as if they started it long ago)."""
        self.chat.started = True

    def block(self, *, notify: bool = True) -> None:
        """Block the bot: every send to this chat answers 403. Queues ``my_chat_member`` if ``notify``."""
        if self.chat.blocked:
            return
        self.chat.blocked = True
        if notify and self.chat.started:
            self._queue_member_update("member", "kicked")

    def unblock(self, *, notify: bool = True) -> None:
        """Unblock the bot. Queues ``my_chat_member`` if ``notify``."""
        if not self.chat.blocked:
            return
        self.chat.blocked = False
        if notify and self.chat.started:
            self._queue_member_update("kicked", "member")

    def _queue_member_update(self, old: str, new: str) -> None:
        bot = self._state.bot_user

        def member(status: str) -> dict[str, Any]:
            return {"status": status, "user": bot, **({"until_date": 0} if status == "kicked" else {})}

        payload = {
            "chat": self.chat.chat,
            "from": self._user,
            "date": self._state.now(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        self._state.enqueue_update("my_chat_member", payload)

    # ------------------------------------------------------------------ sending messages

    async def _post(self, content: dict[str, Any], *, reply_to: int | None = None) -> dict[str, Any]:
        """Create a user message, queue the ``message`` update and return the Message dict."""
        if self.chat.blocked:
            # Writing to a blocked bot is only possible through "Restart", which unblocks it.
            self.unblock()
        self.chat.started = True
        message_id = self.chat.allocate_message_id()
        message: dict[str, Any] = {"message_id": message_id, "from": self._user, "chat": self.chat.chat, "date": self._state.now()}
        if reply_to is not None:
            target = self.chat.messages.get(reply_to)
            if target is None:
                raise AssertionError(f"cannot reply to message #{reply_to}: not in chat {self.chat_id}")
            message["reply_to_message"] = strip_reply(target)
        message.update(content)
        self.chat.messages[message_id] = message
        self._cursor = len(self.chat.bot_messages)
        self._state.enqueue_update("message", message)
        self.chat.changed()
        # Let a waiting long poll answer before the test continues.
        await asyncio.sleep(0)
        return message

    async def send_text(self, text: str, *, reply_to: int | None = None) -> dict[str, Any]:
        """Send a text message; ``/commands`` in it get ``bot_command`` entities."""
        if not text.strip():
            raise ValueError("Telegram clients do not send empty messages")
        content: dict[str, Any] = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        return await self._post(content, reply_to=reply_to)

    async def send_command(self, command: str, args: str | None = None) -> dict[str, Any]:
        """Send ``/command args`` (a leading ``/`` in ``command`` is optional)."""
        text = "/" + command.lstrip("/")
        if args:
            text += " " + args
        return await self.send_text(text)

    def _file(
        self,
        kind: str,
        content: bytes | None,
        meta: dict[str, Any],
        file_name: str | None = None,
    ) -> dict[str, Any]:
        """Register a file the user sends and return its message fields."""
        state = self._state
        data = content if content is not None else state.generated_content(kind, f"from user {self.id}")
        if kind == "photo":
            return {"photo": state.register_photo(data)}
        record = state.register_file(kind, data, meta=meta, file_name=file_name)
        fields: dict[str, Any] = {kind: record.to_object()}
        if kind == "animation":
            # Telegram duplicates animations into ``document``.
            fields["document"] = {
                k: v
                for k, v in fields["animation"].items()
                if k in ("file_id", "file_unique_id", "file_size", "file_name", "mime_type")
            }
        return fields

    async def _send_media(
        self,
        fields: dict[str, Any],
        caption: str | None,
        media_group_id: str | None,
        reply_to: int | None,
    ) -> dict[str, Any]:
        if caption:
            fields["caption"] = caption
        if media_group_id:
            fields["media_group_id"] = media_group_id
        return await self._post(fields, reply_to=reply_to)

    async def send_photo(
        self,
        caption: str | None = None,
        *,
        media_group_id: str | None = None,
        content: bytes | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send a photo (two PhotoSize entries with fresh file ids)."""
        return await self._send_media(self._file("photo", content, {}), caption, media_group_id, reply_to)

    async def send_video(
        self,
        caption: str | None = None,
        *,
        duration: int = 5,
        width: int = 1280,
        height: int = 720,
        media_group_id: str | None = None,
        content: bytes | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send a video."""
        meta = {"width": width, "height": height, "duration": duration, "mime_type": "video/mp4"}
        return await self._send_media(self._file("video", content, meta), caption, media_group_id, reply_to)

    async def send_document(
        self,
        file_name: str = "document.pdf",
        mime_type: str | None = None,
        caption: str | None = None,
        *,
        media_group_id: str | None = None,
        content: bytes | None = None,
        file_size: int | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send a document; ``file_size`` overrides the reported size (to test size limits)."""
        meta: dict[str, Any] = {"file_name": file_name, "mime_type": mime_type or EmulatorState.guess_mime(file_name)}
        if file_size is not None:
            meta["file_size"] = file_size
        fields = self._file("document", content, meta, file_name=file_name)
        return await self._send_media(fields, caption, media_group_id, reply_to)

    async def send_audio(
        self,
        caption: str | None = None,
        *,
        duration: int = 180,
        title: str | None = None,
        performer: str | None = None,
        file_name: str = "audio.mp3",
        media_group_id: str | None = None,
        content: bytes | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send a music file."""
        meta: dict[str, Any] = {"duration": duration, "mime_type": "audio/mpeg", "file_name": file_name}
        if title:
            meta["title"] = title
        if performer:
            meta["performer"] = performer
        fields = self._file("audio", content, meta, file_name=file_name)
        return await self._send_media(fields, caption, media_group_id, reply_to)

    async def send_voice(
        self,
        caption: str | None = None,
        *,
        duration: int = 3,
        content: bytes | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send a voice note."""
        fields = self._file("voice", content, {"duration": duration, "mime_type": "audio/ogg"})
        return await self._send_media(fields, caption, None, reply_to)

    async def send_sticker(self, emoji: str = "👍", *, reply_to: int | None = None) -> dict[str, Any]:
        """Send a (static) sticker."""
        meta = {"type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": emoji}
        return await self._post(self._file("sticker", None, meta), reply_to=reply_to)

    async def send_animation(
        self,
        caption: str | None = None,
        *,
        duration: int = 3,
        content: bytes | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send a GIF (an ``animation`` that also appears as ``document``, like in Telegram)."""
        meta = {
            "width": 480,
            "height": 270,
            "duration": duration,
            "file_name": "animation.mp4",
            "mime_type": "video/mp4",
        }
        fields = self._file("animation", content, meta, file_name="animation.mp4")
        return await self._send_media(fields, caption, None, reply_to)

    async def send_video_note(self, *, duration: int = 5, reply_to: int | None = None) -> dict[str, Any]:
        """Send a round video message."""
        return await self._post(
            self._file("video_note", None, {"length": 240, "duration": duration}), reply_to=reply_to
        )

    async def send_album(self, kinds: list[str], caption: str | None = None) -> list[dict[str, Any]]:
        """Send several media sharing one ``media_group_id`` (caption on the first item).

        :param kinds: e.g. ``["photo", "photo", "video"]``; photo, video, document, audio.
        """
        if not 2 <= len(kinds) <= 10:
            raise ValueError("an album has 2-10 items")
        unknown = set(kinds) - ALBUM_KINDS
        if unknown:
            raise ValueError(f"unsupported album item kinds: {sorted(unknown)}")
        group_id = self._state.next_media_group_id()
        senders = {
            "photo": self.send_photo,
            "video": self.send_video,
            "document": self.send_document,
            "audio": self.send_audio,
        }
        messages = []
        for index, kind in enumerate(kinds):
            item_caption = caption if index == 0 else None
            messages.append(await senders[kind](caption=item_caption, media_group_id=group_id))  # type: ignore[operator]
        return messages

    async def send_location(
        self,
        latitude: float,
        longitude: float,
        *,
        live_period: int | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """Send a location (a live one with ``live_period``)."""
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if live_period:
            location["live_period"] = live_period
        return await self._post({"location": location}, reply_to=reply_to)

    async def send_contact(
        self,
        phone_number: str,
        first_name: str | None = None,
        last_name: str | None = None,
        user_id: int | None = _SELF,
    ) -> dict[str, Any]:
        """Send a contact; by default the user's own (``user_id`` set, as the share-contact button does).

        Pass ``user_id=None`` for a foreign contact without a Telegram account.
        """
        if first_name is None:
            first_name, last_name = self.first_name, last_name or self.last_name
        contact: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
        if last_name:
            contact["last_name"] = last_name
        uid = self.id if user_id is _SELF else user_id
        if uid is not None:
            contact["user_id"] = uid
        return await self._post({"contact": contact})

    async def send_raw(self, content: dict[str, Any], *, reply_to: int | None = None) -> dict[str, Any]:
        """Send a message with arbitrary content fields (for kinds without a helper)."""
        return await self._post(dict(content), reply_to=reply_to)

    # ------------------------------------------------------------------ buttons

    async def click(self, text: str, *, message_id: int | None = None) -> str:
        """Press the inline button with exactly ``text`` and return the callback query id.

        Without ``message_id`` the newest non-deleted bot message that has such a
        button is used.  Raises AssertionError listing the visible buttons when
        there is none, or when it is not a callback button.
        """
        if message_id is not None:
            message = self.chat.bot_index.get(message_id)
            if message is None or message.deleted:
                raise AssertionError(f"no bot message #{message_id} in chat {self.chat_id} (deleted or never sent)")
            candidates = [message]
        else:
            candidates = [m for m in reversed(self.chat.bot_messages) if not m.deleted]
        for message in candidates:
            for row in (message.raw.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") != text:
                        continue
                    if "callback_data" not in button:
                        kinds = sorted(set(button) - {"text"})
                        raise AssertionError(
                            f"button {text!r} on message #{message.message_id} is not a callback button ({kinds}); "
                            "pressing it sends nothing to the bot"
                        )
                    return await self.press_callback(message.message_id, button["callback_data"])
        raise AssertionError(f"no inline button {text!r} in chat {self.chat_id}.\n{self._buttons_dump()}")

    def _buttons_dump(self) -> str:
        lines = []
        for message in self.chat.bot_messages[-10:]:
            if message.deleted:
                continue
            rows = (message.raw.get("reply_markup") or {}).get("inline_keyboard")
            if rows:
                texts = [[button.get("text") for button in row] for row in rows]
                lines.append(f"  message #{message.message_id}: {texts}")
        if not lines:
            return "visible inline buttons: none"
        return "visible inline buttons (last 10 messages):\n" + "\n".join(lines)

    async def press_callback(self, message_id: int, data: str | None) -> str:
        """Send a raw callback query for ``message_id`` with any data (forged or stale buttons).

        The query carries the message's current state; for a deleted message an
        ``InaccessibleMessage`` (date 0) is sent, as Telegram does.
        """
        message = self.chat.messages.get(message_id)
        if message is None:
            message = {"chat": self.chat.chat, "message_id": message_id, "date": 0}
        record = self._state.new_callback_query(self.chat_id, message_id, data)
        query: dict[str, Any] = {
            "id": record.id,
            "from": self._user,
            "message": message,
            "chat_instance": str(abs(self.chat_id) * 1_000_003 % 10**18),
        }
        if data is not None:
            query["data"] = data
        self._cursor = len(self.chat.bot_messages)
        self._state.enqueue_update("callback_query", query)
        await asyncio.sleep(0)
        return record.id

    async def press_reply_button(
        self,
        text: str,
        *,
        latitude: float | None = None,
        longitude: float | None = None,
        phone_number: str | None = None,
    ) -> dict[str, Any]:
        """Press a button of the current reply keyboard and return the sent Message dict.

        ``request_location`` buttons send a location (``latitude``/``longitude``
        required), ``request_contact`` buttons send the user's own contact
        (``phone_number`` or :attr:`phone_number`); others send their text.
        """
        button = find_reply_button(self.chat.reply_keyboard, text)
        if button is None:
            raise AssertionError(
                f"no reply keyboard button {text!r} in chat {self.chat_id}; keyboard: {self.reply_keyboard}"
            )
        if button.get("request_location"):
            if latitude is None or longitude is None:
                raise ValueError(f"button {text!r} requests a location: pass latitude= and longitude=")
            return await self.send_location(latitude, longitude)
        if button.get("request_contact"):
            return await self.send_contact(phone_number or self.phone_number)
        # The client sends the button's whole text, invisible characters included.
        return await self.send_text(button["text"])

    # ------------------------------------------------------------------ waiting

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - tests pass plain seconds
        what: str = "condition",
    ) -> None:
        """Wait until ``predicate()`` is true, re-checking whenever the bot changes this chat."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{what} not met in chat {self.chat_id} within {timeout}s.\n{self.dump()}")
            await self._wait_change(remaining)

    async def _wait_change(self, timeout: float) -> None:  # noqa: ASYNC109
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.chat.waiters.append(waiter)
        try:
            await asyncio.wait([waiter], timeout=timeout)
        finally:
            if not waiter.done():
                waiter.cancel()
                try:
                    self.chat.waiters.remove(waiter)
                except ValueError:
                    pass

    async def next_message(self, timeout: float = 5.0) -> BotMessage:  # noqa: ASYNC109
        """The next bot message not returned yet, sent after the last ``send_*``/``click``/``next_message``.

        Waits up to ``timeout`` seconds; raises TimeoutError with a dump of the
        chat, the pending updates and the bot's recent failed API calls.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._cursor >= len(self.chat.bot_messages):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"no new message from the bot in chat {self.chat_id} within {timeout}s.\n{self.dump()}"
                )
            await self._wait_change(remaining)
        message = self.chat.bot_messages[self._cursor]
        self._cursor += 1
        return message

    async def next_messages(self, count: int, timeout: float = 5.0) -> list[BotMessage]:  # noqa: ASYNC109
        """The next ``count`` bot messages (e.g. an album), within one overall ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        return [await self.next_message(max(deadline - loop.time(), 0.0)) for _ in range(count)]

    def skip_messages(self) -> None:
        """Move the :meth:`next_message` cursor past everything received so far."""
        self._cursor = len(self.chat.bot_messages)

    def dump(self) -> str:
        """Human-readable state of the chat for assertion messages."""
        messages = self.chat.bot_messages
        lines = [
            f"chat {self.chat_id}: {len(messages)} bot messages, next_message cursor at {self._cursor}, "
            f"{len(self._state.updates)} unconfirmed updates, blocked={self.chat.blocked}"
        ]
        if messages:
            lines.append("last bot messages:")
            lines.extend(f"  {m.describe()}" for m in messages[-5:])
        if self.chat.reply_keyboard is not None:
            lines.append(f"reply keyboard: {self.reply_keyboard}")
        return "\n".join(lines) + self._state.recent_errors_dump(self.chat_id)


def _command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities as Telegram clients/servers mark them."""
    if "/" not in text:
        return []
    entities = []
    for match in _COMMAND_RE.finditer(text):
        entities.append(
            {"type": "bot_command", "offset": utf16_len(text[: match.start()]), "length": utf16_len(match.group())}
        )
    return entities
