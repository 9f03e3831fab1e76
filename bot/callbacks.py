"""Typed callback data. Every packed value stays under Telegram's 64 bytes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from bot.domain import FollowupAnswer

# Every number in callback data is a database id, a page or a small count: a forged press with a number outside
# the 32-bit INTEGER columns (which PostgreSQL refuses as a parameter) does not unpack, so it matches no handler and
# gets the answer to an unknown button instead of an error.
Num = Annotated[int, Field(ge=0, le=2**31 - 1)]


class LangCb(CallbackData, prefix="lang"):
    code: str


class ConsentAction(StrEnum):
    accept = "a"
    decline = "d"
    show = "s"


class ConsentCb(CallbackData, prefix="cons"):
    action: ConsentAction


class MyAction(StrEnum):
    page = "p"
    open = "o"
    media = "m"


class MyCb(CallbackData, prefix="my"):
    action: MyAction
    id: Num = 0
    page: Num = 0


class StaffAction(StrEnum):
    """The buttons of the outbox's notifications: «Open» and «Take in work».

    The other values are the buttons of the cards sent before the staff screens became dialogs; such a button,
    still in someone's chat, opens the card (after the same check as «Open»)."""

    open = "o"
    # «Open» on a list of appeals (the coordinators' low ratings): the card comes as a message of its own.
    show = "sh"
    take = "t"
    files = "f"
    route = "r"
    agencies = "ag"
    route_to = "rt"
    reject = "rj"
    reject_reason = "rr"
    duplicate = "du"
    category = "ca"
    set_category = "sc"
    kind = "k"
    clarify = "cl"
    interim = "i"
    redirect = "rd"
    redirect_to = "rdt"
    extension = "ex"
    answer = "an"
    approve = "ap"
    send_back = "sb"
    decide = "dc"


class StaffCb(CallbackData, prefix="st"):
    action: StaffAction
    id: Num = 0
    v: Num = 0
    s: str = ""


class ReplyCb(CallbackData, prefix="rp"):
    """The resident answers an official's clarification question (send=True: the reply is complete)."""

    id: Num
    send: bool = False


class RateAction(StrEnum):
    """The resident's judgement of an answer (bot/services/ratings.py)."""

    score = "s"  # v: the score, 1..5
    ask = "a"  # the rating buttons again (from the card: a lost message is not a dead end)
    reopen = "r"  # "send it back for another review": yes
    keep = "k"  # … no: closed with the low rating kept
    skip = "n"  # no comment after the rating
    comment = "c"  # an optional comment after any score (not a forced step)
    send = "d"  # the re-opening comment is complete
    refile = "f"  # past the re-opening limits: a new appeal with the category and place prefilled


class RateCb(CallbackData, prefix="rt"):
    action: RateAction
    id: Num  # the appeal
    v: Num = 0
    n: Num = 0  # the answer a rating request was sent for (0: the appeal's latest, as the card's buttons mean)


class FixCb(CallbackData, prefix="fx"):
    """The answer to "Is the problem actually fixed?"."""

    id: Num  # the appeal
    answer: FollowupAnswer


class PollAction(StrEnum):
    choose = "c"
    other = "o"
    submit = "s"


class PollCb(CallbackData, prefix="pl"):
    """A resident's press on a poll: an option (toggled for multiple choice), «Other», «Submit». Forged ids are
    refused by the service."""

    a: PollAction
    p: Num
    o: Num = 0


class NewsAction(StrEnum):
    unsubscribe = "u"  # «Unsubscribe from such news» under a broadcast item


class NewsCb(CallbackData, prefix="nw"):
    """A resident's press under a broadcast: `b` is the broadcast (what "such news" means comes from its audience:
    its thematic block, else its districts, else every broadcast). The service checks the broadcast exists."""

    a: NewsAction
    b: Num


class NewsUndoCb(CallbackData, prefix="nu"):
    """«Undo» under the answer to an unsubscribe from broadcast `b`. For a broadcast to districts it carries what the
    unsubscribe did, so the undo restores exactly that: `m` the districts it unfollowed (hex bits over the audience's
    districts, sorted), `d` whether they were the latest appeal's (the defaults). A forged value can only follow
    districts of a broadcast the person got, or bring back their defaults: their own choice either way."""

    b: Num
    m: Annotated[str, Field(pattern=r"^[0-9a-f]{0,32}$")]
    d: bool


class SubsAction(StrEnum):
    block = "b"  # a thematic block on or off (`id`, `on`)
    district = "d"  # a district on or off (`id`, `on`)
    districts = "l"  # the district picker
    main = "m"  # back to the main screen of /subscriptions
    stop = "s"  # no broadcasts at all
    resume = "r"


class SubsCb(CallbackData, prefix="sb"):
    """A press on the /subscriptions screen. A toggle carries the state it asks for (`on`), not "flip": a press on a
    stale screen, or twice, sets what the button showed. The service checks the block or district exists."""

    a: SubsAction
    id: Num = 0
    on: bool = False


class BroadcastAction(StrEnum):
    pause = "p"
    resume = "r"
    cancel = "c"  # asks to confirm
    cancel_yes = "y"
    keep = "k"  # «No, keep it» after «Cancel»: the controls as they were
    open = "o"  # the broadcast's card (the button under its final report)


class BroadcastCb(CallbackData, prefix="bc"):
    """The author's buttons under a broadcast's progress message and card. The service checks the role."""

    a: BroadcastAction
    id: Num


class StatsAction(StrEnum):
    xlsx = "x"
    csv = "c"
    save = "s"  # «Save as preset»


class StatsCb(CallbackData, prefix="sx"):
    """The buttons under a statistics table: `n` numbers the table among the person's latest (its slice is kept in
    the dialog storage, not in the button: a slice with many filter values does not fit in 64 bytes). The slice is
    recomputed and checked by the service on every press."""

    a: StatsAction
    n: Num


# --- personal data (issue 16) ------------------------------------------------------------------------------


class PrivacyAction(StrEnum):
    ask = "a"  # «Withdraw consent» on /privacy: the confirmation
    keep = "k"  # withdraw; the open appeals are still answered
    all = "w"  # withdraw, and the open appeals too
    cancel = "c"


class PrivacyCb(CallbackData, prefix="priv"):
    action: PrivacyAction
