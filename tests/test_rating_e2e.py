"""/rating end to end through the emulator (issue 14, «Agency evaluation»): the ranking of a period with the change
since the period before, the chart, an agency's breakdown, a supervisor's own place, and the refusals.

The data set is made through the real services on the test's clock, so the order is known: in the previous 30 days
agency B answered at once and agency A 15 days late; in the last 30 days A answers at once (rated 5), a new agency D
at once (rated 3), B 15 days late, and C answers one appeal only (below `stats.min_appeals`, listed apart). The
expected indexes are computed here from the configured weights and those known figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiogram_dialog.utils import CB_SEP, remove_intent_id
from sqlalchemy import select

from bot.charts import chart_size
from bot.config import IndexWeights
from emulator import EmulatedUser
from storage.models import Appeal, AuditEntry, UserRole
from tests import factories
from tests.conftest import Harness
from tests.factories import TG, World, make_world
from tests.test_polls_e2e import file_bytes, png_size

MIN_APPEALS = 3
LATE_DAYS = 15
W = IndexWeights()  # the defaults: the test's config does not change them


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"stats": {"min_appeals": MIN_APPEALS}}


def index(parts: dict[str, float | None]) -> float:
    """The index as config.example.toml documents it: the weighted mean of the measured parts × 100."""
    measured = [(getattr(W, name), value) for name, value in parts.items() if value is not None]
    return round(100 * sum(w * v for w, v in measured) / sum(w for w, _v in measured), 1)


# The parts of each agency, from what the data set does (answer time: 1 at once, 0 at 30 days).
LATE = 1 - LATE_DAYS / 30
PREVIOUS = {
    "B": index({"on_time": 1, "answer_time": 1, "rating": None, "reopened": 1, "returned": 1}),
    "A": index({"on_time": 0, "answer_time": LATE, "rating": None, "reopened": 1, "returned": 1}),
}
CURRENT = {
    "A": index({"on_time": 1, "answer_time": 1, "rating": 1, "reopened": 1, "returned": 1}),
    "D": index({"on_time": 1, "answer_time": 1, "rating": (3 - 1) / 4, "reopened": 1, "returned": 1}),
    "B": index({"on_time": 0, "answer_time": LATE, "rating": None, "reopened": 1, "returned": 1}),
}


@dataclass
class Scene:
    world: World
    agencies: dict[str, int]  # A, B, C, D -> agency id
    officials: dict[str, str]  # A, B, C, D -> the World's name of its official

    def name(self, harness: Harness, letter: str) -> str:
        assert harness.app is not None
        agency = harness.app.services.directory.agency(self.agencies[letter])
        assert agency is not None
        return agency.name("en")


async def scene(harness: Harness) -> Scene:
    assert harness.app is not None
    services = harness.app.services
    world = await make_world(services, harness.clock)
    taken = {world.agency, world.agency_b}
    others = [a.id for a in services.directory.agencies() if a.id not in taken][:2]
    agencies = {"A": world.agency, "B": world.agency_b, "C": others[0], "D": others[1]}
    officials = {"A": "official", "B": "official_b", "C": "official_c", "D": "official_d"}
    for tg, letter in ((3003, "C"), (3004, "D")):
        world.people[officials[letter]] = await factories.staff(
            services, world["admin"], tg, "official", agencies[letter]
        )
    world.people["leadership"] = await factories.staff(services, world["admin"], 3005, "leadership")
    world.people["block_head"] = await factories.staff(services, world["admin"], 3006, "coordinator")
    # A block head as the roles part's invite makes one: the role with its block (written here: not this part's).
    async with await harness.session() as session:
        row = (await session.execute(select(UserRole).where(UserRole.user_id == world["block_head"].id))).scalar_one()
        row.role = "block_head"
        row.block_id = services.directory.blocks()[0].id
        await session.commit()
    for name in (*TG, "leadership", "block_head"):
        if name not in ("owner", "other"):
            world.people[name] = await services.users.set_locale(world[name], "en")

    async def open_appeals(letter: str, count: int) -> list[int]:
        ids = []
        for _n in range(count):
            row = await world.file()
            await services.coordination.route(world["coordinator"], row.id, agencies[letter])
            await services.agency.take(world[officials[letter]], row.id)
            ids.append(row.id)
        return ids

    async def answer(letter: str, ids: list[int], score: int | None = None) -> None:
        for appeal_id in ids:
            await services.agency.answer(world[officials[letter]], appeal_id, "Сделано")
            await services.coordination.review(world["coordinator"], appeal_id, approve=True)
            if score is not None:
                await factories.rate(services, appeal_id, score)

    # The previous 30 days: B at once, A late.
    a_before, b_before = await open_appeals("A", 3), await open_appeals("B", 3)
    await answer("B", b_before)
    harness.clock.advance(days=LATE_DAYS)
    await answer("A", a_before)
    # 25 days later the last 30 days begin: A and D at once (rated 5 and 3), C one appeal, B late.
    harness.clock.advance(days=25)
    a_now, b_now, c_now, d_now = (
        await open_appeals("A", 3),
        await open_appeals("B", 3),
        await open_appeals("C", 1),
        await open_appeals("D", 3),
    )
    await answer("A", a_now, score=5)
    await answer("D", d_now, score=3)
    await answer("C", c_now)
    harness.clock.advance(days=LATE_DAYS)
    await answer("B", b_now)
    # The data set is what the expected figures assume.
    rows = {a.id: a for a in await harness.rows(Appeal)}
    assert [rows[i].answered_on_time for i in a_before + b_before] == [False] * 3 + [True] * 3
    assert [rows[i].answered_on_time for i in a_now + b_now + d_now] == [True] * 3 + [False] * 3 + [True] * 3
    # (The sender, draining the notifications meanwhile, moves the test's clock by its per-chat waits: seconds.)
    assert all(0 <= rows[i].answer_seconds - LATE_DAYS * 86400 < 120 for i in a_before + b_now)
    assert all(rows[i].answer_seconds < 120 for i in a_now + b_before + c_now + d_now)
    for name in (*TG, "leadership", "block_head", "official_c", "official_d"):
        tg = {"leadership": 3005, "block_head": 3006, "official_c": 3003, "official_d": 3004}.get(name) or TG[name]
        harness.emu.user(tg, language_code="en").open_chat()
    await harness.settle()
    return Scene(world, agencies, officials)


def user(harness: Harness, tg: int) -> EmulatedUser:
    return harness.emu.user(tg, language_code="en")


async def say(harness: Harness, person: EmulatedUser, text: str) -> None:
    await person.send_text(text)
    await harness.settle()


async def click(harness: Harness, person: EmulatedUser, label: str) -> None:
    await person.click(label)
    await harness.settle()


def photos(person: EmulatedUser) -> list[Any]:
    return [m for m in person.messages if m.kind == "photo"]


async def refusals(harness: Harness, after: int = 0) -> list[dict[str, Any]]:
    return [
        dict(a.details) for a in await harness.rows(AuditEntry, AuditEntry.id > after, AuditEntry.action == "refused")
    ]


async def last_audit(harness: Harness) -> int:
    found = await harness.rows(AuditEntry)
    return found[-1].id if found else 0


def forged(message: Any, data: str) -> str:
    """Callback data for `data` of the dialog the message shows (its intent id taken from a real button)."""
    intent, _rest = remove_intent_id(message.inline_keyboard[0][0][1] or "")
    return f"{intent}{CB_SEP}{data}"


# --- the ranking, the chart, a breakdown ----------------------------------------------------------------------


async def test_the_ranking_with_its_changes_chart_and_breakdown(harness: Harness) -> None:
    s = await scene(harness)
    assert PREVIOUS["B"] > PREVIOUS["A"] and CURRENT["A"] > CURRENT["D"] > CURRENT["B"]
    analyst = user(harness, TG["analyst"])
    await say(harness, analyst, "/rating")

    # The chart first, a real PNG with a bar per ranked agency; the ranking below it.
    [photo] = photos(analyst)
    assert photo.text.startswith("Agency rating, ")
    assert png_size(file_bytes(harness, photo)) == chart_size(3)
    screen = analyst.last_message
    assert screen.message_id > photo.message_id
    text = screen.text
    assert text.startswith("🏆 Agency rating\nPeriod: ")
    ranked = [
        f"1. {s.name(harness, 'A')} — {CURRENT['A']:.1f} ▲1",
        f"2. {s.name(harness, 'D')} — {CURRENT['D']:.1f} new",
        f"3. {s.name(harness, 'B')} — {CURRENT['B']:.1f} ▼2",
    ]
    assert "\n".join(ranked) in text, text
    assert f"Not ranked (fewer than {MIN_APPEALS} answered):\n• {s.name(harness, 'C')}: 1 answered" in text, text
    # The period buttons (30 days chosen), a button per agency, and Close.
    assert screen.buttons[:4] == ["• 30 days", "Last month", "This quarter", "This year"]
    agency_buttons = screen.buttons[4:-1]
    assert [b.split(" · ")[0] for b in agency_buttons] == ["1.", "2.", "3.", "—"]
    assert s.name(harness, "B")[:10] in agency_buttons[2]

    # B's breakdown: each part's raw figure, score and weight, the place and the change.
    await click(harness, analyst, agency_buttons[2])
    text = analyst.last_message.text
    assert analyst.last_message.message_id == screen.message_id  # an edit of the ranking
    assert f"{s.name(harness, 'B')}\nPlace 3 of 3, index {CURRENT['B']:.1f} ▼2" in text, text
    assert f"Previous period: place 1, index {PREVIOUS['B']:.1f}" in text, text
    assert "Answered in the period: 3" in text
    assert "• Answered on time: 0.0% → 0 of 100, weight 0.35" in text, text
    assert f"• Median time to the answer: {LATE_DAYS} d 0 h → {100 * LATE:.0f} of 100, weight 0.15" in text, text
    assert "• Average rating: — (0 ratings) → not measured, weight 0.25" in text, text
    assert "• Re-opened by residents: 0.0% → 100 of 100, weight 0.15" in text, text
    assert "check: 0.0% → 100 of 100, weight 0.1" in text, text
    assert f"Index: {CURRENT['B']:.1f}" in text
    await click(harness, analyst, "⬅️ Back")
    await click(harness, analyst, next(b for b in analyst.last_message.buttons if b.startswith("2. ")))
    text = analyst.last_message.text
    assert f"Place 2 of 3, index {CURRENT['D']:.1f} new" in text, text
    assert "• Average rating: 3.00 (3 ratings) → 50 of 100, weight 0.25" in text, text

    # Last month (November): B at once and A late, nothing the month before: both new; a new chart.
    await click(harness, analyst, "⬅️ Back")
    await click(harness, analyst, "Last month")
    assert len(photos(analyst)) == 2
    assert png_size(file_bytes(harness, photos(analyst)[-1])) == chart_size(2)
    text = analyst.last_message.text
    # Compared with the month before (October, 31 days), not with the 30 days before November.
    assert "Period: 01.11.2026–30.11.2026 (compared with 01.10.2026–31.10.2026)" in text, text
    assert (
        f"1. {s.name(harness, 'B')} — {PREVIOUS['B']:.1f} new\n2. {s.name(harness, 'A')} — {PREVIOUS['A']:.1f} new"
        in text
    )
    assert "Not ranked" not in text
    assert analyst.last_message.buttons[:4] == ["30 days", "• Last month", "This quarter", "This year"]

    # Text where a button is expected: the screen again, with a word on what to do.
    await say(harness, analyst, "show me the best")
    assert analyst.last_message.text.startswith("Please choose one of the buttons.")
    assert "🏆 Agency rating" in analyst.last_message.text


async def test_the_staff_menu_opens_it_for_the_roles_that_read_it(harness: Harness) -> None:
    s = await scene(harness)
    for name, tg in (("leadership", 3005), ("coordinator", TG["coordinator"]), ("admin", TG["admin"])):
        person = user(harness, tg)
        await say(harness, person, "/staff")
        assert "🏆 Agency rating" in person.last_message.buttons, name
    leader = user(harness, 3005)
    await click(harness, leader, "🏆 Agency rating")
    assert len(photos(leader)) == 1
    assert f"1. {s.name(harness, 'A')}" in leader.last_message.text
    for tg in (TG["official"], 3006):
        person = user(harness, tg)
        await say(harness, person, "/staff")
        assert "🏆 Agency rating" not in person.last_message.buttons


# --- a supervisor ---------------------------------------------------------------------------------------------


async def test_a_supervisor_sees_their_place_and_breakdown_only(harness: Harness) -> None:
    s = await scene(harness)
    supervisor = user(harness, TG["supervisor_b"])
    await say(harness, supervisor, "/staff")
    await click(harness, supervisor, "🏆 Agency rating")
    screen = supervisor.last_message
    text = screen.text
    assert "Your agency's place: 3 of 3." in text, text
    assert f"{s.name(harness, 'B')}\nPlace 3 of 3, index {CURRENT['B']:.1f} ▼2" in text, text
    assert "• Answered on time: 0.0% → 0 of 100, weight 0.35" in text
    # Nothing of the others: no names, no chart, no agency buttons.
    for letter in "ACD":
        assert s.name(harness, letter) not in text
    assert photos(supervisor) == []
    assert screen.buttons == ["• 30 days", "Last month", "This quarter", "This year", "✖ Close"]

    # A forged press for another agency's breakdown is refused by the service, and audited.
    mark = await last_audit(harness)
    await supervisor.press_callback(screen.message_id, forged(screen, f"agency:{s.agencies['A']}"))
    await harness.settle()
    assert supervisor.callback_answers[-1]["text"] == "This is not available to you."
    assert supervisor.callback_answers[-1]["show_alert"] is True
    assert await refusals(harness, mark) == [{"refused": "rating:another_agency", "agency_id": s.agencies["A"]}]
    assert supervisor.last_message.text == text  # the screen stays
    # Their own agency's breakdown is theirs to open.
    await supervisor.press_callback(screen.message_id, forged(screen, f"agency:{s.agencies['B']}"))
    await harness.settle()
    assert f"Previous period: place 1, index {PREVIOUS['B']:.1f}" in supervisor.last_message.text

    # Supervisor A in place 1; the previous month where A was ranked second.
    supervisor_a = user(harness, TG["supervisor"])
    await say(harness, supervisor_a, "/rating")
    assert "Your agency's place: 1 of 3." in supervisor_a.last_message.text
    await click(harness, supervisor_a, "Last month")
    assert "Your agency's place: 2 of 2." in supervisor_a.last_message.text
    assert photos(supervisor_a) == []


async def test_an_agency_listed_apart_and_one_with_nothing(harness: Harness) -> None:
    s = await scene(harness)
    services = harness.app.services  # type: ignore[union-attr]
    # C's supervisor: not ranked, with its count and breakdown.
    await factories.staff(services, s.world["admin"], 3007, "supervisor", s.agencies["C"])
    await services.users.set_locale(await services.users.identify(3007), "en")
    supervisor_c = user(harness, 3007)
    await say(harness, supervisor_c, "/rating")
    text = supervisor_c.last_message.text
    assert f"Your agency is not ranked: fewer than {MIN_APPEALS} appeals answered in the period." in text, text
    assert "Answered in the period: 1" in text
    # Last month C answered nothing.
    await click(harness, supervisor_c, "Last month")
    assert "Your agency answered no appeals in this period." in supervisor_c.last_message.text


# --- refusals -------------------------------------------------------------------------------------------------


async def test_refusals(harness: Harness) -> None:
    s = await scene(harness)
    # Block heads and officials: not for their role (the service refuses, audited).
    for tg in (3006, TG["official"]):
        person = user(harness, tg)
        mark = await last_audit(harness)
        await say(harness, person, "/rating")
        assert person.last_message.text == "The agency rating is not available for your role."
        assert await refusals(harness, mark) == [{"refused": "rating"}]
        assert photos(person) == []
    # A resident.
    resident = user(harness, TG["owner"])
    await say(harness, resident, "/rating")
    assert resident.last_message.text == "Это меню доступно только сотрудникам ЦУР и ведомств."  # in their language

    analyst = user(harness, TG["analyst"])
    await say(harness, analyst, "/rating")
    screen = analyst.last_message
    shown = screen.text
    # An agency id no directory knows.
    for data in ("agency:999999", "agency:abc", "agency:99999999999999999999"):
        await analyst.press_callback(screen.message_id, forged(screen, data))
        await harness.settle()
        assert analyst.callback_answers[-1]["text"] == "Agency not found.", data
    # A known agency with nothing in the period: its breakdown says so.
    quiet = next(
        a.id
        for a in harness.app.services.directory.agencies()
        if a.id not in s.agencies.values()  # type: ignore[union-attr]
    )
    # A forged period.
    await analyst.press_callback(screen.message_id, forged(screen, "period:decade"))
    await harness.settle()
    assert analyst.callback_answers[-1]["text"] == "Unknown period."
    assert analyst.last_message.text == shown and len(photos(analyst)) == 1
    await analyst.press_callback(screen.message_id, forged(screen, f"agency:{quiet}"))
    await harness.settle()
    assert "No appeals answered in this period." in analyst.last_message.text
