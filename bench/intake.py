"""Intake benchmark: tsur-bot against a stock aiogram echo bot, in the same run, on the Bot API emulator.

Each bot runs in its own process (`python -m bot run` with a fresh SQLite database, and `bench/echo_bot.py`), each
against its own emulator; the emulators and the simulated people run in this process. All bots stay up for the
whole run and are measured in rounds; within a round each bot plays, one after the other (the order rotates from
round to round, so a change in the machine's speed weighs on all alike):

- burst: R residents at once each file a complete appeal, 13 updates (/start, language, consent, File an appeal,
  topic, subcategory, description, a photo, Done, address, district, kind, Confirm), each waiting for the answer to
  a step before sending the next. The echo bot's people send the same kinds of updates (the same texts, a photo, as
  many button presses). Gives updates/s and the bot process's CPU time per update (/proc, all its threads).
- paced: updates go out on a fixed schedule (100/s for 10 s by default), each sent by the next idle person of a
  pool (nobody sends before the answer to their previous update). Gives the reply latency, from the update being
  queued in the emulator to the bot's first message, edit or callback answer in that chat, p50 and p99.

Figures are medians over the rounds; the ratio to the echo is taken within each round, then its median. With
`--baseline PATH` a second tsur-bot, run from another checkout with that checkout's `.venv/bin/python`, plays in
the same rounds (before/after in one run). Goals, for tsur-bot: p99 < 150 ms at 100 updates/s, and CPU per update
(burst) at most 2.5x the echo's. Usage:

    .venv/bin/python bench/intake.py [--rounds 5] [--residents 50] [--rate 100] [--duration 10]
                                     [--baseline ../wt-baseline] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from asyncio.subprocess import DEVNULL, Process
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/intake.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from emulator import BotAPIEmulator, EmulatedUser  # noqa: E402

GOAL_P99_MS = 150.0
GOAL_CPU_RATIO = 2.5
STEP_TIMEOUT = 15.0  # seconds for one answer; slower is a failure, not a data point
START_TIMEOUT = 60.0  # seconds for a bot to migrate its database and start polling
FAILURE_MARK = "Something went wrong"  # the bot's answer to an exception in a handler
ECHO_PRESS = "🔁 Press"  # the echo bot's only button


@dataclass(frozen=True)
class Step:
    """One update a person sends, and the text that shows the bot has answered it ("" = any new message)."""

    kind: str  # text, reply (a reply-keyboard button), click (an inline button), click_first, photo
    arg: str = ""
    expect: str = ""
    appeal: bool = False  # the step that files the appeal (Confirm)


APPEAL = (
    Step("text", "/start", "Choose your language"),
    Step("click", "✅ English", "Consent to the processing of personal data"),
    Step("click", "✅ I agree", "your consent is recorded"),
    Step("reply", "📝 File an appeal", "Choose the topic"),
    Step("click", "Housing, utilities and waste", "Choose the subcategory"),
    Step("click_first", "", "Describe the problem"),
    Step("text", "No water in our building for three days", "Attach photos"),
    Step("photo", "", "Files attached: 1 of 10"),
    Step("click", "✅ Done (1)", "Where is the problem"),
    Step("text", "Grozny, Mira street 12", "Choose the municipal district"),
    Step("click", "Grozny", "How should it be handled"),
    Step("click", "⚡ Message (10 days)", "Check your appeal"),
    Step("click", "✅ Confirm", "Your appeal is registered", appeal=True),
)
ONBOARDING = 3  # the first steps, once per person; the paced phase then repeats the rest
# The echo bot gets the same kinds of updates: texts stay texts, presses stay presses, the photo stays.
ECHO_APPEAL = tuple(
    Step("click", ECHO_PRESS, appeal=s.appeal)
    if s.kind.startswith("click")
    else Step("photo" if s.kind == "photo" else "text", s.arg, appeal=s.appeal)
    for s in APPEAL
)


@dataclass
class Target:
    name: str
    token: str
    steps: tuple[Step, ...]
    argv: list[str]  # "{api}" is replaced by the emulator's base URL
    cwd: Path
    files_appeals: bool  # tsur-bot: the appeals in its database are counted after each phase


def tsur_target(name: str, token: str, checkout: Path) -> Target:
    python = checkout / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: run `make install` in {checkout}")
    return Target(name, token, APPEAL, [str(python), "-m", "bot", "run"], checkout, files_appeals=True)


ECHO = Target(
    "echo (aiogram)",
    "654321:BENCH-ECHO",
    ECHO_APPEAL,
    [sys.executable, str(ROOT / "bench" / "echo_bot.py"), "--api-base", "{api}", "--token", "654321:BENCH-ECHO"],
    ROOT,
    files_appeals=False,
)


class BenchError(Exception):
    """The run failed (a bot died, did not answer or lost an appeal): no figures to trust."""


# --------------------------------------------------------------------------- one step


class _FirstChange(asyncio.Future[None]):
    """Put among a chat's waiters (the emulator wakes them on every message, edit or callback answer of the bot):
    stamps the bot's first reaction."""

    stamp = 0.0

    def set_result(self, result: None) -> None:
        self.stamp = time.perf_counter()
        super().set_result(result)


