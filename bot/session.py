"""The bot's HTTP session to the Bot API: aiogram's aiohttp session, sending JSON bodies.

aiogram's own session sends every call as a form: each field URL-encoded, nested values JSON-encoded inside it.
Cyrillic text triples in size when URL-encoded, and building the form is a tenth of the bot's CPU under load. The
Bot API accepts `application/json` bodies for every method, so calls without uploads go as one orjson document,
and responses are parsed by orjson (see `_loads` for what is left out). Calls that upload files (`InputFile`) still
go as multipart forms.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import orjson
from aiogram import methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import GetUpdates
from aiogram.methods.base import Response
from aiohttp import ClientError

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import TelegramType
    from aiogram.types import InputFile

JSON_HEADERS = {"Content-Type": "application/json"}

# aiogram builds a pydantic `Response[T]` class for every call's result, and pydantic caches those classes weakly:
# after each garbage collection they are built again (0.5–10 ms each), which dominated the CPU under load (in a
# stock aiogram bot too: a fifth of the echo bot's CPU in `bench/intake.py`). Holding the ones the bot uses keeps
# them for the life of the process.
_PINNED_METHODS = (
    methods.GetUpdates,
    methods.GetMe,
    methods.SendMessage,
    methods.EditMessageText,
    methods.EditMessageReplyMarkup,
    methods.AnswerCallbackQuery,
    methods.SendPhoto,
    methods.SendVideo,
    methods.SendDocument,
    methods.SendMediaGroup,
    methods.SendLocation,
    methods.DeleteMessage,
    methods.SetMyCommands,
    methods.DeleteWebhook,
)
_pinned: tuple[Any, ...] = ()


def pin_response_types() -> None:
    """Keep aiogram's response classes of the methods the bot calls alive for the life of the process."""
    global _pinned
    if not _pinned:
        _pinned = tuple(Response[method.__returning__] for method in _PINNED_METHODS)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads(content: str | bytes) -> Any:
    """A Bot API response; the messages the bot sent or edited come back without their keyboard.

    Telegram echoes the whole message, keyboard included, and aiogram turns every button of it into a pydantic
    object: for a list of 17 districts that is three quarters of the cost of reading the answer. The bot knows
    what it sent and never reads it back, so `reply_markup` of a method's resulting Message is dropped before
    validation. Updates (getUpdates) are untouched: the keyboard of a message whose button was pressed stays.
    """
    data = orjson.loads(content)
    if isinstance(data, dict):
        result = data.get("result")
        if isinstance(result, dict):
            if "message_id" in result:
                result.pop("reply_markup", None)
        elif isinstance(result, list) and result and isinstance(result[0], dict) and "message_id" in result[0]:
            for message in result:  # sendMediaGroup
                message.pop("reply_markup", None)
    return data


class JSONSession(AiohttpSession):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("json_loads", _loads)
        kwargs.setdefault("json_dumps", _dumps)
        super().__init__(**kwargs)
        self.before_poll: Callable[[], Awaitable[None]] | None = None
        """Awaited before each getUpdates (`bot.load.pace_polling`)."""

    def build_json(self, bot: Bot, method: TelegramMethod[Any]) -> bytes | None:
        """The call as a JSON body, or None when it uploads a file and must go as a form."""
        files: dict[str, InputFile] = {}
        payload: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False, exclude_none=True).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is None or prepared == "":
                continue  # as aiogram's form: an unset default (parse_mode None, say) is not sent
            payload[key] = prepared
        if files:
            return None
        return orjson.dumps(payload)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> TelegramType:
        if self.before_poll is not None and isinstance(method, GetUpdates):
            await self.before_poll()
        body = self.build_json(bot, method)
        if body is None:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url, data=body, headers=JSON_HEADERS, timeout=self.timeout if timeout is None else timeout
            ) as resp:
                raw = await resp.read()
        except TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e
        # orjson reads bytes; aiogram only passes the content on to json_loads and into its error.
        response = self.check_response(bot=bot, method=method, status_code=resp.status, content=cast(str, raw))
        return cast("TelegramType", response.result)
