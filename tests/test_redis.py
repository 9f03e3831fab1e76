"""`fsm.storage = "redis"`: aiogram's RedisStorage and RedisEventIsolation, shared by every instance of the bot.

Runs when TSUR_TEST_REDIS_URL names a Redis server (CI starts one: .ci/with-services); its database is flushed
before and after each test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from redis.asyncio import Redis

from storage.models import Appeal, FsmRecord
from tests.conftest import Harness
from tests.test_resident_e2e import begin_appeal, english_resident

REDIS_URL = os.environ.get("TSUR_TEST_REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="no Redis: set TSUR_TEST_REDIS_URL (.ci/with-services does)")


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def sections(redis: Redis) -> dict[str, dict[str, Any]]:
    return {"fsm": {"storage": "redis", "redis_url": REDIS_URL}}


async def test_a_dialog_lives_in_redis_and_survives_a_restart(harness: Harness, redis: Redis) -> None:
    assert harness.dp is not None
    assert isinstance(harness.dp.storage, RedisStorage)
    assert isinstance(harness.dp.fsm.events_isolation, RedisEventIsolation)  # one person's updates: a lock in Redis
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Energy")
    await user.send_text("No electricity on our street since yesterday")
    await harness.settle()

    # Another process (the bot restarted, or a second instance) reads the dialog from Redis, not from the database.
    await harness.restart()
    assert await harness.rows(FsmRecord) == []
    keys = {key.decode() for key in await redis.keys("fsm:*")}
    assert any(key.startswith(f"fsm:{user.id}:{user.id}:") and key.endswith(":data") for key in keys), keys

    await user.click("⏭ Skip")
    await harness.settle()
    await user.send_text("Gudermes, Lenina 5")
    await harness.settle()
    await user.click(next(b for b in user.last_message.buttons if "Gudermes" in b))
    await harness.settle()
    await user.click("⚡ Message (10 days)")
    await harness.settle()
    await user.click("✅ Confirm")
    await harness.settle()
    assert "Your appeal is registered" in user.last_message.text
    [appeal] = await harness.rows(Appeal)
    assert appeal.text == "No electricity on our street since yesterday"
    assert appeal.address == "Gudermes, Lenina 5"


async def test_cancel_clears_the_state_in_redis(harness: Harness, redis: Redis) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Energy")
    assert await redis.keys(f"fsm:{user.id}:{user.id}:*")
    await user.send_text("/cancel")
    await harness.settle()
    await user.send_text("No electricity on our street since yesterday")
    await harness.settle()
    # The description step is gone: the text is not taken as an appeal's description.
    await user.send_text("/new")
    await harness.settle()
    assert "Energy" in user.last_message.buttons
    assert await harness.rows(Appeal) == []


async def test_readiness_checks_redis_when_the_dialogs_live_there(harness: Harness, redis: Redis) -> None:
    assert harness.app is not None and harness.bot is not None
    ops = harness.app.ops(harness.bot)
    checks = dict(ops.checks())
    assert set(checks) == {"database", "bot_api", "redis"}
    assert await checks["redis"]() is True  # PING answered
