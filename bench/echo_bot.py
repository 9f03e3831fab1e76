"""A bare aiogram 3 echo bot: the ceiling for `bench/intake.py` on this machine.

It does what aiogram itself must do for every update (long polling, parsing, routing, API calls) and nothing
else: no database, no FSM storage, no middlewares, no i18n. Its API traffic mirrors the resident bot's: a
message gets one answer with an inline button; a button press is answered, its message edited and a new
message with a button sent (what the filing dialog does for each choice).

Stock aiogram: its own aiohttp session and its default polling (`start_polling`, updates handled as tasks).

Run by `bench/intake.py` in its own process:

    python bench/echo_bot.py --api-base http://127.0.0.1:PORT --token 654321:BENCH-ECHO
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

PRESS = "🔁 Press"
KEYBOARD = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=PRESS, callback_data="press")]])


def create_dispatcher() -> Dispatcher:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "ok", reply_markup=KEYBOARD)

    @dp.callback_query()
    async def pressed(callback: CallbackQuery) -> None:
        await callback.answer()
        message = callback.message
        if isinstance(message, Message):
            await message.edit_text(f"{message.text or 'ok'} ✅")
            await message.answer("pressed", reply_markup=KEYBOARD)

    return dp


async def run(api_base: str, token: str, polling_timeout: int) -> None:
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)))
    dp = create_dispatcher()
    await dp.start_polling(
        bot,
        allowed_updates=dp.resolve_used_update_types(),
        polling_timeout=polling_timeout,
        handle_as_tasks=True,
        handle_signals=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-base", required=True, help="the Bot API base URL (the emulator's)")
    parser.add_argument("--token", required=True)
    parser.add_argument("--polling-timeout", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run(args.api_base, args.token, args.polling_timeout))


if __name__ == "__main__":
    main()
