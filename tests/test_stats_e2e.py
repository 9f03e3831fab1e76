"""/stats end to end through the emulator: the report builder (metric, period or typed dates, dimensions, filters),
the table, the chart and the exports under it, the scopes of a block head and a supervisor, the presets (save, open,
rename, delete, schedule, recipients) and every bad input the issue lists."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from aiogram_dialog.utils import CB_SEP, remove_intent_id
from openpyxl import load_workbook

from bot.callbacks import StatsAction, StatsCb
from bot.domain import Role
from emulator import EmulatedUser
from emulator.models import BotMessage
from storage.models import AuditEntry, StatPreset, UserRole
from tests.conftest import Harness
from tests.test_staff_e2e import category_id, service_appeal

ADMIN = 9000


@pytest.fixture
def sections() -> dict[str, dict[str, Any]]:
    return {"bot": {"admins": [ADMIN]}}


async def member(
    harness: Harness, tg_id: int, role: Role | None, agency_id: int | None = None, block_id: int | None = None,
    name: str | None = None,
) -> EmulatedUser:
    """A person with a role (written as an accepted invite writes it), English, their chat with the bot open."""
    assert harness.app is not None
    services = harness.app.services
    user = harness.emu.user(tg_id, first_name=name or f"Person {tg_id}", language_code="en")
    user.open_chat()
    actor = await services.users.identify(tg_id)
    await services.users.set_locale(actor, "en")
    if role is not None:
        async with await harness.session() as session:
            session.add(
                UserRole(
                    user_id=actor.id, role=role.value, agency_id=agency_id, block_id=block_id,
                    granted_at=harness.clock.now(),
                )
            )
            if name:
                from storage.models import User

                row = await session.get(User, actor.id)
                assert row is not None
                row.full_name = name
            await session.commit()
    return user


async def step(harness: Harness, user: EmulatedUser, action: str, value: str) -> None:
    if action == "click":
        await user.click(value)
    else:
        await user.send_text(value)
    await harness.settle()


def builder(user: EmulatedUser) -> BotMessage:
    """The builder's screen: the latest message showing it (a notice may stand above it)."""
    found = [m for m in user.messages if "📊 Statistics\nMetric:" in (m.text or "") and not m.deleted]
    assert found, user.messages[-3:]
    return found[-1]


def tables(user: EmulatedUser) -> list[BotMessage]:
    return [m for m in user.messages if m.kind == "text" and "⬇️ XLSX" in m.buttons]


def block_id(harness: Harness, code: str) -> int:
    assert harness.app is not None
    return next(b.id for b in harness.app.services.directory.blocks() if b.code == code)


def names(harness: Harness) -> dict[str, str]:
    assert harness.app is not None
    directory = harness.app.services.directory
    found = {d.code: d.name("en") for d in directory.districts()}
    for block in directory.blocks():
        found[block.code] = block.name("en")
        found.update({c.code: c.name("en") for c in directory.categories(block.id)})
    return found


async def click_paged(harness: Harness, user: EmulatedUser, text: str) -> None:
    """Press `text` on a paged picker, turning its pages (">") until it shows."""
    for _page in range(10):
        if text in user.last_message.buttons:
            await step(harness, user, "click", text)
            return
        await step(harness, user, "click", ">")
    raise AssertionError(f"no {text!r} on any page: {user.last_message.buttons}")


def table_lines(message: BotMessage) -> dict[str, str]:
    """The rows of a table message: label → value (the last cell)."""
    found = {}
    for line in (message.text or "").splitlines():
        cells = line.rsplit(None, 1)
        if len(cells) == 2 and line.startswith(" ") is False and "  " in line:
            found[cells[0].strip()] = cells[1]
    return found


def file_of(harness: Harness, message: BotMessage) -> bytes:
    assert message.file_id is not None
    return harness.emu.state.files[message.file_id].content


async def open_builder(harness: Harness, user: EmulatedUser) -> None:
    await step(harness, user, "text", "/stats")
    assert builder(user).text.startswith("📊 Statistics"), user.last_message.text


