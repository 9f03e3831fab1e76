"""Polls (социология) end to end through the emulator: an admin or editor creates a poll in the dialog, residents
answer on the poll's message, admins, editors and analysts read the results, the chart and the CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import struct
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from aiogram_dialog.utils import CB_SEP, remove_intent_id
from sqlalchemy import select

from bot.callbacks import PollAction, PollCb
from bot.charts import chart_size
from bot.services.polls import SMALL_CELL
from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import Outbox, Poll, PollAnswer, PollOption, PollRecipient
from tests import factories
from tests.conftest import Harness
from tests.test_staff_e2e import category_id, district_id, join

ADMIN = 9000
POLL = "📊 Poll"


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


async def person(
    harness: Harness, tg_id: int, lang: str = "en", district: str | None = None, category: str = "housing_water"
) -> EmulatedUser:
    """A consented resident whose chat with the bot is open, with an appeal in `district` (if given)."""
    assert harness.app is not None
    services = harness.app.services
    user = harness.emu.user(tg_id, language_code="en")
    user.open_chat()
    actor = await factories.resident(services, tg_id)
    actor = await services.users.set_locale(actor, lang)
    if district is not None:
        await services.appeals.file(
            actor,
            factories.draft(
                services,
                draft_id=f"d-{tg_id}-{district}-{category}",
                category_id=category_id(harness, category),
                district_id=district_id(harness, district),
                attachments=(),
            ),
        )
    return user


async def step(harness: Harness, user: EmulatedUser, action: str, value: str) -> None:
    if action == "click":
        await user.click(value)
    else:
        await user.send_text(value)
    await harness.settle()


async def create_poll(
    harness: Harness,
    author: EmulatedUser,
    question: str,
    options: list[str],
    *,
    multiple: bool = False,
    other: bool = False,
    audience: str = "Everyone who consented",
    pick: tuple[str, ...] = (),
    closes: str = "In 3 d.",
    publish: bool = True,
) -> str:
    """Through the dialog, as an author does it; returns the preview's text."""
    await step(harness, author, "text", "/polls")
    await step(harness, author, "click", "➕ New poll")
    await step(harness, author, "text", question)
    for option in options:
        await step(harness, author, "text", option)
    if len(options) < 10:
        await step(harness, author, "click", f"✅ Done ({len(options)} options)")
    await step(harness, author, "click", "Several answers" if multiple else "One answer")
    await step(harness, author, "click", "Yes, with «Other»" if other else "No, only the options")
    await step(harness, author, "click", audience)
    for value in pick:
        await step(harness, author, "click", value)
    if audience == "Chosen districts":
        await step(harness, author, "click", f"✅ Done ({len(pick)} chosen)")
    await step(harness, author, "click" if closes.startswith("In ") else "text", closes)
    preview = author.last_message.text
    assert "Preview" in preview, preview
    if publish:
        await step(harness, author, "click", "🚀 Publish now")
    return preview


def ballot(user: EmulatedUser, question: str = "") -> BotMessage:
    """The latest poll message (of `question`) in the chat."""
    found = [m for m in user.messages if (m.text or "").startswith(POLL) and question in (m.text or "")]
    assert found, user.dump()
    return found[-1]


async def choose(harness: Harness, user: EmulatedUser, label: str, question: str = "") -> None:
    message = ballot(user, question)
    data = None
    for row in message.inline_keyboard:
        for text, value in row:
            if text.removeprefix("✅ ") == label:
                data = value
    assert data is not None, (label, message.buttons)
    await user.press_callback(message.message_id, data)
    await harness.settle()


async def stored(harness: Harness, poll_id: int, user_tg: int) -> set[str]:
    """The stored answer of a resident: option texts, and "other:<text>"."""
    assert harness.app is not None
    actor = await harness.app.services.users.identify(user_tg)
    async with await harness.session() as session:
        rows = (
            await session.execute(
                select(PollOption.text, PollAnswer.other_text)
                .select_from(PollAnswer)
                .outerjoin(PollOption, PollOption.id == PollAnswer.option_id)
                .where(PollAnswer.poll_id == poll_id, PollAnswer.user_id == actor.id)
            )
        ).all()
    return {text if text is not None else f"other:{other}" for text, other in rows}


