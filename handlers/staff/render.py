"""The staff card of an appeal, and what each person may do with it, by role and status.

`actions()` decides both which buttons the card shows and which of its screens may open: a forged press of a
hidden button meets the same rule in the screen's getter."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from html import escape
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot.domain import (
    AGENCY_ROLES,
    COORDINATING_ROLES,
    TRIAGE,
    AppealStatus,
    FollowupAnswer,
    NoteKind,
    NoteStatus,
    RequestKind,
)
from bot.i18n import N_
from bot.services.directory import DirectoryService
from bot.services.errors import InvalidInput, NotYours
from bot.services.users import Actor
from bot.services.views import CardFollowup, CardRating, Note, StaffCard
from bot.texts import clip, kind_name, local_date, local_time, place, status_name, topic
from handlers import history

S = AppealStatus
# The latest entries of the card's history (with comments, a line is at most ~450 characters).
HISTORY_LIMIT = 6
# The latest ratings of the card's answers (one per answer; a comment is at most ~250 characters).
RATINGS_LIMIT = 3
NOTE_NAMES = {
    NoteKind.clarification_question: "❓",
    NoteKind.clarification_reply: "💬",
    NoteKind.interim: "🕐",
    NoteKind.answer: "✅",
    NoteKind.reopen: "🔁",
}
# The resident's score of an answer, as staff read it (1..5).
SCORE_NAMES = {
    1: N_("1 — did not help at all"),
    2: N_("2 — rather did not help"),
    3: N_("3 — helped in part"),
    4: N_("4 — helped"),
    5: N_("5 — the problem is solved"),
}
FOLLOWUP_NAMES = {
    FollowupAnswer.yes: N_("yes, fixed"),
    FollowupAnswer.no: N_("no, not fixed"),
    FollowupAnswer.unknown: N_("does not know"),
}


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
        *reopened_line(card),
        _("<b>Filed:</b> {at}").format(at=local_time(card.created_at, tz)),
        _("<b>Topic:</b> {topic}").format(topic=escape(topic(directory, card.category_id, actor.lang))),
        _("<b>Kind:</b> {kind}").format(kind=kind_name(card.kind)),
        _("<b>District:</b> {district}").format(district=escape(district.name(actor.lang)) if district else "—"),
    ]
    if card.read_only:
        # A block head's card holds nothing of the resident: no place line at all, rather than an empty one.
        lines.insert(1, _("👁 Read-only: the resident's personal data is not shown."))
    else:
        lines.append(_("<b>Place:</b> {place}").format(place=place(card.address, card.latitude, card.longitude)))
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
        lines.append("\n" + note_text(note, tz))
    if card.ratings:
        shown = card.ratings[-RATINGS_LIMIT:]
        lines += ["", _("<b>The resident's rating of the answer:</b>"), *(rating_text(r, tz) for r in shown)]
    if card.followup:
        lines += ["", followup_text(card.followup, tz)]
    if card.resident_history:
        others = ", ".join(f"{n} ({status_name(s)})" for n, s in card.resident_history[:5])
        lines.append("\n" + _("<b>Other appeals of this resident:</b> {list}").format(list=others))
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
    if card.history:
        entries = card.history[-HISTORY_LIMIT:]
        lines += ["", _("<b>History:</b>")]
        if len(card.history) > len(entries):
            # Long histories show their newest entries; the earlier ones are said to exist (QA: they vanished).
            lines.append(_("… {count} earlier entries").format(count=len(card.history) - len(entries)))
        lines += history.staff_lines(entries, directory, actor.lang, tz)
    return "\n".join(lines)


def reopened_line(card: StaffCard) -> list[str]:
    """The marker of an appeal the resident sent back: how many times, of how many allowed."""
    if card.reopen_count <= 0:
        return []
    return [_("🔁 <b>Reopened</b> {count} of {limit} times").format(count=card.reopen_count, limit=card.max_reopens)]


def score_name(score: int) -> str:
    name = SCORE_NAMES.get(score)
    return _(name) if name else str(score)


def rating_text(rating: CardRating, tz: ZoneInfo) -> str:
    """One rating: its score with the label, when, and the resident's comment (escaped, clipped)."""
    text = "⭐ " + _("{score} · {at}").format(score=score_name(rating.score), at=local_time(rating.at, tz))
    if rating.comment:
        text += "\n" + _("<b>Comment:</b> {comment}").format(comment=clip(rating.comment, 200))
    return text


def followup_text(followup: CardFollowup, tz: ZoneInfo) -> str:
    """The answer to "Is the problem actually fixed?", or that it is still awaited."""
    if followup.answer is None:
        return _("<b>Is it fixed?</b> asked {at}, no answer yet").format(at=local_time(followup.asked_at, tz))
    at = local_time(followup.answered_at or followup.asked_at, tz)
    text = _("<b>Is it fixed?</b> {answer} · {at}").format(answer=_(FOLLOWUP_NAMES[followup.answer]), at=at)
    if followup.comment:
        text += "\n" + _("<b>Comment:</b> {comment}").format(comment=clip(followup.comment, 200))
    return text


