"""The test databases, on SQLite (the default) or on PostgreSQL (`TSUR_TEST_DATABASE_URL=postgresql+asyncpg://…`).

A test names its database by a path under its tmp_path, as it always did. On SQLite that path is the database file;
on PostgreSQL it names a database of its own on the server of TSUR_TEST_DATABASE_URL (the database of that URL is
only the one the helpers connect to for CREATE/DROP DATABASE). Copying a template is `shutil.copy` on SQLite and
`CREATE DATABASE … TEMPLATE …` on PostgreSQL, so the session's migrated and seeded templates stay cheap on both.
The PostgreSQL databases a test created are dropped when it ends (the `drop_test_databases` fixture of conftest);
the session's templates when the session ends."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

TEST_DATABASE_URL = os.environ.get("TSUR_TEST_DATABASE_URL", "").strip()
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")
if TEST_DATABASE_URL and not ON_POSTGRES:
    raise RuntimeError("TSUR_TEST_DATABASE_URL must be a postgresql+asyncpg:// URL (empty: SQLite files)")

# The PostgreSQL databases created so far, oldest first (dropped by the fixtures of conftest).
created: list[str] = []


def pg_name(path: Path) -> str:
    """The PostgreSQL database a test path stands for (a name of 63 characters at most, no quoting needed)."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:24]
    return f"tsur_{os.getpid()}_{digest}"


def db_url(path: Path) -> str:
    """The SQLAlchemy URL of the test database `path` names."""
    if not ON_POSTGRES:
        return f"sqlite+aiosqlite:///{path}"
    return make_url(TEST_DATABASE_URL).set(database=pg_name(path)).render_as_string(hide_password=False)


@cache
def _server_version() -> int:
    """The major version of the server of TSUR_TEST_DATABASE_URL."""
    versions: list[int] = []
    _admin(versions=versions)
    return versions[0]


def _admin(*statements: str, versions: list[int] | None = None) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE need that) on the server's own database, from a
    thread of its own, so that sync fixtures and async tests alike may call it."""
    import asyncpg

    url = make_url(TEST_DATABASE_URL)

    async def run() -> None:
        conn = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
        )
        try:
            if versions is not None:
                versions.append(conn.get_server_version().major)
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def fresh_db(path: Path) -> str:
    """An empty database (no tables) named by `path`; its URL."""
    if ON_POSTGRES:
        name = pg_name(path)
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}" TEMPLATE template0')
        created.append(name)
    return db_url(path)


def copy_db(source: Path, path: Path) -> str:
    """A copy of the database `source` names, named by `path`; its URL. On PostgreSQL nobody may be connected to
    the source (its engines disposed), as CREATE DATABASE … TEMPLATE requires."""
    if not ON_POSTGRES:
        shutil.copy(source, path)
    else:
        name = pg_name(path)
        # FILE_COPY (PostgreSQL 15+) copies the few megabytes of a test database faster than logging them (WAL_LOG).
        strategy = " STRATEGY FILE_COPY" if _server_version() >= 15 else ""
        _admin(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{pg_name(source)}"{strategy}',
        )
        created.append(name)
    return db_url(path)


def drop_since(mark: int) -> None:
    """Drop the PostgreSQL databases created after the first `mark` ones."""
    names = created[mark:]
    del created[mark:]
    if names:
        _admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in reversed(names)))


async def checkpoint(engine: AsyncEngine) -> None:
    """Make a template database whole in its main file before it is copied (SQLite's WAL); nothing on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