async def only_poll(harness: Harness) -> Poll:
    polls = await harness.rows(Poll)
    return polls[-1]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def file_bytes(harness: Harness, message: BotMessage) -> bytes:
    assert message.file_id is not None
    return harness.emu.state.files[message.file_id].content


# --- the whole way ------------------------------------------------------------------------------------------


async def test_a_poll_from_creation_to_chart_and_csv(harness: Harness) -> None:
    grozny = [await person(harness, 2000 + i, district="grozny") for i in range(6)]
    argun = [await person(harness, 2100 + i, district="argun") for i in range(3)]
    nowhere = [await person(harness, 2200 + i) for i in range(3)]
    vedeno = [await person(harness, 2300 + i, district="vedensky") for i in range(5)]
    admin = harness.emu.user(ADMIN, language_code="en")
    preview = await create_poll(
        harness, admin, "Is the street lighting in your yard enough?", ["Yes", "No"], other=True
    )
    assert "It will be sent to 17 residents." in preview
    poll = await only_poll(harness)
    assert (poll.status, poll.recipients) == ("open", 17)
    assert "Published: sent to 17 residents." in admin.callback_answers[-1]["text"]

    # Every resident has the poll, in their language, with the options and «Other» as buttons.
    for user in grozny + argun + nowhere + vedeno:
        assert ballot(user).buttons == ["Yes", "No", "✍️ Other…"]
    # What each answers, and the count the results must show, computed here.
    plan: dict[EmulatedUser, str] = {}
    plan.update({u: "Yes" for u in grozny[:5]})
    plan[grozny[5]] = "No"
    plan.update({argun[0]: "Yes", argun[1]: "Yes"})
    plan.update({u: "No" for u in nowhere})
    plan.update({u: "No" for u in vedeno})
    for user, label in plan.items():
        await choose(harness, user, label)
        assert user.callback_answers[-1]["text"] == "Your answer is saved."
        assert f"Your answer: {label}" in ballot(user).text
        assert f"✅ {label}" in ballot(user).buttons
    await choose(harness, argun[2], "✍️ Other…")
    assert "Type your answer" in argun[2].last_message.text
    await argun[2].send_text("Only one lamp <b>works</b>")
    await harness.settle()
    assert argun[2].last_message.text == "Your answer is saved."
    assert "Your answer: Other: Only one lamp <b>works</b>" in ballot(argun[2]).text  # escaped, shown as typed
    expected = {"Yes": 0, "No": 0, "Other (free text)": 1}
    for label in plan.values():
        expected[label] += 1
    answered = len(plan) + 1

    # The results: counts and percentages per option, the breakdown with small districts merged.
    await step(harness, admin, "text", "/polls")
    await step(harness, admin, "click", next(b for b in admin.last_message.buttons if f"№ {poll.id}" in b))
    text = admin.last_message.text
    assert f"Sent to 17, answered {answered}." in text
    for n, (label, count) in enumerate(expected.items(), 1):
        assert f"{n}. {label} — {count} ({100 * count / answered:.1f}%)" in text, text
    assert "Vedensky District (5 answered): #2 5" in text, text  # every cell 0 or at least 5: listed
    # Grozny's single "No" would be told by subtraction: Grozny joins the others, which show only their number
    # (Grozny's 6, Argun's 3 and the 3 without an appeal).
    assert "Other districts: 12 answered" in text, text
    assert "Grozny" not in text and "Argun" not in text and "&lt;" not in text and "<5" not in text

    # The chart: a real PNG of the expected size, sent as a photo.
    await step(harness, admin, "click", "📊 Chart")
    photo = next(m for m in reversed(admin.messages) if m.kind == "photo")
    assert photo.text == f"Poll № {poll.id}: answers by option"
    assert png_size(file_bytes(harness, photo)) == chart_size(len(expected))
    # The CSV of the aggregated results: the same numbers, and nobody's id in it.
    await step(harness, admin, "click", "📄 CSV")
    document = next(m for m in reversed(admin.messages) if m.kind == "document")
    table = list(csv.reader(io.StringIO(file_bytes(harness, document).decode("utf-8-sig"))))
    assert table[0] == ["Section", "District", "Answer", "Answers", "Percent"]
    totals = {row[2]: int(row[3]) for row in table[1:] if row[0] == "All"}
    assert totals == expected
    by_district = [row for row in table[1:] if row[0] == "By district"]
    assert by_district == [
        ["By district", "Vedensky District", "No", "5", ""],
        ["By district", "Other districts", "Respondents", "12", ""],
    ]
    assert all(int(row[3]) >= SMALL_CELL for row in by_district)
    assert not any(str(u.id) in ",".join(r) for u in plan for r in table)


