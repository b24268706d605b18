"""GET /healthz: is the database answering, is the broker answering and delivering."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from routes.common import services
from tables.people import Site

CHECK_TIMEOUT = 2.0


async def _database() -> str:
    await Site.raw("SELECT 1")
    return "ok"


async def _broker(broker) -> str:
    if not await broker.healthy():
        raise ConnectionError("broker does not answer")
    if not broker.listening:
        raise ConnectionError("broker answers, but live delivery is not subscribed yet")
    return "ok"


async def _check(probe) -> str:
    try:
        return await asyncio.wait_for(probe(), CHECK_TIMEOUT)
    except Exception as exc:  # any failure is a finding, not a crash
        return f"failing: {type(exc).__name__}: {exc}"[:200]


async def healthz(request: Request) -> JSONResponse:
    settings = services(request).settings
    broker = services(request).broker
    database = await _check(_database)
    broker_state = await _check(lambda: _broker(broker))
    healthy = database == "ok" and broker_state == "ok"
    body = {
        "status": "ok" if healthy else "failing",
        "database": {"engine": settings.engine, "state": database},
        "broker": {"kind": settings.broker, "state": broker_state},
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


routes = [Route("/healthz", healthz, name="healthz")]