async def test_an_analyst_builds_a_slice_sees_the_table_and_the_chart_and_exports_it(harness: Harness) -> None:
    n = names(harness)
    analyst = await member(harness, 7001, Role.analyst)
    # 10 days ago: water in Vedeno ×1, outside "7 days"; now: water in Grozny ×3, in Argun ×2, roads in Grozny ×1
    # (another block).
    await service_appeal(harness, 8300, "housing_water", "vedensky")
    harness.clock.advance(days=10)
    for i in range(3):
        await service_appeal(harness, 8000 + i, "housing_water", "grozny")
    for i in range(2):
        await service_appeal(harness, 8100 + i, "housing_water", "argun")
    road = next(c for c in names(harness) if c.startswith("roads_"))
    await service_appeal(harness, 8200, road, "grozny")

    await open_builder(harness, analyst)
    screen = builder(analyst).text
    assert "Metric: Appeals received" in screen and "Period: 30 days" in screen
    assert "Dimensions: none" in screen and "Filters: none" in screen
    await step(harness, analyst, "click", "📅 Period")
    await step(harness, analyst, "click", "7 days")
    await step(harness, analyst, "click", "🧩 Dimensions")
    await step(harness, analyst, "click", "District")
    assert "1. District" in analyst.last_message.buttons
    await step(harness, analyst, "click", "✅ Done")
    await step(harness, analyst, "click", "🔎 Filters")
    await step(harness, analyst, "click", "Thematic block")
    await step(harness, analyst, "click", n["housing"])
    assert f"✅ · {n['housing']}" in analyst.last_message.buttons or f"✅ {n['housing']}" in " ".join(
        analyst.last_message.buttons
    ), analyst.last_message.buttons
    await step(harness, analyst, "click", "✅ Done")
    assert "Thematic block (1)" in analyst.last_message.buttons
    await step(harness, analyst, "click", "⬅️ Back")
    screen = builder(analyst).text
    assert "Period: 7 days" in screen and "Dimensions: District" in screen
    assert f"Filters: Thematic block: {n['housing']}" in screen

    await step(harness, analyst, "click", "▶️ Show")
    [table] = tables(analyst)
    rows = table_lines(table)
    assert rows[n["grozny"]] == "3" and rows[n["argun"]] == "2", table.text
    assert rows["Total"] == "5", table.text
    assert n["vedensky"] not in table.text  # 10 days ago: outside the 7 days
    assert table.buttons == ["⬇️ XLSX", "⬇️ CSV", "💾 Save as preset"]
    photo = analyst.messages[analyst.messages.index(table) + 1]
    assert photo.kind == "photo" and file_of(harness, photo)[:8] == b"\x89PNG\r\n\x1a\n"
    # The builder follows the results, still usable.
    assert analyst.last_message.text.startswith("📊 Statistics")
    await step(harness, analyst, "click", "🧩 Dimensions")
    await step(harness, analyst, "click", "Category")
    assert "1. District" in analyst.last_message.buttons and "2. Category" in analyst.last_message.buttons
    await step(harness, analyst, "click", "Day")  # a third: refused, the two stay
    assert analyst.callback_answers[-1]["text"] == "At most 2 dimensions: remove one first."
    await step(harness, analyst, "click", "1. District")  # removed: Category is the first now
    assert "1. Category" in analyst.last_message.buttons and "District" in analyst.last_message.buttons

    # The exports of the table shown: a document each, named after the metric and the period.
    today = harness.clock.now().astimezone(harness.settings.tz).date()
    stem = f"stats-received-{today - timedelta(days=6):%Y-%m-%d}-{today:%Y-%m-%d}"
    await step(harness, analyst, "click", "⬇️ XLSX")
    document = analyst.last_message
    assert document.kind == "document" and document.raw["document"]["file_name"] == f"{stem}.xlsx"
    # Read back: the header row, every row with its number as a number, the total.
    sheet = load_workbook(io.BytesIO(file_of(harness, document))).active
    assert sheet is not None
    cells = [tuple(row) for row in sheet.iter_rows(values_only=True) if any(v is not None for v in row)]
    header = cells.index(("District", "Appeals received"))
    assert cells[header + 1:] == [(n["grozny"], 3), (n["argun"], 2), ("Total", 5)], cells
    await step(harness, analyst, "click", "⬇️ CSV")
    document = analyst.last_message
    assert document.kind == "document" and document.raw["document"]["file_name"] == f"{stem}.csv"
    rows = list(csv.reader(io.StringIO(file_of(harness, document).decode("utf-8-sig"))))
    assert rows == [["District", "Appeals received"], [n["grozny"], "3"], [n["argun"], "2"], ["Total", "5"]]
    # The slice was recomputed at the press: an appeal filed since is in the export, not in the old table.
    await service_appeal(harness, 8400, "housing_water", "argun")
    await step(harness, analyst, "click", "⬇️ CSV")
    rows = list(csv.reader(io.StringIO(file_of(harness, analyst.last_message).decode("utf-8-sig"))))
    assert rows[-1] == ["Total", "6"]


