"""Instances benchmark: the intake load through the emulator's webhook delivery, to one tsur-bot instance and then to
two instances sharing one PostgreSQL and one Redis, in the same run.

One emulator runs in this process and POSTs every update to one URL, as Telegram does (`emulator/webhook.py`: at most
`max_connections` requests in flight, one chat's updates one at a time, retries on an error or a timeout). That URL is
a tiny round-robin proxy, also in this process, in front of the deployment's instances (production puts nginx there:
deploy/nginx-two-instances.conf); each instance is `python -m bot run` in webhook mode, in a process of its own, with
its webhook server on a port of its own. The deployments, each with a database of its own on one PostgreSQL server:

- "1 x PostgreSQL": one instance, dialog state in Redis (the baseline: the same stack as two, one process);
- "2 x PostgreSQL": two instances, one database, one Redis (RedisStorage with RedisEventIsolation);
- with --sqlite, also "1 x SQLite": one instance on the embedded default (SQLite, dialog state in the database).

All stay up for the whole run and play in rounds, the order rotating from round to round; in each round each plays
bench/intake.py's two phases: a burst (R residents at once, each filing a complete appeal: 13 updates, each sent after
the answer to the previous one) for updates/s and CPU per update, and a paced phase (--rate updates/s for --duration
s) for the reply latency, p50 and p99. CPU per update is the CPU time of all the deployment's bot processes (/proc);
the PostgreSQL server, Redis and this process (the emulator, the people, the proxy) are shown apart.

Counted after every phase, once everything is quiet: duplicates (an appeal stored more than once for one Confirm, a
bot message or callback answer more than one update's answer gives) and losses (a step never answered, an update
never confirmed, an appeal confirmed but not stored or its number never told). Figures are medians over the rounds;
the two-instance/one-instance throughput ratio is taken within each round.

PostgreSQL and Redis: from --pg-url/--redis-url, else TSUR_TEST_PG_URL/TSUR_TEST_REDIS_URL, else the script runs
itself under .ci/with-services (a throwaway cluster and Redis server on free ports, stopped at the end). The URL's
database is only where the bench connects to create (and at the end drop) the deployments' databases; the Redis
databases 1, 2, … of that server are used and flushed. The instances log at WARNING into a temporary directory
(BENCH_LOG_LEVEL=INFO for more); their error lines are summed up at the end. Usage:

    .venv/bin/python bench/instances.py [--rounds 2] [--residents 50] [--rate 60] [--duration 8] [--sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import DEVNULL, Process
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/instances.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from bench.intake import (  # noqa: E402
    APPEAL,
    ONBOARDING,
    START_TIMEOUT,
    STEP_TIMEOUT,
    BenchError,
    Phase,
    busy,
    die_with_parent,
    log_line,
    run_step,
)
from emulator import BotAPIEmulator, EmulatedUser  # noqa: E402

SECRET = "bench-secret-token"
NUMBER_MARK = "Your appeal is registered"  # Confirm's answer, with the appeal's number
QUIET_S = 0.25  # a phase is over when no bot message or callback answer came for this long
SETTLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Setup:
    name: str
    instances: int
    database: str  # "postgresql" or "sqlite"


def setups(sqlite: bool) -> list[Setup]:
    chosen = [Setup("1 x PostgreSQL", 1, "postgresql"), Setup("2 x PostgreSQL", 2, "postgresql")]
    return [Setup("1 x SQLite", 1, "sqlite"), *chosen] if sqlite else chosen


# --------------------------------------------------------------------------- CPU time from /proc


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def process_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (all threads); with `children`, also of its children that ended (reaped)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def find_server(port: int, name: str) -> int | None:
    """The pid of the server process (`postgres`, `redis-server`) listening on `port`, by its command line."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if not words or name not in Path(words[0]).name:
            continue
        line = " ".join(words)
        if f"-p {port}" in line or f"--port {port}" in line or f":{port}" in line:
            return int(entry.name)
    return None


