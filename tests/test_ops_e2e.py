"""Health, readiness and metrics, scraped over HTTP from the ops server while the bot serves people."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.ops import OpsServer
from emulator import BotAPIEmulator
from storage.db import create_engine, create_sessionmaker
from storage.models import Outbox
from tests.conftest import TOKEN, Harness
from tests.databases import db_url
from tests.test_cli import ROOT
from tests.test_resident_e2e import english_resident
from tests.test_staff_e2e import ADMIN, filed_appeal, join


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}, "ops": {"check_timeout": 0.5}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def ops_url(harness: Harness) -> AsyncIterator[str]:
    """The ops server as `tsur-bot run` starts it in polling mode ([ops] port)."""
    assert harness.app and harness.bot
    port = free_port()
    server = OpsServer(harness.app.ops(harness.bot), "127.0.0.1", port)
    await server.start()
    yield f"http://127.0.0.1:{port}"
    await server.stop()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = await get(f"{base}/metrics")
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_updates_sends_the_queue_and_the_sweep(harness: Harness, ops_url: str) -> None:
    harness.clock.set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))  # 12:00 region time: no quiet hours
    before = await scrape(ops_url)
    assert value(before, "tsur_outbox_pending") == 0
    assert value(before, "tsur_job_seconds_count", job="sweep") == 0

    coordinator = await join(harness, 2001, "RMC coordinator")
    resident = await english_resident(harness, 1001)
    await filed_appeal(harness, resident)
    filed = await scrape(ops_url)
    assert value(filed, "tsur_updates_total", type="message", outcome="handled") >= 4  # /start ×2, /staff, texts
    assert value(filed, "tsur_updates_total", type="callback_query", outcome="handled") >= 5
    assert value(filed, "tsur_update_seconds_count", type="message") == value(
        filed, "tsur_updates_total", type="message", outcome="handled"
    )

    # Days later the appeal is still not forwarded: the coordinators' reminder is due; the sweep claims it.
    harness.clock.advance(days=6)
    assert value(await scrape(ops_url), "tsur_reminders_due") >= 1
    fault = harness.emu.inject("sendMessage", "500", count=None, chat_id=coordinator.id)
    assert harness.app and harness.app.scheduler
    await harness.app.scheduler.get_job("sweep").func()
    await harness.settle()
    harness.clock.advance(minutes=3)
    stuck = await scrape(ops_url)
    assert value(stuck, "tsur_reminders_due") == 0
    assert value(stuck, "tsur_job_seconds_count", job="sweep") == 1
    assert fault.hits >= 1
    assert value(stuck, "tsur_outbox_sends_total", result="error") == fault.hits
    assert value(stuck, "tsur_outbox_pending") >= 1
    assert value(stuck, "tsur_outbox_oldest_age_seconds") >= 180

    seen = len(coordinator.messages)
    harness.emu.clear_faults()
    harness.clock.advance(minutes=10)  # past the retry's backoff
    await harness.settle()
    after = await scrape(ops_url)
    assert value(after, "tsur_outbox_pending") == 0
    assert value(after, "tsur_outbox_oldest_age_seconds") == 0
    assert value(after, "tsur_outbox_sends_total", result="ok") > value(stuck, "tsur_outbox_sends_total", result="ok")
    assert len(coordinator.messages) > seen  # what was stuck reached the coordinator after all


async def test_403_and_429_are_counted_apart(harness: Harness, ops_url: str) -> None:
    harness.clock.set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    limited = await join(harness, 2001, "RMC coordinator")
    gone = await join(harness, 2002, "RMC coordinator")
    await filed_appeal(harness, await english_resident(harness, 1001))
    harness.clock.advance(days=6)
    flood = harness.emu.inject("sendMessage", "429", count=1, retry_after=1, chat_id=limited.id)
    gone.block(notify=False)
    assert harness.app and harness.app.scheduler and harness.app.sender
    await harness.app.scheduler.get_job("sweep").func()  # the coordinators' reminders and digests
    for _ in range(500):  # the sender meets flood control, and pauses all sending on the test's clock
        if flood.hits:
            break
        harness.app.sender.wake()
        await asyncio.sleep(0.01)
    assert flood.hits == 1
    # Past the pause, and past each chat's one message a second (the sender's waits move the test's clock too, so the
    # row put back by flood control may fall due a little later than the moment of the 429).
    for _ in range(30):
        harness.clock.advance(seconds=1)
        await harness.settle()
        if not await harness.rows(Outbox, Outbox.status == "pending"):
            break
    samples = await scrape(ops_url)
    assert value(samples, "tsur_outbox_sends_total", result="429") == 1
    # The first call to the person who blocked the bot is refused; the rest are not tried (they are inactive).
    assert value(samples, "tsur_outbox_sends_total", result="403") == 1
    assert value(samples, "tsur_outbox_sends_total", result="error") == 0
    assert value(samples, "tsur_outbox_pending") == 0


async def test_healthz_and_readyz(harness: Harness, ops_url: str) -> None:
    assert await get(f"{ops_url}/healthz") == (200, '{"status": "ok"}')
    status, body = await get(f"{ops_url}/readyz")
    assert status == 200 and '"database": "ok"' in body and '"bot_api": "ok"' in body, body

    # The Bot API answers errors, then too slowly: not ready, and the body says which dependency.
    harness.emu.inject("getMe", "500", count=None)
    status, body = await get(f"{ops_url}/readyz")
    assert status == 503 and '"bot_api": "error: TelegramServerError"' in body and '"database": "ok"' in body, body
    harness.emu.clear_faults()
    harness.emu.inject("getMe", "delay", count=1, delay=2.0)
    status, body = await get(f"{ops_url}/readyz")
    assert status == 503 and '"bot_api": "timeout"' in body, body
    harness.emu.clear_faults()
    assert (await get(f"{ops_url}/readyz"))[0] == 200
    assert (await get(f"{ops_url}/healthz"))[0] == 200


async def test_readyz_and_metrics_say_the_database_is_down(harness: Harness, tmp_path: Any) -> None:
    """An instance whose database cannot be opened (a PostgreSQL down, here a path that cannot exist)."""
    assert harness.app and harness.bot
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/tsur.db")
    ops = dataclasses.replace(harness.app.ops(harness.bot), engine=engine, sessionmaker=create_sessionmaker(engine))
    port = free_port()
    server = OpsServer(ops, "127.0.0.1", port)
    await server.start()
    try:
        base = f"http://127.0.0.1:{port}"
        status, body = await get(f"{base}/readyz")
        assert status == 503 and '"database": "error: OperationalError"' in body and '"bot_api": "ok"' in body, body
        assert (await get(f"{base}/metrics"))[0] == 503
        assert (await get(f"{base}/healthz"))[0] == 200  # alive: restarting it would not bring the database back
    finally:
        await server.stop()
        await engine.dispose()


async def test_tsur_bot_run_serves_the_ops_port_in_polling_mode(emu: BotAPIEmulator, db_path: Path, tmp_path: Path) -> None:
    """`tsur-bot run` with `[ops] port` set: the process polls and serves /healthz, /readyz and /metrics."""
    port = free_port()
    config = tmp_path / "ops.toml"
    config.write_text(
        f'[bot]\ntoken = "{TOKEN}"\napi_base = "{emu.base_url}"\npolling_timeout = 1\n'
        f'[database]\nurl = "{db_url(db_path)}"\n[logging]\nlevel = "WARNING"\n'
        f'[ops]\nport = {port}\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT, stderr=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # the process migrates nothing (a seeded copy) but imports everything: a few seconds
            with contextlib.suppress(aiohttp.ClientError):
                if (await get(f"{base}/healthz"))[0] == 200:
                    break
            assert process.returncode is None, "the bot exited"
            await asyncio.sleep(0.05)
        status, body = await get(f"{base}/readyz")
        assert status == 200, body
        person = emu.user(1001, language_code="en")
        await person.send_text("/start")
        await person.next_message(timeout=15)
        samples = await scrape(base)
        assert value(samples, "tsur_updates_total", type="message", outcome="handled") == 1
    finally:
        process.terminate()
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]
