"""One bot instance in a process of its own, for tests/test_instances.py: on the database and the Bot API of its
arguments, at the moment given (a ManualClock), it says "ready", waits for "go" on stdin (so that both instances
start together), then runs what the scheduler and the outbox sender run: the reminder sweep, the daily digest, the
weekly summary, and the sender until nothing is due. It prints what it claimed and sent as one JSON line.

    python -m tests.instance_worker DATABASE_URL API_BASE NOW_ISO"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime

from bot.app import create_app, create_bot
from bot.clock import ManualClock
from bot.config import load_settings
from bot.notifications import make_renderer
from bot.outbox import OutboxSender

TOKEN = "123456:TEST-TOKEN"


async def main(url: str, api_base: str, now: str) -> None:
    settings = load_settings(
        "/nonexistent/config.toml",
        bot={"token": TOKEN, "api_base": api_base},
        database={"url": url},
        logging={"level": "WARNING"},
    )
    clock = ManualClock(datetime.fromisoformat(now))
    app = await create_app(settings, clock, migrate=False)
    bot = create_bot(settings, retry_after=False)
    sender = OutboxSender(
        bot,
        app.sessionmaker,
        clock,
        make_renderer(app.i18n, settings, app.services.directory),
        batch=7,
        global_rate=1000.0,
        per_chat_rate=1000.0,
        per_chat_burst=1000,
    )
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    assert (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go"
    try:
        reminders = await app.services.reminders.sweep_all(limit=7)
        daily = await app.services.reminders.daily_digest()
        weekly = await app.services.reminders.weekly_summary()
        sent = 0
        with app.i18n.context():
            while n := await sender.drain_once():
                sent += n
        print(json.dumps({"reminders": reminders, "daily": daily, "weekly": weekly, "settled": sent}), flush=True)
    finally:
        await bot.session.close()
        await app.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
