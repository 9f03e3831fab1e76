"""Engine and session factory; migrations applied programmatically through Alembic."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
        if "+aiosqlite" in url:
            kwargs["connect_args"]["async_creator_fn"] = _aiosqlite_connect
        # SQLite has one writer at a time: with one connection, sessions queue in the event loop instead
        # of in SQLite's busy handler (which sleeps in steps of up to 100 ms and made the latency tail).
        kwargs["pool_size"] = 1
        kwargs["max_overflow"] = 0
        kwargs["pool_timeout"] = 60
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class _AiosqliteConnection(aiosqlite.Connection):
    """aiosqlite, with the calls that do no I/O made in place instead of on its thread.

    aiosqlite runs every call on its own thread, and each hand-off costs a wake-up of that thread and one of the
    event loop: as much CPU as the statement itself, three or four times per statement (SQLAlchemy creates a
    cursor, executes, fetches, closes it). Creating and closing a cursor, and COMMIT or ROLLBACK with no
    transaction open, touch neither the disk nor a lock, so they are made here; everything else (statements,
    fetches, real commits, which may wait for a lock or write a checkpoint) still goes to the thread. The
    connection is never used by two calls at once: SQLAlchemy awaits each call, and a pooled connection
    belongs to one session at a time.
    """

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(fn, "__self__", None)
        name = getattr(fn, "__name__", "")
        conn = self._connection
        if conn is not None and (
            (owner is conn and (name == "cursor" or (name in ("commit", "rollback") and not conn.in_transaction)))
            or (name == "close" and isinstance(owner, sqlite3.Cursor))
        ):
            return fn(*args, **kwargs)
        return await super()._execute(fn, *args, **kwargs)


def _aiosqlite_connect(database: str, **kwargs: Any) -> aiosqlite.Connection:
    """`aiosqlite.connect` with `_AiosqliteConnection` (same arguments)."""
    kwargs["check_same_thread"] = False  # cursors are made and closed on the event loop's thread

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(database, **kwargs)

    connection = _AiosqliteConnection(connector, iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own
    return connection


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply the migrations on the engine's own connection (works inside a running event loop)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)
