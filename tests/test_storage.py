from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, inspect, select

from storage.db import create_engine, create_sessionmaker, upgrade
from storage.models import Agency, Block, Category, District
from storage.seed import load_directories
from tests.databases import fresh_db


async def test_migrations_build_the_schema_and_data_loads_idempotently(tmp_path: Path) -> None:
    engine = create_engine(fresh_db(tmp_path / "fresh.db"))
    await upgrade(engine)
    await upgrade(engine)  # a second upgrade is a no-op
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        # SQLite runs in WAL mode (readers never wait for the writer); PostgreSQL has MVCC anyway.
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one() if engine.dialect.name == "sqlite" else "wal"
    assert {
        "users",
        "consents",
        "appeals",
        "attachments",
        "status_history",
        "categories",
        "districts",
        "agencies",
    } <= tables
    assert mode == "wal"
    sessionmaker = create_sessionmaker(engine)
    counts = []
    for _ in range(2):
        await load_directories(sessionmaker)
        async with sessionmaker() as session:
            counts.append(
                [
                    int((await session.execute(select(func.count()).select_from(m))).scalar_one())
                    for m in (Block, Category, District, Agency)
                ]
            )
    assert counts[0] == counts[1]
    blocks, categories, districts, agencies = counts[0]
    assert blocks == 7 and 35 <= categories <= 70 and districts >= 17 and agencies >= districts
    await engine.dispose()


async def test_the_models_match_the_migrations_and_downgrades_work(tmp_path: Path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.db import alembic_config
    from storage.models import Base

    engine = create_engine(fresh_db(tmp_path / "m.db"))
    await upgrade(engine)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
    assert diff == []

    def downgrade(connection: object) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "base")

    async with engine.begin() as conn:
        await conn.run_sync(downgrade)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert tables <= {"alembic_version"}
    await upgrade(engine)
    await engine.dispose()
