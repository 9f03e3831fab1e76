"""Broadcast benchmark (issue 13): a broadcast to N residents (10,000 by default) through the Bot API emulator with
Telegram's limits on (30 messages/s overall, 1 a second per chat), B of them (100) having blocked the bot, and the bot
killed (SIGKILL) once about half the items are out and started again at once.

The bot runs in its own process (`python -m bot run`, a fresh SQLite database seeded here: the residents with their
consent, an admin, a coordinator, an official and one more resident who files appeals but stopped news), against an
emulator in this process. The broadcast is stored as the composer stores it (scheduled, to everyone, starting now,
the admin's progress message to edit); the bot's scheduler job starts it within `broadcasts.progress_seconds` and
its outbox sender delivers it at `broadcasts.rate`. Meanwhile, every 2 s, this process files an appeal and routes it
through the services (on the same database file): the route queues appeal notifications to the official and to the
resident, and their delay is timed from the commit to the emulator receiving them.

Printed: the items delivered, blocked and failed; the achieved rate over the broadcast (first item to last) as a
fraction of the configured rate, counting the delivered items alone and every sending call (the items, the 403s and
the appeal notifications: what `broadcasts.rate` limits), with and without the restart gap (from the kill to the
first item after it: the process start, then the dead process's "bulk" lease of `broadcasts.lease_seconds` running
out and the notifications queued meanwhile); the spacing of the sending calls (time beyond 1/rate is lost unless
the sender's overall bucket, `broadcasts.burst`, makes it up); the 429s the emulator answered; duplicates (residents with more than
one item), losses (residents not blocked with none) and the items counted as "possibly twice" (in flight at the kill:
Outbox.lost_leases > 0), which bound the duplicates; the appeal notifications' delay p50/p99/max (those the kill held
up are counted apart). Goals (the issue's): at least 0.95 of the rate, no loss, duplicates only for the item in
flight at the kill, notifications p99 under 2 s. A missed goal is printed as MISS (exit status 0); a run that could
not be measured raises BenchError. BENCH_DEBUG=1 prints the calls to the staff's chats, the 429s and each
notification's delays on stderr. Usage:

    .venv/bin/python bench/broadcast.py [--residents 10000] [--blocked 100] [--rate 25] [--chat-burst 3] [--no-kill]
                                       [--profile FILE]

`--chat-burst` is the emulator's per-chat burst before its 1 message/s (Telegram tolerates short bursts; the sender
itself keeps to one a second per chat); 0 makes it a strict sliding second. With --profile the bot runs under cProfile; its
stats are written when it stops cleanly, so with the kill they cover the restarted process (the second half of the
broadcast), with --no-kill the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from asyncio.subprocess import DEVNULL, Process
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/broadcast.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker  # noqa: E402

from bench.intake import START_TIMEOUT, BenchError, die_with_parent, log_line  # noqa: E402
from bot.app import create_bot  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import Settings, load_settings  # noqa: E402
from bot.domain import BroadcastAudience, BroadcastStatus  # noqa: E402
from bot.services import Services, build_services  # noqa: E402
from bot.services.appeals import AppealDraft  # noqa: E402
from bot.services.users import Actor  # noqa: E402
from emulator import BotAPIEmulator  # noqa: E402
from emulator.models import ApiCall  # noqa: E402
from storage.db import create_engine, create_sessionmaker, upgrade  # noqa: E402
from storage.models import Broadcast, Consent, NewsPrefs, Outbox, User  # noqa: E402
from storage.repositories.broadcasts import ItemCounts, item_counts  # noqa: E402
from storage.seed import load_directories  # noqa: E402

TOKEN = "123456:BENCH-BROADCAST"
ADMIN, COORDINATOR, OFFICIAL, FILER = 1, 2, 3, 4  # Telegram ids (a private chat's id is its user's)
FIRST_RESIDENT = 100_000
MARK = "Плановое отключение воды"
TEXT = f"<b>{MARK}</b> в Гудермесе 5 декабря с 10:00 до 16:00. Запаситесь водой заранее."
TELEGRAM_RATE = 30  # messages a second overall; and one a second per chat
NOTIFY_EVERY = 2.0  # seconds between the appeals filed and routed during the broadcast
GOAL_RATE = 0.95
GOAL_P99_S = 2.0
SENDS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendVideo", "sendMediaGroup"})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=10_000, help="residents the broadcast goes to")
    parser.add_argument("--blocked", type=int, default=100, help="how many of them blocked the bot")
    parser.add_argument("--rate", type=float, default=25.0, help="broadcasts.rate, messages/s (at most 30)")
    parser.add_argument(
        "--chat-burst", type=int, default=3,
        help="messages one chat takes at once before Telegram's 1/s applies (0: a strict 1/s sliding window)",
    )
    parser.add_argument("--no-kill", action="store_true", help="no SIGKILL and restart in the middle")
    parser.add_argument("--profile", type=Path, help="run the bot under cProfile, its stats written to this file")
    args = parser.parse_args(argv)
    if args.residents < 2 or not 0 <= args.blocked < args.residents:
        parser.error("need at least 2 residents and 0 <= blocked < residents")
    if args.chat_burst < 0:
        parser.error("the chat burst cannot be negative")
    if not 0 < args.rate <= TELEGRAM_RATE:
        parser.error(f"the rate must be in (0, {TELEGRAM_RATE}]")
    return args


# --------------------------------------------------------------------------- the figures


@dataclass
class Restart:
    killed_at: float  # time.time() of the SIGKILL
    ready_s: float  # from the kill until the new process polls Telegram
    gap_s: float  # from the kill until the first item after it
    lease_s: int  # broadcasts.lease_seconds


@dataclass
class Report:
    rate: float  # broadcasts.rate configured
    recipients: int  # items listed (Broadcast.recipients)
    delivered: int  # items sent (the outbox's count)
    blocked: int
    failed: int
    unsure: int  # items whose sender died with their call in flight (Outbox.lost_leases > 0)
    flood_waits: int  # 429 pauses the bot recorded on the broadcast
    accepted: int  # item messages the emulator accepted (duplicates included)
    first_s: float  # time.time() of the first and the last item accepted
    last_s: float
    calls_in_span: int  # every sending call the bot made from the first item to the last (items, 403s, notifications)
    too_many: int  # 429s the emulator answered
    duplicates: int  # residents with more than one item
    losses: int  # residents who did not block the bot and got none
    delays_s: list[float]  # appeal notifications committed and sent while the bot was up
    # Spacing of consecutive sending calls within the span (the restart gap left out), in seconds: a spacing above
    # 1/rate is time the rate gets back only as far as the sender's overall burst allows.
    spacings_s: list[float] = field(default_factory=list)
    restart: Restart | None = None
    around_restart_s: list[float] = field(default_factory=list)  # notifications held by the kill (not in p99)
    unsent_notifications: int = 0  # queued by a route, never received

    @property
    def span_s(self) -> float:
        return max(self.last_s - self.first_s, 1e-9)

    @property
    def gap_s(self) -> float:
        return self.restart.gap_s if self.restart else 0.0

    def fraction(self, count: int, *, without_gap: bool = False) -> float:
        span = self.span_s - (self.gap_s if without_gap else 0.0)
        return count / max(span, 1e-9) / self.rate

    def p(self, q: float) -> float:
        return quantile(self.delays_s, q)

    @property
    def lost_s(self) -> float:
        """Time between sending calls beyond 1/rate each, net of what a burst made up: what keeps the rate below the
        configured one (the restart gap aside)."""
        return sum(self.spacings_s) - len(self.spacings_s) / self.rate


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def rates(whole: float, without_gap: float, report: Report) -> list[tuple[str, float]]:
    return [("whole span", whole)] + ([("restart gap excluded", without_gap)] if report.restart else [])


def render(report: Report, args: argparse.Namespace) -> str:
    r = report
    items_rate = r.fraction(r.delivered)
    items_rate_no_gap = r.fraction(r.delivered, without_gap=True)
    calls_rate = r.fraction(r.calls_in_span)
    calls_rate_no_gap = r.fraction(r.calls_in_span, without_gap=True)
    lines = [
        f"broadcast to {r.recipients} residents ({args.blocked} blocked the bot), rate {r.rate:g}/s, Telegram's limit "
        f"{TELEGRAM_RATE}/s and 1/s a chat (burst {args.chat_burst or 'none'})" + ("" if r.restart else ", no restart"),
        f"delivered {r.delivered}, blocked {r.blocked}, other errors {r.failed}; 429 answered: {r.too_many} "
        f"(flood pauses recorded: {r.flood_waits})",
        f"first item to last: {r.span_s:.1f} s; delivered {r.delivered / r.span_s:.2f}/s = {items_rate:.3f} of the rate; "
        f"every sending call (items, 403s, notifications: {r.calls_in_span}) {calls_rate:.3f}",
    ]
    if r.restart:
        s = r.restart
        lines.append(
            f"restart gap: {s.gap_s:.1f} s from the SIGKILL to the first item after it: {s.ready_s:.1f} s until the new "
            f"process polled, then {max(s.gap_s - s.ready_s, 0):.1f} s to its first item (the dead process's bulk lease "
            f"of {s.lease_s} s runs out at most {s.lease_s} s after the kill; the notifications queued meanwhile go first)"
        )
        lines.append(
            f"without the restart gap: delivered {items_rate_no_gap:.3f} of the rate; every sending call "
            f"{calls_rate_no_gap:.3f}"
        )
    if r.spacings_s:
        ms = [1000 * quantile(r.spacings_s, q) for q in (0.5, 0.9, 0.99)]
        lines.append(
            f"spacing of the sending calls (1/rate = {1000 / r.rate:.0f} ms): p50 {ms[0]:.0f} ms, p90 {ms[1]:.0f} ms, "
            f"p99 {ms[2]:.0f} ms, max {1000 * max(r.spacings_s):.0f} ms; time beyond 1/rate (net) {r.lost_s:.1f} s "
            f"({100 * r.lost_s / r.span_s:.1f} % of the span), {sum(1 for x in r.spacings_s if x > 0.2)} spacings over 200 ms "
            f"adding {sum(x - 1 / r.rate for x in r.spacings_s if x > 0.2):.1f} s"
        )
    lines += [
        f"duplicates {r.duplicates}, losses {r.losses}, items possibly sent twice (in flight at the kill) {r.unsure}",
        f"appeal notifications during the broadcast: {len(r.delays_s)}, delay p50 {r.p(0.5):.3f} s, p99 {r.p(0.99):.3f} s, "
        f"max {max(r.delays_s, default=0.0):.3f} s"
        + (
            f"; {len(r.around_restart_s)} more held by the restart (max {max(r.around_restart_s):.1f} s, not counted)"
            if r.around_restart_s
            else ""
        )
        + (f"; {r.unsent_notifications} NEVER SENT" if r.unsent_notifications else ""),
        "goals:",
        f"  rate >= {GOAL_RATE} of the configured, delivered items: "
        + "; ".join(f"{verdict(x >= GOAL_RATE)} {what} {x:.3f}" for what, x in rates(items_rate, items_rate_no_gap, r)),
        f"  rate >= {GOAL_RATE} of the configured, every sending call (what broadcasts.rate limits): "
        + "; ".join(f"{verdict(x >= GOAL_RATE)} {what} {x:.3f}" for what, x in rates(calls_rate, calls_rate_no_gap, r)),
        f"  losses 0: {verdict(r.losses == 0)} ({r.losses})",
        f"  duplicates only for the item in flight at the kill: {verdict(r.duplicates <= r.unsure)} "
        f"({r.duplicates} <= {r.unsure})",
        f"  appeal notifications p99 < {GOAL_P99_S:g} s: "
        f"{verdict(bool(r.delays_s) and r.p(0.99) < GOAL_P99_S and not r.unsent_notifications)} ({r.p(0.99):.3f} s)",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the world


@dataclass
class Staff:
    admin: Actor
    coordinator: Actor
    filer: Actor
    category_id: int
    district_id: int


async def seed(url: str, settings: Settings, residents: int) -> None:
    """Migrate, load the data files and write the residents (consent given in its current version, no appeal: the
    broadcast goes to everyone)."""
    engine = create_engine(url)
    await upgrade(engine)
    sessionmaker = create_sessionmaker(engine)
    await load_directories(sessionmaker)
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        users = [
            {"id": n + 1, "tg_id": FIRST_RESIDENT + n, "locale": "ru", "is_active": True, "created_at": now}
            for n in range(residents)
        ]
        await session.execute(insert(User.__table__), users)
        await session.execute(
            insert(Consent.__table__),
            [{"user_id": u["id"], "version": settings.consent.version, "accepted": True, "at": now} for u in users],
        )
        await session.commit()
    await engine.dispose()


async def people(services: Services, sessionmaker: async_sessionmaker[AsyncSession]) -> Staff:
    """The admin (of the config), a coordinator and an official of the agency the appeals are routed to (invited by
    the admin), and the resident who files them: consented, news stopped (not among the broadcast's recipients)."""
    await services.access.bootstrap_admins([ADMIN])
    admin = await services.users.identify(ADMIN)
    block = services.directory.blocks()[0]
    category_id = services.directory.categories(block.id)[0].id
    district_id = services.directory.districts()[0].id
    agency_id = await services.views.suggest(category_id, district_id)
    if agency_id is None:
        raise BenchError("the routing matrix sends the first category nowhere")
    for tg_id, role, agency in ((COORDINATOR, "coordinator", None), (OFFICIAL, "official", agency_id)):
        link = await services.access.create_invite(admin, role, agency)
        await services.access.redeem(await services.users.identify(tg_id), link.token)
    coordinator = await services.users.identify(COORDINATOR)
    filer = await services.users.identify(FILER)
    filer = await services.users.set_locale(filer, "ru")
    filer = await services.users.answer_consent(filer, True)
    async with sessionmaker() as session:
        session.add(NewsPrefs(user_id=filer.id, stopped=True, districts_chosen=False, updated_at=datetime.now(UTC)))
        await session.commit()
    return Staff(admin, coordinator, filer, category_id, district_id)


async def store_broadcast(
    sessionmaker: async_sessionmaker[AsyncSession], admin: Actor, planned: int, progress_message_id: int
) -> int:
    """The broadcast as the composer stores it on confirmation: to everyone, now, with the author's progress message."""
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        row = Broadcast(
            draft_key=uuid.uuid4().hex,
            created_by=admin.id,
            created_at=now,
            status=BroadcastStatus.scheduled,
            urgent=False,
            texts={"ru": TEXT},
            audience=BroadcastAudience().to_json(),
            planned=planned,
            start_at=now,
            listed=False,
            progress_chat_id=ADMIN,
            progress_message_id=progress_message_id,
        )
        session.add(row)
        await session.commit()
        return row.id


# --------------------------------------------------------------------------- the bot's process


class BotProcess:
    """`python -m bot run` with the bench's environment; started, killed, stopped."""

    def __init__(self, env: dict[str, str], workdir: Path, profile: Path | None) -> None:
        self.env = env
        self.workdir = workdir
        self.profile = profile
        self.proc: Process | None = None
        self.log = (workdir / "bot.log").open("ab")

    async def start(self, emu: BotAPIEmulator) -> float:
        """Start it and wait until it polls; returns time.time() then."""
        polls = len(emu.calls("getUpdates"))
        profile = ["-m", "cProfile", "-o", str(self.profile.resolve())] if self.profile else []
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *profile, "-m", "bot", "run",
            cwd=ROOT, env=self.env, stdin=DEVNULL, stdout=self.log, stderr=self.log, preexec_fn=die_with_parent,
        )
        deadline = time.perf_counter() + START_TIMEOUT
        while len(emu.calls("getUpdates")) <= polls:
            if self.proc.returncode is not None or time.perf_counter() > deadline:
                raise BenchError("the bot did not start: " + (self.workdir / "bot.log").read_text()[-2000:])
            await asyncio.sleep(0.02)
        return time.time()

    async def kill(self) -> float:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: nothing is cleaned up, the leases stay until they expire
        killed = time.time()
        await self.proc.wait()
        return killed

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------- watching the emulator


