"""The user-side HTTP API under ``/_emu/`` (JSON in, JSON out).

Thin wrappers over the Python API so other processes (a sandbox UI, load
generators) can act as users.  Every answer is ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": "..."}`` with 400 (bad input / failed
expectation), 404 (unknown route) or 408 (timeout).
"""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .server import BotAPIEmulator
    from .user import EmulatedUser

# ``POST /_emu/users/{id}/{action}`` -> EmulatedUser method; the JSON body is passed as keyword arguments.
USER_ACTIONS = {
    "text": "send_text",
    "command": "send_command",
    "photo": "send_photo",
    "video": "send_video",
    "document": "send_document",
    "audio": "send_audio",
    "voice": "send_voice",
    "sticker": "send_sticker",
    "animation": "send_animation",
    "video_note": "send_video_note",
    "album": "send_album",
    "location": "send_location",
    "contact": "send_contact",
    "raw": "send_raw",
    "click": "click",
    "callback": "press_callback",
    "reply_button": "press_reply_button",
}
# Synchronous state changes: ``POST /_emu/users/{id}/{action}``.
USER_SWITCHES = {"block": "block", "unblock": "unblock", "open_chat": "open_chat"}

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result}, dumps=_dumps)


def _fail(status: int, error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status, dumps=_dumps)


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


def _guard(handler: _Handler) -> _Handler:
    """Turn failed expectations into JSON errors instead of aiohttp's HTML 500 page."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except TimeoutError as exc:
            return _fail(408, str(exc))
        except (AssertionError, ValueError, TypeError, KeyError) as exc:
            return _fail(400, f"{type(exc).__name__}: {exc}")

    return wrapped


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise ValueError("the JSON body must be an object")
    return body


def _user_summary(user: EmulatedUser) -> dict[str, Any]:
    return {
        "user": user.user_object,
        "started": user.started,
        "blocked": user.blocked,
        "messages": len(user.messages),
        "reply_keyboard": user.reply_keyboard,
        "callback_answers": user.callback_answers,
        "chat_actions": user.chat_actions,
        "phone_number": user.phone_number,
    }


def setup_user_routes(app: web.Application, emu: BotAPIEmulator) -> None:
    """Register the ``/_emu/`` routes for ``emu`` on ``app``."""

    def user_from(request: web.Request) -> EmulatedUser:
        try:
            user_id = int(request.match_info["user_id"])
        except ValueError:
            raise ValueError("user id must be an integer") from None
        return emu.user(user_id)

    @_guard
    async def index(request: web.Request) -> web.StreamResponse:
        return _ok(
            {
                "bot": emu.bot_user,
                "base_url": emu.base_url,
                "user_actions": sorted(USER_ACTIONS) + sorted(USER_SWITCHES),
            }
        )

    @_guard
    async def get_state(request: web.Request) -> web.StreamResponse:
        state = emu.state
        return _ok(
            {
                "pending_updates": len(state.updates),
                "next_update_id": state.next_update_id,
                "confirmed_update_id": state.acked_update_id,
                "users": sorted(state.users),
                "bot_messages": len(state.bot_messages),
                "requests": len(state.requests),
                "faults": [fault.to_dict() for fault in emu.faults],
                "webhook_url": state.webhook_url,
            }
        )

    @_guard
    async def list_users(request: web.Request) -> web.StreamResponse:
        return _ok([_user_summary(user) for user in emu.users.values()])

    @_guard
    async def get_user(request: web.Request) -> web.StreamResponse:
        return _ok(_user_summary(user_from(request)))

    @_guard
    async def put_user(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        user_id = int(request.match_info["user_id"])
        allowed = {"first_name", "last_name", "username", "language_code"}
        unknown = set(body) - allowed - {"phone_number"}
        if unknown:
            raise ValueError(f"unknown profile fields: {sorted(unknown)}")
        user = emu.user(user_id, **{k: v for k, v in body.items() if k in allowed})
        if body.get("phone_number"):
            user.phone_number = body["phone_number"]
        return _ok(_user_summary(user))

    @_guard
    async def get_messages(request: web.Request) -> web.StreamResponse:
        user = user_from(request)
        since = int(request.query.get("since", "0"))
        return _ok([m.to_dict() for m in user.messages if m.message_id > since])

    @_guard
    async def next_message(request: web.Request) -> web.StreamResponse:
        user = user_from(request)
        timeout = float(request.query.get("timeout", "5"))
        return _ok((await user.next_message(timeout=timeout)).to_dict())

    @_guard
    async def user_action(request: web.Request) -> web.StreamResponse:
        user = user_from(request)
        action = request.match_info["action"]
        if action in USER_SWITCHES:
            getattr(user, USER_SWITCHES[action])()
            return _ok(_user_summary(user))
        method_name = USER_ACTIONS.get(action)
        if method_name is None:
            return _fail(404, f"unknown user action {action!r}; known: {sorted(USER_ACTIONS) + sorted(USER_SWITCHES)}")
        kwargs = await _body(request)
        if "content_base64" in kwargs:
            kwargs["content"] = base64.b64decode(kwargs.pop("content_base64"))
        bound = getattr(user, method_name)
        inspect.signature(bound).bind(**kwargs)  # TypeError (-> 400) names the bad argument
        result = await bound(**kwargs)
        if isinstance(result, str):
            result = {"callback_query_id": result}
        return _ok(result)

    @_guard
    async def get_requests(request: web.Request) -> web.StreamResponse:
        method = request.query.get("method")
        ok_filter = request.query.get("ok")
        ok = None if ok_filter is None else ok_filter.lower() in ("1", "true", "yes")
        calls = emu.calls(method, ok=ok)
        limit = int(request.query.get("limit", "100"))
        return _ok([call.to_dict() for call in calls[-limit:]] if limit > 0 else [])

    @_guard
    async def get_faults(request: web.Request) -> web.StreamResponse:
        return _ok([fault.to_dict() for fault in emu.faults])

    @_guard
    async def post_fault(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        return _ok(emu.inject(**body).to_dict())

    @_guard
    async def delete_faults(request: web.Request) -> web.StreamResponse:
        emu.clear_faults()
        return _ok(True)

    @_guard
    async def post_rate_limit(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        emu.rate_limit(**body)
        return _ok(True)

    @_guard
    async def post_wait_confirmed(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        await emu.wait_confirmed(timeout=float(body.get("timeout", 5)))
        return _ok(True)

    router = app.router
    router.add_get("/_emu/", index)
    router.add_get("/_emu/state", get_state)
    router.add_get("/_emu/users", list_users)
    router.add_get("/_emu/users/{user_id}", get_user)
    router.add_post("/_emu/users/{user_id}", put_user)
    router.add_get("/_emu/users/{user_id}/messages", get_messages)
    router.add_get("/_emu/users/{user_id}/next_message", next_message)
    router.add_post("/_emu/users/{user_id}/{action}", user_action)
    router.add_get("/_emu/requests", get_requests)
    router.add_get("/_emu/faults", get_faults)
    router.add_post("/_emu/faults", post_fault)
    router.add_delete("/_emu/faults", delete_faults)
    router.add_post("/_emu/rate_limit", post_rate_limit)
    router.add_post("/_emu/wait_confirmed", post_wait_confirmed)
