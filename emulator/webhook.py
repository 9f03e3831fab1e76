"""Webhook delivery as Telegram does it.

After ``setWebhook`` with a URL, every queued update is POSTed to it as JSON with the
``X-Telegram-Bot-Api-Secret-Token`` header (when a secret was set). At most ``max_connections``
requests are in flight; the updates of one chat go one at a time, in order (the next one waits until
the previous one was answered with a 2xx). An update is confirmed, and leaves the queue, when the
webhook answers 2xx; an error status, a refused connection or a timeout is retried after a growing
delay (``retry_base`` doubled each time, up to ``retry_max``), for as long as the webhook stays set.
The last failure shows in ``getWebhookInfo`` (``last_error_date``, ``last_error_message``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from .state import EmulatorState

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def order_key(update: dict[str, Any]) -> tuple[str, int]:
    """Updates with the same key are delivered one at a time, in order: those of one chat (or one sender)."""
    for kind, payload in update.items():
        if kind == "update_id" or not isinstance(payload, dict):
            continue
        chat = payload.get("chat") or (payload.get("message") or {}).get("chat")
        if isinstance(chat, dict) and "id" in chat:
            return ("chat", int(chat["id"]))
        sender = payload.get("from")
        if isinstance(sender, dict) and "id" in sender:
            return ("chat", int(sender["id"]))
    return ("update", int(update["update_id"]))


class WebhookDelivery:
    """Pushes the queue of :class:`EmulatorState` to the webhook; driven by ``wake()`` on every change."""

    def __init__(self, state: EmulatorState, *, timeout: float = 10.0, retry_base: float = 0.05, retry_max: float = 2.0) -> None:
        self.state = state
        self.timeout = timeout
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.url = ""
        self.secret = ""
        self.max_connections = 40
        self.in_flight: dict[int, tuple[str, int]] = {}
        """update_id → order key of the updates being delivered (or waiting for their retry)."""
        self.attempts = 0
        self.failures = 0
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def configure(self, url: str, secret: str, max_connections: int) -> None:
        self.url = url
        self.secret = secret
        self.max_connections = max_connections
        self.wake()

    def wake(self) -> None:
        """Start delivering every update that may go now (called when an update is queued or one is confirmed)."""
        if not self.url or self.state.closing:
            return
        busy = set(self.in_flight.values())
        for update in list(self.state.updates):
            if len(self.in_flight) >= self.max_connections:
                return
            update_id = int(update["update_id"])
            if update_id in self.in_flight:
                continue
            key = order_key(update)
            if key in busy:
                continue  # an earlier update of this chat is still on its way
            busy.add(key)
            self.in_flight[update_id] = key
            task = asyncio.get_running_loop().create_task(self._deliver(update))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, update: dict[str, Any]) -> None:
        update_id = int(update["update_id"])
        failures = 0
        try:
            while self.url and not self.state.closing:
                error = await self._post(update)
                if error is None:
                    self.state.delivered(update_id)
                    return
                failures += 1
                self.failures += 1
                self.last_error_date = int(time.time())
                self.last_error_message = error
                logger.debug("webhook delivery of update %s failed: %s", update_id, error)
                await asyncio.sleep(min(self.retry_base * 2 ** (failures - 1), self.retry_max))
        finally:
            self.in_flight.pop(update_id, None)
            self.wake()

    async def _post(self, update: dict[str, Any]) -> str | None:
        """None when the webhook took the update, else Telegram's wording of the failure."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {SECRET_HEADER: self.secret} if self.secret else {}
        self.attempts += 1
        try:
            async with self._session.post(
                self.url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientConnectionError:
            return "Connection refused"

    def info(self) -> dict[str, Any]:
        """The delivery part of getWebhookInfo."""
        info: dict[str, Any] = {"max_connections": self.max_connections} if self.url else {}
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        return info

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
