"""What staff do: coordinators triage and check answers, officials work on their agency's appeals, admins
manage people and the routing matrix. Declared dialogs (aiogram-dialog), entered by /staff and by the buttons of
the outbox's notifications. Buttons are shown by role, and every screen and action is authorized again in the
services: callback data can be forged."""

from __future__ import annotations

from aiogram import Router

from handlers import join
from handlers.staff import access_log, admin, appeals, broadcasts, menu, polls, rating, stats


def get_router() -> Router:
    # Plain handlers first: /staff and the notifications' buttons are heard in any dialog state.
    return join(
        __name__, menu.router, appeals.router, polls.router, broadcasts.router, rating.router, stats.router,
        access_log.router,
        menu.dialog(), appeals.dialog(), admin.dialog(), polls.dialog(), broadcasts.dialog(), rating.dialog(),
        stats.dialog(), stats.save_dialog(), access_log.dialog(),
    )
