"""Cards a resident reads: the preview of a draft and the card of a filed appeal."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot.services.appeals import AppealCard
from bot.services.directory import DirectoryService
from bot.texts import clip, kind_name, local_date, local_time, place, status_name, topic
from handlers import history

# Telegram allows 4096 characters; the description is clipped so labels and history always fit.
PREVIEW_TEXT_LIMIT = 2500
CARD_TEXT_LIMIT = 1500
ANSWER_TEXT_LIMIT = 800
# The latest entries of the history (a line is at most ~200 characters).
HISTORY_LIMIT = 10


def preview(data: dict[str, Any], directory: DirectoryService, lang: str) -> str:
    district = directory.district(data.get("district_id", 0))
    lines = [
        _("<b>Check your appeal before sending</b>"),
        "",
        _("<b>Topic:</b> {topic}").format(topic=escape(topic(directory, data.get("category_id", 0), lang))),
        _("<b>Kind:</b> {kind}").format(kind=kind_name(data.get("kind", ""))),
        _("<b>District:</b> {district}").format(district=escape(district.name(lang)) if district else "—"),
        _("<b>Place:</b> {place}").format(place=place(data.get("address"), data.get("lat"), data.get("lon"))),
        _("<b>Attachments:</b> {count}").format(count=len(data.get("attachments", []))),
    ]
    if data.get("kind") == "appeal":
        lines.append(
            _("<b>Applicant:</b> {name}, {contact}").format(
                name=escape(data.get("applicant_name") or "—"), contact=escape(data.get("applicant_contact") or "—")
            )
        )
    lines += ["", _("<b>Description:</b>"), clip(data.get("text", ""), PREVIEW_TEXT_LIMIT)]
    return "\n".join(lines)


def card(appeal: AppealCard, directory: DirectoryService, lang: str, tz: ZoneInfo, now: datetime | None = None) -> str:
    district = directory.district(appeal.district_id)
    lines = [
        _("<b>Appeal № {number}</b>").format(number=appeal.number),
        _("<b>Status:</b> {status}").format(status=status_name(appeal.status)),
        _("<b>Filed:</b> {at}").format(at=local_time(appeal.created_at, tz)),
        _("<b>Topic:</b> {topic}").format(topic=escape(topic(directory, appeal.category_id, lang))),
        _("<b>Kind:</b> {kind}").format(kind=kind_name(appeal.kind)),
        _("<b>District:</b> {district}").format(district=escape(district.name(lang)) if district else "—"),
        _("<b>Place:</b> {place}").format(place=place(appeal.address, appeal.latitude, appeal.longitude)),
    ]
    if appeal.deadline_at is not None:
        due = _("<b>Answer due by:</b> {date}").format(date=local_date(appeal.deadline_at, tz))
        if now is not None and appeal.deadline_at < now and appeal.status not in ("answered", "closed", "rejected"):
            due += " " + _("⚠️ overdue")
        lines.append(due)
    if appeal.attachments:
        lines.append(_("<b>Attachments:</b> {count}").format(count=len(appeal.attachments)))
    lines += ["", _("<b>Description:</b>"), clip(appeal.text, CARD_TEXT_LIMIT)]
    if appeal.answer:
        lines += ["", _("<b>Answer:</b>"), clip(appeal.answer, ANSWER_TEXT_LIMIT)]
    lines += ["", _("<b>History:</b>"), *history.resident_lines(appeal.history[-HISTORY_LIMIT:], directory, lang, tz)]
    return "\n".join(lines)
