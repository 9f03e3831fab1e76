"""The emulator: an aiohttp server speaking the Telegram Bot API, plus its test-facing API.

Routes:

* ``POST|GET /bot{token}/{method}`` — the Bot API (what aiogram calls);
* ``GET /file/bot{token}/{file_path}`` — file downloads (``bot.download_file``);
* ``/_emu/...`` — the user-side HTTP API (see :mod:`.user_http` and README.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from aiohttp import web

from .bot_api import SENDING_METHODS, lookup
from .errors import METHOD_NOT_FOUND_DESCRIPTION, ApiError, too_many_requests, unauthorized
from .faults import Fault, FaultInjector, RateLimiter
from .models import ApiCall, BotMessage
from .params import FILE_FIELDS, Params, UploadedFile, loggable, normalize
from .state import EmulatorState
from .user import EmulatedUser
from .user_http import setup_user_routes
from .webhook import WebhookDelivery

if TYPE_CHECKING:
    from aiogram import Bot

logger = logging.getLogger(__name__)

MAX_UPLOAD_SIZE = 60 * 1024 * 1024  # Telegram accepts 50 MB uploads; leave room for form overhead.
# How long an idle keep-alive connection stays open: 75 s, nginx's default (Telegram's Bot API answers through nginx)
# and aiohttp's old one; aiohttp 3.10+ servers would otherwise keep it for an hour. A client must close its idle
# connections before the server does, or it may send a request on one the server is closing ("Server disconnected").
KEEPALIVE_TIMEOUT = 75.0


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


class BotAPIEmulator:
    """A local Telegram Bot API for one bot, with emulated users.

    Usage::

        async with BotAPIEmulator() as emu:
            bot = Bot(emu.token, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url)))
            user = emu.user(1001, first_name="Ivan")
            await user.send_command("start")
            reply = await user.next_message()

    :param strict_ampersand: reject a bare ``&`` in HTML (Telegram keeps it; see html_parser).
    :param strict_file_ids: reject file_ids the emulator never issued, as Telegram does.
    :param request_log_limit: keep at most this many entries in :attr:`requests` (None = all).
    :param webhook_timeout: seconds a webhook has to answer an update before the delivery counts as failed.
    :param webhook_retry_base: the first retry's delay after a failed delivery (doubled each time).
    :param webhook_retry_max: the longest delay between two tries.
    :param keepalive_timeout: seconds an idle keep-alive connection is kept before the server closes it.
    :param clock: unix time for the messages' ``date`` fields (default: the real time; the sandbox's travels).
    :param file_id_tag: put into every file id issued (a run's own tag: ids stored from an earlier run never come back
        for another file).
    :param first_update_id: the id of the first update (a bot restarted against a new emulator remembers the ids it
        handled: the sandbox starts after them, as Telegram's ids never go back).
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "tsur_test_bot",
        bot_first_name: str = "TSUR",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        strict_ampersand: bool = True,
        strict_file_ids: bool = True,
        request_log_limit: int | None = 100_000,
        webhook_timeout: float = 10.0,
        webhook_retry_base: float = 0.05,
        webhook_retry_max: float = 2.0,
        keepalive_timeout: float = KEEPALIVE_TIMEOUT,
        first_update_id: int = 1,
        clock: Callable[[], float] | None = None,
        file_id_tag: str = "",
    ) -> None:
        bot_id_text = token.split(":", 1)[0]
        if not bot_id_text.isdigit():
            raise ValueError("token must look like '<bot id>:<secret>'")
        self.token = token
        self.host = host
        self._requested_port = port
        self.keepalive_timeout = keepalive_timeout
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id_text),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.state = EmulatorState(
            bot_user=self.bot_user,
            strict_ampersand=strict_ampersand,
            strict_file_ids=strict_file_ids,
            request_log_limit=request_log_limit,
            first_update_id=first_update_id,
            clock=clock,
            file_id_tag=file_id_tag,
        )
        self.webhook = WebhookDelivery(
            self.state, timeout=webhook_timeout, retry_base=webhook_retry_base, retry_max=webhook_retry_max
        )
        self.state.webhook = self.webhook
        self._faults = FaultInjector()
        self._rate_limiter = RateLimiter()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def bot_id(self) -> int:
        """The bot's user id (the number before ``:`` in the token)."""
        return int(self.bot_user["id"])

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port`` for ``TelegramAPIServer.from_base``."""
        return f"http://{self.host}:{self.port}"

    def build_app(self) -> web.Application:
        """The aiohttp application (also usable with aiohttp's test utilities)."""
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        setup_user_routes(app, self)
        return app

    async def start(self) -> None:
        """Bind and serve; ``port=0`` picks a free port (see :attr:`port`)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already started")
        self.state.closing = False
        # handler_cancellation: a long poll whose client went away must stop waiting;
        # access_log=None: per-request logging would dominate benchmark profiles.
        runner = web.AppRunner(
            self.build_app(),
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=1.0,
            keepalive_timeout=self.keepalive_timeout,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        logger.debug("Bot API emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Stop serving; pending long polls are answered with an empty list first."""
        if self._runner is None:
            return
        self.state.shutdown()
        await self.webhook.close()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> BotAPIEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def create_bot(self, **bot_kwargs: Any) -> Bot:
        """An aiogram ``Bot`` wired to this emulator (close its session when done)."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(self.base_url))
        return Bot(self.token, session=session, **bot_kwargs)

    # ------------------------------------------------------------------ users & messages

    def user(
        self,
        user_id: int,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> EmulatedUser:
        """Get or create the user with this id (private chat id == user id).

        On creation ``first_name`` defaults to ``f"User{user_id}"`` and
        ``language_code`` to ``"ru"``; for an existing user, the given
        (non-None) fields update the profile.
        """
        existing = self.state.users.get(user_id)
        if existing is not None:
            existing.update_profile(
                first_name=first_name, last_name=last_name, username=username, language_code=language_code
            )
            return existing
        profile: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name or f"User{user_id}"}
        if last_name:
            profile["last_name"] = last_name
        if username:
            profile["username"] = username
        profile["language_code"] = language_code or "ru"
        created = EmulatedUser(self.state, profile)
        self.state.users[user_id] = created
        return created

    @property
    def users(self) -> dict[int, EmulatedUser]:
        """Every emulated user by id."""
        return self.state.users

    def sent_messages(self, chat_id: int | None = None) -> list[BotMessage]:
        """Messages sent by the bot (all chats, in order, or one chat)."""
        if chat_id is None:
            return list(self.state.bot_messages)
        chat = self.state.chats.get(chat_id)
        return list(chat.bot_messages) if chat is not None else []

    # ------------------------------------------------------------------ updates & requests

    def updates_pending(self) -> int:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return len(self.state.updates)

    async def wait_confirmed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - the public API takes seconds
        """Wait until the bot confirmed (fetched and acknowledged with a later offset) every update queued so far.

        Confirmation means aiogram fetched the update and asked for the next
        ones; with ``handle_as_tasks`` the handler may still be running.
        """
        await self.state.wait_confirmed(timeout)

    def last_update(self, user_id: int | None = None) -> dict[str, Any] | None:
        """The newest update queued (by anyone, or caused by ``user_id``), confirmed or not."""
        if user_id is not None:
            return self.state.last_updates.get(user_id)
        if self.state.updates:
            return self.state.updates[-1]
        return max(self.state.last_updates.values(), key=lambda u: u["update_id"], default=None)

    def redeliver(self, update: dict[str, Any]) -> dict[str, Any] | None:
        """Queue the payload of an already delivered update again, to test idempotent handling.

        Telegram re-sends updates a bot did not confirm (e.g. it crashed mid-handling).
        The bot's offset is already past the original id, so the copy gets a new
        ``update_id``; the payload (message, callback query id, ...) is identical.
        Returns the new update, or None if ``allowed_updates`` filters it out.
        """
        kinds = [key for key in update if key != "update_id"]
        if len(kinds) != 1:
            raise ValueError("not a Bot API update: expected update_id and one payload field")
        return self.state.enqueue_update(kinds[0], update[kinds[0]])

    @property
    def requests(self) -> list[ApiCall]:
        """Log of every Bot API call: method, params, ok, result or error (oldest first)."""
        return self.state.requests

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[ApiCall]:
        """Logged calls filtered by method name (case-insensitive) and/or success."""
        wanted = method.lower() if method else None
        return [
            call
            for call in self.state.requests
            if (wanted is None or call.method.lower() == wanted) and (ok is None or call.ok is ok)
        ]

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        method: str = "*",
        kind: str = "429",
        count: int | None = 1,
        retry_after: int = 1,
        *,
        delay: float = 0.0,
        error_code: int = 400,
        description: str = "Bad Request: injected fault",
        chat_id: int | None = None,
    ) -> Fault:
        """Make the next ``count`` matching calls fail (see :class:`Fault` for the kinds).

        ``method="*"`` matches every method except getUpdates.  Returns the
        fault; its ``hits`` tells how many calls it answered.
        """
        fault = Fault(
            method=method,
            kind=str(kind),
            count=count,
            retry_after=retry_after,
            delay=delay,
            error_code=error_code,
            description=description,
            chat_id=chat_id,
        )
        return self._faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """Faults still active."""
        return self._faults.active

    def rate_limit(
        self,
        per_chat_per_second: float | None = None,
        global_per_second: float | None = None,
        *,
        per_chat_burst: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Answer 429 to sending methods above these rates (both None = off, the default).

        ``per_chat_burst`` makes the per-chat limit a token bucket (that many at once, then the rate);
        ``clock`` (seconds) replaces ``time.monotonic``, e.g. a test's manual clock."""
        self._rate_limiter = RateLimiter(
            per_chat_per_second, global_per_second, per_chat_burst=per_chat_burst, clock=clock
        )

    # ------------------------------------------------------------------ HTTP handlers

    async def _handle_bot_api(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        entry = lookup(name)
        canonical = entry[0] if entry is not None else name
        try:
            data, files = await self._read_params(request)
        except ApiError as exc:
            return self._answer_error(ApiCall(method=canonical, params={}, time=time.time()), exc)
        call = ApiCall(method=canonical, params=loggable(data), time=time.time())
        # Logged on arrival so the log order is the order the bot issued calls.
        self.state.log_call(call)

        if request.match_info["token"] != self.token:
            return self._answer_error(call, unauthorized())
        if entry is None:
            return self._answer_error(call, ApiError(404, METHOD_NOT_FOUND_DESCRIPTION))
        handler = entry[1]
        chat_id = data.get("chat_id")

        fault = self._faults.take(canonical, chat_id)
        drop_after = False
        if fault is not None:
            call.fault = fault.kind
            if fault.kind == "drop":
                self._drop_connection(request, call)
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "drop_after":
                drop_after = True
            else:
                return self._answer_error(call, fault.to_error())

        if self._rate_limiter.enabled and canonical in SENDING_METHODS:
            retry_after = self._rate_limiter.check(chat_id)
            if retry_after is not None:
                return self._answer_error(call, too_many_requests(retry_after))

        try:
            result = await handler(self.state, Params(data, files))
        except ApiError as exc:
            return self._answer_error(call, exc)
        except asyncio.CancelledError:
            call.description = "cancelled: the client disconnected"
            raise
        except Exception:
            # A bug in the emulator, not in the bot: answer like Telegram's 500 but shout in the log.
            logger.exception("emulator failure in %s", canonical)
            return self._answer_error(call, ApiError(500, "Internal Server Error"))
        call.ok = True
        call.status = 200
        call.result = result
        if drop_after:
            # The call took effect (the message is in the chat) but its answer is lost with the connection.
            self._drop_connection(request, call)
        return web.Response(text=_dumps({"ok": True, "result": result}), content_type="application/json")

    def _answer_error(self, call: ApiCall, error: ApiError) -> web.Response:
        call.ok = False
        call.status = error.error_code
        call.error_code = error.error_code
        call.description = error.description
        logger.debug("%s -> %s %s", call.method, error.error_code, error.description)
        return web.Response(text=_dumps(error.to_payload()), status=error.error_code, content_type="application/json")

    @staticmethod
    def _drop_connection(request: web.Request, call: ApiCall) -> NoReturn:
        """Close the socket without answering, like a network failure mid-request."""
        call.status = 0
        call.description = "connection dropped (injected fault)"
        transport = request.transport
        if transport is not None:
            transport.abort()
        # Nothing can be written any more; ending the handler as cancelled makes aiohttp skip the response.
        raise asyncio.CancelledError()

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        """Merge query string and body (JSON, urlencoded or multipart) into one normalised dict."""
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
                if isinstance(body, dict):
                    raw.update(body)
            elif content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        upload = UploadedFile(value.filename or key, value.content_type, value.file.read())
                        files[key] = upload
                        if key in FILE_FIELDS and key not in raw:
                            raw[key] = upload
                    else:
                        raw[key] = value
        return normalize(raw), files

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(text=_dumps(unauthorized().to_payload()), status=401, content_type="application/json")
        record = self.state.files_by_path.get(request.match_info["path"])
        if record is None:
            payload = {"ok": False, "error_code": 404, "description": "Not Found"}
            return web.Response(text=_dumps(payload), status=404, content_type="application/json")
        content_type = record.meta.get("mime_type") or (
            "image/jpeg" if record.kind == "photo" else "application/octet-stream"
        )
        return web.Response(body=record.content, content_type=content_type)