def server_cpu(pid: int | None) -> float:
    """CPU seconds of a server and of its children (PostgreSQL's backends), those running and those that ended."""
    if pid is None:
        return 0.0
    total = process_cpu(pid, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None and fields[1] == str(pid):
            total += process_cpu(int(entry.name))
    return total


# --------------------------------------------------------------------------- the services


@dataclass
class Services:
    pg_url: str  # postgresql+asyncpg://…/db: where CREATE/DROP DATABASE run
    redis_url: str
    pg_pid: int | None = None
    redis_pid: int | None = None
    created: list[str] = field(default_factory=list)

    async def admin(self, *statements: str) -> None:
        import asyncpg
        from sqlalchemy.engine import make_url

        url = make_url(self.pg_url)
        conn = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
        )
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def new_database(self, name: str) -> str:
        from sqlalchemy.engine import make_url

        await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(self.pg_url).set(database=name).render_as_string(hide_password=False)

    def redis_db(self, index: int) -> str:
        base, _, last = self.redis_url.rstrip("/").rpartition("/")
        return f"{base}/{index}" if last.isdigit() else f"{self.redis_url.rstrip('/')}/{index}"

    async def flush_redis(self, url: str) -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(url)
        try:
            await client.flushdb()
        finally:
            await client.aclose()

    def locate(self) -> None:
        from sqlalchemy.engine import make_url

        self.pg_pid = find_server(make_url(self.pg_url).port or 5432, "postgres")
        redis_port = int(self.redis_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        self.redis_pid = find_server(redis_port, "redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- a deployment


class Proxy:
    """Round-robin in front of the instances: what nginx does in production, here for one URL the emulator posts to.
    A refused connection is a 502 (the emulator, like Telegram, delivers the update again later)."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = itertools.cycle(backends)
        self.session: aiohttp.ClientSession | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        app = web.Application()
        app.router.add_post("/webhook", self.forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/webhook"

    async def forward(self, request: web.Request) -> web.Response:
        assert self.session is not None
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("content-type", "x-telegram-bot-api-secret-token")
        }
        try:
            async with self.session.post(next(self.backends), data=await request.read(), headers=headers) as answer:
                return web.Response(status=answer.status, body=await answer.read(), content_type=answer.content_type)
        except aiohttp.ClientConnectionError:
            return web.Response(status=502)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()


@dataclass
class Person:
    """What one person did: the steps answered, by index in APPEAL and pass (0: the first filing, 1: a later one)."""

    done: list[tuple[int, int]] = field(default_factory=list)
    confirms: int = 0  # Confirm presses sent (answered or not)
    lost: int = 0  # steps never answered


@dataclass
class Counts:
    duplicates: int = 0
    losses: int = 0
    redeliveries: int = 0  # webhook deliveries retried (an error, a timeout): the path where duplicates could arise
    detail: list[str] = field(default_factory=list)

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.duplicates + other.duplicates,
            self.losses + other.losses,
            max(self.redeliveries, other.redeliveries),
            self.detail + other.detail,
        )


class Deployment:
    """The instances of one setup, their emulator and their proxy, kept up through all the rounds."""

    def __init__(self, setup: Setup, index: int, workdir: Path) -> None:
        self.setup = setup
        self.token = f"{700_000 + index}:BENCH-INSTANCES"
        self.workdir = workdir
        self.emu: BotAPIEmulator
        self.proxy: Proxy
        self.procs: list[Process] = []
        self.logs: list[Path] = []
        self.database_url = ""
        self.people: dict[int, Person] = {}
        self.next_user = 100_000
        self.bursts: list[Phase] = []
        self.paced: list[Phase] = []
        self.counts: list[Counts] = []
        self.services_cpu: list[tuple[float, float, float]] = []  # PostgreSQL, Redis, this process: CPU s/phase pair
        self.reference: dict[tuple[int, int], int] = {}  # replies (messages + callback answers) each step gives

    # the bench.intake.Meter interface
    def cpu_seconds(self) -> float:
        total = 0.0
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.returncode is not None:
                raise BenchError(f"{self.setup.name}: an instance exited with {proc.returncode}:\n{tail(log)}")
            total += process_cpu(proc.pid)
        return total

    def users(self, count: int) -> list[EmulatedUser]:
        first, self.next_user = self.next_user, self.next_user + count
        users = [self.emu.user(uid, first_name="Resident", language_code="en") for uid in range(first, first + count)]
        for user in users:
            self.people[user.id] = Person()
        return users

    def replies(self, user: EmulatedUser) -> int:
        return len(user.messages) + len(user.callback_answers)

    async def quiet(self) -> None:
        """Wait until every update is confirmed and no reply came for QUIET_S seconds."""
        deadline = time.perf_counter() + SETTLE_TIMEOUT
        last = -1
        while time.perf_counter() < deadline:
            now = sum(len(u.messages) + len(u.callback_answers) for u in self.emu.users.values())
            if now == last and self.emu.updates_pending() == 0:
                return
            last = now
            await asyncio.sleep(QUIET_S)

    async def count(self, users: list[EmulatedUser]) -> Counts:
        """Duplicates and losses of the people of a phase, once everything is quiet."""
        await self.quiet()
        counts = Counts(redeliveries=self.emu.webhook.failures)
        stored = await self.appeals_by_user()
        pending = self.emu.updates_pending()
        if pending:
            counts.losses += pending
            counts.detail.append(f"{pending} updates never confirmed")
        for user in users:
            person = self.people[user.id]
            counts.losses += person.lost
            numbers = sum(NUMBER_MARK in (m.text or "") for m in user.messages)
            appeals = stored.get(user.id, 0)
            filed = sum(1 for i, _ in person.done if APPEAL[i].appeal)
            if appeals > person.confirms or numbers > person.confirms:
                counts.duplicates += max(appeals, numbers) - person.confirms
                counts.detail.append(f"user {user.id}: {appeals} appeals, {numbers} numbers, {person.confirms} Confirm")
            if appeals < filed or numbers < filed:
                counts.losses += filed - min(appeals, numbers)
                counts.detail.append(f"user {user.id}: {appeals} appeals, {numbers} numbers told, {filed} confirmed")
            expected = sum(self.reference.get(step, 0) for step in person.done)
            if self.replies(user) > expected and not person.lost:
                counts.duplicates += self.replies(user) - expected
                counts.detail.append(f"user {user.id}: {self.replies(user)} replies, {expected} expected")
            queries = [a["callback_query_id"] for a in user.callback_answers]
            if len(set(queries)) < len(queries):
                counts.duplicates += len(queries) - len(set(queries))
                counts.detail.append(f"user {user.id}: a callback query answered twice")
        return counts

    async def appeals_by_user(self) -> dict[int, int]:
        from sqlalchemy import text

        from storage.db import create_engine

        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT u.tg_id, COUNT(*) FROM appeals a JOIN users u ON u.id = a.user_id GROUP BY u.tg_id")
                )
                return {int(tg_id): int(n) for tg_id, n in rows}
        finally:
            await engine.dispose()


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


async def step(dep: Deployment, user: EmulatedUser, index: int, again: int, latencies: list[float]) -> bool:
    """One step of one person; False (and a loss counted) when it was never answered."""
    person = dep.people[user.id]
    person.confirms += APPEAL[index].appeal
    try:
        latencies.append(1000 * await run_step(user, APPEAL[index]))
    except BenchError as error:
        if "Something went wrong" in str(error):
            raise
        person.lost += 1
        log_line(f"{dep.setup.name}: lost: {str(error).splitlines()[0]}")
        return False
    person.done.append((index, again))
    return True


@contextlib.asynccontextmanager
async def deployment(
    setup: Setup, index: int, services: Services | None, workdir: Path, args: argparse.Namespace
) -> AsyncIterator[Deployment]:
    dep = Deployment(setup, index, workdir)
    async with contextlib.AsyncExitStack() as stack:
        dep.emu = await stack.enter_async_context(
            BotAPIEmulator(token=dep.token, bot_username="bench_bot", host="127.0.0.1", port=0)
        )
        ports = [free_port() for _ in range(setup.instances)]
        dep.proxy = Proxy([f"http://127.0.0.1:{port}/webhook" for port in ports])
        await dep.proxy.start()
        stack.push_async_callback(dep.proxy.stop)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TSUR_", "VIRTUAL_ENV", "PYTHONPATH"))}
        env |= {
            "TSUR_CONFIG": str(workdir / "absent.toml"),  # configured by the environment only
            "TSUR_BOT__TOKEN": dep.token,
            "TSUR_BOT__API_BASE": dep.emu.base_url,
            "TSUR_BOT__MODE": "webhook",
            "TSUR_WEBHOOK__URL": dep.proxy.url,
            "TSUR_WEBHOOK__SECRET": SECRET,
            "TSUR_WEBHOOK__MAX_CONNECTIONS": str(args.max_connections),
            "TSUR_LOGGING__LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "TSUR_THROTTLE__RATE": "100000",  # scripted people are faster than any person: no throttling
            "TSUR_THROTTLE__BURST": "100000",
        }
        if setup.database == "sqlite":
            dep.database_url = f"sqlite+aiosqlite:///{workdir / f'{index}.db'}"
        else:
            assert services is not None
            dep.database_url = await services.new_database(f"tsur_bench_{os.getpid()}_{index}")
            redis_url = services.redis_db(index + 1)
            await services.flush_redis(redis_url)
            env |= {"TSUR_FSM__STORAGE": "redis", "TSUR_FSM__REDIS_URL": redis_url}
        env["TSUR_DATABASE__URL"] = dep.database_url
        python = ROOT / ".venv" / "bin" / "python"
        try:
            # One after the other: the first migrates the database, the next find it up to date.
            for n, port in enumerate(ports):
                log = workdir / f"{index}-{n}.log"
                dep.logs.append(log)
                with log.open("wb") as out:
                    proc = await asyncio.create_subprocess_exec(
                        str(python), "-m", "bot", "run", cwd=ROOT, stdin=DEVNULL, stdout=out, stderr=out,
                        env=env | {"TSUR_WEBHOOK__PORT": str(port)}, preexec_fn=die_with_parent,
                    )  # fmt: skip
                dep.procs.append(proc)
                log_line(f"{setup.name}: instance {n + 1} started (pid {proc.pid}), waiting for /readyz")
                await ready(dep, port)
            await warm_up(dep)
            log_line(
                f"{setup.name}: {setup.instances} instance(s) up (pids {', '.join(str(p.pid) for p in dep.procs)})"
            )
            yield dep
        finally:
            for proc in dep.procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
            for proc in dep.procs:
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            for log in dep.logs:
                errors = [
                    line
                    for line in log.read_text(errors="replace").splitlines()
                    if " ERROR " in line or "Traceback" in line
                ]
                if errors:
                    log_line(f"{setup.name}: {len(errors)} error lines in {log.name}, e.g. {errors[0]}")


async def ready(dep: Deployment, port: int) -> None:
    """Wait for the instance's /readyz (its database, Redis and the Bot API answer) and its setWebhook."""
    deadline = time.perf_counter() + START_TIMEOUT
    calls = len(dep.emu.calls("setWebhook"))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            dep.cpu_seconds()  # raises if an instance died
            state = "not listening"
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"http://127.0.0.1:{port}/readyz") as answer:
                    state = f"/readyz {answer.status} {await answer.text()}"
                    if answer.status == 200 and len(dep.emu.calls("setWebhook")) > calls:
                        return
            if time.perf_counter() > deadline:
                raise BenchError(f"{dep.setup.name}: an instance did not start ({state}):\n{tail(dep.logs[-1])}")
            await asyncio.sleep(0.1)


async def warm_up(dep: Deployment) -> None:
    """One person alone, step by step, once quiet after each: the replies each step gives (the reference for the
    duplicates); then a few at once, for the imports, caches and first connections of every instance."""
    latencies: list[float] = []
    (user,) = dep.users(1)
    before = dep.replies(user)
    for again, indexes in enumerate((range(len(APPEAL)), range(ONBOARDING, len(APPEAL)))):
        for index in indexes:
            if not await step(dep, user, index, again, latencies):
                raise BenchError(f"{dep.setup.name}: the warm-up was not answered")
            await dep.quiet()
            dep.reference[index, again] = dep.replies(user) - before
            before = dep.replies(user)

    async def one(user: EmulatedUser) -> None:
        for index in range(len(APPEAL)):
            if not await step(dep, user, index, 0, latencies):
                raise BenchError(f"{dep.setup.name}: the warm-up was not answered")

    users = dep.users(4 * len(dep.procs))
    await asyncio.gather(*(one(user) for user in users))
    counts = await dep.count([*users, user])
    if counts.duplicates or counts.losses:
        raise BenchError(f"{dep.setup.name}: the warm-up counted {counts}")


class Meter:
    """Wall time and CPU time over a phase: the bots, PostgreSQL, Redis, this process, and all other processes."""

    def __init__(self, dep: Deployment, services: Services | None) -> None:
        self.dep, self.services = dep, services
        self.start = self.read()

    def read(self) -> tuple[float, ...]:
        pg = server_cpu(self.services.pg_pid) if self.services else 0.0
        redis = server_cpu(self.services.redis_pid) if self.services else 0.0
        return time.perf_counter(), self.dep.cpu_seconds(), pg, redis, time.process_time(), busy()

    def phase(self, updates: int, appeals: int, latencies: list[float], send_rate: float = 0.0) -> Phase:
        wall, bots, pg, redis, own, all_ = (b - a for a, b in zip(self.start, self.read(), strict=True))
        self.dep.services_cpu.append((pg, redis, own))
        other = max(0.0, 100 * (all_ - bots - pg - redis - own) / wall)
        return Phase(wall, updates, appeals, bots, latencies, other, send_rate)


async def burst(dep: Deployment, services: Services | None, residents: int) -> Phase:
    latencies: list[float] = []
    users = dep.users(residents)

    async def one(user: EmulatedUser) -> None:
        for index in range(len(APPEAL)):
            if not await step(dep, user, index, 0, latencies):
                return

    meter = Meter(dep, services)
    await asyncio.gather(*(one(user) for user in users))
    phase = meter.phase(len(latencies), residents, latencies)
    dep.counts.append(await dep.count(users))
    return phase


async def paced(dep: Deployment, services: Services | None, rate: float, duration: float, pool: int) -> Phase:
    """bench/intake.py's paced phase: update i goes out at start + i/rate, sent by the person idle the longest."""
    idle: asyncio.Queue[tuple[EmulatedUser, int, int]] = asyncio.Queue()
    users = dep.users(pool)
    for user in users:
        idle.put_nowait((user, 0, 0))
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(user: EmulatedUser, index: int, again: int) -> None:
        if await step(dep, user, index, again, latencies):
            idle.put_nowait((user, *((index + 1, again) if index + 1 < len(APPEAL) else (ONBOARDING, 1))))

    total = round(rate * duration)
    meter = Meter(dep, services)
    start = time.perf_counter()
    sent = 0
    for i in range(total):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                user, index, again = await idle.get()
        except TimeoutError:
            break  # everyone is waiting for an answer that does not come: counted as losses
        task = asyncio.create_task(one(user, index, again))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    send_rate = sent / (time.perf_counter() - start + 1 / rate)
    await asyncio.gather(*tasks)
    phase = meter.phase(len(latencies), 0, latencies, send_rate)
    dep.counts.append(await dep.count(users))
    return phase


# --------------------------------------------------------------------------- the run and the report


async def bench(args: argparse.Namespace, services: Services | None, workdir: Path) -> list[Deployment]:
    try:
        async with contextlib.AsyncExitStack() as stack:
            deps = [
                await stack.enter_async_context(deployment(setup, n, services, workdir, args))
                for n, setup in enumerate(setups(args.sqlite))
            ]
            if services is not None:
                services.locate()
            for r in range(args.rounds):
                for dep in deps[r % len(deps) :] + deps[: r % len(deps)]:
                    b = await burst(dep, services, args.residents)
                    p = await paced(dep, services, args.rate, args.duration, args.pool)
                    dep.bursts.append(b)
                    dep.paced.append(p)
                    c = sum((dep.counts[-2], dep.counts[-1]), Counts())
                    log_line(
                        f"round {r + 1} {dep.setup.name}: burst {b.updates_per_s:.0f} upd/s {b.cpu_ms_per_update:.2f} "
                        f"ms CPU/upd; paced p50 {p.pct(50):.0f} p99 {p.pct(99):.0f} ms; "
                        f"{c.duplicates} duplicates, {c.losses} losses"
                    )
            return deps
    finally:
        if services is not None and services.created:
            await services.admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in services.created))


