"""Configuration: environment and `python main.py` options, and what is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import settings
from main import parse_args

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_the_embedded_single_process_setup(monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "HOST", "PORT", "WORKERS"):
        monkeypatch.delenv(name, raising=False)
    s = settings.load()
    assert (s.engine, s.broker, s.host, s.port, s.workers) == (
        "sqlite",
        "memory",
        "127.0.0.1",
        8000,
        1,
    )
    assert s.problems() == []


def test_postgres_and_redis_urls_switch_engine_and_broker(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/fb")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("WORKERS", "4")
    s = settings.load()
    assert (s.engine, s.broker, s.workers) == ("postgres", "redis", 4)
    assert s.problems() == []


def test_options_mirror_the_environment():
    args = parse_args(["--port", "9001", "--workers", "2", "--redis-url", "redis://x"])
    assert (args.port, args.workers, args.redis_url) == (9001, 2, "redis://x")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "2"], "WORKERS=2 needs REDIS_URL"),
        (["--workers", "2", "--redis-url", "redis://127.0.0.1:6379/0"], "needs PostgreSQL"),
        (["--port", "70000"], "is not a TCP port"),
    ],
)
def test_unsafe_configurations_are_refused_with_a_clear_message(argv, message, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SQLITE_PATH": str(tmp_path / "x.sqlite")}
    result = subprocess.run(
        [sys.executable, "main.py", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "x.sqlite").exists()  # refused before touching anything
