"""Replies survive a transient Bot API failure (issue 17): a dropped connection, a 500 or a 429 on a direct reply
(not an outbox notification) at each kind of step: a plain message reply, a button press that edits the dialog's
message, an album's summary. Through the emulator's fault injection and the whole bot (bot.session.
ReplyRetryMiddleware): the person gets exactly the answer they should (at most one duplicate for a `send*` whose
answer was lost), no handler error is logged, the dialog goes on. Waits go through the test's clock: nothing sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from emulator import EmulatedUser
from storage.models import Outbox
from tests.conftest import Harness
from tests.test_resident_e2e import begin_appeal, english_resident

Step = Callable[[Harness], Awaitable[tuple[EmulatedUser, str, Callable[[EmulatedUser], Awaitable[None]], str]]]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]


def visible(user: EmulatedUser) -> list[str]:
    return [m.text or "" for m in user.messages if not m.deleted]


def metric(harness: Harness, name: str, **labels: str) -> float:
    assert harness.app is not None
    return harness.app.metrics.registry.get_sample_value(name, labels) or 0.0


# --- the three kinds of step: (the person, the method of the reply, the action, a text the answer shows) ----------


async def plain_message(harness: Harness) -> tuple[EmulatedUser, str, Callable[[EmulatedUser], Awaitable[None]], str]:
    """/start of a new person: "choose your language", a sendMessage."""
    user = harness.emu.user(1001, first_name="Test", language_code="en")

    async def act(person: EmulatedUser) -> None:
        await person.send_text("/start")

    return user, "sendMessage", act, "Choose your language"


async def callback_edit(harness: Harness) -> tuple[EmulatedUser, str, Callable[[EmulatedUser], Awaitable[None]], str]:
    """A topic pressed in /new: the dialog's message is edited to list the topic's subcategories."""
    user = await english_resident(harness)
    await user.send_text("/new")
    await harness.settle()

    async def act(person: EmulatedUser) -> None:
        await person.click("Roads")

    return user, "editMessageText", act, "Roads"


async def album_summary(harness: Harness) -> tuple[EmulatedUser, str, Callable[[EmulatedUser], Awaitable[None]], str]:
    """An album of three photos at the files step: one summary after its last item, a sendMessage."""
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Roads")
    await user.send_text("A big hole in the middle of the road")
    await harness.settle()

    async def act(person: EmulatedUser) -> None:
        await person.send_album(["photo"] * 3)

    return user, "sendMessage", act, "Files attached: 3 of 10"


STEPS: dict[str, Step] = {"message": plain_message, "edit": callback_edit, "album": album_summary}


async def continues(harness: Harness, user: EmulatedUser, step: str) -> None:
    """The dialog goes on from the step the person reached."""
    if step == "message":
        await user.click("✅ English")
        await harness.settle()
        assert "I agree" in str(user.last_message.reply_markup)
    elif step == "edit":
        await user.click(user.last_message.inline_keyboard[0][0][0])
        await harness.settle()
        assert "Describe the problem" in (user.last_message.text or "")
    else:
        done = user.last_message.inline_keyboard[0][0][0]
        assert done.startswith("✅ Done")
        await user.click(done)
        await harness.settle()
        assert "Files attached" not in (user.last_message.text or "")


@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("kind", ["drop", "500", "429"])
async def test_a_transient_failure_of_a_reply_is_retried(
    harness: Harness, caplog: pytest.LogCaptureFixture, step: str, kind: str
) -> None:
    user, method, act, expected = await STEPS[step](harness)
    before = visible(user)
    start = harness.clock.now()
    # Once for a drop (the reply's one retry without an answer) and the 429; twice for the 500 (its two retries).
    fault = harness.emu.inject(method, kind=kind, count=2 if kind == "500" else 1, retry_after=3, chat_id=user.id)

    with caplog.at_level(logging.INFO):
        await act(user)
        await harness.settle()

    assert fault.hits == fault.count
    after = visible(user)
    if method == "sendMessage":
        # Exactly one new message: the answer, once.
        assert len(after) == len(before) + 1 and expected in after[-1]
    else:
        assert len(after) == len(before) and expected in after[-1] and user.last_message.edits >= 1
    calls = [c for c in harness.emu.calls(method) if c.params.get("chat_id") == user.id][-(fault.count + 1) :]
    assert [c.fault for c in calls] == [kind] * fault.count + [None] and calls[-1].ok
    waited = (harness.clock.now() - start).total_seconds()
    assert waited >= {"drop": 0, "500": 0.5 + 1.0, "429": 3}[kind]  # on the test's clock: nothing slept
    assert not errors(caplog) and not tracebacks(caplog)
    reason = {"drop": "dropped", "500": "server", "429": "flood"}[kind]
    assert metric(harness, "tsur_reply_retries_total", reason=reason) == fault.count
    assert not [r for r in await harness.rows(Outbox) if r.template == "reply"]

    await continues(harness, user, step)


@pytest.mark.parametrize("step", sorted(STEPS))
async def test_a_reply_whose_answer_was_lost_is_made_again_once(
    harness: Harness, caplog: pytest.LogCaptureFixture, step: str
) -> None:
    """The emulator carries the call out and drops the connection instead of answering: the bot cannot tell, so a
    `send*` is made again (a duplicate, accepted), an edit is made again and shows the same message."""
    user, method, act, expected = await STEPS[step](harness)
    before = visible(user)
    fault = harness.emu.inject(method, kind="drop_after", chat_id=user.id)

    await act(user)
    await harness.settle()

    assert fault.hits == 1
    after = visible(user)
    new = after[len(before) :]
    if method == "sendMessage":
        # The documented duplicate: the first call worked, its answer was lost, the one retry sent it again.
        assert len(new) == 2 and all(expected in text for text in new)
    else:
        assert not new and expected in after[-1]
    assert metric(harness, "tsur_reply_retries_total", reason="dropped") == 1
    assert not errors(caplog) and not tracebacks(caplog)
    await continues(harness, user, step)


@pytest.mark.parametrize("step", sorted(STEPS))
async def test_a_reply_that_still_fails_is_logged_once_and_the_dialog_goes_on(
    harness: Harness, caplog: pytest.LogCaptureFixture, step: str
) -> None:
    """Three 500s in a row outlive the two retries: the reply is lost, with one warning and no traceback, counted
    in the metrics; the person's next action is answered from where they were."""
    user, method, act, expected = await STEPS[step](harness)
    harness.emu.inject(method, kind="500", count=3, chat_id=user.id)
    before = visible(user)

    with caplog.at_level(logging.WARNING):
        await act(user)
        await harness.settle()

    assert visible(user) == before  # nothing new, and no "Something went wrong" that would meet the same failure
    assert not errors(caplog) and not tracebacks(caplog)
    lost = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "lost" in r.getMessage()]
    assert len(lost) == 1, lost
    assert metric(harness, "tsur_replies_lost_total", reason="server") == 1
    assert metric(harness, "tsur_reply_retries_total", reason="server") == 2

    # The failure is over; the person tries again and the dialog carries on (the first album's photos were kept).
    await act(user)
    await harness.settle()
    assert (expected if step != "album" else "Files attached: 6 of 10") in visible(user)[-1]
    await continues(harness, user, step)


