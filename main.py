"""floorboard: wiring only — settings, lifespan, middleware, mounts, and `python main.py`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from piccolo.engine import engine_finder
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import settings as settings_module
from live.backends import backends
from live.hub import LiveHub
from live.stream import StreamsOutside, tune_gc
from routes import (
    api,
    appointments,
    assets,
    auth,
    boards,
    dispatches,
    drafts,
    errors,
    health,
    items,
    me,
    metrics,
    people,
    reports,
    sites,
    stocktakes,
)
from routes.access import OperatorOnlyMiddleware, OrgManagerMiddleware, SiteMembershipMiddleware
from routes.common import Services, path_builder, templates
from routes.editing import release_lapsed
from routes.live import render_presence
from routes.security import (
    CSP_REPORT_PATH,
    CspReportStore,
    HostCheckMiddleware,
    LoginThrottle,
    MemoryCspReports,
    MemoryThrottleStore,
    ReadableCSRFMiddleware,
    RedisCspReports,
    RedisThrottleStore,
    SecurityHeadersMiddleware,
    ThrottleStore,
)
from routes.security import routes as security_routes
from settings import ROOT, Settings

MIGRATION_LOCK = 7_301_001  # any app-wide bigint: serialises migrations across processes


class Floorboard(StreamsOutside, Starlette):
    """Starlette, with live streams served outside its middleware once they are open
    (live.stream.StreamsOutside: around the whole stack, Starlette's error handler too)."""


def admin_app(settings: Settings):
    """Piccolo's admin over our tables, behind the operators-only guard."""
    from piccolo_admin.endpoints import create_admin

    from tables.activity import Activity
    from tables.people import Membership, Organisation, Site

    admin = create_admin(
        tables=[Organisation, Site, Membership, Activity],
        allowed_hosts=list(settings.allowed_hosts),
        production=settings.production,
        site_name="floorboard admin",
    )
    return OperatorOnlyMiddleware(admin)


async def keep_session(connection: Any) -> None:
    """The connection pool's reset between borrowers: nothing more to undo.

    asyncpg itself rolls back a transaction left open and drops listeners before calling
    this. Its default reset then runs `SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL` — a round trip after every query outside a transaction (each
    session lookup, each page's reads) for state this app never creates on a pooled
    connection: no SET, no LISTEN, no cursor outside a transaction, no session-level
    advisory lock (the migration lock has a connection of its own, `migrate`). Anything
    that starts creating such state must undo it itself, or bring the default back.
    """


HOUSEKEEPING_EVERY = 60.0  # seconds: drafts expire by the hour
LOCK_WATCH_EVERY = 2.0  # seconds: a lapsed lock's badge clears this soon after it lapses


async def every(seconds: float, chore, svc: Services) -> None:
    """Run a periodic chore; each is safe to run from several workers at once."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await chore(svc)
        except Exception:  # a database or Redis blip must not end the loop
            logging.getLogger("floorboard").exception("%s failed", chore.__name__)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or settings_module.load()
    ns = settings.redis_namespace
    live = backends(settings.redis_url or None, namespace=ns)
    hub = LiveHub(live.broker, live.presence, render_presence)
    throttle_store: ThrottleStore = (
        RedisThrottleStore(live.redis, ns) if live.redis is not None else MemoryThrottleStore()
    )
    svc = Services(settings, hub, live.locks, LoginThrottle(throttle_store))
    csp_reports: CspReportStore = (
        RedisCspReports(live.redis, ns) if live.redis is not None else MemoryCspReports()
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db: Any = engine_finder()
        if db.engine_type == "postgres":
            await db.start_connection_pool(min_size=2, max_size=20, reset=keep_session)
        await hub.start()
        tune_gc()  # this process may hold thousands of streams
        chores = [
            asyncio.create_task(every(HOUSEKEEPING_EVERY, drafts.expire_drafts, svc)),
            asyncio.create_task(every(LOCK_WATCH_EVERY, release_lapsed, svc)),
        ]
        try:
            yield
        finally:
            for chore in chores:
                chore.cancel()
            await hub.stop()
            await live.aclose()
            if db.engine_type == "postgres":
                await db.close_connection_pool()

    api_app = api.api_app()
    api_app.add_middleware(metrics.RequestLatencyMiddleware)  # names the API's route (below)
    site_mount = Mount(
        "/s/{site}",
        routes=[
            *sites.site_routes,
            *drafts.routes,
            *boards.routes,
            *appointments.routes,
            *stocktakes.routes,
            *items.routes,
            *assets.routes,
            *reports.routes,  # before /dispatches/{dispatch}
            *dispatches.routes,
        ],
        middleware=[Middleware(SiteMembershipMiddleware)],
    )
    app = Floorboard(
        routes=[
            *health.routes,
            *metrics.routes,  # GET /metrics: operators only (and METRICS_TOKEN scrapers)
            *security_routes,  # POST /csp-report (no CSRF), GET for operators
            *auth.routes,
            *sites.routes,
            *me.routes,
            site_mount,
            Mount(  # an organisation's people and sites: its managers only
                "/o/{org}", routes=people.routes, middleware=[Middleware(OrgManagerMiddleware)]
            ),
            Mount("/static", StaticFiles(directory=ROOT / "static"), name="static"),
            Mount("/admin", admin_app(settings), name="admin"),
            Mount(api.PREFIX, api_app, name="api"),  # reached through api.ApiFirst
        ],
        middleware=[
            Middleware(metrics.RequestLatencyMiddleware),  # by route name: outermost
            Middleware(errors.UnavailableAnswered),  # PostgreSQL/Redis down: a 503, no traceback
            # X-Forwarded-For/-Proto believed from TRUSTED_PROXIES only (none by default:
            # the peer is the client); uvicorn.run() below trusts no one itself.
            *(
                [Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))]
                if settings.trusted_proxies
                else []
            ),
            Middleware(SecurityHeadersMiddleware, production=settings.production),
            # Only ALLOWED_HOSTS are answered (400 otherwise), before anything reads the request.
            Middleware(
                HostCheckMiddleware, allowed_hosts=settings.allowed_hosts, exempt_paths=["/healthz"]
            ),
            Middleware(api.ApiFirst, api=api_app),  # bearer tokens only: no cookies, no CSRF
            Middleware(
                ReadableCSRFMiddleware,  # type: ignore[arg-type]  # BaseHTTPMiddleware typing
                secret_key=settings.secret_key,  # tokens bound to the session, signed
                on_refused=errors.csrf_refused,
                allowed_hosts=list(settings.allowed_hosts),
                allow_form_param=True,
                exempt_paths=[CSP_REPORT_PATH],  # browsers send reports without a token
                secure_cookie=settings.production,
            ),
            Middleware(
                AuthenticationMiddleware,
                backend=auth.SessionsBackend(
                    admin_only=False,
                    allow_unauthenticated=True,
                    increase_expiry=timedelta(minutes=30),
                ),
            ),
        ],
        exception_handlers=errors.exception_handlers,
        lifespan=lifespan,
    )
    templates.env.globals["path_for"] = path_builder(app)  # paths, right for every viewer
    app.state.services = svc  # reached through routes.common.services(request)
    app.state.csp_reports = csp_reports  # reached through routes.security.csp_report_store
    return app


async def migrate(db) -> None:
    """Apply migrations once, even when several servers start at the same moment."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    if db.engine_type == "postgres":
        import asyncpg

        conn = await asyncpg.connect(dsn=db.config["dsn"])
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            result = await run_forwards("all")
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
            await conn.close()
    else:
        await db.run_ddl("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        result = await run_forwards("all")
    if not result.success:
        raise SystemExit(f"Migrations failed: {result.message}")


async def prepare() -> bool:
    """Migrate, and load the demo data into an empty database. True if it was loaded."""
    import demo

    db = engine_finder()
    with contextlib.redirect_stdout(sys.stderr):
        await migrate(db)
    if await demo.is_loaded():
        return False
    await demo.load()
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description="Serve floorboard.")
    parser.add_argument("--database-url", default=env.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=env.get("REDIS_URL", ""))
    parser.add_argument("--secret-key", default=env.get("SECRET_KEY", ""))
    parser.add_argument("--host", default=env.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(env.get("WORKERS", "1")))
    parser.add_argument("--no-migrate", action="store_true", help="skip migrations and demo data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for key in ("database_url", "redis_url", "secret_key", "host", "port", "workers"):
        value = getattr(args, key)
        if value not in ("", None):
            os.environ[key.upper()] = str(value)
    settings = settings_module.load()
    if problems := settings.problems():
        sys.exit("floorboard cannot start:\n  " + "\n  ".join(problems))
    os.environ["SECRET_KEY"] = settings.secret_key  # every worker signs with the same key
    api_token = ""
    if not args.no_migrate:
        loaded = asyncio.run(prepare())
        if loaded:
            print("Loaded the demo data.", file=sys.stderr)
        import demo_tokens

        api_token = asyncio.run(demo_tokens.admin_token_line())
    import uvicorn

    url = f"http://{settings.host}:{settings.port}"
    print(
        f"\nfloorboard on {url}  ({settings.engine}, {settings.broker} broker, "
        f"{settings.workers} worker{'s' if settings.workers > 1 else ''})\n"
        "Sign in as alice, bob, charlie, dana, erin, frank, admin or oscar; "
        "ops for /admin. Password: demo\n" + api_token,
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        "main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_graceful_shutdown=5,
        # Forwarded headers are the app's business (TRUSTED_PROXIES, in create_app): uvicorn
        # would otherwise believe them from FORWARDED_ALLOW_IPS, 127.0.0.1 by default.
        proxy_headers=False,
        log_level="info",
    )


if __name__ == "__main__":
    main()
