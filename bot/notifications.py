"""What each notification says: one renderer per class of bot/notices.py, in the recipient's language."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from typing import Any, TypeVar

from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup
from aiogram.utils.i18n import I18n
from babel.dates import format_date

from bot import keyboards as kb
from bot import notices as n
from bot.ballot import ballot
from bot.callbacks import (
    BroadcastAction,
    BroadcastCb,
    MyAction,
    MyCb,
    NewsAction,
    NewsCb,
    ReplyCb,
    StaffAction,
    StaffCb,
)
from bot.config import Settings
from bot.domain import RejectReason, RequestKind, Role
from bot.i18n import N_
from bot.outbox import Rendered
from bot.services.directory import DirectoryService
from bot.texts import clip, local_date, place, status_name, topic

REASONS = {
    RejectReason.obscene: N_("the appeal contains obscene language or threats (59-FZ, art. 11 part 3)"),
    RejectReason.unreadable: N_(
        "the text cannot be read or has no discernible substance (59-FZ, art. 11 parts 4 and 4.1)"
    ),
    RejectReason.no_address: N_("the address or place of the problem is not given, so it cannot be checked"),
    RejectReason.spam: N_("the message is spam or advertising"),
    RejectReason.repeated: N_(
        "it repeats an earlier appeal that was answered, with no new arguments (59-FZ, art. 11 part 5)"
    ),
    RejectReason.out_of_competence: N_("the question is outside the competence of the region's bodies"),
}
ROLES = {
    Role.admin: N_("administrator"),
    Role.coordinator: N_("ЦУР coordinator"),
    Role.official: N_("official"),
    Role.supervisor: N_("head of agency"),
    Role.analyst: N_("analyst"),
    Role.editor: N_("editor"),
    Role.block_head: N_("head of a thematic block"),
    Role.leadership: N_("ЦУР leadership"),
}


@dataclass(frozen=True)
class Context:
    """What a renderer needs besides the notice: the recipient's gettext and language, and the reference data."""

    _: Callable[[str], str]
    lang: str
    settings: Settings
    directory: DirectoryService

    def when(self, value: str | None) -> str:
        return local_date(datetime.fromisoformat(value), self.settings.tz) if value else "—"

    def weekday(self, value: str | None) -> str:
        """The local weekday's name in the recipient's language (Babel's CLDR names: ru, ce and en alike)."""
        if not value:
            return "—"
        return format_date(datetime.fromisoformat(value).astimezone(self.settings.tz).date(), "EEEE", locale=self.lang)


N = TypeVar("N", bound=n.Notice)
RenderFn = Callable[[Any, Context], Rendered | None]
RENDERERS: dict[type[n.Notice], RenderFn] = {}


def renders(cls: type[N]) -> Callable[[Callable[[N, Context], Rendered | None]], Callable[[N, Context], Rendered | None]]:
    def register(fn: Callable[[N, Context], Rendered | None]) -> Callable[[N, Context], Rendered | None]:
        RENDERERS[cls] = fn
        return fn

    return register


def render_notice(notice: n.Notice, context: Context) -> Rendered | None:
    return RENDERERS[type(notice)](notice, context)


