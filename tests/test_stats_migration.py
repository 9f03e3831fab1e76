"""The backfill of migration 0012: the answer and first-action figures it computes from the status history for the
appeals of before equal what the state machine (bot/services/lifecycle.py) sets for the same histories.

The histories are made through the real services at the head revision (the state machine keeps the figures), plus
one written by hand; the database goes down to 0011 (the figures' columns are dropped), comes back up to 0012 (the
backfill computes them again), and the two are compared appeal by appeal."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bot.clock import ManualClock
from bot.domain import AppealStatus
from bot.services import Services
from storage.db import alembic_config, create_engine, upgrade
from tests import factories as f
from tests.databases import copy_db, db_url

FIGURES = ("first_action_at", "first_action_seconds", "answer_seconds", "answered_on_time")


def _downgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def figures(connection: Any) -> dict[int, tuple[Any, ...]]:
    rows = await connection.execute(text(f"SELECT id, {', '.join(FIGURES)} FROM appeals ORDER BY id"))
    result = {}
    for appeal_id, first_at, first_seconds, answer_seconds, on_time in rows:
        if isinstance(first_at, str):  # SQLite's text, read without the model's type
            first_at = datetime.fromisoformat(first_at)
        result[appeal_id] = (first_at, first_seconds, answer_seconds, None if on_time is None else bool(on_time))
    return result


async def answer_and_approve(world: f.World, appeal_id: int, after: timedelta) -> None:
    services = world.services
    world.clock.advance(after)
    await services.agency.answer(world["official"], appeal_id, "Работы выполнены")
    world.clock.advance(hours=3)
    await services.coordination.review(world["coordinator"], appeal_id, True)


async def histories(world: f.World) -> dict[str, int]:
    """One appeal of each kind of history the backfill must read."""
    services, clock = world.services, world.clock
    coordinator, official = world["coordinator"], world["official"]
    ids: dict[str, int] = {}
    ids["untouched"] = (await world.file()).id
    row = await world.file()
    clock.advance(hours=5)
    await services.coordination.reject(coordinator, row.id, "spam")
    ids["rejected"] = row.id
    clock.advance(hours=1)
    row = await world.file()
    clock.advance(hours=2, minutes=17)
    await services.coordination.route(coordinator, row.id)
    ids["assigned"] = row.id
    # On time, with a pause of two days for a clarification.
    row = await world.file()
    clock.advance(hours=1)
    await services.coordination.route(coordinator, row.id)
    clock.advance(hours=4)
    await services.agency.take(official, row.id)
    clock.advance(days=1)
    await services.agency.ask_clarification(official, row.id, "Уточните номер дома")
    clock.advance(days=2, hours=3)
    await services.replies.reply_clarification(world["owner"], row.id, "Дом 5")
    await answer_and_approve(world, row.id, timedelta(days=2))
    ids["paused"] = row.id
    # Late.
    row = await world.in_progress()
    await answer_and_approve(world, row.id, timedelta(days=15))
    ids["late"] = row.id
    # Extended: after the first deadline, before the one in force.
    row = await world.in_progress()
    await services.agency.request_extension(official, row.id, 20, "Нужна экспертиза")
    request = (await f.rows(services, f.AppealRequest, f.AppealRequest.appeal_id == row.id))[0]
    await services.coordination.decide(coordinator, request.id, True)
    await answer_and_approve(world, row.id, timedelta(days=14))
    ids["extended"] = row.id
    # Re-opened after a late answer with a pause, routed again, paused again and answered again on time.
    row = await world.in_progress()
    await services.agency.ask_clarification(official, row.id, "Уточните адрес")
    clock.advance(days=1)
    await services.replies.reply_clarification(world["owner"], row.id, "Мира, 1")
    await answer_and_approve(world, row.id, timedelta(days=12))
    clock.advance(hours=5)
    await services.ratings.rate(world["owner"], row.id, 1)
    await services.ratings.reopen(world["owner"], row.id, "Ничего не сделано")
    clock.advance(hours=6)
    await services.coordination.route(coordinator, row.id)
    await services.agency.take(official, row.id)
    clock.advance(hours=2)
    await services.agency.ask_clarification(official, row.id, "Когда вы дома?")
    clock.advance(hours=30)
    await services.replies.reply_clarification(world["owner"], row.id, "Вечером")
    await answer_and_approve(world, row.id, timedelta(days=3))
    ids["reopened"] = row.id
    # Answered late, then re-opened and routed again (a new term), not answered yet: the figures of its answer stay.
    row = await world.in_progress()
    await answer_and_approve(world, row.id, timedelta(days=25))
    await services.ratings.rate(world["owner"], row.id, 2)
    clock.advance(hours=1)
    await services.ratings.reopen(world["owner"], row.id, "Не сделано")
    clock.advance(hours=1)
    await services.coordination.route(coordinator, row.id)
    ids["reopened_waiting"] = row.id
    return ids


async def test_the_backfill_equals_what_the_state_machine_sets(
    services: Services, clock: ManualClock, db_path: Path
) -> None:
    await migrate(services, clock, db_path)


async def migrate(
    services: Services, clock: ManualClock, db_path: Path
) -> tuple[dict[str, int], dict[int, tuple[Any, ...]], dict[int, tuple[Any, ...]]]:
    """The histories made at the head, their figures as the state machine kept them, and as 0012 backfills them
    after a downgrade to 0011."""
    world = await f.make_world(services, clock)
    ids = await histories(world)
    engine = create_engine(db_url(db_path))
    async with engine.connect() as connection:
        kept = await figures(connection)
    assert kept[ids["untouched"]] == (None, None, None, None)
    assert kept[ids["rejected"]][1:] == (5 * 3600, None, None)
    assert kept[ids["assigned"]][1:] == (2 * 3600 + 17 * 60, None, None)
    assert kept[ids["paused"]][1:] == (3600, 3 * 86400 + 8 * 3600, True)  # 5 days 11 h less the 2 days 3 h paused
    assert kept[ids["late"]][3] is False and kept[ids["extended"]][3] is True
    # From the re-opening, less the second consideration's pause only: 6 h + 2 h + 3 days + 3 h.
    assert kept[ids["reopened"]][2] == 6 * 3600 + 2 * 3600 + 3 * 86400 + 3 * 3600
    assert kept[ids["reopened_waiting"]][3] is False
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, "0011")
    async with engine.connect() as connection:
        columns = await connection.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("appeals")})
    assert not set(FIGURES) & columns
    await upgrade(engine, "0012")
    async with engine.connect() as connection:
        backfilled = await figures(connection)
    await engine.dispose()
    assert {name: backfilled[i] for name, i in ids.items() if name not in LOST} == {
        name: kept[i] for name, i in ids.items() if name not in LOST
    }
    return ids, kept, backfilled


# What the history of revision 0011 cannot tell: the deadline in force at an answer that was followed by a re-opening
# and a new routing (which set a new term on the appeal). The backfill compares with the appeal's current deadline.
LOST = {"reopened_waiting"}


@pytest.mark.xfail(
    strict=True,
    reason="0012's backfill takes the current deadline: an answer re-opened and routed again since reads 'on time' "
    "against the new term (0011 keeps no earlier deadline to compare with)",
)
async def test_the_backfill_of_an_answer_re_opened_and_routed_again(
    services: Services, clock: ManualClock, db_path: Path
) -> None:
    ids, kept, backfilled = await migrate(services, clock, db_path)
    name = "reopened_waiting"
    assert backfilled[ids[name]] == kept[ids[name]]


async def test_the_backfill_reads_a_history_written_by_hand(tmp_path: Path, template_db: Path) -> None:
    """At 0011, an appeal whose history has a scheduler's move (no actor) and the resident's own move before staff
    first acted, two re-openings before its answer and one after, and pauses recorded on the appeal: its figures
    after the upgrade."""
    path = tmp_path / "old.db"
    copy_db(template_db, path)
    engine = create_engine(db_url(path))
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, "0011")
    t0 = datetime(2026, 10, 1, 6, 0)
    day = timedelta(days=1)
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO users (id, tg_id, is_active, created_at) VALUES (1, 1001, TRUE, :t), (2, 2, TRUE, :t)"),
            {"t": t0},
        )
        category = (await connection.execute(text("SELECT min(id) FROM categories"))).scalar_one()
        district = (await connection.execute(text("SELECT min(id) FROM districts"))).scalar_one()
        appeal = {
            "number": "2026-000001",
            "user_id": 1,
            "draft_id": "hand-written",
            "category_id": category,
            "district_id": district,
            "kind": "message",
            "status": AppealStatus.answered.value,
            "text": "Нет воды",
            "locale": "ru",
            "created_at": t0,
            "updated_at": t0 + 6 * day,
            "answered_at": t0 + 5 * day,
            "deadline_at": t0 + 4 * day,
            "paused_seconds": 7200,
            "reopen_count": 2,
        }
        await connection.execute(
            text(f"INSERT INTO appeals ({', '.join(appeal)}) VALUES ({', '.join(':' + k for k in appeal)})"), appeal
        )
        moves = [
            ("moderation", None, "filed", t0, 1),
            ("moderation", "moderation", "note", t0 + timedelta(hours=1), None),  # the scheduler
            ("moderation", "moderation", "note", t0 + timedelta(hours=2), 1),  # the resident
            ("assigned", "moderation", "routed", t0 + timedelta(hours=3), 2),  # staff, first
            ("reopened", "answered", "reopened", t0 + day, 1),
            ("reopened", "answered", "reopened", t0 + 2 * day, 1),
            ("answered", "answer_review", "answered", t0 + 5 * day, 2),
            ("reopened", "answered", "reopened", t0 + 6 * day, 1),  # after the answer
        ]
        for to, before, event, at, actor in moves:
            await connection.execute(
                text(
                    "INSERT INTO status_history (appeal_id, from_status, to_status, actor_id, at, event, visibility,"
                    " params) VALUES (1, :before, :to, :actor, :at, :event, 'resident', '{}')"
                ),
                {"before": before, "to": to, "actor": actor, "at": at, "event": event},
            )
    await upgrade(engine, "0012")
    async with engine.connect() as connection:
        backfilled = await figures(connection)
    await engine.dispose()
    first_at = t0 + timedelta(hours=3)
    assert backfilled == {1: (first_at, 3 * 3600, 3 * 86400 - 7200, False)}
