"""Test set-up: a fresh database per run, on the engine FB_TEST_DB names.

    FB_TEST_DB=sqlite   (default) SQLite file in a temp dir + the in-process broker
    FB_TEST_DB=postgres a throwaway PostgreSQL database + Redis (REDIS_URL)

`make test` runs the suite once each way. A service that is not answering fails the run:
nothing here skips.

The environment is set at import time, before anything imports piccolo_conf or the tables
(a Table caches its engine on first use).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from unittest.mock import patch
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from bs4 import BeautifulSoup
from piccolo.engine import engine_finder

from live.broker import Broker
from live.memory_broker import MemoryBroker
from live.redis_broker import RedisBroker

ENGINE = os.environ.get("FB_TEST_DB", "sqlite")
if ENGINE not in ("sqlite", "postgres"):
    raise RuntimeError(f"FB_TEST_DB must be sqlite or postgres, not {ENGINE!r}")

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]

if ENGINE == "postgres":
    TEST_DB = f"fbtest_{RUN_ID}"
    os.environ["DATABASE_URL"] = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + TEST_DB
    os.environ["REDIS_URL"] = TEST_REDIS_URL
else:
    TEST_DB = ""
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ["SQLITE_PATH"] = str(Path(tempfile.mkdtemp(prefix="fbtest-")) / "test.sqlite")
os.environ["REDIS_NAMESPACE"] = f"fbtest-{RUN_ID}"
os.environ.pop("WORKERS", None)
# The hosts test clients send: httpx's base_url here, Starlette's TestClient (schemathesis).
os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
os.environ.pop("TRUSTED_PROXIES", None)


def pytest_report_header(config) -> list[str]:
    where = os.environ["DATABASE_URL"] if ENGINE == "postgres" else os.environ["SQLITE_PATH"]
    broker = f"redis ({TEST_REDIS_URL})" if ENGINE == "postgres" else "in-process memory"
    return [f"floorboard: database engine {ENGINE} at {where}; broker {broker}"]


# Figures a test measured (the Must-show numbers of the deploy, fault and sweep tests), printed
# together at the end of the run so that they are in CI's log without `-s`.
_FIGURES: list[tuple[str, str]] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """`figures("…")` records a line for the run's "figures" summary (and prints it too)."""

    def record(text: str) -> None:
        _FIGURES.append((request.node.nodeid, text.strip()))
        print(f"\n[{text.strip()}]")

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section(f"figures ({ENGINE})")
    for nodeid, text in _FIGURES:
        terminalreporter.write_line(f"{nodeid}:")
        terminalreporter.write_line(f"    {text}")


def fail_instead(tests: dict[str, Any], why: str) -> None:
    """Make every `test_*` of a module (pass its `globals()`) FAIL saying `why`: for the
    modules that need services a run does not have (PostgreSQL, nginx). A fresh function
    without fixtures, so the test fails rather than erroring at set-up, and never skips."""

    def failing(name: str) -> Callable[[], Awaitable[None]]:
        async def test() -> None:
            pytest.fail(why, pytrace=False)

        test.__name__ = test.__qualname__ = name
        return test

    for name in [n for n in tests if n.startswith("test_")]:
        tests[name] = failing(name)


async def delete_namespace(client: aioredis.Redis, namespace: str) -> None:
    """Remove every Redis key a test (or a run) made under its namespace."""
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
    if keys:
        await client.delete(*keys)


@pytest.fixture(scope="session", autouse=True)
async def database() -> AsyncIterator[None]:
    """Create the database, run the real migrations, load the demo data; drop it after."""
    if ENGINE == "postgres":
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'CREATE DATABASE "{TEST_DB}"')
        await conn.close()
    from piccolo.engine import engine_finder

    import demo
    from main import migrate

    await migrate(engine_finder())
    await demo.load()
    yield
    if ENGINE == "postgres":
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_DSN)
        await conn.execute(f'DROP DATABASE "{TEST_DB}" WITH (FORCE)')
        await conn.close()
        client = aioredis.from_url(TEST_REDIS_URL)
        await delete_namespace(client, f"fbtest-{RUN_ID}")
        await client.aclose()


@pytest.fixture(scope="session")
async def app(database):
    """The real app with its lifespan running (broker started, PostgreSQL pool open)."""
    from main import create_app

    application = create_app()
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def town() -> str:
    """A destination of the test's own, so tests never share a draft."""
    return f"Town{uuid.uuid4().hex[:6]}".title()


