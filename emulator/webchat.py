"""The web chat page: a Telegram-like chat in the browser over the emulator's user side.

One aiohttp application serves the page (``static/``), a JSON API under ``/api`` and Server-Sent Events at
``/api/events``. Each persona the hooks list is an emulated user with a chat of its own; the page acts as that
person through :class:`~emulator.user.EmulatedUser` (send text, files, location, contact, press buttons).
What the page needs from the sandbox around it (personas, places, UI strings, scenarios, the clock) comes
through :class:`WebChatHooks`, so the emulator package knows nothing of the bot.

The read marks (unread badges) and a hidden one-time keyboard live in this process's memory: they are the state
of one browser page over one in-process emulator, not the bot's data.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from aiohttp import BodyPartReader, web

from .webchat_render import render_entities, render_plain, safe_url

if TYPE_CHECKING:
    from .server import BotAPIEmulator
    from .user import EmulatedUser

STATIC_DIR = Path(__file__).with_name("static")
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ALBUM = 10
MAX_TRAVEL_SECONDS = 366 * 24 * 3600
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
# Served inline; anything else is a download (an uploaded .html or .svg must never run in the page's origin).
INLINE_TYPES = PHOTO_TYPES | {"video/mp4", "video/webm", "audio/mpeg", "audio/ogg", "audio/mp4"}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


@dataclass(frozen=True)
class Persona:
    """A demo person the page can act as."""

    user_id: int
    first_name: str
    last_name: str | None
    role: str
    """A short label already localized by the hooks, e.g. «Житель», «Координатор ЦУР»."""
    phone: str
    """Sent by "share contact"; synthetic (+7 900 000-00-01 style)."""
    language_code: str = "ru"


@dataclass(frozen=True)
class Place:
    """A named place of the region for "send location"."""

    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Scenario:
    """A training exercise shown beside the chat, checked off when done."""

    key: str
    title: str
    description: str
    done: bool


class WebChatHooks(Protocol):
    """What the sandbox gives the page."""

    def personas(self, lang: str) -> list[Persona]: ...
    def places(self, lang: str) -> list[Place]: ...
    def strings(self, lang: str) -> dict[str, str]: ...
    async def scenarios(self, lang: str) -> list[Scenario]: ...
    async def travel(self, seconds: int) -> None: ...
    def now_text(self, lang: str) -> str: ...


class _ApiError(Exception):
    """A refused API call: the HTTP status and a key of the page's strings (shown localized)."""

    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status = status
        self.key = key


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


