"""The `tsur-bot` command: run the bot, migrate the database, start the emulator sandbox."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys

from bot.config import ConfigError, Settings, load_settings, real_bot_configured
from bot.sandbox import SANDBOX_TOKEN


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    # aiogram logs every update with the sender's id at INFO; our own line replaces it.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def freeze_startup_objects() -> None:
    """Everything built at start-up lives as long as the process: keep it out of the collector's full passes,
    which otherwise walk it again and again and stall every update in flight now and then."""
    gc.collect()
    gc.freeze()


async def _run(settings: Settings) -> None:
    from bot.app import create_app, create_bot, run_polling
    from bot.ops import OpsServer

    app = await create_app(settings)
    bot = create_bot(settings, app=app)
    # In webhook mode the ops routes share the webhook's server; polling serves them on a port of their own.
    polling = settings.bot.mode != "webhook"
    ops = OpsServer(app.ops(bot), settings.ops.host, settings.ops.port) if polling and settings.ops.port else None
    freeze_startup_objects()
    try:
        if settings.bot.mode == "webhook":
            from bot.webhook import run_webhook

            await run_webhook(app, bot)  # the ops routes are mounted on the webhook's server
        else:
            if ops is not None:
                await ops.start()
            await run_polling(app, bot)
    finally:
        if ops is not None:
            await ops.stop()
        await bot.session.close()
        await app.close()


async def _upgrade(settings: Settings) -> None:
    from storage.db import create_engine, create_sessionmaker, upgrade
    from storage.seed import load_directories

    engine = create_engine(settings.database.url)
    try:
        await upgrade(engine)
        await load_directories(create_sessionmaker(engine))
    finally:
        await engine.dispose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """`tsur-bot [--config X] run` and `tsur-bot run [--config X]` alike (the one after the subcommand wins)."""
    # The common options are declared on the main parser and on every subcommand. SUPPRESS as the default keeps
    # a subcommand that was not given the option from overwriting the value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", default=argparse.SUPPRESS, help="path to config.toml (default: $TSUR_CONFIG or ./config.toml)"
    )
    parser = argparse.ArgumentParser(prog="tsur-bot", description=__doc__, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run",
        parents=[common],
        help="run the bot (long polling or webhook, by bot.mode; migrates the database first); with no token at all, "
        "the sandbox",
    )
    sandbox = commands.add_parser(
        "sandbox",
        parents=[common],
        help="the sandbox: the bot against the built-in emulator, never Telegram, with a web chat for demos and "
        "training ([sandbox] in the config)",
    )
    sandbox.add_argument("--reset", action="store_true", help="start from a clean demo (empties sandbox.dir)")
    db = commands.add_parser("db", parents=[common], help="database commands")
    actions = db.add_subparsers(dest="action", required=True)
    actions.add_parser("upgrade", parents=[common], help="apply the migrations and load the data files")
    backup = actions.add_parser(
        "backup", parents=[common], help="an online copy of the SQLite database (PostgreSQL: use pg_dump)"
    )
    backup.add_argument("path", help="the file to write (replaced if it exists)")
    args = parser.parse_args(argv)
    args.config = getattr(args, "config", None)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # No token anywhere: `run` (and `make run`) opens the sandbox instead of stopping, so a newcomer sees the bot.
    sandbox = args.command == "sandbox" or (args.command == "run" and not real_bot_configured(args.config))
    try:
        settings = load_settings(args.config, **({"bot": {"token": SANDBOX_TOKEN}} if sandbox else {}))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    setup_logging(settings.logging.level)
    if sandbox:
        return _sandbox(settings, reset=getattr(args, "reset", False))
    if args.command == "run":
        asyncio.run(_run(settings))
    elif args.command == "db" and args.action == "backup":
        return _backup(settings, args.path)
    elif args.command == "db":
        asyncio.run(_upgrade(settings))
        print("database is up to date")
    return 0


def _sandbox(settings: Settings, *, reset: bool) -> int:
    from bot.sandbox.runner import SandboxRefused, run_sandbox

    try:
        asyncio.run(run_sandbox(settings, do_reset=reset))
    except SandboxRefused as error:
        print(error, file=sys.stderr)
        return 2
    except OSError as error:  # the page's port taken, say
        print(f"sandbox: {error}", file=sys.stderr)
        return 2
    return 0


def _backup(settings: Settings, path: str) -> int:
    """An online copy of the SQLite database (storage/backup.py); another database names its own tool."""
    from storage.backup import BackupError, backup_sqlite

    try:
        size = backup_sqlite(settings.database.url, path)
    except BackupError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"backup written to {path} ({size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
