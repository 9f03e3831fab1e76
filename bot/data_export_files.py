"""The two documents of /mydata (bot/services/data_export.py PersonalData): a JSON file for machines and a readable
HTML page for the person.

JSON: UTF-8, indented, every key always present (null when there is nothing), in a fixed order, with
`schema_version`; a moment is {"utc": ISO 8601 with Z, "local": ISO 8601 in the region's zone}; codes (statuses,
kinds, events) as stored, with names in the person's language beside them where a person reads them.

HTML: one self-contained page (inline style, no scripts, no external resources), in the person's language, a header
saying what it is, who the operator is, when it was made and under which law (152-ФЗ art. 14), then one heading per
section. Every value that came from a person is escaped.

Called inside the person's locale (aiogram's i18n keeps it in a context variable, which `asyncio.to_thread` carries
to the worker thread the handler runs these in). The status history's sentences are those of «My appeals»: the
caller passes `describe` (handlers/history.py), which returns escaped HTML."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from html import escape, unescape
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot.domain import AttachmentKind, AttachmentSource, FollowupAnswer, NoteKind, OutboxState, ReminderKind
from bot.i18n import N_
from bot.keyboards import LANGUAGE_NAMES
from bot.notifications import ROLES
from bot.services.appeals import HistoryEntry
from bot.services.data_export import (
    SCHEMA_VERSION,
    AppealData,
    FileInfo,
    NewsChoice,
    NotificationItem,
    PersonalData,
    PollItem,
)
from bot.services.directory import Named
from bot.texts import kind_name, local_time, place, status_name

Describe = Callable[[HistoryEntry], str]

LAW = "152-ФЗ ст. 14"
LAW_EN = "152-FZ art. 14"  # in an English file, as the bot writes the laws in English (59-FZ)
NOTE_NAMES = {
    NoteKind.clarification_question: N_("Question to you"),
    NoteKind.clarification_reply: N_("Your reply"),
    NoteKind.interim: N_("Interim answer"),
    NoteKind.answer: N_("Answer"),
    NoteKind.reopen: N_("Your reason to send it back"),
}
FILE_KINDS = {
    AttachmentKind.photo: N_("photo"),
    AttachmentKind.video: N_("video"),
    AttachmentKind.document: N_("document"),
}
FILE_SOURCES = {
    AttachmentSource.resident: N_("sent by you with the appeal"),
    AttachmentSource.clarification: N_("sent by you with a reply"),
    AttachmentSource.official: N_("sent with the answer"),
}
FOLLOWUP_NAMES = {
    FollowupAnswer.yes: N_("yes, fixed"),
    FollowupAnswer.no: N_("no, not fixed"),
    FollowupAnswer.unknown: N_("did not know"),
}
REMINDER_NAMES = {
    ReminderKind.rate_reminder: N_("a reminder to rate the answer"),
    ReminderKind.rate_close: N_("closing the appeal if the answer is not rated"),
    ReminderKind.followup: N_("the question «Is the problem actually fixed?»"),
}
DELIVERY_NAMES = {
    OutboxState.pending: N_("waiting to be sent"),
    OutboxState.sent: N_("delivered"),
    OutboxState.blocked: N_("not delivered"),
    OutboxState.failed: N_("not delivered"),
    OutboxState.cancelled: N_("not sent (cancelled)"),
}


def name_of(table: dict[Any, str], code: str | None) -> str:
    if code is None:
        return "—"
    found = table.get(code)
    return _(found) if found is not None else code


def file_stem(data: PersonalData) -> str:
    return f"mydata-{data.generated_at:%Y-%m-%d}"


# --- JSON -------------------------------------------------------------------------------------------------------


def moment(value: datetime | None, tz: ZoneInfo) -> dict[str, str] | None:
    if value is None:
        return None
    utc = value.astimezone(UTC)
    return {"utc": utc.strftime("%Y-%m-%dT%H:%M:%SZ"), "local": utc.astimezone(tz).isoformat(timespec="seconds")}


def ref(value: Named | None, lang: str) -> dict[str, str] | None:
    return None if value is None else {"code": value.code, "name": value.name(lang)}


def files_json(files: Iterable[FileInfo], tz: ZoneInfo) -> list[dict[str, Any]]:
    return [{"kind": f.kind, "source": f.source, "added_at": moment(f.added_at, tz)} for f in files]


def appeal_json(a: AppealData, lang: str, tz: ZoneInfo, describe: Describe) -> dict[str, Any]:
    location = None if a.latitude is None or a.longitude is None else {"latitude": a.latitude, "longitude": a.longitude}
    return {
        "number": a.number,
        "kind": a.kind,
        "status": a.status,
        "status_name": status_name(a.status),
        "block": ref(a.block, lang),
        "category": ref(a.category, lang),
        "district": ref(a.district, lang),
        "address": a.address,
        "location": location,
        "applicant_name": a.applicant_name,
        "applicant_contact": a.applicant_contact,
        "text": a.text,
        "language": a.locale,
        "created_at": moment(a.created_at, tz),
        "deadline_at": moment(a.deadline_at, tz),
        "answered_at": moment(a.answered_at, tz),
        "reject_reason": a.reject_reason,
        "duplicate_of": a.duplicate_of,
        "reopen_count": a.reopen_count,
        "history": [
            {
                "at": moment(h.at, tz),
                "event": h.event.value,
                "status": h.status.value,
                "text": unescape(describe(h)),
            }
            for h in a.history
        ],
        "messages": [
            {
                "kind": n.kind,
                "from": "you" if n.from_you else "operator",
                "text": n.text,
                "at": moment(n.at, tz),
                "files": files_json(n.files, tz),
            }
            for n in a.notes
        ],
        "files": files_json(a.files, tz),
        "ratings": [
            {"score": r.score, "comment": r.comment, "given_at": moment(r.given_at, tz), "changed_at": moment(r.changed_at, tz)}
            for r in a.ratings
        ],
        "followup": None
        if a.followup is None
        else {
            "asked_at": moment(a.followup.asked_at, tz),
            "answer": a.followup.answer,
            "comment": a.followup.comment,
            "answered_at": moment(a.followup.answered_at, tz),
        },
        "planned_messages": [
            {"kind": r.kind, "due_at": moment(r.due_at, tz), "sent_at": moment(r.sent_at, tz)} for r in a.reminders
        ],
    }


def news_json(news: NewsChoice, lang: str, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "own_choice": news.chosen,
        "stopped": news.stopped,
        "districts_chosen": news.districts_chosen,
        "blocks_off": [ref(b, lang) for b in news.blocks_off],
        "districts": [ref(d, lang) for d in news.districts],
        "updated_at": moment(news.updated_at, tz),
    }


def poll_json(p: PollItem, lang: str, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "question": p.question,
        "sent_at": moment(p.sent_at, tz),
        "district": ref(p.district, lang),
        "chosen": list(p.chosen),
        "other": p.other,
        "answered_at": moment(p.answered_at, tz),
        "ticked_not_sent": list(p.ticked),
    }


def notification_json(n: NotificationItem, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "kind": n.kind,
        "queued_at": moment(n.queued_at, tz),
        "sent_at": moment(n.sent_at, tz),
        "state": n.state,
        "appeal_number": n.appeal_number,
        "text": n.text,
    }


def to_json(data: PersonalData, lang: str, tz: ZoneInfo, describe: Describe) -> dict[str, Any]:
    p = data.profile
    return {
        "schema_version": SCHEMA_VERSION,
        "document": {
            "title": _("Your personal data in the ЦУР bot"),
            "operator": operator(),
            "law": LAW_EN if lang == "en" else LAW,
            "generated_at": moment(data.generated_at, tz),
            "timezone": tz.key,
            "language": lang,
        },
        "profile": {
            "telegram_id": p.tg_id,
            "language": p.locale,
            "created_at": moment(p.created_at, tz),
            "active": p.active,
            "full_name": p.full_name,
            "username": p.username,
        },
        "roles": [
            {
                "role": r.role,
                "name": name_of(ROLES, r.role),
                "agency": ref(r.agency, lang),
                "block": ref(r.block, lang),
                "granted_at": moment(r.granted_at, tz),
            }
            for r in data.roles
        ],
        "role_changes": [{"action": e.action, "role": e.role, "at": moment(e.at, tz)} for e in data.role_events],
        "news": news_json(data.news, lang, tz),
        "consents": [
            {"version": c.version, "accepted": c.accepted, "withdrawn": c.withdrawn, "at": moment(c.at, tz)}
            for c in data.consents
        ],
        "appeals": [appeal_json(a, lang, tz, describe) for a in data.appeals],
        "polls": [poll_json(poll, lang, tz) for poll in data.polls],
        "notifications": [notification_json(n, tz) for n in data.notifications],
        "exports": [moment(at, tz) for at in data.exports],
    }


def json_bytes(data: PersonalData, lang: str, tz: ZoneInfo, describe: Describe) -> bytes:
    return json.dumps(to_json(data, lang, tz, describe), ensure_ascii=False, indent=2).encode("utf-8")


# --- HTML -------------------------------------------------------------------------------------------------------

STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;max-width:60em;margin:2em auto;"
    "padding:0 1em;line-height:1.45;color:#1b1b1b}"
    "h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{margin-top:1.5em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;"
    "vertical-align:top}th{background:#f3f3f3}.text{white-space:pre-wrap;background:#f8f8f8;padding:.5em}"
    ".muted{color:#666}header p{margin:.2em 0}"
)


def operator() -> str:
    return _("the Regional Management Center of the Chechen Republic (ЦУР)")


def tag(name: str, text: str) -> str:
    """An element holding plain text (escaped here). No `_()` inside f-strings: Babel's extractor would miss it."""
    return f"<{name}>{escape(text)}</{name}>"


