"""The dialog-state row read and written in place on a SQLite file: see `InlineFsm`.

Not a repository: it has a connection of its own and commits each write, as the engine does; `bot.fsm_storage`
uses it beside the engine's session and falls back to that session whenever it cannot act at once.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from urllib.request import pathname2url

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import FsmRecord
from storage.repositories.fsm import UPSERT


class InlineFsm:
    """SQLite only: the dialog-state reads and writes made in place, on the event loop's thread, when they can be
    made at once; otherwise the caller goes through the engine as on any database.

    Each update of a person in a dialog ends with one upsert of their state. Through the engine that costs about
    0.6 ms of CPU (`bench/confirm.py`): SQLAlchemy's session and two hand-offs to aiosqlite's thread, each waking
    that thread and then the event loop, for a statement SQLite runs in 15–20 µs. Under load it costs far more: a
    hand-off needs aiosqlite's thread to take the GIL from a busy event loop, and in `bench/intake.py` the bot's
    CPU per update fell from 4.25 to 2.41 ms with this class. Here it is the statement alone, on a connection of
    its own to the same database file:
    - it never waits for a lock: `busy_timeout` is 0 and the write starts with BEGIN IMMEDIATE, so when another
      connection is writing, `write()` returns False at once and the caller uses the engine (which queues);
    - it never runs a checkpoint (which fsyncs): `wal_autocheckpoint` is 0 on this connection, and every
      `ENGINE_EVERY`-th write is left to the engine, whose commit runs SQLite's automatic checkpoint on aiosqlite's
      thread, so the WAL cannot grow without bound;
    - commits are as durable as the engine's (WAL, `synchronous=NORMAL`), and the values are encoded by the
      columns' own types, so rows read the same whichever way they were written.
    """

    ENGINE_EVERY = 200

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self._connection = connection
        # The engine's upsert and a select of the same table, compiled for SQLite, with the columns' own conversions.
        table = FsmRecord.__table__
        upsert = UPSERT.compile(dialect=dialect)
        self._upsert = str(upsert)
        self._order = tuple(upsert.positiontup or ())
        self._encoders = tuple(table.c[name].type.bind_processor(dialect) for name in self._order)
        self._select = str(
            select(table.c.state, table.c.data).where(table.c.key == bindparam("key")).compile(dialect=dialect)
        )
        self._load_data = table.c.data.type.result_processor(dialect, None)
        self._writes = 0

    @classmethod
    def open(cls, engine: AsyncEngine) -> InlineFsm | None:
        """For a SQLite file database in WAL mode; None for anything else (PostgreSQL, memory, other journals)."""
        url = engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" or url.query:
            return None  # (a URL with options, `uri=true` say, is left to the engine, which reads them)
        try:  # mode=rw: an existing database only, never a new empty file
            target = f"file:{pathname2url(os.path.abspath(url.database))}?mode=rw"
            connection = sqlite3.connect(target, uri=True, isolation_level=None)
        except sqlite3.Error:
            return None
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.close()
                return None
            connection.execute("PRAGMA busy_timeout=0")
            connection.execute("PRAGMA wal_autocheckpoint=0")
            connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            connection.close()
            return None
        return cls(connection, engine.dialect)

    def get(self, key: str) -> tuple[bool, tuple[str | None, dict[str, Any]] | None]:
        """(done, (state, data) or None when there is no row); not done when the database was busy."""
        try:
            row = self._connection.execute(self._select, (key,)).fetchone()
        except sqlite3.OperationalError:  # busy (a WAL recovery, say): the engine will wait for it
            return False, None
        if row is None:
            return True, None
        data = self._load_data(row[1]) if self._load_data else row[1]
        return True, (row[0], dict(data or {}))

    def write(self, rows: list[dict[str, Any]]) -> bool:
        """Upsert the rows in one transaction; False (nothing written) when it cannot be done at once."""
        self._writes += 1
        if self._writes % self.ENGINE_EVERY == 0:
            return False  # the engine's turn: its commit checkpoints the WAL when it is due
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # another connection is writing
            return False
        try:
            params = [
                tuple(
                    row[name] if encode is None else encode(row[name])
                    for name, encode in zip(self._order, self._encoders, strict=True)
                )
                for row in rows
            ]
            self._connection.executemany(self._upsert, params)
            self._connection.execute("COMMIT")
        except BaseException:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            raise
        return True

    def close(self) -> None:
        self._connection.close()
