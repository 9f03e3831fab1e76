"""The resident's typed steps (handlers/resident/steps.py) end to end: a poll's «Other», a rating's comment and a
clarification reply share the person's state, and none of them swallows the main menu or wipes another's draft."""

from __future__ import annotations

from typing import Any

import pytest

from storage.models import AppealMessage, PollAnswer, Rating
from tests.conftest import Harness
from tests.factories import TG
from tests.test_polls_e2e import choose, create_poll, only_poll, stored
from tests.test_ratings_e2e import THREE, answered, person, press, world

OTHER = "✍️ Other…"


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [TG["admin"]]}}


async def test_the_menu_is_never_taken_for_a_polls_other_answer(harness: Harness) -> None:
    await world(harness)
    owner = person(harness, "owner")
    admin = harness.emu.user(TG["admin"], language_code="en")
    await create_poll(harness, admin, "Parks?", ["Yes", "No"], other=True)
    poll = await only_poll(harness)
    await choose(harness, owner, "Yes")
    assert await stored(harness, poll.id, TG["owner"]) == {"Yes"}

    await choose(harness, owner, OTHER)
    assert owner.last_message.text.startswith("Type your answer")
    await owner.send_text("📝 File an appeal")
    await harness.settle()
    assert any("New appeal" in (m.text or "") for m in owner.messages[-3:])
    assert await stored(harness, poll.id, TG["owner"]) == {"Yes"}

    await owner.send_text("/cancel")
    await harness.settle()
    await choose(harness, owner, OTHER)
    await owner.send_text("📋 My appeals")
    await harness.settle()
    assert owner.last_message.text == "You have no appeals yet. Press «📝 File an appeal» to send one."
    await owner.send_text("Some words typed later")  # the «Other» step ended with the menu
    await harness.settle()
    assert await stored(harness, poll.id, TG["owner"]) == {"Yes"}
    assert not await harness.rows(PollAnswer, PollAnswer.other_text.is_not(None))


async def test_a_clarification_reply_being_written_is_not_wiped_by_a_polls_other(harness: Harness) -> None:
    people = await world(harness)
    owner = person(harness, "owner")
    admin = harness.emu.user(TG["admin"], language_code="en")
    row = await people.in_progress()
    await people.services.agency.ask_clarification(people["official"], row.id, "Which entrance is it?")
    await harness.settle()
    await owner.click("✍️ Reply")
    await harness.settle()
    await owner.send_text("Entrance 3, the pipe in the basement")
    await harness.settle()
    assert owner.last_message.text == "Text saved. Add files or press «Send the reply»."

    await create_poll(harness, admin, "Parks?", ["Yes", "No"], other=True)
    answers = len(owner.callback_answers)
    await choose(harness, owner, OTHER)
    assert len(owner.callback_answers) == answers + 1
    assert owner.callback_answers[-1]["text"].startswith("You are writing a reply to a clarification.")
    await owner.send_text("📋 My appeals")  # the menu neither adds to the draft nor ends it
    await harness.settle()
    await owner.click("📤 Send the reply")
    await harness.settle()
    [reply] = await harness.rows(AppealMessage, AppealMessage.kind == "clarification_reply")
    assert reply.text == "Entrance 3, the pipe in the basement"


async def test_the_menu_ends_an_optional_rating_comment(harness: Harness) -> None:
    people = await world(harness)
    owner = person(harness, "owner")
    row = await answered(harness, people)
    await press(harness, owner, THREE)
    assert "What could have been better?" in owner.last_message.text
    await owner.send_text("📋 My appeals")
    await harness.settle()
    assert owner.last_message.text.startswith("Your appeals: 1 in all.")  # the list, not "your comment is passed on"
    assert row.number in owner.last_message.buttons[0]
    await owner.send_text("The weather is nice")
    await harness.settle()
    [rating] = await harness.rows(Rating)
    assert (rating.score, rating.comment) == (3, None)