async def send(user: EmulatedUser, step: Step) -> None:
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


async def run_step(user: EmulatedUser, step: Step) -> float:
    """Send one update, wait for the complete answer; return the seconds to the bot's first reaction."""
    shown = {m.message_id: m.text for m in user.messages}  # the bot may answer in a new message or by an edit
    probe = _FirstChange()
    user.chat.waiters.append(probe)
    sent = time.perf_counter()

    def changed() -> list[str]:
        return [m.text or "" for m in user.messages if shown.get(m.message_id, None) != m.text]

    def answered() -> bool:
        if not step.expect:  # the echo: its answer is a new message
            return any(m.message_id not in shown for m in user.messages)
        return any(step.expect in text or FAILURE_MARK in text for text in changed())

    try:
        await send(user, step)
        await user.wait_until(answered, timeout=STEP_TIMEOUT, what=f"the answer to {step.kind} {step.arg!r}")
    except (TimeoutError, AssertionError) as error:  # the emulator asserts that a pressed button exists
        raise BenchError(str(error)) from None
    finally:
        if not probe.done():
            probe.cancel()
    if any(FAILURE_MARK in text for text in changed()):
        raise BenchError(f"the bot failed on {step.kind} {step.arg!r} of user {user.id}.\n{user.dump()}")
    return probe.stamp - sent


# --------------------------------------------------------------------------- a bot process and its emulator


@dataclass
class Phase:
    """One phase of one bot in one round."""

    wall_s: float
    updates: int
    appeals: int
    cpu_s: float  # the bot process's CPU time (user + system, all threads)
    latencies_ms: list[float] = field(repr=False)
    other_pct: float  # CPU of all other processes (not the bot, not this one), % of a core: noise
    send_rate: float = 0.0  # paced: updates sent per second

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.wall_s

    @property
    def cpu_ms_per_update(self) -> float:
        return 1000 * self.cpu_s / max(1, self.updates)

    def pct(self, q: float) -> float:
        """Nearest-rank percentile of the latencies."""
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))] if ordered else 0.0


class LiveBot:
    """A bot process polling its own emulator, kept up through all the rounds."""

    def __init__(self, target: Target, emu: BotAPIEmulator, workdir: Path) -> None:
        self.target, self.emu = target, emu
        self.proc: Process  # started by live_bot()
        self.db = workdir / f"{target.token.split(':')[0]}.db"
        self.log = workdir / f"{target.token.split(':')[0]}.log"
        self.appeals = 0  # filed so far, to check against the database
        self.next_user = 100_000
        self.bursts: list[Phase] = []
        self.paced: list[Phase] = []

    def cpu_seconds(self) -> float:
        if self.proc.returncode is not None:
            raise BenchError(f"{self.target.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def users(self, count: int) -> list[EmulatedUser]:
        first, self.next_user = self.next_user, self.next_user + count
        return [self.emu.user(uid, first_name="Resident", language_code="en") for uid in range(first, first + count)]

    def check_appeals(self, phase: Phase) -> None:
        self.appeals += phase.appeals
        if not self.target.files_appeals:
            return
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)) as db:
            stored = db.execute("select count(*) from appeals").fetchone()[0]
        if stored != self.appeals:
            raise BenchError(f"{self.target.name}: {stored} appeals in the database, {self.appeals} filed")


