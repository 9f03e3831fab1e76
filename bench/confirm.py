"""Confirm benchmark: the cost of filing one appeal and of the dialog-state write, without Telegram.

Runs the real services and the bot's FSM storage (`bot.fsm_storage.SQLStorage`) on a fresh migrated SQLite database:
residents are created through the services, then
- `file()` one appeal after another (one appeal, one transaction: what the Confirm press costs in the database),
- the dialog-state write an update ends with when it moves a person on: `set_state` then `set_data`, each one
  statement and one commit through the engine, and the reads an update starts with (`get_state`, `get_data`),
and prints the medians of wall time and of this process's CPU time (both threads: the event loop and aiosqlite's).
Usage:

    .venv/bin/python bench/confirm.py [--appeals 200] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/confirm.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from aiogram.fsm.storage.base import StorageKey  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.fsm_storage import SQLStorage  # noqa: E402
from bot.services import Services  # noqa: E402
from bot.services.appeals import AppealDraft, DraftAttachment  # noqa: E402
from bot.services.users import Actor  # noqa: E402
from tests.conftest import make_settings  # noqa: E402


def draft(services: Services, n: int) -> AppealDraft:
    block = services.directory.blocks()[0]
    return AppealDraft(
        draft_id=f"bench{n:011d}",
        category_id=services.directory.categories(block.id)[0].id,
        district_id=services.directory.districts()[0].id,
        kind="message",
        text="Во дворе третий день нет воды, управляющая компания не отвечает",
        attachments=(DraftAttachment("photo", f"file-{n}", f"u-{n}"),),
        address="Грозный, ул. Мира, 1",
    )


async def residents(services: Services, first: int, count: int) -> list[Actor]:
    people = []
    for tg_id in range(first, first + count):
        actor = await services.users.identify(tg_id)
        actor = await services.users.set_locale(actor, "ru")
        people.append(await services.users.answer_consent(actor, True))
    return people


async def measure(operation: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Wall ms and CPU ms (this process) of one operation."""
    wall, cpu = time.perf_counter(), time.process_time()
    await operation()
    return 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)


def medians(samples: list[tuple[float, float]]) -> dict[str, float]:
    return {
        "wall_ms": round(statistics.median(s[0] for s in samples), 3),
        "cpu_ms": round(statistics.median(s[1] for s in samples), 3),
        "n": len(samples),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tsur-bench-confirm-") as tmp:
        app = await create_app(make_settings(Path(tmp) / "bench.db"), ManualClock(), migrate=True)
        services = app.services
        try:
            people = await residents(services, 10_000, args.appeals)
            filed = [
                await measure(lambda p=p, i=i: services.appeals.file(p, draft(services, i)))
                for i, p in enumerate(people)
            ]
            storage = SQLStorage(app.engine, app.clock)
            data = {"category": 12, "text": "Во дворе третий день нет воды", "files": [["photo", "file-1", "u-1"]]}

            def key(i: int) -> StorageKey:
                return StorageKey(bot_id=1, chat_id=10_000 + i % 50, user_id=10_000 + i % 50)

            async def write(i: int) -> None:
                await storage.set_state(key(i), "Filing:district")
                await storage.set_data(key(i), data)

            async def read(i: int) -> None:
                await storage.get_state(key(i))
                await storage.get_data(key(i))

            writes = [await measure(lambda i=i: write(i)) for i in range(args.appeals)]
            reads = [await measure(lambda i=i: read(i)) for i in range(args.appeals)]
        finally:
            await app.close()
    return {"file_one": medians(filed), "fsm_write": medians(writes), "fsm_read": medians(reads)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appeals", type=int, default=200, help="appeals filed, and state writes (default 200)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print("confirm benchmark: services on a fresh SQLite database, medians")
    for name, label in (
        ("file_one", "file() one appeal"),
        ("fsm_write", "dialog state: set_state + set_data (2 commits)"),
        ("fsm_read", "dialog state: get_state + get_data"),
    ):
        f = figures[name]
        print(f"  {label:48} {f['wall_ms']:7.2f} ms wall  {f['cpu_ms']:6.2f} ms CPU  (n={f['n']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
