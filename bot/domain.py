"""The words of the domain: statuses, kinds, roles, reasons and the state machine of an appeal.

Plain Python (no aiogram, no SQLAlchemy), imported by every layer: handlers, services and the ORM models.
Every enum is a StrEnum whose values are the strings stored in the database, so a member compares equal to
the stored string and the schema's meaning does not depend on this module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any


class AppealKind(StrEnum):
    message = "message"  # сообщение, ПОС track
    appeal = "appeal"  # обращение under 59-ФЗ


class AppealStatus(StrEnum):
    moderation = "moderation"
    rejected = "rejected"
    assigned = "assigned"
    in_progress = "in_progress"
    clarification = "clarification"
    answer_review = "answer_review"
    answered = "answered"
    reopened = "reopened"
    closed = "closed"


class AttachmentKind(StrEnum):
    photo = "photo"
    video = "video"
    document = "document"


class AttachmentSource(StrEnum):
    """Who added a file: the resident at filing, the resident answering a clarification, or an official's answer."""

    resident = "resident"
    clarification = "clarification"
    official = "official"


class Role(StrEnum):
    admin = "admin"
    coordinator = "coordinator"
    official = "official"
    supervisor = "supervisor"
    analyst = "analyst"
    editor = "editor"
    # The head of a thematic block (ответственный за отраслевой блок): its statistics and, read-only, its appeals.
    block_head = "block_head"
    # The ЦУР's curator or head: every statistic, never an appeal's text or a resident's data.
    leadership = "leadership"


AGENCY_ROLES = frozenset({Role.official, Role.supervisor})
# Who triages, routes and reviews; admins may do what coordinators do.
COORDINATING_ROLES = frozenset({Role.coordinator, Role.admin})
# Who reads statistics of the whole region (bot/services/stats.py narrows the others: a block head to the block,
# a supervisor to the agency, an official to the appeals they handle).
STATS_ALL_ROLES = frozenset({Role.admin, Role.analyst, Role.leadership, Role.coordinator})
STATS_ROLES = STATS_ALL_ROLES | {Role.block_head, Role.supervisor, Role.official}


class RejectReason(StrEnum):
    """Grounds to leave an appeal without consideration (59-ФЗ art. 11) and the ПОС's moderation rules."""

    obscene = "obscene"
    unreadable = "unreadable"
    no_address = "no_address"
    spam = "spam"
    repeated = "repeated"
    out_of_competence = "out_of_competence"


class RequestKind(StrEnum):
    """What an agency asks the coordinator for."""

    redirect = "redirect"
    extension = "extension"


class RequestState(StrEnum):
    pending = "pending"
    approved = "approved"
    declined = "declined"


class NoteKind(StrEnum):
    """What people write on an appeal after filing."""

    clarification_question = "clarification_question"
    clarification_reply = "clarification_reply"
    interim = "interim"
    answer = "answer"
    # The resident's words when sending an answered appeal back (a low rating, or "not fixed" at the follow-up).
    reopen = "reopen"


class NoteStatus(StrEnum):
    """A final answer's check by the coordinator."""

    review = "review"
    approved = "approved"
    returned = "returned"


class ReminderKind(StrEnum):
    half = "half"
    day_before = "day_before"
    deadline = "deadline"
    escalation = "escalation"
    forward_due = "forward_due"
    # The resident's judgement of an answer: one reminder to rate it, then it closes unrated.
    rate_reminder = "rate_reminder"
    rate_close = "rate_close"
    # "Is the problem actually fixed?", some days after a physical problem closed with a rating of 3–5.
    followup = "followup"


class FollowupAnswer(StrEnum):
    """The answer to "Is the problem actually fixed?" (the FixMyStreet questionnaire)."""

    yes = "yes"
    no = "no"
    unknown = "unknown"


# A rating is 1..5; at or below this the resident is offered to send the appeal back.
LOW_RATING = 2
# Closed with at least this rating, a physical problem gets the "is it fixed?" follow-up.
FOLLOWUP_MIN_RATING = 3