def make_renderer(
    i18n: I18n,
    settings: Settings,
    directory: DirectoryService,
    broadcasts: Callable[[int], Awaitable[n.BroadcastContent | None]] | None = None,
    reports: Callable[[int], Awaitable[n.ReportContent | None]] | None = None,
) -> Callable[[str, dict[str, Any], str, int], Awaitable[Rendered | None]]:
    """The outbox sender's renderer: decodes the row (UnknownNotice when it cannot) and renders it. `broadcasts`
    reads a broadcast's content for its items (bot/services/broadcast_delivery.py BroadcastDelivery.content),
    `reports` a stored statistics report for its parts (bot/services/reports.py ReportService.content)."""

    async def render(template: str, params: dict[str, Any], locale: str, user_id: int) -> Rendered | None:
        notice = n.decode(template, params)
        if isinstance(notice, n.StatsReportPart):
            report = await reports(notice.report_id) if reports is not None else None
            if report is None:
                raise n.UnknownNotice(f"report {notice.report_id} not found")
            return render_report_part(notice, report)
        if isinstance(notice, n.BroadcastItem):
            content = await broadcasts(notice.broadcast_id) if broadcasts is not None else None
            if content is None:
                raise n.UnknownNotice(f"broadcast {notice.broadcast_id} not found")
            with i18n.use_locale(locale):
                return render_broadcast(content, locale, i18n.gettext)
        with i18n.use_locale(locale):
            return render_notice(notice, Context(i18n.gettext, locale, settings, directory))

    return render


def render_broadcast(content: n.BroadcastContent, locale: str, _: Callable[[str], str]) -> Rendered:
    """A broadcast item exactly as a resident sees it (the sender's renderer and the author's preview share it): the
    text in their language (or Russian), the file, the URL button and «Unsubscribe from such news»."""
    rows: list[list[InlineKeyboardButton]] = []
    if content.button_text and content.button_url:
        rows.append([InlineKeyboardButton(text=content.button_text, url=content.button_url)])
    rows.append(
        [
            InlineKeyboardButton(
                text=_("🔕 Unsubscribe from such news"),
                callback_data=NewsCb(a=NewsAction.unsubscribe, b=content.broadcast_id).pack(),
            )
        ]
    )
    media = [(str(content.media_kind), content.media_file_id)] if content.media_kind and content.media_file_id else []
    return Rendered(content.text(locale), InlineKeyboardMarkup(inline_keyboard=rows), media)


def render_report_part(part: n.StatsReportPart, report: n.ReportContent) -> Rendered | None:
    """A stored report's text, chart or spreadsheet (made in the recipient's language when it was claimed); the files
    go as uploads named after the report and its period. A part the report lacks is skipped."""
    if isinstance(part, n.StatsReportChart):
        return Rendered(media=[("photo", BufferedInputFile(report.chart, report.chart_name))]) if report.chart else None
    if isinstance(part, n.StatsReportSheet):
        return Rendered(media=[("document", BufferedInputFile(report.sheet, report.sheet_name))]) if report.sheet else None
    return Rendered(report.text)


def button(text: str, data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data)]])


def _mine(appeal_id: int) -> str:
    return MyCb(action=MyAction.open, id=appeal_id).pack()


def _staff(appeal_id: int) -> str:
    return StaffCb(action=StaffAction.open, id=appeal_id).pack()


# --- the resident -----------------------------------------------------------------------------------------


@renders(n.StatusChanged)
def _status_changed(x: n.StatusChanged, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("Your appeal № {number}: {status}.").format(number=escape(x.number), status=status_name(x.status)),
        button(_("Open the appeal"), _mine(x.appeal_id)),
    )


@renders(n.Rejected)
def _rejected(x: n.Rejected, c: Context) -> Rendered:
    _ = c._
    reason = REASONS.get(x.reason)
    return Rendered(
        _("Your appeal № {number} was left without consideration: {reason}. You may file a new one.").format(
            number=escape(x.number), reason=_(reason) if reason else "—"
        ),
        button(_("Open the appeal"), _mine(x.appeal_id)),
    )


@renders(n.Duplicate)
def _duplicate(x: n.Duplicate, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _(
            "Your appeal № {number} is about the same problem as appeal № {original}; it is handled there, "
            "and you will be told of its progress."
        ).format(number=escape(x.number), original=escape(x.original)),
    )


@renders(n.ClarificationQuestion)
def _clarification_question(x: n.ClarificationQuestion, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _(
            "The responsible body asks about your appeal № {number}:\n\n{text}\n\nThe answer period is paused until you reply."
        ).format(number=escape(x.number), text=escape(x.text)),
        button(_("✍️ Reply"), ReplyCb(id=x.appeal_id).pack()),
    )


