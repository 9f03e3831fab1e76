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


class StaffInput(StatesGroup):
    """Typed input of staff; the FSM data says for which appeal and which action."""

    text = State()
    answer_files = State()


class ResidentReply(StatesGroup):
    """The resident answers a clarification question: text and/or files, then Send."""

    collecting = State()
