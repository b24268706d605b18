"""Settings, read once from the environment (SPEC §2).

`python main.py --port 9000 …` writes its options into the environment before anything reads
it, so worker processes started by uvicorn see the same values.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VAR = ROOT / "var"
LOCAL_SECRET_KEY = VAR / "secret_key"
DEFAULT_ALLOWED_HOSTS = ("127.0.0.1", "localhost")


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
    # Host names this site answers to (the Host header); anything else is a 400. "*" = any.
    allowed_hosts: tuple[str, ...] = field(default=DEFAULT_ALLOWED_HOSTS)
    # Addresses (or networks, "10.0.0.0/8") of the proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed. None by default: the peer address is the client.
    trusted_proxies: tuple[str, ...] = ()

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
        if not self.allowed_hosts:
            found.append("ALLOWED_HOSTS is empty: name the host names this site answers to.")
        for pattern in self.allowed_hosts:
            if "*" in pattern[1:] or (pattern.startswith("*") and not pattern.startswith("*.")):
                found.append(
                    f"ALLOWED_HOSTS: {pattern!r} is not a host name; a wildcard must look "
                    "like '*.example.com' (or be '*' alone)."
                )
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                found.append(
                    f"TRUSTED_PROXIES: {proxy!r} is not an IP address or network "
                    "(like 10.0.0.5 or 10.0.0.0/24)."
                )
        return found


def default_allowed_hosts(env) -> tuple[str, ...]:
    """Loopback names, and the address the server listens on when that is one address."""
    host = env.get("HOST", "").strip()
    if host and host not in ("0.0.0.0", "::", *DEFAULT_ALLOWED_HOSTS):
        return (*DEFAULT_ALLOWED_HOSTS, host)
    return DEFAULT_ALLOWED_HOSTS


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def words(value: str) -> tuple[str, ...]:
    """A comma-separated setting: "a, b,,c" -> ("a", "b", "c")."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def local_secret_key(path: Path = LOCAL_SECRET_KEY) -> str:
    """The key kept in `var/secret_key` when SECRET_KEY is not set, made on first use.

    Every process started from this checkout (uvicorn's workers, a restart, the multi-process
    tests) then signs and checks CSRF tokens alike with no configuration. Several machines
    must be given the same SECRET_KEY instead. If var/ cannot be written, the key is made
    for this process only (`main.py` hands it on to its workers).
    """
    try:
        if key := path.read_text().strip():
            return key
    except OSError:
        pass
    key = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
        try:
            os.write(fd, key.encode() + b"\n")
            os.close(fd)
            os.link(tmp, path)  # atomic, and fails if another process got there first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return path.read_text().strip() or key
    except OSError:
        return key


def load() -> Settings:
    env = os.environ
    return Settings(
        database_url=env.get("DATABASE_URL", ""),
        redis_url=env.get("REDIS_URL", ""),
        redis_namespace=env.get("REDIS_NAMESPACE", "fb"),
        # Signs the CSRF tokens (routes/security.py). Set it, the same everywhere, when the
        # site runs on several machines; one machine keeps its own in var/secret_key.
        secret_key=env.get("SECRET_KEY") or local_secret_key(),
        host=env.get("HOST", "127.0.0.1"),
        port=int(env.get("PORT", "8000")),
        workers=int(env.get("WORKERS", "1")),
        production=env.get("PRODUCTION", "") in ("1", "true", "yes"),
        draft_ttl_hours=float(env.get("DRAFT_TTL_HOURS", "24")),
        allowed_hosts=words(env.get("ALLOWED_HOSTS", "")) or default_allowed_hosts(env),
        trusted_proxies=words(env.get("TRUSTED_PROXIES", "")),
    )
