"""GET /healthz tells an operator (or a load balancer) whether this worker can serve."""

from __future__ import annotations

import os

import httpx

from tests.conftest import ENGINE


async def test_healthy_when_database_and_broker_answer(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"engine": ENGINE, "state": "ok"}
    assert body["broker"] == {
        "kind": "redis" if ENGINE == "postgres" else "memory",
        "state": "ok",
    }


async def test_503_naming_the_broker_when_redis_does_not_answer(monkeypatch):
    from main import create_app

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["database"]["state"] == "ok"
    assert body["broker"]["state"].startswith("failing")
    assert os.environ["REDIS_URL"] == "redis://127.0.0.1:1/0"
