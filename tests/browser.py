"""Helpers of the web chat tests: FakeHooks (fixed personas and places, a counter-based clock) and a headless
Debian chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiogram.utils.i18n import I18n

from bot.sandbox.strings import page_strings
from emulator.webchat import Persona, Place, Scenario

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
RESIDENT, COORDINATOR, OFFICIAL = 7001, 7002, 7003
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

_ROLES = {
    "ru": ("Житель", "Координатор ЦУР", "Исполнитель"),
    "ce": ("Бахархо", "ЦУР-н координатор", "Кхочушхо"),
    "en": ("Resident", "TSUR coordinator", "Official"),
}


@dataclass
class FakeHooks:
    """The sandbox side of the page, fixed: three personas, two places, one exercise, a clock moved by travel."""

    i18n: I18n = field(default_factory=lambda: I18n(path=ROOT / "locales", default_locale="ru", domain="messages"))
    travelled: list[int] = field(default_factory=list)
    done: set[str] = field(default_factory=set)

    def personas(self, lang: str) -> list[Persona]:
        resident, coordinator, official = _ROLES.get(lang, _ROLES["en"])
        return [
            Persona(RESIDENT, "Aminat", "Dudaeva", resident, "+7 900 000-00-01"),
            Persona(COORDINATOR, "Ruslan", None, coordinator, "+7 900 000-00-02"),
            Persona(OFFICIAL, "Zaur", "Isaev", official, "+7 900 000-00-03"),
        ]

    def places(self, lang: str) -> list[Place]:
        return [Place("Grozny, Minutka square", 43.3069, 45.7156), Place("Argun, centre", 43.2917, 45.8723)]

    def strings(self, lang: str) -> dict[str, str]:
        return page_strings(self.i18n, lang)

    async def scenarios(self, lang: str) -> list[Scenario]:
        return [
            Scenario("file", "File an appeal", "Send /start and file one", "file" in self.done),
            Scenario("overdue", "An overdue appeal", "Travel a week ahead", "overdue" in self.done),
        ]

    async def travel(self, seconds: int) -> None:
        self.travelled.append(seconds)

    def now(self) -> datetime:
        return START + timedelta(seconds=sum(self.travelled))

    def now_text(self, lang: str) -> str:
        return self.now().strftime("%d.%m.%Y %H:%M")


def require_browser() -> None:
    """Skip when Debian's chromium is missing, unless TSUR_REQUIRE_BROWSER=1 (CI): then fail."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: apt-get install chromium (no browser is ever downloaded)"
    if os.environ.get("TSUR_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + "; TSUR_REQUIRE_BROWSER=1 requires it")
    pytest.skip(reason)


@asynccontextmanager
async def launch_browser() -> AsyncIterator[Browser]:
    """Headless Debian chromium through Playwright (skips or fails as :func:`require_browser` says)."""
    require_browser()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        if os.environ.get("TSUR_REQUIRE_BROWSER") == "1":
            pytest.fail("playwright is not installed (pip install -e '.[test]')")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def save_screenshot(page: Page, name: str) -> Path:
    """Write ``docs/screenshots/<name>.png`` (for the README) and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


def tiny_png(width: int = 8, height: int = 6, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A real PNG image, made here (no image library needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
