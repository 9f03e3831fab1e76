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


async def test_a_persons_dialog_rows_are_read_together_whatever_the_collation(tmp_path: Path) -> None:
    """The FSM storage reads a person's rows as the key range [key + ":", key + ";"): in byte order on both
    databases (fsm_state.key is "C" on PostgreSQL, whose databases often sort linguistically, ignoring ":" and ";")."""
    from datetime import UTC, datetime

    from storage.repositories.fsm import FsmRepo

    engine = create_engine(fresh_db(tmp_path / "fsm.db"))
    await upgrade(engine)
    now = datetime(2026, 12, 2, tzinfo=UTC)
    mine = ["fsm:7:7", "fsm:7:7:aiogd:stack:", "fsm:7:7:aiogd:context:a1B2", "fsm:7:7:aiogd:stack:x-y_z"]
    others = ["fsm:7:70", "fsm:7:7a", "fsm:7:77:aiogd:stack:", "fsm:7:7;", "fsm:7:8:aiogd:stack:", "fsm:6:7:x"]
    async with engine.begin() as conn:
        repo = FsmRepo(conn)
        for n, key in enumerate(mine + others):
            await repo.set_data(key, {"n": n}, now)
    async with engine.connect() as conn:
        found = await FsmRepo(conn).person("fsm:7:7")
    assert sorted(found) == sorted(mine)
    await engine.dispose()


async def test_the_partial_index_of_pending_reminders_is_partial_on_both_databases(tmp_path: Path) -> None:
    engine = create_engine(fresh_db(tmp_path / "ix.db"))
    await upgrade(engine)
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE name = 'ix_reminders_pending'"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_reminders_pending'"
        definition = (await conn.exec_driver_sql(query)).scalar_one()
    assert "WHERE" in definition and "sent_at IS NULL" in definition, definition
    await engine.dispose()
