"""The status history as people read it: one localized sentence per entry, never a raw code.

Residents get `HistoryEntry` values, which hold no staff comment; staff get `StaffHistoryEntry` values and see
the staff-only entries (marked 🔒) and their comments as well."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot.domain import HistoryEvent
from bot.notifications import REASONS
from bot.services.appeals import HistoryEntry
from bot.services.directory import DirectoryService
from bot.services.views import StaffHistoryEntry
from bot.texts import clip, local_date, local_time, status_name

E = HistoryEvent
# A staff comment on the card: enough to read it, short enough for Telegram's 4096 characters.
COMMENT_LIMIT = 200


def sentence(entry: HistoryEntry, directory: DirectoryService, lang: str, tz: ZoneInfo) -> str:
    """What happened, in the reader's language (HTML, escaped)."""
    d = entry.details
    agency = directory.agency(d.agency_id) if d.agency_id is not None else None
    match entry.event:
        case E.filed:
            return _("Filed and sent to moderation")
        case E.routed:
            if agency is not None:
                return _("Sent to {agency}").format(agency=escape(agency.name(lang)))
            return _("Sent to the responsible body")
        case E.redirected:
            if agency is not None:
                return _("Redirected to {agency}").format(agency=escape(agency.name(lang)))
            return _("Redirected to another responsible body")
        case E.taken:
            return _("Taken in work")
        case E.clarification_requested:
            return _("A clarification was requested; the deadline is paused until the reply")
        case E.clarified:
            return _("The clarification was received; the work goes on")
        case E.answer_submitted:
            return _("The answer is prepared and is being checked by the Regional Management Center")
        case E.answer_returned:
            return _("The answer was returned to the agency for rework")
        case E.answered:
            return _("The answer is given")
        case E.rejected:
            reason = REASONS.get(d.reason) if d.reason is not None else None
            if reason is not None:
                return _("Left without consideration: {reason}").format(reason=_(reason))
            return _("Left without consideration")
        case E.duplicate:
            if d.original:
                return _("Closed as a duplicate of № {number}").format(number=escape(d.original))
            return _("Closed as a duplicate of another appeal")
        case E.extended:
            if d.deadline is not None:
                return _("The deadline was extended by {days} days to {date}").format(
                    days=d.days, date=local_date(d.deadline, tz)
                )
            return _("The deadline was extended by {days} days").format(days=d.days)
        case E.closed:
            return _("Closed")
        case E.reopened:
            return _("Reopened for a new consideration")
        case E.closed_unrated:
            return _("Closed without a rating: the answer was not rated within {days} days").format(days=d.days)
        case E.withdrawn:
            return _("Closed: withdrawn by the applicant")
    return status_name(entry.status)


def line(entry: HistoryEntry, directory: DirectoryService, lang: str, tz: ZoneInfo) -> str:
    return f"• {local_time(entry.at, tz)} — {sentence(entry, directory, lang, tz)}"


def resident_lines(
    entries: Sequence[HistoryEntry], directory: DirectoryService, lang: str, tz: ZoneInfo
) -> list[str]:
    return [line(entry, directory, lang, tz) for entry in entries]


def staff_lines(
    entries: Sequence[StaffHistoryEntry], directory: DirectoryService, lang: str, tz: ZoneInfo
) -> list[str]:
    lines = []
    for entry in entries:
        text = line(entry, directory, lang, tz)
        if entry.staff_only:
            text += " 🔒"
        if entry.comment:
            text += "\n   💬 <i>" + clip(entry.comment, COMMENT_LIMIT) + "</i>"
        lines.append(text)
    return lines
