"""Shared by the benchmarks: a throwaway PostgreSQL database + Redis namespace + a floorboard
server, signed-in clients, and /proc readings of the server's processes.

Everything here is bounded and cleans up after itself: `Stack` drops its database and
deletes its Redis keys on exit, whatever happened (Ctrl-C and SIGTERM included).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import redis  # noqa: E402

from tests.servers import Server, post_form, server_env, signed_in_client  # noqa: E402

PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SITE = "nairobi"
CLK_TCK = os.sysconf("SC_CLK_TCK")
_STREAM_URL = re.compile(r'hx-sse:connect="([^"]+)"')

__all__ = [
    "PG_ADMIN_DSN",
    "REDIS_URL",
    "SITE",
    "Stack",
    "code_version",
    "cpu_seconds",
    "machine_description",
    "percentile",
    "post_form",
    "rss_kib",
    "signed_in_client",
    "stream_path_of",
]


class Interrupted(BaseException):
    """SIGTERM / SIGALRM turned into an exception, so `finally:` blocks clean up."""


def _raise(signum, frame):  # pragma: no cover - signal handler
    raise Interrupted(signal.Signals(signum).name)


def install_signal_handlers(budget_seconds: float | None) -> None:
    """SIGTERM and an overall time budget (SIGALRM) end the run through the normal cleanup."""
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGALRM, _raise)
    if budget_seconds:
        signal.alarm(int(budget_seconds))


# -- /proc readings -----------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """The CPU time of a process's live threads, in seconds (0 if it is gone).

    Read from each thread's schedstat (the scheduler's own runtime, in nanoseconds) where
    the kernel has it: utime + stime in /proc/<pid>/stat come in clock ticks of 10 ms, and
    at 1,000 viewers a posting phase costs a server process ~0.2 s, so a tick either way
    is ±5 % of the figure. A thread that ended is no longer counted, so use differences
    over a phase in which the server starts no threads. Falls back to utime + stime.
    """
    total, found = 0, False
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[0])
                found = True
    except OSError:
        return 0.0
    if found:
        return total / 1e9
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def established_to(port: int) -> set[str]:
    """Socket inodes of ESTABLISHED TCP connections whose local port is `port`."""
    inodes = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    return inodes


def connections_held(pid: int, inodes: set[str]) -> int:
    """How many of those sockets process `pid` holds."""
    n = 0
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(fd.path)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    n += 1
    return n


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (nan if empty)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def machine_description() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    py = ".".join(map(str, sys.version_info[:3]))
    try:
        import uvicorn

        uv = uvicorn.__version__
    except ImportError:  # pragma: no cover
        uv = "?"
    impl = []
    for mod in ("uvloop", "httptools"):
        try:
            __import__(mod)
            impl.append(f"{mod} installed")
        except ImportError:
            impl.append(f"no {mod}")
    return (
        f"{os.cpu_count()} vCPU ({model}), {mem_gib:.0f} GiB RAM, Linux {os.uname().release}, "
        f"Python {py}, uvicorn {uv} ({', '.join(impl)})"
    )


def code_version() -> str:
    """The commit under test, and whether the tree differs from it (read-only git calls)."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
        changed = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (f" + local changes to {', '.join(changed)}" if changed else "")


def stream_path_of(page_html: str) -> str:
    """The stream URL a page embeds, without its `conn` (a bench viewer is not in presence)."""
    match = _STREAM_URL.search(page_html)
    if match is None:
        raise RuntimeError("the site home embeds no hx-sse:connect URL")
    url = httpx.URL(unescape(match.group(1)))
    return url.copy_with(params={"cursor": url.params["cursor"]}).raw_path.decode()


# -- the stack under test -----------------------------------------------------------------------


