"""Flood control with the real limits of config.example.toml."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Harness
from tests.test_resident_e2e import begin_appeal, english_resident


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"throttle": {"rate": 3.0, "burst": 20}}


async def test_a_flood_is_throttled_never_crashes(harness: Harness) -> None:
    user = await english_resident(harness)
    for i in range(50):
        await user.send_text(f"spam {i}")
    await harness.settle()
    warnings = [m for m in user.messages if "Too many messages" in m.text]
    assert len(warnings) == 1
    assert len(user.messages) < 50
    # The bot is alive and answers once the flood is over (the throttle reads the injected clock).
    harness.clock.advance(seconds=1)
    await user.send_text("/help")
    await harness.settle()
    assert "How the bot of the Regional Management Center (RMC) works" in user.last_message.text


async def test_an_album_of_ten_is_never_throttled(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Roads")
    await user.send_text("A big hole in the middle of the road")
    await harness.settle()
    for _ in range(3):
        await user.send_album(["photo"] * 10)
    await harness.settle()
    assert "Files attached: 10 of 10" in user.last_message.text
    assert not [m for m in user.messages if "Too many messages" in m.text]
