"""What each outbox template says, rendered in the recipient's language when it is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.callbacks import MyAction, MyCb, ReplyCb, StaffAction, StaffCb
from bot.config import Settings
from bot.i18n import N_
from bot.outbox import Rendered
from bot.services.directory import DirectoryService
from bot.texts import clip, local_date, place, status_name, topic

REASONS = {
    "obscene": N_("the appeal contains obscene language or threats (59-FZ, art. 11 part 3)"),
    "unreadable": N_("the text cannot be read or has no discernible substance (59-FZ, art. 11 parts 4 and 4.1)"),
    "no_address": N_("the address or place of the problem is not given, so it cannot be checked"),
    "spam": N_("the message is spam or advertising"),
    "repeated": N_("it repeats an earlier appeal that was answered, with no new arguments (59-FZ, art. 11 part 5)"),
    "out_of_competence": N_("the question is outside the competence of the region's bodies"),
}
ROLES = {
    "admin": N_("administrator"),
    "coordinator": N_("ЦУР coordinator"),
    "official": N_("official"),
    "supervisor": N_("head of agency"),
    "analyst": N_("analyst"),
    "editor": N_("editor"),
}


def button(text: str, data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data)]])


def make_renderer(
    i18n: I18n, settings: Settings, directory: DirectoryService
) -> Callable[[str, dict[str, Any], str, int], Awaitable[Rendered | None]]:
    async def render(template: str, params: dict[str, Any], locale: str, user_id: int) -> Rendered | None:
        with i18n.use_locale(locale):
            return _render(template, params, i18n.gettext, settings) or _render_deadlines(
                template, params, i18n.gettext, settings, directory, locale
            )

    return render


def _when(value: str | None, settings: Settings) -> str:
    return local_date(datetime.fromisoformat(value), settings.tz) if value else "—"


def _render_deadlines(
    template: str, p: dict[str, Any], _: Callable[[str], str], settings: Settings, directory: DirectoryService, lang: str
) -> Rendered | None:
    """Reminders, escalations and digests."""
    number = escape(str(p.get("number", "")))
    staff = StaffCb(action=StaffAction.open, id=int(p.get("appeal_id", 0))).pack()
    due = _when(p.get("deadline"), settings)
    if template == "assigned":
        district = directory.district(int(p.get("district_id") or 0))
        lines = [
            _("New appeal № {number} for your agency.").format(number=number),
            _("<b>Topic:</b> {topic}").format(topic=escape(topic(directory, int(p.get("category_id") or 0), lang))),
            _("<b>District:</b> {district}").format(district=escape(district.name(lang)) if district else "—"),
            _("<b>Place:</b> {place}").format(place=place(p.get("address"), p.get("lat"), p.get("lon"))),
            _("<b>Due:</b> {date}").format(date=due),
            "",
            clip(str(p.get("text", "")), 700),
        ]
        appeal_id = int(p.get("appeal_id", 0))
        markup = InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text=_("Open"), callback_data=staff)],
                [
                    InlineKeyboardButton(
                        text=_("🛠 Take in work"), callback_data=StaffCb(action=StaffAction.take, id=appeal_id).pack()
                    )
                ],
            ]
        )
        return Rendered("\n".join(lines), markup)
    if template == "reminder_half":
        text = _("⏳ Half of the time for appeal № {number} is used; the answer is due {date}.")
        return Rendered(text.format(number=number, date=due), button(_("Open"), staff))
    if template == "reminder_day_before":
        text = _("⏳ Appeal № {number}: the answer is due tomorrow, {date}.")
        return Rendered(text.format(number=number, date=due), button(_("Open"), staff))
    if template == "reminder_deadline":
        text = _("⏰ Appeal № {number}: today, {date}, is the last day for the answer.")
        return Rendered(text.format(number=number, date=due), button(_("Open"), staff))
    if template == "escalation":
        text = _("🚨 Appeal № {number} is overdue ({days} d.): the answer was due {date}.")
        return Rendered(text.format(number=number, days=p.get("days", 1), date=due), button(_("Open"), staff))
    if template == "forward_due":
        text = _("📮 Appeal № {number} is not yet with the competent body; under 59-FZ it must be forwarded by {date}.")
        return Rendered(text.format(number=number, date=_when(p.get("due"), settings)), button(_("Open"), staff))
    if template == "digest_official":
        text = _("📋 Your agency today: due today {due_today}, overdue {overdue}, new {new}. /staff to open the inbox.")
        return Rendered(text.format(due_today=p.get("due_today", 0), overdue=p.get("overdue", 0), new=p.get("new", 0)))
    if template == "digest_coordinator":
        rows = p.get("overdue", [])
        if not rows:
            return Rendered(_("📋 No overdue appeals today."))
        lines = [_("📋 Overdue appeals by agency:")]
        for agency_id, count in rows:
            agency = directory.agency(int(agency_id)) if agency_id else None
            lines.append(f"• {escape(agency.name(lang)) if agency else '—'}: {count}")
        return Rendered("\n".join(lines))
    if template == "weekly_summary":
        lines = [_("📊 Week {week}: appeals by status").format(week=escape(str(p.get("week", ""))))]
        lines += [f"• {status_name(code)}: {count}" for code, count in sorted(p.get("statuses", {}).items())]
        lines.append(_("By agency:"))
        for agency_id, count in p.get("agencies", []):
            agency = directory.agency(int(agency_id))
            lines.append(f"• {escape(agency.name(lang)) if agency else '—'}: {count}")
        return Rendered("\n".join(lines))
    return None


def _render(template: str, p: dict[str, Any], _: Callable[[str], str], settings: Settings) -> Rendered | None:
    number = escape(str(p.get("number", "")))
    appeal_id = int(p.get("appeal_id", 0))
    mine = MyCb(action=MyAction.open, id=appeal_id).pack()
    staff = StaffCb(action=StaffAction.open, id=appeal_id).pack()
    text = escape(str(p.get("text", "")))
    if template == "status_changed":
        return Rendered(
            _("Your appeal № {number}: {status}.").format(number=number, status=status_name(p["status"])),
            button(_("Open the appeal"), mine),
        )
    if template == "rejected":
        reason = REASONS.get(p.get("reason", ""))
        return Rendered(
            _("Your appeal № {number} was left without consideration: {reason}. You may file a new one.").format(
                number=number, reason=_(reason) if reason else "—"
            ),
            button(_("Open the appeal"), mine),
        )
    if template == "duplicate":
        return Rendered(
            _(
                "Your appeal № {number} is about the same problem as appeal № {original}; it is handled there, "
                "and you will be told of its progress."
            ).format(number=number, original=escape(str(p.get("original", "")))),
        )
    if template == "clarification_question":
        return Rendered(
            _(
                "The responsible body asks about your appeal № {number}:\n\n{text}\n\nThe answer period is paused until you reply."
            ).format(number=number, text=text),
            button(_("✍️ Reply"), ReplyCb(id=appeal_id).pack()),
        )
    if template == "interim":
        return Rendered(_("Interim answer on your appeal № {number}:\n\n{text}").format(number=number, text=text))
    if template == "answer":
        return Rendered(
            _("<b>Answer to your appeal № {number}</b>\n\n{text}").format(number=number, text=text),
            button(_("Open the appeal"), mine),
        )
    if template == "extended":
        deadline = datetime.fromisoformat(p["deadline"])
        return Rendered(
            _("The answer period of your appeal № {number} is extended to {date}.").format(
                number=number, date=local_date(deadline, settings.tz)
            )
        )
    if template == "files":
        files = [(kind, file_id) for kind, file_id in p.get("files", [])]
        return Rendered(media=files) if files else None
    if template == "assigned":
        return None  # rendered with the directory, in _render_deadlines
    if template == "clarification_reply":
        return Rendered(
            _("The resident replied on appeal № {number}:\n\n{text}").format(number=number, text=text or "📎"),
            button(_("Open"), staff),
        )
    if template == "answer_review":
        return Rendered(
            _("An answer on appeal № {number} waits for your check.").format(number=number), button(_("Open"), staff)
        )
    if template == "answer_returned":
        return Rendered(
            _("Your answer on appeal № {number} was returned for rework:\n\n{comment}").format(
                number=number, comment=escape(str(p.get("comment", "")))
            ),
            button(_("Open"), staff),
        )
    if template == "request_pending":
        kind = _("a redirect") if p.get("kind") == "redirect" else _("an extension")
        return Rendered(
            _("The agency asks for {kind} on appeal № {number}.").format(kind=kind, number=number),
            button(_("Open"), staff),
        )
    if template == "request_decided":
        kind = _("redirect") if p.get("kind") == "redirect" else _("extension")
        verdict = _("approved") if p.get("approved") else _("declined")
        return Rendered(
            _("Your {kind} request on appeal № {number} is {verdict}.").format(
                kind=kind, number=number, verdict=verdict
            )
        )
    return None
