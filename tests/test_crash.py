"""`kill -9` in the middle of a burst loses no update and files no appeal twice.

The bot runs as a real process (`tsur-bot run --config …`) polling the emulator that the test runs. 50 residents
at the preview of their appeal press Confirm and send a message at once; the process is killed (SIGKILL) at
seeded random moments of the burst (measured in Bot API calls made, not in seconds), restarted each time, and
then everything is counted: every update confirmed and answered, every resident with exactly one appeal, and
nobody whose Confirm button is gone without a registration number shown to them."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import text

from emulator import BotAPIEmulator, EmulatedUser
from storage.db import create_engine
from tests.conftest import TOKEN
from tests.databases import copy_db

RESIDENTS = 50
SEED = 20261202
HELP = "Regional Management Center (RMC) works"
MY_APPEALS = "📋 My appeals"
TSUR_BOT = Path(sys.executable).with_name("tsur-bot")

pytestmark = pytest.mark.skipif(not TSUR_BOT.exists(), reason="the tsur-bot script is installed by `make install`")


class BotProcess:
    """The bot as operators run it; killed without a chance to say anything to anyone."""

    def __init__(self, config: Path, log: IO[bytes]) -> None:
        self.config = config
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        self.process = await asyncio.create_subprocess_exec(
            str(TSUR_BOT), "run", "--config", str(self.config), stdout=self.log, stderr=self.log
        )

    async def kill(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                await self.kill()


def last_text(user: EmulatedUser) -> str:
    last = user.last_message
    return (last.text or "") if last is not None else ""


async def step(user: EmulatedUser, action: object, expected: str) -> None:
    """Do something, then wait until the newest bot message says `expected`."""
    await action  # type: ignore[misc]
    await user.wait_until(lambda: expected in last_text(user), timeout=30, what=expected)


async def to_the_preview(user: EmulatedUser) -> None:
    """A new resident, from /start to the preview of a сообщение with the Confirm button."""
    await step(user, user.send_text("/start"), "Choose")
    await step(user, user.click("✅ English"), "Consent to the processing of personal data")
    await user.click("✅ I agree")
    await user.wait_until(lambda: user.reply_keyboard is not None and ["📝 File an appeal"] in user.reply_keyboard, timeout=30)
    await step(user, user.send_text("📝 File an appeal"), "Choose the topic")
    await step(user, user.click("Housing, utilities and waste"), "Choose the subcategory")
    await step(user, user.click(user.last_message.inline_keyboard[0][0][0]), "Describe the problem")
    await step(user, user.send_text(f"No water in building {user.id} for three days"), "Attach photos")
    await step(user, user.click("⏭ Skip"), "Where is the problem")
    await step(user, user.send_text("Grozny, Mira street 12"), "Choose the municipal district")
    await user.click("Grozny")
    await user.wait_until(lambda: "⚡ Message (10 days)" in (user.last_message.buttons if user.last_message else []), timeout=30)
    await step(user, user.click("⚡ Message (10 days)"), "Check your appeal")


async def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


async def inbox_size(url: str) -> int:
    [(count,)] = await query(url, "SELECT count(*) FROM update_inbox")
    return int(count)  # type: ignore[call-overload]


async def appeals_by_resident(url: str) -> dict[int, list[str]]:
    rows = await query(url, "SELECT u.tg_id, a.number FROM appeals a JOIN users u ON u.id = a.user_id")
    found: dict[int, list[str]] = {}
    for tg_id, number in rows:
        found.setdefault(int(tg_id), []).append(str(number))  # type: ignore[call-overload]
    return found


async def kill_at_random_moments(emu: BotAPIEmulator, bot: BotProcess, rng: random.Random, kills: int) -> None:
    """Kill after a random number of Bot API calls (or at rest, when the burst was over sooner); restart at once."""
    for _ in range(kills):
        target = len(emu.requests) + rng.randint(3, 150)
        while len(emu.requests) < target and emu.updates_pending():
            await asyncio.sleep(0.001)
        await bot.kill()
        await bot.start()


async def test_kill_9_during_a_burst_loses_no_update_and_files_no_appeal_twice(tmp_path: Path, template_db: Path) -> None:
    url = copy_db(template_db, tmp_path / "tsur.db")
    rng = random.Random(SEED)
    with (tmp_path / "bot.log").open("wb") as log:
        async with BotAPIEmulator(token=TOKEN, bot_username="tsur_test_bot") as emu:
            config = tmp_path / "config.toml"
            config.write_text(
                f'[bot]\ntoken = "{TOKEN}"\napi_base = "{emu.base_url}"\npolling_timeout = 1\n'
                f'[database]\nurl = "{url}"\n'
                '[throttle]\nrate = 1000.0\nburst = 1000\n[logging]\nlevel = "WARNING"\n'
            )
            bot = BotProcess(config, log)
            await bot.start()
            try:
                residents = [emu.user(50_000 + i, first_name=f"R{i}", language_code="en") for i in range(RESIDENTS)]
                await asyncio.gather(*(to_the_preview(user) for user in residents))
                previews = {user.id: user.last_message.message_id for user in residents}

                # The burst: everyone confirms and writes at once; the bot dies three times meanwhile.
                for user in residents:
                    await user.click("✅ Confirm")
                    await user.send_text("/help")
                await kill_at_random_moments(emu, bot, rng, kills=3)
                await emu.wait_confirmed(timeout=40)

                # A second burst on the main menu, killed twice.
                seen = {user.id: len(user.messages) for user in residents}
                for user in residents:
                    await user.send_text(MY_APPEALS)
                    await user.send_text("/help")
                await kill_at_random_moments(emu, bot, rng, kills=2)
                await emu.wait_confirmed(timeout=40)
                for user in residents:
                    await user.wait_until(lambda user=user: sum(HELP in (m.text or "") for m in user.messages) >= 2, timeout=20)
            finally:
                await bot.stop()

            assert bot.starts == 6 and emu.updates_pending() == 0 and await inbox_size(url) == 0
            appeals = await appeals_by_resident(url)
            for user in residents:
                numbers = appeals.get(user.id, [])
                assert len(numbers) == 1, (user.id, numbers)
                number = numbers[0]
                told = [m.text or "" for m in user.messages] + [a.get("text") or "" for a in user.callback_answers]
                assert any(number in text for text in told), f"{user.id} was never told {number}:\n{user.dump()}"
                # The preview keeps its buttons (as without a crash); a second press names the number.
                if "✅ Confirm" not in user.message(previews[user.id]).buttons:
                    assert any(number in text for text in told)
                assert user.callback_answers, "the Confirm press was answered"
                # Both /help messages answered (a reply may come twice: the price of never losing one).
                assert sum(HELP in (m.text or "") for m in user.messages) >= 2
                # «My appeals» answered with the list that has the appeal.
                assert any(number in (m.text or "") + " ".join(m.buttons) for m in user.messages[seen[user.id] :])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_webhook_process_answers_and_a_kill_loses_nothing(tmp_path: Path, template_db: Path) -> None:
    """`tsur-bot run` with bot.mode = "webhook": it sets the webhook, answers through it, and an update whose
    request dies with the process is delivered again to the restarted one."""
    url = copy_db(template_db, tmp_path / "tsur.db")
    port = free_port()
    with (tmp_path / "bot.log").open("wb") as log:
        async with BotAPIEmulator(token=TOKEN, bot_username="tsur_test_bot", webhook_retry_max=0.5) as emu:
            config = tmp_path / "config.toml"
            config.write_text(
                f'[bot]\ntoken = "{TOKEN}"\napi_base = "{emu.base_url}"\nmode = "webhook"\n'
                f'[webhook]\nurl = "http://127.0.0.1:{port}/tg"\nport = {port}\npath = "/tg"\nsecret = "s3cret"\n'
                f'max_connections = 7\n[database]\nurl = "{url}"\n'
                '[throttle]\nrate = 1000.0\nburst = 1000\n[logging]\nlevel = "WARNING"\n'
            )
            bot = BotProcess(config, log)
            await bot.start()
            try:
                user = emu.user(60_000, language_code="en")
                await user.send_text("/help")
                await user.wait_until(lambda: HELP in last_text(user), timeout=30, what="help")
                assert emu.webhook.url == f"http://127.0.0.1:{port}/tg" and emu.webhook.max_connections == 7

                # The reply hangs; the process dies with the request open; the restarted one gets it again.
                emu.inject("sendMessage", kind="delay", delay=60, chat_id=user.id)
                await user.send_text("/privacy")
                await user.wait_until(lambda: any(c.fault == "delay" for c in emu.calls("sendMessage")), timeout=30)
                await bot.kill()
                emu.clear_faults()
                await bot.start()
                await user.wait_until(lambda: "Your personal data" in last_text(user), timeout=30, what="privacy")
                await emu.wait_confirmed(timeout=10)
            finally:
                await bot.stop()
            assert bot.process is not None and bot.process.returncode == 0  # SIGTERM: a clean stop
            assert sum("Your personal data" in (m.text or "") for m in user.messages) == 1
