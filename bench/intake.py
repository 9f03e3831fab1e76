"""Intake benchmark: many simulated residents file complete appeals at once through the Bot API emulator.

The emulator and the simulated people run in this process; the bot runs in its own process (`python -m bot run`,
pointed at the emulator by `TSUR_*` environment variables, with a fresh SQLite database), so the bot and the load
generator do not share one core and the bot's peak memory can be read from /proc. The same load is then sent to a
bare aiogram echo bot (`bench/echo_bot.py`), also in its own process, against a fresh emulator with the same
settings: that is the ceiling of this machine, and the bot's figures are reported against it. A third process,
the same echo "tuned" with the bot's two framework-level remedies (`bench/echo_bot.py --tuned`: aiogram's response
classes pinned, calls sent as JSON), plays phase 1 too: the ratio against it is the cost of the bot's own code,
since stock aiogram spends a large share of the echo's CPU rebuilding response classes (`--no-tuned` leaves it out).

Phase 1 "throughput": R residents at once each file a complete appeal (13 updates: /start, language, consent,
File an appeal, topic, subcategory, description, a photo, Done, typed address, district, kind "Message", Confirm),
each waiting for the bot's answer to a step before the next. The echo bot gets R people sending the same 13
updates (the same texts, a photo, the same number of button presses) with the same wait-for-reply discipline.
Both bots stay up for the whole run and phase 1 is played in rounds (default 5) that alternate between them, new
people each round; the ratio is the median of the rounds' ratios, so a change in the machine's speed during the
run (other tenants, clock scaling) weighs on both bots alike.

Phase 2 "latency": updates are sent on a fixed schedule (default 100 updates/s for 10 s), each by the next idle
person of a pool (a person never sends before the previous answer came, as in life), for both bots.

Reply latency is the time from the user's update being queued in the emulator to the bot's first message, edit or
callback answer in that chat after it. Usage:

    .venv/bin/python bench/intake.py [--residents 50] [--rounds 5] [--rate 100] [--duration 10] [--no-tuned] [--json]
                                     [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/intake.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from emulator import BotAPIEmulator, EmulatedUser  # noqa: E402

BOT_TOKEN = "123456:BENCH-TSUR"
ECHO_TOKEN = "654321:BENCH-ECHO"
ECHO_TUNED_TOKEN = "754321:BENCH-ECHOT"
ECHO_PRESS = "🔁 Press"  # the echo bot's only button (bench/echo_bot.py)
FAILURE_MARK = "Something went wrong"  # the bot's answer to an exception in a handler

STEP_TIMEOUT = 15.0  # seconds for one answer; a slower answer is a failure, not a data point
START_TIMEOUT = 60.0  # seconds for a bot process to migrate its database and start polling
STOP_TIMEOUT = 10.0  # seconds for a bot process to exit after SIGTERM before it is killed

GOAL_RATIO = 0.5  # the bot's updates/s at least this share of the echo ceiling
GOAL_P99_MS = 150.0  # p99 reply latency at the paced rate


# --------------------------------------------------------------------------- scripts


@dataclass(frozen=True, slots=True)
class Step:
    """One update a person sends, and how they know the bot has answered it."""

    kind: Literal["text", "reply", "click", "click_first", "photo"]
    arg: str = ""
    expect: str = ""
    """The step is answered when a new bot message contains this ("" = any new message)."""
    appeal: bool = False
    """The step completes an appeal (the Confirm press)."""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.arg}".strip()


ONBOARDING = (
    Step("text", "/start", expect="Choose your language"),
    Step("click", "✅ English", expect="Consent to the processing of personal data"),
    Step("click", "✅ I agree", expect="your consent is recorded"),
)
FILING = (
    Step("reply", "📝 File an appeal", expect="Choose the topic"),
    Step("click", "Housing, utilities and waste", expect="Choose the subcategory"),
    Step("click_first", expect="Describe the problem"),
    Step("text", "No water in our building for three days", expect="Attach photos"),
    Step("photo", expect="Files attached: 1 of 10"),
    Step("click", "✅ Done (1)", expect="Where is the problem"),
    Step("text", "Grozny, Mira street 12", expect="Choose the municipal district"),
    Step("click", "Grozny", expect="How should it be handled"),
    Step("click", "⚡ Message (10 days)", expect="Check your appeal"),
    Step("click", "✅ Confirm", expect="Your appeal is registered", appeal=True),
)
APPEAL_STEPS = len(ONBOARDING) + len(FILING)


def echo_step(step: Step) -> Step:
    """The same kind of update for the echo bot: texts stay texts, presses stay presses, the photo stays."""
    if step.kind in ("click", "click_first"):
        return Step("click", ECHO_PRESS, appeal=step.appeal)
    if step.kind in ("text", "reply"):
        return Step("text", step.arg, appeal=step.appeal)
    return Step(step.kind, appeal=step.appeal)


@dataclass(frozen=True, slots=True)
class Target:
    """What is benchmarked: one bot, the command that runs it and the script its users follow."""

    name: str
    token: str
    onboarding: tuple[Step, ...]
    filing: tuple[Step, ...]
    command: Callable[[str], list[str]]
    """The bot's argv, given the emulator's base URL."""
    database: bool
    """The bot keeps appeals in SQLite (checked after each phase)."""
    latency: bool = True
    """Phase 2 is played for it too (the tuned echo is a reference for phase 1 only)."""

    def one_appeal(self) -> list[Step]:
        return [*self.onboarding, *self.filing]

    def forever(self) -> Iterator[tuple[int, Step]]:
        """Onboarding once, then one appeal after another; each step with its index in one_appeal()."""
        filing = list(enumerate(self.filing, start=len(self.onboarding)))
        return itertools.chain(enumerate(self.onboarding), itertools.cycle(filing))


TSUR = Target(
    name="tsur-bot",
    token=BOT_TOKEN,
    onboarding=ONBOARDING,
    filing=FILING,
    command=lambda base: [sys.executable, "-m", "bot", "run"],
    database=True,
)


def echo_command(token: str, *extra: str) -> Callable[[str], list[str]]:
    """The echo bot's argv for a token (and `--tuned`), given the emulator's base URL."""
    script = str(ROOT / "bench" / "echo_bot.py")
    return lambda base: [sys.executable, script, "--api-base", base, "--token", token, "--polling-timeout", "2", *extra]


ECHO = Target(
    name="echo (aiogram)",
    token=ECHO_TOKEN,
    onboarding=tuple(echo_step(s) for s in ONBOARDING),
    filing=tuple(echo_step(s) for s in FILING),
    command=echo_command(ECHO_TOKEN),
    database=False,
)
ECHO_TUNED = Target(
    name="echo, tuned",
    token=ECHO_TUNED_TOKEN,
    onboarding=ECHO.onboarding,
    filing=ECHO.filing,
    command=echo_command(ECHO_TUNED_TOKEN, "--tuned"),
    database=False,
    latency=False,
)


# --------------------------------------------------------------------------- measuring one step


class BenchError(Exception):
    """The run itself failed (a bot died, did not answer, or lost an appeal): no figures to trust."""


class _FirstChange(asyncio.Future[None]):
    """A waiter put among a chat's waiters: stamps the moment the bot first changes the chat.

    The emulator wakes a chat's waiters on every message, edit, deletion and callback answer the bot makes there.
    """

    stamp = 0.0

    def set_result(self, result: None) -> None:
        self.stamp = time.perf_counter()
        super().set_result(result)


@dataclass
class Recorder:
    latencies: list[float] = field(default_factory=list)
    """Seconds from an update being queued to the bot's first reaction in that chat."""
    by_step: dict[int, list[float]] = field(default_factory=dict)
    """The same, per step of the script (by its index in Target.one_appeal())."""
    updates: int = 0
    appeals: int = 0