def note_text(note: Note, tz: ZoneInfo) -> str:
    """A note of the card; a final answer says whether it is the one under check, approved, or returned (with
    the coordinator's comment): a re-submitted answer is the current one, the returned one stays for the record."""
    extra = f" 📎{len(note.attachments)}" if note.attachments else ""
    at = local_time(note.at, tz)
    if note.kind != NoteKind.answer or note.status is None:
        # A resident's words are blanked when the appeal is anonymized (storage/repositories/privacy.py): said so,
        # not an empty line (QA).
        text = clip(note.text, 400) if note.text else "<i>" + _("removed when the appeal was anonymized") + "</i>"
        return f"{NOTE_NAMES.get(note.kind, '•')} {at}{extra}: {text}"
    if note.status == NoteStatus.returned:
        text = _("↩️ <b>Answer returned for rework</b> · {at}").format(at=at) + f"{extra}: {clip(note.text, 200)}"
        if note.review_comment:
            text += "\n" + _("<b>Return comment:</b> {comment}").format(comment=clip(note.review_comment, 300))
        return text
    if note.status == NoteStatus.approved:
        label = _("✅ <b>Answer, approved</b> · {at}").format(at=at)
    else:
        label = _("✅ <b>Answer, waiting for the check</b> · {at}").format(at=at)
    return f"{label}{extra}: {clip(note.text, 400)}"


class Action(StrEnum):
    """What can be done with an appeal from its card; each is a button, most open a screen of their own."""

    route = "route"  # to the agency the routing matrix suggests
    route_to = "route_to"  # to another agency (a picker)
    category = "category"
    kind = "kind"
    reject = "reject"
    duplicate = "duplicate"
    approve = "approve"
    send_back = "send_back"
    decide = "decide"  # the agency's pending requests
    take = "take"
    clarify = "clarify"
    interim = "interim"
    redirect = "redirect"
    extension = "extension"
    answer = "answer"
    files = "files"
    location = "location"


COORDINATION = frozenset(
    {
        Action.route,
        Action.route_to,
        Action.category,
        Action.kind,
        Action.reject,
        Action.duplicate,
        Action.approve,
        Action.send_back,
        Action.decide,
    }
)
AGENCY_WORK = frozenset({Action.take, Action.clarify, Action.interim, Action.redirect, Action.extension, Action.answer})


def in_agency(card: StaffCard, actor: Actor) -> bool:
    return actor.has(*AGENCY_ROLES) and actor.agency_id is not None and card.agency_id == actor.agency_id


def actions(card: StaffCard, actor: Actor, directory: DirectoryService) -> frozenset[Action]:
    """What `actor` may do with the appeal now (the services check it all again when it is done)."""
    found: set[Action] = set()
    if actor.has(*COORDINATING_ROLES):
        if card.status in TRIAGE:
            if directory.agency(card.suggested_agency_id or 0) is not None:
                found.add(Action.route)
            found |= {Action.route_to, Action.category, Action.kind, Action.reject, Action.duplicate}
        if card.status == S.answer_review:
            found |= {Action.approve, Action.send_back}
        if card.requests:
            found.add(Action.decide)
    if in_agency(card, actor):
        if card.status == S.assigned:
            found.add(Action.take)
        if card.status in (S.assigned, S.in_progress):
            found |= {Action.clarify, Action.interim, Action.redirect}
        if card.status in (S.assigned, S.in_progress, S.clarification) and not card.extension_used:
            found.add(Action.extension)
        if card.status == S.in_progress:
            found.add(Action.answer)
    if card.attachments or any(n.attachments for n in card.notes):
        found.add(Action.files)
    if card.latitude is not None and card.longitude is not None:
        found.add(Action.location)
    return frozenset(found)


def require(card: StaffCard, actor: Actor, action: Action, directory: DirectoryService) -> None:
    """Refuse a screen or an action the card would not offer: NotYours for the wrong role (the card is theirs to
    see, so they are told who may act), InvalidInput for the right role at the wrong moment (the appeal moved on
    since the card was shown)."""
    if action in actions(card, actor, directory):
        return
    if (action in COORDINATION and not actor.has(*COORDINATING_ROLES)) or (
        action in AGENCY_WORK and not in_agency(card, actor)
    ):
        raise NotYours(action.value)
    raise InvalidInput(action.value)


def files_count(card: StaffCard) -> int:
    return len(card.attachments) + sum(len(n.attachments) for n in card.notes)


def request_label(kind: RequestKind) -> str:
    return _("redirect") if kind == RequestKind.redirect else _("extension")