class WebChat:
    """The page, its JSON API and its event stream over one emulator."""

    heartbeat_seconds: float = 15.0
    """A comment line on the event stream this often, so proxies and the browser keep it open."""

    def __init__(
        self,
        emu: BotAPIEmulator,
        hooks: WebChatHooks,
        *,
        upload_dir: Path,
        max_upload_bytes: int = 20 * 1024 * 1024,
        languages: tuple[str, ...] = ("ru", "ce", "en"),
        timezone: str | None = None,
    ) -> None:
        self.timezone = timezone
        """The IANA zone the page shows messages' times in (the region's); None: the browser's own."""
        self.hosts: set[str] | None = set(LOOPBACK_NAMES)
        """The names a request may address the page by (its Host header); None: any."""
        self.emu = emu
        self.hooks = hooks
        self.upload_dir = Path(upload_dir)
        self.max_upload_bytes = max_upload_bytes
        self.languages = languages
        self._read: dict[int, int] = {}
        self._answers_seen: dict[int, int] = {}
        self._hidden_keyboard: dict[int, dict[str, Any]] = {}
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        emu.state.add_listener(self._chat_changed)

    # ------------------------------------------------------------------ lifecycle

    def build_app(self) -> web.Application:
        """The whole page + JSON API + SSE."""
        app = web.Application(client_max_size=1024 * 1024, middlewares=[self._known_host, _same_origin_posts])
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC_DIR, show_index=False)
        app.router.add_get("/api/bootstrap", self._bootstrap)
        app.router.add_get("/api/panel", self._panel)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/files/{file_id}", self._file)
        app.router.add_post("/api/travel", self._travel)
        app.router.add_get("/api/chats/{user_id}", self._chat)
        for action in ("text", "click", "reply_button", "location", "contact", "upload", "read"):
            app.router.add_post(f"/api/chats/{{user_id}}/{action}", self._action)
        app.on_shutdown.append(self._close_streams)
        return app

    @web.middleware
    async def _known_host(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Only requests addressed to this machine by a name it answers to: a web page that points a name of its own
        at 127.0.0.1 (DNS rebinding) would otherwise read and act in the sandbox, its Origin matching its Host."""
        name = urlsplit("//" + request.host).hostname or ""
        if self.hosts is not None and name.lower() not in self.hosts:
            return web.json_response({"ok": False, "error": "unknown host"}, status=421)
        return await handler(request)

    async def start(self, host: str, port: int) -> None:
        """Serve :meth:`build_app` on ``host:port`` (port 0 = a free port, see :attr:`url`)."""
        if host in ("", "0.0.0.0", "::"):
            self.hosts = None  # every address of the machine, as the operator chose (start-up warns): any name
        else:
            self.hosts = LOOPBACK_NAMES | {host.strip("[]").lower()}
        runner = web.AppRunner(self.build_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = port
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                bound = int(address[1])
                break
        shown = f"[{host}]" if ":" in host else host
        self._url = f"http://{shown}:{bound}/"

    async def stop(self) -> None:
        """End the event streams and the server; stop listening to the emulator."""
        self.emu.state.remove_listener(self._chat_changed)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """``http://host:port/`` after :meth:`start`."""
        if self._url is None:
            raise RuntimeError("the web chat is not started")
        return self._url

    def panel_changed(self) -> None:
        """The clock or the scenarios changed: the page re-reads them."""
        self._publish({"type": "panel"})

    # ------------------------------------------------------------------ events

    def _publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                # A page that stopped reading: drop the oldest, the page re-reads the chat anyway.
                queue.get_nowait()
            queue.put_nowait(event)

    def _chat_changed(self, chat_id: int) -> None:
        """Emulator listener: anything changed in this chat."""
        chat = self.emu.state.chats.get(chat_id)
        if chat is None:
            return
        self._publish({"type": "chat", "user_id": chat_id, "unread": self.unread(chat_id)})
        answers = chat.callback_answers
        seen = self._answers_seen.get(chat_id, 0)
        for answer in answers[seen:]:
            if answer.get("text"):
                self._publish(
                    {
                        "type": "toast",
                        "user_id": chat_id,
                        "text": answer["text"],
                        "alert": bool(answer.get("show_alert")),
                    }
                )
        self._answers_seen[chat_id] = len(answers)

    async def _close_streams(self, app: web.Application) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        try:
            await response.write(b"retry: 2000\n: connected\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self.heartbeat_seconds)
                except TimeoutError:
                    await response.write(b": heartbeat\n\n")
                    continue
                if event is None:
                    break
                await response.write(f"data: {_dumps(event)}\n\n".encode())
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self._subscribers.discard(queue)
        return response

    # ------------------------------------------------------------------ helpers

    def _lang(self, request: web.Request) -> str:
        lang = request.query.get("lang", "")
        return lang if lang in self.languages else self.languages[0]

    def _error(self, request: web.Request, error: _ApiError) -> web.Response:
        strings = self.hooks.strings(self._lang(request))
        return web.json_response(
            {"ok": False, "error": error.key, "message": strings.get(error.key, error.key)},
            status=error.status,
            dumps=_dumps,
        )

    def _persona(self, request: web.Request) -> tuple[Persona, EmulatedUser]:
        try:
            user_id = int(request.match_info["user_id"])
        except ValueError:
            raise _ApiError(404, "unknown_persona") from None
        for persona in self.hooks.personas(self._lang(request)):
            if persona.user_id == user_id:
                user = self.emu.user(
                    user_id,
                    first_name=persona.first_name,
                    last_name=persona.last_name,
                    language_code=persona.language_code,
                )
                return persona, user
        raise _ApiError(404, "unknown_persona")

    def unread(self, user_id: int) -> int:
        """Bot messages in this chat newer than the persona's read mark."""
        chat = self.emu.state.chats.get(user_id)
        if chat is None:
            return 0
        mark = self._read.get(user_id, 0)
        return sum(1 for message_id in chat.bot_index if message_id > mark and message_id in chat.messages)

    def commands(self, lang: str, user_id: int | None = None) -> list[dict[str, str]]:
        """The bot's command menu as a client shows it: the narrowest scope set, the UI language first."""
        return self.emu.state.menu(user_id, lang)

    def _personas_json(self, lang: str) -> list[dict[str, Any]]:
        return [
            {
                "user_id": p.user_id,
                "name": " ".join(part for part in (p.first_name, p.last_name) if part),
                "role": p.role,
                "unread": self.unread(p.user_id),
            }
            for p in self.hooks.personas(lang)
        ]

    async def _panel_json(self, lang: str) -> dict[str, Any]:
        scenarios = await self.hooks.scenarios(lang)
        return {
            "now_text": self.hooks.now_text(lang),
            "scenarios": [
                {"key": s.key, "title": s.title, "description": s.description, "done": s.done} for s in scenarios
            ],
            "personas": self._personas_json(lang),
        }

    # ------------------------------------------------------------------ page and reads

    async def _index(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC_DIR / "index.html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def _bootstrap(self, request: web.Request) -> web.Response:
        lang = self._lang(request)
        panel = await self._panel_json(lang)
        body = {
            "lang": lang,
            "languages": list(self.languages),
            "strings": self.hooks.strings(lang),
            "places": [
                {"name": p.name, "latitude": p.latitude, "longitude": p.longitude} for p in self.hooks.places(lang)
            ],
            "commands": self.commands(lang),
            "max_upload_bytes": self.max_upload_bytes,
            "max_text": MAX_TEXT,
            "max_album": MAX_ALBUM,
            "timezone": self.timezone,
            **panel,
        }
        return web.json_response(body, dumps=_dumps)

    async def _panel(self, request: web.Request) -> web.Response:
        return web.json_response(await self._panel_json(self._lang(request)), dumps=_dumps)

    async def _chat(self, request: web.Request) -> web.Response:
        try:
            persona, user = self._persona(request)
        except _ApiError as error:
            return self._error(request, error)
        chat = user.chat
        keyboard = chat.reply_keyboard
        body = {
            "persona": {
                "user_id": persona.user_id,
                "name": " ".join(part for part in (persona.first_name, persona.last_name) if part),
                "role": persona.role,
                "phone": persona.phone,
            },
            "messages": [self._message_json(chat.messages[i], chat.bot_index.get(i)) for i in sorted(chat.messages)],
            "reply_keyboard": self._keyboard_json(persona.user_id, keyboard),
            "commands": self.commands(self._lang(request), persona.user_id),
            "unread": self.unread(persona.user_id),
            "read": self._read.get(persona.user_id, 0),
        }
        return web.json_response(body, dumps=_dumps)

    def _keyboard_json(self, user_id: int, keyboard: dict[str, Any] | None) -> dict[str, Any] | None:
        if not keyboard or "keyboard" not in keyboard:
            return None
        rows = []
        for row in keyboard["keyboard"]:
            buttons = []
            for button in row:
                if isinstance(button, str):
                    button = {"text": button}
                buttons.append(
                    {
                        "text": button.get("text", ""),
                        "request_location": bool(button.get("request_location")),
                        "request_contact": bool(button.get("request_contact")),
                    }
                )
            rows.append(buttons)
        return {
            "rows": rows,
            "hidden": self._hidden_keyboard.get(user_id) is keyboard,
            "persistent": bool(keyboard.get("is_persistent")),
            "placeholder": keyboard.get("input_field_placeholder") or "",
        }

    def _message_json(self, raw: dict[str, Any], record: Any) -> dict[str, Any]:
        from_bot = bool((raw.get("from") or {}).get("is_bot"))
        text = raw.get("text", raw.get("caption"))
        entities = raw.get("entities", raw.get("caption_entities"))
        body: dict[str, Any] = {
            "message_id": raw["message_id"],
            "from_bot": from_bot,
            "date": raw.get("date"),
            "html": render_entities(text, entities) if from_bot else render_plain(text),
            "edited": bool(record is not None and record.edits) or "edit_date" in raw,
            "media_group_id": raw.get("media_group_id"),
            "media": self._media_json(raw),
            "inline_keyboard": self._inline_json(raw.get("reply_markup")),
        }
        return body

    @staticmethod
    def _inline_json(markup: Any) -> list[list[dict[str, Any]]]:
        if not isinstance(markup, dict):
            return []
        rows = []
        for row in markup.get("inline_keyboard") or []:
            buttons = []
            for button in row:
                item: dict[str, Any] = {"text": button.get("text", "")}
                if "callback_data" in button:
                    item["data"] = button["callback_data"]
                elif safe_url(button.get("url")):
                    item["url"] = button["url"]
                buttons.append(item)
            rows.append(buttons)
        return rows

    @staticmethod
    def _media_json(raw: dict[str, Any]) -> dict[str, Any] | None:
        if raw.get("photo"):
            return {"type": "photo", "url": f"/api/files/{raw['photo'][-1]['file_id']}"}
        for kind in ("video", "video_note", "audio", "voice", "animation", "document"):
            item = raw.get(kind)
            if isinstance(item, dict):
                return {
                    "type": "document" if kind == "animation" else kind,
                    "url": f"/api/files/{item['file_id']}",
                    "name": item.get("file_name") or item.get("title") or kind,
                    "size": item.get("file_size"),
                }
        if raw.get("sticker"):
            return {"type": "sticker", "emoji": raw["sticker"].get("emoji") or "🖼"}
        venue = raw.get("venue")
        location = raw.get("location") or (venue or {}).get("location")
        if location:
            return {
                "type": "location",
                "latitude": location.get("latitude"),
                "longitude": location.get("longitude"),
                "title": (venue or {}).get("title"),
            }
        contact = raw.get("contact")
        if contact:
            name = " ".join(part for part in (contact.get("first_name"), contact.get("last_name")) if part)
            return {"type": "contact", "name": name, "phone": contact.get("phone_number")}
        if raw.get("dice"):
            return {"type": "dice", "emoji": raw["dice"].get("emoji"), "value": raw["dice"].get("value")}
        return None

    async def _file(self, request: web.Request) -> web.StreamResponse:
        record = self.emu.state.files.get(request.match_info["file_id"])
        if record is None:
            raise web.HTTPNotFound()
        name = record.meta.get("file_name") or PurePosixPath(record.file_path).name
        content_type = _sniff_image(record.content) or record.meta.get("mime_type") or mimetypes.guess_type(name)[0]
        content_type = content_type or "application/octet-stream"
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private",
        }
        if content_type in INLINE_TYPES:
            headers["Content-Disposition"] = "inline"
        else:
            content_type = "application/octet-stream"
            safe_name = _UNSAFE_NAME.sub("_", name).replace('"', "_")
            headers["Content-Disposition"] = f'attachment; filename="{safe_name}"'
        return web.Response(body=record.content, content_type=content_type, headers=headers)

    # ------------------------------------------------------------------ actions

    async def _travel(self, request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
            seconds = body.get("seconds")
            if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 < seconds <= MAX_TRAVEL_SECONDS:
                raise _ApiError(400, "bad_request")
        except _ApiError as error:
            return self._error(request, error)
        await self.hooks.travel(seconds)
        self.panel_changed()
        lang = self._lang(request)
        return web.json_response({"ok": True, "now_text": self.hooks.now_text(lang)}, dumps=_dumps)

    async def _action(self, request: web.Request) -> web.Response:
        action = request.path.rsplit("/", 1)[1]
        try:
            persona, user = self._persona(request)
            if action == "upload":
                result = await self._upload(request, user)
            else:
                result = await getattr(self, f"_do_{action}")(await _json_body(request), persona, user)
        except _ApiError as error:
            return self._error(request, error)
        return web.json_response({"ok": True, **(result or {})}, dumps=_dumps)

    async def _do_text(self, body: dict[str, Any], persona: Persona, user: EmulatedUser) -> dict[str, Any]:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "bad_request")
        if len(text) > MAX_TEXT:
            raise _ApiError(400, "too_long")
        message = await user.send_text(text)
        return {"message_id": message["message_id"]}

    async def _do_click(self, body: dict[str, Any], persona: Persona, user: EmulatedUser) -> dict[str, Any]:
        message_id, data = body.get("message_id"), body.get("data")
        if not isinstance(message_id, int) or not isinstance(data, str):
            raise _ApiError(400, "bad_request")
        message = user.chat.messages.get(message_id)
        if message is None or not _has_callback(message, data):
            # Only a button the person can see: the page cannot forge callback data.
            raise _ApiError(400, "bad_request")
        await user.press_callback(message_id, data)
        return {}

    async def _do_reply_button(self, body: dict[str, Any], persona: Persona, user: EmulatedUser) -> dict[str, Any]:
        text = body.get("text")
        latitude, longitude = body.get("latitude"), body.get("longitude")
        keyboard = user.chat.reply_keyboard
        if not isinstance(text, str) or not keyboard:
            raise _ApiError(400, "bad_request")
        if latitude is not None or longitude is not None:
            latitude, longitude = _coordinates(latitude, longitude)
        try:
            message = await user.press_reply_button(
                text, latitude=latitude, longitude=longitude, phone_number=persona.phone
            )
        except (AssertionError, ValueError):
            raise _ApiError(400, "bad_request") from None
        if keyboard.get("one_time_keyboard") and not keyboard.get("is_persistent"):
            self._hidden_keyboard[persona.user_id] = keyboard
            user.chat.changed()
        return {"message_id": message["message_id"]}

    async def _do_location(self, body: dict[str, Any], persona: Persona, user: EmulatedUser) -> dict[str, Any]:
        latitude, longitude = _coordinates(body.get("latitude"), body.get("longitude"))
        message = await user.send_location(latitude, longitude)
        return {"message_id": message["message_id"]}

    async def _do_contact(self, body: dict[str, Any], persona: Persona, user: EmulatedUser) -> dict[str, Any]:
        message = await user.send_contact(persona.phone)
        return {"message_id": message["message_id"]}

    async def _do_read(self, body: dict[str, Any], persona: Persona, user: EmulatedUser) -> dict[str, Any]:
        message_id = body.get("message_id")
        if not isinstance(message_id, int):
            raise _ApiError(400, "bad_request")
        self._read[persona.user_id] = max(self._read.get(persona.user_id, 0), message_id)
        return {"unread": self.unread(persona.user_id)}

    async def _upload(self, request: web.Request, user: EmulatedUser) -> dict[str, Any]:
        if not request.content_type.startswith("multipart/"):
            raise _ApiError(400, "bad_request")
        reader = await request.multipart()
        caption = ""
        saved: list[tuple[Path, str, str]] = []  # path on disk, shown name, content type
        try:
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise _ApiError(400, "bad_request")
                if part.name == "caption" and part.filename is None:
                    caption = (await part.text())[: MAX_TEXT + 1]
                    continue
                if part.filename is None:
                    await part.release()
                    continue
                if len(saved) >= MAX_ALBUM:
                    raise _ApiError(400, "too_many_files")
                saved.append(await self._save_part(part))
            if not saved:
                raise _ApiError(400, "bad_request")
            if len(caption) > MAX_CAPTION:
                raise _ApiError(400, "caption_too_long")
        except _ApiError:
            for path, _, _ in saved:
                path.unlink(missing_ok=True)
            raise
        group = self.emu.state.next_media_group_id() if len(saved) > 1 else None
        ids = []
        for index, (path, name, content_type) in enumerate(saved):
            content = path.read_bytes()
            text = caption if index == 0 and caption.strip() else None
            if content_type in PHOTO_TYPES or _sniff_image(content) in PHOTO_TYPES:
                message = await user.send_photo(text, media_group_id=group, content=content)
            else:
                message = await user.send_document(name, content_type, text, media_group_id=group, content=content)
            ids.append(message["message_id"])
        return {"message_ids": ids, "media_group_id": group}

    async def _save_part(self, part: BodyPartReader) -> tuple[Path, str, str]:
        """Stream one uploaded file to ``upload_dir`` under a generated name; 413 past the size limit."""
        name = _display_name(part.filename or "")
        suffix = PurePosixPath(name).suffix
        suffix = suffix.lower() if _EXTENSION.match(suffix) else ""
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        path = self.upload_dir / f"{uuid.uuid4().hex}{suffix}"
        size = 0
        try:
            with path.open("wb") as out:
                while chunk := await part.read_chunk(256 * 1024):
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise _ApiError(413, "upload_too_big")
                    out.write(chunk)
        except _ApiError:
            path.unlink(missing_ok=True)
            raise
        declared = part.headers.get("Content-Type", "").split(";")[0].strip().lower()
        content_type = mimetypes.guess_type(name)[0] or declared or "application/octet-stream"
        return path, name, content_type


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


@web.middleware
async def _same_origin_posts(request: web.Request, handler: Any) -> web.StreamResponse:
    """Another web site open in the same browser must not act in the sandbox: a POST from a foreign origin is
    refused (JSON bodies also need their content type, which a cross-site form cannot send without a preflight)."""
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
        if request.headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none"):
            return web.json_response({"ok": False, "error": "forbidden"}, status=403)
    return await handler(request)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise _ApiError(400, "bad_request")
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _ApiError(400, "bad_request") from None
    if not isinstance(body, dict):
        raise _ApiError(400, "bad_request")
    return body


def _coordinates(latitude: Any, longitude: Any) -> tuple[float, float]:
    def number(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _ApiError(400, "bad_coordinates")
        return float(value)

    lat, lon = number(latitude), number(longitude)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _ApiError(400, "bad_coordinates")
    return lat, lon


def _has_callback(message: dict[str, Any], data: str) -> bool:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return any(button.get("callback_data") == data for row in rows for button in row)


def _display_name(filename: str) -> str:
    """The client's file name without any folder (Windows or POSIX), control characters or slashes.

    Clients percent-encode some characters of a multipart file name (aiohttp all of them, browsers quotes and
    newlines), so it is decoded first, then cut to its last path part."""
    name = PureWindowsPath(PurePosixPath(unquote(filename)).name).name
    name = _UNSAFE_NAME.sub("_", name).strip().lstrip(".")
    return name[:200] or "file"


def _sniff_image(content: bytes) -> str | None:
    """The image type from its first bytes (the emulator files every photo under .jpg)."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None