async def test_every_audience_filter(harness: Harness) -> None:
    housing_grozny_ru = await person(harness, 3001, "ru", "grozny", "housing_water")
    roads_argun_en = await person(harness, 3002, "en", "argun", category_code := road_category(harness))
    nothing_ce = await person(harness, 3003, "ce")
    roads_grozny_en = await person(harness, 3004, "en", "grozny", category_code)
    # Filed in Argun first, then in Grozny: the latest appeal's district counts.
    moved = await person(harness, 3005, "en", "argun")
    await harness.app.services.appeals.file(  # type: ignore[union-attr]
        await harness.app.services.users.identify(3005),  # type: ignore[union-attr]
        factories.draft(harness.app.services, draft_id="moved-2", district_id=district_id(harness, "grozny"), attachments=()),  # type: ignore[union-attr]
    )
    declined = harness.emu.user(3006, language_code="en")
    declined.open_chat()
    actor = await harness.app.services.users.identify(3006)  # type: ignore[union-attr]
    await harness.app.services.users.answer_consent(actor, False)  # type: ignore[union-attr]
    editor = await join(harness, 3100, "editor")
    everyone = {housing_grozny_ru, roads_argun_en, nothing_ce, roads_grozny_en, moved}

    cases = [
        ("Everyone who consented", (), everyone),
        ("Chosen districts", ("Grozny",), {housing_grozny_ru, roads_grozny_en, moved}),
        ("Residents of one language", ("Нохчийн",), {nothing_ce}),
        ("Residents who filed in a topic", (block_name(harness, "roads"),), {roads_argun_en, roads_grozny_en}),
    ]
    for n, (audience, pick, expected) in enumerate(cases):
        question = f"Question {n}?"
        preview = await create_poll(harness, editor, question, ["A", "B"], audience=audience, pick=pick)
        assert f"It will be sent to {len(expected)} residents." in preview, preview
        got = {u for u in everyone | {declined} if any(question in (m.text or "") for m in u.messages)}
        assert got == expected, (audience, sorted(u.id for u in got))
        poll = await only_poll(harness)
        assert not any((m.text or "").startswith(POLL) for m in editor.messages)  # staff are not residents here
        recipients = await harness.rows(PollRecipient, PollRecipient.poll_id == poll.id)
        assert len(recipients) == len(expected)
    # The district snapshot of a recipient is the district of their latest appeal.
    moved_actor = await harness.app.services.users.identify(3005)  # type: ignore[union-attr]
    [snapshot] = await harness.rows(PollRecipient, PollRecipient.user_id == moved_actor.id, PollRecipient.poll_id == 1)
    assert snapshot.district_id == district_id(harness, "grozny")


def road_category(harness: Harness) -> str:
    assert harness.app is not None
    directory = harness.app.services.directory
    block = next(b for b in directory.blocks() if b.code == "roads")
    return directory.categories(block.id)[0].code


def block_name(harness: Harness, code: str) -> str:
    assert harness.app is not None
    return next(b.name("en") for b in harness.app.services.directory.blocks() if b.code == code)


