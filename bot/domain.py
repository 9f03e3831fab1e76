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


AGENCY_ROLES = frozenset({Role.official, Role.supervisor})
# Who triages, routes and reviews; admins may do what coordinators do.
COORDINATING_ROLES = frozenset({Role.coordinator, Role.admin})


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
# The resident is waiting / the answer waits for its check: the agency's reminders stop until work resumes.
PAUSED = (S.clarification, S.answer_review)


def can_transition(source: str, target: str) -> bool:
    """Whether an appeal in status `source` may move to `target`."""
    try:
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