@renders(n.Interim)
def _interim(x: n.Interim, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("Interim answer on your appeal № {number}:\n\n{text}").format(number=escape(x.number), text=escape(x.text))
    )


@renders(n.Answer)
def _answer(x: n.Answer, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("<b>Answer to your appeal № {number}</b>\n\n{text}").format(number=escape(x.number), text=escape(x.text)),
        button(_("Open the appeal"), _mine(x.appeal_id)),
    )


@renders(n.Extended)
def _extended(x: n.Extended, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("The answer period of your appeal № {number} is extended to {date}.").format(
            number=escape(x.number), date=c.when(x.deadline)
        ),
        button(_("Open the appeal"), _mine(x.appeal_id)),
    )


@renders(n.Files)
def _files(x: n.Files, c: Context) -> Rendered | None:
    files = [(str(kind), file_id) for kind, file_id in x.files]
    return Rendered(media=files) if files else None


@renders(n.Reply)
def _reply(x: n.Reply, c: Context) -> Rendered:
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
    if x.markup is not None:
        kind = ReplyKeyboardMarkup if "keyboard" in x.markup else InlineKeyboardMarkup
        markup = kind.model_validate(x.markup)
    return Rendered(text=x.text, reply_markup=markup)


# --- the agency's staff -----------------------------------------------------------------------------------


@renders(n.Assigned)
def _assigned(x: n.Assigned, c: Context) -> Rendered:
    _ = c._
    district = c.directory.district(x.district_id)
    head = [_("New appeal № {number} for your agency.").format(number=escape(x.number))]
    if x.reopened is not None:
        head = [
            _("🔁 Appeal № {number} is back for another review: the resident says the answer did not solve it.").format(
                number=escape(x.number)
            ),
            _("<b>The resident:</b> {text}").format(text=clip(x.reopened, 500)),
        ]
    lines = [
        *head,
        _("<b>Topic:</b> {topic}").format(topic=escape(topic(c.directory, x.category_id, c.lang))),
        _("<b>District:</b> {district}").format(district=escape(district.name(c.lang)) if district else "—"),
        _("<b>Place:</b> {place}").format(place=place(x.address, x.lat, x.lon)),
        _("<b>Due:</b> {date}").format(date=c.when(x.deadline)),
        "",
        clip(x.text, 700),
    ]
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=_("Open"), callback_data=_staff(x.appeal_id))],
            [
                InlineKeyboardButton(
                    text=_("🛠 Take in work"), callback_data=StaffCb(action=StaffAction.take, id=x.appeal_id).pack()
                )
            ],
        ]
    )
    return Rendered("\n".join(lines), markup)


@renders(n.ClarificationReply)
def _clarification_reply(x: n.ClarificationReply, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("The resident replied on appeal № {number}:\n\n{text}").format(
            number=escape(x.number), text=escape(x.text) or "📎"
        ),
        button(_("Open"), _staff(x.appeal_id)),
    )


@renders(n.AnswerReturned)
def _answer_returned(x: n.AnswerReturned, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("Your answer on appeal № {number} was returned for rework:\n\n{comment}").format(
            number=escape(x.number), comment=escape(x.comment)
        ),
        button(_("Open"), _staff(x.appeal_id)),
    )


@renders(n.RequestDecided)
def _request_decided(x: n.RequestDecided, c: Context) -> Rendered:
    _ = c._
    kind = _("redirect") if x.kind == RequestKind.redirect else _("extension")
    verdict = _("approved") if x.approved else _("declined")
    text = _("Your {kind} request on appeal № {number} is {verdict}.").format(
        kind=kind, number=escape(x.number), verdict=verdict
    )
    if x.approved and x.kind == RequestKind.redirect:
        return Rendered(text)  # the appeal left the agency: nothing of it to open here any more
    return Rendered(text, button(_("Open"), _staff(x.appeal_id)))