class DigestKind(StrEnum):
    daily = "daily"
    weekly = "weekly"
    # The coordinators' list of the previous day's ratings of 1–2 (issue 12).
    low_ratings = "low_ratings"


# The reminders that go to the agency's officials while the clock runs.
AGENCY_REMINDERS = (ReminderKind.half, ReminderKind.day_before, ReminderKind.deadline)


class OutboxState(StrEnum):
    pending = "pending"
    sent = "sent"
    blocked = "blocked"
    failed = "failed"
    cancelled = "cancelled"  # a broadcast item whose broadcast was cancelled before it went out


class Lane(IntEnum):
    """Which queue of the outbox a row waits in: the sender serves `personal` rows (appeal notifications, replies,
    reminders) before any `bulk` row (broadcast items, poll invitations), so a broadcast never delays them."""

    personal = 0
    bulk = 1


class BroadcastStatus(StrEnum):
    """scheduled → running ⇄ paused → done | cancelled. A broadcast's recipients are listed while it runs (the
    `listed` flag of its row says when all are); pausing stops its items, not the listing."""

    scheduled = "scheduled"
    running = "running"
    paused = "paused"
    done = "done"
    cancelled = "cancelled"


# The states of a broadcast that has not ended yet.
LIVE_BROADCAST = frozenset({BroadcastStatus.scheduled, BroadcastStatus.running, BroadcastStatus.paused})


@dataclass(frozen=True)
class BroadcastAudience:
    """Who a broadcast goes to, among the residents who consented and did not stop news: every filter given must
    hold (none given: all of them). `districts`: residents following one of these districts (their chosen ones, or
    else the district of their latest appeal); `block_id`: residents who did not turn this thematic block off;
    `language`: residents whose interface language it is (no language set counts as "ru")."""

    districts: tuple[int, ...] = ()
    block_id: int | None = None
    language: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"districts": sorted(set(self.districts)), "block_id": self.block_id, "language": self.language}

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> BroadcastAudience:
        value = value or {}
        block = value.get("block_id")
        return cls(
            districts=tuple(int(d) for d in value.get("districts") or ()),
            block_id=int(block) if block is not None else None,
            language=value.get("language") or None,
        )


# --- the state machine ---------------------------------------------------------------------------------

S = AppealStatus

# Every legal move. assigned → assigned is a redirect to another agency.
TRANSITIONS: dict[AppealStatus, frozenset[AppealStatus]] = {
    S.moderation: frozenset({S.assigned, S.rejected, S.closed}),
    S.reopened: frozenset({S.assigned, S.rejected, S.closed}),
    S.assigned: frozenset({S.in_progress, S.clarification, S.assigned}),
    S.in_progress: frozenset({S.clarification, S.answer_review, S.assigned}),
    S.clarification: frozenset({S.in_progress}),
    S.answer_review: frozenset({S.answered, S.in_progress}),
    S.answered: frozenset({S.closed, S.reopened}),
    S.rejected: frozenset({S.reopened}),
    S.closed: frozenset({S.reopened}),
}
# Waiting for a coordinator's triage.
TRIAGE = (S.moderation, S.reopened)
# With an agency, from assignment until the answer is approved.
OPEN_FOR_AGENCY = (S.assigned, S.in_progress, S.clarification, S.answer_review)
# The deadline clock runs (a clarification pauses it, an answer under review waits for its check).
RUNNING = (S.assigned, S.in_progress)
# Nothing more is expected of the agency.
FINISHED = (S.answered, S.closed, S.rejected)
# Done with: the statuses an appeal is "closed" in for the privacy rules (retention counts from entering one; an
# appeal in any other status is still open for its applicant, an answered one waiting for its rating included).
CLOSED = (S.closed, S.rejected)
# The resident is waiting / the answer waits for its check: the agency's reminders stop until work resumes.
PAUSED = (S.clarification, S.answer_review)


