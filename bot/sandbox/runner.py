"""The sandbox: the bot, the Bot API emulator and the web chat in one process, on a database of its own.

Nothing here talks to Telegram: the bot's API base is the emulator on a free loopback port, its token a made-up one.
The demo people get their roles from the real services (personas.py), the page's exercises are read from the
database (scenarios.py), and the page's "time travel" moves the sandbox's clock (clock.py) and runs the sweeps that
became due, so that reminders and escalations arrive as they would days later."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
import signal
import socket
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from bot.clock import ManualClock
from bot.config import Settings
from bot.i18n import N_
from bot.sandbox import SANDBOX_TOKEN
from bot.sandbox.clock import OffsetClock
from bot.sandbox.personas import ADMIN, NEWCOMER, PEOPLE, housing_agency, seed
from bot.sandbox.scenarios import EXERCISES, done, read_progress
from bot.sandbox.strings import page_strings

if TYPE_CHECKING:
    from bot.app import App
    from emulator import BotAPIEmulator
    from emulator.webchat import Persona, Place, Scenario, WebChat

logger = logging.getLogger("tsur.sandbox")

BOT_USERNAME = "tsur_sandbox_bot"
# The sweeps the scheduler runs every minute, and the nightly retention: after a jump in time they run at once
# (bot/scheduler.py's job ids).
SWEEPS = ("sweep", "polls", "broadcasts_start", "reports_catch_up", "retention")
# How often the page's exercise list is re-checked against the database (one cheap query).
PROGRESS_SECONDS = 2.0

# Places of the region a trainee may send as a location (coordinates of the towns' centres).
PLACES = (
    (N_("Grozny, Minutka square"), 43.3009, 45.7061),
    (N_("Grozny, Akhmat Kadyrov avenue"), 43.3186, 45.6920),
    (N_("Argun, the town centre"), 43.2913, 45.8722),
    (N_("Gudermes, the railway station"), 43.3513, 46.1035),
    (N_("Shali, the town centre"), 43.1487, 45.9008),
    (N_("Urus-Martan, the town centre"), 43.1303, 45.5399),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SandboxRefused(Exception):
    """The sandbox will not start: the message says why, in one line."""


class SandboxPaths:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.database = folder / "sandbox.db"
        self.uploads = folder / "uploads"
        self.clock = folder / "clock.json"

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database.resolve()}"


def production_database(settings: Settings) -> Path | None:
    """The file of the configured (production) SQLite database, if it is one."""
    url = make_url(settings.database.url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def check_paths(settings: Settings, paths: SandboxPaths) -> None:
    production = production_database(settings)
    if production is not None and production == paths.database.resolve():
        raise SandboxRefused(
            f"sandbox refused: {paths.database} is the production database (database.url); "
            "set sandbox.dir to a folder of its own"
        )


def sandbox_settings(settings: Settings, paths: SandboxPaths, api_base: str) -> Settings:
    """The configuration with the sandbox's token, emulator, database and admin; polling, dialogs in its database."""
    return settings.model_copy(
        update={
            "bot": settings.bot.model_copy(
                update={"token": SANDBOX_TOKEN, "api_base": api_base, "admins": [ADMIN.tg_id], "mode": "polling",
                        "polling_timeout": 10}
            ),
            "database": settings.database.model_copy(update={"url": paths.url}),
            "fsm": settings.fsm.model_copy(update={"storage": "sql"}),
            "ops": settings.ops.model_copy(update={"port": 0}),
        }
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def announcement(url: str, host: str) -> str:
    """The one line start-up prints (English, like the rest of the log): where the page is, and the way out."""
    reach = "loopback only" if is_loopback(host) else f"WARNING: listening on {host}, reachable from other machines"
    return (
        f"tsur-bot SANDBOX (not real appeals, never Telegram; {reach}): open {url} - to run the real bot, put the "
        "token from @BotFather in config.toml or TSUR_BOT__TOKEN and run `make run` again"
    )


class Sandbox:
    """The hooks of the web chat (emulator.webchat.WebChatHooks): the demo people, places, exercises, time travel."""

    def __init__(self, app: App, clock: OffsetClock) -> None:
        self.app = app
        self.clock = clock
        self.webchat: WebChat | None = None
        self._progress: tuple[bool, ...] | None = None
        self.agency_id: int | None = None

    def _(self, text: str, lang: str) -> str:
        return self.app.i18n.gettext(text, locale=lang)

    def personas(self, lang: str) -> list[Persona]:
        from emulator.webchat import Persona

        return [
            Persona(
                user_id=person.tg_id,
                first_name=person.first_name,
                last_name=person.last_name,
                role=self._(person.label, lang).format(agency=self.agency_name(lang)),
                phone=person.phone,
            )
            for person in PEOPLE
        ]

    def agency_name(self, lang: str) -> str:
        """The housing agency of the official and the head, as the cards name it (storage/data/agencies.toml)."""
        agency = self.app.services.directory.agency(self.agency_id) if self.agency_id is not None else None
        return agency.name(lang) if agency is not None else "—"

    def places(self, lang: str) -> list[Place]:
        from emulator.webchat import Place

        return [Place(self._(name, lang), latitude, longitude) for name, latitude, longitude in PLACES]

    def strings(self, lang: str) -> dict[str, str]:
        return page_strings(self.app.i18n, lang)

    async def scenarios(self, lang: str) -> list[Scenario]:
        from emulator.webchat import Scenario

        progress = await read_progress(self.app.sessionmaker)
        return [
            Scenario(e.key, self._(e.title, lang), self._(e.description, lang), done(progress, e.key))
            for e in EXERCISES
        ]

    async def travel(self, seconds: int) -> None:
        """Move the clock, then have the scheduler run at once the sweeps that became due (the outbox sends what they
        queue)."""
        self.clock.travel(seconds)
        logger.info("sandbox: time travel %+d s, now %s", seconds, self.clock.now().isoformat(timespec="minutes"))
        scheduler = self.app.scheduler
        if scheduler is not None:
            # Due now rather than at their next minute: the scheduler runs them, one instance of each at a time.
            due = datetime.now(UTC)
            for job_id in SWEEPS:
                job = scheduler.get_job(job_id)
                if job is not None:
                    job.modify(next_run_time=due)
        self.app.wake_sender()
        if self.webchat is not None:
            self.webchat.panel_changed()

    def now_text(self, lang: str) -> str:
        local = self.clock.now().astimezone(self.app.settings.tz)
        ahead = self.clock.offset
        text = local.strftime("%d.%m.%Y %H:%M")
        if ahead >= timedelta(minutes=1):
            hours = int(ahead.total_seconds() // 3600)
            days, hours = divmod(hours, 24)
            ahead_text = self._("(+{days} d {hours} h)", lang) if days else self._("(+{hours} h)", lang)
            text += " " + ahead_text.format(days=days, hours=hours)
        return text

    async def watch_progress(self) -> None:
        """Tell the page when an exercise is done (a query every couple of seconds: the sandbox is one person's)."""
        while True:
            try:
                progress = await read_progress(self.app.sessionmaker)
            except Exception:  # a locked database or the like: the next round tries again
                logger.warning("sandbox: could not read the exercises' progress", exc_info=True)
            else:
                flags = tuple(done(progress, e.key) for e in EXERCISES)
                if flags != self._progress:
                    self._progress = flags
                    if self.webchat is not None:
                        self.webchat.panel_changed()
            await asyncio.sleep(PROGRESS_SECONDS)


def reset(paths: SandboxPaths) -> None:
    """A clean demo: the sandbox's database, uploads and clock go (only inside its own folder)."""
    for name in ("sandbox.db", "sandbox.db-wal", "sandbox.db-shm", "clock.json"):
        (paths.folder / name).unlink(missing_ok=True)
    shutil.rmtree(paths.uploads, ignore_errors=True)


def add_people(emu: BotAPIEmulator) -> None:
    """The demo people in the emulator; all but the newcomer have the chat open, so notifications reach them."""
    for person in PEOPLE:
        user = emu.user(person.tg_id, first_name=person.first_name, last_name=person.last_name, language_code="ru")
        if person is not NEWCOMER:
            user.open_chat()


class SandboxRunner:
    """Start and stop the whole sandbox (the CLI runs it until a signal; the tests start and stop it)."""

    def __init__(self, settings: Settings, *, do_reset: bool = False) -> None:
        self.settings = settings
        self.paths = SandboxPaths(settings.sandbox.dir)
        check_paths(settings, self.paths)
        self.do_reset = do_reset
        self.emu: BotAPIEmulator | None = None
        self.app: App | None = None
        self.webchat: WebChat | None = None
        self.sandbox: Sandbox | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._poller = None
        self._bot = None

    async def start(self) -> str:
        """Everything up; returns the page's address."""
        from bot.app import allowed_updates, create_app, create_bot, create_dispatcher
        from bot.polling import Poller
        from emulator import BotAPIEmulator
        from emulator.webchat import WebChat

        if self.do_reset:
            reset(self.paths)
        self.paths.folder.mkdir(parents=True, exist_ok=True)
        fresh = not self.paths.database.exists()
        port = free_port()  # the emulator's; it starts once the database says where its update ids go on from
        settings = sandbox_settings(self.settings, self.paths, f"http://127.0.0.1:{port}")
        clock = OffsetClock(self.paths.clock)
        try:
            self.app = await create_app(settings, clock)
            if fresh:
                await seed(settings, self.app.sessionmaker, ManualClock(clock.now()))
            self.emu = BotAPIEmulator(
                token=SANDBOX_TOKEN,
                bot_username=BOT_USERNAME,
                bot_first_name="ЦУР",
                host="127.0.0.1",
                port=port,
                # Files live in the emulator's memory: after a restart an old appeal's photo is shown as a
                # placeholder instead of failing the staff's "show files".
                strict_file_ids=False,
                first_update_id=await self.app.services.updates.newest() + 1,
                # The messages' times on the sandbox's clock; file ids of this run only (the database keeps those of
                # earlier runs: they must stay unknown, never another person's new file).
                clock=lambda: clock.now().timestamp(),
                file_id_tag=format(int(time.time()), "x"),
            )
            await self.emu.start()
        except BaseException:
            if self.app is not None:
                await self.app.close()
                self.app = None
            if fresh:  # a half-made demo would be taken for a made one next time
                reset(self.paths)
            raise
        add_people(self.emu)
        self._bot = create_bot(settings, app=self.app)
        dp = create_dispatcher(self.app)
        self._poller = Poller(
            dp, self._bot, self.app.services.updates, allowed_updates=allowed_updates(dp),
            polling_timeout=settings.bot.polling_timeout,
        )
        self.sandbox = Sandbox(self.app, clock)
        _category, _district, self.sandbox.agency_id = await housing_agency(self.app.services)
        self.webchat = WebChat(
            self.emu,
            self.sandbox,
            upload_dir=self.paths.uploads,
            max_upload_bytes=self.settings.sandbox.max_upload_mb * 1024 * 1024,
            timezone=self.settings.region.timezone,
        )
        self.sandbox.webchat = self.webchat
        await self.webchat.start(self.settings.sandbox.host, self.settings.sandbox.port)
        self._tasks = [
            asyncio.create_task(self._poll()),
            asyncio.create_task(self.sandbox.watch_progress()),
        ]
        return self.webchat.url

    async def _poll(self) -> None:
        assert self.app is not None and self._poller is not None
        with self.app.i18n.context():
            await self._poller.run()

    async def wait(self) -> None:
        """Until the poller stops (a signal, or stop())."""
        if self._tasks:
            await self._tasks[0]

    def request_stop(self) -> None:
        if self._poller is not None:
            self._poller.stop()

    async def stop(self) -> None:
        self.request_stop()
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.webchat is not None:
            await self.webchat.stop()
        if self._bot is not None:
            await self._bot.session.close()
        if self.app is not None:
            await self.app.close()
        if self.emu is not None:
            await self.emu.stop()


async def run_sandbox(settings: Settings, *, do_reset: bool = False) -> None:
    """`tsur-bot sandbox` and `make run` with no token: until SIGINT or SIGTERM."""
    runner = SandboxRunner(settings, do_reset=do_reset)
    url = await runner.start()
    print(announcement(url, settings.sandbox.host), flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, runner.request_stop)
    try:
        await runner.wait()
    finally:
        await runner.stop()