async def _perform(user: EmulatedUser, step: Step) -> None:
    if step.kind == "text":
        await user.send_text(step.arg)
    elif step.kind == "reply":
        await user.press_reply_button(step.arg)
    elif step.kind == "click":
        await user.click(step.arg)
    elif step.kind == "click_first":
        last = user.last_message
        if last is None or not last.inline_keyboard:
            raise BenchError(f"user {user.id}: no inline keyboard to choose from.\n{user.dump()}")
        await user.click(last.inline_keyboard[0][0][0])
    else:
        await user.send_photo()


async def run_step(user: EmulatedUser, step: Step, recorder: Recorder, index: int) -> None:
    """Send one update, wait for the complete answer and record the latency of the first reaction."""
    before = len(user.messages)
    probe = _FirstChange()
    user.chat.waiters.append(probe)
    sent = time.perf_counter()
    try:
        await _perform(user, step)

        def answered() -> bool:
            new = user.messages[before:]
            return any(step.expect in (m.text or "") or FAILURE_MARK in (m.text or "") for m in new)

        await user.wait_until(answered, timeout=STEP_TIMEOUT, what=f"the answer to {step.kind} {step.arg!r}")
    except TimeoutError as error:
        raise BenchError(str(error)) from None
    finally:
        if not probe.done():
            probe.cancel()
    if any(FAILURE_MARK in (m.text or "") for m in user.messages[before:]):
        raise BenchError(f"the bot failed on {step.kind} {step.arg!r} of user {user.id}.\n{user.dump()}")
    recorder.latencies.append(probe.stamp - sent)
    recorder.by_step.setdefault(index, []).append(probe.stamp - sent)
    recorder.updates += 1
    if step.appeal:
        recorder.appeals += 1


