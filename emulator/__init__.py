"""Local Telegram Bot API emulator for testing the bot without Telegram.

See README.md in this package for the Python and HTTP APIs.
"""

from __future__ import annotations

from .errors import ApiError
from .faults import Fault
from .models import ApiCall, BotMessage
from .server import BotAPIEmulator
from .user import EmulatedUser

__all__ = ["ApiCall", "ApiError", "BotAPIEmulator", "BotMessage", "EmulatedUser", "Fault"]