async def test_scheduled_publishing_survives_a_restart_and_goes_out_once(harness: Harness) -> None:
    residents = [await person(harness, 4000 + i) for i in range(3)]
    admin = harness.emu.user(ADMIN, language_code="en")
    assert harness.app is not None
    tz = harness.settings.tz
    at = (harness.clock.now() + timedelta(days=1)).astimezone(tz).strftime("%d.%m.%Y %H:%M")
    await create_poll(harness, admin, "Scheduled?", ["A", "B"], closes="In 7 d.", publish=False)
    await step(harness, admin, "click", "🕒 Publish later")
    await step(harness, admin, "text", at)
    poll = await only_poll(harness)
    assert f"Poll № {poll.id} will be published on {at}." in admin.last_message.text
    assert poll.status == "scheduled"
    await harness.app.services.polls.tick()  # not yet
    await harness.settle()
    assert all(not any(m.text and "Scheduled?" in m.text for m in u.messages) for u in residents)

    harness.clock.advance(days=1, minutes=1)
    await harness.restart()
    assert harness.app is not None
    # Two instances' sweeps at the same moment: the claim in the database lets one publish.
    await asyncio.gather(harness.app.services.polls.tick(), harness.app.services.polls.tick())
    await harness.app.services.polls.tick()
    await harness.settle()
    for user in residents:
        assert sum(1 for m in user.messages if m.text and "Scheduled?" in m.text) == 1
    assert len(await harness.rows(Outbox, Outbox.template == "poll")) == 3
    poll = await only_poll(harness)
    assert (poll.status, poll.recipients) == ("open", 3)


async def test_a_poll_to_nobody_is_not_published(harness: Harness) -> None:
    await person(harness, 4200, district="grozny")
    admin = harness.emu.user(ADMIN, language_code="en")
    preview = await create_poll(harness, admin, "Nobody?", ["A", "B"], audience="Residents of one language", pick=("Нохчийн",))
    assert "It will be sent to 0 residents." in preview
    assert admin.callback_answers[-1]["text"] == (
        "Nobody is in this audience yet: the poll would reach no one. Choose another audience."
    )
    assert not await harness.rows(Poll)
    assert "Preview" in admin.last_message.text  # still on the preview, free to go back


async def test_polls_keep_the_quiet_hours(harness: Harness) -> None:
    """"Publish now" at night waits for the morning; a chosen time at night is refused with the reason."""
    resident = await person(harness, 4100)
    admin = harness.emu.user(ADMIN, language_code="en")
    assert harness.app is not None
    tz = harness.settings.tz
    night = datetime.combine(harness.clock.now().astimezone(tz).date(), time(23, 30), tzinfo=tz)
    harness.clock.set(night)
    await create_poll(harness, admin, "At night?", ["A", "B"])
    assert "Quiet hours: residents are not disturbed now. The poll will go out at" in admin.callback_answers[-1]["text"]
    morning = datetime.combine(night.date() + timedelta(days=1), time(9, 0), tzinfo=tz)
    assert f"{morning:%d.%m.%Y %H:%M}" in admin.callback_answers[-1]["text"]
    poll = await only_poll(harness)
    assert (poll.status, poll.recipients) == ("scheduled", 0)
    await harness.app.services.polls.tick()
    await harness.settle()
    assert not any("At night?" in (m.text or "") for m in resident.messages)
    harness.clock.set(morning)
    await harness.app.services.polls.tick()
    await harness.settle()
    assert sum("At night?" in (m.text or "") for m in resident.messages) == 1

    await create_poll(harness, admin, "Scheduled at night?", ["A", "B"], closes="In 7 d.", publish=False)
    await step(harness, admin, "click", "🕒 Publish later")
    at_night = f"{morning + timedelta(days=1, hours=-7):%d.%m.%Y %H:%M}"  # 02:00
    await step(harness, admin, "text", at_night)
    assert (
        f"{at_night} is within the quiet hours (21:00–09:00), when residents are not disturbed. "
        "Please choose another time." in admin.last_message.text
    )
    assert len(await harness.rows(Poll)) == 1  # nothing stored; the same step waits for another time
    later = f"{morning + timedelta(days=1, hours=2):%d.%m.%Y %H:%M}"
    await step(harness, admin, "text", later)
    assert "will be published on " + later in admin.last_message.text