@renders(n.ReminderHalf)
def _reminder_half(x: n.ReminderHalf, c: Context) -> Rendered:
    _ = c._
    text = _("⏳ Half of the time for appeal № {number} is used; the answer is due {date}.")
    return Rendered(text.format(number=escape(x.number), date=c.when(x.deadline)), button(_("Open"), _staff(x.appeal_id)))


@renders(n.ReminderDayBefore)
def _reminder_day_before(x: n.ReminderDayBefore, c: Context) -> Rendered:
    _ = c._
    # The last working day before the last one: after a weekend or a holiday that is not "tomorrow".
    text = _("⏳ Appeal № {number}: the answer is due {weekday}, {date}.")
    return Rendered(
        text.format(number=escape(x.number), weekday=c.weekday(x.deadline), date=c.when(x.deadline)),
        button(_("Open"), _staff(x.appeal_id)),
    )


@renders(n.ReminderDeadline)
def _reminder_deadline(x: n.ReminderDeadline, c: Context) -> Rendered:
    _ = c._
    text = _("⏰ Appeal № {number}: today, {date}, is the last day for the answer.")
    return Rendered(text.format(number=escape(x.number), date=c.when(x.deadline)), button(_("Open"), _staff(x.appeal_id)))


@renders(n.DigestOfficial)
def _digest_official(x: n.DigestOfficial, c: Context) -> Rendered:
    _ = c._
    text = _("📋 Your agency today: due today {due_today}, overdue {overdue}, new {new}. /staff to open the inbox.")
    return Rendered(text.format(due_today=x.due_today, overdue=x.overdue, new=x.new))


# --- coordinators, supervisors, admins --------------------------------------------------------------------


@renders(n.AnswerReview)
def _answer_review(x: n.AnswerReview, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("An answer on appeal № {number} waits for your check.").format(number=escape(x.number)),
        button(_("Open"), _staff(x.appeal_id)),
    )


@renders(n.RequestPending)
def _request_pending(x: n.RequestPending, c: Context) -> Rendered:
    _ = c._
    kind = _("a redirect") if x.kind == RequestKind.redirect else _("an extension")
    return Rendered(
        _("The agency asks for {kind} on appeal № {number}.").format(kind=kind, number=escape(x.number)),
        button(_("Open"), _staff(x.appeal_id)),
    )


@renders(n.Escalation)
def _escalation(x: n.Escalation, c: Context) -> Rendered:
    _ = c._
    text = _("🚨 Appeal № {number} is overdue ({days} d.): the answer was due {date}.")
    return Rendered(
        text.format(number=escape(x.number), days=x.days, date=c.when(x.deadline)), button(_("Open"), _staff(x.appeal_id))
    )


@renders(n.ForwardDue)
def _forward_due(x: n.ForwardDue, c: Context) -> Rendered:
    _ = c._
    text = _("📮 Appeal № {number} is not yet with the competent body; under 59-FZ it must be forwarded by {date}.")
    return Rendered(text.format(number=escape(x.number), date=c.when(x.due)), button(_("Open"), _staff(x.appeal_id)))


@renders(n.DigestCoordinator)
def _digest_coordinator(x: n.DigestCoordinator, c: Context) -> Rendered:
    _ = c._
    if not x.overdue:
        return Rendered(_("📋 No overdue appeals today."))
    lines = [_("📋 Overdue appeals by agency:")]
    for agency_id, count in x.overdue:
        agency = c.directory.agency(agency_id) if agency_id else None
        lines.append(f"• {escape(agency.name(c.lang)) if agency else '—'}: {count}")
    return Rendered("\n".join(lines))