# --------------------------------------------------------------------------- the bot process


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the benchmark dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class BotProcess:
    """One bot in its own process, with its log in a file."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path
        self.peak_rss_mb = 0.0

    @classmethod
    async def start(cls, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> BotProcess:
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        return cls(name, proc, log_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.returncode is None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def read_peak_rss(self) -> float:
        """VmHWM (the peak resident set size) in MB; kept in peak_rss_mb for after the process is gone."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
        return self.peak_rss_mb

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    async def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(OSError):
                self.read_peak_rss()
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


async def wait_polling(emu: BotAPIEmulator, bot: BotProcess, timeout: float) -> float:
    """Wait until the bot's first getUpdates; return the seconds it took."""
    started = time.perf_counter()
    deadline = started + timeout
    while not any(call.method == "getUpdates" for call in emu.requests):
        if not bot.alive():
            raise BenchError(f"{bot.name} exited with {bot.proc.returncode} before polling:\n{bot.log_tail()}")
        if time.perf_counter() > deadline:
            raise BenchError(f"{bot.name} did not start polling within {timeout:.0f} s:\n{bot.log_tail()}")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


def bot_env(token: str, base_url: str, db_path: Path, workdir: Path) -> dict[str, str]:
    """The bot's configuration, from the environment only (no config.toml is read)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUR_")}
    env.update(
        {
            "TSUR_CONFIG": str(workdir / "absent-config.toml"),
            "TSUR_BOT__TOKEN": token,
            "TSUR_BOT__API_BASE": base_url,
            "TSUR_BOT__POLLING_TIMEOUT": "2",
            "TSUR_DATABASE__URL": f"sqlite+aiosqlite:///{db_path}",
            "TSUR_LOGGING__LEVEL": "WARNING",
            # Scripted people are faster than any person; the throttle must not drop their updates.
            "TSUR_THROTTLE__RATE": "100000",
            "TSUR_THROTTLE__BURST": "100000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def count_appeals(db_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)) as db:
        return int(db.execute("select count(*) from appeals").fetchone()[0])


# --------------------------------------------------------------------------- the phases


@dataclass
class PhaseResult:
    wall_s: float
    updates: int
    appeals: int
    latencies_ms: list[float]
    steps_ms: dict[int, list[float]]
    """Latencies per step of the script, in the script's order."""
    bot_cpu_s: float
    gen_cpu_s: float
    """CPU time of this process (emulator and simulated people) during the phase."""
    other_cpu_s: float
    """CPU time of every other process on the machine during the phase (noise: it competes for the 2 cores)."""
    target_rate: float | None = None
    send_rate: float | None = None
    """Phase 2: updates sent per second, as scheduled if the bot keeps up."""
    max_send_lag_ms: float | None = None
    planned: int | None = None
    """Phase 2: updates the schedule had (fewer are sent when the phase hits its time limit)."""

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.wall_s

    @property
    def appeals_per_s(self) -> float:
        return self.appeals / self.wall_s

    def pct(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def kept_up(self) -> bool | None:
        if self.target_rate is None or self.send_rate is None:
            return None
        return self.send_rate >= 0.95 * self.target_rate and self.updates == self.planned

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "wall_s": round(self.wall_s, 3),
            "updates": self.updates,
            "appeals": self.appeals,
            "appeals_per_s": round(self.appeals_per_s, 2),
            "updates_per_s": round(self.updates_per_s, 1),
            "p50_ms": round(self.pct(50), 1),
            "p99_ms": round(self.pct(99), 1),
            "max_ms": round(max(self.latencies_ms, default=0.0), 1),
            "bot_cpu_ms_per_update": round(1000 * self.bot_cpu_s / max(self.updates, 1), 2),
            "bot_cpu_pct": round(100 * self.bot_cpu_s / self.wall_s, 1),
            "generator_cpu_pct": round(100 * self.gen_cpu_s / self.wall_s, 1),
            "other_cpu_pct": round(100 * self.other_cpu_s / self.wall_s, 1),
            "steps": {
                str(index): {
                    "n": len(values),
                    "p50_ms": round(percentile(values, 50), 1),
                    "p99_ms": round(percentile(values, 99), 1),
                }
                for index, values in self.steps_ms.items()
            },
        }
        if self.target_rate is not None:
            out |= {
                "target_rate": self.target_rate,
                "planned": self.planned,
                "send_rate": round(self.send_rate or 0.0, 1),
                "max_send_lag_ms": round(self.max_send_lag_ms or 0.0, 1),
                "kept_up": self.kept_up,
            }
        return out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot (/proc/stat), to tell what other processes took."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class _Meter:
    """Wall and CPU time of a phase: this process's, the bot's and everything else's on the machine."""

    def __init__(self, bot: BotProcess) -> None:
        self.bot = bot
        self.wall = time.perf_counter()
        self.gen_cpu = time.process_time()
        self.bot_cpu = bot.cpu_seconds()
        self.busy = machine_busy_seconds()

    def result(self, recorder: Recorder, **extra: Any) -> PhaseResult:
        return PhaseResult(
            wall_s=time.perf_counter() - self.wall,
            updates=recorder.updates,
            appeals=recorder.appeals,
            latencies_ms=[1000 * x for x in recorder.latencies],
            steps_ms={index: [1000 * x for x in values] for index, values in sorted(recorder.by_step.items())},
            bot_cpu_s=(bot_cpu := self.bot.cpu_seconds() - self.bot_cpu),
            gen_cpu_s=(gen_cpu := time.process_time() - self.gen_cpu),
            other_cpu_s=max(0.0, machine_busy_seconds() - self.busy - bot_cpu - gen_cpu),
            **extra,
        )


