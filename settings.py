"""Settings, read once from the environment (SPEC §2).

`python main.py --port 9000 …` writes its options into the environment before anything reads
it, so worker processes started by uvicorn see the same values.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VAR = ROOT / "var"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = ""
    redis_url: str = ""
    redis_namespace: str = "fb"  # key prefix, so tests and several apps can share one Redis
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    production: bool = False
    draft_ttl_hours: float = 24.0  # drafts untouched this long expire
    allowed_hosts: tuple[str, ...] = field(default=("127.0.0.1", "localhost"))

    @property
    def engine(self) -> str:
        return "postgres" if is_postgres_url(self.database_url) else "sqlite"

    @property
    def broker(self) -> str:
        return "redis" if self.redis_url else "memory"

    def problems(self) -> list[str]:
        """What stops this configuration from running, in words an operator can act on."""
        found = []
        if self.workers < 1:
            found.append("WORKERS must be 1 or more.")
        if self.workers > 1 and not self.redis_url:
            found.append(
                f"WORKERS={self.workers} needs REDIS_URL: without Redis each worker would only "
                "see its own live events. Set REDIS_URL=redis://… or run with WORKERS=1."
            )
        if self.workers > 1 and self.engine == "sqlite":
            found.append(
                f"WORKERS={self.workers} needs PostgreSQL (DATABASE_URL=postgres://…): "
                "SQLite allows one writer process."
            )
        if not 0 < self.port < 65536:
            found.append(f"PORT={self.port} is not a TCP port.")
        return found


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def load() -> Settings:
    env = os.environ
    return Settings(
        database_url=env.get("DATABASE_URL", ""),
        redis_url=env.get("REDIS_URL", ""),
        redis_namespace=env.get("REDIS_NAMESPACE", "fb"),
        # A random key per start is fine for the demo; nothing is signed across restarts yet.
        secret_key=env.get("SECRET_KEY") or secrets.token_urlsafe(32),
        host=env.get("HOST", "127.0.0.1"),
        port=int(env.get("PORT", "8000")),
        workers=int(env.get("WORKERS", "1")),
        production=env.get("PRODUCTION", "") in ("1", "true", "yes"),
        draft_ttl_hours=float(env.get("DRAFT_TTL_HOURS", "24")),
        allowed_hosts=tuple(
            h.strip() for h in env.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
        ),
    )