async def test_typed_dates_refused_with_the_reason_and_the_prompt_stays(harness: Harness) -> None:
    analyst = await member(harness, 7001, Role.analyst)
    await service_appeal(harness, 8000)
    today = harness.clock.now().astimezone(harness.settings.tz).date()
    await open_builder(harness, analyst)
    await step(harness, analyst, "click", "📅 Period")
    await step(harness, analyst, "click", "Two dates…")
    assert "Type the first and the last day of the period" in analyst.last_message.text
    cases = [
        ("yesterday and today", "Please type two dates as DD.MM.YYYY DD.MM.YYYY"),
        ("31.02.2026 01.03.2026", "Please type two dates as DD.MM.YYYY DD.MM.YYYY"),
        (f"{today:%d.%m.%Y} {today + timedelta(days=1):%d.%m.%Y}", f"A period cannot end after today ({today:%d.%m.%Y})."),
        (f"{today:%d.%m.%Y} {today - timedelta(days=1):%d.%m.%Y}", "The first date is after the second one"),
        (f"{today.replace(year=today.year - 20):%d.%m.%Y} {today:%d.%m.%Y}", "A period can cover at most 1830 days."),
        ("01.01.0001 01.01.0001", "The statistics start in 2000: type a later date."),
    ]
    for typed, answer in cases:
        await step(harness, analyst, "text", typed)
        assert answer in analyst.last_message.text, (typed, analyst.last_message.text)
        # The same prompt, below the reason: the next try is typed at once.
        assert "Type the first and the last day of the period" in analyst.last_message.text
    first = today - timedelta(days=3)
    await step(harness, analyst, "text", f"{first:%d.%m.%Y} {today:%d.%m.%Y}")
    assert f"Period: {first:%d.%m.%Y}–{today:%d.%m.%Y}" in builder(analyst).text
    await step(harness, analyst, "click", "▶️ Show")
    [table] = tables(analyst)
    assert f"Period: {first:%d.%m.%Y}–{today:%d.%m.%Y}" in table.text
    assert "1" in table.text.splitlines()[-1]


async def test_a_block_head_sees_only_the_block_and_cannot_ask_for_another(harness: Harness) -> None:
    n = names(harness)
    housing = block_id(harness, "housing")
    head = await member(harness, 7002, Role.block_head, block_id=housing)
    await service_appeal(harness, 8000, "housing_water", "grozny")
    await service_appeal(harness, 8001, "housing_water", "argun")
    road = next(c for c in n if c.startswith("roads_"))
    await service_appeal(harness, 8002, road, "grozny")
    await open_builder(harness, head)
    assert f"Only: block {n['housing']}" in builder(head).text
    await step(harness, head, "click", "🔎 Filters")
    assert "Thematic block" not in head.last_message.buttons  # imposed, not a choice
    await step(harness, head, "click", "Category")
    offered = " ".join(head.last_message.buttons)
    assert n["housing_water"] in offered and n[road] not in offered
    # A forged press with a category of another block: refused, with the reason; nothing kept.
    screen = head.last_message
    intent, _data = remove_intent_id(screen.inline_keyboard[0][0][1] or "")
    await head.press_callback(screen.message_id, f"{intent}{CB_SEP}value:{category_id(harness, road)}")
    await harness.settle()
    assert head.callback_answers[-1]["text"] == "You can see the statistics of your own block only."
    await step(harness, head, "click", "✅ Done")
    await step(harness, head, "click", "⬅️ Back")
    assert "Filters: none" in builder(head).text
    await step(harness, head, "click", "▶️ Show")
    [table] = tables(head)
    assert table.text.splitlines()[-1].strip().endswith("2"), table.text  # the road appeal is not counted
    assert [a for a in await harness.rows(AuditEntry) if a.details.get("refused", "").startswith("stats")] == []