def header_row(*labels: str) -> str:
    return "<tr>" + "".join(tag("th", label) for label in labels) + "</tr>"


def agreed(accepted: bool, withdrawn: bool = False) -> str:
    if withdrawn:
        return _("withdrew the consent")
    return _("agreed") if accepted else _("did not agree")


def when(value: datetime | None, tz: ZoneInfo) -> str:
    return local_time(value, tz) if value is not None else "—"


def yes_no(value: bool) -> str:
    return _("yes") if value else _("no")


def rows(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column table; the values are HTML already."""
    body = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in pairs)
    return f"<table>{body}</table>"


def listing(items: Iterable[str]) -> str:
    items = list(items)
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>" if items else ""


def text_block(value: str) -> str:
    return f'<div class="text">{escape(value)}</div>'


def file_line(f: FileInfo, tz: ZoneInfo) -> str:
    return escape(f"{name_of(FILE_KINDS, f.kind)}, {name_of(FILE_SOURCES, f.source)}, {when(f.added_at, tz)}")


def names(values: Iterable[Named], lang: str) -> str:
    return escape(", ".join(v.name(lang) for v in values)) or "—"


def profile_html(data: PersonalData, lang: str, tz: ZoneInfo) -> str:
    p = data.profile
    pairs = [
        (_("Telegram id"), str(p.tg_id)),
        (_("Language"), escape(LANGUAGE_NAMES.get(p.locale, p.locale) if p.locale else "—")),
        (_("First contact with the bot"), when(p.created_at, tz)),
        (_("The bot can write to you"), yes_no(p.active)),
    ]
    if p.full_name:
        pairs.append((_("Name"), escape(p.full_name)))
    if p.username:
        pairs.append((_("Username"), "@" + escape(p.username)))
    parts = [tag("h2", _("Profile")), rows(pairs)]
    if data.roles or data.role_events:
        parts.append(tag("h2", _("Roles")))
        parts.append(
            listing(
                escape(
                    ", ".join(
                        x
                        for x in (
                            name_of(ROLES, r.role),
                            r.agency.name(lang) if r.agency else "",
                            r.block.name(lang) if r.block else "",
                            _("since {date}").format(date=when(r.granted_at, tz)),
                        )
                        if x
                    )
                )
                for r in data.roles
            )
        )
        parts.append(
            listing(
                escape(
                    (_("Role given: {role}") if e.action == "role_granted" else _("Role taken away: {role}")).format(
                        role=name_of(ROLES, e.role)
                    )
                    + f" — {when(e.at, tz)}"
                )
                for e in data.role_events
            )
        )
    return "".join(parts)


def news_html(news: NewsChoice, lang: str, tz: ZoneInfo) -> str:
    heading = tag("h2", _("News (/subscriptions)"))
    if not news.chosen:
        return heading + tag("p", _("As by default: every topic, for the district of your latest appeal."))
    if news.stopped:
        return heading + tag("p", _("You chose to get no news."))
    pairs = [(_("Topics turned off"), names(news.blocks_off, lang))]
    if news.districts_chosen:
        pairs.append((_("Districts chosen"), names(news.districts, lang)))
    pairs.append((_("Last changed"), when(news.updated_at, tz)))
    return heading + rows(pairs)


def consents_html(data: PersonalData, tz: ZoneInfo) -> str:
    head = header_row(_("Version of the text"), _("Your answer"), _("Date and time"))
    body = "".join(
        f"<tr><td>{escape(c.version)}</td><td>{escape(agreed(c.accepted, c.withdrawn))}</td>"
        f"<td>{when(c.at, tz)}</td></tr>"
        for c in data.consents
    )
    content = f"<table>{head}{body}</table>" if data.consents else tag("p", _("None."))
    return tag("h2", _("Consents to the processing of personal data")) + content


def appeal_html(a: AppealData, lang: str, tz: ZoneInfo, describe: Describe) -> str:
    topic = " → ".join(x.name(lang) for x in (a.block, a.category) if x is not None) or "—"
    lines = [
        _("<b>Status:</b> {status}").format(status=escape(status_name(a.status))),
        _("<b>Filed:</b> {at}").format(at=when(a.created_at, tz)),
        _("<b>Topic:</b> {topic}").format(topic=escape(topic)),
        _("<b>Kind:</b> {kind}").format(kind=escape(kind_name(a.kind))),
        _("<b>District:</b> {district}").format(district=escape(a.district.name(lang)) if a.district else "—"),
        _("<b>Place:</b> {place}").format(place=place(a.address, a.latitude, a.longitude)),
    ]
    if a.applicant_name or a.applicant_contact:
        lines.append(
            _("<b>Applicant:</b> {name}, {contact}").format(
                name=escape(a.applicant_name or "—"), contact=escape(a.applicant_contact or "—")
            )
        )
    if a.deadline_at is not None:
        lines.append(_("<b>Answer due by:</b> {date}").format(date=when(a.deadline_at, tz)))
    parts = [
        tag("h3", _("Appeal № {number}").format(number=a.number)),
        listing(lines),
        "<p>" + _("<b>Description:</b>") + "</p>",
        text_block(a.text),
    ]
    if a.files:
        parts.append("<p>" + _("<b>Files:</b>") + "</p>" + listing(file_line(f, tz) for f in a.files))
    if a.notes:
        parts.append("<p>" + _("<b>Messages:</b>") + "</p>")
        for n in a.notes:
            parts.append(f"<p>{escape(name_of(NOTE_NAMES, n.kind))} — {when(n.at, tz)}</p>{text_block(n.text)}")
            if n.files:
                parts.append(listing(file_line(f, tz) for f in n.files))
    for r in a.ratings:
        line = _("<b>Your rating:</b> {score} of 5 · {at}").format(score=r.score, at=when(r.given_at, tz))
        parts.append(f"<p>{line}</p>" + (text_block(r.comment) if r.comment else ""))
    if a.followup is not None and a.followup.answer is not None:
        line = _("<b>Is it fixed?</b> {answer} · {at}").format(
            answer=escape(name_of(FOLLOWUP_NAMES, a.followup.answer)), at=when(a.followup.answered_at, tz)
        )
        parts.append(f"<p>{line}</p>" + (text_block(a.followup.comment) if a.followup.comment else ""))
    if a.reminders:
        parts.append(
            "<p>" + _("<b>Planned messages:</b>") + "</p>"
            + listing(
                escape(f"{when(r.due_at, tz)} — {name_of(REMINDER_NAMES, r.kind)}")
                + (" ✓" if r.sent_at is not None else "")
                for r in a.reminders
            )
        )
    parts.append("<p>" + _("<b>History:</b>") + "</p>")
    parts.append(listing(f"{when(h.at, tz)} — {describe(h)}" for h in a.history))
    return "".join(parts)


def polls_html(data: PersonalData, lang: str, tz: ZoneInfo) -> str:
    parts = [tag("h2", _("Polls"))]
    if not data.polls:
        parts.append(tag("p", _("None.")))
    for p in data.polls:
        pairs = [(_("Sent to you"), when(p.sent_at, tz))]
        if p.answered_at is not None:
            answer = ", ".join(p.chosen)
            if p.other:
                answer = (answer + "; " if answer else "") + _("other: {text}").format(text=p.other)
            pairs.append((_("Your answer"), escape(answer or "—")))
            pairs.append((_("Answered at"), when(p.answered_at, tz)))
        else:
            pairs.append((_("Your answer"), escape(_("not given"))))
        if p.ticked:
            pairs.append((_("Ticked, not sent"), escape(", ".join(p.ticked))))
        if p.district is not None:
            pairs.append((_("Your district at the time"), escape(p.district.name(lang))))
        parts.append(f"<h3>{escape(p.question)}</h3>{rows(pairs)}")
    return "".join(parts)


def notifications_html(data: PersonalData, tz: ZoneInfo) -> str:
    parts = [tag("h2", _("Messages from the bot"))]
    if not data.notifications:
        return parts[0] + tag("p", _("None."))
    head = header_row(_("Date and time"), _("About"), _("Delivery"))
    body = []
    for n in data.notifications:
        if n.text is not None:
            about = escape(_("News: {text}").format(text=n.text))
        elif n.appeal_number is not None:
            about = escape(_("Appeal № {number}").format(number=n.appeal_number))
        elif n.kind == "poll":
            about = escape(_("An invitation to a poll"))
        else:
            about = escape(_("A message from the bot")) + f' <span class="muted">({escape(n.kind)})</span>'
        body.append(
            f"<tr><td>{when(n.sent_at or n.queued_at, tz)}</td><td>{about}</td>"
            f"<td>{escape(name_of(DELIVERY_NAMES, n.state))}</td></tr>"
        )
    return parts[0] + f"<table>{head}{''.join(body)}</table>"


def html_bytes(data: PersonalData, lang: str, tz: ZoneInfo, describe: Describe) -> bytes:
    title = _("Your personal data in the ЦУР bot")
    header = [
        f"<h1>{escape(title)}</h1>",
        "<header>",
        tag("p", _("Everything the bot stores about you, as of {date}.").format(date=when(data.generated_at, tz))),
        tag("p", _("Operator: {operator}").format(operator=operator())),
        "<p>"
        + escape(
            _(
                "Given under Federal Law 152-FZ «On personal data», article 14: the right to know which of your data "
                "is processed."
            )
        )
        + "</p>",
        '<p class="muted">' + escape(_("The same data, for computers, is in the JSON file sent with this page.")) + "</p>",
        "</header>",
    ]
    appeals = [tag("h2", _("Your appeals"))]
    appeals += [appeal_html(a, lang, tz, describe) for a in data.appeals] or [tag("p", _("None."))]
    exports = [tag("h2", _("Exports of your data")), listing(when(at, tz) for at in data.exports)]
    footer = (
        '<p class="muted">'
        + escape(
            _(
                "Not in this file: the photos, videos and documents themselves (Telegram keeps them; open them from "
                "«My appeals»), and what staff write to one another about appeals. How your data is handled: /privacy."
            )
        )
        + "</p>"
    )
    page = (
        f'<!DOCTYPE html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        + "".join(header)
        + profile_html(data, lang, tz)
        + news_html(data.news, lang, tz)
        + consents_html(data, tz)
        + "".join(appeals)
        + polls_html(data, lang, tz)
        + notifications_html(data, tz)
        + "".join(exports)
        + footer
        + "</body></html>"
    )
    return page.encode("utf-8")
