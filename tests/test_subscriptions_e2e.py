"""Residents choose what news they hear, end to end through the emulator: the /subscriptions screen (blocks,
districts, stop), and «🔕 Unsubscribe from such news» under a broadcast item with its «↩️ Undo». What each press
stored is checked by the delivery side's own query (`recipients_query`), run here."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.callbacks import NewsAction, NewsCb, NewsUndoCb, SubsAction, SubsCb
from bot.domain import BroadcastAudience
from bot.notices import BroadcastContent
from bot.notifications import render_broadcast
from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import NewsBlockOff, NewsDistrict, NewsPrefs
from storage.repositories.broadcasts import recipients_query
from tests import factories
from tests.conftest import Harness
from tests.test_polls_e2e import person, step
from tests.test_subscriptions_services import make_broadcast

ADMIN = 9000
BLOCKS_EN = (
    "Housing, utilities and waste",
    "Energy",
    "Education",
    "Healthcare",
    "Roads",
    "Public transport",
    "Social policy",
)
UNSUBSCRIBE = "🔕 Unsubscribe from such news"


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


# --- helpers --------------------------------------------------------------------------------------------------


def block(harness: Harness, code: str) -> int:
    assert harness.app is not None
    return next(b.id for b in harness.app.services.directory.blocks() if b.code == code)


def district(harness: Harness, code: str) -> int:
    assert harness.app is not None
    return next(d.id for d in harness.app.services.directory.districts() if d.code == code)


async def user_id(harness: Harness, user: EmulatedUser) -> int:
    assert harness.app is not None
    return (await harness.app.services.users.identify(user.id)).id


async def gets(harness: Harness, user: EmulatedUser, audience: BroadcastAudience) -> bool:
    """Whether a broadcast to `audience` would reach the person (the delivery side's query)."""
    assert harness.app is not None
    async with await harness.session() as session:
        query = recipients_query(audience, harness.settings.consent.version)
        return await user_id(harness, user) in set((await session.execute(query)).scalars().all())


async def news_rows(harness: Harness) -> tuple[int, int, int]:
    """(news_prefs, news_blocks_off, news_districts) rows."""
    prefs, blocks, districts = [len(await harness.rows(model)) for model in (NewsPrefs, NewsBlockOff, NewsDistrict)]
    return prefs, blocks, districts


def screen(user: EmulatedUser) -> BotMessage:
    """The latest /subscriptions screen in the chat."""
    found = [m for m in user.messages if any(data and data.startswith("sb:") for row in m.inline_keyboard for _t, data in row)]
    assert found, user.dump()
    return found[-1]


async def broadcast(
    harness: Harness, users: list[EmulatedUser], audience: BroadcastAudience, text: str = "Water outage tomorrow"
) -> int:
    """A broadcast that went out to `users`: its row and items written as the delivery side writes them, and its
    message put in each chat by the bot exactly as `render_broadcast` (the delivery's renderer) draws it."""
    assert harness.app is not None and harness.bot is not None
    admin = await factories.admin(harness.app.services, ADMIN)
    ids = [await user_id(harness, u) for u in users]
    broadcast_id = await make_broadcast(harness.app.sessionmaker, admin.id, harness.clock, audience, ids, text)
    i18n = harness.app.i18n
    for user in users:
        lang = (await harness.app.services.users.identify(user.id)).lang
        content = BroadcastContent(broadcast_id, {"ru": text}, block_id=audience.block_id)
        item = render_broadcast(content, lang, lambda s, lang=lang: i18n.gettext(s, locale=lang))
        await harness.bot.send_message(user.chat_id, item.text or "", reply_markup=item.reply_markup)
    return broadcast_id


def item(user: EmulatedUser, text: str = "Water outage tomorrow") -> BotMessage:
    found = [m for m in user.messages if m.text == text]
    assert found, user.dump()
    return found[-1]


# --- the screen -----------------------------------------------------------------------------------------------


async def test_the_screen_defaults_toggles_and_the_recipients(harness: Harness) -> None:
    resident = await person(harness, 3001, district="grozny")
    neighbour = await person(harness, 3002, district="grozny")
    grozny, argun, vedeno = (district(harness, code) for code in ("grozny", "argun", "vedensky"))
    roads, energy = block(harness, "roads"), block(harness, "energy")

    await step(harness, resident, "text", "/subscriptions")
    shown = screen(resident)
    assert "News from the RMC" in shown.text
    assert "Messages about your own appeals, ratings and polls are not affected" in shown.text
    assert "Districts: Grozny (the district of your latest appeal)" in shown.text
    # Every block on, the latest appeal's district preselected.
    assert shown.buttons == [*(f"✅ {name}" for name in BLOCKS_EN), "📍 Districts: Grozny", "🔕 Stop all news"]
    assert await news_rows(harness) == (0, 0, 0)  # the defaults are not rows

    # A block off: stored, and the same message redrawn.
    await step(harness, resident, "click", "✅ Roads")
    assert screen(resident).message_id == shown.message_id
    assert "▫️ Roads" in screen(resident).buttons and "✅ Energy" in screen(resident).buttons
    assert [(r.block_id) for r in await harness.rows(NewsBlockOff)] == [roads]
    assert not await gets(harness, resident, BroadcastAudience(block_id=roads))
    assert await gets(harness, resident, BroadcastAudience(block_id=energy))
    assert await gets(harness, resident, BroadcastAudience())
    assert await gets(harness, neighbour, BroadcastAudience(block_id=roads))
    await step(harness, resident, "click", "▫️ Roads")
    assert "✅ Roads" in screen(resident).buttons
    assert await gets(harness, resident, BroadcastAudience(block_id=roads))
    assert await harness.rows(NewsBlockOff) == []

    # Districts: the picker shows the preselected one; choosing writes the choice.
    assert await gets(harness, resident, BroadcastAudience(districts=(grozny,)))
    assert not await gets(harness, resident, BroadcastAudience(districts=(argun,)))
    await step(harness, resident, "click", "📍 Districts: Grozny")
    picker = screen(resident)
    assert picker.message_id == shown.message_id
    assert "The district of your latest appeal is chosen until you change it." in picker.text
    assert picker.buttons[:3] == ["✅ Grozny", "▫️ Argun", "▫️ Achkhoy-Martanovsky District"]
    assert picker.buttons[-1] == "⬅️ Back"
    await step(harness, resident, "click", "▫️ Argun")
    assert screen(resident).buttons[:2] == ["✅ Grozny", "✅ Argun"]
    assert "latest appeal" not in screen(resident).text
    (prefs,) = await harness.rows(NewsPrefs)
    assert prefs.districts_chosen and not prefs.stopped
    assert {r.district_id for r in await harness.rows(NewsDistrict)} == {grozny, argun}
    assert await gets(harness, resident, BroadcastAudience(districts=(argun,)))
    assert not await gets(harness, resident, BroadcastAudience(districts=(vedeno,)))
    await step(harness, resident, "click", "✅ Grozny")
    assert screen(resident).buttons[:2] == ["▫️ Grozny", "✅ Argun"]
    assert not await gets(harness, resident, BroadcastAudience(districts=(grozny,)))
    assert await gets(harness, neighbour, BroadcastAudience(districts=(grozny,)))
    await step(harness, resident, "click", "⬅️ Back")
    assert "Districts: Argun." in screen(resident).text
    assert "📍 Districts: Argun" in screen(resident).buttons

    # Stop, then resume.
    await step(harness, resident, "click", "🔕 Stop all news")
    assert resident.callback_answers[-1]["text"].startswith("News stopped.")
    assert "News is stopped" in screen(resident).text
    assert screen(resident).buttons[-1] == "🔔 Resume news"
    for audience in (BroadcastAudience(), BroadcastAudience(block_id=energy), BroadcastAudience(districts=(argun,))):
        assert not await gets(harness, resident, audience)
    assert await gets(harness, neighbour, BroadcastAudience())
    await step(harness, resident, "click", "🔔 Resume news")
    assert resident.callback_answers[-1]["text"] == "News resumed."
    assert screen(resident).buttons[-1] == "🔕 Stop all news"
    assert await gets(harness, resident, BroadcastAudience(districts=(argun,)))
    # One screen all along, edited in place.
    assert len([m for m in resident.messages if "News from the RMC" in (m.text or "")]) == 1


async def test_the_screen_in_russian_without_an_appeal(harness: Harness) -> None:
    resident = await person(harness, 3003, lang="ru")
    await step(harness, resident, "text", "/subscriptions")
    shown = screen(resident)
    assert "Новости ЦУР" in shown.text, shown.text
    assert "📍 Районы: не выбраны" in shown.buttons
    assert "✅ Дороги" in shown.buttons and "🔕 Отключить все новости" in shown.buttons
    # No district: region-wide and block news only.
    assert await gets(harness, resident, BroadcastAudience(block_id=block(harness, "roads")))
    assert not await gets(harness, resident, BroadcastAudience(districts=(district(harness, "grozny"),)))


async def test_a_stale_screen_sets_what_its_button_showed(harness: Harness) -> None:
    """Two copies of the screen: a press on the older one sets the state its button showed, never flips it back."""
    resident = await person(harness, 3004)
    await step(harness, resident, "text", "/subscriptions")
    old = screen(resident)
    await step(harness, resident, "text", "/subscriptions")
    await resident.click("✅ Energy", message_id=screen(resident).message_id)
    await harness.settle()
    await resident.click("✅ Energy", message_id=old.message_id)
    await harness.settle()
    assert not await gets(harness, resident, BroadcastAudience(block_id=block(harness, "energy")))
    assert "▫️ Energy" in resident.message(old.message_id).buttons


async def test_many_districts_are_counted_on_the_button(harness: Harness) -> None:
    resident = await person(harness, 3016)
    await step(harness, resident, "text", "/subscriptions")
    await step(harness, resident, "click", "📍 Districts: none chosen")
    names = ["Grozny", "Argun", "Vedensky District", "Groznensky District", "Gudermessky District"]
    for name in names:
        await step(harness, resident, "click", f"▫️ {name}")
    await step(harness, resident, "click", "⬅️ Back")
    assert "📍 Districts: 5 chosen" in screen(resident).buttons
    assert f"Districts: {', '.join(names)}." in screen(resident).text
    for code in ("vedensky", "gudermessky"):
        assert await gets(harness, resident, BroadcastAudience(districts=(district(harness, code),)))
    assert not await gets(harness, resident, BroadcastAudience(districts=(district(harness, "shatoysky"),)))


async def test_unknown_input_and_forged_presses_change_nothing(harness: Harness) -> None:
    resident = await person(harness, 3005, district="argun")
    await step(harness, resident, "text", "/subscriptions")
    shown = screen(resident)
    await step(harness, resident, "text", "Turn everything off please")
    assert "I did not understand that" in resident.last_message.text
    await step(harness, resident, "text", "/subscribe")
    assert resident.last_message.text == "Unknown command. The commands are listed in /help."
    for data, answer in (
        (SubsCb(a=SubsAction.block, id=10_000, on=False).pack(), "This option is no longer available."),
        # Beyond the INTEGER range of the ids: refused when the data is read, as a stale button.
        ("sb:d:-5:1", "This button is no longer active."),
        (f"sb:d:{2**40}:1", "This button is no longer active."),
        ("sb:q:1:1", "This button is no longer active."),  # no such action
        ("sb:b:one:1", "This button is no longer active."),
    ):
        await resident.press_callback(shown.message_id, data)
        await harness.settle()
        assert resident.callback_answers[-1]["text"] == answer, data
        assert resident.callback_answers[-1]["show_alert"]
    assert await news_rows(harness) == (0, 0, 0)
    assert resident.message(shown.message_id).edits == 0


async def test_the_screen_in_the_middle_of_filing_loses_no_draft(harness: Harness) -> None:
    resident = await person(harness, 3006)
    await step(harness, resident, "text", "/new")
    await step(harness, resident, "click", BLOCKS_EN[4])
    topic = resident.last_message
    await step(harness, resident, "text", "/subscriptions")
    await step(harness, resident, "click", "✅ Roads")
    assert not await gets(harness, resident, BroadcastAudience(block_id=block(harness, "roads")))
    # The filing dialog is still where it was: its buttons still work.
    assert resident.message(topic.message_id).buttons == topic.buttons
    await resident.click(topic.buttons[0], message_id=topic.message_id)
    await harness.settle()
    assert resident.message(topic.message_id).text.startswith("Describe the problem"), resident.dump()


async def test_without_consent_or_as_staff(harness: Harness) -> None:
    assert harness.app is not None
    services = harness.app.services
    newcomer = harness.emu.user(3007, language_code="en")
    newcomer.open_chat()
    await step(harness, newcomer, "text", "/subscriptions")
    assert newcomer.last_message.text == (
        "To choose your news, please accept the consent to the processing of personal data first."
    )
    assert newcomer.last_message.buttons == ["Read the consent"]

    withdrawn = await person(harness, 3008, district="grozny")
    # A broadcast they got while they consented; then they withdraw the consent.
    sent = await broadcast(harness, [withdrawn], BroadcastAudience(block_id=block(harness, "roads")))
    news = item(withdrawn)
    await services.privacy.withdraw(await services.users.identify(withdrawn.id), withdraw_open=False)
    await step(harness, withdrawn, "text", "/subscriptions")
    assert withdrawn.last_message.text == (
        "To choose your news, please accept the consent to the processing of personal data first."
    )
    assert withdrawn.last_message.buttons == ["Read the consent"]
    # The broadcast's button refuses, nothing changes.
    await withdrawn.press_callback(news.message_id, news.button_data(UNSUBSCRIBE))
    await harness.settle()
    assert withdrawn.callback_answers[-1]["text"] == "Please accept the consent first: /start"
    await withdrawn.press_callback(news.message_id, SubsCb(a=SubsAction.stop).pack())
    await harness.settle()
    assert withdrawn.callback_answers[-1]["text"] == "Please accept the consent first: /start"
    assert await news_rows(harness) == (0, 0, 0)

    # Staff never get broadcasts: refused, with the reason.
    admin = harness.emu.user(ADMIN, language_code="en")
    admin.open_chat()
    await factories.admin(services, ADMIN)
    await step(harness, admin, "text", "/subscriptions")
    assert admin.last_message.text.startswith("News broadcasts go to residents only")
    await admin.press_callback(admin.last_message.message_id, NewsCb(a=NewsAction.unsubscribe, b=sent).pack())
    await harness.settle()
    assert admin.callback_answers[-1]["text"].startswith("News broadcasts go to residents only")
    assert await news_rows(harness) == (0, 0, 0)


async def test_help_and_the_command_menu_name_subscriptions(harness: Harness) -> None:
    assert harness.bot is not None
    resident = await person(harness, 3009)
    await step(harness, resident, "text", "/help")
    assert "/subscriptions" in resident.last_message.text
    for lang in ("ru", "ce", "en"):
        commands = {c.command: c.description for c in await harness.bot.get_my_commands(language_code=lang)}
        assert commands.get("subscriptions"), (lang, commands)


# --- «Unsubscribe from such news» ----------------------------------------------------------------------------


async def test_unsubscribe_from_a_block_broadcast_undo_and_a_second_tap(harness: Harness) -> None:
    resident = await person(harness, 3010, district="grozny")
    neighbour = await person(harness, 3011, district="grozny")
    roads = block(harness, "roads")
    await broadcast(harness, [resident, neighbour], BroadcastAudience(block_id=roads))
    news = item(resident)
    assert news.buttons == [UNSUBSCRIBE]

    await step(harness, resident, "click", UNSUBSCRIBE)
    answer = resident.last_message
    assert answer.text == (
        "🔕 You will no longer get news about «Roads». Other news, and messages about your own appeals, ratings and "
        "polls, still come. To change what you get: /subscriptions"
    )
    assert answer.buttons == ["↩️ Undo"]
    assert [r.block_id for r in await harness.rows(NewsBlockOff)] == [roads]
    assert not await gets(harness, resident, BroadcastAudience(block_id=roads))
    assert await gets(harness, resident, BroadcastAudience(block_id=block(harness, "energy")))
    assert await gets(harness, resident, BroadcastAudience(districts=(district(harness, "grozny"),)))
    assert await gets(harness, neighbour, BroadcastAudience(block_id=roads))  # only their own choice
    # The screen says so too.
    await step(harness, resident, "text", "/subscriptions")
    assert "▫️ Roads" in screen(resident).buttons

    # A second tap: already off, said in a popup; no new message, nothing written.
    count = len(resident.messages)
    await resident.click(UNSUBSCRIBE, message_id=news.message_id)
    await harness.settle()
    assert resident.callback_answers[-1]["text"] == (
        "News about «Roads» is already off. To change what you get: /subscriptions"
    )
    assert len(resident.messages) == count
    assert len(await harness.rows(NewsBlockOff)) == 1

    # Undo: the block is back on; the answer says so and loses its button.
    await resident.click("↩️ Undo", message_id=answer.message_id)
    await harness.settle()
    undone = resident.message(answer.message_id)
    assert undone.text == "↩️ Undone: you get news about «Roads» again. Your choice of news: /subscriptions"
    assert undone.buttons == []
    assert await gets(harness, resident, BroadcastAudience(block_id=roads))
    assert await harness.rows(NewsBlockOff) == []
    # Undo pressed again (a forged or repeated press): already on, nothing changes.
    await resident.press_callback(answer.message_id, NewsUndoCb(b=0, m="", d=False).pack())
    await harness.settle()
    assert resident.callback_answers[-1]["text"].startswith("This news item is unknown")

    # Off again, and «Undo» pressed on an answer Telegram no longer shows (deleted): said in a popup instead.
    await resident.click(UNSUBSCRIBE, message_id=news.message_id)
    await harness.settle()
    assert not await gets(harness, resident, BroadcastAudience(block_id=roads))
    again = resident.last_message
    assert again.buttons == ["↩️ Undo"]
    await resident.press_callback(10_000, again.button_data("↩️ Undo"))
    await harness.settle()
    assert resident.callback_answers[-1]["text"].startswith("↩️ Undone: you get news about «Roads» again.")
    assert await gets(harness, resident, BroadcastAudience(block_id=roads))


async def test_unsubscribe_from_a_region_wide_broadcast_stops_all_news(harness: Harness) -> None:
    resident = await person(harness, 3012, lang="ru", district="argun")
    await broadcast(harness, [resident], BroadcastAudience(), text="Новая услуга в МФЦ")
    await step(harness, resident, "click", "🔕 Отписаться от таких новостей")
    answer = resident.last_message
    assert answer.text.startswith("🔕 Вы больше не будете получать новости ЦУР."), answer.text
    assert answer.buttons == ["↩️ Отменить"]
    (prefs,) = await harness.rows(NewsPrefs)
    assert prefs.stopped
    for audience in (BroadcastAudience(), BroadcastAudience(block_id=block(harness, "roads"))):
        assert not await gets(harness, resident, audience)
    # The screen shows it stopped.
    await step(harness, resident, "text", "/subscriptions")
    assert screen(resident).buttons[-1] == "🔔 Возобновить новости"
    # A second tap: already stopped.
    await resident.click("🔕 Отписаться от таких новостей", message_id=item(resident, "Новая услуга в МФЦ").message_id)
    await harness.settle()
    assert resident.callback_answers[-1]["text"].startswith("Новости уже отключены")
    # Undo.
    await resident.click("↩️ Отменить", message_id=answer.message_id)
    await harness.settle()
    assert resident.message(answer.message_id).text.startswith("↩️ Отменено")
    assert await gets(harness, resident, BroadcastAudience())
    (prefs,) = await harness.rows(NewsPrefs)
    assert not prefs.stopped


async def test_unsubscribe_from_a_district_broadcast_unfollows_that_district(harness: Harness) -> None:
    """«Water outage in Gudermes» (districts, no block): "such news" is Gudermes news. The default district (the
    latest appeal's) becomes a choice without it; region-wide and block news still come; «Undo» brings the defaults
    back exactly; a second tap changes nothing."""
    resident = await person(harness, 3017, district="gudermessky")
    neighbour = await person(harness, 3018, district="gudermessky")
    gudermes, argun = district(harness, "gudermessky"), district(harness, "argun")
    to_gudermes = BroadcastAudience(districts=(gudermes,))
    await broadcast(harness, [resident, neighbour], to_gudermes)
    news = item(resident)

    await step(harness, resident, "click", UNSUBSCRIBE)
    answer = resident.last_message
    assert answer.text == (
        "🔕 You will no longer get news for these districts: Gudermessky District. News for the whole region and "
        "news on topics still come, and so do messages about your own appeals, ratings and polls. To change what "
        "you get: /subscriptions"
    )
    assert answer.buttons == ["↩️ Undo"]
    undo_data = answer.button_data("↩️ Undo")
    (prefs,) = await harness.rows(NewsPrefs)
    assert prefs.districts_chosen and not prefs.stopped
    assert await news_rows(harness) == (1, 0, 0)
    # Out of the next broadcast to Gudermes, still in region-wide and block ones; the neighbour is unaffected.
    assert not await gets(harness, resident, to_gudermes)
    assert await gets(harness, resident, BroadcastAudience())
    assert await gets(harness, resident, BroadcastAudience(block_id=block(harness, "roads")))
    assert await gets(harness, resident, BroadcastAudience(language="en"))
    assert await gets(harness, neighbour, to_gudermes)
    # The screen says it: no district followed, not "stopped".
    await step(harness, resident, "text", "/subscriptions")
    assert "Districts: none chosen. News for the whole region comes in any case." in screen(resident).text
    assert screen(resident).buttons[-2:] == ["📍 Districts: none chosen", "🔕 Stop all news"]

    # A second tap: already so, said in a popup; no new message, nothing written.
    count = len(resident.messages)
    await resident.click(UNSUBSCRIBE, message_id=news.message_id)
    await harness.settle()
    assert resident.callback_answers[-1]["text"] == (
        "You already get no news for these districts: Gudermessky District. To change what you get: /subscriptions"
    )
    assert resident.callback_answers[-1]["show_alert"]
    assert len(resident.messages) == count
    assert await news_rows(harness) == (1, 0, 0)

    # Undo: exactly the defaults again (no choice made), so the latest appeal's district is followed.
    await resident.click("↩️ Undo", message_id=answer.message_id)
    await harness.settle()
    undone = resident.message(answer.message_id)
    assert undone.text == (
        "↩️ Undone: you get news for these districts again: Gudermessky District. Your choice of news: /subscriptions"
    )
    assert undone.buttons == []
    (prefs,) = await harness.rows(NewsPrefs)
    assert not prefs.districts_chosen and not prefs.stopped
    assert await harness.rows(NewsDistrict) == []
    assert await gets(harness, resident, to_gudermes)
    await step(harness, resident, "text", "/subscriptions")
    assert "Districts: Gudermessky District (the district of your latest appeal)" in screen(resident).text
    # The undo pressed again (a stale copy): nothing to undo, nothing changes.
    await resident.press_callback(answer.message_id, undo_data)
    await harness.settle()
    assert resident.callback_answers[-1]["text"].startswith("Nothing to undo")
    (prefs,) = await harness.rows(NewsPrefs)
    assert not prefs.districts_chosen
    assert not await gets(harness, resident, BroadcastAudience(districts=(argun,)))


async def test_unsubscribe_from_a_district_broadcast_with_chosen_districts_in_russian(harness: Harness) -> None:
    """Chosen districts: only those of the broadcast that were followed are unfollowed, and only they come back;
    a forged «Undo» can only follow districts of that broadcast."""
    resident = await person(harness, 3019, lang="ru")
    grozny, argun, gudermes, vedeno = (district(harness, c) for c in ("grozny", "argun", "gudermessky", "vedensky"))
    await step(harness, resident, "text", "/subscriptions")
    await step(harness, resident, "click", "📍 Районы: не выбраны")
    for name in ("▫️ г. Грозный", "▫️ г. Аргун", "▫️ Гудермесский район"):
        await step(harness, resident, "click", name)
    audience = BroadcastAudience(districts=(gudermes, grozny, vedeno))
    sent = await broadcast(harness, [resident], audience, text="Плановое отключение воды")
    await step(harness, resident, "click", "🔕 Отписаться от таких новостей")
    answer = resident.last_message
    assert answer.text.startswith("🔕 Вы больше не будете получать новости этих районов: г. Грозный, Гудермесский район."), (
        answer.text
    )
    assert answer.buttons == ["↩️ Отменить"]
    assert {r.district_id for r in await harness.rows(NewsDistrict)} == {argun}
    assert not await gets(harness, resident, audience)
    assert await gets(harness, resident, BroadcastAudience(districts=(argun,)))
    assert await gets(harness, resident, BroadcastAudience())

    await resident.click("↩️ Отменить", message_id=answer.message_id)
    await harness.settle()
    assert resident.message(answer.message_id).text.startswith("↩️ Отменено"), resident.message(answer.message_id).text
    assert {r.district_id for r in await harness.rows(NewsDistrict)} == {grozny, argun, gudermes}
    # A forged «Undo» (every bit set) can only follow districts the broadcast was about: the person's own choice.
    await resident.press_callback(answer.message_id, NewsUndoCb(b=sent, m="ffffffff", d=False).pack())
    await harness.settle()
    assert {r.district_id for r in await harness.rows(NewsDistrict)} == {grozny, argun, gudermes, vedeno}
    assert not await gets(harness, resident, BroadcastAudience(districts=(district(harness, "shatoysky"),)))


async def test_forged_unsubscribe_presses(harness: Harness) -> None:
    resident = await person(harness, 3013)
    other = await person(harness, 3014)
    others = await broadcast(harness, [other], BroadcastAudience(block_id=block(harness, "roads")), text="Only for them")
    await broadcast(harness, [resident], BroadcastAudience(block_id=block(harness, "energy")))
    news = item(resident)
    for data, answer in (
        (NewsCb(a=NewsAction.unsubscribe, b=99_999).pack(), "This news item is unknown, so nothing was changed."),
        (f"nw:u:{2**63}", "This button is no longer active."),  # beyond the INTEGER range: refused when read
        (NewsCb(a=NewsAction.unsubscribe, b=others).pack(), "This news item is unknown, so nothing was changed."),
        (NewsUndoCb(b=others, m="1", d=True).pack(), "This news item is unknown, so nothing was changed."),
        ("nu:1:zz:0", "This button is no longer active."),
        ("nw:z:1", "This button is no longer active."),
        ("nw:u:abc", "This button is no longer active."),
        ("nw:x:1", "This button is no longer active."),
    ):
        await resident.press_callback(news.message_id, data)
        await harness.settle()
        assert resident.callback_answers[-1]["text"].startswith(answer), data
        assert resident.callback_answers[-1]["show_alert"]
    assert await news_rows(harness) == (0, 0, 0)
    assert resident.last_message.message_id == news.message_id  # no answer message
    assert await gets(harness, resident, BroadcastAudience(block_id=block(harness, "roads")))


async def test_a_press_is_stored_before_the_screen_says_so(harness: Harness) -> None:
    """A press is stored before it is shown: a restart right after it keeps it."""
    resident = await person(harness, 3015, district="grozny")
    await step(harness, resident, "text", "/subscriptions")
    await step(harness, resident, "click", "✅ Education")
    await harness.restart()
    assert not await gets(harness, resident, BroadcastAudience(block_id=block(harness, "education")))
    await step(harness, resident, "click", "▫️ Education")
    assert "✅ Education" in screen(resident).buttons
    async with await harness.session() as session:
        assert (await session.execute(select(NewsBlockOff))).first() is None
