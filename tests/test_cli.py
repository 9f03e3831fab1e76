"""The `tsur-bot` command line: options before or after the subcommand, and the config file given is the one used."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import parse_args

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("argv", "command", "config"),
    [
        (["run", "--config", "x.toml"], "run", "x.toml"),
        (["--config", "x.toml", "run"], "run", "x.toml"),
        (["run", "--config=x.toml"], "run", "x.toml"),
        (["run"], "run", None),
        (["db", "upgrade", "--config", "x.toml"], "db", "x.toml"),
        (["db", "--config", "x.toml", "upgrade"], "db", "x.toml"),
        (["--config", "x.toml", "db", "upgrade"], "db", "x.toml"),
        (["db", "upgrade"], "db", None),
    ],
)
def test_config_is_accepted_before_and_after_the_subcommand(argv: list[str], command: str, config: str | None) -> None:
    args = parse_args(argv)
    assert args.command == command
    assert args.config == config


def test_config_after_the_subcommand_wins_over_the_one_before() -> None:
    assert parse_args(["--config", "a.toml", "run", "--config", "b.toml"]).config == "b.toml"


def test_unknown_options_are_still_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["run", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def run_cli(*argv: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # TSUR_CONFIG names a file that does not exist: only the --config given can make the command work.
    env = {"PATH": "/usr/bin:/bin", "TSUR_CONFIG": str(tmp_path / "absent.toml")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_db_upgrade_uses_the_config_given_after_the_subcommand(tmp_path: Path) -> None:
    database = tmp_path / "given.db"
    config = tmp_path / "given.toml"
    config.write_text(f'[bot]\ntoken = "1:A"\n[database]\nurl = "sqlite+aiosqlite:///{database}"\n')

    result = run_cli("db", "upgrade", "--config", str(config), tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "database is up to date" in result.stdout
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM districts").fetchone()[0] > 0


def test_run_reads_the_config_given_after_the_subcommand(tmp_path: Path) -> None:
    config = tmp_path / "given.toml"
    config.write_text('[bot]\ntoken = "not-a-token"\n')

    result = run_cli("run", "--config", str(config), tmp_path=tmp_path)

    # The file's bad token stops start-up, named with the file: the option was read, not refused.
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("config error: bot.token:")
    assert "must look like 123456:ABC-DEF" in lines[0]
    assert str(config) in lines[0]
