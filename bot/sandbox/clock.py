"""The sandbox's clock: the real time plus an offset that the page's "time travel" moves forward.

The offset is kept in a small file of the sandbox's folder, so a restarted sandbox goes on at the moment it had
reached: the appeals in its database were filed and routed on that clock, and a step back in time would make their
deadlines and durations wrong."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path


class OffsetClock:
    """`now()` is the wall clock moved `offset` ahead; only ever forward (a deadline never comes back)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.offset = timedelta()
        if path is not None and path.exists():
            try:
                self.offset = timedelta(seconds=float(json.loads(path.read_text())["offset_seconds"]))
            except (ValueError, KeyError, TypeError):
                self.offset = timedelta()  # a damaged file: start from the real time rather than not at all

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def travel(self, seconds: int) -> datetime:
        if seconds <= 0:
            raise ValueError("the sandbox's time only moves forward")
        self.offset += timedelta(seconds=seconds)
        if self.path is not None:
            self.path.write_text(json.dumps({"offset_seconds": self.offset.total_seconds()}))
        return self.now()
