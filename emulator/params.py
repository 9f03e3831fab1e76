"""Bot API request parameters: decoding and typed access.

aiogram sends every field as a string (multipart or urlencoded form) with
complex values JSON-encoded, uploads as file parts referenced by
``attach://name``; other clients send JSON bodies or query strings.  The
emulator normalises all of them into one plain dict once, so method
implementations and the request log see the same decoded values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

# Fields whose string value is a JSON document in the Bot API.
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "media",
        "commands",
        "scope",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "menu_button",
        "message_ids",
        "results",
        "reaction",
        "options",
    }
)
# Fields that are integers (ids, counters); converted when they look numeric so that
# logged params compare naturally with ints in tests (``params["chat_id"] == 1001``).
INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "message_thread_id",
        "offset",
        "limit",
        "timeout",
        "cache_time",
        "duration",
        "width",
        "height",
        "length",
        "live_period",
        "reply_to_message_id",
        "user_id",
    }
)
# Multipart parts under these names are the file itself (``curl -F photo=@a.jpg``);
# parts under other names are only reachable through ``attach://name``.
FILE_FIELDS = frozenset(
    {"photo", "video", "document", "audio", "voice", "sticker", "animation", "video_note", "thumbnail", "certificate"}
)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclass(slots=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    content: bytes

    def describe(self) -> dict[str, Any]:
        """Loggable form (no bytes)."""
        return {"upload": self.filename, "size": len(self.content), "content_type": self.content_type}


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Decode JSON-valued fields and numeric ids in place of their string forms."""
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            if key in JSON_FIELDS:
                try:
                    value = json.loads(value)
                except ValueError:
                    pass  # left as a string; the method reports it Telegram-style
            elif key in INT_FIELDS and _looks_int(value):
                value = int(value)
        result[key] = value
    return result


def _looks_int(value: str) -> bool:
    body = value[1:] if value.startswith("-") else value
    return body.isdigit()


class Params:
    """Typed, Telegram-style validating access to normalised request params."""

    __slots__ = ("data", "files")

    def __init__(self, data: dict[str, Any], files: dict[str, UploadedFile] | None = None) -> None:
        self.data = data
        self.files = files or {}

    def __contains__(self, name: str) -> bool:
        return self.data.get(name) is not None

    def get(self, name: str, default: Any = None) -> Any:
        """Raw normalised value."""
        value = self.data.get(name)
        return default if value is None else value

    def get_str(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        """A string field; JSON-decoded non-strings are converted back to text."""
        value = self.data.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is empty")
            return default
        if isinstance(value, UploadedFile):
            raise bad_request(f"wrong {name} specified")
        return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)

    def get_int(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        """An integer field."""
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _looks_int(value.strip()):
            return int(value.strip())
        raise bad_request(f"invalid {name} specified")

    def get_float(self, name: str, *, required: bool = False, default: float | None = None) -> float | None:
        """A float field."""
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def get_bool(self, name: str, *, default: bool = False) -> bool:
        """A boolean field (``true``/``false`` strings as aiogram sends them)."""
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise bad_request(f"invalid {name} specified")

    def get_json(self, name: str, *, error: str | None = None) -> Any:
        """A JSON-valued field (already decoded by :func:`normalize` when valid)."""
        value = self.data.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(error or f"can't parse {name} JSON object") from None
        return value

    def file_or_id(self, name: str) -> str | UploadedFile | None:
        """A file field: a file_id/URL string, ``attach://part`` or a direct file part."""
        value = self.data.get(name)
        if isinstance(value, UploadedFile):
            return value
        if isinstance(value, str) and value.startswith("attach://"):
            return self.attachment(value)
        return value if isinstance(value, str) and value else None

    def attachment(self, reference: str) -> UploadedFile:
        """Resolve ``attach://name`` to the uploaded part."""
        part = self.files.get(reference[len("attach://") :])
        if part is None:
            raise bad_request(f'can\'t find attached file "{reference[len("attach://") :]}"')
        return part


def loggable(data: dict[str, Any]) -> dict[str, Any]:
    """Copy of params with uploads replaced by a short description (for the request log)."""
    if not any(isinstance(v, UploadedFile) for v in data.values()):
        return data
    return {k: v.describe() if isinstance(v, UploadedFile) else v for k, v in data.items()}
