"""Real processes for multi-process tests and the bench: floorboard servers, a private Redis,
signed-in clients and an SSE reader. No pytest fixtures in here, so `bench/` can use it too.

- `Server(env, port=None, args=())`: `python main.py --port N …` in a subprocess (cwd = the
  repo root), output to a temp log file. `start()`, `wait_ready(timeout)` (GET /healthz until
  200; on failure it kills the process and raises `ServerError` with the log's tail),
  `stop()` (SIGTERM, 10 s, then SIGKILL; returns the seconds it took), `restart()`,
  `cleanup()` (stop, delete the log unless FB_KEEP_LOGS is set), `log_tail()`; with
  `--workers N`, `worker_pids()` and `pid_serving(client_port)` tell which worker holds a
  connection (Linux /proc).
- `server_env(database_url, redis_url, namespace, **extra)`: the environment for a server,
  cleaned of whatever the calling process set up for itself (SQLite path, workers, port).
- `RedisServer()`: a private `redis-server --port <free> --save "" --appendonly no`;
  `stop()` and `restart()` lose every key, exactly like a Redis restart in production.
- `PostgresServer()`: a private PostgreSQL 15 cluster (initdb into a temp dir, run as the
  `postgres` OS user when we are root, trust auth, its socket in that dir) on a free port;
  `start()`, `stop()` (pg_ctl's fast shutdown: clients are disconnected, like a real
  `systemctl stop`), `restart(down_for)`, `running`, `log_tail()` and `cleanup()` (stop
  and delete the cluster).
  `url` is its `postgres` database, which the tests' servers migrate and use.
- `NginxServer(upstream_ports)`: Debian's nginx running `deploy/nginx/floorboard.conf`
  (rendered for those ports by `render_nginx_site`) from a private prefix, as the current
  user; `nginx_binary()` says whether it is installed, `established_to(port)` counts the
  connections it holds to an app process.
- `signed_in_client(base_url, username)`: an `httpx.AsyncClient` holding a session cookie;
  `post_form(client, url, data)` adds the CSRF field.
- `SSEReader(client, url, headers=…)`: reads an event stream in a background task (httpx-sse's
  `aconnect_sse`), keeping every message in `.messages`; `await reader.wait_for(predicate,
  timeout)` waits until `predicate(reader.messages)` is truthy and returns its value.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
from httpx_sse import aconnect_sse

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 6000

# Variables a test process sets for its own in-process app; a server gets its own values.
_PRIVATE_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_NAMESPACE",
    "SQLITE_PATH",
    "WORKERS",
    "HOST",
    "PORT",
    "PRODUCTION",
)

T = TypeVar("T")


class ServerError(RuntimeError):
    """A server or Redis process that did not start (the message carries its log's tail)."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def server_env(database_url: str, redis_url: str, namespace: str, **extra: str) -> dict[str, str]:
    """The environment for a floorboard server on PostgreSQL + Redis."""
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_NAMESPACE=namespace,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class _Process:
    """A subprocess whose output goes to a temp log file (a pipe nobody reads would block)."""

    name = "process"

    def __init__(self, port: int | None) -> None:
        self.port = port or free_port()
        fd, path = tempfile.mkstemp(prefix=f"fb-{self.name}-{self.port}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(path)
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._log: IO[bytes] | None = None

    def _spawn(self, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        assert not self.running, f"{self.name} on port {self.port} is already running"
        if port_is_taken(self.port):
            raise ServerError(f"{self.name}: port {self.port} is already in use")
        self._log = open(self.log_path, "ab")  # closed in stop()
        self._log.write(f"\n===== {' '.join(argv)} =====\n".encode())
        self._log.flush()
        self.returncode = None
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self, timeout: float = STOP_TIMEOUT) -> float:
        """SIGTERM, wait up to `timeout` seconds, then SIGKILL. Returns the seconds taken;
        the exit status is in `returncode` (negative: killed by that signal)."""
        started = time.monotonic()
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
            self.returncode = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.stop()

    def cleanup(self) -> None:
        """Stop if needed and delete the log (kept when FB_KEEP_LOGS is set)."""
        self.stop()
        if not os.environ.get("FB_KEEP_LOGS"):
            self.log_path.unlink(missing_ok=True)

    def log_tail(self, chars: int = LOG_TAIL) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            text = self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return text[-chars:]

    def _fail(self, why: str) -> ServerError:
        """Kill the process and describe why, with the end of its output."""
        self.kill()
        return ServerError(f"{why}\n--- {self.log_path} (tail) ---\n{self.log_tail()}")


class Server(_Process):
    """`python main.py --port N [args]` with the given environment."""

    name = "server"

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        name: str = "server",
    ) -> None:
        self.name = name
        super().__init__(port)
        self.env = dict(env)
        self.args = list(args)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        """Start the process (without waiting for it: see `wait_ready`)."""
        self._spawn([sys.executable, "main.py", "--port", str(self.port), *self.args], env=self.env)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Server:
        """Poll GET /healthz until it answers 200; on failure kill it and raise."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if (code := self.proc.poll()) is not None:
                raise self._fail(f"{self.name}: main.py exited with {code} before /healthz")
            try:
                response = httpx.get(self.url + "/healthz", timeout=2.0)
                if response.status_code == 200:
                    return self
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        raise self._fail(
            f"{self.name}: GET {self.url}/healthz not 200 within {timeout:.0f} s (last: {last})"
        )

    def restart(self, timeout: float = READY_TIMEOUT) -> float:
        """Stop gracefully, start again on the same port, wait until ready; returns the
        seconds the stop took."""
        took = self.stop()
        self.start().wait_ready(timeout)
        return took

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the server), for `--workers N`."""
        if self.pid is None:
            return []
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in children.read_text().split()]
        return []

    def pid_serving(self, client_port: int) -> int | None:
        """Which process (the server or one of its workers) holds the accepted socket of the
        connection that a client made from `client_port` (Linux /proc only)."""
        inode = _accepted_inode(self.port, client_port)
        if inode is None:
            return None
        for pid in [*self.worker_pids(), *([self.pid] if self.pid else [])]:
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) == f"socket:[{inode}]":
                            return pid
        return None


