"""`tsur-bot db backup PATH`: an online, consistent copy of the SQLite database.

SQLite's online backup API (the stdlib's `sqlite3.Connection.backup`) copies the database page by page under
one read transaction: in WAL mode the bot keeps writing meanwhile, and the copy is the database as it was at one
moment (with everything committed before it, nothing half-written). The copy is written next to PATH and renamed
into place only once it is complete and passes `PRAGMA quick_check`, so a failed backup never leaves a file that
looks like one. PostgreSQL has its own tool for this: pg_dump.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """The backup cannot be made; the message is one line for the operator."""


def sqlite_path(url: str) -> Path:
    """The database file of an SQLite URL, or BackupError naming the right tool for another database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(
            f"db backup copies SQLite databases only; this one is {parsed.get_backend_name()}: use pg_dump, "
            "e.g. pg_dump --format=custom --file=tsur.dump 'postgresql://user@host/tsur' (see README.md, Backups)"
        )
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        raise BackupError("db backup needs an SQLite database in a file (database.url)")
    return Path(parsed.database)


def backup_sqlite(url: str, target: Path | str) -> int:
    """Copy the database of `url` to `target` (replacing it) while the bot may be writing; returns its size."""
    source_path = sqlite_path(url)
    if not source_path.is_file():
        raise BackupError(f"no database at {source_path}")
    target = Path(target)
    if target.resolve() == source_path.resolve():
        raise BackupError("the backup must not be the database itself")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    # Read-only: the backup never writes to the live database (no checkpoint, no journal-mode change).
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    try:
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination)  # all pages in one step: one read transaction, one consistent moment
            # The copy is one self-contained file: no WAL beside it to lose when it is moved about.
            destination.execute("PRAGMA journal_mode=DELETE")
            verdict = destination.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            destination.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup failed: {exc}") from exc
    finally:
        source.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy failed its check: {verdict}")
    os.replace(partial, target)
    return target.stat().st_size
