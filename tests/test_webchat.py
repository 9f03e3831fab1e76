"""The web chat page's server: entity rendering, the JSON API, uploads and the event stream (no browser)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.types import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from emulator import BotAPIEmulator
from emulator.webchat import WebChat
from emulator.webchat_render import render_entities, render_plain
from tests.browser import COORDINATOR, OFFICIAL, RESIDENT, FakeHooks, tiny_png

# ---------------------------------------------------------------------- rendering


def test_render_utf16_offsets_after_emoji() -> None:
    # "👍" is two UTF-16 units: the bold word starts at offset 3, not 2.
    text = "👍 ok bold"
    assert render_entities(text, [{"type": "bold", "offset": 6, "length": 4}]) == "👍 ok <b>bold</b>"
    assert render_entities("a😀b", [{"type": "italic", "offset": 1, "length": 2}]) == "a<i>😀</i>b"


def test_render_nesting_and_overlap() -> None:
    text = "bold italic end"
    entities = [{"type": "bold", "offset": 0, "length": 11}, {"type": "italic", "offset": 5, "length": 6}]
    assert render_entities(text, entities) == "<b>bold <i>italic</i></b> end"
    # Overlapping entities are closed and reopened so the HTML nests.
    overlapping = [{"type": "bold", "offset": 0, "length": 4}, {"type": "underline", "offset": 2, "length": 4}]
    assert render_entities("abcdef", overlapping) == "<b>ab<u>cd</u></b><u>ef</u>"


def test_render_escapes_everything() -> None:
    text = '<script>alert("x")</script> & co\nnext'
    html = render_entities(text, [{"type": "code", "offset": 0, "length": 8}])
    assert "<script>" not in html
    assert html == "<code>&lt;script&gt;</code>alert(&quot;x&quot;)&lt;/script&gt; &amp; co<br>next"
    assert render_plain("<b>me</b>\n") == "&lt;b&gt;me&lt;/b&gt;<br>"


def test_render_links_only_safe_schemes() -> None:
    entities = [{"type": "text_link", "offset": 0, "length": 4, "url": 'https://ex.org/?a="1"'}]
    assert render_entities("site", entities) == (
        '<a href="https://ex.org/?a=&quot;1&quot;" rel="noopener noreferrer" target="_blank">site</a>'
    )
    for url in ("javascript:alert(1)", "data:text/html,x", "java\nscript:x", "//evil"):
        assert render_entities("site", [{"type": "text_link", "offset": 0, "length": 4, "url": url}]) == "site"


def test_render_whitelist() -> None:
    types = ["underline", "strikethrough", "pre", "spoiler", "blockquote", "mention", "custom_emoji"]
    html = render_entities("x" * 7, [{"type": kind, "offset": i, "length": 1} for i, kind in enumerate(types)])
    assert html == '<u>x</u><s>x</s><pre>x</pre><span class="spoiler">x</span><blockquote>x</blockquote>xx'


def test_state_listeners_see_user_and_bot_changes() -> None:
    emu = BotAPIEmulator()
    seen: list[int] = []
    emu.state.add_listener(seen.append)
    user = emu.user(5)

    async def go() -> None:
        await user.send_text("hi")

    asyncio.run(go())
    assert seen == [5]
    emu.state.remove_listener(seen.append)
    asyncio.run(go())
    assert seen == [5]


# ---------------------------------------------------------------------- the API


class Client:
    def __init__(self, chat: WebChat, http: aiohttp.ClientSession) -> None:
        self.chat = chat
        self.http = http

    def url(self, path: str) -> str:
        return self.chat.url.rstrip("/") + path

    async def get(self, path: str, status: int = 200) -> Any:
        async with self.http.get(self.url(path)) as response:
            assert response.status == status, await response.text()
            return await response.json()

    async def post(self, path: str, body: Any, status: int = 200) -> Any:
        async with self.http.post(self.url(path), json=body) as response:
            assert response.status == status, await response.text()
            return await response.json()

    async def upload(
        self, user_id: int, files: list[tuple[str, bytes, str]], caption: str = "", status: int = 200
    ) -> Any:
        form = aiohttp.FormData()
        for name, content, content_type in files:
            form.add_field("files", content, filename=name, content_type=content_type)
        if caption:
            form.add_field("caption", caption)
        async with self.http.post(self.url(f"/api/chats/{user_id}/upload?lang=ru"), data=form) as response:
            assert response.status == status, await response.text()
            return await response.json()


@pytest.fixture
def hooks() -> FakeHooks:
    return FakeHooks()


@pytest.fixture
async def client(emu: BotAPIEmulator, hooks: FakeHooks, tmp_path: Path) -> AsyncIterator[Client]:
    chat = WebChat(emu, hooks, upload_dir=tmp_path / "uploads", max_upload_bytes=4096)
    await chat.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            yield Client(chat, http)
    finally:
        await chat.stop()


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    bot = emu.create_bot()
    try:
        yield bot
    finally:
        await bot.session.close()


async def test_page_and_static_files_served(client: Client) -> None:
    async with client.http.get(client.url("/")) as response:
        assert response.status == 200
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        page = await response.text()
    assert 'id="banner"' in page and "/static/chat.js" in page
    for name in ("chat.js", "chat.css", "logo.svg"):
        async with client.http.get(client.url(f"/static/{name}")) as response:
            assert response.status == 200, name


async def test_bootstrap_in_russian_with_unread_and_commands(client: Client, emu: BotAPIEmulator, bot: Bot) -> None:
    emu.user(RESIDENT).open_chat()
    await bot.send_message(RESIDENT, "one")
    await bot.send_message(RESIDENT, "two")
    await bot.set_my_commands([BotCommand(command="start", description="Начать")], language_code="ru")
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    data = await client.get("/api/bootstrap?lang=ru")
    assert data["strings"]["banner"] == "ПЕСОЧНИЦА — не настоящие обращения"
    assert [(p["user_id"], p["unread"]) for p in data["personas"]] == [(RESIDENT, 2), (COORDINATOR, 0), (OFFICIAL, 0)]
    assert data["personas"][0]["role"] == "Житель"
    assert data["commands"] == [{"command": "start", "description": "Начать"}]
    assert data["now_text"] == "02.03.2026 09:00"
    assert [s["key"] for s in data["scenarios"]] == ["file", "overdue"]
    assert len(data["places"]) == 2
    english = await client.get("/api/bootstrap?lang=en")
    assert english["strings"]["banner"] == "SANDBOX — not real appeals"
    assert english["commands"] == [{"command": "start", "description": "Start"}]
    # An unknown language falls back to the default (Russian).
    assert (await client.get("/api/bootstrap?lang=xx"))["lang"] == "ru"


async def test_forged_persona_is_404(client: Client, emu: BotAPIEmulator) -> None:
    data = await client.get("/api/chats/999?lang=ru", status=404)
    assert data["message"] == "В песочнице нет такого человека."
    await client.post("/api/chats/999/text", {"text": "hi"}, status=404)
    await client.post("/api/chats/abc/text", {"text": "hi"}, status=404)
    await client.upload(999, [("a.png", tiny_png(), "image/png")], status=404)
    assert 999 not in emu.users


async def test_chat_renders_messages_edits_deletes_and_keyboards(client: Client, emu: BotAPIEmulator, bot: Bot) -> None:
    await client.post(f"/api/chats/{RESIDENT}/text", {"text": "<b>mine</b>"})
    sent = await bot.send_message(
        RESIDENT,
        "<b>Appeal</b> 👍 <i>x</i> <a href='https://example.org'>link</a>",
        parse_mode="HTML",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text="Take", callback_data="take")],
                [InlineKeyboardButton(text="Site", url="https://example.org")],
            ]
        ),
    )
    gone = await bot.send_message(
        RESIDENT,
        "bye",
        reply_markup=ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text="Place", request_location=True), KeyboardButton(text="Hi")]],
            one_time_keyboard=True,
        ),
    )
    chat = await client.get(f"/api/chats/{RESIDENT}")
    mine, appeal, _bye = chat["messages"]
    assert (mine["from_bot"], mine["html"]) == (False, "&lt;b&gt;mine&lt;/b&gt;")
    assert appeal["from_bot"] and appeal["html"] == (
        '<b>Appeal</b> 👍 <i>x</i> <a href="https://example.org" rel="noopener noreferrer" target="_blank">link</a>'
    )
    assert appeal["inline_keyboard"] == [
        [{"text": "Take", "data": "take"}],
        [{"text": "Site", "url": "https://example.org"}],
    ]
    assert chat["reply_keyboard"]["rows"][0][0] == {"text": "Place", "request_location": True, "request_contact": False}
    assert chat["reply_keyboard"]["hidden"] is False
    assert chat["persona"]["phone"] == "+7 900 000-00-01"

    await bot.edit_message_text("<b>Taken</b>", chat_id=RESIDENT, message_id=sent.message_id, parse_mode="HTML")
    await bot.delete_message(RESIDENT, gone.message_id)
    chat = await client.get(f"/api/chats/{RESIDENT}")
    assert [(m["message_id"], m["html"], m["edited"]) for m in chat["messages"]] == [
        (mine["message_id"], mine["html"], False),
        (sent.message_id, "<b>Taken</b>", True),
    ]


async def test_click_only_a_visible_button(client: Client, emu: BotAPIEmulator, bot: Bot) -> None:
    emu.user(RESIDENT).open_chat()
    sent = await bot.send_message(
        RESIDENT,
        "pick",
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]]),
    )
    await client.post(f"/api/chats/{RESIDENT}/click", {"message_id": sent.message_id, "data": "forged"}, status=400)
    await client.post(f"/api/chats/{RESIDENT}/click", {"message_id": sent.message_id, "data": "a"})
    query = emu.last_update(RESIDENT)["callback_query"]
    assert (query["data"], query["message"]["message_id"]) == ("a", sent.message_id)


async def test_reply_keyboard_location_contact_and_one_time_hiding(
    client: Client, emu: BotAPIEmulator, bot: Bot
) -> None:
    emu.user(RESIDENT).open_chat()
    await bot.send_message(
        RESIDENT,
        "where?",
        reply_markup=ReplyKeyboardMarkup(
            keyboard=[
                [KeyboardButton(text="Place", request_location=True)],
                [KeyboardButton(text="Phone", request_contact=True)],
            ],
            one_time_keyboard=True,
        ),
    )
    await client.post(f"/api/chats/{RESIDENT}/reply_button", {"text": "Place", "latitude": 43.3, "longitude": 45.7})
    assert emu.last_update(RESIDENT)["message"]["location"] == {"latitude": 43.3, "longitude": 45.7}
    chat = await client.get(f"/api/chats/{RESIDENT}")
    assert chat["reply_keyboard"]["hidden"] is True
    assert chat["messages"][-1]["media"] == {"type": "location", "latitude": 43.3, "longitude": 45.7, "title": None}
    await client.post(f"/api/chats/{RESIDENT}/reply_button", {"text": "Phone"})
    contact = emu.last_update(RESIDENT)["message"]["contact"]
    assert (contact["phone_number"], contact["user_id"]) == ("+7 900 000-00-01", RESIDENT)
    await client.post(f"/api/chats/{RESIDENT}/reply_button", {"text": "Nope"}, status=400)
    await client.post(f"/api/chats/{RESIDENT}/location", {"latitude": 91, "longitude": 0}, status=400)
    await client.post(f"/api/chats/{COORDINATOR}/contact", {})
    assert emu.last_update(COORDINATOR)["message"]["contact"]["phone_number"] == "+7 900 000-00-02"


async def test_keyboard_removed_and_persistent_one_time(client: Client, emu: BotAPIEmulator, bot: Bot) -> None:
    emu.user(RESIDENT).open_chat()
    markup = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Go")]], one_time_keyboard=True, is_persistent=True)
    await bot.send_message(RESIDENT, "kb", reply_markup=markup)
    await client.post(f"/api/chats/{RESIDENT}/reply_button", {"text": "Go"})
    keyboard = (await client.get(f"/api/chats/{RESIDENT}"))["reply_keyboard"]
    assert (keyboard["hidden"], keyboard["persistent"]) == (False, True)
    await bot.send_message(RESIDENT, "gone", reply_markup=ReplyKeyboardRemove())
    assert (await client.get(f"/api/chats/{RESIDENT}"))["reply_keyboard"] is None


async def test_foreign_origin_and_non_json_posts_refused(client: Client, emu: BotAPIEmulator) -> None:
    url = client.url(f"/api/chats/{RESIDENT}/text")
    async with client.http.post(url, json={"text": "x"}, headers={"Origin": "https://evil.example"}) as response:
        assert response.status == 403
    async with client.http.post(url, json={"text": "x"}, headers={"Sec-Fetch-Site": "cross-site"}) as response:
        assert response.status == 403
    async with client.http.post(url, data='{"text": "x"}', headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 400
    assert emu.user(RESIDENT).chat.messages == {}
    origin = client.chat.url.rstrip("/")
    async with client.http.post(url, json={"text": "x"}, headers={"Origin": origin}) as response:
        assert response.status == 200


async def test_a_foreign_host_name_is_refused_even_with_a_matching_origin(
    client: Client, emu: BotAPIEmulator, hooks: FakeHooks
) -> None:
    """DNS rebinding: a page of evil.example that pointed its name at 127.0.0.1 sends Host and Origin of its own."""
    port = client.chat.url.rstrip("/").rsplit(":", 1)[1]
    foreign = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    async with client.http.get(client.url("/api/bootstrap?lang=ru"), headers=foreign) as response:
        assert response.status == 421
    async with client.http.post(client.url("/api/travel"), json={"seconds": 3600}, headers=foreign) as response:
        assert response.status == 421
    async with client.http.post(client.url(f"/api/chats/{RESIDENT}/text"), json={"text": "x"}, headers=foreign) as r:
        assert r.status == 421
    assert hooks.travelled == [] and emu.user(RESIDENT).chat.messages == {}
    # The names of this machine's loopback are fine.
    for name in ("localhost", "127.0.0.1"):
        async with client.http.get(client.url("/api/bootstrap?lang=ru"), headers={"Host": f"{name}:{port}"}) as r:
            assert r.status == 200


async def test_text_too_long_refused(client: Client, emu: BotAPIEmulator) -> None:
    data = await client.post(f"/api/chats/{RESIDENT}/text?lang=ru", {"text": "x" * 4097}, status=400)
    assert data["message"] == "Сообщение слишком длинное: не больше 4096 символов."
    await client.post(f"/api/chats/{RESIDENT}/text", {"text": "x" * 4096})
    assert len(emu.user(RESIDENT).chat.messages) == 1


async def test_oversized_upload_is_413_and_leaves_nothing(client: Client, emu: BotAPIEmulator, tmp_path: Path) -> None:
    data = await client.upload(RESIDENT, [("big.pdf", b"x" * 5000, "application/pdf")], status=413)
    assert data["message"] == "Файл слишком большой: не больше 20 МБ."
    assert emu.user(RESIDENT).chat.messages == {}
    assert list((tmp_path / "uploads").iterdir()) == []


async def test_too_many_files_refused(client: Client, emu: BotAPIEmulator) -> None:
    files = [(f"{i}.txt", b"x", "text/plain") for i in range(11)]
    await client.upload(RESIDENT, files, status=400)
    assert emu.user(RESIDENT).chat.messages == {}


async def test_upload_one_photo_and_an_album(client: Client, emu: BotAPIEmulator, tmp_path: Path) -> None:
    png = tiny_png()
    single = await client.upload(RESIDENT, [("../../etc/photo.png", png, "image/png")], caption="Яма")
    assert single["media_group_id"] is None
    messages = emu.user(RESIDENT).chat.messages
    photo = messages[single["message_ids"][0]]
    assert photo["caption"] == "Яма" and len(photo["photo"]) == 2
    assert emu.state.files[photo["photo"][-1]["file_id"]].content == png
    saved = list((tmp_path / "uploads").iterdir())
    assert len(saved) == 1 and saved[0].suffix == ".png" and "photo" not in saved[0].name

    album = await client.upload(
        RESIDENT,
        [
            ("a.png", png, "image/png"),
            ("b.png", png, "image/png"),
            ("C:\\docs\\act.pdf", b"%PDF-1.4", "application/pdf"),
        ],
        caption="three",
    )
    items = [messages[i] for i in album["message_ids"]]
    assert len(items) == 3 and {m["media_group_id"] for m in items} == {album["media_group_id"]}
    assert ["photo" in m for m in items] == [True, True, False]
    assert items[2]["document"]["file_name"] == "act.pdf" and items[2]["document"]["mime_type"] == "application/pdf"
    assert [m.get("caption") for m in items] == ["three", None, None]

    chat = await client.get(f"/api/chats/{RESIDENT}")
    rendered = {m["message_id"]: m for m in chat["messages"]}
    assert rendered[items[0]["message_id"]]["media"]["type"] == "photo"
    document = rendered[items[2]["message_id"]]["media"]
    assert (document["type"], document["name"], document["size"]) == ("document", "act.pdf", 8)
    async with client.http.get(client.url(rendered[items[0]["message_id"]]["media"]["url"])) as response:
        assert response.status == 200 and response.content_type == "image/png"
        assert await response.read() == png
    async with client.http.get(client.url(document["url"])) as response:
        assert response.headers["Content-Disposition"].startswith("attachment")


async def test_uploaded_html_is_never_served_as_a_page(client: Client) -> None:
    result = await client.upload(RESIDENT, [("x.html", b"<script>alert(1)</script>", "text/html")])
    chat = await client.get(f"/api/chats/{RESIDENT}")
    media = next(m["media"] for m in chat["messages"] if m["message_id"] == result["message_ids"][0])
    async with client.http.get(client.url(media["url"])) as response:
        assert response.content_type == "application/octet-stream"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with client.http.get(client.url("/api/files/nope")) as response:
        assert response.status == 404


async def test_read_mark_clears_the_badge(client: Client, emu: BotAPIEmulator, bot: Bot) -> None:
    emu.user(OFFICIAL).open_chat()
    first = await bot.send_message(OFFICIAL, "1")
    await bot.send_message(OFFICIAL, "2")
    assert (await client.post(f"/api/chats/{OFFICIAL}/read", {"message_id": first.message_id}))["unread"] == 1
    assert client.chat.unread(OFFICIAL) == 1
    await client.post(f"/api/chats/{OFFICIAL}/read", {"message_id": 0})
    assert client.chat.unread(OFFICIAL) == 1


async def test_travel_calls_the_hook(client: Client, hooks: FakeHooks) -> None:
    data = await client.post("/api/travel", {"seconds": 86400})
    assert hooks.travelled == [86400] and data["now_text"] == "03.03.2026 09:00"
    for bad in (0, -5, "3600", True, 10**9):
        await client.post("/api/travel", {"seconds": bad}, status=400)
    assert hooks.travelled == [86400]


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    events = []
    while len(events) < count:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().strip()
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    return events


async def test_events_deliver_chat_toast_and_panel(client: Client, emu: BotAPIEmulator, bot: Bot) -> None:
    async with client.http.get(client.url("/api/events")) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        assert (await response.content.readline()).startswith(b"retry:")
        await client.post(f"/api/chats/{RESIDENT}/text", {"text": "hello"})
        assert await read_events(response, 1) == [{"type": "chat", "user_id": RESIDENT, "unread": 0}]
        await bot.send_message(RESIDENT, "answer")
        assert await read_events(response, 1) == [{"type": "chat", "user_id": RESIDENT, "unread": 1}]
        sent = await bot.send_message(
            RESIDENT,
            "b",
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]]),
        )
        await read_events(response, 1)
        query_id = await emu.user(RESIDENT).press_callback(sent.message_id, "a")
        await bot.answer_callback_query(query_id, "Done!", show_alert=True)
        events = await read_events(response, 2)
        assert events[1] == {"type": "toast", "user_id": RESIDENT, "text": "Done!", "alert": True}
        client.chat.panel_changed()
        assert await read_events(response, 1) == [{"type": "panel"}]


async def test_events_on_edit_and_delete_and_heartbeat(client: Client, emu: BotAPIEmulator, bot: Bot) -> None:
    emu.user(RESIDENT).open_chat()
    client.chat.heartbeat_seconds = 0.05
    async with client.http.get(client.url("/api/events")) as response:
        await response.content.readline()
        sent = await bot.send_message(RESIDENT, "v1")
        await read_events(response, 1)
        await bot.edit_message_text("v2", chat_id=RESIDENT, message_id=sent.message_id)
        assert await read_events(response, 1) == [{"type": "chat", "user_id": RESIDENT, "unread": 1}]
        await bot.delete_message(RESIDENT, sent.message_id)
        assert await read_events(response, 1) == [{"type": "chat", "user_id": RESIDENT, "unread": 0}]
        line = b""
        while not line.startswith(b": heartbeat"):
            line = await asyncio.wait_for(response.content.readline(), 5)


async def test_stop_ends_open_event_streams(emu: BotAPIEmulator, tmp_path: Path) -> None:
    chat = WebChat(emu, FakeHooks(), upload_dir=tmp_path)
    await chat.start("127.0.0.1", 0)
    async with aiohttp.ClientSession() as http, http.get(chat.url + "api/events") as response:
        await response.content.readline()
        await asyncio.wait_for(chat.stop(), 5)
        assert await asyncio.wait_for(response.content.read(), 5) is not None
    assert emu.state.listeners == []