async def closed_loop(
    emu: BotAPIEmulator, bot: BotProcess, target: Target, user_ids: Iterable[int], timeout: float
) -> PhaseResult:
    """Everyone at once, each through one complete appeal, each step after the answer to the previous one."""
    recorder = Recorder()
    users = [emu.user(uid, first_name="Resident", language_code="en") for uid in user_ids]

    async def one(user: EmulatedUser) -> None:
        for index, step in enumerate(target.one_appeal()):
            await run_step(user, step, recorder, index)

    meter = _Meter(bot)
    tasks = [asyncio.create_task(one(user)) for user in users]
    if not tasks:
        return meter.result(recorder)
    try:
        done, pending = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if pending:
            raise BenchError(f"{len(pending)} of {len(users)} people had not finished after {timeout:.0f} s")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return meter.result(recorder)


async def paced(
    emu: BotAPIEmulator, bot: BotProcess, target: Target, user_ids: Iterable[int], rate: float, duration: float
) -> PhaseResult:
    """Open-loop load: update i goes out at start + i/rate, sent by the person idle for the longest time.

    A person never sends before the answer to their previous update (a button must exist to be pressed), so
    when nobody of the pool is idle the schedule slips: the send rate then shows the bot did not keep up.
    """
    recorder = Recorder()
    idle: asyncio.Queue[tuple[EmulatedUser, Iterator[tuple[int, Step]]]] = asyncio.Queue()
    for uid in user_ids:
        idle.put_nowait((emu.user(uid, first_name="Resident", language_code="en"), target.forever()))
    errors: list[BaseException] = []
    inflight: set[asyncio.Task[None]] = set()

    async def one(person: tuple[EmulatedUser, Iterator[tuple[int, Step]]]) -> None:
        index, step = next(person[1])
        try:
            await run_step(person[0], step, recorder, index)
        except Exception as error:
            errors.append(error)
        else:
            idle.put_nowait(person)

    total = max(1, round(rate * duration))
    meter = _Meter(bot)
    start = time.perf_counter()
    # A bot far below the rate would stretch the phase without end: stop sending at twice its duration.
    stop_at = start + 2 * duration
    max_lag = 0.0
    sent = 0
    try:
        for i in range(total):
            if time.perf_counter() > stop_at:
                break
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if errors:
                raise errors[0]
            try:
                person = await asyncio.wait_for(idle.get(), STEP_TIMEOUT)
            except TimeoutError:
                raise BenchError(f"no idle person for {STEP_TIMEOUT:.0f} s: the bot stopped answering") from None
            max_lag = max(max_lag, time.perf_counter() - (start + i / rate))
            task = asyncio.create_task(one(person))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            sent += 1
        sent_in = time.perf_counter() - start
        if inflight:
            await asyncio.wait(set(inflight), timeout=STEP_TIMEOUT + 1)
        if errors:
            raise errors[0]
        if inflight:
            raise BenchError(f"{len(inflight)} updates still unanswered after the paced phase")
    finally:
        for task in list(inflight):
            task.cancel()
        await asyncio.gather(*inflight, return_exceptions=True)
    # Update 0 goes at 0 s and update n-1 at (n-1)/rate: n updates span n/rate seconds of schedule.
    send_rate = sent / (sent_in + 1 / rate)
    return meter.result(recorder, target_rate=rate, send_rate=send_rate, max_send_lag_ms=1000 * max_lag, planned=total)


# --------------------------------------------------------------------------- one bot, both phases


