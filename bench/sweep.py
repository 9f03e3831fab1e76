"""Reminder sweep benchmark: one tick of `ReminderService.sweep` and one `daily_digest` on a big SQLite database.

The data set (bench/_sweep_data.py) holds 1,000,000 appeals, 100,000 of them open with deadlines spread over the next
year and their ~400,000 pending reminders among 1.3 million reminder rows; it is migrated by the project's own
migrations, bulk-loaded with sqlite3 and cached in a temp directory per size (`--rebuild` to force). The measured code
is the real one: `build_services(make_settings(db), …, ManualClock)` on a copy of the cached file.

A tick is timed with K reminders due (K = 0, 10, 100, 500; 500 is the sweep's batch limit): the clock is put on the
due time of the K-th earliest pending reminder, the tick runs, and its effects are undone before the next run (the
claimed reminders' `sent_at` set back to NULL, the escalations it planned and the outbox rows it wrote deleted), so
every run sees the same database. One untimed tick first opens the pooled connection, as a running bot has it open.
The digest runs at 09:00 local a month after the data set's "now" (some appeals overdue), its dedupe rows deleted
between runs.

The same is done at a second, ten times smaller size: if the sweep follows what is due and not what is open, a tick
with K due costs the same at both sizes. The statements the sweep and the digest issue are captured as executed
(SQL and parameters) and their `EXPLAIN QUERY PLAN` printed, with the line of the project's code that issued them;
a plan that scans a whole table or index is flagged. Usage:

    .venv/bin/python bench/sweep.py [--sizes 100000:10000,1000000:100000] [--runs 5] [--json] [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/sweep.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

import greenlet  # noqa: E402
import sqlalchemy  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench._sweep_data import T0, Size, ensure_db, iter_sizes, parse, table_counts  # noqa: E402
from bot.clock import ManualClock  # noqa: E402
from bot.services import build_services  # noqa: E402
from storage.db import create_engine, create_sessionmaker  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

GOAL_TICK_MS = 50.0  # one tick, at every K measured, at the largest size
GOAL_RATIO = 2.0  # tick(K) at the largest size within this factor of the smallest size
KS = (0, 10, 100, 500)
DIGEST_AT = T0 + timedelta(days=30)  # 09:00 Moscow; ~8 % of the open appeals are past their deadline by then
DEFAULT_SIZES = "100000:10000,1000000:100000"
CODE_DIRS = tuple(str(ROOT / d) + "/" for d in ("bot", "storage", "handlers"))


# --- statements as executed, and their plans ------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    params: tuple[Any, ...]
    where: str  # file:line (function) of the project's code that issued it
    count: int = 1
    plan: list[str] = field(default_factory=list)
    scans: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)


def _caller() -> str:
    """The innermost frame of the project's code behind the statement being executed.

    SQLAlchemy's asyncio layer runs the sync core in a child greenlet; the awaiting coroutines (the service
    methods) are suspended in its parent, so their frames hang off the parent greenlet's current frame."""
    here = greenlet.getcurrent()
    frame = here.parent.gr_frame if here.parent is not None else sys._getframe()
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(CODE_DIRS):
            return f"{Path(name).relative_to(ROOT)}:{frame.f_lineno} ({frame.f_code.co_name})"
        frame = frame.f_back
    return "?"


