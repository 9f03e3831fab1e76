"""Residents' and staff's small frictions, end to end (issue 10): the files limit in filing, and /cancel taking the
buttons of the abandoned question away."""

from __future__ import annotations

from typing import Any

import pytest

from storage.models import Appeal, AppealMessage, Attachment
from tests.conftest import Harness
from tests.test_resident_e2e import begin_appeal, english_resident
from tests.test_staff_e2e import ADMIN, staffed_appeal


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


async def test_ten_files_reach_the_limit_and_an_eleventh_is_refused(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Roads")
    await user.send_text("A big hole in the middle of the road")
    await harness.settle()
    await user.send_album(["photo"] * 9)
    await harness.settle()
    assert "Files attached: 9 of 10" in user.last_message.text and "Send more" in user.last_message.text
    await user.send_document(file_name="plan.pdf")
    await harness.settle()
    summary = user.last_message
    assert "Files attached: 10 of 10" in summary.text and "the limit" in summary.text
    assert "Send more" not in summary.text
    assert summary.buttons == ["✅ Done (10)", "⬅️ Back"]  # no more «Remove all» to start again from here

    await user.send_photo()
    await harness.settle()
    refusal = user.last_message
    assert "was not added" in refusal.text and "at most 10 files" in refusal.text
    assert "Files attached: 10 of 10" in refusal.text and refusal.buttons == ["✅ Done (10)", "⬅️ Back"]
    await user.send_album(["photo"] * 3)
    await harness.settle()
    assert "3 files were not added" in user.last_message.text

    await user.click("✅ Done (10)")
    await harness.settle()
    await user.send_text("Grozny, Mira street 12")
    await harness.settle()
    await user.click("Grozny")
    await harness.settle()
    await user.click("⚡ Message (10 days)")
    await harness.settle()
    await user.click("✅ Confirm")
    await harness.settle()
    [appeal] = await harness.rows(Appeal)
    assert len(await harness.rows(Attachment, Attachment.appeal_id == appeal.id)) == 10


async def test_cancel_removes_the_buttons_of_the_abandoned_filing_question(harness: Harness) -> None:
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Roads")
    await user.send_text("A big hole in the middle of the road")
    await harness.settle()
    question = user.last_message
    assert "⏭ Skip" in question.buttons
    await user.send_text("/cancel")
    await harness.settle()
    assert "Cancelled" in user.last_message.text
    assert user.message(question.message_id).buttons == []


@pytest.mark.parametrize("button", ["❓ Ask the resident", "↪️ Redirect"])
async def test_cancel_removes_the_buttons_of_a_staff_prompt_or_picker(harness: Harness, button: str) -> None:
    _resident, _coordinator, official, _appeal, _name = await staffed_appeal(harness)
    await official.click(button)
    await harness.settle()
    screen = official.last_message
    assert "⬅️ Back" in screen.buttons
    await official.send_text("/cancel")
    await harness.settle()
    assert "Cancelled" in official.last_message.text
    assert official.message(screen.message_id).buttons == []


async def test_cancel_removes_the_send_button_of_an_abandoned_clarification_reply(harness: Harness) -> None:
    resident, _coordinator, official, _appeal, _name = await staffed_appeal(harness)
    await official.click("❓ Ask the resident")
    await harness.settle()
    await official.send_text("Which entrance of the building has no water?")
    await harness.settle()
    await resident.click("✍️ Reply")
    await harness.settle()
    await resident.send_text("Entrance 3")
    await harness.settle()
    await resident.send_photo()
    await harness.settle()
    with_send = [m for m in resident.messages if "📤 Send the reply" in m.buttons]
    assert len(with_send) == 2
    await resident.send_text("/cancel")
    await harness.settle()
    assert "Cancelled" in resident.last_message.text
    assert all(resident.message(m.message_id).buttons == [] for m in with_send)
    assert [m.kind for m in await harness.rows(AppealMessage)] == ["clarification_question"]



async def test_a_refused_stale_screen_loses_its_buttons(harness: Harness) -> None:
    """A screen left behind by a newer one (a card opened from a notification above the queue) keeps buttons that can
    only be refused: the first press on one says so and takes them away, so the chat shows live buttons only."""
    _resident, coordinator, official, appeal, _agency = await staffed_appeal(harness)
    queue = coordinator.last_message  # the queue again, after routing from it
    assert "Queue" in queue.text and queue.buttons
    await official.click("✅ Final answer")
    await harness.settle()
    await official.send_text("The water is back.")
    await harness.settle()
    await official.click("📤 Send")
    await harness.settle()
    notification = coordinator.last_message
    assert appeal.number in notification.text and notification.message_id != queue.message_id
    await coordinator.click("Open", message_id=notification.message_id)
    await harness.settle()
    assert coordinator.message(notification.message_id).text.startswith(f"Appeal № {appeal.number}")

    await coordinator.click(queue.buttons[-1], message_id=queue.message_id)
    await harness.settle()
    assert coordinator.callback_answers[-1]["text"] == "This button is no longer active."
    assert coordinator.message(queue.message_id).buttons == []
    assert coordinator.message(queue.message_id).text == queue.text
    # The card above it works as before.
    await coordinator.click("✅ Approve the answer", message_id=notification.message_id)
    await harness.settle()
    assert coordinator.callback_answers[-1]["text"] == "Approved: the resident receives the answer."