async def test_a_dropped_send_is_not_retried_twice(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """Two dropped connections in a row: a `send*` is made again once only, then the reply is lost (one warning)."""
    user, method, act, _ = await plain_message(harness)
    harness.emu.inject(method, kind="drop", count=2, chat_id=user.id)

    with caplog.at_level(logging.WARNING):
        await act(user)
        await harness.settle()

    assert not user.messages
    assert [c.fault for c in harness.emu.calls(method) if c.params.get("chat_id") == user.id] == ["drop", "drop"]
    assert not errors(caplog) and not tracebacks(caplog)
    assert metric(harness, "tsur_replies_lost_total", reason="dropped") == 1

    await act(user)
    await harness.settle()
    assert "English" in str(user.last_message.reply_markup)


async def test_a_long_flood_ban_sends_a_plain_reply_through_the_outbox(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Flood control longer than a reply may wait (5 s): "choose your language" is queued in the outbox for that
    chat, due when the ban ends; the sender delivers it then, and its buttons work."""
    user, method, act, expected = await plain_message(harness)
    harness.emu.inject(method, kind="429", retry_after=60, chat_id=user.id)
    start = harness.clock.now()

    with caplog.at_level(logging.WARNING):
        await act(user)
        await harness.settle()

    assert not user.messages and (harness.clock.now() - start).total_seconds() < 60
    [row] = [r for r in await harness.rows(Outbox) if r.template == "reply"]
    assert row.status == "pending" and expected in row.params["text"]
    assert not errors(caplog) and not tracebacks(caplog)
    assert metric(harness, "tsur_replies_deferred_total") == 1

    harness.clock.advance(seconds=61)
    await harness.settle()
    assert [m.text for m in user.messages] == [row.params["text"]]
    await continues(harness, user, "message")


async def test_a_long_flood_ban_on_a_dialog_edit_drops_it_and_the_next_message_shows_the_step(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A dialog's window cannot go through the outbox (its buttons would be dead there): the edit is dropped with
    one warning; the dialog's state is unchanged (still the topic step), so the person's next message shows that
    step again, with live buttons, and the press goes through."""
    user, method, act, expected = await callback_edit(harness)
    harness.emu.inject(method, kind="429", retry_after=60, chat_id=user.id)
    before = visible(user)

    with caplog.at_level(logging.WARNING):
        await act(user)
        await harness.settle()

    assert visible(user) == before
    assert not [r for r in await harness.rows(Outbox) if r.template == "reply"]
    assert not errors(caplog) and not tracebacks(caplog)
    assert [r.getMessage() for r in caplog.records if "flood control" in r.getMessage()]
    assert metric(harness, "tsur_replies_lost_total", reason="flood") == 1

    harness.clock.advance(seconds=61)
    await user.send_text("hello")
    await harness.settle()
    assert "Choose the topic" in (user.last_message.text or "")
    await act(user)
    await harness.settle()
    assert expected in (user.last_message.text or "")
    await continues(harness, user, "edit")


async def test_fifty_residents_starting_at_once_all_get_choose_your_language(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The report of the issue: 50 people press /start at once and some replies meet a dropped connection, a 500
    or a short flood control on the way; every one of them gets "choose your language" exactly once."""
    people = [harness.emu.user(5000 + i, first_name=f"R{i}", language_code="en") for i in range(50)]
    kinds = {3: "drop", 17: "drop", 31: "drop", 8: "500", 40: "500", 22: "429", 45: "429"}
    faults = [
        harness.emu.inject("sendMessage", kind=kind, count=2 if kind == "500" else 1, chat_id=people[i].id)
        for i, kind in kinds.items()
    ]

    for person in people:
        await person.send_text("/start")
    await harness.settle(timeout=60)

    assert all(fault.hits == fault.count for fault in faults)
    assert all([m.text for m in person.messages] == [people[0].messages[0].text] for person in people)
    assert "Choose your language" in (people[0].messages[0].text or "")
    assert not errors(caplog) and not tracebacks(caplog)


async def test_a_long_flood_ban_sends_a_reply_with_the_menu_through_the_outbox_with_the_menu(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Most replies carry the person's main menu (a reply keyboard, already in their language): the outbox copy
    carries it too, instead of the reply being dropped."""
    user = await english_resident(harness)
    harness.emu.user(user.id).chat.reply_keyboard = None  # the menu is to come back with the deferred reply
    seen = len(user.messages)
    harness.emu.inject("sendMessage", kind="429", retry_after=60, chat_id=user.id)
    with caplog.at_level(logging.WARNING):
        await user.send_text("blah blah")
        await harness.settle()
    assert len(user.messages) == seen
    [row] = [r for r in await harness.rows(Outbox) if r.template == "reply"]
    assert "keyboard" in (row.params["markup"] or {})
    assert not errors(caplog) and not tracebacks(caplog)

    harness.clock.advance(seconds=61)
    await harness.settle()
    assert user.messages[-1].text == "I did not understand that. Choose an action in the menu below or send /help."
    assert user.reply_keyboard == [["📝 File an appeal"], ["📋 My appeals", "ℹ️ Help"], ["🌐 Language"]]


async def test_after_a_lost_reply_in_a_dialog_the_next_text_gets_the_step_first(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The reply to the description never arrives (three 500s): the person, who saw nothing, writes again. That
    text is not taken as an answer to a step they cannot see: they get the step they are on, then carry on."""
    user = await english_resident(harness)
    await begin_appeal(harness, user, "Roads")
    harness.emu.inject("sendMessage", kind="500", count=3, chat_id=user.id)
    with caplog.at_level(logging.WARNING):
        await user.send_text("A big hole in the middle of the road")
        await harness.settle()
    before = len(user.messages)
    await user.send_text("hello? are you there")
    await harness.settle()
    new = [m.text or "" for m in user.messages[before:]]
    assert new == [
        "We received your previous message, but our answer did not reach you. Here is where you are:",
        "Describe the problem in one message: what happened, where exactly, since when, and what you ask for. "
        "From 10 to 4000 characters.",
    ]
    # The watch is over: the next text is an answer again.
    await user.send_text("A big hole in the middle of the road")
    await harness.settle()
    assert "We received your previous message" not in (user.last_message.text or "")
    assert user.last_message.text != new[-1]  # the dialog moved on to the files
    assert not errors(caplog) and not tracebacks(caplog)


async def test_a_press_answered_too_late_for_telegram_is_done_and_shown_without_an_apology(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram refuses the answer to a press handled after its window (from the polling inbox after a restart, or
    behind a long wait): what the press did is kept and shown, and no "Something went wrong" tells the person
    otherwise."""
    user = await english_resident(harness)
    await user.send_text("/new")
    await harness.settle()
    late = harness.emu.inject(
        "answerCallbackQuery",
        kind="error",
        count=1,
        description="Bad Request: query is too old and response timeout expired or query ID is invalid",
    )

    with caplog.at_level(logging.INFO):
        await user.click("Roads")
        await harness.settle()

    assert late.hits == 1
    assert "Roads" in (user.last_message.text or "")  # the press's screen
    assert not any("Something went wrong" in text for text in visible(user))
    assert not errors(caplog) and not tracebacks(caplog)
    await continues(harness, user, "edit")