@renders(n.WeeklySummary)
def _weekly_summary(x: n.WeeklySummary, c: Context) -> Rendered:
    _ = c._
    lines = [_("📊 Week {week}: appeals by status").format(week=escape(x.week))]
    lines += [f"• {status_name(code)}: {count}" for code, count in sorted(x.statuses.items())]
    lines.append(_("By agency:"))
    for agency_id, count in x.agencies:
        agency = c.directory.agency(agency_id)
        lines.append(f"• {escape(agency.name(c.lang)) if agency else '—'}: {count}")
    return Rendered("\n".join(lines))


# --- issue 12: residents' ratings in the staff's digests --------------------------------------------------------


def _average(value: float, c: Context) -> str:
    """An average score with one decimal rounded half up (4.25 is 4.3), as the recipient's language writes it (3,4
    in ru and ce)."""
    text = str(Decimal(repr(value)).quantize(Decimal("0.1"), ROUND_HALF_UP))
    return text if c.lang == "en" else text.replace(".", ",")


def _agency_rating(average: float, count: int, days: int, c: Context) -> str:
    _ = c._
    return _("⭐ Residents' rating of your agency's answers over {days} days: {average} of 5 ({count} ratings).").format(
        days=days, average=_average(average, c), count=count
    )


@renders(n.DigestOfficialRated)
def _digest_official_rated(x: n.DigestOfficialRated, c: Context) -> Rendered:
    digest = _digest_official(x, c)
    return Rendered(digest.text + "\n" + _agency_rating(x.rating_average, x.rating_count, x.rating_days, c))


@renders(n.DigestAgencyRating)
def _digest_agency_rating(x: n.DigestAgencyRating, c: Context) -> Rendered:
    return Rendered(_agency_rating(x.rating_average, x.rating_count, x.rating_days, c))  # one emoji: ⭐ (QA)


@renders(n.DigestCoordinatorRated)
def _digest_coordinator_rated(x: n.DigestCoordinatorRated, c: Context) -> Rendered:
    _ = c._
    lines = [_digest_coordinator(x, c).text, "", _("⭐ Residents' ratings over {days} days, the worst first:").format(days=x.rating_days)]
    for agency_id, average, count in x.ratings:
        agency = c.directory.agency(agency_id)
        name = escape(agency.name(c.lang)) if agency else "—"
        lines.append(_("• {agency}: {average} ({count})").format(agency=name, average=_average(average, c), count=count))
    return Rendered("\n".join(lines))


# The low ratings that get a button of their own (a keyboard stays readable).
LOW_RATING_BUTTONS = 10


@renders(n.LowRatings)
def _low_ratings(x: n.LowRatings, c: Context) -> Rendered:
    _ = c._
    day = date.fromisoformat(x.day).strftime("%d.%m.%Y")  # a local date already
    lines = [_("👎 Ratings of 1–2 given on {day}:").format(day=day)]
    for _id, number, agency_id, score, comment in x.items:
        agency = c.directory.agency(agency_id) if agency_id else None
        line = _("• № {number} · {agency} · {score}").format(
            number=escape(number), agency=escape(agency.name(c.lang)) if agency else "—", score=score
        )
        lines.append(line + (f": «{escape(comment)}»" if comment else ""))  # cut short by the service
    if x.more:
        lines.append(_("…and {count} more.").format(count=x.more))
    keyboard = [
        [InlineKeyboardButton(text=f"№ {number}", callback_data=StaffCb(action=StaffAction.show, id=appeal_id).pack())]
        for appeal_id, number, *_rest in x.items[:LOW_RATING_BUTTONS]
    ]
    return Rendered("\n".join(lines), InlineKeyboardMarkup(inline_keyboard=keyboard) if keyboard else None)

# --- the resident's judgement of an answer (issue 12) -------------------------------------------------------


@renders(n.RateRequest)
def _rate_request(x: n.RateRequest, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("How helpful was the answer to your appeal № {number}? Please rate it:").format(number=escape(x.number)),
        kb.rating(x.appeal_id, x.note_id),
    )