async def test_a_supervisor_sees_only_the_agency(harness: Harness) -> None:
    assert harness.app is not None
    services = harness.app.services
    coordinator = await member(harness, 7010, Role.coordinator)
    routed = [await service_appeal(harness, 8000 + i, "housing_water", "grozny") for i in range(2)]
    road = next(c for c in names(harness) if c.startswith("roads_"))
    other = await service_appeal(harness, 8100, road, "argun")
    actor = await services.users.identify(coordinator.id)
    agencies = [await services.coordination.route(actor, a.id) for a in (*routed, other)]
    assert agencies[0] == agencies[1] != agencies[2]
    agency_name = services.directory.agency(agencies[0]).name("en")  # type: ignore[union-attr]
    supervisor = await member(harness, 7011, Role.supervisor, agency_id=agencies[0])
    await open_builder(harness, supervisor)
    assert f"Only: agency {agency_name}" in builder(supervisor).text
    await step(harness, supervisor, "click", "🔎 Filters")
    assert "Agency" not in supervisor.last_message.buttons
    await step(harness, supervisor, "click", "⬅️ Back")
    await step(harness, supervisor, "click", "▶️ Show")
    [table] = tables(supervisor)
    assert table.text.splitlines()[-1].strip() == "2", table.text


async def test_bad_input_text_for_buttons_non_stats_people_forged_presses_and_an_empty_export(harness: Harness) -> None:
    resident = await member(harness, 8500, None)
    editor = await member(harness, 7003, Role.editor)
    for person in (resident, editor):
        await step(harness, person, "text", "/stats")
        assert "Statistics are not available to you" in person.last_message.text
        assert not any((m.text or "").startswith("📊 Statistics") for m in person.messages)
    analyst = await member(harness, 7001, Role.analyst)
    await open_builder(harness, analyst)
    await step(harness, analyst, "text", "hello")
    assert "Please choose one of the buttons." in analyst.last_message.text
    assert analyst.last_message.text.startswith("Please choose") and "📊 Statistics" in analyst.last_message.text
    # Forged metric, period, dimension and filter values: refused, the slice unchanged.
    screen = builder(analyst)
    intent, _data = remove_intent_id(screen.inline_keyboard[0][0][1] or "")
    await step(harness, analyst, "click", "📏 Metric")
    await analyst.press_callback(analyst.last_message.message_id, f"{intent}{CB_SEP}metric:everything")
    await harness.settle()
    assert analyst.callback_answers[-1]["text"] == "This option is no longer available."
    await step(harness, analyst, "click", "⬅️ Back")
    await step(harness, analyst, "click", "📅 Period")
    await analyst.press_callback(analyst.last_message.message_id, f"{intent}{CB_SEP}period:custom")
    await harness.settle()
    assert analyst.callback_answers[-1]["text"] == "This option is no longer available."
    await step(harness, analyst, "click", "⬅️ Back")
    await step(harness, analyst, "click", "🧩 Dimensions")
    await analyst.press_callback(analyst.last_message.message_id, f"{intent}{CB_SEP}dim:resident_name")
    await harness.settle()
    assert analyst.callback_answers[-1]["text"] == "This option is no longer available."
    await step(harness, analyst, "click", "✅ Done")
    await step(harness, analyst, "click", "🔎 Filters")
    await step(harness, analyst, "click", "District")
    for value in ("999999", "abc", "99999999999999999999"):
        await analyst.press_callback(analyst.last_message.message_id, f"{intent}{CB_SEP}value:{value}")
        await harness.settle()
        assert analyst.callback_answers[-1]["text"] == "This option is no longer available.", value
    await step(harness, analyst, "click", "✅ Done")
    await step(harness, analyst, "click", "⬅️ Back")
    screen = builder(analyst).text
    assert "Metric: Appeals received" in screen and "Dimensions: none" in screen and "Filters: none" in screen

    # An empty slice: the table says so; its exports are refused with the reason, no file is sent.
    await step(harness, analyst, "click", "🧩 Dimensions")
    await step(harness, analyst, "click", "District")
    await step(harness, analyst, "click", "✅ Done")
    await step(harness, analyst, "click", "▶️ Show")
    [table] = tables(analyst)
    assert "No appeals in this slice." in table.text
    for button in ("⬇️ XLSX", "⬇️ CSV"):
        await step(harness, analyst, "click", button)
        assert analyst.callback_answers[-1]["text"] == "Nothing to export: the slice is empty."
    assert not [m for m in analyst.messages if m.kind == "document"]
    # A forged table number: too old or never shown.
    await analyst.press_callback(table.message_id, StatsCb(a=StatsAction.xlsx, n=777).pack())
    await harness.settle()
    assert analyst.callback_answers[-1]["text"] == "This table is too old: press «▶️ Show» again."
    # The buttons of a table pressed by someone else (forwarded data) or after the role is gone: refused.
    async with await harness.session() as session:
        from sqlalchemy import delete

        await session.execute(delete(UserRole).where(UserRole.role == Role.analyst.value))
        await session.commit()
    await step(harness, analyst, "click", "⬇️ CSV")
    assert "Statistics are not available to you" in analyst.callback_answers[-1]["text"]


