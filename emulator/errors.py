"""Telegram-shaped API errors raised by emulated Bot API methods."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered to the bot exactly as Telegram would shape it.

    Method implementations raise it anywhere; the HTTP layer turns it into
    ``{"ok": false, "error_code": ..., "description": ..., "parameters": ...}``
    with the same HTTP status, which is what aiogram maps to its exceptions.
    """

    def __init__(self, error_code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def to_payload(self) -> dict[str, Any]:
        """Return the JSON body Telegram sends for this error."""
        payload: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            payload["parameters"] = self.parameters
        return payload


def bad_request(reason: str) -> ApiError:
    """400 with Telegram's ``Bad Request: `` prefix."""
    return ApiError(400, f"Bad Request: {reason}")


def forbidden(reason: str) -> ApiError:
    """403 with Telegram's ``Forbidden: `` prefix."""
    return ApiError(403, f"Forbidden: {reason}")


def too_many_requests(retry_after: int) -> ApiError:
    """429 carrying ``parameters.retry_after`` so aiogram raises TelegramRetryAfter."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


def conflict(reason: str) -> ApiError:
    """409 with Telegram's ``Conflict: `` prefix."""
    return ApiError(409, f"Conflict: {reason}")


def unauthorized() -> ApiError:
    """401 answered for a wrong bot token."""
    return ApiError(401, "Unauthorized")


METHOD_NOT_FOUND_DESCRIPTION = "Not Found: method not found"
INTERNAL_SERVER_ERROR_DESCRIPTION = "Internal Server Error"
