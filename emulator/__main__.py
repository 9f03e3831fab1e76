"""Run the emulator as a standalone server (a sandbox for manual runs and other processes).

    python -m emulator --port 8081 --token 123456:TEST-TOKEN

Point the bot at ``http://127.0.0.1:8081`` and act as users through ``/_emu/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .server import BotAPIEmulator


async def serve(args: argparse.Namespace) -> None:
    """Start the emulator and serve until cancelled (Ctrl+C)."""
    emu = BotAPIEmulator(
        token=args.token,
        bot_username=args.username,
        bot_first_name=args.first_name,
        host=args.host,
        port=args.port,
        strict_ampersand=not args.lenient_ampersand,
        strict_file_ids=not args.lenient_file_ids,
    )
    await emu.start()
    print(f"Bot API emulator on {emu.base_url} (token {emu.token}); user API on {emu.base_url}/_emu/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emu.stop()


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Local Telegram Bot API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--username", default="tsur_test_bot")
    parser.add_argument("--first-name", default="TSUR")
    parser.add_argument("--lenient-ampersand", action="store_true", help="keep a bare & in HTML like Telegram")
    parser.add_argument("--lenient-file-ids", action="store_true", help="accept file_ids the emulator never issued")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
