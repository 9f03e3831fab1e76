"""Fault injection and optional rate limiting.

Faults are consumed in the order they were injected: the first active fault
matching a call answers it.  A faulty call never reaches the method
implementation, so it has no effect (no message is recorded), exactly like a
request Telegram rejected.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import INTERNAL_SERVER_ERROR_DESCRIPTION, ApiError, too_many_requests

FAULT_KINDS = frozenset({"429", "500", "drop", "drop_after", "delay", "error"})


@dataclass(slots=True)
class Fault:
    """One injected fault.

    :ivar method: Bot API method name, or ``"*"`` for every method except
        ``getUpdates`` (polling is excluded so a wildcard fault hits the calls
        a test is about, not the background poll; name it explicitly to break
        polling).
    :ivar kind: ``"429"`` (Too Many Requests with ``retry_after``), ``"500"``
        (Internal Server Error), ``"drop"`` (close the connection without an
        answer, before the call is carried out: it has no effect), ``"drop_after"``
        (carry the call out, then close the connection instead of answering: the
        bot never learns that it worked), ``"delay"`` (answer normally after ``delay`` seconds),
        ``"error"`` (any ``error_code``/``description``).
    :ivar count: how many matching calls it answers; None = until cleared.
    :ivar chat_id: only calls with this ``chat_id`` match, when set.
    """

    method: str = "*"
    kind: str = "429"
    count: int | None = 1
    retry_after: int = 1
    delay: float = 0.0
    error_code: int = 400
    description: str = "Bad Request: injected fault"
    chat_id: int | None = None
    hits: int = 0

    def matches(self, method: str, chat_id: Any) -> bool:
        """Whether this fault applies to a call of ``method`` for ``chat_id``."""
        if self.method == "*":
            if method == "getUpdates":
                return False
        elif self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id

    @property
    def exhausted(self) -> bool:
        """True once it answered ``count`` calls."""
        return self.count is not None and self.hits >= self.count

    def to_error(self) -> ApiError:
        """The Telegram-shaped error this fault answers with (429/500/error kinds)."""
        if self.kind == "429":
            return too_many_requests(self.retry_after)
        if self.kind == "500":
            return ApiError(500, INTERNAL_SERVER_ERROR_DESCRIPTION)
        return ApiError(self.error_code, self.description)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (HTTP user API)."""
        return {
            "method": self.method,
            "kind": self.kind,
            "count": self.count,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "error_code": self.error_code,
            "description": self.description,
            "chat_id": self.chat_id,
            "hits": self.hits,
        }


class FaultInjector:
    """The queue of active faults."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Activate a fault (after validating its kind)."""
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if fault.count is not None and fault.count < 1:
            raise ValueError("fault count must be >= 1 (or None for unlimited)")
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    @property
    def active(self) -> list[Fault]:
        """Faults still waiting for matching calls."""
        return list(self._faults)

    def take(self, method: str, chat_id: Any) -> Fault | None:
        """Consume and return the first fault matching this call, if any."""
        if not self._faults:
            return None
        for index, fault in enumerate(self._faults):
            if fault.matches(method, chat_id):
                fault.hits += 1
                if fault.exhausted:
                    del self._faults[index]
                return fault
        return None


class RateLimiter:
    """Answers 429 like Telegram's flood control.

    Without ``per_chat_burst``: sliding one-second windows, at most N sending calls in any second per chat
    and overall.  With ``per_chat_burst``: a token bucket per chat, ``per_chat_burst`` calls at once and then
    ``per_chat_per_second`` (Telegram's "about one message a second in a chat; short bursts are tolerated").
    ``clock`` gives the time in seconds (default ``time.monotonic``): a test passes its own clock so that the
    limit counts the time the bot under test believes in.
    """

    def __init__(
        self,
        per_chat_per_second: float | None = None,
        global_per_second: float | None = None,
        *,
        per_chat_burst: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if per_chat_burst is not None and (per_chat_burst < 1 or not per_chat_per_second):
            raise ValueError("per_chat_burst needs per_chat_per_second and must be >= 1")
        self.per_chat_per_second = per_chat_per_second
        self.global_per_second = global_per_second
        self.per_chat_burst = per_chat_burst
        self._clock = clock or time.monotonic
        self._global: deque[float] = deque()
        self._per_chat: dict[Any, deque[float]] = {}
        self._buckets: dict[Any, tuple[float, float]] = {}  # chat -> (tokens, at)

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return bool(self.per_chat_per_second or self.global_per_second)

    def check(self, chat_id: Any) -> int | None:
        """Record a sending call; return retry_after seconds when it exceeds a limit (nothing is recorded then)."""
        now = self._clock()
        windows: list[tuple[deque[float], float]] = []
        if self.global_per_second:
            windows.append((self._global, self.global_per_second))
        bucket: tuple[float, float] | None = None
        if self.per_chat_per_second and chat_id is not None:
            if self.per_chat_burst is None:
                windows.append((self._per_chat.setdefault(chat_id, deque()), self.per_chat_per_second))
            else:
                tokens, at = self._buckets.get(chat_id, (float(self.per_chat_burst), now))
                tokens = min(float(self.per_chat_burst), tokens + max(now - at, 0.0) * self.per_chat_per_second)
                bucket = (tokens, now)
        retry_after = 0.0
        for window, limit in windows:
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                retry_after = max(retry_after, window[0] + 1.0 - now)
        if bucket is not None and bucket[0] < 1:
            assert self.per_chat_per_second
            retry_after = max(retry_after, (1 - bucket[0]) / self.per_chat_per_second)
        if retry_after > 0:
            if bucket is not None:
                self._buckets[chat_id] = bucket
            return max(1, math.ceil(retry_after))
        for window, _ in windows:
            window.append(now)
        if bucket is not None:
            self._buckets[chat_id] = (bucket[0] - 1, now)
        return None
