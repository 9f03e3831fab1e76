"""Test harness: the real bot (Dispatcher, middlewares, SQL FSM storage, aiohttp session) polling the
project's local Bot API emulator over HTTP, with an injected clock and a fresh database per test: an SQLite file, or a
PostgreSQL database when TSUR_TEST_DATABASE_URL names a server (tests/databases.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.types import TelegramObject
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App, allowed_updates, create_app, create_bot, create_dispatcher
from bot.clock import ManualClock
from bot.config import Settings, load_settings
from bot.domain import Lane
from bot.polling import Poller
from bot.services import Services, build_services
from storage.db import create_engine, create_sessionmaker, upgrade
from storage.repositories.outbox import OutboxRepo
from storage.seed import load_directories
from tests.databases import checkpoint, copy_db, created, db_url, drop_since, fresh_db

if TYPE_CHECKING:
    from emulator import BotAPIEmulator, EmulatedUser

TOKEN = "123456:TEST-TOKEN"


def make_settings(db_path: Path, api_base: str = "http://127.0.0.1:9", **sections: Any) -> Settings:
    overrides: dict[str, Any] = {
        "bot": {"token": TOKEN, "api_base": api_base, "polling_timeout": 5},
        "database": {"url": db_url(db_path)},
        "logging": {"level": "WARNING"},
        # Scripted people type faster than anyone can; the flood test sets the real limits back.
        "throttle": {"rate": 1000.0, "burst": 1000},
    }
    for name, values in sections.items():
        overrides[name] = {**overrides.get(name, {}), **values}
    return load_settings(db_path.parent / "absent-config.toml", **overrides)


@pytest.fixture(scope="session", autouse=True)
def drop_session_databases() -> Iterator[None]:
    """The PostgreSQL templates of the session are dropped at its end (nothing to do on SQLite)."""
    yield
    drop_since(0)


@pytest.fixture(autouse=True)
def drop_test_databases() -> Iterator[None]:
    """The PostgreSQL databases a test created are dropped when it ends; those of the session's templates (built
    before this fixture, as pytest sets up wider scopes first) stay."""
    mark = len(created)
    yield
    drop_since(mark)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate and seed once; each test copies the database (much faster than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = fresh_db(path)

    async def build() -> None:
        engine = create_engine(url)
        await upgrade(engine)
        await load_directories(create_sessionmaker(engine))
        await checkpoint(engine)
        await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture
def db_path(tmp_path: Path, template_db: Path) -> Path:
    path = tmp_path / "tsur.db"
    copy_db(template_db, path)
    return path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def services(db_path: Path, clock: ManualClock) -> AsyncIterator[Services]:
    """Services on a freshly seeded database with nobody in it (no Telegram)."""
    settings = make_settings(db_path)
    engine = create_engine(settings.database.url)
    built = build_services(settings, create_sessionmaker(engine), clock)
    await built.directory.reload()
    yield built
    await engine.dispose()


class InFlight(BaseMiddleware):
    """Counts the updates being handled, so that `settle()` can wait for them when they run as tasks."""

    def __init__(self) -> None:
        self.active = 0

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.active += 1
        try:
            return await handler(event, data)
        finally:
            self.active -= 1


class Harness:
    """The bot as it runs in production, polling the emulator; restartable mid-test."""

    def __init__(self, emu: BotAPIEmulator, settings: Settings, clock: ManualClock, mode: str = "polling") -> None:
        self.emu = emu
        self.mode = mode
        """"polling": our loop (bot/polling.py); "webhook": the emulator posts to the bot's aiohttp server."""
        self.poller: Poller | None = None
        self.runner: Any = None
        self.settings = settings
        self.clock = clock
        self.app: App | None = None
        self.bot: Bot | None = None
        self.dp: Dispatcher | None = None
        self._task: asyncio.Task[None] | None = None
        self.handle_as_tasks = False
        """As production does: each update in its own task."""
        self.in_flight = InFlight()

    async def start(self) -> None:
        self.app = await create_app(self.settings, self.clock, migrate=False)
        self.bot = create_bot(self.settings, self.clock, app=self.app)  # retries wait on the test's clock
        self.dp = create_dispatcher(self.app)
        # Outermost, so that an update counts from its first step (aiogram runs outer middlewares in order).
        outer = self.dp.update.outer_middleware
        others = list(outer)
        for middleware in others:
            outer.unregister(middleware)
        for middleware in (self.in_flight, *others):
            outer(middleware)
        ready = asyncio.Event()
        self.dp.startup.register(lambda: ready.set())
        if self.mode == "webhook":
            await self._serve_webhook()
        elif self.handle_as_tasks:
            # aiogram's own polling, each update in its own task (kept for the tests that measure it).
            self._task = asyncio.create_task(self._poll())
        else:
            # As production runs: a batch is confirmed (next offset) only after it was handled.
            self.poller = Poller(
                self.dp,
                self.bot,
                self.app.services.updates,
                allowed_updates=allowed_updates(self.dp),
                polling_timeout=self.settings.bot.polling_timeout,
            )
            self._task = asyncio.create_task(self._run_poller(self.poller))
        await asyncio.wait_for(ready.wait(), 10)
        if self.app.menus_task is not None:  # the staff's «/» menus are set before the test goes on
            await asyncio.wait_for(self.app.menus_task, 10)
        if self.app.scheduler is not None:
            # Its triggers run on the wall clock, the services on the test's: a test runs a job itself
            # (`app.scheduler.get_job(...).func()`) after moving its clock, and a real 09:00 never fires a digest
            # in the middle of a test.
            self.app.scheduler.pause()

    async def _run_poller(self, poller: Poller) -> None:
        assert self.app is not None
        with self.app.i18n.context():
            await poller.run()

    async def _serve_webhook(self) -> None:
        """The bot's webhook server on a free port; the emulator delivers to it (emulator/webhook.py)."""
        from aiohttp import web

        from bot.webhook import bound_port, build_webhook_app, set_webhook

        assert self.dp and self.bot and self.app
        self.runner = web.AppRunner(build_webhook_app(self.app, self.bot, self.dp), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{bound_port(self.runner)}{self.settings.webhook.path}"
        await set_webhook(self.bot, self.dp, self.app, url)

    async def _poll(self) -> None:
        assert self.dp and self.bot and self.app
        with self.app.i18n.context():
            await self.dp.start_polling(
                self.bot,
                allowed_updates=allowed_updates(self.dp),
                polling_timeout=self.settings.bot.polling_timeout,
                handle_as_tasks=self.handle_as_tasks,
                handle_signals=False,
                close_bot_session=True,
            )

    async def stop(self) -> None:
        if self.runner is not None:
            await self.settle()
            await self.runner.cleanup()  # the dispatcher's shutdown; the webhook stays set, as in production
            self.runner = None
        if self.poller is not None and self._task is not None:
            await self.settle()
            self.poller.stop()
            await asyncio.wait_for(self._task, 10)
            assert self.bot is not None
            await self.bot.session.close()
            self.poller = None
        elif self.dp is not None and self._task is not None:
            await self.settle()
            await self.dp.stop_polling()
            await asyncio.wait_for(self._task, 10)
        if self.app is not None:
            await self.app.close()
        self._task = None

    async def kill(self) -> None:
        """Die mid-work as far as Telegram can tell: the polling task is cancelled wherever it is (a request in
        flight is cut off) and nothing more is confirmed. The real `kill -9` is in tests/test_crash.py."""
        assert self.poller is not None and self._task is not None, "kill() is for our polling loop"
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        assert self.bot is not None and self.app is not None
        await self.bot.session.close()
        await self.app.close()
        self.poller = None
        self._task = None
        self.app = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every update sent so far has been handled, album summaries sent, and every
        notification that is due delivered (or given up)."""
        assert self.app is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await self.emu.wait_confirmed(timeout=timeout)
            if self._at_rest() and (self.app.sender is None or self.app.sender.idle) and not await self.due_notifications():
                await asyncio.sleep(0.01)
                if self.emu.updates_pending() == 0 and self._at_rest() and not await self.due_notifications():
                    return
            if loop.time() > deadline:
                raise TimeoutError("the bot did not settle")
            if self.app.sender is not None:
                self.app.sender.wake()
            await asyncio.sleep(0.01)

    def _at_rest(self) -> bool:
        """No update being handled and no album waiting for its summary."""
        assert self.app is not None
        return self.in_flight.active == 0 and self.app.albums.idle

    async def due_notifications(self) -> int:
        """Rows the sender would send now: every due personal row, and the due bulk rows it may send (not those of
        a paused broadcast, nor in the quiet hours)."""
        assert self.app is not None
        now = self.clock.now()
        quiet = self.app.sender.is_quiet(now) if self.app.sender is not None else False
        async with self.app.sessionmaker() as session:
            repo = OutboxRepo(session)
            return len(await repo.due(now, 1)) + len(await repo.due(now, 1, Lane.bulk, quiet=quiet))

    async def session(self) -> AsyncSession:
        assert self.app is not None
        return self.app.sessionmaker()

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        assert self.app is not None
        async with self.app.sessionmaker() as session:
            return list((await session.execute(select(model).where(*where))).scalars().all())


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    from emulator import BotAPIEmulator

    async with BotAPIEmulator(token=TOKEN, bot_username="tsur_test_bot") as emulator:
        yield emulator


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    """Config sections a test module overrides (override this fixture)."""
    return {}


@pytest.fixture
def bot_mode() -> str:
    """How the harness's bot gets updates: "polling" or "webhook" (parametrize it to run a test both ways)."""
    return "polling"


@pytest.fixture
async def harness(
    emu: BotAPIEmulator, db_path: Path, clock: ManualClock, sections: dict[str, dict[str, Any]], bot_mode: str
) -> AsyncIterator[Harness]:
    if bot_mode == "webhook":
        sections = {**sections, "webhook": {"secret": "harness-secret", **sections.get("webhook", {})}}
    settings = make_settings(db_path, emu.base_url, **sections)
    h = Harness(emu, settings, clock, bot_mode)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def onboard(harness: Harness, user: EmulatedUser, lang: str = "Русский") -> None:
    """A resident who chose a language and accepted the consent."""
    await user.send_text("/start")
    await harness.settle()
    await user.click(lang)
    await harness.settle()
    await user.click(user_text(lang, "accept"))
    await harness.settle()


BUTTONS = {
    ("Русский", "accept"): "✅ Согласен",
    ("English", "accept"): "✅ I agree",
    ("Нохчийн", "accept"): "✅ Реза ву",
}


def user_text(lang: str, key: str) -> str:
    return BUTTONS[(lang, key)]
