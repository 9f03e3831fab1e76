"""The emulator's webhook delivery, against a plain aiohttp server standing in for the bot."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiohttp import web

from emulator import BotAPIEmulator


class Receiver:
    """A webhook that records what it gets, answers `status` (a list consumed in order, then 200) and can be held."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, Any], dict[str, str], float]] = []
        self.statuses: list[int] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.active = 0
        self.most_active = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        self.got.append((update, dict(request.headers), time.monotonic()))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await self.hold.wait()
        finally:
            self.active -= 1
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({}, status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    got.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield got
    got.hold.set()
    await runner.cleanup()


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(webhook_retry_base=0.02, webhook_retry_max=0.2, webhook_timeout=0.5) as emulator:
        yield emulator


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_updates_are_posted_with_the_secret_and_confirmed_by_a_200(emu: BotAPIEmulator, receiver: Receiver) -> None:
    bot = emu.create_bot()
    try:
        assert await bot.set_webhook(receiver.url, secret_token="s3cret", max_connections=5)
        await emu.user(1).send_text("hello")
        await emu.wait_confirmed(timeout=5)
        info = await bot.get_webhook_info()
    finally:
        await bot.session.close()
    update, headers, _at = receiver.got[0]
    assert update["message"]["text"] == "hello"
    assert headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cret"
    assert emu.updates_pending() == 0
    assert info.url == receiver.url and info.max_connections == 5 and info.pending_update_count == 0


async def test_one_chat_in_order_chats_side_by_side_up_to_max_connections(
    emu: BotAPIEmulator, receiver: Receiver
) -> None:
    bot = emu.create_bot()
    try:
        await bot.set_webhook(receiver.url, max_connections=3)
    finally:
        await bot.session.close()
    receiver.hold.clear()
    for chat in range(1, 6):
        for n in range(3):
            await emu.user(chat).send_text(f"{chat}:{n}")
    await until(lambda: receiver.active == 3)
    # Three chats in flight, one update each: never two of one chat, never more than max_connections.
    assert sorted(u["message"]["chat"]["id"] for u, _h, _t in receiver.got) == [1, 2, 3]
    receiver.hold.set()
    await emu.wait_confirmed(timeout=5)
    assert receiver.most_active == 3 and len(receiver.got) == 15
    order: dict[int, list[str]] = defaultdict(list)
    for update, _h, _t in receiver.got:
        order[update["message"]["chat"]["id"]].append(update["message"]["text"])
    assert all(texts == [f"{chat}:{n}" for n in range(3)] for chat, texts in order.items())


async def test_a_failed_delivery_is_retried_with_growing_delays(emu: BotAPIEmulator, receiver: Receiver) -> None:
    receiver.statuses = [500, 500, 500]
    bot = emu.create_bot()
    try:
        await bot.set_webhook(receiver.url)
        await emu.user(1).send_text("first")
        await emu.user(1).send_text("second")
        await emu.wait_confirmed(timeout=5)
        info = await bot.get_webhook_info()
    finally:
        await bot.session.close()
    texts = [u["message"]["text"] for u, _h, _t in receiver.got]
    assert texts == ["first"] * 4 + ["second"]  # the chat's next update waits for the first to get through
    times = [at for _u, _h, at in receiver.got[:4]]
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps[0] < gaps[1] < gaps[2]
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"


async def test_a_webhook_that_does_not_answer_in_time_gets_the_update_again(
    emu: BotAPIEmulator, receiver: Receiver
) -> None:
    bot = emu.create_bot()
    try:
        await bot.set_webhook(receiver.url)
        receiver.hold.clear()
        await emu.user(1).send_text("slow")
        await until(lambda: len(receiver.got) >= 2, timeout=5)  # the first try timed out (0.5 s): sent again
        assert emu.updates_pending() == 1
        receiver.hold.set()
        await emu.wait_confirmed(timeout=5)
        info = await bot.get_webhook_info()
    finally:
        await bot.session.close()
    assert {u["update_id"] for u, _h, _t in receiver.got} == {1}  # the same update, the same id
    assert info.last_error_message == "Read timeout expired"


async def test_delete_webhook_stops_the_delivery_and_getupdates_works_again(
    emu: BotAPIEmulator, receiver: Receiver
) -> None:
    bot = emu.create_bot()
    try:
        with pytest.raises(TelegramBadRequest, match="secret token"):
            await bot.set_webhook(receiver.url, secret_token="bad secret!")
        await bot.set_webhook(receiver.url)
        await bot.delete_webhook()
        await emu.user(1).send_text("polled")
        updates = await bot.get_updates(timeout=1)
    finally:
        await bot.session.close()
    assert [u.message.text for u in updates if u.message] == ["polled"] and receiver.got == []