def can_transition(source: str, target: str, event: HistoryEvent | None = None) -> bool:
    """Whether an appeal in status `source` may move to `target` (as `event`).

    The applicant's withdrawal (HistoryEvent.withdrawn, bot/services/privacy.py) is a move of its own: it closes an
    appeal from any status that is not closed yet, an agency's included, and no other event may make it there."""
    try:
        if event == HistoryEvent.withdrawn:
            return AppealStatus(target) == S.closed and AppealStatus(source) not in CLOSED
        return AppealStatus(target) in TRANSITIONS.get(AppealStatus(source), frozenset())
    except ValueError:
        return False


# --- the status history ----------------------------------------------------------------------------------


class HistoryEvent(StrEnum):
    """What a status-history entry records; each is shown as a sentence of its own, never as a raw code."""

    filed = "filed"
    routed = "routed"
    redirected = "redirected"
    taken = "taken"
    clarification_requested = "clarification_requested"
    clarified = "clarified"
    answer_submitted = "answer_submitted"
    answer_returned = "answer_returned"
    answered = "answered"
    rejected = "rejected"
    duplicate = "duplicate"
    extended = "extended"
    closed = "closed"
    reopened = "reopened"
    # Nobody rated the answer within ratings.close_days: closed with no score (details.days says how long).
    closed_unrated = "closed_unrated"
    # The applicant withdrew the consent and the open appeal with it (bot/services/privacy.py): closed.
    withdrawn = "withdrawn"


class AccessKind(StrEnum):
    """What a staff member was shown of a resident's data (152-ФЗ: who accessed what, when): one access_log row each."""

    # The staff card of an appeal, each time it is shown (opened, or shown again after an action).
    appeal_card = "appeal_card"
    # The files of an appeal and its notes, sent by the card's «Files» button.
    appeal_files = "appeal_files"
    # The pin of the exact place, sent by the card's «Location» button.
    appeal_location = "appeal_location"
    # The applicant's name and contact (a 59-ФЗ appeal's), on a card shown.
    resident_contact = "resident_contact"
    # The resident's own words pushed to staff by a notification: a clarification reply, the words sending an
    # answered appeal back, a low rating's comment.
    resident_reply = "resident_reply"
    # An admin read a page of the access log, or exported it (the appeal or person asked for is on the row).
    access_log_read = "access_log_read"
    access_log_export = "access_log_export"


class Visibility(StrEnum):
    """Who reads a status-history entry: everyone who may see the appeal, or staff only."""

    resident = "resident"
    staff = "staff"


# What each move of TRANSITIONS records (a use case may name a more precise event, e.g. a duplicate's closing).
EVENT_OF_MOVE: dict[tuple[AppealStatus, AppealStatus], HistoryEvent] = {
    (S.moderation, S.assigned): HistoryEvent.routed,
    (S.moderation, S.rejected): HistoryEvent.rejected,
    (S.moderation, S.closed): HistoryEvent.closed,
    (S.reopened, S.assigned): HistoryEvent.routed,
    (S.reopened, S.rejected): HistoryEvent.rejected,
    (S.reopened, S.closed): HistoryEvent.closed,
    (S.assigned, S.in_progress): HistoryEvent.taken,
    (S.assigned, S.clarification): HistoryEvent.clarification_requested,
    (S.assigned, S.assigned): HistoryEvent.redirected,
    (S.in_progress, S.clarification): HistoryEvent.clarification_requested,
    (S.in_progress, S.answer_review): HistoryEvent.answer_submitted,
    (S.in_progress, S.assigned): HistoryEvent.redirected,
    (S.clarification, S.in_progress): HistoryEvent.clarified,
    (S.answer_review, S.answered): HistoryEvent.answered,
    (S.answer_review, S.in_progress): HistoryEvent.answer_returned,
    (S.answered, S.closed): HistoryEvent.closed,
    (S.answered, S.reopened): HistoryEvent.reopened,
    (S.rejected, S.reopened): HistoryEvent.reopened,
    (S.closed, S.reopened): HistoryEvent.reopened,
}
# The ЦУР's check of an answer is between the ЦУР and the agency: a returned answer never concerns the resident,
# who only ever reads the approved one.
STAFF_ONLY_EVENTS = frozenset({HistoryEvent.answer_returned})


