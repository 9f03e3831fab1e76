"""The sandbox's training exercises: each is checked off when the sandbox's database shows it done."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import N_
from storage.repositories.sandbox import TrainingProgress, training_progress


@dataclass(frozen=True)
class Exercise:
    key: str
    title: str  # N_: translated when shown
    description: str


EXERCISES = (
    Exercise(
        "file_with_photos",
        N_("File an appeal with photos"),
        N_(
            "As a resident: «📝 File an appeal», choose «Housing, utilities and waste» → «No water supply» and Grozny, "
            "describe the problem and attach one or more photos (📎), then confirm."
        ),
    ),
    Exercise(
        "route_and_answer",
        N_("Route the appeal and answer it"),
        N_(
            "As the ЦУР coordinator: /staff → the queue → route the new appeal. As the official: take it and "
            "answer. As the coordinator: approve the answer. The resident then gets it and is asked to rate it."
        ),
    ),
    Exercise(
        "clarification",
        N_("Ask the resident for a clarification"),
        N_(
            "As the official: on an appeal in work, ask the resident to clarify. The deadline clock pauses until "
            "the resident answers."
        ),
    ),
    Exercise(
        "overdue",
        N_("Handle an overdue appeal"),
        N_(
            "Ibragim’s appeal is due in a few days. Move the time forward until it is overdue: the official gets "
            "reminders and the head of the agency an escalation. Then answer it as the official and approve it as the "
            "coordinator."
        ),
    ),
)


def done(progress: TrainingProgress, key: str) -> bool:
    return {
        "file_with_photos": progress.filed_with_photos,
        "route_and_answer": progress.routed_and_answered,
        "clarification": progress.clarification_asked,
        "overdue": progress.overdue_handled,
    }[key]


async def read_progress(sessionmaker: async_sessionmaker[AsyncSession]) -> TrainingProgress:
    async with sessionmaker() as session:
        return await training_progress(session)