def figures(dep: Deployment, base: Deployment, rate: float) -> dict[str, float]:
    med = statistics.median
    n = len(dep.bursts)
    services = [dep.services_cpu[2 * r] for r in range(n)]  # the burst of each round
    updates = [b.updates for b in dep.bursts]
    total = sum(dep.counts, Counts())
    return {
        "updates_per_s": med(b.updates_per_s for b in dep.bursts),
        "ratio": med(b.updates_per_s / o.updates_per_s for b, o in zip(dep.bursts, base.bursts, strict=True)),
        "cpu_ms_per_update": med(b.cpu_ms_per_update for b in dep.bursts),
        "pg_ms": med(1000 * s[0] / u for s, u in zip(services, updates, strict=True)),
        "redis_ms": med(1000 * s[1] / u for s, u in zip(services, updates, strict=True)),
        "bench_ms": med(1000 * s[2] / u for s, u in zip(services, updates, strict=True)),
        "p50_ms": med(p.pct(50) for p in dep.paced),
        "p99_ms": med(p.pct(99) for p in dep.paced),
        "kept_up": float(all(p.send_rate >= 0.95 * rate for p in dep.paced)),
        "duplicates": total.duplicates,
        "losses": total.losses,
        "redeliveries": dep.emu.webhook.failures,
        "noise": med(max(b.other_pct, p.other_pct) for b, p in zip(dep.bursts, dep.paced, strict=True)),
    }