@dataclass(frozen=True, slots=True)
class HistoryDetails:
    """The structured part of a status-history entry (the `params` JSON column), rendered into its sentence.

    Free text typed by staff (a return comment, a request's reason) is not here: it is the entry's `comment`,
    which only staff ever read."""

    agency_id: int | None = None  # routed, redirected: the agency it went to
    reason: RejectReason | None = None  # rejected
    original: str | None = None  # duplicate: the original's registration number
    days: int | None = None  # extended: by how many days
    deadline: datetime | None = None  # extended: the new deadline (UTC)

    def params(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "agency_id": self.agency_id,
            "reason": self.reason.value if self.reason else None,
            "original": self.original,
            "days": self.days,
            "deadline": self.deadline.isoformat() if self.deadline else None,
        }
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def of(cls, params: dict[str, Any] | None) -> HistoryDetails:
        """Read back what params() stored; a value that no longer fits (an unknown reason) is left out."""
        params = params or {}
        reason = params.get("reason")
        deadline = params.get("deadline")
        return cls(
            agency_id=int(params["agency_id"]) if params.get("agency_id") is not None else None,
            reason=RejectReason(reason) if reason in RejectReason.__members__ else None,
            original=str(params["original"]) if params.get("original") else None,
            days=int(params["days"]) if params.get("days") is not None else None,
            deadline=datetime.fromisoformat(deadline) if deadline else None,
        )


# --- statistics (issue 14) -------------------------------------------------------------------------------


class Metric(StrEnum):
    """What a slice counts. Each metric is read at its own event's time (see bot/services/stats.py METRICS):
    received and rejected at filing, the answer metrics when the answer reached the resident, the first action
    when staff first acted, ratings when given, "is it fixed?" when answered; "overdue" is the state now of the
    appeals received in the period."""

    received = "received"
    answered = "answered"
    on_time = "on_time"  # answered by the deadline in force when the answer was given
    overdue = "overdue"  # with an agency, past the deadline, now
    on_time_share = "on_time_share"
    first_action_median = "first_action_median"
    first_action_p90 = "first_action_p90"
    answer_median = "answer_median"  # working time: the clarification pauses are left out
    answer_p90 = "answer_p90"
    reopened_share = "reopened_share"  # of the answered appeals, those the resident sent back at least once
    rejected_share = "rejected_share"  # of the received appeals; the table also splits it by reason
    rating_avg = "rating_avg"
    rating_count = "rating_count"
    fixed_share = "fixed_share"  # "is it fixed?": yes among the yes and no answers


class MetricKind(StrEnum):
    """How a metric's value reads and adds up: a count sums, a share and an average add up through their numerator
    and denominator, a duration (a percentile, in seconds) does not add up at all."""

    count = "count"
    share = "share"
    average = "average"
    duration = "duration"


METRIC_KINDS: dict[Metric, MetricKind] = {
    Metric.received: MetricKind.count,
    Metric.answered: MetricKind.count,
    Metric.on_time: MetricKind.count,
    Metric.overdue: MetricKind.count,
    Metric.on_time_share: MetricKind.share,
    Metric.first_action_median: MetricKind.duration,
    Metric.first_action_p90: MetricKind.duration,
    Metric.answer_median: MetricKind.duration,
    Metric.answer_p90: MetricKind.duration,
    Metric.reopened_share: MetricKind.share,
    Metric.rejected_share: MetricKind.share,
    Metric.rating_avg: MetricKind.average,
    Metric.rating_count: MetricKind.count,
    Metric.fixed_share: MetricKind.share,
}


class Dimension(StrEnum):
    """What a slice is cut by (at most two at once) or filtered on."""

    block = "block"
    category = "category"
    agency = "agency"
    district = "district"
    status = "status"
    kind = "kind"
    month = "month"
    week = "week"
    day = "day"


