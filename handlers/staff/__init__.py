"""What staff do: coordinators triage and check answers, officials work on their agency's appeals, admins
manage people and the routing matrix. Buttons are shown by role, but every action is authorized again
in the services: callback data can be forged."""

from __future__ import annotations

from aiogram import Router

from handlers import join
from handlers.staff import admin, appeals, menu


def get_router() -> Router:
    return join(__name__, menu.router, appeals.router, admin.router)
