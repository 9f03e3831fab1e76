"""Webhook mode: an aiohttp server with aiogram's webhook handler.

Each update is handled before the 200 answer (`handle_in_background=False`), so Telegram delivers it again when
an instance dies in the middle; the ledger of handled updates makes the redelivery change nothing twice. Several
instances can serve one webhook behind a reverse proxy: nothing they share lives in one process.

`build_webhook_app` returns the aiohttp `web.Application`, so that other routes (health, metrics) can be added
to it before it is served."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.app import App, allowed_updates, create_dispatcher
from bot.ops import add_ops_routes

logger = logging.getLogger("tsur.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
APP_KEY = web.AppKey("tsur_app", App)


def build_webhook_app(app: App, bot: Bot, dp: Dispatcher) -> web.Application:
    """The aiohttp application: the update route at `webhook.path`, the dispatcher's start-up and shutdown (the
    outbox sender, the scheduler) tied to the application's."""
    config = app.settings.webhook
    webapp = web.Application(middlewares=[_refusals_logged, _with_i18n(app)])
    webapp[APP_KEY] = app
    SimpleRequestHandler(
        dispatcher=dp, bot=bot, handle_in_background=False, secret_token=config.secret
    ).register(webapp, path=config.path)

    async def translations_for_background(_: web.Application) -> None:
        # The next callback (the dispatcher's start-up) starts the outbox sender and the scheduler as tasks of
        # this one: they inherit its context, and render notifications with these translations.
        app.i18n.set_current(app.i18n)

    webapp.on_startup.append(translations_for_background)
    add_ops_routes(webapp, app.ops(bot))
    setup_application(webapp, dp, bot=bot)
    return webapp


@web.middleware
async def _refusals_logged(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A request refused for its secret token is logged by who sent it and where, never by its body."""
    response = await handler(request)
    if response.status == 401:
        logger.warning(
            "webhook: %s %s from %s refused: no or wrong %s header",
            request.method,
            request.path,
            request.remote,
            SECRET_HEADER,
        )
    return response


def _with_i18n(app: App) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # Each request is its own task: the translations' context is set for it, as polling sets it once.
        with app.i18n.context():
            return await handler(request)

    return middleware


async def set_webhook(bot: Bot, dp: Dispatcher, app: App, url: str | None = None) -> None:
    """Tell Telegram where to post, what, how many at once, and the secret that proves it is Telegram."""
    config = app.settings.webhook
    await bot.set_webhook(
        url=url or config.url,
        secret_token=config.secret,
        allowed_updates=allowed_updates(dp),
        max_connections=config.max_connections,
    )


async def start_webhook(app: App, bot: Bot, dp: Dispatcher, *, url: str | None = None) -> web.AppRunner:
    """Serve on webhook.host:port (0 picks a free port), then set the webhook (to `url` when given, e.g. one built
    from the bound port). Stop with `runner.cleanup()`: the webhook stays set, so Telegram keeps the updates for
    the next start or the other instances."""
    webapp = build_webhook_app(app, bot, dp)
    runner = web.AppRunner(webapp, access_log=None)
    await runner.setup()  # runs the dispatcher's start-up
    site = web.TCPSite(runner, app.settings.webhook.host, app.settings.webhook.port)
    await site.start()
    await set_webhook(bot, dp, app, url)
    logger.info("webhook served on %s:%s%s", app.settings.webhook.host, bound_port(runner), app.settings.webhook.path)
    return runner


def bound_port(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


async def run_webhook(app: App, bot: Bot) -> None:
    """Serve until SIGTERM or SIGINT, then finish the requests in flight and stop."""
    dp = create_dispatcher(app)
    runner = await start_webhook(app, bot, dp)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