async def test_changing_an_answer_multiple_choice_and_other(harness: Harness) -> None:
    resident = await person(harness, 5001)
    admin = harness.emu.user(ADMIN, language_code="en")
    await create_poll(harness, admin, "Single?", ["A", "B"])
    single = await only_poll(harness)
    await choose(harness, resident, "A")
    await choose(harness, resident, "B")  # changed: B replaces A
    assert await stored(harness, single.id, 5001) == {"B"}
    assert "Your answer: B" in ballot(resident).text

    await create_poll(harness, admin, "Several?", ["Roads", "Light", "Water"], multiple=True, other=True)
    several = await only_poll(harness)
    assert ballot(resident).buttons == ["Roads", "Light", "Water", "✍️ Other…", "📤 Submit"]
    await choose(harness, resident, "Roads")
    await choose(harness, resident, "Light")
    await choose(harness, resident, "Light")  # unticked
    assert ballot(resident).buttons[:3] == ["✅ Roads", "Light", "Water"]
    assert "Ticked, not submitted yet: Roads" in ballot(resident).text
    assert await stored(harness, several.id, 5001) == set()  # nothing stored before «Submit»
    await choose(harness, resident, "✍️ Other…")
    await resident.send_text("Parks")
    await harness.settle()
    assert "Press «Submit»" in resident.last_message.text
    await choose(harness, resident, "📤 Submit")
    assert resident.callback_answers[-1]["text"] == "Your answer is saved."
    assert await stored(harness, several.id, 5001) == {"Roads", "other:Parks"}
    assert "Your answer: Roads; Other: Parks" in ballot(resident).text
    # Changed until the poll closes: «Other» unticked, Water ticked, submitted again.
    await choose(harness, resident, "✍️ Other…")  # ticked: pressing it again unticks
    await choose(harness, resident, "Water")
    await choose(harness, resident, "📤 Submit")
    assert await stored(harness, several.id, 5001) == {"Roads", "Water"}
    # One respondent, each ticked option once (the results themselves wait for 5 respondents).
    assert len(await harness.rows(PollRecipient, PollRecipient.poll_id == several.id, PollRecipient.answered_at.is_not(None))) == 1
    assert len(await harness.rows(PollAnswer, PollAnswer.poll_id == several.id)) == 2


async def test_the_closing_time_ends_the_answers(harness: Harness) -> None:
    resident = await person(harness, 6001)
    admin = harness.emu.user(ADMIN, language_code="en")
    await create_poll(harness, admin, "Closing?", ["A", "B"], closes="In 1 d.")
    poll = await only_poll(harness)
    await choose(harness, resident, "A")
    harness.clock.advance(days=1, seconds=1)
    # Past its time the poll takes no answer, even before the sweep marks it closed.
    await choose(harness, resident, "B")
    assert resident.callback_answers[-1] == {**resident.callback_answers[-1], "show_alert": True}
    assert resident.callback_answers[-1]["text"] == "This poll is closed; answers are no longer accepted."
    # The refusal also redraws the ballot as closed: no live-looking buttons, the stored answer kept.
    assert ballot(resident).buttons == []
    assert "The poll is closed." in ballot(resident).text and "Your answer: A" in ballot(resident).text
    assert harness.app is not None
    assert await harness.app.services.polls.tick() == 1
    assert (await only_poll(harness)).status == "closed"
    [option_b] = [o for o in await harness.rows(PollOption, PollOption.poll_id == poll.id) if o.text == "B"]
    await resident.press_callback(ballot(resident).message_id, PollCb(a=PollAction.choose, p=poll.id, o=option_b.id).pack())
    await harness.settle()
    assert resident.callback_answers[-1]["text"] == "This poll is closed; answers are no longer accepted."
    assert await stored(harness, poll.id, 6001) == {"A"}

    # An author closes a poll before its time from its results screen.
    await create_poll(harness, admin, "Closed early?", ["C", "D"], closes="In 7 d.")
    early = await only_poll(harness)
    assert "⏹ Close the poll" in admin.last_message.buttons  # publishing leads to the results
    await step(harness, admin, "click", "⏹ Close the poll")
    assert admin.callback_answers[-1]["text"] == "The poll is closed."
    assert (await only_poll(harness)).status == "closed"
    assert "⏹ Close the poll" not in admin.last_message.buttons
    closed_at = harness.clock.now().astimezone(harness.settings.tz)
    assert f"(closed {closed_at:%d.%m.%Y %H:%M})" in admin.last_message.text  # when it closed, not when it would
    await choose(harness, resident, "C", "Closed early?")
    assert resident.callback_answers[-1]["text"] == "This poll is closed; answers are no longer accepted."
    assert await stored(harness, early.id, 6001) == set()


