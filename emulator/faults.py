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
from dataclasses import dataclass
from typing import Any

from .errors import INTERNAL_SERVER_ERROR_DESCRIPTION, ApiError, too_many_requests

FAULT_KINDS = frozenset({"429", "500", "drop", "delay", "error"})


@dataclass(slots=True)
class Fault:
    """One injected fault.

    :ivar method: Bot API method name, or ``"*"`` for every method except
        ``getUpdates`` (polling is excluded so a wildcard fault hits the calls
        a test is about, not the background poll; name it explicitly to break
        polling).
    :ivar kind: ``"429"`` (Too Many Requests with ``retry_after``), ``"500"``
        (Internal Server Error), ``"drop"`` (close the connection without an
        answer), ``"delay"`` (answer normally after ``delay`` seconds),
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
    """Sliding one-second windows answering 429 like Telegram's flood control."""

    def __init__(self, per_chat_per_second: float | None = None, global_per_second: float | None = None) -> None:
        self.per_chat_per_second = per_chat_per_second
        self.global_per_second = global_per_second
        self._global: deque[float] = deque()
        self._per_chat: dict[Any, deque[float]] = {}

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return bool(self.per_chat_per_second or self.global_per_second)

    def check(self, chat_id: Any) -> int | None:
        """Record a sending call; return retry_after seconds when it exceeds a limit."""
        now = time.monotonic()
        windows: list[tuple[deque[float], float]] = []
        if self.global_per_second:
            windows.append((self._global, self.global_per_second))
        if self.per_chat_per_second and chat_id is not None:
            windows.append((self._per_chat.setdefault(chat_id, deque()), self.per_chat_per_second))
        retry_after = 0.0
        for window, limit in windows:
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                retry_after = max(retry_after, window[0] + 1.0 - now)
        if retry_after > 0:
            return max(1, math.ceil(retry_after))
        for window, _ in windows:
            window.append(now)
        return None
