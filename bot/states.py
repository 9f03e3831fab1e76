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