class Watch:
    """Reads the emulator's request log as it grows (every call is kept): the broadcast's items by chat, the 429s."""

    def __init__(self, emu: BotAPIEmulator, residents: set[int]) -> None:
        self.emu = emu
        self.residents = residents
        self.seen = 0
        self.accepted: list[tuple[float, int]] = []  # (time, chat) of each item the emulator took
        self.refused: list[tuple[float, int]] = []  # items answered 403
        self.sends: list[float] = []  # every sending call not answered 429
        self.too_many = 0

    def scan(self) -> None:
        calls = self.emu.requests
        for call in calls[self.seen :]:
            self.take(call)
        self.seen = len(calls)

    def items(self) -> int:
        """Items the emulator accepted so far."""
        self.scan()
        return len(self.accepted)

    def take(self, call: ApiCall) -> None:
        if call.method not in SENDS or not call.status:
            return
        if call.error_code == 429:
            self.too_many += 1
            return
        self.sends.append(call.time)
        chat = chat_of(call)
        if chat in self.residents and MARK in str(call.params.get("text") or ""):
            (self.accepted if call.ok else self.refused).append((call.time, chat))


def chat_of(call: ApiCall) -> int | None:
    try:
        return int(call.params.get("chat_id"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


async def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- appeal notifications


class Notifier:
    """Every NOTIFY_EVERY seconds: the resident files an appeal, the coordinator routes it (the route's commit queues
    StatusChanged to the resident and Assigned to the official); the commit time is kept by appeal number."""

    def __init__(self, services: Services, staff: Staff) -> None:
        self.services = services
        self.staff = staff
        self.committed: dict[str, float] = {}
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        n = 0
        next_at = time.perf_counter()
        while not self.stopping.is_set():
            draft = AppealDraft(
                draft_id=f"bench-broadcast-{n:06d}", category_id=self.staff.category_id,
                district_id=self.staff.district_id, kind="message", text="Во дворе третий день нет воды",
                address="Гудермес, ул. Мира, 1",
            )
            filed = await self.services.appeals.file(self.staff.filer, draft)
            await self.services.coordination.route(self.staff.coordinator, filed.id)
            self.committed[filed.number] = time.time()
            n += 1
            next_at += NOTIFY_EVERY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), max(next_at - time.perf_counter(), 0))

    def received(self, emu: BotAPIEmulator) -> dict[tuple[str, int], float]:
        """(appeal number, chat) -> when the emulator took the notification, for the official's and the resident's."""
        out: dict[tuple[str, int], float] = {}
        for call in emu.calls(ok=True):
            chat = chat_of(call)
            if call.method not in SENDS or chat not in (OFFICIAL, FILER):
                continue
            text = str(call.params.get("text") or call.params.get("caption") or "")
            for number in self.committed:
                if number in text:
                    out.setdefault((number, chat), call.time)
        return out