@pytest.fixture(autouse=True)
async def fresh_throttle(request):
    """Failed sign-ins in one test must not throttle the next."""
    if "app" in request.fixturenames:
        application = request.getfixturevalue("app")
        await application.state.services.login_throttle.store.clear_all()
    yield


class Client:
    """An httpx client that behaves like a browser tab: cookies, CSRF field, no redirects."""

    def __init__(self, http) -> None:
        self.http = http

    @property
    def csrftoken(self) -> str:
        return self.http.cookies.get("csrftoken", "")

    async def get(self, url: str, **kwargs):
        return await self.http.get(url, **kwargs)

    async def post(self, url: str, data: dict | None = None, *, csrf: bool = True, **kwargs):
        if not self.csrftoken:
            await self.http.get("/login")  # any safe request sets the CSRF cookie
        form = dict(data or {})
        if csrf:
            form.setdefault("csrftoken", self.csrftoken)
        return await self.http.post(url, data=form, **kwargs)

    async def sign_in(self, username: str, password: str = "demo"):
        response = await self.post("/login", {"username": username, "password": password})
        assert response.status_code == 303, f"sign-in as {username}: {response.status_code}"
        return response


@pytest.fixture
async def client(app) -> AsyncIterator[Client]:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        yield Client(http)


@pytest.fixture
async def as_user(app):
    """`await as_user("alice")` -> a signed-in Client; several can be open at once."""
    import httpx

    opened: list[httpx.AsyncClient] = []

    async def open_as(username: str) -> Client:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        )
        opened.append(http)
        c = Client(http)
        await c.sign_in(username)
        return c

    yield open_as
    for http in opened:
        await http.aclose()


async def events_of(app, topic: str, act, wanted: int = 1) -> list:
    """The durable events `act()` publishes on a topic (at least `wanted` of them): the
    subscription is made first, so nothing `act` publishes is missed."""
    feed = app.state.services.broker.subscribe([topic])
    try:
        await asyncio.sleep(0.05)
        await act()
        seen: list = []
        async with asyncio.timeout(5):
            while len(seen) < wanted:
                event = await anext(feed)
                if not event.ephemeral:
                    seen.append(event)
        return seen
    finally:
        feed.close()


_COUNTED: ContextVar[list[str] | None] = ContextVar("counted_queries", default=None)


@contextlib.contextmanager
def count_queries() -> Iterator[list[str]]:
    """Every query the engine runs inside the block for this task and the tasks it starts —
    not a background chore of some app that happens to run meanwhile (that made a fixed
    query count read one more, once in a while)."""
    db = engine_finder()
    original = type(db).run_querystring
    seen: list[str] = []

    async def counting(self, querystring, in_pool=True):
        if (bucket := _COUNTED.get()) is not None:
            bucket.append(str(querystring))
        return await original(self, querystring, in_pool)

    token = _COUNTED.set(seen)
    try:
        with patch.object(type(db), "run_querystring", counting):
            yield seen
    finally:
        _COUNTED.reset(token)


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def texts(response, selector: str) -> list[str]:
    """The visible text of every element matching a CSS selector: what a user reads."""
    return [" ".join(el.get_text(" ").split()) for el in soup(response).select(selector)]


# -- brokers: one test body for the in-process and the Redis backend -----------------------

MakeBroker = Callable[..., Awaitable[Broker]]
BROKER_REDIS_URL = os.environ.get("REDIS_URL") or TEST_REDIS_URL


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def namespace() -> str:
    return f"fbtest-{uuid4().hex[:8]}"


@pytest.fixture
async def admin() -> AsyncIterator[aioredis.Redis]:
    """A separate Redis client, playing another process or the operator."""
    client = aioredis.from_url(BROKER_REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def make(backend: str, namespace: str) -> AsyncIterator[MakeBroker]:
    """Start brokers of the backend under test; every broker shares the test's namespace,
    so two of them behave like two processes of one deployment."""
    brokers: list[Broker] = []

    async def factory(**options: Any) -> Broker:
        broker: Broker
        if backend == "memory":
            broker = MemoryBroker(**options)
        else:
            broker = RedisBroker(BROKER_REDIS_URL, namespace=namespace, **options)
        await broker.start()
        brokers.append(broker)
        return broker

    yield factory
    for broker in brokers:
        await broker.stop()
    if backend == "redis" and brokers:
        client = aioredis.from_url(BROKER_REDIS_URL, decode_responses=True)
        await delete_namespace(client, namespace)
        await client.aclose()