class Recorder:
    """Every distinct statement executed while `active`, with the parameters of its first execution."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.active = False
        self.statements: dict[str, Statement] = {}
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        if not self.active:
            return
        if sql in self.statements:
            self.statements[sql].count += 1
            return
        first = params[0] if many and params and isinstance(params[0], list | tuple) else params
        self.statements[sql] = Statement(sql, tuple(first or ()) if _plannable(sql) else (), _caller())

    def take(self) -> list[Statement]:
        taken, self.statements = list(self.statements.values()), {}
        return taken


async def explain(engine: AsyncEngine, statement: Statement) -> None:
    async with engine.connect() as conn:
        rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement.sql}", statement.params)).all()
    depth: dict[int, int] = {0: -1}
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        statement.plan.append("  " * depth[node] + detail)
        if detail.startswith("SCAN ") and not detail.startswith("SCAN CONSTANT ROW"):
            kind = "FULL INDEX SCAN" if " USING " in detail else "FULL TABLE SCAN"
            statement.scans.append(f"{kind}: {detail}")
        for marker in (" USING COVERING INDEX ", " USING INDEX ", " USING INTEGER PRIMARY KEY", " USING PRIMARY KEY"):
            if marker in detail:
                statement.indexes.append(detail.split(marker, 1)[1].split(" ")[0] or marker.strip().lower())


def _plannable(sql: str) -> bool:
    return sql.lstrip().split(" ", 1)[0].upper() in {"SELECT", "UPDATE", "DELETE", "WITH"}


# --- measuring ----------------------------------------------------------------------------------------------


@dataclass
class Tick:
    k: int
    due: int  # reminders actually due at the moment chosen
    claimed: int  # what the sweep returned
    outbox: int  # outbox rows the tick wrote
    escalations: int  # reminders the tick planned (tomorrow's escalation)
    kinds: dict[str, int]
    ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ms)


@dataclass
class SizeResult:
    size: Size
    path: str
    build_s: float | None
    counts: dict[str, int]
    ticks: list[Tick] = field(default_factory=list)
    digest_ms: list[float] = field(default_factory=list)
    digest_sent: int = 0
    sweep_statements: list[Statement] = field(default_factory=list)
    digest_statements: list[Statement] = field(default_factory=list)

    def tick(self, k: int) -> Tick:
        return next(t for t in self.ticks if t.k == k)


async def _scalar(engine: AsyncEngine, sql: str, *params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.exec_driver_sql(sql, params)).scalar()


async def _moment_for(engine: AsyncEngine, k: int) -> datetime:
    """The due time of the K-th earliest pending reminder (just before the first one for K = 0)."""
    if k == 0:
        first = await _scalar(engine, "SELECT min(due_at) FROM reminders WHERE sent_at IS NULL")
        return parse(first) - timedelta(seconds=1)
    value = await _scalar(
        engine, "SELECT due_at FROM reminders WHERE sent_at IS NULL ORDER BY due_at LIMIT 1 OFFSET ?", k - 1
    )
    return parse(value)


async def _due(engine: AsyncEngine, moment: datetime) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT id, kind FROM reminders WHERE sent_at IS NULL AND due_at <= ? ORDER BY due_at",
            (moment.replace(tzinfo=None).isoformat(" ", "microseconds"),),
        )
        return [(r[0], r[1]) for r in rows.all()]


async def _undo_tick(engine: AsyncEngine, claimed: list[int], last_reminder: int) -> tuple[int, int]:
    """Put the database back as it was before the tick; returns (outbox rows, reminders) the tick had written."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE reminders SET sent_at = NULL WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(claimed),)
        )
        planned = (await conn.exec_driver_sql("DELETE FROM reminders WHERE id > ?", (last_reminder,))).rowcount
        outbox = (await conn.exec_driver_sql("DELETE FROM outbox")).rowcount
    return outbox, planned


async def measure(size: Size, cached: Path, build_s: float | None, args: argparse.Namespace, workdir: Path) -> SizeResult:
    work = workdir / f"work-{size.appeals}-{size.open}.db"
    shutil.copyfile(cached, work)
    result = SizeResult(size, str(cached), build_s, table_counts(work))
    settings = make_settings(work)
    engine = create_engine(settings.database.url)
    clock = ManualClock(T0)
    services = build_services(settings, create_sessionmaker(engine), clock)
    recorder = Recorder(engine)
    try:
        last_reminder = await _scalar(engine, "SELECT max(id) FROM reminders")
        pending = await _scalar(engine, "SELECT count(*) FROM reminders WHERE sent_at IS NULL")
        assert await _scalar(engine, "SELECT count(*) FROM outbox") == 0
        clock.set(await _moment_for(engine, 0))
        assert await services.reminders.sweep() == 0  # untimed: opens the pooled connection
        for k in args.ks:
            moment = await _moment_for(engine, k)
            clock.set(moment)
            due = await _due(engine, moment)
            ids = [i for i, _kind in due]
            kinds: dict[str, int] = {}
            for _id, kind in due[:500]:
                kinds[kind] = kinds.get(kind, 0) + 1
            tick = Tick(k, len(due), 0, 0, 0, kinds, [])
            for _ in range(args.runs):
                started = time.perf_counter()
                tick.claimed = await services.reminders.sweep()
                tick.ms.append((time.perf_counter() - started) * 1000)
                tick.outbox, tick.escalations = await _undo_tick(engine, ids, last_reminder)
            result.ticks.append(tick)
            if await _scalar(engine, "SELECT count(*) FROM reminders WHERE sent_at IS NULL") != pending:
                raise RuntimeError("undoing the tick did not restore the pending reminders")
        # The statements of the biggest tick and of the digest, captured in untimed runs.
        biggest = max(args.ks)
        clock.set(await _moment_for(engine, biggest))
        ids = [i for i, _kind in await _due(engine, clock.now())]
        recorder.active = True
        await services.reminders.sweep()
        recorder.active = False
        await _undo_tick(engine, ids, last_reminder)
        result.sweep_statements = recorder.take()

        clock.set(DIGEST_AT)
        for _ in range(args.digest_runs):
            started = time.perf_counter()
            result.digest_sent = await services.reminders.daily_digest()
            result.digest_ms.append((time.perf_counter() - started) * 1000)
            await _undo_tick(engine, [], last_reminder)
        recorder.active = True
        await services.reminders.daily_digest()
        recorder.active = False
        await _undo_tick(engine, [], last_reminder)
        result.digest_statements = recorder.take()
        for statement in (*result.sweep_statements, *result.digest_statements):
            if _plannable(statement.sql):
                await explain(engine, statement)
    finally:
        await engine.dispose()
        for path in (work, Path(f"{work}-wal"), Path(f"{work}-shm")):
            path.unlink(missing_ok=True)
    return result


