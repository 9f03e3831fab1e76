"""Reminder sweep benchmark: one tick of `ReminderService.sweep` and one `daily_digest` on a big SQLite database.

The data set (bench/_sweep_data.py) holds 1,000,000 appeals, 100,000 of them open with deadlines spread over the next
year and their ~400,000 pending reminders among 1.3 million reminder rows; it is migrated by the project's own
migrations, bulk-loaded with sqlite3 and cached in a temp directory per size (`--rebuild` to force). The measured code
is the real one: `build_services(make_settings(db), …, ManualClock)` on a copy of the cached file.

A tick is timed with K reminders due (K = 0, 10, 100, 250; 250 is the sweep's batch limit (deadlines.BATCH)): the clock is put on the
due time of the K-th earliest pending reminder, the tick runs, and its effects are undone before the next run (the
claimed reminders' `sent_at` set back to NULL, the escalations it planned and the outbox rows it wrote deleted), so
every run sees the same database. One untimed tick first opens the pooled connection, as a running bot has it open.
The digest runs at 09:00 local a month after the data set's "now" (some appeals overdue), its dedupe rows deleted
between runs.

The same is done at a second, ten times smaller size: if the sweep follows what is due and not what is open, a tick
with K due costs the same at both sizes. Both sizes are open at once and measured in turn, run after run, so that
other work on the machine falls on both alike. The statements the sweep and the digest issue are captured as executed
(SQL and parameters) and their `EXPLAIN QUERY PLAN` printed, with the line of the project's code that issued them;
a plan that scans a whole table or index is flagged. Usage:

    .venv/bin/python bench/sweep.py [--sizes 100000:10000,1000000:100000] [--runs 5] [--json] [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
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
from bot.services.deadlines import BATCH  # noqa: E402
from storage.db import create_engine, create_sessionmaker  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

GOAL_TICK_MS = 50.0  # one tick, at every K measured, at the largest size
GOAL_RATIO = 2.0  # tick(K) at the largest size within this factor of the smallest size
KS = (0, 10, 100, BATCH)
DIGEST_AT = T0 + timedelta(days=30)  # 09:00 Moscow; ~8 % of the open appeals are past their deadline by then
GROWTH_FLAG = 3.0  # a statement alone this much slower at the largest size than at the smallest is flagged
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
    ms: float | None = None  # the statement alone, re-run with its parameters in a rolled-back transaction (min)


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
    """Every distinct statement (and line issuing it) executed while `active`, with its first parameters."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.active = False
        self.statements: dict[tuple[str, str], Statement] = {}
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        if not self.active:
            return
        where = _caller()
        if (sql, where) in self.statements:
            self.statements[sql, where].count += 1
            return
        first = params[0] if many and params and isinstance(params[0], list | tuple) else params
        self.statements[sql, where] = Statement(sql, tuple(first or ()) if _plannable(sql) else (), where)

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
        for marker in (" USING COVERING INDEX ", " USING INDEX "):
            if marker in detail:
                statement.indexes.append(detail.split(marker, 1)[1].split(" ")[0])
        if " USING INTEGER PRIMARY KEY" in detail:
            statement.indexes.append("rowid (INTEGER PRIMARY KEY)")


async def time_alone(engine: AsyncEngine, statement: Statement, repeats: int = 5) -> None:
    """Run the statement by itself (rolled back, so an UPDATE changes nothing): what it costs in the database.
    The fastest of a few runs: the statement's own cost, with as little of the machine's other work as possible."""
    times = []
    async with engine.connect() as conn:
        for _ in range(repeats):
            started = time.perf_counter()
            trans = await conn.begin()
            (await conn.exec_driver_sql(statement.sql, statement.params)).all()
            await trans.rollback()
            times.append((time.perf_counter() - started) * 1000)
    statement.ms = min(times)


def _plannable(sql: str) -> bool:
    return sql.lstrip().split(" ", 1)[0].upper() in {"SELECT", "UPDATE", "DELETE", "WITH"}


# --- measuring ----------------------------------------------------------------------------------------------


@dataclass
class Tick:
    k: int
    due: int  # reminders actually due at the moment chosen
    kinds: dict[str, int]  # of the due ones the tick claims
    claimed: int = 0  # what the sweep returned
    outbox: int = 0  # outbox rows the tick wrote
    escalations: int = 0  # reminders the tick planned (tomorrow's escalations)
    ms: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list, repr=False)

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