@dataclass
class Stack:
    """A fresh database + Redis namespace + `python main.py --workers N`, torn down on exit."""

    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    ready_timeout: float = 120.0
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    server: Server | None = None
    keep_log: bool = False  # set when a run went wrong: the server's log is kept for a look

    @property
    def db_name(self) -> str:
        return f"fbbench_{self.tag}"

    @property
    def namespace(self) -> str:
        return f"fbbench-{self.tag}"

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def __enter__(self) -> Stack:
        try:
            asyncio.run(self._pg(f'CREATE DATABASE "{self.db_name}"'))
            database_url = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + self.db_name
            env = server_env(database_url, REDIS_URL, self.namespace, **self.extra_env)
            self.server = Server(env, args=["--workers", str(self.workers)], name="bench")
            self.server.start().wait_ready(self.ready_timeout)
            self._wait_workers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server, drop the database, delete the namespace's Redis keys."""
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop(timeout=15)
            if self.keep_log:
                print(f"  server log kept: {self.server.log_path}", file=sys.stderr)
            else:
                with contextlib.suppress(OSError):
                    self.server.log_path.unlink()
        with contextlib.suppress(Exception):
            asyncio.run(self._pg(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        with contextlib.suppress(Exception):
            client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
            keys = list(client.scan_iter(match=f"{self.namespace}:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            client.close()

    async def _pg(self, sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
        try:
            await conn.execute(sql, timeout=30)
        finally:
            await conn.close()

    def _wait_workers(self, timeout: float = 60.0) -> None:
        """With --workers N, wait until N worker processes answer /healthz.

        Workers share the listening socket, so "answered" means by whichever worker
        accepted; the uvicorn log's "Application startup complete." is counted instead.
        """
        assert self.server is not None
        deadline = time.monotonic() + timeout
        want = self.workers
        while time.monotonic() < deadline:
            started = self.server.log_tail(200_000).count("Application startup complete.")
            if started >= want and len(self.pids()) >= want:
                return
            time.sleep(0.2)
        raise RuntimeError(f"only {len(self.pids())} of {want} workers started")

    def pids(self) -> list[int]:
        """The processes serving requests: the uvicorn workers (the server itself with 1)."""
        assert self.server is not None and self.server.pid is not None
        if self.workers == 1:
            return [self.server.pid]
        workers = []
        for pid in self.server.worker_pids():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"resource_tracker" not in cmdline:
                    workers.append(pid)
        return workers

    def all_pids(self) -> list[int]:
        """Every server process (supervisor included), for CPU accounting."""
        assert self.server is not None and self.server.pid is not None
        pids = [self.server.pid, *self.server.worker_pids()]
        return list(dict.fromkeys(pids))

    def rss_kib(self) -> dict[int, int]:
        return {pid: rss_kib(pid) for pid in self.pids()}

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.all_pids())

    def connections_by_worker(self) -> dict[int, int]:
        inodes = established_to(self.port)
        return {pid: connections_held(pid, inodes) for pid in self.pids()}


class FloorServer(Server):
    """`uvicorn bench.floor:app` (bench/floor.py) as the app's main.py runs uvicorn: the
    same workers, uvloop and httptools."""

    def start(self) -> FloorServer:
        argv = [sys.executable, "-m", "uvicorn", "bench.floor:app", "--port", str(self.port)]
        argv += [
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--no-proxy-headers",
            *self.args,
        ]
        self._spawn(argv, env=self.env)
        return self


@dataclass
class FloorStack(Stack):
    """The floor (bench/floor.py) on its own Redis channel prefix, in place of the app: no
    database. Read by the bench exactly as a `Stack` (RSS, CPU, streams per worker)."""

    def __enter__(self) -> FloorStack:
        try:
            env = {**os.environ, "FLOOR_REDIS_URL": REDIS_URL, "FLOOR_NAMESPACE": self.namespace}
            env.update(self.extra_env)
            self.server = FloorServer(env, args=["--workers", str(self.workers)], name="floor")
            self.server.start().wait_ready(self.ready_timeout)
            self._wait_workers()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop(timeout=15)
            if self.keep_log:
                print(f"  floor log kept: {self.server.log_path}", file=sys.stderr)
            else:
                with contextlib.suppress(OSError):
                    self.server.log_path.unlink()


# -- reporting ------------------------------------------------------------------------------


def server_errors(stack: Stack) -> list[str]:
    """The last line of each traceback in the server's log (a 500 shows up here)."""
    assert stack.server is not None
    lines = stack.server.log_tail(2_000_000).splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "Traceback")) or not lines[j]):
                j += 1
            if j < len(lines):
                found.append(lines[j][:200])
    return found


def ms(value: float) -> str:
    """A duration in milliseconds as the reports print it ("—" for none)."""
    return "—" if value != value else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"