@dataclass
class BotRun:
    name: str
    startup_s: float = 0.0
    peak_rss_mb: float = 0.0
    rounds: list[PhaseResult] = field(default_factory=list)
    """Phase 1, once per round (the rounds of both bots alternate)."""
    latency: PhaseResult | None = None
    appeals_in_db: int | None = None
    appeals_expected: int | None = None
    profile: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> PhaseResult | None:
        """The median round by updates/s."""
        if not self.rounds:
            return None
        return sorted(self.rounds, key=lambda r: r.updates_per_s)[(len(self.rounds) - 1) // 2]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class LiveBot:
    """One bot process polling its own emulator, kept running through all the rounds."""

    target: Target
    emu: BotAPIEmulator
    bot: BotProcess
    db_path: Path
    run: BotRun
    profiler: asyncio.subprocess.Process | None = None
    expected_appeals: int = 0

    def check_appeals(self, when: str) -> None:
        if not self.target.database:
            return
        self.run.appeals_in_db = count_appeals(self.db_path)
        self.run.appeals_expected = self.expected_appeals
        if self.run.appeals_in_db != self.expected_appeals:
            raise BenchError(
                f"{self.target.name}: the database holds {self.run.appeals_in_db} appeals {when}, "
                f"expected {self.expected_appeals}"
            )

    def check_alive(self) -> None:
        if not self.bot.alive():
            raise BenchError(f"{self.target.name} exited during the run:\n{self.bot.log_tail()}")


@contextlib.asynccontextmanager
async def live_bot(target: Target, args: argparse.Namespace, workdir: Path) -> Any:
    """Start a bot against a fresh emulator (the same settings for both bots), warm it up, stop it at the end."""
    run = BotRun(target.name)
    name = target.token.split(":")[0]
    db_path = workdir / f"{name}.db"
    async with BotAPIEmulator(token=target.token, bot_username="bench_bot", host="127.0.0.1", port=0) as emu:
        env = bot_env(target.token, emu.base_url, db_path, workdir)
        bot = await BotProcess.start(target.name, target.command(emu.base_url), env, workdir / f"{name}.log")
        live = LiveBot(target, emu, bot, db_path, run)
        try:
            run.startup_s = await wait_polling(emu, bot, START_TIMEOUT)
            log(f"{target.name}: polling after {run.startup_s:.1f} s (pid {bot.pid})")
            if args.profile:
                live.profiler = await start_profiler(bot, Path(args.profile) / f"{profile_name(target)}.txt")
            warm = await closed_loop(emu, bot, target, range(90_000, 90_000 + args.warmup), timeout=60)
            live.expected_appeals += warm.appeals
            log(f"{target.name}: warm-up {warm.appeals} appeals")
            yield live
            live.check_alive()
            run.peak_rss_mb = bot.read_peak_rss()
        finally:
            await bot.stop()
            if live.profiler is not None:
                await stop_profiler(live.profiler)
        if args.profile:
            run.profile = summarize_profile(Path(args.profile) / f"{profile_name(target)}.txt")
        errors = [line for line in bot.log_tail(200).splitlines() if " ERROR " in line or "Traceback" in line]
        if errors:
            log(f"{target.name}: {len(errors)} error lines in its log, e.g. {errors[0]}")


async def throughput_round(live: LiveBot, args: argparse.Namespace, index: int) -> None:
    first = 100_000 + index * args.residents
    result = await closed_loop(
        live.emu, live.bot, live.target, range(first, first + args.residents), timeout=args.phase_timeout
    )
    live.run.rounds.append(result)
    live.expected_appeals += result.appeals
    log(f"{live.target.name}: phase 1 round {index + 1}: {result.updates} updates in {result.wall_s:.2f} s")
    live.check_appeals(f"after round {index + 1} of phase 1")


async def latency_phase(live: LiveBot, args: argparse.Namespace) -> None:
    pool = range(200_000, 200_000 + args.pool)
    lat = live.run.latency = await paced(live.emu, live.bot, live.target, pool, args.rate, args.duration)
    live.expected_appeals += lat.appeals
    log(f"{live.target.name}: phase 2 {lat.updates} updates at {lat.send_rate or 0:.1f}/s")
    live.check_appeals("after phase 2")


async def bench_bots(targets: list[Target], args: argparse.Namespace, workdir: Path) -> list[BotRun]:
    """Both bots run side by side (one at work at a time): phase 1 in alternating rounds, so that a change in
    the machine's speed during the run (other tenants, clock scaling) touches both alike; then phase 2 each."""
    async with contextlib.AsyncExitStack() as stack:
        lives = [await stack.enter_async_context(live_bot(target, args, workdir)) for target in targets]
        for index in range(args.rounds):
            for live in lives if index % 2 == 0 else lives[::-1]:
                await throughput_round(live, args, index)
        for live in lives:
            if live.target.latency:
                await latency_phase(live, args)
        return [live.run for live in lives]


# --------------------------------------------------------------------------- profiling (optional, py-spy)


def profile_name(target: Target) -> str:
    return "tsur" if target.database else "echo"


def find_py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


async def start_profiler(bot: BotProcess, out: Path) -> asyncio.subprocess.Process:
    """Sample the bot process until it exits; collapsed stacks go to `out`."""
    py_spy = find_py_spy()
    if py_spy is None:
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    # --gil: only the thread holding the GIL is sampled, i.e. where the Python side spends its CPU (the bot is
    # single-threaded Python; aiosqlite's threads release the GIL inside sqlite3). 50 Hz keeps ptrace's cost low.
    argv = [py_spy, "record", "--pid", str(bot.pid), "--rate", "50", "--gil", "--format", "raw", "--output", str(out)]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    await asyncio.sleep(0.5)  # let it attach before the load starts
    return proc


async def stop_profiler(proc: asyncio.subprocess.Process) -> None:
    """py-spy ends by itself when the process it samples exits; SIGINT makes it write its output otherwise."""
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# Layers of the code, matched as substrings of py-spy's "function (file:line)" frames. A sample belongs to the first
# layer found walking up from its innermost frame, so the shares add up to 100%.
PROFILE_LAYERS: dict[str, tuple[str, ...]] = {
    "aiosqlite (queue hand-off to its thread, sqlite3)": ("aiosqlite/",),
    "SQLAlchemy (ORM, Core, pool)": ("sqlalchemy/",),
    "pydantic (aiogram types, validation)": ("pydantic/", "pydantic_core"),
    "aiohttp (HTTP client)": ("aiohttp/",),
    "aiogram (dispatch, filters, FSM, API methods)": ("aiogram/",),
    "gettext and babel": ("gettext.py", "babel/"),
    "project code (bot/, handlers/, storage/)": ("bot/", "handlers/", "storage/"),
}
PROJECT_FRAMES = ("(bot/", "(handlers/", "(storage/")
ENTRY_FRAMES = ("(bot/__main__.py", "(bot/cli.py")


def summarize_profile(path: Path, top: int = 15) -> list[str]:
    """Lines summing py-spy's collapsed stacks: the share of samples per layer, then per project function."""
    if not path.exists():
        return [f"(no profile at {path})"]
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            stacks.append((stack.split(";") if stack else [], int(count)))
    total = sum(count for _, count in stacks)
    if not total:
        return ["(the profile is empty)"]
    layers: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        layer = next(
            (
                name
                for f in reversed(frames)
                for name, needles in PROFILE_LAYERS.items()
                if any(n in f for n in needles)
            ),
            "asyncio event loop, stdlib, no Python frame",
        )
        layers[layer] += count
        functions = {
            _short_frame(f).rsplit(":", 1)[0] + ")"
            for f in frames
            if any(p in f for p in PROJECT_FRAMES) and not any(e in f for e in ENTRY_FRAMES)
        }
        for function in functions:
            inclusive[function] += count
    lines = [f"{total} samples of the thread holding the GIL ({path})", "  by layer (innermost frame that matches):"]
    lines += [f"  {100 * count / total:5.1f}%  {layer}" for layer, count in layers.most_common()]
    lines.append("  project functions, inclusive (SQLAlchemy's greenlet stacks are not attributed to their callers):")
    lines += [f"  {100 * count / total:5.1f}%  {function}" for function, count in inclusive.most_common(top)]
    return lines


def _short_frame(frame: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in frame:
            head, _, tail = frame.partition("(")
            return f"{head}({tail.split(marker, 1)[1]}" if marker in tail else frame
    return frame


# --------------------------------------------------------------------------- report


def round_ratios(bot: BotRun, echo: BotRun) -> list[float]:
    """updates/s of the bot over the echo's, per round (each pair ran back to back)."""
    return [b.updates_per_s / e.updates_per_s for b, e in zip(bot.rounds, echo.rounds, strict=True)]


def goals(bot: BotRun, echo: BotRun) -> dict[str, Any]:
    assert bot.latency
    ratios = round_ratios(bot, echo)
    ratio = percentile(ratios, 50)  # the median round
    p99 = bot.latency.pct(99)
    return {
        "updates_ratio": round(ratio, 3),
        "round_ratios": [round(r, 3) for r in ratios],
        "ratio_goal": GOAL_RATIO,
        "ratio_pass": ratio >= GOAL_RATIO,
        "p99_ms_at_rate": round(p99, 1),
        "p99_goal_ms": GOAL_P99_MS,
        "p99_pass": p99 < GOAL_P99_MS and bool(bot.latency.kept_up),
    }


def render(runs: list[BotRun], args: argparse.Namespace) -> str:
    bot, echo, *tuned = runs
    assert bot.throughput and echo.throughput and bot.latency and echo.latency
    g = goals(bot, echo)
    out = [
        f"intake benchmark: {os.cpu_count()} cores; emulator and simulated people in this process (gen), each bot "
        "in its own process against a fresh emulator",
        "",
        f"phase 1, throughput: {args.residents} residents at once, {APPEAL_STEPS} updates each "
        f"(every step waits for the answer); {args.rounds} rounds per bot, alternating; the median round is shown",
        f"{'':16}{'appeals/s':>10}{'updates/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'CPU ms/upd':>12}{'bot CPU':>9}{'gen CPU':>9}{'other':>7}",
    ]
    for run in runs:
        t = run.throughput
        assert t is not None
        s = t.summary()
        out.append(
            f"{run.name:16}{s['appeals_per_s']:>10.2f}{s['updates_per_s']:>11.1f}{s['p50_ms']:>9.1f}"
            f"{s['p99_ms']:>9.1f}{s['max_ms']:>9.1f}{s['bot_cpu_ms_per_update']:>12.2f}"
            f"{s['bot_cpu_pct']:>8.0f}%{s['generator_cpu_pct']:>8.0f}%{s['other_cpu_pct']:>6.0f}%"
        )
    out.append(
        f"{'ratio bot/echo':16}{'':10}{g['updates_ratio']:>11.2f}   median of the rounds: "
        + " ".join(f"{r:.2f}" for r in g["round_ratios"])
    )
    for reference in tuned:
        ratios = round_ratios(bot, reference)
        out.append(
            f"{'  ... /tuned':16}{'':10}{percentile(ratios, 50):>11.2f}   median of the rounds: "
            + " ".join(f"{r:.2f}" for r in ratios)
        )
        out.append("  (tuned: the echo with the bot's two framework remedies, pinned response classes and JSON calls;")
        out.append("   its ratio is the cost of the bot's own code. The goal is judged against the stock echo.)")
    out += [
        "",
        f"phase 2, latency: {args.rate:g} updates/s for {args.duration:g} s, a pool of {args.pool} people",
        f"{'':16}{'updates':>10}{'sent/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'send lag':>10}"
        f"{'bot CPU':>9}{'other':>7}{'kept up':>9}",
    ]
    for run in runs:
        lat = run.latency
        if lat is None:
            continue
        s = lat.summary()
        out.append(
            f"{run.name:16}{s['updates']:>10}{s['send_rate']:>9.1f}{s['p50_ms']:>9.1f}{s['p99_ms']:>9.1f}"
            f"{s['max_ms']:>9.1f}{s['max_send_lag_ms']:>8.1f}ms{s['bot_cpu_pct']:>8.0f}%{s['other_cpu_pct']:>6.0f}%"
            f"{'yes' if s['kept_up'] else 'NO':>9}"
        )
    out += [
        "CPU columns: % of one core used by the bot process, by this process (gen: emulator and people) and by all",
        "other processes (noise). CPU ms/upd: the bot's CPU time per update. send lag: the latest an update went out.",
    ]
    phases = [phase for run in runs for phase in (run.throughput, run.latency) if phase is not None]
    noise = max(100 * phase.other_cpu_s / phase.wall_s for phase in phases)
    if noise > 10:
        out.append(f"WARNING: other processes used up to {noise:.0f}% of a core during a phase: the figures are noisy.")
    out += ["", f"{'process':16}{'peak RSS MB':>12}{'startup s':>11}"]
    out += [f"{run.name:16}{run.peak_rss_mb:>12.1f}{run.startup_s:>11.1f}" for run in runs]
    out += [
        "",
        f"database: {bot.appeals_in_db} appeals (expected {bot.appeals_expected}: {args.warmup} warm-up, "
        f"{args.rounds} x {args.residents} in phase 1, {bot.latency.appeals} in phase 2) OK",
        "",
        "goals",
        f"  updates/s >= {GOAL_RATIO:g} x echo ceiling      {g['updates_ratio']:>6.2f}     "
        f"{'PASS' if g['ratio_pass'] else 'FAIL'}",
        f"  p99 < {GOAL_P99_MS:g} ms at {args.rate:g} updates/s      {g['p99_ms_at_rate']:>6.1f} ms  "
        f"{'PASS' if g['p99_pass'] else 'FAIL'}",
    ]
    if args.steps:
        out += render_steps(runs)
    for run in runs:
        if run.profile:
            out += ["", f"profile of {run.name}:", *run.profile]
    return "\n".join(out)


def render_steps(runs: list[BotRun]) -> list[str]:
    """p50/p99 per step of the script, per bot and phase (the echo bot's steps mirror the bot's by position)."""
    columns = [
        (f"{run.name} {tag}", phase) for run in runs for tag, phase in (("ph1", run.throughput), ("ph2", run.latency))
    ]
    out = ["", "per step, p50/p99 ms", f"{'#':>2}  {'step':38}" + "".join(f"{name:>22}" for name, _ in columns)]
    for index, step in enumerate(TSUR.one_appeal()):
        cells = []
        for _, phase in columns:
            values = phase.steps_ms.get(index, []) if phase else []
            cells.append(
                f"{percentile(values, 50):.0f}/{percentile(values, 99):.0f} (n={len(values)})" if values else "-"
            )
        out.append(f"{index:>2}  {step.label[:38]:38}" + "".join(f"{cell:>22}" for cell in cells))
    return out


def run_summary(run: BotRun) -> dict[str, Any]:
    return {
        "throughput": run.throughput.summary() if run.throughput else None,
        "rounds_updates_per_s": [round(r.updates_per_s, 1) for r in run.rounds],
        "latency": run.latency.summary() if run.latency else None,
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "startup_s": round(run.startup_s, 2),
        "appeals_in_db": run.appeals_in_db,
        "appeals_expected": run.appeals_expected,
        **({"profile": run.profile} if run.profile else {}),
    }


def as_json(runs: list[BotRun], args: argparse.Namespace) -> str:
    payload: dict[str, Any] = {
        "config": {
            "residents": args.residents,
            "rounds": args.rounds,
            "updates_per_appeal": APPEAL_STEPS,
            "rate": args.rate,
            "duration": args.duration,
            "pool": args.pool,
            "warmup": args.warmup,
            "cores": os.cpu_count(),
        },
        "bots": {run.name: run_summary(run) for run in runs},
    }
    if len(runs) >= 2:
        payload["goals"] = goals(runs[0], runs[1])
    if len(runs) == 3:
        ratios = round_ratios(runs[0], runs[2])
        payload["goals"]["updates_ratio_tuned"] = round(percentile(ratios, 50), 3)
        payload["goals"]["round_ratios_tuned"] = [round(r, 3) for r in ratios]
    return json.dumps(payload, indent=2)


def render_single(run: BotRun, args: argparse.Namespace) -> str:
    lines = [f"{run.name}: peak RSS {run.peak_rss_mb:.1f} MB, startup {run.startup_s:.1f} s"]
    for label, phase in (("throughput", run.throughput), ("latency", run.latency)):
        if phase is not None:
            summary = {k: v for k, v in phase.summary().items() if k != "steps"}
            lines.append(f"  {label}: {json.dumps(summary)}")
    if args.steps:
        lines += render_steps([run])
    if run.profile:
        lines += ["", f"profile of {run.name}:", *run.profile]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=50, help="people filing at once in phase 1 (default 50)")
    parser.add_argument("--rate", type=float, default=100.0, help="updates/s in phase 2 (default 100)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of phase 2 (default 10)")
    parser.add_argument(
        "--pool", type=int, default=0, help="people taking turns in phase 2 (default: half the rate, at least 10)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="people filing once before phase 1 (default 2)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of phase 1 per bot, alternating between them (default 5)"
    )
    parser.add_argument("--phase-timeout", type=float, default=60.0, help="seconds phase 1 may take (default 60)")
    parser.add_argument("--only", choices=["bot", "echo"], help="run one bot only (no ratio, no goals)")
    parser.add_argument(
        "--no-tuned", action="store_true", help="leave out the tuned echo (the reference for the bot's own code)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.add_argument("--steps", action="store_true", help="also print p50/p99 per step of the script")
    parser.add_argument("--profile", metavar="DIR", help="sample each bot with py-spy into DIR and summarise")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a goal is not met")
    args = parser.parse_args(argv)
    if args.residents < 1 or args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or args.rounds < 1:
        parser.error("--residents, --rounds, --rate and --duration must be positive, --warmup not negative")
    # Half the rate: each person sends about every 0.5 s, so phase 2 includes whole appeals (the Confirm step).
    args.pool = args.pool or max(10, round(args.rate / 2))
    return args


async def amain(args: argparse.Namespace) -> int:
    # SIGTERM ends the run like Ctrl-C does: the current task is cancelled and every bot process is stopped.
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    both = [TSUR, ECHO] if args.no_tuned else [TSUR, ECHO, ECHO_TUNED]
    targets = {"bot": [TSUR], "echo": [ECHO]}.get(args.only or "", both)
    with tempfile.TemporaryDirectory(prefix="tsur-bench-") as tmp:
        runs = await bench_bots(targets, args, Path(tmp))
    if args.json:
        print(as_json(runs, args))
    else:
        print(render(runs, args) if len(runs) >= 2 else render_single(runs[0], args))
    if len(runs) < 2:
        return 0
    g = goals(runs[0], runs[1])
    return 3 if args.strict and not (g["ratio_pass"] and g["p99_pass"]) else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(amain(args))
    except BenchError as error:
        log(f"BENCH FAILED: {error}")
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted; the bot processes were stopped")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
