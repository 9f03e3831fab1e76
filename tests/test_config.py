from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_is_valid_once_a_token_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUR_BOT__TOKEN", "42:SECRET")
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.bot.token == "42:SECRET"
    assert settings.deadlines.appeal_days == 30
    assert settings.region.timezone == "Europe/Moscow"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[bot]\ntoken = "1:FILE"\n[limits]\nattachments_max = 5\n')
    monkeypatch.setenv("TSUR_LIMITS__ATTACHMENTS_MAX", "7")
    settings = load_settings(path)
    assert settings.bot.token == "1:FILE"
    assert settings.limits.attachments_max == 7


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("", "bot.token: missing"),
        ('[bot]\ntoken = "nonsense"\n', "bot.token"),
        ('[bot]\ntoken = "1:A"\n[region]\ntimezone = "Mars/Olympus"\n', "region.timezone"),
        ('[bot]\ntoken = "1:A"\n[limits]\nattachments_max = 11\n', "limits.attachments_max"),
        ('[bot]\ntoken = "1:A"\n[bogus]\nx = 1\n', "bogus"),
        ('[bot]\ntoken = "1:A"\n[fsm]\nstorage = "memcached"\n', "fsm.storage"),
        ('[bot]\ntoken = "1:A"\n[fsm]\nstorage = "redis"\nredis_url = "localhost:6379"\n', "fsm.redis_url"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, key: str) -> None:
    monkeypatch.delenv("TSUR_BOT__TOKEN", raising=False)
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert key in message
    assert "\n" not in message


def test_cli_stops_with_one_line_naming_a_malformed_token(tmp_path: Path) -> None:
    """A token that is there but wrong stops the bot, naming the key (with none at all, `run` opens the sandbox:
    tests/test_sandbox_start.py)."""
    (tmp_path / "bad.toml").write_text('[bot]\ntoken = "nonsense"\n')
    env = {"PATH": "/usr/bin:/bin", "TSUR_CONFIG": str(tmp_path / "bad.toml")}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bot.token" in lines[0]


@pytest.mark.parametrize(
    ("content", "missing", "extra"),
    [
        ('[bot]\ntoken = "1:A"\n[fsm]\nstorage = "redis"\n', "redis", '".[redis]"'),
        ('[bot]\ntoken = "1:A"\n[database]\nurl = "postgresql+asyncpg://u@h/db"\n', "asyncpg", '".[postgres]"'),
    ],
)
def test_a_missing_extra_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, missing: str, extra: str
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    monkeypatch.delenv("TSUR_BOT__TOKEN", raising=False)
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert extra in str(error.value)
    assert "\n" not in str(error.value)