def _stored(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class Bench:
    """One size: a private copy of its cached data set and the real services over it."""

    def __init__(self, size: Size, cached: Path, build_s: float | None, workdir: Path) -> None:
        self.work = workdir / f"work-{size.appeals}-{size.open}.db"
        shutil.copyfile(cached, self.work)
        self.result = SizeResult(size, str(cached), build_s, table_counts(self.work))
        # No quiet hours: the data set's due times fall at any hour, and a sweep in quiet hours claims nothing.
        settings = make_settings(self.work, scheduler={"quiet_start": "00:00", "quiet_end": "00:00"})
        self.tz = settings.tz
        self.engine = create_engine(settings.database.url)
        self.clock = ManualClock(T0)
        self.services = build_services(settings, create_sessionmaker(self.engine), self.clock)
        self.recorder = Recorder(self.engine)
        self.last_reminder = 0
        self.pending = 0

    async def open(self) -> None:
        self.last_reminder = await self._scalar("SELECT max(id) FROM reminders")
        self.pending = await self._pending()
        if await self._scalar("SELECT count(*) FROM outbox"):
            raise RuntimeError(f"{self.work}: the data set has outbox rows")
        self.clock.set(await self._moment_for(0))
        if await self.services.reminders.sweep() != 0:  # untimed: opens the pooled connection
            raise RuntimeError("a reminder was due before the first one")

    async def close(self) -> None:
        await self.engine.dispose()
        for path in (self.work, Path(f"{self.work}-wal"), Path(f"{self.work}-shm")):
            path.unlink(missing_ok=True)

    async def _scalar(self, sql: str, *params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.exec_driver_sql(sql, params)).scalar()

    async def _pending(self) -> int:
        return int(await self._scalar("SELECT count(*) FROM reminders WHERE sent_at IS NULL"))

    async def _moment_for(self, k: int) -> datetime:
        """The due time of the K-th earliest pending reminder (a second before the first one for K = 0)."""
        if k == 0:
            return parse(await self._scalar("SELECT min(due_at) FROM reminders WHERE sent_at IS NULL")) - timedelta(
                seconds=1
            )
        sql = "SELECT due_at FROM reminders WHERE sent_at IS NULL ORDER BY due_at LIMIT 1 OFFSET ?"
        return parse(await self._scalar(sql, k - 1))

    async def _due(self) -> list[tuple[int, str]]:
        async with self.engine.connect() as conn:
            rows = await conn.exec_driver_sql(
                "SELECT id, kind FROM reminders WHERE sent_at IS NULL AND due_at <= ? ORDER BY due_at",
                (_stored(self.clock.now()),),
            )
            return [(r[0], r[1]) for r in rows.all()]

    async def _undo(self, claimed: list[int]) -> tuple[int, int]:
        """Put the database back as it was; returns the (outbox rows, reminders) the tick or digest had written."""
        async with self.engine.begin() as conn:
            await conn.exec_driver_sql(
                "UPDATE reminders SET sent_at = NULL WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(claimed),),
            )
            planned = (await conn.exec_driver_sql("DELETE FROM reminders WHERE id > ?", (self.last_reminder,))).rowcount
            outbox = (await conn.exec_driver_sql("DELETE FROM outbox")).rowcount
            await conn.exec_driver_sql("DELETE FROM digests")  # the digest's claim of its day
        return outbox, planned

    async def prepare_tick(self, k: int) -> Tick:
        self.clock.set(await self._moment_for(k))
        due = await self._due()
        kinds: dict[str, int] = {}
        for _id, kind in due[:BATCH]:
            kinds[kind] = kinds.get(kind, 0) + 1
        tick = Tick(k, len(due), dict(sorted(kinds.items())), ids=[i for i, _kind in due])
        self.result.ticks.append(tick)
        return tick

    async def run_tick(self, tick: Tick) -> None:
        self.clock.set(await self._moment_for(tick.k))
        started = time.perf_counter()
        tick.claimed = await self.services.reminders.sweep()
        tick.ms.append((time.perf_counter() - started) * 1000)
        tick.outbox, tick.escalations = await self._undo(tick.ids)

    async def check(self) -> None:
        if await self._pending() != self.pending or await self._scalar("SELECT max(id) FROM reminders") != (
            self.last_reminder
        ):
            raise RuntimeError("undoing the ticks did not restore the reminders")

    async def run_digest(self) -> None:
        self.clock.set(DIGEST_AT)
        started = time.perf_counter()
        self.result.digest_sent = await self.services.reminders.daily_digest()
        self.result.digest_ms.append((time.perf_counter() - started) * 1000)
        await self._undo([])

    async def record(self, k: int) -> None:
        """Capture the statements of one tick with K due and of one digest (untimed), explain and time them."""
        tick = Tick(k, 0, {})
        self.clock.set(await self._moment_for(k))
        tick.ids = [i for i, _kind in await self._due()]
        self.recorder.active = True
        await self.services.reminders.sweep()
        self.recorder.active = False
        await self._undo(tick.ids)
        self.result.sweep_statements = self.recorder.take()
        self.clock.set(DIGEST_AT)
        self.recorder.active = True
        await self.services.reminders.daily_digest()
        self.recorder.active = False
        await self._undo([])
        self.result.digest_statements = self.recorder.take()
        for statement in (*self.result.sweep_statements, *self.result.digest_statements):
            if _plannable(statement.sql):
                await explain(self.engine, statement)
                await time_alone(self.engine, statement)


async def measure(
    prepared: list[tuple[Size, Path, float | None]], args: argparse.Namespace, workdir: Path
) -> list[SizeResult]:
    """All sizes open at once and measured in turn, run after run, so a busy moment of the machine falls on
    every size alike instead of on whichever happened to run then."""
    benches = [Bench(size, cached, build_s, workdir) for size, cached, build_s in prepared]
    try:
        for bench in benches:
            await bench.open()
        for k in args.ks:
            _progress(args, f"ticks with {k} due…")
            ticks = [await bench.prepare_tick(k) for bench in benches]
            for _ in range(args.runs):
                for bench, tick in zip(benches, ticks, strict=True):
                    await bench.run_tick(tick)
            for bench in benches:
                await bench.check()
        _progress(args, "digests…")
        for _ in range(args.digest_runs):
            for bench in benches:
                await bench.run_digest()
        _progress(args, "query plans…")
        for bench in benches:
            await bench.record(max(args.ks))
    finally:
        for bench in benches:
            await bench.close()
    return [bench.result for bench in benches]


def _progress(args: argparse.Namespace, message: str) -> None:
    if not args.json:
        print(message, file=sys.stderr, flush=True)


# --- reporting ----------------------------------------------------------------------------------------------


def _marginal(result: SizeResult) -> float | None:
    """ms per reminder due, from the smallest K to the largest."""
    first, last = result.ticks[0], result.ticks[-1]
    if last.due <= first.due:
        return None
    return (last.median - first.median) / (last.due - first.due)


def goals(results: list[SizeResult]) -> list[dict[str, Any]]:
    big, small = results[-1], results[0]
    slow = [t for t in big.ticks if t.median >= GOAL_TICK_MS]
    detail = ", ".join(f"K={t.k}: {t.median:.1f} ms" for t in big.ticks)
    marginal = _marginal(big)
    if slow and marginal:
        reach = (GOAL_TICK_MS - big.ticks[0].median) / marginal
        detail += f"; the budget is spent at about {max(0, reach):.0f} reminders due ({marginal:.2f} ms each)"
    out = [
        {
            "goal": f"one tick < {GOAL_TICK_MS:.0f} ms at {big.size.label}, for every K measured",
            "passed": not slow,
            "detail": detail,
        }
    ]
    if len(results) > 1:
        ratios = {t.k: t.median / small.tick(t.k).median for t in big.ticks}
        k_worst = max(ratios, key=lambda k: ratios[k])
        first, last = big.ticks[0], big.ticks[-1]
        out.append(
            {
                "goal": f"cost follows the reminders due, not the open appeals: tick(K) at {big.size.label} within "
                f"{GOAL_RATIO:.0f}x of {small.size.label} for every K",
                "passed": ratios[k_worst] <= GOAL_RATIO,
                "detail": f"worst ratio {ratios[k_worst]:.2f} (K={k_worst}) with "
                f"{big.size.open / small.size.open:.0f}x the open appeals; at {big.size.label} "
                f"tick(K={last.k}) is {last.median / max(first.median, 1e-9):.0f}x tick(K={first.k})",
            }
        )
    return out


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} [{max(values):7.2f}]"