@contextlib.asynccontextmanager
async def live_bot(target: Target, workdir: Path, profile: Path | None) -> AsyncIterator[LiveBot]:
    async with BotAPIEmulator(token=target.token, bot_username="bench_bot", host="127.0.0.1", port=0) as emu:
        live = LiveBot(target, emu, workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TSUR_", "VIRTUAL_ENV", "PYTHONPATH"))}
        env |= {
            "TSUR_CONFIG": str(workdir / "absent.toml"),  # configured by the environment only
            "TSUR_BOT__TOKEN": target.token,
            "TSUR_BOT__API_BASE": emu.base_url,
            "TSUR_BOT__POLLING_TIMEOUT": "2",
            "TSUR_DATABASE__URL": f"sqlite+aiosqlite:///{live.db}",
            "TSUR_LOGGING__LEVEL": "WARNING",
            "TSUR_THROTTLE__RATE": "100000",  # scripted people are faster than any person: no throttling
            "TSUR_THROTTLE__BURST": "100000",
        }
        argv = [arg.replace("{api}", emu.base_url) for arg in target.argv]
        with live.log.open("wb") as log:
            live.proc = proc = await asyncio.create_subprocess_exec(
                *argv, cwd=target.cwd, env=env, stdin=DEVNULL, stdout=log, stderr=log, preexec_fn=die_with_parent
            )
        spy = None
        try:
            deadline = time.perf_counter() + START_TIMEOUT
            while not emu.calls("getUpdates"):
                live.cpu_seconds()  # raises if the bot died
                if time.perf_counter() > deadline:
                    raise BenchError(f"{target.name} did not start polling:\n{live.log_tail()}")
                await asyncio.sleep(0.05)
            if profile is not None:
                out = profile / f"{live.db.stem}.txt"
                argv = [py_spy(), "record", "--pid", str(proc.pid), "--rate", "50", "--gil", "--format", "raw"]
                spy = await asyncio.create_subprocess_exec(*argv, "--output", str(out), stdout=DEVNULL, stderr=DEVNULL)
            live.check_appeals(await burst(live, 2))  # warm-up: imports, caches, the first connections
            log_line(f"{target.name}: polling (pid {proc.pid})")
            yield live
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            if spy is not None:
                await asyncio.wait_for(spy.wait(), 20)  # py-spy writes its file when the bot exits
            errors = [line for line in live.log_tail(10_000).splitlines() if " ERROR " in line or "Traceback" in line]
            if errors:
                log_line(f"{target.name}: {len(errors)} error lines in its log, e.g. {errors[0]}")


def die_with_parent() -> None:
    """In the bot's process before exec: get SIGTERM when the benchmark dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else "py-spy"


class Meter:
    """Wall time, the bot's CPU time and the CPU time of every other process on the machine, over a phase."""

    def __init__(self, live: LiveBot) -> None:
        self.live = live
        self.wall, self.cpu, self.own, self.busy = time.perf_counter(), live.cpu_seconds(), time.process_time(), busy()

    def phase(self, updates: int, appeals: int, latencies: list[float], send_rate: float = 0.0) -> Phase:
        wall, cpu = time.perf_counter() - self.wall, self.live.cpu_seconds() - self.cpu
        other = busy() - self.busy - cpu - (time.process_time() - self.own)
        return Phase(wall, updates, appeals, cpu, latencies, max(0.0, 100 * other / wall), send_rate)


def busy() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def log_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the two phases


async def burst(live: LiveBot, residents: int, timeout: float = 120.0) -> Phase:
    """Everyone at once, each through one complete appeal, each step after the answer to the previous one."""
    latencies: list[float] = []

    async def one(user: EmulatedUser) -> None:
        for step in live.target.steps:
            latencies.append(1000 * await run_step(user, step))

    users = live.users(residents)
    meter = Meter(live)
    async with asyncio.timeout(timeout):
        await asyncio.gather(*(one(user) for user in users))
    return meter.phase(len(latencies), residents, latencies)


async def paced(live: LiveBot, rate: float, duration: float, pool: int) -> Phase:
    """Update i goes out at start + i/rate, sent by the person idle for the longest; a person never sends before
    the answer to their previous update, so when nobody is idle the schedule slips (the send rate shows it)."""
    idle: asyncio.Queue[tuple[EmulatedUser, int]] = asyncio.Queue()  # a person and their next step
    for user in live.users(pool):
        idle.put_nowait((user, 0))
    latencies: list[float] = []
    appeals = 0
    tasks: set[asyncio.Task[None]] = set()
    errors: list[Exception] = []

    async def one(user: EmulatedUser, index: int) -> None:
        nonlocal appeals
        step = live.target.steps[index]
        try:
            latencies.append(1000 * await run_step(user, step))
        except Exception as error:
            errors.append(error)
            return
        appeals += step.appeal
        idle.put_nowait((user, index + 1 if index + 1 < len(live.target.steps) else ONBOARDING))

    total = round(rate * duration)
    meter = Meter(live)
    start = meter.wall
    try:
        for i in range(total):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            if errors:
                raise errors[0]
            async with asyncio.timeout(STEP_TIMEOUT):
                user, index = await idle.get()
            task = asyncio.create_task(one(user, index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        send_rate = total / (time.perf_counter() - start + 1 / rate)
        await asyncio.gather(*tasks)
        if errors:
            raise errors[0]
    finally:
        for task in list(tasks):
            task.cancel()
    return meter.phase(len(latencies), appeals, latencies, send_rate)


async def bench(targets: list[Target], args: argparse.Namespace, workdir: Path) -> list[LiveBot]:
    profile = args.profile
    async with contextlib.AsyncExitStack() as stack:
        lives = [await stack.enter_async_context(live_bot(t, workdir, profile)) for t in targets]
        for r in range(args.rounds):
            for live in lives[r % len(lives) :] + lives[: r % len(lives)]:
                live.bursts.append(b := await burst(live, args.residents))
                live.check_appeals(b)
                live.paced.append(p := await paced(live, args.rate, args.duration, args.pool))
                live.check_appeals(p)
                log_line(
                    f"round {r + 1} {live.target.name}: burst {b.updates_per_s:.0f} upd/s "
                    f"{b.cpu_ms_per_update:.2f} ms CPU/upd; paced p50 {p.pct(50):.0f} p99 {p.pct(99):.0f} ms"
                )
        return lives


# --------------------------------------------------------------------------- report


def figures(live: LiveBot, echo: LiveBot, rate: float) -> dict[str, float | bool]:
    """Medians over the rounds; ratios to the echo taken round by round."""
    med = statistics.median
    return {
        "rounds": len(live.bursts),
        "updates_per_s": med(b.updates_per_s for b in live.bursts),
        "cpu_ms_per_update": med(b.cpu_ms_per_update for b in live.bursts),
        "cpu_ratio_to_echo": med(
            b.cpu_ms_per_update / e.cpu_ms_per_update for b, e in zip(live.bursts, echo.bursts, strict=True)
        ),
        "paced_cpu_ms_per_update": med(p.cpu_ms_per_update for p in live.paced),
        "paced_cpu_ratio_to_echo": med(
            p.cpu_ms_per_update / e.cpu_ms_per_update for p, e in zip(live.paced, echo.paced, strict=True)
        ),
        "p50_ms": med(p.pct(50) for p in live.paced),
        "p99_ms": med(p.pct(99) for p in live.paced),
        "kept_up": all(p.send_rate >= 0.95 * rate for p in live.paced),
    }


def render(lives: list[LiveBot], args: argparse.Namespace) -> str:
    echo = next(live for live in lives if live.target is ECHO)
    out = [
        f"intake benchmark: {os.cpu_count()} cores, {args.rounds} rounds; burst: {args.residents} residents x "
        f"{len(APPEAL)} updates; paced: {args.rate:g} updates/s for {args.duration:g} s, a pool of {args.pool}",
        "",
        "per round            burst upd/s  CPU ms/upd  ratio   paced CPU ms/upd  ratio   p50 ms  p99 ms  sent/s  noise",
    ]
    for r in range(args.rounds):
        for live in lives:
            b, p, e, ep = live.bursts[r], live.paced[r], echo.bursts[r], echo.paced[r]
            out.append(
                f"{r + 1:>2} {live.target.name[:17]:17}{b.updates_per_s:>12.1f}{b.cpu_ms_per_update:>12.2f}"
                f"{b.cpu_ms_per_update / e.cpu_ms_per_update:>7.2f}{p.cpu_ms_per_update:>19.2f}"
                f"{p.cpu_ms_per_update / ep.cpu_ms_per_update:>7.2f}{p.pct(50):>9.1f}{p.pct(99):>8.1f}"
                f"{p.send_rate:>8.1f}{max(b.other_pct, p.other_pct):>6.0f}%"
            )
    out.append("noise: the most CPU all other processes took during the round's two phases, % of one core")
    out += ["", "medians over the rounds (ratios: the CPU per update over the echo's in the same round)"]
    for live in lives:
        f = figures(live, echo, args.rate)
        out.append(
            f"   {live.target.name[:17]:17}{f['updates_per_s']:>12.1f}{f['cpu_ms_per_update']:>12.2f}"
            f"{f['cpu_ratio_to_echo']:>7.2f}{f['paced_cpu_ms_per_update']:>19.2f}{f['paced_cpu_ratio_to_echo']:>7.2f}"
            f"{f['p50_ms']:>9.1f}{f['p99_ms']:>8.1f}{'' if f['kept_up'] else '  FELL BEHIND':>8}"
        )
    out += ["", "goals, for each tsur-bot (p99 needs the schedule kept: no FELL BEHIND)"]
    for live in lives:
        if live.target is ECHO:
            continue
        f = figures(live, echo, args.rate)
        p99_ok = f["p99_ms"] < GOAL_P99_MS and f["kept_up"]
        cpu_ok = f["cpu_ratio_to_echo"] <= GOAL_CPU_RATIO
        out += [
            f"  {live.target.name}: p99 at {args.rate:g} updates/s < {GOAL_P99_MS:g} ms: {f['p99_ms']:.1f} ms "
            f"{'MET' if p99_ok else 'MISSED'}; CPU per update <= {GOAL_CPU_RATIO:g} x echo: "
            f"{f['cpu_ratio_to_echo']:.2f} x {'MET' if cpu_ok else 'MISSED'}",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each bot playing both phases (default 5)")
    parser.add_argument("--residents", type=int, default=50, help="people filing at once in a burst (default 50)")
    parser.add_argument("--rate", type=float, default=100.0, help="updates/s of the paced phase (default 100)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the paced phase (default 10)")
    parser.add_argument("--pool", type=int, default=50, help="people taking turns in the paced phase (default 50)")
    parser.add_argument("--baseline", metavar="PATH", help="also run the tsur-bot of this checkout (its own .venv)")
    parser.add_argument("--profile", metavar="DIR", help="record each bot with py-spy (raw stacks) into DIR")
    args = parser.parse_args(argv)

    targets = [tsur_target("tsur-bot", "123456:BENCH-TSUR", ROOT), ECHO]
    if args.baseline:
        path = Path(args.baseline).resolve()
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        targets.insert(1, tsur_target(f"baseline {head.stdout.strip()}", "223456:BENCH-BASE", path))
    if args.profile:
        args.profile = Path(args.profile).resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the bots on SIGTERM as on Ctrl-C
    try:
        with tempfile.TemporaryDirectory(prefix="tsur-bench-") as tmp:
            lives = asyncio.run(bench(targets, args, Path(tmp)))
    except BenchError as error:
        log_line(f"BENCH FAILED: {error}")
        return 1
    print(render(lives, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
