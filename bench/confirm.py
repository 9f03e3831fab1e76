"""Confirm benchmark: the cost of storing appeals, alone and in a burst, and of the per-update dialog write.

Runs the services on a fresh migrated SQLite database (no Telegram): residents are created through the real
services, then
- `file()` one after another (one appeal per transaction),
- a burst of B residents pressing Confirm at the same moment (the group commit stores them together),
- the dialog-state write each update ends with (one FSM row, upsert and commit), through the engine (the path on
  any database) and in place (`InlineFsm`, the path on a SQLite file when it is free),
and prints medians of wall time and CPU time, the transactions the burst took and the hand-offs to aiosqlite's
thread per operation. Usage:

    .venv/bin/python bench/confirm.py [--appeals 200] [--burst 50] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/confirm.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

import aiosqlite  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.services import Services  # noqa: E402
from bot.services.appeals import AppealDraft, DraftAttachment  # noqa: E402
from bot.services.users import Actor  # noqa: E402
from storage.inline_fsm import InlineFsm  # noqa: E402
from storage.repositories.fsm import FsmRepo  # noqa: E402

HAND_OFFS: Counter[str] = Counter()
_original_execute = aiosqlite.Connection._execute


async def _counting_execute(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
    HAND_OFFS[getattr(fn, "__name__", "?")] += 1
    return await _original_execute(self, fn, *args, **kwargs)


aiosqlite.Connection._execute = _counting_execute  # type: ignore[method-assign]


def settings_for(db: Path) -> Settings:
    return Settings.model_validate(
        {
            "bot": {"token": "1:BENCH", "api_base": "http://127.0.0.1:9"},
            "database": {"url": f"sqlite+aiosqlite:///{db}"},
        }
    )


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


async def measure(operation: Callable[[], Awaitable[Any]]) -> tuple[float, float, int]:
    """Wall ms, CPU ms (this process, both threads) and hand-offs of one operation."""
    HAND_OFFS.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    await operation()
    return 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu), sum(HAND_OFFS.values())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tsur-bench-confirm-") as tmp:
        app = await create_app(settings_for(Path(tmp) / "bench.db"), ManualClock(), migrate=True)
        services = app.services
        try:
            people = await residents(services, 10_000, args.appeals)
            single = [
                await measure(lambda p=p, i=i: services.appeals.file(p, draft(services, i)))
                for i, p in enumerate(people)
            ]
            bursts = []
            for r in range(args.repeat):
                crowd = await residents(services, 100_000 + r * args.burst, args.burst)
                before = services.appeals._filing.batches
                start = 1_000_000 + r * args.burst
                wall, cpu, hand_offs = await measure(
                    lambda crowd=crowd, start=start: asyncio.gather(
                        *(services.appeals.file(p, draft(services, start + i)) for i, p in enumerate(crowd))
                    )
                )
                bursts.append((wall, cpu, services.appeals._filing.batches - before, hand_offs))
            now = app.clock.now()

            async def fsm_write(i: int) -> None:
                async with app.sessionmaker() as session:
                    row = {"key": f"bench:{i}", "state": "Filing:district", "data": {"draft": "x" * 16}}
                    await FsmRepo(session).upsert_many([{**row, "updated_at": now}])
                    await session.commit()

            fsm = [await measure(lambda i=i: fsm_write(i % 50)) for i in range(args.appeals)]
            inline = InlineFsm.open(app.engine)
            assert inline is not None

            async def fsm_inline(i: int) -> None:
                row = {"key": f"bench:{i}", "state": "Filing:district", "data": {"draft": "x" * 16}}
                assert inline.write([{**row, "updated_at": now}])

            # Every ENGINE_EVERY-th write is the engine's turn; those are left out of this figure.
            in_place = [
                await measure(lambda i=i: fsm_inline(i % 50))
                for i in range(args.appeals)
                if (i + 1) % InlineFsm.ENGINE_EVERY
            ]
            inline.close()
        finally:
            await app.close()
    return {
        "file_one": {
            "wall_ms": round(statistics.median(x[0] for x in single), 2),
            "cpu_ms": round(statistics.median(x[1] for x in single), 2),
            "hand_offs": statistics.median(x[2] for x in single),
            "n": len(single),
        },
        "burst": {
            "size": args.burst,
            "wall_ms": round(statistics.median(x[0] for x in bursts), 1),
            "cpu_ms_per_appeal": round(statistics.median(x[1] for x in bursts) / args.burst, 2),
            "transactions": statistics.median(x[2] for x in bursts),
            "hand_offs": statistics.median(x[3] for x in bursts),
            "repeat": len(bursts),
        },
        "fsm_write": {
            "wall_ms": round(statistics.median(x[0] for x in fsm), 3),
            "cpu_ms": round(statistics.median(x[1] for x in fsm), 3),
            "hand_offs": statistics.median(x[2] for x in fsm),
        },
        "fsm_write_in_place": {
            "wall_ms": round(statistics.median(x[0] for x in in_place), 3),
            "cpu_ms": round(statistics.median(x[1] for x in in_place), 3),
            "hand_offs": statistics.median(x[2] for x in in_place),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appeals", type=int, default=200, help="appeals filed one by one (default 200)")
    parser.add_argument("--burst", type=int, default=50, help="residents confirming at once (default 50)")
    parser.add_argument("--repeat", type=int, default=5, help="bursts measured (default 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    one, burst, fsm, fast = figures["file_one"], figures["burst"], figures["fsm_write"], figures["fsm_write_in_place"]
    print("confirm benchmark: services on a fresh SQLite database, medians")
    print(
        f"  file() alone            {one['wall_ms']:7.2f} ms wall  {one['cpu_ms']:6.2f} ms CPU  "
        f"{one['hand_offs']:.0f} hand-offs to aiosqlite's thread  (n={one['n']})"
    )
    print(
        f"  {burst['size']} Confirms at once     {burst['wall_ms']:7.1f} ms wall for the last one  "
        f"{burst['cpu_ms_per_appeal']:.2f} ms CPU per appeal  {burst['transactions']:.0f} transactions  "
        f"{burst['hand_offs']:.0f} hand-offs  (x{burst['repeat']})"
    )
    print(
        f"  dialog-state write      {fsm['wall_ms']:7.3f} ms wall  {fsm['cpu_ms']:6.3f} ms CPU  "
        f"{fsm['hand_offs']:.0f} hand-offs  (engine)"
    )
    print(
        f"  dialog-state write      {fast['wall_ms']:7.3f} ms wall  {fast['cpu_ms']:6.3f} ms CPU  "
        f"{fast['hand_offs']:.0f} hand-offs  (in place)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