async def test_presets_save_open_rename_schedule_recipients_and_delete(harness: Harness) -> None:
    n = names(harness)
    housing = block_id(harness, "housing")
    analyst = await member(harness, 7001, Role.analyst, name="Aslan Analyst")
    leader = await member(harness, 7004, Role.leadership, name="Lena Leader")
    head = await member(harness, 7002, Role.block_head, block_id=housing, name="Hava Housing")
    await member(harness, 7005, Role.block_head, block_id=block_id(harness, "energy"), name="Eli Energy")
    await member(harness, 7006, Role.editor, name="Edda Editor")
    for i in range(2):
        await service_appeal(harness, 8000 + i, "housing_water", "grozny")
    await open_builder(harness, analyst)
    await step(harness, analyst, "click", "📅 Period")
    await step(harness, analyst, "click", "This month")
    await step(harness, analyst, "click", "🔎 Filters")
    await step(harness, analyst, "click", "Thematic block")
    await step(harness, analyst, "click", n["housing"])
    await step(harness, analyst, "click", "✅ Done")
    await step(harness, analyst, "click", "⬅️ Back")
    await step(harness, analyst, "click", "▶️ Show")
    # «Save as preset» under the table: a name is asked, a duplicate and an empty or long name are refused.
    await step(harness, analyst, "click", "💾 Save as preset")
    assert "Type a name for the preset" in analyst.last_message.text
    await step(harness, analyst, "text", "x" * 65)
    assert "The name is too long: at most 64 characters." in analyst.last_message.text
    await step(harness, analyst, "text", "Water <b>month</b>")
    assert "Saved as the preset «Water &lt;b&gt;month&lt;/b&gt;»" in (analyst.messages[-2].html or ""), analyst.messages[-2]
    [preset] = await harness.rows(StatPreset)
    assert (preset.name, preset.schedule, preset.recipients) == ("Water <b>month</b>", None, [preset.owner_id])
    assert preset.spec["period"] == "this_month" and preset.spec["filters"] == {"block": [housing]}
    await step(harness, analyst, "click", "💾 Save as preset")
    await step(harness, analyst, "text", "Water <b>month</b>")
    assert "You already have a preset with this name" in analyst.last_message.text
    await step(harness, analyst, "click", "⬅️ Back")
    assert len(await harness.rows(StatPreset)) == 1

    # The list, the card, «Show» for the same named period relative to today.
    await open_builder(harness, analyst)
    await step(harness, analyst, "click", "⭐ Presets")
    await step(harness, analyst, "click", "Water <b>month</b>")
    card = analyst.last_message.text
    assert "Preset «Water <b>month</b>»" in card and f"Filters: Thematic block: {n['housing']}" in card
    assert "Sent: not scheduled, to 1 people." in card
    harness.clock.advance(days=40)
    await service_appeal(harness, 8100, "housing_water", "argun")
    shown = len(tables(analyst))
    await step(harness, analyst, "click", "▶️ Show")
    assert len(tables(analyst)) == shown + 1
    table = tables(analyst)[-1]
    today = harness.clock.now().astimezone(harness.settings.tz).date()
    assert f"Period: {today.replace(day=1):%d.%m.%Y}–{today:%d.%m.%Y}" in table.text
    assert table.text.splitlines()[-1].strip() == "1", table.text  # this month's one appeal, not the old two
    assert "Period: This month" in builder(analyst).text

    # Rename (a clash refused), schedule, recipients.
    await step(harness, analyst, "click", "⭐ Presets")
    await step(harness, analyst, "click", "Water <b>month</b>")
    await step(harness, analyst, "click", "✏️ Rename")
    await step(harness, analyst, "text", "y" * 70)
    assert "The name is too long: at most 64 characters." in analyst.last_message.text
    await step(harness, analyst, "text", "Housing monthly")
    assert "Renamed to «Housing monthly»." in analyst.last_message.text
    await step(harness, analyst, "click", "⏰ Schedule")
    await step(harness, analyst, "click", "Weekly (Mondays)")
    assert analyst.callback_answers[-1]["text"] == "Schedule: Weekly (Mondays)."
    [preset] = await harness.rows(StatPreset)
    assert (preset.name, preset.schedule) == ("Housing monthly", "weekly")
    await step(harness, analyst, "click", "👥 Recipients")
    # The housing block's head may read it; the energy block's head and an editor may not: not offered.
    admin_id = (await harness.app.services.users.identify(ADMIN)).id
    assert analyst.last_message.buttons == ["✅ you", "Hava Housing", "Lena Leader", f"user № {admin_id}", "⬅️ Back"]
    assert "Eli Energy" not in analyst.last_message.buttons and "Edda Editor" not in analyst.last_message.buttons
    await step(harness, analyst, "click", "Lena Leader")
    await step(harness, analyst, "click", "Hava Housing")
    await step(harness, analyst, "click", "✅ you")
    assert analyst.last_message.buttons[:3] == ["you", "✅ Hava Housing", "✅ Lena Leader"]
    ids = {u.tg_id: u.id for u in await harness.rows(__import__("storage.models", fromlist=["User"]).User)}
    [preset] = await harness.rows(StatPreset)
    assert preset.recipients == [ids[leader.id], ids[head.id]]
    # A forged person (the energy head) is refused; the last recipient cannot be removed.
    screen = analyst.last_message
    intent, _data = remove_intent_id(screen.inline_keyboard[0][0][1] or "")
    await analyst.press_callback(screen.message_id, f"{intent}{CB_SEP}person:{ids[7005]}")
    await harness.settle()
    assert analyst.callback_answers[-1]["text"] == "This option is no longer available."
    await step(harness, analyst, "click", "✅ Lena Leader")
    await step(harness, analyst, "click", "✅ Hava Housing")
    assert analyst.callback_answers[-1]["text"] == "A scheduled preset needs at least one recipient."
    [preset] = await harness.rows(StatPreset)
    assert preset.recipients == [ids[head.id]]
    await step(harness, analyst, "click", "⬅️ Back")
    await step(harness, analyst, "click", "⏰ Schedule")
    await step(harness, analyst, "click", "Off")
    [preset] = await harness.rows(StatPreset)
    assert preset.schedule is None

    # Delete: asked first; «No» keeps it, «Yes» removes it.
    await step(harness, analyst, "click", "🗑 Delete")
    assert "Delete the preset «Housing monthly»?" in analyst.last_message.text
    await step(harness, analyst, "click", "No, keep it")
    assert len(await harness.rows(StatPreset)) == 1
    await step(harness, analyst, "click", "🗑 Delete")
    await step(harness, analyst, "click", "🗑 Yes, delete")
    assert await harness.rows(StatPreset) == []
    assert "Presets</b>: 0" in (analyst.last_message.html or "")

    # «Save the current slice» from the presets' list: the builder's slice (This month, the housing block).
    await step(harness, analyst, "click", "💾 Save the current slice")
    await step(harness, analyst, "text", "From the list")
    assert "Saved as the preset «From the list»" in analyst.messages[-2].text
    [preset] = await harness.rows(StatPreset)
    assert preset.spec["period"] == "this_month" and preset.spec["filters"] == {"block": [housing]}
    # Back on the list, which shows it.
    assert analyst.last_message.text.startswith("Presets: 1.") and "From the list" in analyst.last_message.buttons


