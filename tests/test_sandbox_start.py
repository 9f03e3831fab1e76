"""`make run` with no token on a fresh machine: the sandbox's page answers within 10 seconds.

The bot is started as a subprocess, as `make run` starts it (`tsur-bot run` in a folder whose config.toml is the
example's, token empty), with nothing of a previous run: no sandbox folder, no database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TSUR_BOT = Path(sys.executable).parent / "tsur-bot"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, response.read().decode()


def test_make_run_without_a_token_opens_the_sandbox_page_within_ten_seconds(tmp_path: Path) -> None:
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.toml")  # what `make run` creates the first time
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUR_")}
    env["TSUR_SANDBOX__PORT"] = str(port)
    env["TSUR_LOGGING__LEVEL"] = "WARNING"
    started = time.monotonic()
    process = subprocess.Popen(
        [str(TSUR_BOT), "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}/"
    page = None
    try:
        while time.monotonic() - started < 10 and process.poll() is None:
            try:
                status, body = fetch(url)
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                page = body
                break
        elapsed = time.monotonic() - started
        assert page is not None, f"no page at {url} within 10 s (exit code {process.poll()})"
        assert elapsed < 10
        assert 'id="banner"' in page
        # The bot behind it answers too: the page's data marks the sandbox and names the demo people.
        status, body = fetch(f"{url}api/bootstrap?lang=ru")
        bootstrap = json.loads(body)
        assert status == 200 and "ПЕСОЧНИЦА" in bootstrap["strings"]["banner"]
        assert "Зарема Координаторова" in {persona["name"] for persona in bootstrap["personas"]}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
    assert process.returncode == 0, err
    # One line says where the page is and how to run the real bot; the database is the sandbox's own.
    assert f"open {url}" in out and "loopback only" in out and "TSUR_BOT__TOKEN" in out
    assert (tmp_path / "sandbox" / "sandbox.db").exists()
    assert not (tmp_path / "tsur.db").exists()
