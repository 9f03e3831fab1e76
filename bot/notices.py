"""What the services tell people: one small frozen dataclass per notification kind (plain Python).

A notice is written to the outbox as its `template` code (the `outbox.template` column) and its fields (the
`params` JSON column), and read back with `decode()` when the sender delivers it; bot/notifications.py
renders each class in the recipient's language. The template codes and the field names are the strings the
outbox has always stored, so rows queued before these classes existed decode and render the same.

Fields hold JSON values only: numbers, strings, booleans, None, StrEnums (stored as their value), and
tuples (stored as lists). Moments travel as ISO 8601 strings in UTC."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Union

from bot.domain import AppealStatus, AttachmentKind, RejectReason, RequestKind


class UnknownNotice(ValueError):
    """An outbox row that names no notification class, or whose params do not fit it: it cannot be sent."""


@dataclass(frozen=True, slots=True)
class Notice:
    """The base of every notification; `template` names the class in the outbox."""

    template: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        """The fields as JSON values (what the outbox's `params` column stores)."""
        return {f.name: _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}


# --- the resident ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusChanged(Notice):
    template: ClassVar[str] = "status_changed"
    appeal_id: int
    number: str
    status: AppealStatus


@dataclass(frozen=True, slots=True)
class Rejected(Notice):
    template: ClassVar[str] = "rejected"
    appeal_id: int
    number: str
    reason: RejectReason


@dataclass(frozen=True, slots=True)
class Duplicate(Notice):
    """The appeal was closed as a duplicate; its resident follows the original from now on."""

    template: ClassVar[str] = "duplicate"
    appeal_id: int
    number: str
    original: str
    status: AppealStatus  # the original's status at the time


@dataclass(frozen=True, slots=True)
class ClarificationQuestion(Notice):
    template: ClassVar[str] = "clarification_question"
    appeal_id: int
    number: str
    text: str


@dataclass(frozen=True, slots=True)
class Interim(Notice):
    template: ClassVar[str] = "interim"
    appeal_id: int
    number: str
    text: str


@dataclass(frozen=True, slots=True)
class Answer(Notice):
    template: ClassVar[str] = "answer"
    appeal_id: int
    number: str
    text: str


@dataclass(frozen=True, slots=True)
class Extended(Notice):
    template: ClassVar[str] = "extended"
    appeal_id: int
    number: str
    deadline: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class Files(Notice):
    """Files sent on their own: one outbox row is one Telegram call, retried whole."""

    template: ClassVar[str] = "files"
    files: tuple[tuple[AttachmentKind, str], ...]  # (kind, file_id)


@dataclass(frozen=True, slots=True)
class Reply(Notice):
    """A handler's reply that met flood control longer than a reply may wait (bot.session.ReplyRetryMiddleware):
    its text, already in the person's language and in HTML, and its inline or reply keyboard (aiogram's JSON form;
    a reply keyboard is the person's menu, already in their language)."""

    template: ClassVar[str] = "reply"
    text: str
    markup: dict[str, Any] | None


# --- the agency's staff -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assigned(Notice):
    """The assignment carries the card: what, where, by when; the files come with «Open»."""

    template: ClassVar[str] = "assigned"
    appeal_id: int
    number: str
    category_id: int
    district_id: int
    deadline: str | None  # ISO 8601, UTC
    text: str
    address: str | None
    lat: float | None
    lon: float | None
    # Sent back by the resident (issue 12): their words, so the agency reads at once what is still wrong.
    reopened: str | None = None


@dataclass(frozen=True, slots=True)
class ClarificationReply(Notice):
    template: ClassVar[str] = "clarification_reply"
    appeal_id: int
    number: str
    text: str


@dataclass(frozen=True, slots=True)
class AnswerReturned(Notice):
    template: ClassVar[str] = "answer_returned"
    appeal_id: int
    number: str
    comment: str


@dataclass(frozen=True, slots=True)
class RequestDecided(Notice):
    template: ClassVar[str] = "request_decided"
    appeal_id: int
    number: str
    kind: RequestKind
    approved: bool


@dataclass(frozen=True, slots=True)
class Reminder(Notice):
    """The official's reminders of a deadline: the same fields, one class (and one text) for each moment."""

    appeal_id: int
    number: str
    deadline: str | None


@dataclass(frozen=True, slots=True)
class ReminderHalf(Reminder):
    template: ClassVar[str] = "reminder_half"


@dataclass(frozen=True, slots=True)
class ReminderDayBefore(Reminder):
    template: ClassVar[str] = "reminder_day_before"


@dataclass(frozen=True, slots=True)
class ReminderDeadline(Reminder):
    template: ClassVar[str] = "reminder_deadline"


@dataclass(frozen=True, slots=True)
class DigestOfficial(Notice):
    template: ClassVar[str] = "digest_official"
    overdue: int
    due_today: int
    new: int


# --- coordinators and supervisors ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerReview(Notice):
    template: ClassVar[str] = "answer_review"
    appeal_id: int
    number: str


@dataclass(frozen=True, slots=True)
class RequestPending(Notice):
    template: ClassVar[str] = "request_pending"
    appeal_id: int
    number: str
    kind: RequestKind


@dataclass(frozen=True, slots=True)
class Escalation(Notice):
    template: ClassVar[str] = "escalation"
    appeal_id: int
    number: str
    deadline: str | None
    days: int  # days overdue


@dataclass(frozen=True, slots=True)
class ForwardDue(Notice):
    """59-ФЗ: an appeal for another body must be forwarded by `due`."""

    template: ClassVar[str] = "forward_due"
    appeal_id: int
    number: str
    deadline: str | None
    due: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class DigestCoordinator(Notice):
    template: ClassVar[str] = "digest_coordinator"
    overdue: tuple[tuple[int | None, int], ...]  # (agency id, overdue appeals), most first


@dataclass(frozen=True, slots=True)
class WeeklySummary(Notice):
    template: ClassVar[str] = "weekly_summary"
    statuses: dict[str, int]  # status code -> appeals
    agencies: tuple[tuple[int, int], ...]  # (agency id, appeals)
    week: str  # e.g. 2026-W45


NOTICES: dict[str, type[Notice]] = {
    cls.template: cls
    for cls in (
        StatusChanged,
        Rejected,
        Duplicate,
        ClarificationQuestion,
        Interim,
        Answer,
        Extended,
        Files,
        Reply,
        Assigned,
        ClarificationReply,
        AnswerReturned,
        RequestDecided,
        ReminderHalf,
        ReminderDayBefore,
        ReminderDeadline,
        DigestOfficial,
        AnswerReview,
        RequestPending,
        Escalation,
        ForwardDue,
        DigestCoordinator,
        WeeklySummary,
    )
}


def decode(template: str, params: dict[str, Any]) -> Notice:
    """The notice an outbox row holds; UnknownNotice when the template or the params do not fit a class.

    Keys the class does not know are ignored, so a row written by a newer version still renders; a field with a
    default that the row lacks takes the default, so a row written by an older version renders too."""
    cls = NOTICES.get(template)
    if cls is None:
        raise UnknownNotice(f"unknown template {template!r}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    try:
        for f in dataclasses.fields(cls):
            if f.name not in params:
                if f.default is not dataclasses.MISSING:
                    continue
                raise UnknownNotice(f"{template}: no {f.name!r}")
            values[f.name] = _from_json(params[f.name], hints[f.name])
        return cls(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, UnknownNotice):
            raise
        raise UnknownNotice(f"{template}: {exc}") from exc


def _to_json(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


def _from_json(value: Any, hint: Any) -> Any:
    """A JSON value as the field's type: enums by value, lists as tuples; the rest as it is."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)][:1] or [Any]
        return _from_json(value, inner)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise UnknownNotice(f"expected a list, got {type(value).__name__}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(v, args[0]) for v in value)
        if len(args) != len(value):
            raise UnknownNotice(f"expected {len(args)} items, got {len(value)}")
        return tuple(_from_json(v, a) for v, a in zip(value, args, strict=True))
    if origin is dict:
        return dict(value)
    return value


# --- issue 12: residents' ratings in the staff's digests ---------------------------------------------------------
# New classes rather than new fields of DigestOfficial/DigestCoordinator: a row queued before them still decodes.


@dataclass(frozen=True, slots=True)
class DigestOfficialRated(DigestOfficial):
    """The official's daily digest with the agency's rating over the last days (sent when it has ratings)."""

    template: ClassVar[str] = "digest_official_rated"
    rating_average: float
    rating_count: int
    rating_days: int


@dataclass(frozen=True, slots=True)
class DigestAgencyRating(Notice):
    """The supervisor's daily figure: the agency's average rating and how many ratings, over the last days."""

    template: ClassVar[str] = "digest_agency_rating"
    rating_average: float
    rating_count: int
    rating_days: int


@dataclass(frozen=True, slots=True)
class DigestCoordinatorRated(DigestCoordinator):
    """The coordinators' daily digest with every rated agency's average and count, the worst first."""

    template: ClassVar[str] = "digest_coordinator_rated"
    ratings: tuple[tuple[int, float, int], ...]  # (agency id, average, ratings)
    rating_days: int


@dataclass(frozen=True, slots=True)
class LowRatings(Notice):
    """The coordinators' list of the ratings of 1–2 given on `day` (a local date, ISO)."""

    template: ClassVar[str] = "low_ratings"
    day: str
    items: tuple[tuple[int, str, int | None, int, str | None], ...]  # (appeal id, number, agency id, score, comment)
    more: int  # given that day beyond the list


for _rated in (DigestOfficialRated, DigestAgencyRating, DigestCoordinatorRated, LowRatings):
    NOTICES[_rated.template] = _rated

# --- the resident's judgement of an answer (issue 12) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateRequest(Notice):
    """Right after the approved answer, to the appeal's owner only: the five rating buttons."""

    template: ClassVar[str] = "rate_request"
    appeal_id: int
    number: str
    note_id: int = 0  # the answer it asks about (0 in rows queued before it was added: the latest)


@dataclass(frozen=True, slots=True)
class RateReminder(Notice):
    """ratings.remind_days after the answer, still unrated: the one reminder, with the buttons."""

    template: ClassVar[str] = "rate_reminder"
    appeal_id: int
    number: str


@dataclass(frozen=True, slots=True)
class ClosedUnrated(Notice):
    """ratings.close_days after the answer nobody rated it: closed with no score (it may still be rated)."""

    template: ClassVar[str] = "closed_unrated"
    appeal_id: int
    number: str


@dataclass(frozen=True, slots=True)
class Reopened(Notice):
    """To the agency's supervisors: the resident sent the answered appeal back, in their words."""

    template: ClassVar[str] = "reopened"
    appeal_id: int
    number: str
    text: str
    score: int | None  # the rating that sent it back; None from the follow-up ("not fixed")


@dataclass(frozen=True, slots=True)
class FollowupQuestion(Notice):
    """"Is the problem actually fixed?", ratings.followup_days after a physical problem closed with 3–5."""

    template: ClassVar[str] = "followup_question"
    appeal_id: int
    number: str


NOTICES.update(
    {cls.template: cls for cls in (RateRequest, RateReminder, ClosedUnrated, Reopened, FollowupQuestion)}
)


# --- polls (appended: issue 12) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollInvite(Notice):
    """A poll as it reaches a resident: the question and options as the author typed them, the buttons in the
    resident's language."""

    template: ClassVar[str] = "poll"
    poll_id: int
    question: str
    options: tuple[tuple[int, str], ...]  # (option id, text)
    multiple: bool
    other: bool
    closes_at: str  # ISO 8601, UTC


NOTICES[PollInvite.template] = PollInvite


# --- broadcasts (appended: issue 13) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BroadcastItem(Notice):
    """A broadcast as it reaches one resident: only the id; the renderer reads the broadcast's texts, file and button
    once per broadcast (they never change after confirmation), so a million items do not store a million copies."""

    template: ClassVar[str] = "broadcast"
    broadcast_id: int


@dataclass(frozen=True, slots=True)
class BroadcastReport(Notice):
    """The final report to the author of a broadcast that ended (done or cancelled)."""

    template: ClassVar[str] = "broadcast_report"
    broadcast_id: int
    status: str  # bot.domain.BroadcastStatus: done or cancelled
    recipients: int
    delivered: int
    blocked: int
    failed: int
    cancelled: int
    unsure: int  # items in flight when a sender died: possibly received twice
    flood_waits: int


@dataclass(frozen=True, slots=True)
class BroadcastHeld(Notice):
    """Telegram refused a broadcast's message for its content: the broadcast is paused; its author is told why."""

    template: ClassVar[str] = "broadcast_held"
    broadcast_id: int
    reason: str  # Telegram's description (never the text itself)


NOTICES.update({cls.template: cls for cls in (BroadcastItem, BroadcastReport, BroadcastHeld)})


@dataclass(frozen=True)
class BroadcastContent:
    """What every item of a broadcast shows (read once per broadcast by the renderer, and by the author's preview):
    HTML texts per language ("ru" always there), an optional photo or document, an optional URL button, and the
    thematic block of its audience (what «Unsubscribe from such news» turns off when it has one; without one, the
    service turns off the audience's districts, or all news for a region-wide broadcast)."""

    broadcast_id: int
    texts: dict[str, str]
    media_kind: AttachmentKind | None = None
    media_file_id: str | None = None
    button_text: str | None = None
    button_url: str | None = None
    block_id: int | None = None

    def text(self, locale: str) -> str:
        return self.texts.get(locale) or self.texts["ru"]


# --- scheduled statistics reports (issue 14) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatsReportPart(Notice):
    """One part of a stored report (storage.models.StatReport) as it reaches one recipient: only the report's id; the
    renderer reads the text, chart or spreadsheet computed when the report was claimed. Each part is one Telegram
    call, retried on its own."""

    report_id: int


@dataclass(frozen=True, slots=True)
class StatsReportText(StatsReportPart):
    template: ClassVar[str] = "stats_report_text"


@dataclass(frozen=True, slots=True)
class StatsReportChart(StatsReportPart):
    template: ClassVar[str] = "stats_report_chart"


@dataclass(frozen=True, slots=True)
class StatsReportSheet(StatsReportPart):
    template: ClassVar[str] = "stats_report_sheet"


STATS_REPORT_PARTS: tuple[type[StatsReportPart], ...] = (StatsReportText, StatsReportChart, StatsReportSheet)
NOTICES.update({cls.template: cls for cls in STATS_REPORT_PARTS})


@dataclass(frozen=True)
class ReportContent:
    """A stored report as its parts are sent (read by the renderer per row): the HTML text, the chart (PNG) and the
    spreadsheet (XLSX) with the names their files get (`state-of-region-2026-W47.xlsx`)."""

    report_id: int
    text: str
    chart: bytes | None
    sheet: bytes | None
    file_stem: str  # the files' name without the extension

    @property
    def chart_name(self) -> str:
        return f"{self.file_stem}.png"

    @property
    def sheet_name(self) -> str:
        return f"{self.file_stem}.xlsx"


# --- personal data (appended: issue 16) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Withdrawn(Notice):
    """To the coordinators and the agency's staff: the applicant withdrew the consent and this open appeal with it;
    it is closed (and anonymized)."""

    template: ClassVar[str] = "withdrawn"
    appeal_id: int
    number: str


NOTICES[Withdrawn.template] = Withdrawn
