"""Two bot instances, each in a process of its own, on one database (PostgreSQL in CI's second pass, where the two
really run their statements at the same moment): the reminder sweep, the digests and the outbox sender claim their
rows, so nothing is claimed, queued or sent twice. (Invites raced by two instances: tests/test_instances_e2e.py.)"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.clock import ManualClock
from bot.services import Services
from storage.models import Outbox, Reminder
from tests.conftest import make_settings
from tests.factories import TG, make_world, rows

if TYPE_CHECKING:
    from emulator import BotAPIEmulator

ROOT = Path(__file__).resolve().parent.parent
DIGESTS = ("digest_official", "digest_coordinator", "weekly_summary")


async def start(url: str, api_base: str, now: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.instance_worker", url, api_base, now,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert (await asyncio.wait_for(process.stdout.readline(), 120)).strip() == b"ready"
    return process


async def test_two_processes_claim_reminders_digests_and_sends_once(
    emu: BotAPIEmulator, services: Services, clock: ManualClock, db_path: Path
) -> None:
    world = await make_world(services, clock)
    for tg_id in TG.values():
        emu.user(tg_id).open_chat()
    ids = [(await world.assigned()).id for _ in range(12)]
    clock.advance(timedelta(days=15))  # every reminder of the twelve is due, and today's digest
    due = await rows(services, Reminder, Reminder.sent_at.is_(None), Reminder.due_at <= clock.now())
    assert len(due) == 5 * len(ids)
    before = {o.id for o in await rows(services, Outbox)}

    url = make_settings(db_path).database.url
    processes = [await start(url, emu.base_url, clock.now().isoformat()) for _ in range(2)]
    for process in processes:  # both instances go at once
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    outputs = [await asyncio.wait_for(process.communicate(), 120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0]
    done = [json.loads(out.splitlines()[-1]) for out, _err in outputs]

    # Each reminder claimed by one instance, each digest by one (the other claimed none).
    assert sum(d["reminders"] for d in done) == len(due), done
    assert await rows(services, Reminder, Reminder.sent_at.is_(None), Reminder.due_at <= clock.now()) == []
    assert sorted(d["daily"] for d in done)[0] == 0 and sorted(d["weekly"] for d in done) == [0, 1], done
    queued = [o for o in await rows(services, Outbox) if o.id not in before]
    digests = [o for o in queued if o.template in DIGESTS]
    assert len(digests) == sum(d["daily"] + d["weekly"] for d in done) > 1
    assert len({(o.user_id, o.template) for o in digests}) == len(digests)
    # Each row settled once: sent once, never twice, by whichever instance claimed it.
    outbox = await rows(services, Outbox)
    assert sum(d["settled"] for d in done) == len(outbox), done
    assert all(o.status == "sent" and o.attempts == 1 for o in outbox), {(o.template, o.status, o.attempts) for o in outbox}
    assert len(emu.calls("sendMessage", ok=True)) == len(outbox)