async def test_bad_input_is_refused_politely_and_changes_nothing(harness: Harness) -> None:
    resident = await person(harness, 7001, district="grozny")
    outsider = await person(harness, 7002, "ru")
    admin = harness.emu.user(ADMIN, language_code="en")
    await create_poll(harness, admin, "First?", ["A", "B"], other=True, audience="Chosen districts", pick=("Grozny",))
    first = await only_poll(harness)
    await create_poll(harness, admin, "Second?", ["C", "D"], audience="Chosen districts", pick=("Grozny",))
    second = await only_poll(harness)
    [foreign] = [o for o in await harness.rows(PollOption, PollOption.poll_id == second.id) if o.text == "C"]
    message = [m for m in resident.messages if m.text and "First?" in m.text][-1]
    refusals = []
    for data, said in (
        (PollCb(a=PollAction.choose, p=9999, o=1).pack(), "This poll was not sent to you."),
        (PollCb(a=PollAction.choose, p=first.id, o=foreign.id).pack(), "This answer is not one of the poll's options."),
        (PollCb(a=PollAction.submit, p=first.id).pack(), "This answer is not one of the poll's options."),
        (f"pl:c:{first.id}:x", None),
        (PollCb(a=PollAction.other, p=second.id).pack(), "This poll has no free-text answer."),
    ):
        before = len(resident.callback_answers)
        await resident.press_callback(message.message_id, data)
        await harness.settle()
        assert len(resident.callback_answers) == before + 1
        if said is not None:
            assert resident.callback_answers[-1] == {**resident.callback_answers[-1], "text": said, "show_alert": True}
        refusals.append(resident.callback_answers[-1])
    # Not a recipient: a resident outside the audience presses a copy of the button.
    outsider.open_chat()
    await outsider.send_text("/start")
    await harness.settle()
    await outsider.press_callback(outsider.last_message.message_id, PollCb(a=PollAction.choose, p=first.id, o=1).pack())
    await harness.settle()
    assert outsider.callback_answers[-1]["text"] == "Этот опрос вам не отправлялся."
    assert await harness.rows(PollAnswer) == []

    # A 5,000-character «Other» and a sticker where the text is expected: refused, asked again.
    await choose(harness, resident, "✍️ Other…", "First?")
    await resident.send_text("x" * 5000)
    await harness.settle()
    assert resident.last_message.text == "The answer is too long: at most 500 characters. Please shorten it."
    await resident.send_sticker()
    await harness.settle()
    assert resident.last_message.text == "Please type your answer as text, or send /cancel."
    assert await harness.rows(PollAnswer) == []
    await resident.send_text("Fine now")
    await harness.settle()
    assert await stored(harness, first.id, 7001) == {"other:Fine now"}

    # A non-editor cannot create a poll: the analyst reads results but has no «New poll», and a forged press is refused.
    analyst = await join(harness, 7100, "analyst")
    await step(harness, analyst, "text", "/staff")  # the staff menu leads to the polls too
    await step(harness, analyst, "click", "📊 Polls")
    screen = analyst.last_message
    assert "➕ New poll" not in screen.buttons and any(f"№ {first.id}" in b for b in screen.buttons)
    intent, _data = remove_intent_id(screen.inline_keyboard[0][0][1] or "")
    polls_before = len(await harness.rows(Poll))
    await analyst.press_callback(screen.message_id, f"{intent}{CB_SEP}new")
    await harness.settle()
    assert analyst.callback_answers[-1]["text"] == "This is not available to you."
    assert len(await harness.rows(Poll)) == polls_before
    await step(harness, analyst, "click", next(b for b in analyst.last_message.buttons if f"№ {first.id}" in b))
    assert "Sent to 1." in analyst.last_message.text and "answered 1" not in analyst.last_message.text
    assert "Results are shown once at least 5 residents have answered (now: fewer than 5)." in analyst.last_message.text
    assert "⏹ Close the poll" not in analyst.last_message.buttons
    # A forged poll id in the list's picker: refused, nothing shown.
    await step(harness, analyst, "click", "⬅️ Back")
    screen = analyst.last_message
    intent, _data = remove_intent_id(screen.inline_keyboard[0][0][1] or "")
    await analyst.press_callback(screen.message_id, f"{intent}{CB_SEP}poll:9999")
    await harness.settle()
    assert analyst.callback_answers[-1]["text"] == "This option is no longer available."
    # A resident has no polls menu at all; a coordinator neither.
    await step(harness, resident, "text", "/polls")
    assert resident.last_message.text == "This is not available to you."
    # A sticker where the author is to type the question: a word, and the same step again.
    await step(harness, admin, "text", "/polls")
    await step(harness, admin, "click", "➕ New poll")
    await admin.send_sticker()
    await harness.settle()
    assert "Please type the text, or /cancel." in admin.last_message.text
    assert "Type the question" in admin.last_message.text


