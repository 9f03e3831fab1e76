"""What a resident does: file an appeal, follow their appeals; and /mydata, which staff use too."""

from __future__ import annotations

from aiogram import Router

from handlers import join
from handlers.resident import clarification, filing, my_appeals, mydata, polls, rating, subscriptions


def get_router() -> Router:
    return join(
        __name__,
        clarification.router,
        polls.router,
        filing.router,
        my_appeals.router,
        rating.router,
        subscriptions.router,
        mydata.router,
        filing.dialog(),
    )
