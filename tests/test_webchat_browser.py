"""The web chat page in a real browser (headless Debian chromium through Playwright): a small echo bot of its
own on the emulator, FakeHooks for the sandbox side. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import asyncio
import html
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.filters import Command
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from emulator import BotAPIEmulator
from emulator.webchat import WebChat
from tests.browser import COORDINATOR, RESIDENT, FakeHooks, launch_browser, save_screenshot, tiny_png

try:
    from playwright.async_api import Page, expect
except ImportError:
    if os.environ.get("TSUR_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

BOT_PHOTO = tiny_png(160, 100, (40, 120, 200))
PHONE = {"width": 390, "height": 844}


def echo_router() -> Dispatcher:
    """A small bot: formatted greeting, an inline button that edits its message, a reply keyboard, photos."""
    dp = Dispatcher()

    @dp.message(Command("start"))
    async def start(message: Message) -> None:
        await message.answer(
            "<b>Hello</b>, <i>friend</i>! 👋 <a href='https://example.org/'>site</a> <code>&lt;x&gt;</code>",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text="Press", callback_data="press")],
                    [InlineKeyboardButton(text="Alert", callback_data="alert")],
                    [InlineKeyboardButton(text="Site", url="https://example.org/")],
                ]
            ),
        )
        await message.answer(
            "Choose:",
            reply_markup=ReplyKeyboardMarkup(
                keyboard=[
                    [KeyboardButton(text="Photo please")],
                    [
                        KeyboardButton(text="📍 Where", request_location=True),
                        KeyboardButton(text="☎ Me", request_contact=True),
                    ],
                ],
                one_time_keyboard=True,
                resize_keyboard=True,
            ),
        )

    @dp.callback_query(F.data == "press")
    async def press(query: CallbackQuery) -> None:
        await query.answer("Pressed!")
        assert isinstance(query.message, Message)
        await query.message.edit_text("<b>Pressed</b> once")

    @dp.callback_query(F.data == "forget")
    async def forget(query: CallbackQuery) -> None:
        await query.answer()
        assert isinstance(query.message, Message)
        await query.message.delete()

    @dp.message(Command("temp"))
    async def temp(message: Message) -> None:
        await message.answer(
            "Temporary",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="Forget", callback_data="forget")]]
            ),
        )

    @dp.callback_query(F.data == "alert")
    async def alert(query: CallbackQuery) -> None:
        await query.answer("Careful!", show_alert=True)

    @dp.message(Command("notify"))
    async def notify(message: Message, bot: Bot) -> None:
        await bot.send_message(COORDINATOR, "A new appeal is waiting for you")
        await message.answer("Coordinator notified")

    @dp.message(F.text == "Photo please")
    async def photo(message: Message) -> None:
        await message.answer_photo(BufferedInputFile(BOT_PHOTO, "pic.png"), caption="Here it is")

    @dp.message(F.photo)
    async def got_photo(message: Message) -> None:
        await message.answer(f"Got photo: {html.escape(message.caption or '')}")

    @dp.message(F.location)
    async def got_location(message: Message) -> None:
        assert message.location is not None
        await message.answer(f"Location {message.location.latitude:.4f} {message.location.longitude:.4f}")

    @dp.message(F.contact)
    async def got_contact(message: Message) -> None:
        assert message.contact is not None
        await message.answer(f"Phone {html.escape(message.contact.phone_number)}")

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {html.escape(message.text or '')}")

    return dp


@dataclass
class Sandbox:
    emu: BotAPIEmulator
    chat: WebChat
    hooks: FakeHooks
    page: Page


@pytest.fixture
async def sandbox(emu: BotAPIEmulator, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    options = getattr(request, "param", {})
    viewport = options.get("viewport", {"width": 1280, "height": 860})
    hooks = FakeHooks()
    bot = emu.create_bot(default=DefaultBotProperties(parse_mode="HTML"))
    await bot.set_my_commands(
        [BotCommand(command="start", description="Начать"), BotCommand(command="notify", description="Позвать")],
        language_code="ru",
    )
    dp = echo_router()
    emu.user(COORDINATOR).open_chat()  # the staff started the bot long ago
    polling = asyncio.create_task(
        dp.start_polling(bot, polling_timeout=1, handle_signals=False, close_bot_session=False)
    )
    chat = WebChat(
        emu, hooks, upload_dir=tmp_path / "uploads", max_upload_bytes=options.get("max_upload", 20 * 1024 * 1024)
    )
    await chat.start("127.0.0.1", 0)
    try:
        async with launch_browser() as browser:
            context = await browser.new_context(viewport=viewport, locale="ru-RU")
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(chat.url + options.get("query", ""))
            yield Sandbox(emu, chat, hooks, page)
            await context.close()
            assert errors == [], errors
    finally:
        await chat.stop()
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)
        await bot.session.close()


async def send(page: Page, text: str) -> None:
    await page.locator("#composer textarea").fill(text)
    await page.locator("#composer textarea").press("Enter")


async def test_chat_formatting_buttons_keyboard_upload_badge_and_travel(sandbox: Sandbox) -> None:
    page, hooks = sandbox.page, sandbox.hooks
    await expect(page.locator("#banner")).to_have_text("ПЕСОЧНИЦА — не настоящие обращения")
    await expect(page.locator("#personas [data-user-id]")).to_have_count(3)
    await expect(page.locator(f'#personas [data-user-id="{RESIDENT}"]')).to_have_class("active")

    # The bot's HTML formatting, rendered from its entities; the person's own message on the right.
    await send(page, "/start")
    await expect(page.locator(".msg.me").first).to_contain_text("/start")
    greeting = page.locator(".msg.bot").filter(has_text="Hello").locator(".text")
    await expect(greeting).to_have_count(1)
    inner = await greeting.inner_html()
    assert "<b>Hello</b>, <i>friend</i>! 👋" in inner
    assert '<a href="https://example.org/" rel="noopener noreferrer" target="_blank">site</a>' in inner
    assert "<code>&lt;x&gt;</code>" in inner
    ids = [int(i) for i in await page.locator("#messages .msg").evaluate_all("ns => ns.map(n => n.dataset.messageId)")]
    assert ids == sorted(ids) and len(ids) == 3

    # An inline button: the message is edited in place and the callback answer shows as a toast.
    bubble = page.locator(".msg.bot").filter(has=page.locator(".inline-kb"))
    message_id = await bubble.get_attribute("data-message-id")
    await bubble.locator(".inline-kb button", has_text="Press").click()
    edited = page.locator(f'#messages .msg[data-message-id="{message_id}"]')
    await expect(edited.locator(".text")).to_have_text("Pressed once")
    await expect(edited).to_have_class("msg bot edited")
    await expect(edited.locator(".meta")).to_contain_text("изменено")
    await expect(page.locator("#toast")).to_have_text("Pressed!")
    await expect(page.locator(".inline-kb")).to_have_count(0)

    # The reply keyboard: a press sends its text, the one-time keyboard hides, the bot's photo shows as an image.
    await expect(page.locator("#reply-kb button")).to_have_text(["Photo please", "📍 Where", "☎ Me"])
    await page.locator("#reply-kb button", has_text="Photo please").click()
    await expect(page.locator("#reply-kb")).to_be_hidden()
    photo = page.locator(".msg.bot img.photo")
    await expect(photo).to_have_count(1)
    await expect(page.locator(".msg.bot").filter(has=page.locator("img.photo"))).to_contain_text("Here it is")
    await page.wait_for_function(
        "() => { const i = document.querySelector('.msg.bot img.photo'); return i && i.naturalWidth === 160; }"
    )

    # Upload a real PNG with a caption: it is sent as a photo and shown as an image.
    await page.locator("#composer textarea").fill("pothole")
    await page.locator("#attach input[type=file]").set_input_files(
        {"name": "pothole.png", "mimeType": "image/png", "buffer": tiny_png(120, 90)}
    )
    await expect(page.locator(".msg.bot").filter(has_text="Got photo: pothole")).to_have_count(1)
    await page.wait_for_function(
        "() => { const i = document.querySelector('.msg.me img.photo'); return i && i.naturalWidth === 120; }"
    )
    sent = sandbox.emu.last_update(RESIDENT)
    assert sent is not None and "photo" in sent["message"] and sent["message"]["caption"] == "pothole"
    await expect(page.locator("#composer textarea")).to_have_value("")

    # Another persona gets a message: an unread badge; opening that chat shows it and clears the badge.
    coordinator = page.locator(f'#personas [data-user-id="{COORDINATOR}"]')
    await expect(coordinator.locator(".badge")).to_be_hidden()
    await send(page, "/notify")
    await expect(page.locator(".msg.bot").filter(has_text="Coordinator notified")).to_have_count(1)
    await expect(coordinator.locator(".badge")).to_have_text("1")
    await expect(coordinator.locator(".badge")).to_be_visible()
    await save_screenshot(page, "webchat-desktop")
    async with page.expect_response(lambda r: r.url.split("?")[0].endswith(f"/api/chats/{COORDINATOR}/read")) as read:
        await coordinator.click()
    assert (await (await read.value).json())["unread"] == 0
    assert sandbox.chat.unread(COORDINATOR) == 0
    await expect(page.locator("#chat-name")).to_have_text("Ruslan")
    await expect(page.locator(".msg.bot .text")).to_have_text(["A new appeal is waiting for you"])
    await expect(coordinator.locator(".badge")).to_be_hidden()

    # Time travel calls the hook and shows the new sandbox time; a finished exercise is checked off.
    await expect(page.locator("#now")).to_have_text("02.03.2026 09:00")
    await page.locator('#travel button[data-seconds="86400"]').click()
    await expect(page.locator("#now")).to_have_text("03.03.2026 09:00")
    assert hooks.travelled == [86400]
    await expect(page.locator('#scenarios li[data-key="file"].done')).to_have_count(0)
    hooks.done.add("file")
    sandbox.chat.panel_changed()
    await expect(page.locator('#scenarios li[data-key="file"].done')).to_have_count(1)


async def test_location_contact_commands_alert_and_album(sandbox: Sandbox) -> None:
    page, emu = sandbox.page, sandbox.emu
    # The "/" menu lists the bot's commands (Russian, the UI language) and sends one.
    await page.locator("#commands-btn").click()
    await expect(page.locator("#commands-menu li")).to_have_text(["/startНачать", "/notifyПозвать"])
    await page.locator('#commands-menu li[data-command="start"]').click()
    await expect(page.locator("#commands-menu")).to_be_hidden()
    await expect(page.locator(".msg.bot").filter(has_text="Choose:")).to_have_count(1)

    # A URL button opens its link (not sent to the bot).
    site = page.locator(".inline-kb button", has_text="Site")
    await expect(site).to_have_attribute("data-url", "https://example.org/")

    # A message the bot deletes disappears.
    await send(page, "/temp")
    temporary = page.locator(".msg.bot").filter(has_text="Temporary")
    await expect(temporary).to_have_count(1)
    await temporary.locator(".inline-kb button").click()
    await expect(temporary).to_have_count(0)
    await expect(page.locator(".msg.me").filter(has_text="/temp")).to_have_count(1)

    # A callback answer with show_alert is a modal with OK.
    await page.locator(".inline-kb button", has_text="Alert").click()
    await expect(page.locator("#alert")).to_be_visible()
    await expect(page.locator("#alert-text")).to_have_text("Careful!")
    await page.locator("#alert-ok").click()
    await expect(page.locator("#alert")).to_be_hidden()

    # request_location on the reply keyboard opens the place picker; a place is sent as a location.
    await page.locator("#reply-kb button", has_text="📍 Where").click()
    await expect(page.locator("#location-menu")).to_be_visible()
    await page.locator("#places li", has_text="Grozny, Minutka square").click()
    await expect(page.locator(".msg.bot").filter(has_text="Location 43.3069 45.7156")).to_have_count(1)
    await expect(page.locator(".msg.me .card.location")).to_contain_text("43.30690, 45.71560")
    await expect(page.locator("#reply-kb")).to_be_hidden()

    # The 📍 menu with typed coordinates: wrong ones are refused in the page, right ones sent.
    await page.locator("#location-btn").click()
    await page.locator("#lat").fill("95")
    await page.locator("#lon").fill("45,1")
    await page.locator("#coords button[type=submit]").click()
    await expect(page.locator("#coords-error")).to_have_text(
        "Координаты — это числа: широта от -90 до 90, долгота от -180 до 180."
    )
    await page.locator("#lat").fill("43,25")
    await page.locator("#coords button[type=submit]").click()
    await expect(page.locator(".msg.bot").filter(has_text="Location 43.2500 45.1000")).to_have_count(1)

    # Share contact: the persona's own phone.
    await page.locator("#contact-btn").click()
    await expect(page.locator(".msg.bot").filter(has_text="Phone +7 900 000-00-01")).to_have_count(1)
    await expect(page.locator(".msg.me .card.contact")).to_contain_text("Aminat Dudaeva")

    # Shift+Enter is a newline, Enter sends; a text over 4096 characters is refused in the page.
    area = page.locator("#composer textarea")
    await area.fill("line one")
    await area.press("Shift+Enter")
    await area.type("two <b>")
    await area.press("Enter")
    echo = page.locator(".msg.bot .text").filter(has_text="echo: line one")
    await expect(echo).to_have_count(1)
    assert await echo.inner_html() == "echo: line one<br>two &lt;b&gt;"
    before = len(emu.user(RESIDENT).chat.messages)
    await area.fill("x" * 4097)
    await page.locator("#send").click()
    await expect(page.locator("#composer-error")).to_have_text("Сообщение слишком длинное: не больше 4096 символов.")
    assert len(emu.user(RESIDENT).chat.messages) == before

    # Several files at once: one album (images as photos, others as documents), the caption on the first.
    await area.fill("album")
    await page.locator("#attach input[type=file]").set_input_files(
        [
            {"name": "one.png", "mimeType": "image/png", "buffer": tiny_png(90, 60)},
            {"name": "two.png", "mimeType": "image/png", "buffer": tiny_png(90, 60, (0, 160, 0))},
            {"name": "act.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 act"},
        ]
    )
    await expect(page.locator(".msg.me[data-media-group-id]")).to_have_count(3)
    await expect(page.locator(".msg.me[data-media-group-id] img.photo")).to_have_count(2)
    await expect(page.locator(".msg.me .card.document a")).to_contain_text("act.pdf")
    groups = await page.locator(".msg.me[data-media-group-id]").evaluate_all(
        "ns => ns.map(n => n.dataset.mediaGroupId)"
    )
    assert len(set(groups)) == 1


@pytest.mark.parametrize("sandbox", [{"max_upload": 2000}], indirect=True)
async def test_oversized_upload_refused_with_a_localized_error(sandbox: Sandbox) -> None:
    page = sandbox.page
    await page.locator("#attach input[type=file]").set_input_files(
        {"name": "big.pdf", "mimeType": "application/pdf", "buffer": b"x" * 3000}
    )
    await expect(page.locator("#composer-error")).to_have_text("Файл слишком большой: не больше 20 МБ.")
    assert sandbox.emu.user(RESIDENT).chat.messages == {}


@pytest.mark.parametrize("sandbox", [{"query": "?lang=en"}], indirect=True)
async def test_language_switch_is_remembered(sandbox: Sandbox) -> None:
    page = sandbox.page
    await expect(page.locator("#banner")).to_have_text("SANDBOX — not real appeals")
    await expect(page.locator("#lang select")).to_have_value("en")
    await expect(page.locator('#personas [data-user-id="7002"] .role')).to_have_text("TSUR coordinator")
    await page.locator("#lang select").select_option("ce")
    await expect(page.locator("#banner")).to_have_text("ПЕСОЧНИЦА — бакъ обращенеш яц")
    await expect(page.locator('#travel button[data-seconds="3600"]')).to_have_text("+1 сахьт")
    assert "lang=ce" in page.url
    # Without ?lang= the stored choice is used.
    await page.goto(sandbox.chat.url)
    await expect(page.locator("#banner")).to_have_text("ПЕСОЧНИЦА — бакъ обращенеш яц")
    await expect(page.locator("html")).to_have_attribute("lang", "ce")


@pytest.mark.parametrize("sandbox", [{"viewport": PHONE}], indirect=True)
async def test_phone_viewport_drawer(sandbox: Sandbox) -> None:
    page = sandbox.page
    await expect(page.locator("#banner")).to_be_visible()
    await send(page, "/start")
    await expect(page.locator(".msg.bot").filter(has_text="Hello")).to_have_count(1)
    # The people list is a drawer, closed at first; the chat takes the whole width.
    assert not await page.locator("#side").evaluate("n => n.getBoundingClientRect().right > 0")
    chat_box = await page.locator("#chat").bounding_box()
    assert chat_box is not None and chat_box["x"] == 0 and chat_box["width"] == 390
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390
    await expect(page.locator("#composer textarea")).to_be_visible()
    await expect(page.locator("#send")).to_be_in_viewport()
    await expect(page.locator("#reply-kb button", has_text="Photo please")).to_be_in_viewport()
    await save_screenshot(page, "webchat-phone")
    side_open = "() => document.querySelector('#side').getBoundingClientRect().left >= 0"
    await page.locator("#drawer-toggle").click()
    await page.wait_for_function(side_open)
    official = page.locator('#personas [data-user-id="7003"]')
    await expect(official).to_be_in_viewport()
    banner_on_top = "() => { const b = document.querySelector('#banner').getBoundingClientRect(); return document.elementFromPoint(b.x + 20, b.y + b.height / 2).id === 'banner'; }"
    assert await page.evaluate(banner_on_top)
    await save_screenshot(page, "webchat-phone-drawer")
    # A tap beside the drawer closes it; the toggle opens it again.
    await page.mouse.click(370, 400)
    await expect(page.locator("body")).not_to_have_class("drawer-open")
    await page.locator("#drawer-toggle").click()
    await page.wait_for_function(side_open)
    await official.click()
    await expect(page.locator("#chat-name")).to_have_text("Zaur Isaev")
    await expect(page.locator("body")).not_to_have_class("drawer-open")
    await expect(page.locator("#messages .empty")).to_have_text("Сообщений пока нет. Отправьте /start, чтобы начать.")