# --- privacy, the free-text answers, and the resident's steps ------------------------------------------------


async def open_results(harness: Harness, reader: EmulatedUser, poll_id: int) -> str:
    await step(harness, reader, "text", "/polls")
    await step(harness, reader, "click", next(b for b in reader.last_message.buttons if f"№ {poll_id}" in b))
    return reader.last_message.text


async def test_no_results_while_fewer_than_five_answered(harness: Harness) -> None:
    residents = [await person(harness, 8000 + i, district="grozny") for i in range(5)]
    admin = harness.emu.user(ADMIN, language_code="en")
    await create_poll(harness, admin, "Few?", ["Yes", "No"], other=True)
    poll = await only_poll(harness)
    for user in residents[:3]:
        await choose(harness, user, "Yes")
    await choose(harness, residents[3], "✍️ Other…")
    await residents[3].send_text("Only me")
    await harness.settle()
    hidden = "Results are shown once at least 5 residents have answered (now: fewer than 5)."
    text = await open_results(harness, admin, poll.id)
    assert hidden in text and "Sent to 5." in text, text
    # Neither the counts, nor the exact number under 5, nor a breakdown.
    assert "answered 4" not in text and "Yes —" not in text and "Grozny" not in text and "Other districts" not in text
    assert "📝 Other answers" not in admin.last_message.buttons
    files = len([m for m in admin.messages if m.kind in ("photo", "document")])
    for button in ("📊 Chart", "📄 CSV"):
        await step(harness, admin, "click", button)
        assert admin.callback_answers[-1] == {**admin.callback_answers[-1], "text": hidden, "show_alert": True}
    assert len([m for m in admin.messages if m.kind in ("photo", "document")]) == files
    # The fifth answer: everything is shown.
    await choose(harness, residents[4], "No")
    await step(harness, admin, "click", "🔄 Refresh")
    text = admin.last_message.text
    assert hidden not in text and "Sent to 5, answered 5." in text and "1. Yes — 3 (60.0%)" in text, text
    # Grozny has cells of 3, 1 and 1: only the merged row, with its number of respondents.
    assert "Other districts: 5 answered" in text and "Grozny" not in text, text


