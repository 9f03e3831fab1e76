"""`tsur-bot db backup PATH`: a copy taken while the bot writes, restored, and the bot started on it."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.cli import parse_args
from storage.backup import BackupError, backup_sqlite
from storage.models import Appeal, StatusHistory
from tests.conftest import Harness
from tests.databases import ON_POSTGRES
from tests.test_cli import ROOT, run_cli
from tests.test_resident_e2e import english_resident
from tests.test_staff_e2e import filed_appeal

# The command copies an SQLite database (its backup API); PostgreSQL is backed up with pg_dump (README).
pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="the SQLite backup: the suite runs on PostgreSQL")


def config_for(database: Path, tmp_path: Path) -> Path:
    config = tmp_path / "backup.toml"
    config.write_text(f'[bot]\ntoken = "1:A"\n[database]\nurl = "sqlite+aiosqlite:///{database}"\n')
    return config


async def backup_cli(config: Path, target: Path) -> tuple[int, str, str]:
    """The command as an operator runs it: another process, next to the running bot."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "db", "backup", str(target), "--config", str(config),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def check_copy(target: Path) -> None:
    """One self-contained, sound file."""
    assert not Path(f"{target}-wal").exists()
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def restore(backup: Path, database: Path) -> None:
    """What the README tells the operator: the bot stopped, the database and its WAL files replaced by the copy."""
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy(backup, database)


async def test_backup_while_the_bot_writes_then_restore_and_start_on_it(
    harness: Harness, db_path: Path, tmp_path: Path
) -> None:
    alice = await english_resident(harness, 1001)
    first = await filed_appeal(harness, alice)
    bob = await english_resident(harness, 1002)

    target = tmp_path / "backups" / "tsur-backup.db"
    target.parent.mkdir()
    backup = asyncio.create_task(backup_cli(config_for(db_path, tmp_path), target))
    filed = 0
    while not backup.done():  # Bob keeps filing while the copy is taken
        await filed_appeal(harness, bob)
        filed += 1
    code, out, err = await backup
    assert code == 0, err
    assert f"backup written to {target}" in out
    assert filed >= 1
    check_copy(target)

    # Disaster: the database is lost. Restore: the copy goes into place, and the bot starts on it.
    await harness.stop()
    restore(target, db_path)
    await harness.start()
    # An update the copy holds in the polling inbox but not yet handled (Bob's press as the copy was taken) is
    # handled now, as after any crash: Bob's appeal is then filed again. Count the appeals after that.
    assert harness.app is not None
    for _ in range(500):
        if not await harness.app.services.updates.inbox():
            break
        await asyncio.sleep(0.01)
    await harness.settle()

    appeals = await harness.rows(Appeal)
    assert first.number in {a.number for a in appeals}
    bobs = [a for a in appeals if a.user_id != first.user_id]
    assert 0 <= len(bobs) <= filed
    for appeal in appeals:  # every appeal in the copy is whole: registered with its history
        assert await harness.rows(StatusHistory, StatusHistory.appeal_id == appeal.id)

    await alice.send_text("📋 My appeals")
    await harness.settle()
    assert "1 in all" in alice.last_message.text
    assert any(first.number in button for button in alice.last_message.buttons)
    await bob.send_text("📋 My appeals")
    await harness.settle()
    listing = bob.last_message.text
    assert (f"{len(bobs)} in all" in listing) if bobs else ("no appeals yet" in listing), listing
    # And the restored bot takes new appeals, numbered after the ones it has.
    again = await filed_appeal(harness, alice)
    assert again.number not in {a.number for a in appeals}


def test_backup_refuses_postgresql_and_names_pg_dump(tmp_path: Path) -> None:
    config = tmp_path / "pg.toml"
    config.write_text('[bot]\ntoken = "1:A"\n[database]\nurl = "postgresql+asyncpg://tsur@localhost/tsur"\n')
    result = run_cli("db", "backup", str(tmp_path / "x.db"), "--config", str(config), tmp_path=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pg_dump" in lines[0], result.stderr
    assert not (tmp_path / "x.db").exists()


def test_backup_needs_a_path_and_upgrade_takes_none(tmp_path: Path) -> None:
    assert run_cli("db", "backup", tmp_path=tmp_path).returncode == 2
    assert run_cli("db", "upgrade", "x.db", tmp_path=tmp_path).returncode == 2


def test_backup_refuses_a_missing_database_and_itself(tmp_path: Path, db_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{db_path}"
    for bad, target in ((f"sqlite+aiosqlite:///{tmp_path}/none.db", tmp_path / "b.db"), (url, db_path)):
        try:
            backup_sqlite(bad, target)
        except BackupError:
            continue
        raise AssertionError(f"{bad} -> {target} was not refused")
    assert backup_sqlite(url, tmp_path / "ok.db") > 0
    with sqlite3.connect(tmp_path / "ok.db") as copy:
        assert copy.execute("SELECT count(*) FROM districts").fetchone()[0] > 0


def test_backup_takes_its_options_anywhere() -> None:
    """deploy/tsur-bot-backup.service gives --config before the path."""
    for argv in (
        ["db", "backup", "--config", "c.toml", "/b.db"],
        ["db", "backup", "/b.db", "--config", "c.toml"],
        ["--config", "c.toml", "db", "backup", "/b.db"],
    ):
        args = parse_args(argv)
        assert (args.command, args.action, args.path, args.config) == ("db", "backup", "/b.db", "c.toml")
