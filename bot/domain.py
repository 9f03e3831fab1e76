"""The words of the domain: statuses, kinds, roles, reasons and the state machine of an appeal.

Plain Python (no aiogram, no SQLAlchemy), imported by every layer: handlers, services and the ORM models.
Every enum is a StrEnum whose values are the strings stored in the database, so a member compares equal to
the stored string and the schema's meaning does not depend on this module."""

from __future__ import annotations

from enum import StrEnum


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


class DigestKind(StrEnum):
    daily = "daily"
    weekly = "weekly"


# The reminders that go to the agency's officials while the clock runs.
AGENCY_REMINDERS = (ReminderKind.half, ReminderKind.day_before, ReminderKind.deadline)


class OutboxState(StrEnum):
    pending = "pending"
    sent = "sent"
    blocked = "blocked"
    failed = "failed"


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
