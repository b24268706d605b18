"""GET /metrics (issue 12, item 6): Prometheus' text format, for platform operators only.

Anonymous visitors and tenants' users (a manager included) get the same 404 as any unknown
page; the operator (`ops`, a superuser) gets the figures. A viewer watching a board while
a ticket is created there moves the published and delivered counters and the lag
histogram, and is counted among the open streams while it watches; each request is timed
under its route's name.
"""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Client
from tests.test_boards import new_board, new_ticket
from tests.test_boards_concurrency import watch

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (name, sorted labels); the parser rejects
    anything that is not Prometheus' text format."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(ops: Client) -> Samples:
    response = await ops.get("/metrics")
    assert response.status_code == 200, response.text[:300]
    return parse(response.text)


@pytest.fixture
async def ops(as_user) -> Client:
    return await as_user("ops")


async def test_anonymous_visitors_and_tenants_users_get_404(client, as_user, ops):
    unknown = await client.get("/no-such-page")
    anonymous = await client.get("/metrics")
    assert anonymous.status_code == 404
    assert anonymous.text == unknown.text
    assert "floorboard_" not in anonymous.text
    for username in ("admin", "alice", "oscar"):  # a manager, a dispatcher, another org's
        user = await as_user(username)
        refused = await user.get("/metrics")
        assert refused.status_code == 404, username
        assert "floorboard_" not in refused.text
    assert (await ops.get("/metrics")).status_code == 200


async def test_the_operator_gets_prometheus_text_format(ops):
    response = await ops.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert response.headers["cache-control"] == "no-store"
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    assert families["floorboard_live_open_streams"] == "gauge"
    assert families["floorboard_live_events_published"] == "counter"
    assert families["floorboard_live_events_delivered"] == "counter"
    assert families["floorboard_live_delivery_lag_seconds"] == "histogram"
    assert families["floorboard_live_viewers_cut_off"] == "counter"
    assert families["floorboard_live_resyncs"] == "counter"
    assert families["floorboard_locks_held"] == "gauge"
    assert families["floorboard_http_request_duration_seconds"] == "histogram"
    assert "process_cpu_seconds" in families  # this process's own figures too


async def test_a_scraper_with_the_metrics_token_gets_in_and_others_do_not(client, monkeypatch):
    token = uuid.uuid4().hex
    bearer = {"Authorization": f"Bearer {token}"}
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    assert (await client.get("/metrics", headers=bearer)).status_code == 404  # none set
    monkeypatch.setenv("METRICS_TOKEN", token)
    let_in = await client.get("/metrics", headers=bearer)
    assert let_in.status_code == 200
    assert "floorboard_live_open_streams" in let_in.text
    for wrong in (f"Bearer {token}x", f"Basic {token}", "Bearer ", ""):
        refused = await client.get("/metrics", headers={"Authorization": wrong})
        assert refused.status_code == 404, wrong


async def test_a_page_action_moves_the_live_figures(app, as_user, ops):
    alice = await as_user("alice")
    board = await new_board(alice)
    before = await scrape(ops)
    viewer, stream_client = await watch(app, alice, board)
    try:
        while_open = await scrape(ops)
        open_streams = value(while_open, "floorboard_live_open_streams")
        assert open_streams >= value(before, "floorboard_live_open_streams") + 1
        await viewer.wait_for(lambda ms: ms, timeout=10)  # the resync or replay frame
        seen = len(viewer.messages)
        await new_ticket(alice, board, f"Metrics {uuid.uuid4().hex[:6]}")
        await viewer.wait_for(lambda ms: len(ms) > seen, timeout=10)
        after = await scrape(ops)
    finally:
        await viewer.close()
        await stream_client.aclose()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    published = "floorboard_live_events_published_total"
    assert moved(published, area="board", kind="ticket.create") >= 1
    assert moved(published, area="site", kind="activity") >= 1  # the activity line
    assert moved("floorboard_live_events_delivered_total") >= 2  # the first frame, the event
    assert moved("floorboard_live_delivery_lag_seconds_count") >= 1
    lag = moved("floorboard_live_delivery_lag_seconds_sum")
    assert 0 <= lag < 5
    assert value(after, "floorboard_live_delivery_lag_seconds_bucket", le="+Inf") == value(
        after, "floorboard_live_delivery_lag_seconds_count"
    )

    # The viewer hung up: it is no longer counted among the open streams, and its stream
    # request was timed to its opening under the stream route's name.
    for _ in range(100):
        closed = await scrape(ops)
        if value(closed, "floorboard_live_open_streams") <= open_streams - 1:
            break
        await asyncio.sleep(0.05)
    assert value(closed, "floorboard_live_open_streams") <= open_streams - 1
    timed = "floorboard_http_request_duration_seconds_count"
    assert value(closed, timed, route="board_live") - value(before, timed, route="board_live") == 1


async def test_request_latency_has_a_sample_per_route_name(client, ops):
    await client.get("/healthz")
    await client.get("/api/v1/openapi.json")  # the API app, reached ahead of the router
    await client.get(f"/no-such-page-{uuid.uuid4().hex}")
    await ops.get("/metrics")
    samples = await scrape(ops)
    count = "floorboard_http_request_duration_seconds_count"
    for route in ("healthz", "api_openapi", "unmatched", "metrics"):
        assert value(samples, count, route=route) >= 1, route
        assert value(samples, "floorboard_http_request_duration_seconds_sum", route=route) < 60
    routes = {dict(labels).get("route") for name, labels in samples if name == count}
    assert not any(r and r.startswith("/no-such-page") for r in routes)  # no label per path


async def test_locks_held_is_read_from_the_lock_store(app, ops):
    locks = app.state.services.locks
    key = f"metrics-test:{uuid.uuid4().hex}"
    before = value(await scrape(ops), "floorboard_locks_held")
    info = await locks.acquire(key, holder_id=1, holder="Metrics Test")
    try:
        held = value(await scrape(ops), "floorboard_locks_held")
    finally:
        await locks.release(key, info.token)
    after = value(await scrape(ops), "floorboard_locks_held")
    assert not math.isnan(held)
    assert held >= 1 and before >= 0  # others' locks may lapse meanwhile: no exact +1
    assert after <= held - 1
