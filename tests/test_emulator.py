"""Tests of the local Bot API emulator itself, driven by a real aiogram Bot over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    InputMediaVideo,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from emulator import BotAPIEmulator, BotMessage
from emulator.html_parser import EntityParseError, parse_html

TOKEN = "123456:TEST-TOKEN"


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(token=TOKEN, bot_username="tsur_test_bot", bot_first_name="TSUR") as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    instance = Bot(TOKEN, session=session)
    yield instance
    await instance.session.close()


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data) for text, data in row] for row in rows]
    )


async def started_user(emu: BotAPIEmulator, bot: Bot, user_id: int = 1001) -> int:
    """A user who wrote /start, with the update already confirmed; returns the next offset."""
    user = emu.user(user_id, first_name="Ivan")
    await user.send_command("start")
    updates = await bot.get_updates()
    offset = updates[-1].update_id + 1
    await bot.get_updates(offset=offset)
    return offset


# ---------------------------------------------------------------------- basics


async def test_get_me_and_base_url(emu: BotAPIEmulator, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "tsur_test_bot"
    assert me.first_name == "TSUR"
    assert emu.base_url.startswith("http://127.0.0.1:")
    assert emu.port > 0


async def test_wrong_token_is_unauthorized(emu: BotAPIEmulator) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url))
    stranger = Bot("999:WRONG", session=session)
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await session.close()


async def test_unknown_method_is_404(emu: BotAPIEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{emu.base_url}/bot{TOKEN}/sendTeleportation", data={"chat_id": "1"}) as resp:
            assert resp.status == 404
            body = await resp.json()
    assert body == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}


async def test_json_body_and_query_string_are_accepted(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    async with aiohttp.ClientSession() as http:
        payload = {
            "chat_id": 1001,
            "text": "json",
            "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
        }
        async with http.post(f"{emu.base_url}/bot{TOKEN}/sendMessage", json=payload) as resp:
            body = await resp.json()
        assert body["ok"] and body["result"]["text"] == "json"
        async with http.get(f"{emu.base_url}/bot{TOKEN}/getMe?x=1") as resp:
            assert (await resp.json())["result"]["username"] == "tsur_test_bot"
    assert emu.user(1001).last_message.buttons == ["A"]


# ---------------------------------------------------------------------- updates


async def test_long_polling_returns_as_soon_as_an_update_arrives(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.user(1001, first_name="Ivan")
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    started = time.monotonic()
    sent = await user.send_text("hello")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1
    assert [u.update_id for u in updates] == [1]
    assert updates[0].message is not None
    assert updates[0].message.text == "hello"
    assert updates[0].message.message_id == sent["message_id"]
    assert updates[0].message.from_user is not None and updates[0].message.from_user.first_name == "Ivan"


async def test_long_polling_waits_for_the_timeout(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert 0.9 <= time.monotonic() - started < 3


async def test_offset_confirms_updates(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.user(1001)
    for text in ("one", "two", "three"):
        await user.send_text(text)
    assert emu.updates_pending() == 3
    first = await bot.get_updates(limit=2)
    assert [u.update_id for u in first] == [1, 2]
    # Without a new offset the same updates come back.
    assert [u.update_id for u in await bot.get_updates()] == [1, 2, 3]
    rest = await bot.get_updates(offset=3)
    assert [u.message.text for u in rest if u.message] == ["three"]
    assert emu.updates_pending() == 1
    waiter = asyncio.create_task(emu.wait_confirmed(timeout=2))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    assert await bot.get_updates(offset=4) == []
    await waiter
    assert emu.updates_pending() == 0


async def test_redeliver_repeats_the_payload_under_a_new_id(emu: BotAPIEmulator, bot: Bot) -> None:
    offset = await started_user(emu, bot)
    await bot.send_message(1001, "Pick", reply_markup=keyboard([("A", "a")]))
    query_id = await emu.user(1001).click("A")
    first = await bot.get_updates(offset=offset)
    original = emu.last_update(1001)
    assert original is not None and original["update_id"] == first[0].update_id
    copy = emu.redeliver(original)
    assert copy is not None and copy["update_id"] == original["update_id"] + 1
    again = await bot.get_updates(offset=first[-1].update_id + 1)
    assert [u.callback_query.id for u in again if u.callback_query] == [query_id]


async def test_wait_confirmed_times_out_with_explanation(emu: BotAPIEmulator) -> None:
    await emu.user(1001).send_text("nobody polls")
    with pytest.raises(TimeoutError, match="did not confirm"):
        await emu.wait_confirmed(timeout=0.1)


async def test_concurrent_get_updates_conflict(emu: BotAPIEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(bot.get_updates(timeout=5))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)
    await emu.user(1001).send_text("hi")
    assert len(await asyncio.wait_for(second, 2)) == 1


async def test_allowed_updates_filters_new_updates(emu: BotAPIEmulator, bot: Bot) -> None:
    offset = await started_user(emu, bot)
    await bot.send_message(1001, "menu", reply_markup=keyboard([("A", "a")]))
    await bot.get_updates(offset=offset, allowed_updates=["message"])
    await emu.user(1001).click("A")
    assert emu.updates_pending() == 0
    await emu.user(1001).send_text("still delivered")
    assert emu.updates_pending() == 1


async def test_delete_webhook_drops_pending_updates(emu: BotAPIEmulator, bot: Bot) -> None:
    await emu.user(1001).send_text("old")
    await bot.delete_webhook(drop_pending_updates=True)
    assert emu.updates_pending() == 0
    await emu.wait_confirmed(timeout=0.1)
    await bot.set_webhook("https://example.com/hook")
    assert (await bot.get_webhook_info()).url == "https://example.com/hook"
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()
    await bot.delete_webhook()
    assert await bot.get_updates() == []


# ---------------------------------------------------------------------- sending & HTML


async def test_send_message_html_is_parsed_like_telegram(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    html = '👋 <b>Привет</b>, <a href="https://example.com?a=1&amp;b=2">link</a> &lt;3 <code>x</code>'
    sent = await bot.send_message(1001, html, parse_mode="HTML")
    assert sent.text == "👋 Привет, link <3 x"
    assert sent.entities is not None
    kinds = [(e.type, e.offset, e.length) for e in sent.entities]
    # The emoji is two UTF-16 code units, so "Привет" starts at 3.
    assert kinds == [("bold", 3, 6), ("text_link", 11, 4), ("code", 19, 1)]
    assert sent.entities[1].url == "https://example.com?a=1&b=2"
    message = emu.user(1001).last_message
    assert isinstance(message, BotMessage)
    assert message.text == "👋 Привет, link <3 x"
    assert message.html == html
    assert message.parse_mode == "HTML"
    assert message.kind == "text"
    assert message.date > 0


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("Hello <foo>x</foo>", 'Unsupported start tag "foo" at byte offset 6'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("Tom & Jerry", 'Character "&" at byte offset 4 must be escaped'),
        ('<span class="x">s</span>', 'Tag "span" must have class "tg-spoiler"'),
        ("<b", "Unclosed start tag at byte offset 0"),
    ],
)
async def test_bad_html_is_rejected_and_not_recorded(emu: BotAPIEmulator, bot: Bot, html: str, error: str) -> None:
    await started_user(emu, bot)
    with pytest.raises(TelegramBadRequest, match="can't parse entities") as raised:
        await bot.send_message(1001, html, parse_mode="HTML")
    assert error in raised.value.message
    assert emu.user(1001).messages == []
    call = emu.calls("sendMessage")[-1]
    assert not call.ok and call.error_code == 400


def test_html_parser_covers_telegram_tags() -> None:
    html = (
        "<strong>b</strong><em>i</em><ins>u</ins><del>s</del><tg-spoiler>p</tg-spoiler>"
        '<span class="tg-spoiler">q</span><pre><code class="language-python">code</code></pre>'
        '<blockquote expandable>quote</blockquote><tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
        "&#65;&#x42;&quot;"
    )
    parsed = parse_html(html)
    assert parsed.text == 'biuspqcodequote👍AB"'
    types = [entity["type"] for entity in parsed.entities]
    assert types == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "spoiler",
        "pre",
        "expandable_blockquote",
        "custom_emoji",
    ]
    assert parsed.entities[6]["language"] == "python"
    assert parse_html("Tom & Jerry", strict_ampersand=False).text == "Tom & Jerry"
    with pytest.raises(EntityParseError, match="Unsupported start tag"):
        parse_html("<br>")


async def test_text_validation(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(1001, "   ")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(1001, "<b></b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(1001, "x" * 4097)
    # The limit applies to the parsed text, not the markup.
    await bot.send_message(1001, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    photo = BufferedInputFile(b"jpeg", "p.jpg")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(1001, photo, caption="c" * 1025)
    assert len(emu.user(1001).messages) == 1


async def test_chat_not_found_and_button_data_invalid(emu: BotAPIEmulator, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "hi")
    silent = emu.user(2002)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(2002, "you never wrote to me")
    silent.open_chat()
    await bot.send_message(2002, "now I may")
    await started_user(emu, bot)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(1001, "kb", reply_markup=keyboard([("A", "x" * 65)]))
    assert emu.user(1001).messages == []


async def test_edit_not_modified_and_missing_messages(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    markup = keyboard([("A", "a")])
    sent = await bot.send_message(1001, "<b>v1</b>", parse_mode="HTML", reply_markup=markup)
    with pytest.raises(TelegramBadRequest, match="message is not modified: specified new message content"):
        await bot.edit_message_text(
            text="<b>v1</b>", chat_id=1001, message_id=sent.message_id, parse_mode="HTML", reply_markup=markup
        )
    edited = await bot.edit_message_text(text="v2", chat_id=1001, message_id=sent.message_id, reply_markup=markup)
    assert isinstance(edited, Message) and edited.text == "v2" and edited.edit_date is not None
    # Same text without reply_markup is a change: Telegram removes the keyboard.
    await bot.edit_message_text(text="v2", chat_id=1001, message_id=sent.message_id)
    record = emu.user(1001).message(sent.message_id)
    assert record.text == "v2" and record.buttons == [] and record.edits == 2 and record.history == ["v1"]
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=1001, message_id=sent.message_id)
    await bot.edit_message_reply_markup(chat_id=1001, message_id=sent.message_id, reply_markup=markup)
    assert record.buttons == ["A"]
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=1001, message_id=999)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(1001, 999)
    assert await bot.delete_message(1001, sent.message_id)
    assert record.deleted
    assert emu.user(1001).last_message is None
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=1001, message_id=sent.message_id)


async def test_edit_caption(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    sent = await bot.send_photo(1001, BufferedInputFile(b"jpeg", "p.jpg"), caption="old")
    await bot.edit_message_caption(chat_id=1001, message_id=sent.message_id, caption="<i>new</i>", parse_mode="HTML")
    assert emu.user(1001).last_message.text == "new"
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await bot.edit_message_text(text="x", chat_id=1001, message_id=sent.message_id)


# ---------------------------------------------------------------------- callbacks & keyboards


async def test_callback_flow(emu: BotAPIEmulator, bot: Bot) -> None:
    offset = await started_user(emu, bot)
    user = emu.user(1001)
    sent = await bot.send_message(1001, "Pick", reply_markup=keyboard([("Yes", "vote:yes"), ("No", "vote:no")]))
    assert user.last_message.inline_keyboard == [[("Yes", "vote:yes"), ("No", "vote:no")]]
    assert user.last_message.button_data("No") == "vote:no"
    query_id = await user.click("Yes")
    updates = await bot.get_updates(offset=offset)
    query = updates[0].callback_query
    assert query is not None
    assert query.id == query_id and query.data == "vote:yes"
    assert query.from_user.id == 1001
    assert isinstance(query.message, Message)
    assert query.message.message_id == sent.message_id
    assert query.message.reply_markup is not None
    assert await bot.answer_callback_query(query_id, text="Thanks", show_alert=True)
    assert user.callback_answers == [
        {"callback_query_id": query_id, "text": "Thanks", "show_alert": True, "url": None, "cache_time": None}
    ]
    with pytest.raises(TelegramBadRequest, match="query is too old and response timeout expired"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("nonsense")


async def test_click_lists_visible_buttons_when_missing(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    await bot.send_message(1001, "Pick", reply_markup=keyboard([("Yes", "y")]))
    with pytest.raises(AssertionError, match=r"(?s)no inline button 'Maybe'.*\['Yes'\]"):
        await emu.user(1001).click("Maybe")


async def test_click_uses_newest_message_and_forged_callbacks(emu: BotAPIEmulator, bot: Bot) -> None:
    offset = await started_user(emu, bot)
    user = emu.user(1001)
    old = await bot.send_message(1001, "old", reply_markup=keyboard([("Go", "old")]))
    await bot.send_message(1001, "new", reply_markup=keyboard([("Go", "new")]))
    await user.click("Go")
    await user.click("Go", message_id=old.message_id)
    await user.press_callback(old.message_id, "forged:1")
    updates = await bot.get_updates(offset=offset)
    assert [u.callback_query.data for u in updates if u.callback_query] == ["new", "old", "forged:1"]


async def test_reply_keyboard_buttons(emu: BotAPIEmulator, bot: Bot) -> None:
    offset = await started_user(emu, bot)
    user = emu.user(1001)
    markup = ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text="📍 Location", request_location=True)],
            [KeyboardButton(text="📱 Phone", request_contact=True), KeyboardButton(text="Help")],
        ],
        resize_keyboard=True,
    )
    await bot.send_message(1001, "Menu", reply_markup=markup)
    assert user.reply_keyboard == [["📍 Location"], ["📱 Phone", "Help"]]
    await user.press_reply_button("📍 Location", latitude=43.3178, longitude=45.6949)
    await user.press_reply_button("📱 Phone")
    await user.press_reply_button("Help")
    with pytest.raises(AssertionError, match="no reply keyboard button"):
        await user.press_reply_button("Nope")
    updates = await bot.get_updates(offset=offset)
    messages = [u.message for u in updates if u.message]
    assert messages[0].location is not None and messages[0].location.latitude == pytest.approx(43.3178)
    assert messages[1].contact is not None and messages[1].contact.user_id == 1001
    assert messages[2].text == "Help"
    await bot.send_message(1001, "bye", reply_markup=ReplyKeyboardRemove())
    assert user.reply_keyboard is None


async def test_reply_button_with_invisible_characters_is_pressed_by_what_is_shown(
    emu: BotAPIEmulator, bot: Bot
) -> None:
    """Some frameworks (aiogram-dialog) append invisible format characters to a reply button to carry data:
    the person sees and presses the visible text, and the client sends the whole text back."""
    offset = await started_user(emu, bot)
    user = emu.user(1001)
    hidden = "\U0001d173\U0001d174\U0001d175\U0001d176"  # Unicode category Cf: take no room on screen
    markup = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="⬅️ Back" + hidden)]], resize_keyboard=True)
    await bot.send_message(1001, "Where?", reply_markup=markup)
    assert user.reply_keyboard == [["⬅️ Back"]]
    await user.press_reply_button("⬅️ Back")
    with pytest.raises(AssertionError, match="no reply keyboard button"):
        await user.press_reply_button("Back")
    updates = await bot.get_updates(offset=offset)
    [message] = [u.message for u in updates if u.message]
    assert message.text == "⬅️ Back" + hidden


# ---------------------------------------------------------------------- media & files


async def test_user_album_shares_media_group_id(emu: BotAPIEmulator, bot: Bot) -> None:
    user = emu.user(1001)
    sent = await user.send_album(["photo", "photo", "video"], caption="look")
    assert len(sent) == 3
    updates = await bot.get_updates()
    messages = [u.message for u in updates if u.message]
    assert len(messages) == 3
    group_ids = {m.media_group_id for m in messages}
    assert len(group_ids) == 1 and None not in group_ids
    assert messages[0].caption == "look" and messages[1].caption is None
    assert messages[0].photo is not None and len(messages[0].photo) == 2
    assert messages[2].video is not None
    file_ids = {m.photo[-1].file_id for m in messages[:2] if m.photo}
    assert len(file_ids) == 2


async def test_send_media_group_with_uploads_and_file_ids(emu: BotAPIEmulator, bot: Bot) -> None:
    offset = await started_user(emu, bot)
    user = emu.user(1001)
    await user.send_photo()
    updates = await bot.get_updates(offset=offset)
    known_photo = updates[0].message.photo[-1].file_id  # type: ignore[union-attr,index]
    media = [
        InputMediaPhoto(media=BufferedInputFile(b"first", "a.jpg"), caption="<b>Album</b>", parse_mode="HTML"),
        InputMediaPhoto(media=known_photo),
        InputMediaVideo(media=BufferedInputFile(b"video", "v.mp4")),
    ]
    result = await bot.send_media_group(1001, media)
    assert len(result) == 3
    assert len({m.media_group_id for m in result}) == 1 and result[0].media_group_id
    assert result[0].caption == "Album"
    assert result[1].photo is not None and result[1].photo[-1].file_id == known_photo
    records = user.messages[-3:]
    assert [m.kind for m in records] == ["photo", "photo", "video"]
    assert all(m.media_group_id == result[0].media_group_id for m in records)
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_media_group(1001, [InputMediaPhoto(media="bogus"), InputMediaPhoto(media=known_photo)])
    assert len(user.messages) == 3


async def test_get_file_and_download(emu: BotAPIEmulator, bot: Bot) -> None:
    offset = await started_user(emu, bot)
    user = emu.user(1001)
    await user.send_document(file_name="act.pdf", mime_type="application/pdf", content=b"%PDF-1.4 test")
    document = (await bot.get_updates(offset=offset))[0].message.document  # type: ignore[union-attr]
    assert document is not None and document.file_name == "act.pdf" and document.mime_type == "application/pdf"
    info = await bot.get_file(document.file_id)
    assert info.file_path and info.file_size == len(b"%PDF-1.4 test")
    downloaded = await bot.download_file(info.file_path)
    assert downloaded is not None and downloaded.read() == b"%PDF-1.4 test"

    photo = await bot.send_photo(1001, BufferedInputFile(b"\xff\xd8jpeg-bytes", "p.jpg"))
    assert photo.photo is not None and len(photo.photo) == 2
    photo_file = await bot.get_file(photo.photo[-1].file_id)
    assert photo_file.file_path is not None
    assert (await bot.download_file(photo_file.file_path)).read() == b"\xff\xd8jpeg-bytes"  # type: ignore[union-attr]
    assert user.last_message.file_id == photo.photo[-1].file_id
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")


async def test_location_contact_copy_forward(emu: BotAPIEmulator, bot: Bot) -> None:
    offset = await started_user(emu, bot)
    user = emu.user(1001)
    loc = await bot.send_location(1001, latitude=43.3178, longitude=45.6949)
    assert loc.location is not None
    assert user.last_message.kind == "location" and user.last_message.latitude == pytest.approx(43.3178)
    await bot.send_contact(1001, phone_number="+79990000000", first_name="ЦУР")
    assert user.last_message.kind == "contact"
    said = await user.send_text("forward me")
    await bot.get_updates(offset=offset)
    copied = await bot.copy_message(chat_id=1001, from_chat_id=1001, message_id=said["message_id"])
    assert user.message(copied.message_id).text == "forward me"
    forwarded = await bot.forward_message(chat_id=1001, from_chat_id=1001, message_id=said["message_id"])
    assert forwarded.forward_origin is not None
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(chat_id=1001, from_chat_id=1001, message_id=777)
    assert await bot.send_chat_action(1001, "typing")
    assert user.chat_actions == ["typing"]


async def test_commands_and_settings(bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert await bot.get_my_commands(language_code="en") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == []
    assert await bot.set_my_description("Долгое описание")
    assert (await bot.get_my_description()).description == "Долгое описание"
    assert await bot.set_my_short_description("Коротко")
    assert (await bot.get_my_short_description()).short_description == "Коротко"


async def test_get_chat(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.user(1001, first_name="Ivan", username="ivan").open_chat()
    chat = await bot.get_chat(1001)
    assert chat.id == 1001 and chat.type == "private" and chat.first_name == "Ivan" and chat.username == "ivan"


# ---------------------------------------------------------------------- faults & blocking


async def test_injected_429_is_not_recorded(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    fault = emu.inject("sendMessage", "429", count=1, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(1001, "hi")
    assert raised.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in raised.value.message
    assert emu.user(1001).messages == []
    assert fault.hits == 1 and emu.faults == []
    await bot.send_message(1001, "hi")
    assert [m.text for m in emu.user(1001).messages] == ["hi"]


async def test_injected_500_drop_and_wildcard(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    emu.inject("*", "500", count=2)
    with pytest.raises(TelegramServerError, match="Internal Server Error"):
        await bot.send_message(1001, "a")
    # The wildcard does not hit getUpdates, so polling keeps working.
    assert await bot.get_updates() == []
    with pytest.raises(TelegramServerError):
        await bot.send_photo(1001, BufferedInputFile(b"x", "x.jpg"))
    emu.inject("sendMessage", "drop")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(1001, "b")
    emu.inject("sendMessage", "429", count=None)
    for _ in range(3):
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(1001, "c")
    emu.clear_faults()
    await bot.send_message(1001, "d")
    assert [m.text for m in emu.user(1001).messages] == ["d"]
    assert [c.fault for c in emu.calls("sendMessage")] == ["500", "drop", "429", "429", "429", None]


async def test_rate_limit(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    emu.rate_limit(per_chat_per_second=2)
    await bot.send_message(1001, "1")
    await bot.send_message(1001, "2")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(1001, "3")
    emu.rate_limit()
    await bot.send_message(1001, "4")
    assert [m.text for m in emu.user(1001).messages] == ["1", "2", "4"]


async def test_rate_limit_with_a_burst_on_a_manual_clock(emu: BotAPIEmulator, bot: Bot) -> None:
    """Telegram's per-chat limit as a token bucket: 3 at once, then one a second, counted on the test's clock."""
    await started_user(emu, bot)
    await started_user(emu, bot, 1002)
    now = [1000.0]
    emu.rate_limit(per_chat_per_second=1, per_chat_burst=3, clock=lambda: now[0])
    for n in range(3):
        await bot.send_message(1001, f"a{n}")
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(1001, "refused")
    assert raised.value.retry_after == 1
    await bot.send_message(1002, "another chat has its own bucket")
    now[0] += 0.5
    with pytest.raises(TelegramRetryAfter):  # half a token; the refusal did not use it up
        await bot.send_message(1001, "refused too")
    now[0] += 0.5
    await bot.send_message(1001, "a3")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(1001, "refused again")
    now[0] += 10  # the bucket refills up to the burst, no more
    for n in range(4, 7):
        await bot.send_message(1001, f"a{n}")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(1001, "over the burst")
    assert [m.text for m in emu.user(1001).messages] == [f"a{n}" for n in range(7)]


async def test_blocked_user(emu: BotAPIEmulator, bot: Bot) -> None:
    offset = await started_user(emu, bot)
    user = emu.user(1001)
    user.block()
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(1001, "hi")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_photo(1001, BufferedInputFile(b"x", "x.jpg"))
    updates = await bot.get_updates(offset=offset)
    member_update = updates[0].my_chat_member
    assert member_update is not None and member_update.new_chat_member.status == "kicked"
    user.unblock()
    await bot.send_message(1001, "welcome back")
    assert [m.text for m in user.messages] == ["welcome back"]


# ---------------------------------------------------------------------- with a Dispatcher


async def test_dispatcher_end_to_end(emu: BotAPIEmulator, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(Command("start"))
    async def start(message: Message, command: CommandObject) -> None:
        await message.answer(
            f"Hello, <b>{message.from_user.first_name}</b>! arg={command.args}",
            parse_mode="HTML",
            reply_markup=keyboard([("Ping", "ping")]),
        )

    @dp.callback_query(F.data == "ping")
    async def ping(query: CallbackQuery) -> None:
        await query.answer("pong")
        assert isinstance(query.message, Message)
        await query.message.edit_text("Pong!")

    polling = asyncio.create_task(
        dp.start_polling(bot, polling_timeout=1, handle_signals=False, close_bot_session=False)
    )
    try:
        user = emu.user(1001, first_name="Ivan")
        await user.send_command("start", "inv_abc")
        reply = await user.next_message(timeout=5)
        assert reply.text == "Hello, Ivan! arg=inv_abc"
        assert reply.buttons == ["Ping"]
        await user.click("Ping")
        await user.wait_until(lambda: reply.edits == 1, timeout=5, what="edit")
        assert reply.text == "Pong!"
        await emu.wait_confirmed(timeout=5)
        assert user.callback_answers[0]["text"] == "pong"
        with pytest.raises(TimeoutError, match="no new message from the bot"):
            await user.next_message(timeout=0.2)
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)


async def test_next_message_dump_shows_failed_calls(emu: BotAPIEmulator, bot: Bot) -> None:
    await started_user(emu, bot)
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(1001, "<oops>", parse_mode="HTML")
    with pytest.raises(TimeoutError, match="Unsupported start tag"):
        await emu.user(1001).next_message(timeout=0.1)


# ---------------------------------------------------------------------- HTTP user API


async def test_http_user_api(emu: BotAPIEmulator, bot: Bot) -> None:
    base = f"{emu.base_url}/_emu"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/users/5005", json={"first_name": "Web", "language_code": "en"}) as resp:
            assert (await resp.json())["result"]["user"]["first_name"] == "Web"
        async with http.post(f"{base}/users/5005/text", json={"text": "/start web"}) as resp:
            body = await resp.json()
        assert body["ok"] and body["result"]["text"] == "/start web"
        updates = await bot.get_updates()
        assert updates[0].message is not None and updates[0].message.text == "/start web"
        await bot.send_message(5005, "Choose", reply_markup=keyboard([("One", "1")]))
        async with http.get(f"{base}/users/5005/messages") as resp:
            messages = (await resp.json())["result"]
        assert messages[0]["text"] == "Choose" and messages[0]["buttons"] == ["One"]
        async with http.post(f"{base}/users/5005/click", json={"text": "One"}) as resp:
            query_id = (await resp.json())["result"]["callback_query_id"]
        async with http.post(f"{base}/users/5005/click", json={"text": "Two"}) as resp:
            assert resp.status == 400 and "no inline button" in (await resp.json())["error"]
        async with http.post(f"{base}/users/5005/album", json={"kinds": ["photo", "video"]}) as resp:
            assert len((await resp.json())["result"]) == 2
        async with http.post(f"{base}/users/5005/location", json={"latitude": 43.3, "longitude": 45.6}) as resp:
            assert resp.status == 200
        async with http.post(f"{base}/faults", json={"method": "sendMessage", "kind": "500"}) as resp:
            assert (await resp.json())["result"]["kind"] == "500"
        with pytest.raises(TelegramServerError):
            await bot.send_message(5005, "x")
        async with http.get(f"{base}/requests", params={"method": "sendMessage"}) as resp:
            calls = (await resp.json())["result"]
        assert [c["ok"] for c in calls] == [True, False]
        async with http.get(f"{base}/users/5005/next_message", params={"timeout": "0.1"}) as resp:
            assert resp.status == 408
        async with http.post(f"{base}/users/5005/teleport", json={}) as resp:
            assert resp.status == 404
        async with http.get(f"{base}/state") as resp:
            assert (await resp.json())["result"]["pending_updates"] == 5
    updates = await bot.get_updates(offset=updates[-1].update_id + 1)
    assert updates[0].callback_query is not None and updates[0].callback_query.id == query_id