def _short_sql(sql: str) -> str:
    sql = " ".join(sql.split())
    sql = re.sub(r"\?(?:, \?){4,}", lambda m: f"?, …({m.group(0).count('?')} values)", sql)
    return re.sub(r"SELECT appeals\.id, (?:appeals\.\w+, )+appeals\.\w+ FROM", "SELECT appeals.id, appeals.… FROM", sql)


def render(results: list[SizeResult], args: argparse.Namespace, tz: Any) -> str:
    big, small = results[-1], results[0]
    lines = [
        f"Reminder sweep benchmark: SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__} + aiosqlite,"
        f" Python {sys.version.split()[0]}; data set 'now' {T0:%Y-%m-%d %H:%M} UTC; no ANALYZE (as in production)",
        f"Machine: {os.cpu_count()} CPUs, load average {args.load[0]:.2f} before the run and"
        f" {os.getloadavg()[0]:.2f} after (other work on the machine shows up as noise in the maxima)",
        "",
        f"Data sets (cached in {Path(results[0].path).parent}):",
        f"  {'size':<10}{'appeals':>11}{'open':>9}{'reminders':>11}{'pending':>9}{'file MB':>9}  build",
    ]
    for r in results:
        c = r.counts
        mb = Path(r.path).stat().st_size / 1e6
        build = f"built in {r.build_s:.1f} s" if r.build_s is not None else "cached (--rebuild to rebuild)"
        counts = f"{c['appeals']:>11,}{c['open']:>9,}{c['reminders']:>11,}{c['pending']:>9,}"
        lines.append(f"  {r.size.label:<10}{counts}{mb:>9.0f}  {build}")
    header = "".join(f"{r.size.label:>19}" for r in results)
    ratio_head = f"{'ratio':>8}" if len(results) > 1 else ""
    lines += [
        "",
        f"One sweep tick (ReminderService.sweep, batch limit {BATCH}), median [max] of {args.runs} runs, ms:",
        f"  {'K due':>6}{header}{ratio_head}   kinds due (at {big.size.label})",
    ]
    for k in args.ks:
        ticks = [r.tick(k) for r in results]
        row = f"  {k:>6}" + "".join(f"{_ms(t.ms):>19}" for t in ticks)
        if len(results) > 1:
            row += f"{ticks[-1].median / ticks[0].median:>8.2f}"
        lines.append(f"{row}   " + (", ".join(f"{n} {kind}" for kind, n in ticks[-1].kinds.items()) or "-"))
        for r, t in zip(results, ticks, strict=True):
            if t.claimed != min(t.due, BATCH):
                lines.append(f"         !!! at {r.size.label} the tick claimed {t.claimed} of {t.due} due")
    last = big.ticks[-1]
    executed = sum(st.count for st in big.sweep_statements)
    inserts = sum(st.count for st in big.sweep_statements if not _plannable(st.sql))
    lines.append(
        f"  (each tick claimed what was due and was undone after; at {big.size.label}, K={last.k}: "
        f"{last.outbox} outbox rows written, {last.escalations} escalations planned for tomorrow;"
        f" {executed} statements executed, {inserts} of them single-row INSERTs)"
    )
    for r in results:
        per = _marginal(r)
        if per is not None:
            lines.append(f"  marginal cost at {r.size.label}: {per:.3f} ms per reminder due")
    lines += [
        "",
        f"Daily digest (ReminderService.daily_digest at {DIGEST_AT.astimezone(tz):%Y-%m-%d %H:%M} local), "
        f"median [max] of {args.digest_runs} runs, ms:",
    ]
    for r in results:
        lines.append(f"  {r.size.label:<10}{_ms(r.digest_ms)}   {r.digest_sent} digests queued")
    if len(results) > 1:
        growth = statistics.median(big.digest_ms) / statistics.median(small.digest_ms)
        lines.append(
            f"  ({growth:.1f}x for {big.size.open / small.size.open:.0f}x the open appeals: the digest counts them,"
            " so it may grow with them; it runs once a day)"
        )
    lines += [
        "",
        f"Statements of the K={last.k} tick and of one digest at {big.size.label}, as executed, with the line that"
        " issued each, its query plan and the time of the statement alone (fastest of 5)"
        + (f" [at {small.size.label}]" if len(results) > 1 else "")
        + ". An INSERT is shown at the line whose query made the ORM flush it:",
    ]
    scans: list[tuple[str, Statement, str]] = []
    growing: list[tuple[str, Statement, float]] = []
    for label, statements in (("sweep", big.sweep_statements), ("digest", big.digest_statements)):
        other = {st.sql: st for st in (small.sweep_statements if label == "sweep" else small.digest_statements)}
        for st in statements:
            sql = _short_sql(st.sql)
            if not st.plan:
                lines.append(f"  [{label}] x{st.count} at {st.where}: {sql[:60]}…")
                continue
            timing = f"{st.ms:.2f} ms" if st.ms is not None else "?"
            then = other.get(st.sql)
            growth = None
            if len(results) > 1 and then is not None and then.ms is not None and st.ms is not None:
                timing += f" [{then.ms:.2f} ms]"
                growth = st.ms / then.ms
            lines.append(f"  [{label}] x{st.count} at {st.where}: {timing} each")
            lines.append(f"      {sql}")
            lines.extend(f"      | {p}" for p in st.plan)
            lines.append(f"      -> index used: {', '.join(dict.fromkeys(st.indexes)) or 'NONE'}")
            for scan in st.scans:
                lines.append(f"      !!! {scan}")
                scans.append((label, st, scan))
            if not st.indexes and not st.scans:
                scans.append((label, st, "no index in the plan"))
            if growth is not None and growth > GROWTH_FLAG and st.ms is not None and st.ms >= 1.0:
                lines.append(
                    f"      !! its own cost grows with the data: {growth:.1f}x (it visits rows in proportion to them)"
                )
                growing.append((label, st, growth))
    lines += ["", "Goals:"]
    for goal in goals(results):
        lines.append(f"  {'PASS' if goal['passed'] else 'FAIL'}  {goal['goal']}")
        lines.append(f"        {goal['detail']}")
    if scans:
        lines += ["", "!!! STATEMENTS THAT SCAN A WHOLE TABLE OR INDEX:"]
        lines += [f"!!!   [{label}] {st.where}: {scan}" for label, st, scan in scans]
    else:
        lines += ["", "Every statement of the tick and of the digest is served by an index (no full scan)."]
    if growing:
        lines += ["Served by an index, but costing more with more data (every open appeal is visited):"]
        lines += [
            f"  [{label}] {st.where}: {g:.1f}x from {small.size.label} to {big.size.label}" for label, st, g in growing
        ]
    return "\n".join(lines)


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
                "path": r.path,
                "build_s": r.build_s,
                "ticks": [
                    {**{k: v for k, v in asdict(t).items() if k != "ids"}, "median_ms": t.median} for t in r.ticks
                ],
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
        "--k",
        dest="ks",
        default=",".join(map(str, KS)),
        help=f"reminders due per tick (default {','.join(map(str, KS))})",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached data sets")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tsur-bench-sweep",
        help="where data sets are kept",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a goal is not met")
    args = parser.parse_args(argv)
    try:
        args.ks = sorted({int(k) for k in str(args.ks).split(",") if k.strip()})
        args.size_list = sorted(set(iter_sizes(args.sizes)), key=lambda s: (s.appeals, s.open))
    except ValueError as exc:
        parser.error(str(exc))
    if not args.size_list or not args.ks or min(args.ks) < 0 or args.runs < 1 or args.digest_runs < 1:
        parser.error("need at least one size, one K >= 0 and one run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.load = os.getloadavg()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    prepared: list[tuple[Size, Path, float | None]] = []
    for size in args.size_list:
        _progress(args, f"[{size.label}] data set…")
        cached, build_s = ensure_db(size, args.cache_dir, rebuild=args.rebuild)
        if build_s is not None:
            _progress(args, f"[{size.label}] built in {build_s:.1f} s: {cached}")
        prepared.append((size, cached, build_s))
    with tempfile.TemporaryDirectory(prefix="tsur-sweep-") as tmp:
        results = asyncio.run(measure(prepared, args, Path(tmp)))
    tz = make_settings(Path(tmp) / "absent.db").tz
    print(as_json(results, args) if args.json else render(results, args, tz))
    if args.strict and not all(goal["passed"] for goal in goals(results)):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
