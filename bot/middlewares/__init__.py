"""Middlewares: the actor, the locale, throttling and one log line per update."""

from bot.middlewares.actor import ActorMiddleware
from bot.middlewares.logging import HandlerNameMiddleware, UpdateLogMiddleware
from bot.middlewares.throttling import ThrottlingMiddleware

__all__ = ["ActorMiddleware", "HandlerNameMiddleware", "ThrottlingMiddleware", "UpdateLogMiddleware"]
