"""All conversation states in one place."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class Onboarding(StatesGroup):
    language = State()
    consent = State()


class Filing(StatesGroup):
    block = State()
    category = State()
    description = State()
    attachments = State()
    location = State()
    district = State()
    kind = State()
    applicant_name = State()
    applicant_contact = State()
    preview = State()
    edit_choice = State()


class StaffLists(StatesGroup):
    """/staff: the menu of each role and its lists."""

    menu = State()
    queue = State()
    reviews = State()
    requests = State()
    inbox = State()
    block = State()  # a block head's: the appeals of the block, read-only


class AppealCard(StatesGroup):
    """The staff card of an appeal, its pickers and its typed inputs; the appeal is in the dialog's start data."""

    card = State()
    agencies = State()  # the likely agencies first; every agency behind a button (all_agencies)
    all_agencies = State()
    blocks = State()
    categories = State()
    reasons = State()
    duplicate = State()
    send_back = State()
    clarify = State()
    interim = State()
    redirect = State()
    redirect_all = State()
    redirect_reason = State()
    extension_days = State()
    extension_reason = State()
    answer = State()
    answer_files = State()


class Admin(StatesGroup):
    """Invites by role and agency, people by role, the routing matrix."""

    roles = State()
    invite_agency = State()
    invite_block = State()  # a block head's invite names the thematic block
    invite = State()
    people = State()
    revoke = State()  # asks before a role is revoked
    route_blocks = State()
    route_categories = State()
    route_districts = State()
    route_agency = State()


class AccessLog(StatesGroup):
    """The admins' access log (issue 16): by appeal or by person, then the paged listing."""

    menu = State()
    appeal = State()  # the registration number, typed
    person = State()  # a Telegram id, or the number of an appeal whose resident is meant, typed
    entries = State()


class ResidentReply(StatesGroup):
    """The resident answers a clarification question: text and/or files, then Send."""

    collecting = State()


class ResidentRate(StatesGroup):
    """After a rating: what could be better (optional), or why the appeal goes back (text, optional photos)."""

    comment = State()
    reopen = State()


class Polls(StatesGroup):
    """/polls: the list, the creation steps (question, options, choice, «other», audience, closing time, preview,
    publishing time) and a poll's results."""

    list = State()
    question = State()
    options = State()
    mode = State()
    other = State()
    audience = State()
    districts = State()
    language = State()
    block = State()
    closes = State()
    preview = State()
    schedule = State()
    results = State()


class PollOther(StatesGroup):
    """A resident types the free-text «Other» answer of a poll."""

    text = State()


class Broadcasts(StatesGroup):
    """/broadcast and /broadcasts: composing (the Russian text, the other languages' texts, a file, a URL button, the
    audience and its filters, urgency, the preview, a chosen time), the list and a broadcast's card."""

    list = State()
    card = State()
    card_cancel = State()  # asks before a broadcast is cancelled from its card
    text = State()
    languages = State()
    text_other = State()
    media = State()
    button_label = State()
    button_url = State()
    audience = State()
    districts = State()
    block = State()
    language = State()
    urgent = State()
    preview = State()
    schedule = State()


class Rating(StatesGroup):
    """/rating: the agency ranking for a period, and one agency's breakdown."""

    ranking = State()
    breakdown = State()


class Stats(StatesGroup):
    """/stats: the report builder (metric, period or two typed dates, dimensions, filters by dimension and value) and
    the presets (list, card, rename, delete, schedule, recipients)."""

    main = State()
    metric = State()
    period = State()
    dates = State()
    dims = State()
    filters = State()
    values = State()
    presets = State()
    preset = State()
    rename = State()
    delete = State()
    schedule = State()
    recipients = State()


class StatsSave(StatesGroup):
    """The name of a slice saved as a preset (from the builder's presets or from the buttons under a table)."""

    name = State()
