"""People who block the bot and come back (issue 10, defect 4), end to end through the emulator.

A 403 (or the `my_chat_member` update Telegram sends when someone blocks the bot) marks the person inactive; the
`my_chat_member` update of an unblock, or any other update from them, marks them active again. What failed while
they were away is not resent (it is stale); what is queued after they came back reaches them.

The resident's side (blocking, unblocking, writing, reading) goes through the emulator and the real bot; the
coordinator's action that causes the notification is a service call, so these tests do not depend on the wording of
the staff screens.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from bot.app import allowed_updates
from bot.services import Services
from emulator import EmulatedUser
from storage.models import Outbox, User
from tests.conftest import Harness
from tests.factories import admin, draft, staff
from tests.test_resident_e2e import english_resident

RESIDENT = 1001


def services_of(harness: Harness) -> Services:
    assert harness.app is not None
    return harness.app.services


async def world(harness: Harness) -> tuple[EmulatedUser, Any, list[Any]]:
    """An English resident with two appeals in moderation, and a coordinator (made through the services)."""
    user = await english_resident(harness, RESIDENT)
    services = services_of(harness)
    coordinator = await staff(services, await admin(services, 9000), 2001, "coordinator")
    actor = await services.users.identify(RESIDENT)
    appeals = [await services.appeals.file(actor, draft(services, draft_id=f"draft-{n:010d}")) for n in range(2)]
    await harness.settle()
    return user, coordinator, appeals


async def route(harness: Harness, coordinator: Any, appeal: Any) -> None:
    await services_of(harness).coordination.route(coordinator, appeal.id)
    await harness.settle()


async def resident_row(harness: Harness) -> User:
    [row] = await harness.rows(User, User.tg_id == RESIDENT)
    return row


async def resident_outbox(harness: Harness) -> list[Outbox]:
    row = await resident_row(harness)
    return sorted(await harness.rows(Outbox, Outbox.user_id == row.id), key=lambda o: o.id)


def mentioning(user: EmulatedUser, number: str) -> list[str]:
    return [m.text for m in user.messages if number in (m.text or "")]


async def test_the_bot_asks_telegram_for_my_chat_member_updates(harness: Harness) -> None:
    assert harness.dp is not None
    assert "my_chat_member" in allowed_updates(harness.dp)


async def test_a_403_then_an_unblock_new_notifications_flow_the_failed_one_is_not_resent(harness: Harness) -> None:
    user, coordinator, (first, second) = await world(harness)

    # Blocked without Telegram telling the bot (the update may have been lost): the 403 is how it learns.
    user.block(notify=False)
    await route(harness, coordinator, first)
    [failed] = [o for o in await resident_outbox(harness) if o.status != "sent"]
    assert (failed.status, failed.attempts) == ("blocked", 1)
    assert "blocked by the user" in (failed.last_error or "")
    assert not (await resident_row(harness)).is_active
    assert not mentioning(user, first.number)

    # Unblocking sends `my_chat_member` (kicked -> member): the person is active again, silently.
    seen = len(user.messages)
    user.unblock()
    await harness.settle()
    assert (await resident_row(harness)).is_active
    assert len(user.messages) == seen
    # What failed while blocked is stale: not resent, not even tried again.
    assert (await harness.rows(Outbox, Outbox.id == failed.id))[0].status == "blocked"
    assert not mentioning(user, first.number)
    blocked_calls = len(harness.emu.calls("sendMessage", ok=False))

    await route(harness, coordinator, second)
    assert mentioning(user, second.number)
    assert not mentioning(user, first.number)
    assert len(harness.emu.calls("sendMessage", ok=False)) == blocked_calls
    assert [o.status for o in await resident_outbox(harness)].count("blocked") == 1


async def test_blocking_is_learnt_from_my_chat_member_before_any_403(harness: Harness) -> None:
    user, coordinator, (first, second) = await world(harness)
    sent_before = len(harness.emu.calls("sendMessage"))

    user.block()  # Telegram sends my_chat_member (member -> kicked)
    await harness.settle()
    assert not (await resident_row(harness)).is_active

    await route(harness, coordinator, first)
    # Not even tried: the notification is settled as blocked without a call that would earn a 403.
    assert [o.status for o in await resident_outbox(harness)].count("blocked") == 1
    assert not [c for c in harness.emu.calls("sendMessage")[sent_before:] if c.params.get("chat_id") == RESIDENT]

    user.unblock()
    await harness.settle()
    await route(harness, coordinator, second)
    assert mentioning(user, second.number)
    assert not mentioning(user, first.number)


async def test_any_update_from_a_person_marks_them_active_again(harness: Harness) -> None:
    user, coordinator, (first, second) = await world(harness)
    user.block(notify=False)
    await route(harness, coordinator, first)
    assert not (await resident_row(harness)).is_active

    # The unblock's my_chat_member never reached the bot; the person simply writes again.
    user.unblock(notify=False)
    await user.send_text("/help")
    await harness.settle()
    assert (await resident_row(harness)).is_active

    await route(harness, coordinator, second)
    assert mentioning(user, second.number)
    assert not mentioning(user, first.number)


async def test_a_press_marks_the_person_active_again_too(harness: Harness) -> None:
    user, coordinator, (first, second) = await world(harness)
    await user.send_text("/language")
    await harness.settle()
    user.block(notify=False)
    await route(harness, coordinator, first)
    assert not (await resident_row(harness)).is_active

    user.unblock(notify=False)
    await user.click("✅ English")
    await harness.settle()
    assert (await resident_row(harness)).is_active
    await route(harness, coordinator, second)
    assert mentioning(user, second.number)


# --- the service, without Telegram ------------------------------------------------------------------------


async def is_active(services: Services, tg_id: int) -> bool:
    async with services.users.sessionmaker() as session:
        return bool((await session.execute(select(User.is_active).where(User.tg_id == tg_id))).scalar_one())


async def test_identify_reactivates_whom_the_outbox_found_blocked(services: Services) -> None:
    actor = await services.users.identify(RESIDENT)
    # What the outbox sender does on a 403: the row in the database.
    async with services.users.sessionmaker() as session:
        await session.execute(update(User).where(User.id == actor.id).values(is_active=False))
        await session.commit()

    # `my_chat_member` leaves the decision to its handler: nothing changes yet.
    assert not (await services.users.identify(RESIDENT, reachable=False)).active
    assert not await is_active(services, RESIDENT)
    # Any other update: active again, in the database too.
    assert (await services.users.identify(RESIDENT)).active
    assert await is_active(services, RESIDENT)


async def test_set_reachable_writes_through(services: Services) -> None:
    actor = await services.users.identify(RESIDENT)
    assert not (await services.users.set_reachable(actor, False)).active
    assert not await is_active(services, RESIDENT)
    assert not (await services.users.identify(RESIDENT, reachable=False)).active

    assert (await services.users.identify(RESIDENT)).active  # the inactive person is reactivated
    assert await is_active(services, RESIDENT)
