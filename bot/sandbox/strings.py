"""The web chat page's own strings (emulator/webchat.py serves them to the page), through gettext."""

from __future__ import annotations

from aiogram.utils.i18n import I18n

from bot.i18n import N_

PAGE_STRINGS: dict[str, str] = {
    "title": N_("TSUR bot sandbox"),
    "banner": N_("SANDBOX — not real appeals"),
    "sandbox_time": N_("Sandbox time"),
    "travel": N_("Time travel"),
    "travel_1h": N_("+1 h"),
    "travel_6h": N_("+6 h"),
    "travel_1d": N_("+1 day"),
    "travel_3d": N_("+3 days"),
    "travel_7d": N_("+7 days"),
    "language": N_("Language"),
    "personas": N_("People"),
    "menu": N_("People and exercises"),
    "scenarios": N_("Exercises"),
    "no_scenarios": N_("No exercises yet"),
    "empty_chat": N_("No messages yet. Send /start to begin."),
    "placeholder": N_("Message"),
    "send": N_("Send"),
    "attach": N_("Attach files"),
    "location": N_("Location"),
    "type_coordinates": N_("Type coordinates"),
    "latitude": N_("Latitude"),
    "longitude": N_("Longitude"),
    "send_location": N_("Send location"),
    "bad_coordinates": N_("Coordinates are numbers: latitude from -90 to 90, longitude from -180 to 180."),
    "contact": N_("Share contact"),
    "commands": N_("Bot commands"),
    "no_commands": N_("The bot has no commands"),
    "keyboard": N_("Keyboard"),
    "edited": N_("edited"),
    "ok": N_("OK"),
    "cancel": N_("Cancel"),
    "too_long": N_("The message is too long: at most 4096 characters."),
    "caption_too_long": N_("The caption is too long: at most 1024 characters."),
    "upload_too_big": N_("The file is too big: at most 20 MB."),
    "too_many_files": N_("At most 10 files at once."),
    "bad_request": N_("The action could not be done."),
    "unknown_persona": N_("There is no such person in the sandbox."),
    "connection_lost": N_("Connection lost, reconnecting…"),
}


def page_strings(i18n: I18n, lang: str) -> dict[str, str]:
    """The page's strings translated into ``lang``."""
    return {key: i18n.gettext(msgid, locale=lang) for key, msgid in PAGE_STRINGS.items()}