def _accepted_inode(server_port: int, client_port: int) -> str | None:
    """The socket inode of the server side of a loopback TCP connection."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return inode
    return None


class RedisServer(_Process):
    """A private, non-persistent redis-server on a free port."""

    name = "redis"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.dir = tempfile.mkdtemp(prefix="fb-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start it and wait until it answers PING."""
        self._spawn(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise self._fail(f"redis-server exited with {self.proc.returncode}")
            if self.ping():
                return self
            time.sleep(0.05)
        raise self._fail(f"redis-server on port {self.port} did not answer within {timeout} s")

    def cleanup(self) -> None:
        super().cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def restart(self, down_for: float = 0.0) -> None:
        """Stop (every key is lost: no persistence) and start again on the same port."""
        self.stop()
        time.sleep(down_for)
        self.start()


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresServer:
    """A private PostgreSQL cluster that a test may stop and start under the app.

    PostgreSQL refuses to run as root, so as root its commands run as the `postgres` OS
    user (`runuser`), and the cluster's directory belongs to that user. Nothing is
    fsynced: the cluster is thrown away after the test.
    """

    def __init__(self, port: int | None = None, bin_dir: Path = PG_BIN) -> None:
        self.port = port or free_port()
        self.bin_dir = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="fb-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres", "postgres")
        self._initialised = False

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        argv = [*self._as, str(self.bin_dir / tool), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if done.returncode != 0:
            raise ServerError(
                f"{tool} {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout[-LOG_TAIL:]}{done.stderr[-LOG_TAIL:]}\n{self.log_tail()}"
            )

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """initdb (the first time), then start and wait until it accepts connections."""
        if not self._initialised:
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
            self._initialised = True
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options,
            "-w", "-t", str(int(timeout)), "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> float:
        """Stop it (`fast`: roll back open transactions and disconnect every client);
        returns the seconds it took. Nothing if it is not running."""
        started = time.monotonic()
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        return time.monotonic() - started

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def cleanup(self) -> None:
        """Stop it whatever state it is in, and delete the cluster (all but its log, when
        FB_KEEP_LOGS is set)."""
        with contextlib.suppress(ServerError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.data, ignore_errors=True)
        if not os.environ.get("FB_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, chars: int = LOG_TAIL) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except (FileNotFoundError, PermissionError):
            return "(no log)"


# --- a real load balancer -------------------------------------------------------------------

NGINX_SITE = ROOT / "deploy" / "nginx" / "floorboard.conf"


def nginx_binary() -> str | None:
    """Debian's nginx (/usr/sbin is not on every user's PATH), or None if not installed."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def _replace(pattern: str, replacement: str, text: str, count: int, what: str) -> str:
    """`re.sub` that insists on matching exactly `count` times: if the site file changes
    shape, rendering it fails loudly instead of testing something else."""
    result, found = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if found != count:
        raise AssertionError(f"{NGINX_SITE.name}: expected {count} {what}, found {found}")
    return result


def render_nginx_site(
    text: str, upstreams: Sequence[int], port: int, server_name: str = "127.0.0.1 localhost"
) -> str:
    """deploy/nginx/floorboard.conf for this machine: the upstream's `server` lines replaced by
    one per app port on 127.0.0.1 (keeping the options of the first), every `listen 80` moved
    to 127.0.0.1:`port`, the IPv6 listens dropped, and `server_name` set. Nothing else."""
    block = re.search(r"^upstream floorboard \{\n(.*?)^\}", text, re.MULTILINE | re.DOTALL)
    assert block, f"{NGINX_SITE.name}: no `upstream floorboard {{ … }}` block"
    lines = re.findall(r"^ *server \S+:\d+(.*);\n", block[1], re.MULTILINE)
    assert lines, f"{NGINX_SITE.name}: the upstream lists no server"
    ours = "".join(f"    server 127.0.0.1:{p}{lines[0]};\n" for p in upstreams)
    first = iter([ours])  # ours where the first line was, the others dropped
    body = re.sub(r"^ *server \S+:\d+.*;\n", lambda _: next(first, ""), block[1], flags=re.M)
    text = text[: block.start(1)] + body + text[block.end(1) :]
    text = _replace(r"^( *)listen \[::\]:80\b.*\n", "", text, 2, "IPv6 listens")
    text = _replace(r"^( *)listen 80\b", rf"\1listen 127.0.0.1:{port}", text, 2, "listens on 80")
    return _replace(
        r"^( *)server_name floorboard\.example\.com;",
        rf"\1server_name {server_name};",
        text,
        1,
        "public server_name",
    )


class NginxServer(_Process):
    """Debian's nginx running deploy/nginx/floorboard.conf in front of `upstreams` (app ports),
    as the current user: everything it writes (pid, logs, temp files) is under a private
    prefix directory, and a generated top-level nginx.conf includes the rendered site the way
    Debian's /etc/nginx/nginx.conf includes sites-enabled/."""

    name = "nginx"

    def __init__(
        self, upstreams: Sequence[int], *, port: int | None = None, binary: str | None = None
    ) -> None:
        super().__init__(port)
        binary = binary or nginx_binary()
        if binary is None:
            raise ServerError("nginx is not installed (apt-get install nginx)")
        self.binary = binary
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="fb-nginx-"))
        self.site_path = self.prefix / "floorboard.conf"
        self.conf_path = self.prefix / "nginx.conf"
        self.error_log = self.prefix / "error.log"
        self.site_path.write_text(render_nginx_site(NGINX_SITE.read_text(), upstreams, self.port))
        self.conf_path.write_text(self._main_conf())

    def _main_conf(self) -> str:
        p = self.prefix
        # As root, nginx's workers would drop to `nobody`, who cannot enter this 0700 prefix.
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = "".join(
            f"    {kind}_temp_path {p}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            "# Generated by tests/servers.py: a private nginx around deploy/nginx/floorboard.conf\n"
            f"daemon off;\n{user}worker_processes 1;\nworker_rlimit_nofile 16384;\n"
            f"pid {p}/nginx.pid;\nerror_log {self.error_log} warn;\n"
            "events {\n    worker_connections 8192;\n}\n"
            "http {\n"
            "    default_type application/octet-stream;\n"
            "    sendfile on;\n    tcp_nopush on;\n    gzip on;  # as Debian's nginx.conf\n"
            f"    access_log {p}/access.log;\n{temp}"
            f"    include {self.site_path};\n"
            "}\n"
        )

    def _argv(self, *extra: str) -> list[str]:
        return [
            self.binary,
            "-p",
            f"{self.prefix}/",
            "-c",
            str(self.conf_path),
            "-e",
            str(self.error_log),
            *extra,
        ]

    def start(self, timeout: float = 10.0) -> NginxServer:
        """Check the configuration (`nginx -t`), start it, wait until it accepts."""
        check = subprocess.run(self._argv("-t"), capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise ServerError(f"nginx -t refused the configuration:\n{check.stderr}")
        self._spawn(self._argv())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise self._fail(f"nginx exited with {self.proc.returncode}:\n{self.errors()}")
            if port_is_taken(self.port):
                return self
            time.sleep(0.05)
        raise self._fail(f"nginx on port {self.port} did not accept within {timeout} s")

    def errors(self) -> str:
        """The end of nginx's error log."""
        try:
            return self.error_log.read_text(errors="replace")[-LOG_TAIL:]
        except FileNotFoundError:
            return "(no error log)"

    def cleanup(self) -> None:
        super().cleanup()
        if not os.environ.get("FB_KEEP_LOGS"):
            shutil.rmtree(self.prefix, ignore_errors=True)


def established_to(port: int) -> int:
    """How many TCP connections to 127.0.0.1:`port` are established (Linux /proc): the open
    streams and keep-alive connections a load balancer holds to that app process."""
    count = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


# --- clients --------------------------------------------------------------------------------


async def signed_in_client(
    base_url: str, username: str, password: str = "demo", **client_args: Any
) -> httpx.AsyncClient:
    """A client signed in as `username` (session cookie `id`, CSRF cookie `csrftoken`).

    The caller closes it (`await client.aclose()`). Cookies are per host, not per port, so
    the same client may talk to every server on 127.0.0.1 with absolute URLs.
    """
    client_args.setdefault("timeout", httpx.Timeout(15.0))
    client = httpx.AsyncClient(base_url=base_url, **client_args)
    try:
        await client.get("/login")
        response = await post_form(client, "/login", {"username": username, "password": password})
        if response.status_code != 303 or "id" not in client.cookies:
            raise AssertionError(
                f"sign-in as {username} at {base_url}: HTTP {response.status_code}, "
                f"cookies {sorted(client.cookies.keys())}"
            )
    except BaseException:
        await client.aclose()
        raise
    return client


async def post_form(
    client: httpx.AsyncClient, url: str, data: Mapping[str, str], **kwargs: Any
) -> httpx.Response:
    """POST a plain form the way a browser does: with the CSRF token as a hidden field."""
    if "csrftoken" not in client.cookies:
        await client.get("/login")
    return await client.post(url, data={"csrftoken": client.cookies["csrftoken"], **data}, **kwargs)


# --- reading event streams ------------------------------------------------------------------


@dataclass(frozen=True)
class SSEMessage:
    """One dispatched SSE message. `id` is None when the message carried no `id:` field
    (unlike EventSource's lastEventId, which carries over from earlier messages)."""

    data: str
    id: str | None = None
    event: str = "message"


_NEWLINE = re.compile(r"\r\n|\r|\n")


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    """The stream's lines, split on CRLF, CR or LF as the SSE format says."""
    pending = ""
    async for chunk in response.aiter_text():
        pending += chunk
        hold_cr = pending.endswith("\r")  # might be the first half of a CRLF
        parts = _NEWLINE.split(pending[:-1] if hold_cr else pending)
        pending = parts.pop() + ("\r" if hold_cr else "")
        for line in parts:
            yield line
    if pending:
        yield pending.rstrip("\r")


class SSEReader:
    """An event stream read in a background task; messages accumulate in `.messages`.

    `open()` returns once the response headers are in (raising if the status is not 200 or
    the body is not an event stream); the reading stops at the end of the stream, on
    `close()`, or after `lifetime` seconds, so a forgotten reader cannot hang a test run.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        lifetime: float = 120.0,
        name: str = "",
    ) -> None:
        self.client = client
        self.url = url
        self.headers = dict(headers or {})
        self.lifetime = lifetime
        self.name = name or url
        self.messages: list[SSEMessage] = []
        self.comments: list[str] = []  # ": ping" heartbeats, without the colon
        self.retry: int | None = None
        self.last_event_id = ""  # what a browser would send as Last-Event-ID
        self.status_code: int | None = None
        self.client_port: int | None = None
        self.error: BaseException | None = None
        self.ended = False
        self._opened = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def open(self, timeout: float = 15.0) -> SSEReader:  # noqa: ASYNC109
        self._task = asyncio.create_task(self._run(), name=f"sse {self.name}")
        try:
            await asyncio.wait_for(self._opened.wait(), timeout)
        except TimeoutError:
            await self.close()
            raise AssertionError(f"{self.name}: no response headers within {timeout} s") from None
        if self.error is not None or self.status_code != 200:
            await self.close()
            raise AssertionError(
                f"{self.name}: could not open the stream: HTTP {self.status_code}, {self.error!r}"
            )
        return self

    async def __aenter__(self) -> SSEReader:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def persistent(self) -> list[SSEMessage]:
        """The messages that carry an id (events and resyncs; not presence or indicators)."""
        return [m for m in self.messages if m.id is not None]

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.messages if m.id is not None]

    async def wait_for(
        self,
        predicate: Callable[[list[SSEMessage]], T],
        timeout: float = 5.0,  # noqa: ASYNC109  (a deadline that fails saying what arrived)
    ) -> T:
        """Wait until `predicate(self.messages)` is truthy and return its value.

        Fails (AssertionError, with what did arrive) after `timeout` seconds, or as soon as
        the stream has ended without the predicate coming true.
        """
        result: T = predicate(self.messages)
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while not result:
                if self.ended:
                    raise AssertionError(f"{self.name}: stream ended; {self.describe()}")
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise AssertionError(f"{self.name}: not within {timeout} s; {self.describe()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)
                result = predicate(self.messages)
        return result

    async def wait_ended(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the server ends the stream (or the connection breaks)."""
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.ended), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: stream still open after {timeout} s; {self.describe()}"
            ) from None

    def describe(self, limit: int = 400) -> str:
        shown = [f"id={m.id!r} data={m.data[:limit]!r}" for m in self.messages[-8:]]
        return (
            f"{len(self.messages)} messages (last ones: {shown}), status {self.status_code}, "
            f"ended={self.ended}, error={self.error!r}"
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        try:
            async with asyncio.timeout(self.lifetime):
                timeout = httpx.Timeout(15.0, read=None)
                async with aconnect_sse(
                    self.client, "GET", self.url, headers=dict(self.headers), timeout=timeout
                ) as source:
                    response = source.response
                    self.status_code = response.status_code
                    stream = response.extensions.get("network_stream")
                    if stream is not None:
                        addr = stream.get_extra_info("client_addr")
                        self.client_port = addr[1] if addr else None
                    kind = response.headers.get("content-type", "").partition(";")[0]
                    if response.status_code != 200 or kind.strip() != "text/event-stream":
                        self.error = AssertionError(f"not an event stream: {kind!r}")
                        return
                    self._opened.set()
                    await self._read(response)
        except TimeoutError:
            pass  # lifetime is over
        except (httpx.HTTPError, OSError) as exc:
            self.error = exc
        finally:
            self.ended = True
            self._opened.set()
            with contextlib.suppress(RuntimeError):  # the loop may be closing
                await asyncio.shield(self._notify())

    async def _read(self, response: httpx.Response) -> None:
        data: list[str] = []
        event_id: str | None = None
        event = ""
        async for line in _lines(response):
            if not line:  # dispatch
                if data:
                    self.messages.append(SSEMessage("\n".join(data), event_id, event or "message"))
                    await self._notify()
                data, event_id, event = [], None, ""
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "id" and "\0" not in value:
                event_id = self.last_event_id = value
            elif name == "event":
                event = value
            elif name == "retry" and value.isdigit():
                self.retry = int(value)


class Tabs:
    """Open streams of one test (each an `SSEReader`), closed at its end."""

    def __init__(self) -> None:
        self.readers: list[SSEReader] = []

    async def open_path(
        self,
        client: httpx.AsyncClient,
        server: Server,
        path: str,
        *,
        last_event_id: str | None = None,
        name: str = "",
        timeout: float = 15.0,  # noqa: ASYNC109
    ) -> SSEReader:
        headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        reader = SSEReader(client, server.url + path, headers=headers, name=name or path)
        self.readers.append(reader)
        return await reader.open(timeout=timeout)

    async def close_all(self) -> None:
        for reader in self.readers:
            await reader.close()


@contextlib.asynccontextmanager
async def scratch_database(admin_dsn: str, name: str) -> AsyncIterator[str]:
    """A PostgreSQL database of its own for a module's servers (its URL), dropped after."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield admin_dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()