TIME_DIMENSIONS = frozenset({Dimension.month, Dimension.week, Dimension.day})
# The dimensions whose values are directory ids (the others are codes or dates).
ID_DIMENSIONS = frozenset({Dimension.block, Dimension.category, Dimension.agency, Dimension.district})
MAX_DIMENSIONS = 2


class PeriodKind(StrEnum):
    """The periods offered by /stats, in the region's time: `custom` is two typed dates, both days included."""

    today = "today"
    days7 = "days7"
    days30 = "days30"
    this_month = "this_month"
    last_month = "last_month"
    quarter = "quarter"
    year = "year"
    custom = "custom"


@dataclass(frozen=True)
class SliceSpec:
    """One statistical slice as the builder, a preset and a scheduled report state it: what to count, cut by what,
    among which appeals, over which period. Filters are (dimension, allowed values); values of an ID dimension are
    ints, of the others strings."""

    metric: Metric = Metric.received
    dims: tuple[Dimension, ...] = ()
    filters: tuple[tuple[Dimension, tuple[int | str, ...]], ...] = ()
    period: PeriodKind = PeriodKind.days30
    start: str | None = None  # custom: ISO dates (YYYY-MM-DD), both included, in the region's time
    end: str | None = None

    def filter_of(self, dimension: Dimension) -> tuple[int | str, ...]:
        return next((values for dim, values in self.filters if dim == dimension), ())

    def with_filter(self, dimension: Dimension, values: tuple[int | str, ...]) -> SliceSpec:
        rest = tuple((dim, vals) for dim, vals in self.filters if dim != dimension)
        return SliceSpec(
            self.metric, self.dims, rest + (((dimension, values),) if values else ()), self.period, self.start, self.end
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric.value,
            "dims": [d.value for d in self.dims],
            "filters": {dim.value: list(values) for dim, values in self.filters},
            "period": self.period.value,
            "start": self.start,
            "end": self.end,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SliceSpec:
        """Read back what to_json() stored; raises ValueError on anything that does not fit (a forged preset)."""
        dims = tuple(Dimension(d) for d in value.get("dims") or ())
        if len(dims) > MAX_DIMENSIONS or len(set(dims)) != len(dims):
            raise ValueError("dimensions")
        filters: list[tuple[Dimension, tuple[int | str, ...]]] = []
        for name, values in (value.get("filters") or {}).items():
            dim = Dimension(name)
            if dim in TIME_DIMENSIONS:
                raise ValueError("a time dimension is not a filter")
            items = tuple(int(v) if dim in ID_DIMENSIONS else str(v) for v in values)
            if items:
                filters.append((dim, items))
        return cls(
            metric=Metric(value.get("metric", Metric.received)),
            dims=dims,
            filters=tuple(sorted(filters)),
            period=PeriodKind(value.get("period", PeriodKind.days30)),
            start=value.get("start") or None,
            end=value.get("end") or None,
        )


class ReportSchedule(StrEnum):
    """When a scheduled preset is sent: `weekly` on Monday morning for the week before, `monthly` on the 1st for
    the month before (at scheduler.digest_time in the region's time)."""

    weekly = "weekly"
    monthly = "monthly"


class ReportKind(StrEnum):
    """What a stored report (storage.models.StatReport) is."""

    preset = "preset"  # a scheduled preset's slice
    region = "region"  # the leadership's weekly "state of the region"
    block = "block"  # a block head's weekly report of the block
    rating = "rating"  # the monthly agency rating


# --- personal data (issue 16) ------------------------------------------------------------------------------

# The Telegram id of "the anonymous applicant": the one users row (made when first needed, never active, no
# consent, no roles) every anonymized appeal, its ratings and its applicant's history entries point to, so that the
# foreign keys and the statistics stay as they were while nothing links the appeal to a person. Telegram's ids
# start at 1.
ANONYMOUS_TG_ID = 0


def typed_number(text: str) -> str:
    """A registration number as a person types or copies it from the bot's messages: «№ 2026-000123»,
    «№2026-000123» or «2026-000123» (QA: the bot writes every number with «№»)."""
    return text.strip().removeprefix("№").strip()
