"""Poll benchmark: a poll to N residents (10,000 by default) through the Bot API emulator; M of them (5,000) answer
within a minute.

The bot runs in its own process (`python -m bot run`, a fresh SQLite database seeded here with the residents, their
consent and one appeal each in one of the districts), against an emulator in this process. The poll is stored through
the service as an admin would (publish now); the bot's scheduler claims it and materializes its recipients, and its
outbox sender delivers it at Telegram's rate (30 messages/s). Once M residents have their poll, they answer at the
pace of M a minute (each presses an option and waits for the bot's edit of their poll message), while the rest of
the delivery goes on. Printed: the delivery rate, answers/s handled and the answer latency (p50, p99: from the press
to the bot's first reaction, its callback answer or edit), and the time to build the results (the SQL aggregation)
with the chart. Goals: answers handled at least as fast as the intake benchmark's updates/s (73 on this machine, see
README «Scaling»); results with the chart in under 1 s. Usage:

    .venv/bin/python bench/poll.py [--residents 10000] [--answers 5000] [--window 60] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from asyncio.subprocess import DEVNULL
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/poll.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench.intake import START_TIMEOUT, BenchError, die_with_parent, log_line  # noqa: E402
from bot.charts import bar_chart  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.services.polls import Audience, PollDraft  # noqa: E402
from emulator import BotAPIEmulator, EmulatedUser  # noqa: E402
from storage.db import create_engine, create_sessionmaker, upgrade  # noqa: E402
from storage.models import Appeal, Consent, User  # noqa: E402
from storage.seed import load_directories  # noqa: E402

TOKEN = "123456:BENCH-POLL"
ADMIN = 1
FIRST_RESIDENT = 100_000
GOAL_RESULTS_S = 1.0
INTAKE_UPDATES_PER_S = 73.3  # README «Scaling», 1 × SQLite
ANSWER_TIMEOUT = 180.0  # a bot that falls behind is measured (its latency grows), not failed
OPTIONS = ("Yes, fully", "Partly", "No", "Hard to say")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=10_000, help="residents the poll goes to")
    parser.add_argument("--answers", type=int, default=5_000, help="how many of them answer")
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which the answers are spread")
    parser.add_argument("--profile", type=Path, help="run the bot under cProfile, its stats written to this file")
    args = parser.parse_args(argv)
    if args.residents < 1 or not 1 <= args.answers <= args.residents or args.window <= 0:
        parser.error("need 1 <= answers <= residents and a positive window")
    return args


@dataclass
class Report:
    residents: int
    delivered_s: float  # from the first poll message until the answerers all had theirs
    answers: int
    answer_wall_s: float
    latencies_ms: list[float]
    results_s: float
    chart_bytes: int
    counted: int  # answers in the results

    @property
    def answers_per_s(self) -> float:
        return self.answers / self.answer_wall_s if self.answer_wall_s else 0.0

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def render(report: Report, args: argparse.Namespace) -> str:
    speed = report.answers_per_s
    lines = [
        f"poll to {report.residents} residents; {report.answers} answer over {args.window:.0f} s",
        f"delivery: the {args.answers} answerers had the poll {report.delivered_s:.1f} s after the first "
        f"({args.answers / max(report.delivered_s, 1e-3):.1f} messages/s; the outbox's limit is 30/s)",
        f"answers handled: {speed:.1f}/s (offered {args.answers / args.window:.1f}/s), "
        f"latency p50 {report.p(0.5):.1f} ms, p99 {report.p(0.99):.1f} ms",
        f"results with the chart: {1000 * report.results_s:.0f} ms ({report.counted} answers, PNG {report.chart_bytes} bytes)",
        f"goals: answers/s >= intake's {INTAKE_UPDATES_PER_S} updates/s: "
        + ("met" if speed >= INTAKE_UPDATES_PER_S or speed >= 0.95 * args.answers / args.window else "MISSED")
        + f"; results < {GOAL_RESULTS_S:.0f} s: " + ("met" if report.results_s < GOAL_RESULTS_S else "MISSED"),
    ]
    return "\n".join(lines)


async def seed(url: str, residents: int, consent_version: str) -> None:
    """Migrate, load the data files, and write the residents: consent given, one appeal each (the districts in turn)."""
    engine = create_engine(url)
    await upgrade(engine)
    sessionmaker = create_sessionmaker(engine)
    await load_directories(sessionmaker)
    now = datetime.now(UTC) - timedelta(days=30)
    async with sessionmaker() as session:
        from sqlalchemy import select

        from storage.models import Category, District

        districts = list((await session.execute(select(District.id).order_by(District.position))).scalars())
        category = (await session.execute(select(Category.id).order_by(Category.id).limit(1))).scalar_one()
        users = [
            {"id": n + 1, "tg_id": FIRST_RESIDENT + n, "locale": "ru", "is_active": True, "created_at": now}
            for n in range(residents)
        ]
        await session.execute(insert(User.__table__), users)
        await session.execute(
            insert(Consent.__table__),
            [{"user_id": u["id"], "version": consent_version, "accepted": True, "at": now} for u in users],
        )
        await session.execute(
            insert(Appeal.__table__),
            [
                {
                    "number": f"2026-{n:06d}", "draft_id": f"bench-{n}", "user_id": u["id"], "category_id": category,
                    "district_id": districts[n % len(districts)], "kind": "message", "status": "closed",
                    "text": "bench", "locale": "ru", "created_at": now, "updated_at": now, "extension_used": False,
                    "paused_seconds": 0, "reopen_count": 0,
                }
                for n, u in enumerate(users)
            ],
        )
        await session.commit()
    await engine.dispose()


async def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not check():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def has_poll(user: EmulatedUser) -> bool:
    return any(m.inline_keyboard for m in user.messages)


async def answer(user: EmulatedUser, option: str, latencies: list[float]) -> None:
    message = next(m for m in reversed(user.messages) if m.inline_keyboard)
    answered = len(user.callback_answers)
    sent = time.perf_counter()
    await user.click(option, message_id=message.message_id)
    await user.wait_until(
        lambda: len(user.callback_answers) > answered, timeout=ANSWER_TIMEOUT, what=f"the answer of {user.id}"
    )
    latencies.append(1000 * (time.perf_counter() - sent))
    if "✅ " + option not in message.buttons:
        await user.wait_until(lambda: "✅ " + option in message.buttons, timeout=ANSWER_TIMEOUT, what="the edit")


async def run(args: argparse.Namespace, workdir: Path) -> Report:
    db = workdir / "poll.db"
    url = f"sqlite+aiosqlite:///{db}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TSUR_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env |= {
        "TSUR_CONFIG": str(workdir / "absent.toml"),
        "TSUR_BOT__TOKEN": TOKEN,
        "TSUR_BOT__POLLING_TIMEOUT": "2",
        "TSUR_BOT__ADMINS": f"[{ADMIN}]",
        "TSUR_DATABASE__URL": url,
        "TSUR_LOGGING__LEVEL": "WARNING",
        "TSUR_THROTTLE__RATE": "100000",
        "TSUR_THROTTLE__BURST": "100000",
        "TSUR_SCHEDULER__SWEEP_SECONDS": "5",
        # No quiet hours: a poll published "now" at night would wait for the morning, and the bench with it.
        "TSUR_SCHEDULER__QUIET_START": "00:00",
        "TSUR_SCHEDULER__QUIET_END": "00:00",
    }
    settings = load_settings(
        workdir / "absent.toml", bot={"token": TOKEN}, database={"url": url},
        scheduler={"quiet_start": "00:00", "quiet_end": "00:00"},
    )
    started = time.perf_counter()
    await seed(url, args.residents, settings.consent.version)
    log_line(f"seeded {args.residents} residents in {time.perf_counter() - started:.1f} s")
    async with BotAPIEmulator(token=TOKEN, bot_username="bench_bot", port=0, request_log_limit=1000) as emu:
        env["TSUR_BOT__API_BASE"] = emu.base_url
        users = [emu.user(FIRST_RESIDENT + n, first_name="Resident", language_code="ru") for n in range(args.residents)]
        for user in users:
            user.open_chat()
        log = (workdir / "bot.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *(["-m", "cProfile", "-o", str(args.profile.resolve())] if args.profile else []), "-m", "bot", "run",
            cwd=ROOT, env=env, stdin=DEVNULL, stdout=log, stderr=log,
            preexec_fn=die_with_parent,
        )
        try:
            deadline = time.perf_counter() + START_TIMEOUT
            while not emu.calls("getUpdates"):
                if proc.returncode is not None or time.perf_counter() > deadline:
                    raise BenchError("the bot did not start: " + (workdir / "bot.log").read_text()[-2000:])
                await asyncio.sleep(0.05)
            # The admin stores the poll, to be published now: the bot's scheduler claims and publishes it.
            engine = create_engine(url)
            services = build_services(settings, create_sessionmaker(engine), SystemClock())
            admin = await services.users.identify(ADMIN)
            draft = PollDraft(
                question="Are you satisfied with how your appeal was handled?", options=OPTIONS, multiple=False,
                allow_other=False, audience=Audience.all, closes_at=datetime.now(UTC) + timedelta(days=3),
            )
            poll_id = await services.polls.create(admin, draft)
            answerers = users[: args.answers]
            # The scheduler's next sweep publishes it (every 5 s here); the delivery is timed from its first message.
            await wait_for(lambda: has_poll(answerers[0]), 30, "the publishing")
            published = time.perf_counter()
            await wait_for(lambda: all(has_poll(u) for u in answerers), 10 + args.residents / 20, "the delivery")
            delivered = time.perf_counter() - published
            log_line(f"{args.answers} residents have the poll {delivered:.1f} s after the first; answering")
            latencies: list[float] = []
            gap = args.window / args.answers
            tasks = []
            first = time.perf_counter()
            for n, user in enumerate(answerers):
                due = first + n * gap
                if (pause := due - time.perf_counter()) > 0:
                    await asyncio.sleep(pause)
                tasks.append(asyncio.create_task(answer(user, OPTIONS[n % len(OPTIONS)], latencies)))
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            wall = time.perf_counter() - first
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            if failed:
                raise BenchError(f"{len(failed)} answers failed, e.g. {failed[0]!r}")
            # The results as /polls shows them, with the chart: the SQL aggregation and the PNG.
            bar_chart("warm-up", [("a", 1, 100.0)])
            began = time.perf_counter()
            results = await services.polls.results(admin, poll_id)
            png = bar_chart(
                results.poll.question,
                [(text, results.counts.get(o, 0), results.percent(results.counts.get(o, 0))) for o, text in results.options],
            )
            results_s = time.perf_counter() - began
            counted = sum(results.counts.values())
            if counted != args.answers:
                raise BenchError(f"{counted} answers in the results, {args.answers} given")
            await engine.dispose()
            return Report(args.residents, delivered, args.answers, wall, latencies, results_s, len(png), counted)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            log.close()


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tsur-poll-bench-") as tmp:
        report = asyncio.run(run(args, Path(tmp)))
    print(render(report, args))
    return report


if __name__ == "__main__":
    main()
