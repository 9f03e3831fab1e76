"""The notification classes: each round-trips through an outbox row, has a renderer, and a row written before
the classes existed (template string and params) renders the same text as it did."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aiogram.utils.i18n import I18n

from bot import notices
from bot.domain import AppealStatus, AttachmentKind, RejectReason, RequestKind
from bot.i18n import create_i18n
from bot.notifications import RENDERERS, make_renderer
from bot.outbox import Rendered
from bot.services import Services

# Rows as the services wrote them before bot/notices.py existed (template, params).
OLD_ROWS: dict[str, dict[str, Any]] = {
    "status_changed": {"appeal_id": 7, "number": "2026-000007", "status": "in_progress"},
    "rejected": {"appeal_id": 7, "number": "2026-000007", "reason": "spam"},
    "duplicate": {"appeal_id": 7, "number": "2026-000007", "original": "2026-000003", "status": "assigned"},
    "clarification_question": {"appeal_id": 7, "number": "2026-000007", "text": "Which <entrance>?"},
    "interim": {"appeal_id": 7, "number": "2026-000007", "text": "Work has begun & goes on"},
    "answer": {"appeal_id": 7, "number": "2026-000007", "text": "Repaired on 5 November"},
    "extended": {"appeal_id": 7, "number": "2026-000007", "deadline": "2026-12-02T20:59:59.999999+00:00"},
    "files": {"files": [["photo", "file-1"], ["document", "file-2"]]},
    "reply": {"text": "Choose your language", "markup": {"inline_keyboard": [[{"text": "English", "callback_data": "l:en"}]]}},
    "assigned": {
        "appeal_id": 7,
        "number": "2026-000007",
        "category_id": 1,
        "district_id": 1,
        "deadline": "2026-11-12T20:59:59.999999+00:00",
        "text": "No water in the yard for three days",
        "address": "Grozny, Mira st. 1",
        "lat": 43.31,
        "lon": 45.69,
    },
    "clarification_reply": {"appeal_id": 7, "number": "2026-000007", "text": "House 5"},
    "answer_review": {"appeal_id": 7, "number": "2026-000007"},
    "answer_returned": {"appeal_id": 7, "number": "2026-000007", "comment": "When exactly?"},
    "request_pending": {"appeal_id": 7, "number": "2026-000007", "kind": "redirect"},
    "request_decided": {"appeal_id": 7, "number": "2026-000007", "kind": "extension", "approved": True},
    "reminder_half": {"appeal_id": 7, "number": "2026-000007", "deadline": "2026-11-12T20:59:59.999999+00:00"},
    "reminder_day_before": {"appeal_id": 7, "number": "2026-000007", "deadline": "2026-11-12T20:59:59.999999+00:00"},
    "reminder_deadline": {"appeal_id": 7, "number": "2026-000007", "deadline": "2026-11-12T20:59:59.999999+00:00"},
    "escalation": {"appeal_id": 7, "number": "2026-000007", "deadline": "2026-11-12T20:59:59.999999+00:00", "days": 3},
    "forward_due": {
        "appeal_id": 7,
        "number": "2026-000007",
        "deadline": None,
        "due": "2026-11-09T09:00:00+00:00",
    },
    "digest_official": {"overdue": 1, "due_today": 2, "new": 3},
    "digest_coordinator": {"overdue": [[1, 4], [2, 1]]},
    "weekly_summary": {"statuses": {"assigned": 2, "moderation": 5}, "agencies": [[1, 3], [2, 4]], "week": "2026-W45"},
    "poll": {
        "poll_id": 3,
        "question": "Is the <lighting> enough?",
        "options": [[11, "Yes"], [12, "No"]],
        "multiple": True,
        "other": True,
        "closes_at": "2026-11-05T09:00:00+00:00",
    },
}


# What those rows rendered to in English before the notification classes (bot/notifications.py at 404638c).
EXPECTED_EN: dict[str, str | None] = {
    'status_changed': "Your appeal № 2026-000007: In progress.",
    'rejected': "Your appeal № 2026-000007 was left without consideration: the message is spam or advertising. You may file a new one.",
    'duplicate': "Your appeal № 2026-000007 is about the same problem as appeal № 2026-000003; it is handled there, and you will be told of its progress.",
    'clarification_question': "The responsible body asks about your appeal № 2026-000007:\n\nWhich &lt;entrance&gt;?\n\nThe answer period is paused until you reply.",
    'interim': "Interim answer on your appeal № 2026-000007:\n\nWork has begun &amp; goes on",
    'answer': "<b>Answer to your appeal № 2026-000007</b>\n\nRepaired on 5 November",
    'extended': "The answer period of your appeal № 2026-000007 is extended to 02.12.2026.",
    'files': None,
    'reply': "Choose your language",
    'assigned': "New appeal № 2026-000007 for your agency.\n<b>Topic:</b> Housing, utilities and waste → No water supply\n<b>District:</b> Grozny\n<b>Place:</b> Grozny, Mira st. 1; 📍 location 43.31000, 45.69000\n<b>Due:</b> 12.11.2026\n\nNo water in the yard for three days",
    'clarification_reply': "The resident replied on appeal № 2026-000007:\n\nHouse 5",
    'answer_review': "An answer on appeal № 2026-000007 waits for your check.",
    'answer_returned': "Your answer on appeal № 2026-000007 was returned for rework:\n\nWhen exactly?",
    'request_pending': "The agency asks for a redirect on appeal № 2026-000007.",
    'request_decided': "Your extension request on appeal № 2026-000007 is approved.",
    'reminder_half': "⏳ Half of the time for appeal № 2026-000007 is used; the answer is due 12.11.2026.",
    'reminder_day_before': "⏳ Appeal № 2026-000007: the answer is due Thursday, 12.11.2026.",
    'reminder_deadline': "⏰ Appeal № 2026-000007: today, 12.11.2026, is the last day for the answer.",
    'escalation': "🚨 Appeal № 2026-000007 is overdue (3 d.): the answer was due 12.11.2026.",
    'forward_due': "📮 Appeal № 2026-000007 is not yet with the competent body; under 59-FZ it must be forwarded by 09.11.2026.",
    'digest_official': "📋 Your agency today: due today 2, overdue 1, new 3. /staff to open the inbox.",
    'digest_coordinator': "📋 Overdue appeals by agency:\n• Ministry of Construction: 4\n• Ministry of Energy: 1",
    'weekly_summary': "📊 Week 2026-W45: appeals by status\n• Sent to the responsible body: 2\n• On moderation: 5\nBy agency:\n• Ministry of Construction: 3\n• Ministry of Energy: 4",
    # Added with the class (issue 12): the question escaped, the closing time in the region's zone.
    'poll': "📊 <b>Poll</b>\nIs the &lt;lighting&gt; enough?\n\nChoose one or more answers, then press «Submit». You may change your answer until the poll closes.\nOpen until 05.11.2026 12:00.",
}

# Issue 12 (the staff side of ratings): the digests with the agencies' ratings and the coordinators' low ratings.
OLD_ROWS.update(
    {
        "digest_official_rated": {
            "overdue": 1,
            "due_today": 2,
            "new": 3,
            "rating_average": 3.6666666666666665,
            "rating_count": 3,
            "rating_days": 30,
        },
        "digest_agency_rating": {"rating_average": 4.25, "rating_count": 4, "rating_days": 30},
        "digest_coordinator_rated": {"overdue": [], "ratings": [[2, 1.5, 2], [1, 4.0, 7]], "rating_days": 30},
        "low_ratings": {
            "day": "2026-11-01",
            "items": [[7, "2026-000007", 1, 1, "Nothing <done>"], [8, "2026-000008", None, 2, None]],
            "more": 3,
        },
    }
)
EXPECTED_EN.update(
    {
        "digest_official_rated": "📋 Your agency today: due today 2, overdue 1, new 3. /staff to open the inbox.\n"
        "⭐ Residents' rating of your agency's answers over 30 days: 3.7 of 5 (3 ratings).",
        "digest_agency_rating": "⭐ Residents' rating of your agency's answers over 30 days: 4.3 of 5 (4 ratings).",
        "digest_coordinator_rated": "📋 No overdue appeals today.\n\n⭐ Residents' ratings over 30 days, the worst first:\n"
        "• Ministry of Energy: 1.5 (2)\n• Ministry of Construction: 4.0 (7)",
        "low_ratings": "👎 Ratings of 1–2 given on 01.11.2026:\n• № 2026-000007 · Ministry of Construction · 1: "
        "«Nothing &lt;done&gt;»\n• № 2026-000008 · — · 2\n…and 3 more.",
    }
)


# Issue 12, the resident's judgement of an answer (ratings).
OLD_ROWS.update(
    {
        "rate_request": {"appeal_id": 7, "number": "2026-000007"},
        "rate_reminder": {"appeal_id": 7, "number": "2026-000007"},
        "closed_unrated": {"appeal_id": 7, "number": "2026-000007"},
        "reopened": {"appeal_id": 7, "number": "2026-000007", "text": "Still <dark> at night", "score": 1},
        "followup_question": {"appeal_id": 7, "number": "2026-000007"},
    }
)
EXPECTED_EN.update(
    {
        "rate_request": "How helpful was the answer to your appeal № 2026-000007? Please rate it:",
        "rate_reminder": "Your appeal № 2026-000007 was answered a few days ago. Did the answer help? Your rating shows the Regional Management Center how the agencies work:",
        "closed_unrated": "Your appeal № 2026-000007 is closed without a rating. You can still rate the answer:",
        "reopened": "🔁 The resident rated the answer on appeal № 2026-000007 1 of 5 and sent it back for another review:\n\nStill &lt;dark&gt; at night",
        "followup_question": "Some time ago your appeal № 2026-000007 was answered and closed. Is the problem actually fixed?",
    }
)


@pytest.fixture
def i18n(services: Services) -> I18n:
    made = create_i18n(services.appeals.settings)
    I18n.set_current(made)  # status names are translated through the context, as in the bot
    return made


# Issue 13: a broadcast item carries only its broadcast's id; the report its figures.
OLD_ROWS.update(
    {
        "broadcast": {"broadcast_id": 5},
        "broadcast_held": {"broadcast_id": 5, "reason": "TelegramBadRequest: Bad Request: can't parse entities"},
        "broadcast_report": {
            "broadcast_id": 5,
            "status": "done",
            "recipients": 10,
            "delivered": 8,
            "blocked": 1,
            "failed": 1,
            "cancelled": 0,
            "unsure": 0,
            "flood_waits": 0,
        },
    }
)


EXPECTED_EN.update(
    {
        "broadcast": "<b>Water</b> is back",
        "broadcast_held": "⚠️ Broadcast № 5 is paused: Telegram refused its message (TelegramBadRequest: Bad Request: "
        "can&#x27;t parse entities). Every recipient would get the same refusal, so nothing more is sent. Cancel it and "
        "send a corrected broadcast.",
        "broadcast_report": "📣 Broadcast № 5 is finished. Its report:\nRecipients: 10.\nDelivered: 8.\n"
        "Blocked the bot: 1.\nOther errors: 1.",
    }
)


async def broadcast_content(broadcast_id: int) -> notices.BroadcastContent | None:
    """Broadcast 5 of OLD_ROWS, as BroadcastDelivery.content reads it from the database."""
    if broadcast_id != 5:
        return None
    return notices.BroadcastContent(broadcast_id=5, texts={"ru": "<b>Вода</b> есть", "en": "<b>Water</b> is back"})


# Issue 14: a scheduled report's parts carry only the stored report's id; the renderer reads the report.
OLD_ROWS.update(
    {
        "stats_report_text": {"report_id": 9},
        "stats_report_chart": {"report_id": 9},
        "stats_report_sheet": {"report_id": 9},
    }
)
EXPECTED_EN.update(
    {"stats_report_text": "<b>📈 State of the region</b>", "stats_report_chart": None, "stats_report_sheet": None}
)


# Issue 16: the applicant withdrew the consent and an open appeal with it.
OLD_ROWS.update({"withdrawn": {"appeal_id": 7, "number": "2026-000007"}})
EXPECTED_EN.update(
    {"withdrawn": "↩️ The applicant withdrew the consent to the processing of personal data and appeal № 2026-000007 "
     "with it: the appeal is closed and its personal data are erased."}
)


async def report_content(report_id: int) -> notices.ReportContent | None:
    """Report 9 of OLD_ROWS, as ReportService.content reads it from the database."""
    if report_id != 9:
        return None
    return notices.ReportContent(9, "<b>📈 State of the region</b>", b"\x89PNG", b"PK", "state-of-region-2026-W47")


def test_every_notice_class_is_registered_once_under_its_template() -> None:
    subclasses = {
        cls
        for cls in vars(notices).values()
        if isinstance(cls, type) and issubclass(cls, notices.Notice) and cls.template  # bases have none
    }
    assert set(notices.NOTICES.values()) == subclasses
    assert all(notices.NOTICES[cls.template] is cls for cls in subclasses)
    assert set(OLD_ROWS) == set(notices.NOTICES)  # the samples below cover every class


def test_every_notice_class_has_a_renderer() -> None:
    # A broadcast item is rendered by make_renderer from its broadcast's content (render_broadcast), read once per
    # broadcast: tests/test_broadcast_delivery_e2e.py shows residents receiving it.
    # A scheduled report's parts likewise from the stored report (render_report_part): tests/test_reports_e2e.py.
    special = {notices.BroadcastItem, *notices.STATS_REPORT_PARTS}
    assert set(RENDERERS) | special == set(notices.NOTICES.values())


@pytest.mark.parametrize("template", sorted(OLD_ROWS))
def test_a_notice_round_trips_through_an_outbox_row(template: str) -> None:
    notice = notices.decode(template, OLD_ROWS[template])
    assert type(notice) is notices.NOTICES[template] and notice.template == template
    stored = json.loads(json.dumps(notice.params()))  # what the JSON column gives back
    assert stored == notice.params()
    old = OLD_ROWS[template]
    assert {key: stored[key] for key in old} == old  # the same params the old code wrote
    defaults = {f.name: f.default for f in dataclasses.fields(notice)}
    assert all(stored[key] == defaults[key] for key in stored.keys() - old.keys())  # fields added since: defaults
    assert notices.decode(template, stored) == notice


def test_decoding_restores_the_field_types() -> None:
    assert notices.decode("rejected", OLD_ROWS["rejected"]) == notices.Rejected(7, "2026-000007", RejectReason.spam)
    status = notices.decode("status_changed", OLD_ROWS["status_changed"])
    assert isinstance(status, notices.StatusChanged) and status.status is AppealStatus.in_progress
    files = notices.decode("files", OLD_ROWS["files"])
    assert files == notices.Files(((AttachmentKind.photo, "file-1"), (AttachmentKind.document, "file-2")))
    pending = notices.decode("request_pending", OLD_ROWS["request_pending"])
    assert isinstance(pending, notices.RequestPending) and pending.kind is RequestKind.redirect
    digest = notices.decode("digest_coordinator", OLD_ROWS["digest_coordinator"])
    assert digest == notices.DigestCoordinator(((1, 4), (2, 1)))


@pytest.mark.parametrize(
    ("template", "params", "why"),
    [
        ("no_such_template", {"appeal_id": 1}, "unknown template"),
        ("status_changed", {"appeal_id": 1, "number": "2026-000001"}, "no 'status'"),
        ("status_changed", {"appeal_id": 1, "number": "2026-000001", "status": "bogus"}, "bogus"),
        ("rejected", {"appeal_id": 1, "number": "2026-000001", "reason": "rude"}, "rude"),
        ("files", {"files": "photo"}, "expected a list"),
        ("files", {"files": [["photo"]]}, "expected 2 items"),
    ],
)
def test_a_row_that_fits_no_class_is_refused(template: str, params: dict[str, Any], why: str) -> None:
    with pytest.raises(notices.UnknownNotice, match=why):
        notices.decode(template, params)


def test_keys_a_class_does_not_know_are_ignored() -> None:
    params = {**OLD_ROWS["answer_review"], "added_later": 1}
    assert notices.decode("answer_review", params) == notices.AnswerReview(7, "2026-000007")


def test_notices_are_frozen() -> None:
    notice = notices.AnswerReview(7, "2026-000007")
    with pytest.raises(dataclasses.FrozenInstanceError):
        notice.number = "x"  # type: ignore[misc]


@pytest.mark.parametrize("template", sorted(OLD_ROWS))
async def test_an_old_row_renders_the_text_it_always_did(template: str, services: Services, i18n: I18n) -> None:
    render = make_renderer(i18n, services.appeals.settings, services.directory, broadcast_content, report_content)
    rendered = await render(template, OLD_ROWS[template], "en", 1)
    assert rendered is not None
    assert rendered.text == EXPECTED_EN[template]
    if template == "files":
        assert rendered == Rendered(media=[("photo", "file-1"), ("document", "file-2")])
    if template == "reply":
        assert rendered.reply_markup is not None
        assert rendered.reply_markup.inline_keyboard[0][0].callback_data == "l:en"


async def test_the_renderer_refuses_an_unknown_row(services: Services, i18n: I18n) -> None:
    render = make_renderer(i18n, services.appeals.settings, services.directory, broadcast_content, report_content)
    with pytest.raises(notices.UnknownNotice):
        await render("no_such_template", {}, "ru", 1)


async def test_every_language_renders_every_notice(services: Services, i18n: I18n) -> None:
    render = make_renderer(i18n, services.appeals.settings, services.directory, broadcast_content, report_content)
    for lang in ("ru", "ce", "en"):
        for template, params in OLD_ROWS.items():
            rendered = await render(template, params, lang, 1)
            assert rendered is not None and (rendered.text or rendered.media), (lang, template)


async def test_a_broadcast_item_renders_in_the_residents_language_or_russian(services: Services, i18n: I18n) -> None:
    render = make_renderer(i18n, services.appeals.settings, services.directory, broadcast_content, report_content)
    en = await render("broadcast", {"broadcast_id": 5}, "en", 1)
    ce = await render("broadcast", {"broadcast_id": 5}, "ce", 1)
    assert en is not None and en.text == "<b>Water</b> is back"
    assert ce is not None and ce.text == "<b>Вода</b> есть"  # no Chechen text: the Russian one
    assert en.reply_markup is not None and en.reply_markup.inline_keyboard[-1][0].callback_data == "nw:u:5"
    with pytest.raises(notices.UnknownNotice):  # a broadcast that does not exist: the row fails, no retry
        await render("broadcast", {"broadcast_id": 6}, "ru", 1)