async def test_forged_and_unreadable_presets(harness: Harness) -> None:
    analyst = await member(harness, 7001, Role.analyst)
    other = await member(harness, 7003, Role.analyst)
    assert harness.app is not None
    services = harness.app.services
    theirs = await services.presets.save(await services.users.identify(other.id), "Theirs", __import__(
        "bot.domain", fromlist=["SliceSpec"]
    ).SliceSpec())
    mine = await services.presets.save(await services.users.identify(analyst.id), "Mine", theirs.spec)  # type: ignore[arg-type]
    await open_builder(harness, analyst)
    await step(harness, analyst, "click", "⭐ Presets")
    assert "Theirs" not in analyst.last_message.buttons
    screen = analyst.last_message
    intent, _data = remove_intent_id(screen.inline_keyboard[0][0][1] or "")
    for forged in (str(theirs.id), "424242", "x1"):
        await analyst.press_callback(screen.message_id, f"{intent}{CB_SEP}preset:{forged}")
        await harness.settle()
        assert analyst.callback_answers[-1]["text"] in ("Preset not found.", "This option is no longer available.")
    assert analyst.callback_answers[-3]["text"] == "Preset not found."
    # A stored spec that no longer reads: the card says so and offers only «Delete».
    async with await harness.session() as session:
        row = await session.get(StatPreset, mine.id)
        assert row is not None
        row.spec = {"metric": "resident_names", "dims": ["passport"]}
        await session.commit()
    await step(harness, analyst, "click", "Mine")
    assert "This preset can no longer be read: delete it and save the slice again." in analyst.last_message.text
    assert "▶️ Show" not in analyst.last_message.buttons and "⏰ Schedule" not in analyst.last_message.buttons
    await step(harness, analyst, "click", "🗑 Delete")
    await step(harness, analyst, "click", "🗑 Yes, delete")
    assert [p.name for p in await harness.rows(StatPreset)] == ["Theirs"]


