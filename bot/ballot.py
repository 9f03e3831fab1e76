"""A poll as a resident sees it: the question, the options as buttons with the current choice ticked, «Other» and
(multiple choice) «Submit». One function for the outbox's first message and for the edits after each press."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.callbacks import PollAction, PollCb
from bot.texts import local_time

TICK = "✅ "


def ballot(
    poll_id: int,
    question: str,
    options: tuple[tuple[int, str], ...],
    *,
    multiple: bool,
    other: bool,
    closes_at: datetime,
    tz: ZoneInfo,
    chosen: frozenset[int] = frozenset(),
    other_text: str | None = None,
    submitted: bool = False,
    is_open: bool = True,
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text and the keyboard (none once the poll is closed), in the current locale."""
    lines = [_("📊 <b>Poll</b>"), escape(question), ""]
    if not is_open:
        lines.append(_("The poll is closed."))
    elif multiple:
        lines.append(_("Choose one or more answers, then press «Submit». You may change your answer until the poll closes."))
    else:
        lines.append(_("Choose one answer. You may change it until the poll closes."))
    lines.append(_("Open until {moment}.").format(moment=local_time(closes_at, tz)))
    picked = [text for option_id, text in options if option_id in chosen]
    if other_text is not None:
        picked.append(_("Other: {text}").format(text=other_text))
    if picked:
        label = _("Your answer") if submitted else _("Ticked, not submitted yet")
        lines += ["", "<b>{label}</b>: {answer}".format(label=label, answer=escape("; ".join(picked)))]
    if not is_open:
        return "\n".join(lines), None
    rows = [
        [
            InlineKeyboardButton(
                text=(TICK if option_id in chosen else "") + text,
                callback_data=PollCb(a=PollAction.choose, p=poll_id, o=option_id).pack(),
            )
        ]
        for option_id, text in options
    ]
    if other:
        rows.append(
            [
                InlineKeyboardButton(
                    text=(TICK if other_text is not None else "") + _("✍️ Other…"),
                    callback_data=PollCb(a=PollAction.other, p=poll_id).pack(),
                )
            ]
        )
    if multiple:
        rows.append(
            [InlineKeyboardButton(text=_("📤 Submit"), callback_data=PollCb(a=PollAction.submit, p=poll_id).pack())]
        )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)