# --------------------------------------------------------------------------- the run


async def run(args: argparse.Namespace, workdir: Path) -> Report:
    db = workdir / "broadcast.db"
    url = f"sqlite+aiosqlite:///{db}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TSUR_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env |= {
        "TSUR_CONFIG": str(workdir / "absent.toml"),
        "TSUR_BOT__TOKEN": TOKEN,
        "TSUR_BOT__POLLING_TIMEOUT": "2",
        "TSUR_BOT__ADMINS": f"[{ADMIN}]",
        "TSUR_DATABASE__URL": url,
        "TSUR_LOGGING__LEVEL": "WARNING",
        "TSUR_BROADCASTS__RATE": str(args.rate),
        # No quiet hours: the figures must not depend on the hour the bench runs at.
        "TSUR_SCHEDULER__QUIET_START": "00:00",
        "TSUR_SCHEDULER__QUIET_END": "00:00",
    }
    settings = load_settings(
        workdir / "absent.toml", bot={"token": TOKEN, "admins": [ADMIN]}, database={"url": url},
        broadcasts={"rate": args.rate},
    )
    began = time.perf_counter()
    await seed(url, settings, args.residents)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    services = build_services(settings, sessionmaker, SystemClock())
    await services.directory.reload()
    staff = await people(services, sessionmaker)
    log_line(f"seeded {args.residents} residents in {time.perf_counter() - began:.1f} s")
    ids = [FIRST_RESIDENT + n for n in range(args.residents)]
    async with BotAPIEmulator(token=TOKEN, bot_username="bench_bot", port=0, request_log_limit=None) as emu:
        env["TSUR_BOT__API_BASE"] = emu.base_url
        users = [emu.user(tg, first_name="Resident", language_code="ru") for tg in ids]
        for user in users:
            user.open_chat()
        blocked = {u.id for u in users[:: max(1, args.residents // args.blocked)][: args.blocked]} if args.blocked else set()
        for user in users:
            if user.id in blocked:
                user.block(notify=False)  # the bot learns it from the 403
        for tg in (ADMIN, OFFICIAL, FILER):
            emu.user(tg, language_code="ru").open_chat()
        emu.rate_limit(per_chat_per_second=1, global_per_second=TELEGRAM_RATE, per_chat_burst=args.chat_burst or None)
        watch = Watch(emu, set(ids))
        bot = BotProcess(env, workdir, args.profile)
        notifier = Notifier(services, staff)
        filing: asyncio.Task[None] | None = None
        try:
            await bot.start(emu)
            # The author's progress message, as the composer leaves it after the confirmation.
            on_emu = settings.model_copy(update={"bot": settings.bot.model_copy(update={"api_base": emu.base_url})})
            sender = create_bot(on_emu, retry_after=False)
            async with sender.session:
                progress = await sender.send_message(ADMIN, "📣 …")
            broadcast_id = await store_broadcast(sessionmaker, staff.admin, args.residents, progress.message_id)
            filing = asyncio.create_task(notifier.run())
            await wait_for(lambda: watch.items() > 0, 3 * settings.broadcasts.progress_seconds + 30, "the first item")
            log_line(f"broadcast {broadcast_id} started")
            restart = None
            if not args.no_kill:
                half = (args.residents - args.blocked) // 2
                await wait_for(lambda: watch.items() >= half, args.residents, "half the items")
                killed = await bot.kill()
                log_line(f"killed the bot with {len(watch.accepted)} items out; starting it again")
                ready = await bot.start(emu)
                restart = Restart(killed, ready - killed, 0.0, settings.broadcasts.lease_seconds)

            async def status() -> str:
                async with sessionmaker() as session:
                    return (await session.execute(select(Broadcast.status).where(Broadcast.id == broadcast_id))).scalar_one()

            deadline = time.perf_counter() + 3 * args.residents / args.rate + 300
            while await status() != BroadcastStatus.done:
                if bot.proc is not None and bot.proc.returncode is not None:
                    raise BenchError("the bot died: " + (workdir / "bot.log").read_text()[-2000:])
                if time.perf_counter() > deadline:
                    raise BenchError("the broadcast did not end in time")
                watch.scan()
                await asyncio.sleep(0.5)
            notifier.stopping.set()
            await filing
            # The last notifications (one in flight at the kill waits for its outbox lease, a minute); any still
            # missing after that is reported as never sent.
            with contextlib.suppress(BenchError):
                await wait_for(
                    lambda: len(notifier.received(emu)) >= 2 * len(notifier.committed), 75, "the last notifications"
                )
            watch.scan()
            async with sessionmaker() as session:
                counts = await item_counts(session, broadcast_id)
                row = (await session.execute(select(Broadcast).where(Broadcast.id == broadcast_id))).scalar_one()
                unsure = (
                    await session.execute(
                        select(func.count()).select_from(Outbox).where(Outbox.broadcast_id == broadcast_id, Outbox.lost_leases > 0)
                    )
                ).scalar_one()
            if os.environ.get("BENCH_DEBUG"):
                debug(emu, watch, notifier, restart)
            return measure(args, watch, notifier.committed, notifier.received(emu), restart, row, counts, unsure, blocked)
        finally:
            notifier.stopping.set()
            if filing is not None and not filing.done():
                with contextlib.suppress(Exception):
                    await filing
            await bot.stop()
            await engine.dispose()


def measure(
    args: argparse.Namespace,
    watch: Watch,
    committed: dict[str, float],
    received: dict[tuple[str, int], float],
    restart: Restart | None,
    row: Any,
    counts: ItemCounts,
    unsure: int,
    blocked: set[int],
) -> Report:
    """The figures of a run: the items as the emulator took them (`watch`), the appeal notifications (`committed`:
    number -> commit time; `received`: (number, chat) -> when the emulator took it), the broadcast's row and counts."""
    if not watch.accepted:
        raise BenchError("no item was delivered")
    items = sorted(watch.accepted + watch.refused)
    first, last = min(t for t, _ in watch.accepted), max(t for t, _ in watch.accepted)
    per_chat = Counter(chat for _, chat in watch.accepted)
    duplicates = sum(1 for n in per_chat.values() if n > 1)
    losses = sum(1 for chat in watch.residents if chat not in blocked and not per_chat[chat])
    if restart is not None:
        after = [t for t, _ in items if t > restart.killed_at]
        restart.gap_s = (min(after) - restart.killed_at) if after else 0.0
    delays: list[float] = []
    held: list[float] = []
    unsent = 0
    for number, at in committed.items():
        if not first <= at <= last:
            continue  # filed before the broadcast began or after it ended
        for chat in (OFFICIAL, FILER):
            sent = received.get((number, chat))
            if sent is None:
                unsent += 1
            elif restart is not None and at <= restart.killed_at + restart.ready_s and sent >= restart.killed_at:
                held.append(sent - at)  # waited for the bot to come back: the restart, not the broadcast
            else:
                delays.append(sent - at)
    return Report(
        rate=args.rate,
        recipients=row.recipients,
        delivered=counts.sent,
        blocked=counts.blocked,
        failed=counts.failed,
        unsure=unsure,
        flood_waits=row.flood_waits,
        accepted=len(watch.accepted),
        first_s=first,
        last_s=last,
        calls_in_span=sum(1 for t in watch.sends if first <= t <= last),
        spacings_s=spacings(watch.sends, first, last, restart),
        too_many=watch.too_many,
        duplicates=duplicates,
        losses=losses,
        delays_s=delays,
        restart=restart,
        around_restart_s=held,
        unsent_notifications=unsent,
    )


def spacings(sends: list[float], first: float, last: float, restart: Restart | None) -> list[float]:
    """The spacing of consecutive sending calls from the first item to the last, the one across the restart left out."""
    times = sorted(t for t in sends if first <= t <= last)
    out = []
    for a, b in pairwise(times):
        if restart is not None and a <= restart.killed_at < b:
            continue
        out.append(b - a)
    return out


def debug(emu: BotAPIEmulator, watch: Watch, notifier: Notifier, restart: Restart | None) -> None:
    """With BENCH_DEBUG set: the calls to the staff's and the filer's chats and every 429, and each notification's
    delays, on stderr (seconds from the first item)."""
    t0 = min((t for t, _ in watch.accepted), default=0.0)
    for call in emu.requests:
        if call.method != "getUpdates" and (call.error_code == 429 or chat_of(call) in (ADMIN, OFFICIAL, FILER)):
            text = str(call.params.get("text"))[:50]
            log_line(f"{call.time - t0:8.3f} {call.method} {chat_of(call)} {call.status} {call.description} {text!r}")
    received = notifier.received(emu)
    for number, at in notifier.committed.items():
        delays = ", ".join(f"{chat}: {received.get((number, chat), at) - at:.3f}" for chat in (OFFICIAL, FILER))
        log_line(f"{at - t0:8.3f} committed {number}: {delays}")
    if restart:
        log_line(f"killed at {restart.killed_at - t0:.3f}, polling again at {restart.killed_at + restart.ready_s - t0:.3f}")


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tsur-broadcast-bench-") as tmp:
        report = asyncio.run(run(args, Path(tmp)))
    print(render(report, args))
    return report


if __name__ == "__main__":
    main()