async def test_the_staff_menu_offers_statistics_to_every_statistics_role(harness: Harness) -> None:
    housing = block_id(harness, "housing")
    cases = [
        (await member(harness, 7001, Role.analyst), True),
        (await member(harness, 7002, Role.block_head, block_id=housing), True),
        (await member(harness, 7004, Role.leadership), True),
        (await member(harness, 7003, Role.editor), False),
    ]
    for person, offered in cases:
        await step(harness, person, "text", "/staff")
        assert ("📊 Statistics" in person.last_message.buttons) == offered, person.last_message.buttons
        if offered:
            await step(harness, person, "click", "📊 Statistics")
            assert builder(person) is person.last_message


async def test_an_export_covers_the_days_of_its_table_after_midnight(harness: Harness) -> None:
    """A «Today» table exported the next day is the table's day, not the new «today»."""
    analyst = await member(harness, 7001, Role.analyst)
    await service_appeal(harness, 8000)
    day = harness.clock.now().astimezone(harness.settings.tz).date()
    await open_builder(harness, analyst)
    await step(harness, analyst, "click", "📅 Period")
    await step(harness, analyst, "click", "Today")
    await step(harness, analyst, "click", "▶️ Show")
    [table] = tables(analyst)
    harness.clock.advance(days=1)
    await service_appeal(harness, 8001)  # filed the next day: not in the table's day
    await analyst.click("⬇️ CSV", message_id=table.message_id)
    await harness.settle()
    document = analyst.last_message
    assert document.raw["document"]["file_name"] == f"stats-received-{day:%Y-%m-%d}-{day:%Y-%m-%d}.csv"
    rows = list(csv.reader(io.StringIO(file_of(harness, document).decode("utf-8-sig"))))
    assert rows[-1][-1] == "1", rows