@renders(n.RateReminder)
def _rate_reminder(x: n.RateReminder, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _(
            "Your appeal № {number} was answered a few days ago. Did the answer help? Your rating shows the "
            "Regional Management Center how the agencies work:"
        ).format(number=escape(x.number)),
        kb.rating(x.appeal_id),
    )


@renders(n.ClosedUnrated)
def _closed_unrated(x: n.ClosedUnrated, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("Your appeal № {number} is closed without a rating. You can still rate the answer:").format(
            number=escape(x.number)
        ),
        kb.rating(x.appeal_id),
    )


@renders(n.Reopened)
def _reopened(x: n.Reopened, c: Context) -> Rendered:
    _ = c._
    if x.score is not None:
        head = _("🔁 The resident rated the answer on appeal № {number} {score} of 5 and sent it back for another review:")
    else:
        head = _("🔁 The resident says the problem of appeal № {number} is not fixed and sent it back for another review:")
    text = head.format(number=escape(x.number), score=x.score) + "\n\n" + clip(x.text, 1500)
    return Rendered(text, button(_("Open"), _staff(x.appeal_id)))


@renders(n.Withdrawn)
def _withdrawn(x: n.Withdrawn, c: Context) -> Rendered:
    _ = c._
    text = _(
        "↩️ The applicant withdrew the consent to the processing of personal data and appeal № {number} with it: "
        "the appeal is closed and its personal data are erased."
    ).format(number=escape(x.number))
    return Rendered(text, button(_("Open"), _staff(x.appeal_id)))


@renders(n.FollowupQuestion)
def _followup_question(x: n.FollowupQuestion, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _("Some time ago your appeal № {number} was answered and closed. Is the problem actually fixed?").format(
            number=escape(x.number)
        ),
        kb.followup(x.appeal_id),
    )


@renders(n.PollInvite)
def _poll(x: n.PollInvite, c: Context) -> Rendered:
    text, markup = ballot(
        x.poll_id, x.question, x.options, multiple=x.multiple, other=x.other,
        closes_at=datetime.fromisoformat(x.closes_at), tz=c.settings.tz,
    )
    return Rendered(text, markup)


# --- broadcasts (issue 13) ------------------------------------------------------------------------------------


@renders(n.BroadcastReport)
def _broadcast_report(x: n.BroadcastReport, c: Context) -> Rendered:
    _ = c._
    if x.status == "cancelled":
        head = _("📣 Broadcast № {id} was cancelled. Its report:").format(id=x.broadcast_id)
    else:
        head = _("📣 Broadcast № {id} is finished. Its report:").format(id=x.broadcast_id)
    lines = [
        head,
        _("Recipients: {count}.").format(count=x.recipients),
        _("Delivered: {count}.").format(count=x.delivered),
        _("Blocked the bot: {count}.").format(count=x.blocked),
        _("Other errors: {count}.").format(count=x.failed),
    ]
    if x.cancelled:
        lines.append(_("Not sent (cancelled): {count}.").format(count=x.cancelled))
    if x.unsure:
        lines.append(_("Possibly received twice (a connection or the bot failed while sending): {count}.").format(count=x.unsure))
    if x.flood_waits:
        lines.append(_("Telegram's flood control paused sending {count} times.").format(count=x.flood_waits))
    return Rendered("\n".join(lines), button(_("Open the broadcast"), BroadcastCb(a=BroadcastAction.open, id=x.broadcast_id).pack()))


@renders(n.BroadcastHeld)
def _broadcast_held(x: n.BroadcastHeld, c: Context) -> Rendered:
    _ = c._
    return Rendered(
        _(
            "⚠️ Broadcast № {id} is paused: Telegram refused its message ({reason}). Every recipient would get the same "
            "refusal, so nothing more is sent. Cancel it and send a corrected broadcast."
        ).format(id=x.broadcast_id, reason=escape(x.reason)),
        button(_("Open the broadcast"), BroadcastCb(a=BroadcastAction.open, id=x.broadcast_id).pack()),
    )