# --- reporting ----------------------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} [{max(values):6.2f}]"


def goals(results: list[SizeResult]) -> list[dict[str, Any]]:
    big, small = results[-1], results[0]
    worst = max(big.ticks, key=lambda t: t.median)
    out = [
        {
            "goal": f"one tick < {GOAL_TICK_MS:.0f} ms at {big.size.label}, for every K measured (up to {worst.k} due)",
            "passed": worst.median < GOAL_TICK_MS,
            "detail": f"slowest: {worst.median:.2f} ms with {worst.due} due"
            + "".join(f"; K={t.k}: {t.median:.2f} ms" for t in big.ticks if t.median >= GOAL_TICK_MS),
        }
    ]
    if len(results) > 1:
        ratios = {t.k: t.median / small.tick(t.k).median for t in big.ticks}
        k_worst = max(ratios, key=lambda k: ratios[k])
        growth = big.tick(max(args_ks(big))).median / max(big.tick(min(args_ks(big))).median, 1e-9)
        out.append(
            {
                "goal": f"cost follows the reminders due, not the open appeals: tick(K) at {big.size.label} within "
                f"{GOAL_RATIO:.0f}x of {small.size.label} for every K",
                "passed": ratios[k_worst] <= GOAL_RATIO,
                "detail": f"worst ratio {ratios[k_worst]:.2f} at K={k_worst} "
                f"({big.size.open / small.size.open:.0f}x the open appeals); "
                f"at {big.size.label} tick(K={max(args_ks(big))}) is {growth:.1f}x tick(K={min(args_ks(big))})",
            }
        )
    return out


def args_ks(result: SizeResult) -> list[int]:
    return [t.k for t in result.ticks]


def render(results: list[SizeResult], args: argparse.Namespace) -> str:
    lines = [
        f"Reminder sweep benchmark: SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__} + aiosqlite,"
        f" Python {sys.version.split()[0]}; data set 'now' {T0:%Y-%m-%d %H:%M} UTC; no ANALYZE (as in production)",
        "",
        "Data sets (cached in " + str(Path(results[0].path).parent) + "):",
        f"  {'size':<10}{'appeals':>10}{'open':>9}{'reminders':>11}{'pending':>9}{'file MB':>9}  build",
    ]
    for r in results:
        c = r.counts
        mb = Path(r.path).stat().st_size / 1e6
        build = f"built in {r.build_s:.1f} s" if r.build_s is not None else "cached (--rebuild to rebuild)"
        lines.append(
            f"  {r.size.label:<10}{c['appeals']:>10,}{c['open']:>9,}{c['reminders']:>11,}{c['pending']:>9,}{mb:>9.0f}  {build}"
        )
    header = "".join(f"{r.size.label:>22}" for r in results)
    lines += [
        "",
        f"One sweep tick (ReminderService.sweep, batch limit 500): median [max] of {args.runs} runs, ms",
        f"  {'K due':>6}{header}" + (f"{'ratio':>9}" if len(results) > 1 else "") + "   due kinds (largest size)",
    ]
    for k in args.ks:
        ticks = [r.tick(k) for r in results]
        row = f"  {k:>6}" + "".join(f"{_ms(t.ms):>22}" for t in ticks)
        if len(results) > 1:
            row += f"{ticks[-1].median / ticks[0].median:>9.2f}"
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(ticks[-1].kinds.items())) or "-"
        lines.append(f"{row}   {kinds}")
        bad = [r.size.label for r, t in zip(results, ticks, strict=True) if t.claimed != min(t.due, 500)]
        if bad:
            lines.append(f"         !!! the tick claimed fewer reminders than were due at {', '.join(bad)}")
    big = results[-1]
    lines.append(
        f"  each tick claimed what was due, wrote its outbox rows and was undone; at {big.size.label}, K={big.ticks[-1].k}: "
        f"{big.ticks[-1].outbox} outbox rows, {big.ticks[-1].escalations} escalations planned for tomorrow"
    )
    if len(big.ticks) > 1 and big.ticks[-1].due > big.ticks[0].due:
        per = (big.ticks[-1].median - big.ticks[0].median) / (big.ticks[-1].due - big.ticks[0].due)
        lines.append(f"  marginal cost at {big.size.label}: {per:.3f} ms per reminder due")
    lines += [
        "",
        f"Daily digest (ReminderService.daily_digest at {DIGEST_AT.astimezone(make_tz()):%Y-%m-%d %H:%M} local): "
        f"median [max] of {args.digest_runs} runs, ms",
    ]
    for r in results:
        lines.append(f"  {r.size.label:<10}{_ms(r.digest_ms)}   {r.digest_sent} digests queued")
    if len(results) > 1:
        lines.append(
            f"  (the digest counts the open appeals per agency, so it grows with them: "
            f"{results[-1].digest_ms and statistics.median(results[-1].digest_ms) / statistics.median(results[0].digest_ms):.1f}x "
            f"for {results[-1].size.open / results[0].size.open:.0f}x the open appeals)"
        )
    lines += ["", f"Query plans at {big.size.label} (statements as executed; INSERTs have no plan):"]
    scans: list[tuple[str, Statement, str]] = []
    for label, statements in (("sweep", big.sweep_statements), ("digest", big.digest_statements)):
        for st in statements:
            sql = " ".join(st.sql.split())
            if not st.plan:
                lines.append(f"  [{label}] {st.where}  x{st.count}: {sql[:90]}{'…' if len(sql) > 90 else ''}")
                continue
            lines.append(f"  [{label}] {st.where}  x{st.count}")
            lines.append(f"    {sql}")
            lines.extend(f"      | {p}" for p in st.plan)
            used = ", ".join(dict.fromkeys(st.indexes)) or "none"
            lines.append(f"      -> index used: {used}")
            for scan in st.scans:
                lines.append(f"      !!! {scan}")
                scans.append((label, st, scan))
    lines += ["", "Goals:"]
    for goal in goals(results):
        lines.append(f"  {'PASS' if goal['passed'] else 'FAIL'}  {goal['goal']}")
        lines.append(f"        {goal['detail']}")
    if scans:
        lines += ["", "!!! Statements that scan a whole table or index:"]
        for label, st, scan in scans:
            lines.append(f"!!!   [{label}] {st.where}: {scan}")
    else:
        lines += ["", "No statement scans a whole table or index."]
    return "\n".join(lines)