def render(deps: list[Deployment], args: argparse.Namespace) -> str:
    base = next(d for d in deps if d.setup.instances == 1 and d.setup.database == "postgresql")
    out = [
        f"instances benchmark (webhook delivery, max_connections {args.max_connections}): {os.cpu_count()} cores, "
        f"{args.rounds} rounds; burst: {args.residents} residents x {len(APPEAL)} updates; paced: {args.rate:g} "
        f"updates/s for {args.duration:g} s, a pool of {args.pool}",
        "",
        "per round        burst upd/s  bots CPU ms/upd  paced p50 ms  p99 ms  sent/s  dup  lost  noise",
    ]
    for r in range(args.rounds):
        for dep in deps:
            b, p = dep.bursts[r], dep.paced[r]
            c = sum(dep.counts[2 * r : 2 * r + 2], Counts())
            out.append(
                f"{r + 1:>2} {dep.setup.name:14}{b.updates_per_s:>12.1f}{b.cpu_ms_per_update:>17.2f}{p.pct(50):>14.1f}"
                f"{p.pct(99):>8.1f}{p.send_rate:>8.1f}{c.duplicates:>5}{c.losses:>6}{max(b.other_pct, p.other_pct):>6.0f}%"
            )
    out += [
        "noise: the CPU of all other processes (not the bots, the servers or this one), % of one core",
        "",
        "medians over the rounds (burst: CPU ms per update of the bots, PostgreSQL, Redis, this process: emulator,",
        f"people, proxy; ratio: updates/s over {base.setup.name}'s in the same round; duplicates and losses: totals)",
        "                   upd/s  ratio   bots     pg  redis  bench   p50 ms  p99 ms  dup  lost  redeliv",
    ]
    for dep in deps:
        f = figures(dep, base, args.rate)
        out.append(
            f"   {dep.setup.name:14}{f['updates_per_s']:>8.1f}{f['ratio']:>7.2f}{f['cpu_ms_per_update']:>7.2f}"
            f"{f['pg_ms']:>7.2f}{f['redis_ms']:>7.2f}{f['bench_ms']:>7.2f}{f['p50_ms']:>9.1f}{f['p99_ms']:>8.1f}"
            f"{f['duplicates']:>5.0f}{f['losses']:>6.0f}{f['redeliveries']:>9.0f}{'' if f['kept_up'] else '  FELL BEHIND'}"
        )
    for dep in deps:
        for line in sum(dep.counts, Counts()).detail[:5]:
            out.append(f"   {dep.setup.name}: {line}")
    two = [d for d in deps if d.setup.instances > 1]
    if two:
        f = figures(two[0], base, args.rate)
        ok = f["duplicates"] == 0 and f["losses"] == 0
        out += [
            "",
            f"two instances / one instance (PostgreSQL + Redis): {f['ratio']:.2f} x the updates/s; "
            f"goal 0 duplicates and 0 losses with two: {f['duplicates']:.0f} and {f['losses']:.0f}, "
            f"{'MET' if ok else 'MISSED'}",
        ]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each setup playing both phases (default 2)")
    parser.add_argument("--residents", type=int, default=50, help="people filing at once in a burst (default 50)")
    parser.add_argument("--rate", type=float, default=60.0, help="updates/s of the paced phase (default 60)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of the paced phase (default 8)")
    parser.add_argument("--pool", type=int, default=50, help="people taking turns in the paced phase (default 50)")
    parser.add_argument("--max-connections", type=int, default=40, help="webhook requests in flight (default 40)")
    parser.add_argument("--sqlite", action="store_true", help="also one instance on SQLite (the embedded default)")
    parser.add_argument("--pg-url", default=os.environ.get("TSUR_TEST_PG_URL", ""), help="postgresql+asyncpg://…")
    parser.add_argument("--redis-url", default=os.environ.get("TSUR_TEST_REDIS_URL", ""), help="redis://host:port")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.residents < 1 or args.rate <= 0 or args.duration <= 0 or args.pool < 1:
        parser.error("--rounds, --residents, --pool must be at least 1, --rate and --duration positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.pg_url and args.redis_url):
        # No servers given: a throwaway PostgreSQL and Redis for this run (.ci/with-services exports their URLs).
        if os.environ.get("TSUR_BENCH_SERVICES"):
            raise SystemExit("instances: .ci/with-services gave no TSUR_TEST_PG_URL/TSUR_TEST_REDIS_URL")
        os.environ["TSUR_BENCH_SERVICES"] = "1"
        script = [sys.executable, str(Path(__file__).resolve()), *(sys.argv[1:] if argv is None else argv)]
        os.execv(str(ROOT / ".ci" / "with-services"), [str(ROOT / ".ci" / "with-services"), *script])
    services = Services(args.pg_url, args.redis_url)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the bots on SIGTERM as on Ctrl-C
    try:
        with tempfile.TemporaryDirectory(prefix="tsur-instances-") as tmp:
            deps = asyncio.run(bench(args, services, Path(tmp)))
    except BenchError as error:
        log_line(f"BENCH FAILED: {error}")
        return 1
    print(render(deps, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
