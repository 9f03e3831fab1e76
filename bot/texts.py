"""Localized names of codes (statuses, kinds) and the formatting shared by every screen."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot.i18n import N_
from bot.services.directory import DirectoryService

STATUS_NAMES = {
    "moderation": N_("On moderation"),
    "rejected": N_("Rejected"),
    "assigned": N_("Sent to the responsible body"),
    "in_progress": N_("In progress"),
    "clarification": N_("Clarification requested"),
    "answer_review": N_("Answer under review"),
    "answered": N_("Answered"),
    "reopened": N_("Reopened"),
    "closed": N_("Closed"),
}

KIND_NAMES = {
    "message": N_("Message (answer within 10 days)"),
    "appeal": N_("Appeal under Federal Law 59-FZ (answer within 30 days)"),
}


def status_name(code: str) -> str:
    name = STATUS_NAMES.get(code)
    return _(name) if name is not None else code


def kind_name(code: str) -> str:
    name = KIND_NAMES.get(code)
    return _(name) if name is not None else code


def local_time(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d.%m.%Y %H:%M")


def local_date(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d.%m.%Y")


def clip(text: str, limit: int) -> str:
    """Shorten user text for a screen that must stay under Telegram's 4096 characters; escaped."""
    if len(text) <= limit:
        return escape(text)
    return escape(text[:limit].rstrip()) + "… " + _("({count} characters in all)").format(count=len(text))


def topic(directory: DirectoryService, category_id: int, lang: str) -> str:
    category = directory.category(category_id)
    if category is None:
        return "—"
    block = directory.block(category.parent_id or 0)
    return f"{block.name(lang) if block else '—'} → {category.name(lang)}"


def place(address: str | None, latitude: float | None, longitude: float | None) -> str:
    parts = []
    if address:
        parts.append(escape(address))
    if latitude is not None and longitude is not None:
        parts.append(_("📍 location {lat:.5f}, {lon:.5f}").format(lat=latitude, lon=longitude))
    return "; ".join(parts) or "—"
