"""The staff card of an appeal and its action buttons, by role and status."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import StaffAction, StaffCb
from bot.domain import AGENCY_ROLES, COORDINATING_ROLES, TRIAGE, AppealKind, AppealStatus, NoteKind, RequestKind
from bot.services.directory import DirectoryService
from bot.services.users import Actor
from bot.services.views import StaffCard
from bot.texts import clip, kind_name, local_date, local_time, place, status_name, topic

S = AppealStatus
NOTE_NAMES = {
    NoteKind.clarification_question: "❓",
    NoteKind.clarification_reply: "💬",
    NoteKind.interim: "🕐",
    NoteKind.answer: "✅",
}


async def reply(
    callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | InlineKeyboardBuilder | None = None
) -> None:
    """Answer with a new message under the one pressed (aiogram's CallbackAnswerMiddleware acknowledges it)."""
    if isinstance(callback.message, Message):
        if isinstance(markup, InlineKeyboardBuilder):
            markup = markup.as_markup()
        await callback.message.answer(text, reply_markup=markup)


def deadline_line(deadline: datetime | None, now: datetime, tz: ZoneInfo) -> str:
    """Overdue is derived from the deadline, so it is never stale."""
    if deadline is None:
        return ""
    text = _("<b>Due:</b> {date}").format(date=local_date(deadline, tz))
    if deadline < now:
        text += " " + _("⚠️ overdue")
    return text


def card_text(card: StaffCard, directory: DirectoryService, actor: Actor, now: datetime, tz: ZoneInfo) -> str:
    district = directory.district(card.district_id)
    agency = directory.agency(card.agency_id) if card.agency_id else None
    lines = [
        _("<b>Appeal № {number}</b> · {status}").format(number=card.number, status=status_name(card.status)),
        _("<b>Filed:</b> {at}").format(at=local_time(card.created_at, tz)),
        _("<b>Topic:</b> {topic}").format(topic=escape(topic(directory, card.category_id, actor.lang))),
        _("<b>Kind:</b> {kind}").format(kind=kind_name(card.kind)),
        _("<b>District:</b> {district}").format(district=escape(district.name(actor.lang)) if district else "—"),
        _("<b>Place:</b> {place}").format(place=place(card.address, card.latitude, card.longitude)),
    ]
    if agency:
        lines.append(_("<b>Agency:</b> {agency}").format(agency=escape(agency.name(actor.lang))))
    due = deadline_line(card.deadline_at, now, tz)
    if due:
        lines.append(due)
    if card.applicant_name:
        lines.append(
            _("<b>Applicant:</b> {name}, {contact}").format(
                name=escape(card.applicant_name), contact=escape(card.applicant_contact or "—")
            )
        )
    if card.attachments:
        lines.append(_("<b>Attachments:</b> {count}").format(count=len(card.attachments)))
    lines += ["", clip(card.text, 1200)]
    for note in card.notes[-6:]:
        mark = NOTE_NAMES.get(note.kind, "•")
        extra = f" 📎{len(note.attachments)}" if note.attachments else ""
        lines.append(f"\n{mark} {local_time(note.at, tz)}{extra}: {clip(note.text, 400)}")
        if note.review_comment:
            lines.append("↩️ " + clip(note.review_comment, 300))
    if card.resident_history:
        history = ", ".join(f"{n} ({status_name(s)})" for n, s in card.resident_history[:5])
        lines.append("\n" + _("<b>Other appeals of this resident:</b> {list}").format(list=history))
    for request in card.requests:
        if request.kind == RequestKind.redirect:
            target = directory.agency(request.agency_id or 0)
            lines.append(
                "\n"
                + _("<b>Redirect requested</b> to {agency}: {reason}").format(
                    agency=escape(target.name(actor.lang)) if target else "—", reason=clip(request.reason, 300)
                )
            )
        else:
            lines.append(
                "\n"
                + _("<b>Extension requested</b> by {days} days: {reason}").format(
                    days=request.days, reason=clip(request.reason, 300)
                )
            )
    return "\n".join(lines)


def card_keyboard(card: StaffCard, directory: DirectoryService, actor: Actor) -> InlineKeyboardMarkup:
    b = InlineKeyboardBuilder()

    def add(text: str, action: StaffAction, v: int = 0, s: str = "") -> None:
        b.row(InlineKeyboardButton(text=text, callback_data=StaffCb(action=action, id=card.id, v=v, s=s).pack()))

    coordinator = actor.has(*COORDINATING_ROLES)
    in_agency = actor.has(*AGENCY_ROLES) and card.agency_id == actor.agency_id
    if coordinator and card.status in TRIAGE:
        suggested = directory.agency(card.suggested_agency_id or 0)
        if suggested:
            add(_("➡️ Route to {agency}").format(agency=suggested.name(actor.lang)), StaffAction.route)
        add(_("🏢 Another agency"), StaffAction.agencies)
        add(_("🗂 Change category"), StaffAction.category)
        add(_("🔁 Change kind"), StaffAction.kind, 1 if card.kind == AppealKind.message else 0)
        add(_("⛔ Reject"), StaffAction.reject)
        add(_("🔗 Duplicate of…"), StaffAction.duplicate)
    if coordinator and card.status == S.answer_review:
        add(_("✅ Approve the answer"), StaffAction.approve)
        add(_("↩️ Return for rework"), StaffAction.send_back)
    if coordinator:
        for request in card.requests:
            label = _("redirect") if request.kind == RequestKind.redirect else _("extension")
            b.row(
                InlineKeyboardButton(
                    text=_("✅ Approve {kind}").format(kind=label),
                    callback_data=StaffCb(action=StaffAction.decide, id=card.id, v=request.id, s="y").pack(),
                ),
                InlineKeyboardButton(
                    text=_("❌ Decline {kind}").format(kind=label),
                    callback_data=StaffCb(action=StaffAction.decide, id=card.id, v=request.id, s="n").pack(),
                ),
            )
    if in_agency:
        if card.status == S.assigned:
            add(_("🛠 Take in work"), StaffAction.take)
        if card.status in (S.assigned, S.in_progress):
            add(_("❓ Ask the resident"), StaffAction.clarify)
            add(_("🕐 Interim answer"), StaffAction.interim)
            add(_("↪️ Redirect"), StaffAction.redirect)
        if card.status in (S.assigned, S.in_progress, S.clarification) and not card.extension_used:
            add(_("⏳ Ask for an extension"), StaffAction.extension)
        if card.status == S.in_progress:
            add(_("✅ Final answer"), StaffAction.answer)
    files = len(card.attachments) + sum(len(n.attachments) for n in card.notes)
    if files:
        add(_("📎 Files ({count})").format(count=files), StaffAction.files)
    return b.as_markup()