async def test_readers_get_the_free_text_answers_as_a_file(harness: Harness) -> None:
    residents = [await person(harness, 8100 + i, district="argun") for i in range(6)]
    admin = harness.emu.user(ADMIN, language_code="en")
    await create_poll(harness, admin, "Lamps?", ["Enough", "Too few"], other=True)
    poll = await only_poll(harness)
    texts = ["Only one lamp <b>works</b>", "Тёмный двор & подъезд", "Fix it\nplease"]
    for user, said in zip(residents, texts, strict=False):
        await choose(harness, user, "✍️ Other…")
        await user.send_text(said)
        await harness.settle()
    await choose(harness, residents[3], "Enough")
    text = await open_results(harness, admin, poll.id)
    assert "Results are shown once" in text
    assert "📝 Other answers" not in admin.last_message.buttons  # the same ≥5 rule
    await choose(harness, residents[4], "Enough")
    await step(harness, admin, "click", "🔄 Refresh")
    assert "📝 Other answers" in admin.last_message.buttons
    await step(harness, admin, "click", "📝 Other answers")
    document = next(m for m in reversed(admin.messages) if m.kind == "document")
    assert document.text == f"Poll № {poll.id}: the free-text «Other» answers (3), in random order"
    assert harness.emu.state.files[document.file_id or ""].meta.get("file_name") == f"poll-{poll.id}-other.txt"
    content = file_bytes(harness, document).decode("utf-8")
    for said in texts:
        assert said in content  # a text file: shown as typed
    ids = [str(u.id) for u in residents] + [str(a.id) for a in await harness.rows(PollAnswer)]
    assert not any(f"{i}\n" in content or f" {i} " in content for i in ids)
    assert "Argun" not in content and str(harness.clock.now().year) not in content
    # An analyst reads them too; a poll without free-text answers has no such button.
    analyst = await join(harness, 8200, "analyst")
    await open_results(harness, analyst, poll.id)
    assert "📝 Other answers" in analyst.last_message.buttons
    await create_poll(harness, admin, "No texts?", ["A", "B"], other=True)
    bare = await only_poll(harness)
    for user in residents[:5]:
        await choose(harness, user, "A", "No texts?")
    await open_results(harness, admin, bare.id)
    assert "📝 Other answers" not in admin.last_message.buttons


async def test_publish_now_pressed_again_after_a_failure_publishes_the_same_poll(harness: Harness) -> None:
    residents = [await person(harness, 8300 + i) for i in range(3)]
    admin = harness.emu.user(ADMIN, language_code="en")
    assert harness.app is not None
    polls = harness.app.services.polls
    polls.batch = 2
    wake = polls.on_commit
    failures = []

    def fail_once() -> None:  # the database goes away after the first batch of recipients
        if not failures:
            failures.append(1)
            raise ConnectionError("lost")
        wake()

    polls.on_commit = fail_once
    await create_poll(harness, admin, "Twice?", ["A", "B"])
    assert failures
    assert "Sending was interrupted. Press «🚀 Publish now» again to send the poll to the rest." in admin.last_message.text
    assert "Preview" in admin.last_message.text
    assert len(await harness.rows(Poll)) == 1 and (await only_poll(harness)).recipients == 2  # one batch went out
    await step(harness, admin, "click", "🚀 Publish now")
    polls.on_commit = wake
    assert len(await harness.rows(Poll)) == 1
    poll = await only_poll(harness)
    assert (poll.status, poll.recipients) == ("open", 3)
    for user in residents:
        assert sum(1 for m in user.messages if "Twice?" in (m.text or "")) == 1
    # A new poll after that is a new one.
    await create_poll(harness, admin, "Another?", ["A", "B"])
    assert len(await harness.rows(Poll)) == 2


async def test_an_option_pressed_during_the_other_step_ends_it(harness: Harness) -> None:
    resident = await person(harness, 8400)
    admin = harness.emu.user(ADMIN, language_code="en")
    await create_poll(harness, admin, "Step?", ["A", "B"], other=True)
    single = await only_poll(harness)
    await choose(harness, resident, "✍️ Other…")
    assert "Type your answer" in resident.last_message.text
    await choose(harness, resident, "A")
    await resident.send_text("a later text")
    await harness.settle()
    assert await stored(harness, single.id, 8400) == {"A"}
    assert "Your answer: A" in ballot(resident).text

    await create_poll(harness, admin, "Several step?", ["C", "D"], multiple=True, other=True)
    several = await only_poll(harness)
    await choose(harness, resident, "C", "Several step?")
    await choose(harness, resident, "✍️ Other…", "Several step?")
    await choose(harness, resident, "📤 Submit", "Several step?")
    assert await stored(harness, several.id, 8400) == {"C"}
    await resident.send_text("another later text")
    await harness.settle()
    assert await stored(harness, several.id, 8400) == {"C"}
    assert "Ticked" not in ballot(resident, "Several step?").text