def make_tz() -> Any:
    return make_settings(Path(tempfile.gettempdir()) / "x.db").tz


def as_json(results: list[SizeResult], args: argparse.Namespace) -> str:
    def statement(st: Statement) -> dict[str, Any]:
        data = asdict(st)
        data["params"] = [p if isinstance(p, int | float | str) or p is None else repr(p) for p in st.params]
        return data

    payload = {
        "sqlite": sqlite3.sqlite_version,
        "runs": args.runs,
        "digest_runs": args.digest_runs,
        "sizes": [
            {
                "appeals": r.size.appeals,
                "open": r.size.open,
                "counts": r.counts,
                "build_s": r.build_s,
                "ticks": [{**asdict(t), "median_ms": t.median} for t in r.ticks],
                "digest_ms": r.digest_ms,
                "digest_median_ms": statistics.median(r.digest_ms),
                "digest_sent": r.digest_sent,
                "sweep_statements": [statement(s) for s in r.sweep_statements],
                "digest_statements": [statement(s) for s in r.digest_statements],
            }
            for r in results
        ],
        "goals": goals(results),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"comma-separated APPEALS[:OPEN] (default {DEFAULT_SIZES}; OPEN defaults to 10 %%)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed ticks per K and size (default 5)")
    parser.add_argument("--digest-runs", type=int, default=3, help="timed digests per size (default 3)")
    parser.add_argument(
        "--k", dest="ks", default=",".join(map(str, KS)), help=f"reminders due per tick (default {','.join(map(str, KS))})"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached data sets")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "tsur-bench-sweep", help="where data sets are kept"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a goal is not met")
    args = parser.parse_args(argv)
    args.ks = sorted({int(k) for k in str(args.ks).split(",") if k.strip()})
    sizes = sorted(iter_sizes(args.sizes), key=lambda s: (s.appeals, s.open))
    if not sizes or not args.ks or args.runs < 1 or args.digest_runs < 1:
        parser.error("need at least one size, one K and one run")
    args.size_list = sizes
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="tsur-sweep-") as tmp:
        for size in args.size_list:
            if not args.json:
                print(f"[{size.label}] preparing the data set…", file=sys.stderr, flush=True)
            cached, build_s = ensure_db(size, args.cache_dir, rebuild=args.rebuild)
            if not args.json:
                print(f"[{size.label}] measuring…", file=sys.stderr, flush=True)
            results.append(asyncio.run(measure(size, cached, build_s, args, Path(tmp))))
    print(as_json(results, args) if args.json else render(results, args))
    if args.strict and not all(goal["passed"] for goal in goals(results)):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
