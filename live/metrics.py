"""What this process has done, for Prometheus (issue 12, item 6); served at /metrics.

One registry per process (`REGISTRY`, not prometheus_client's global one): with several
processes, each serves its own figures and Prometheus scrapes every process (deploy/ runs
one `floorboard@PORT` instance per process, so each has an address of its own). The
multiprocess mode of prometheus_client is not used: it needs a shared directory of mmap
files cleaned at every restart and cannot serve callback gauges (open streams, locks held).

Series (every name starts `floorboard_`):

* `live_open_streams` (gauge): SSE streams open in this process, read at scrape time;
* `live_events_published_total{area,kind}` (counter): events this process published,
  ephemeral ones (presence, indicators) included; `area` is the topic's first segment
  (the live area's name, "presence", "site", "user");
* `live_events_delivered_total` (counter): event frames written to viewers (live, replayed
  and resync frames; not heartbeats);
* `live_delivery_lag_seconds` (histogram): from an event reaching this process's fan-out to
  its frame written to a viewer, on the live path (replays are late by design and are not
  observed). With the in-process broker that is from `publish`; with Redis it is from the
  message's receipt by this process's pub/sub reader (Redis' own transit is not included:
  events carry no timestamp, and other hosts' clocks are not this one's);
* `live_viewers_cut_off_total{reason}` (counter): "overflow" (its queue was full: it fell
  too far behind the events) or "stalled" (a write blocked longer than the send timeout);
* `live_resyncs_total{reason}` (counter): "resume" (the viewer's cursor could not be resumed
  from) or "gap" (a jump in a topic's sequence that history could not fill);
* `locks_held` (gauge): live soft locks, read from the lock store at scrape time (with Redis
  the store is shared: every process reports the same, cluster-wide figure);
* `http_request_duration_seconds{route}` (histogram): by the matched route's name,
  "unmatched" when no route matched; a live stream counts the time to open it.

Per-delivery figures (delivered, lag) are kept in plain numbers touched only on the event
loop's thread and turned into metrics at scrape time: prometheus_client's own Counter and
Histogram take a lock per update, ~0.4 and ~1.7 µs, which 10,000 viewers would pay on
every event.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from live.events import Event
    from live.locks import LockStore

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # CPU, memory, open files of this process
PlatformCollector(registry=REGISTRY)

PREFIX = "floorboard_"
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OPEN_STREAMS = Gauge(
    PREFIX + "live_open_streams", "SSE streams open in this process.", registry=REGISTRY
)
EVENTS_PUBLISHED = Counter(
    PREFIX + "live_events_published",
    "Events published by this process, by area (the topic's first segment) and kind.",
    ["area", "kind"],
    registry=REGISTRY,
)
VIEWERS_CUT_OFF = Counter(
    PREFIX + "live_viewers_cut_off",
    "Viewers cut off: overflow (fell too far behind), stalled (a write blocked too long).",
    ["reason"],
    registry=REGISTRY,
)
RESYNCS = Counter(
    PREFIX + "live_resyncs",
    "Live regions sent fresh: resume (cursor not resumable), gap (history cannot fill it).",
    ["reason"],
    registry=REGISTRY,
)
LOCKS_HELD = Gauge(
    PREFIX + "locks_held",
    "Soft locks held now, read from the lock store at scrape time (shared with Redis).",
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    PREFIX + "http_request_duration_seconds",
    "HTTP request latency by route name (a live stream: the time to open it).",
    ["route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
for _reason in ("overflow", "stalled"):
    VIEWERS_CUT_OFF.labels(_reason)
for _reason in ("resume", "gap"):
    RESYNCS.labels(_reason)

# Scope key a live stream sets once its response has started (perf_counter): the request
# latency middleware ends a stream's request there, not when the viewer leaves.
STREAM_OPENED = "floorboard.stream_opened"
LOCKS_TIMEOUT = 2.0  # a scrape must answer even when the lock store does not


class _LoopHistogram:
    """A histogram updated from the event loop's thread only: no lock, one bisect."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        cumulative, out = 0, list[tuple[str, float]]()
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            cumulative += count
            out.append((bound, cumulative))
        return out


class _Delivery(Collector):
    """Frames written to viewers and their lag: plain numbers, read at scrape time."""

    def __init__(self) -> None:
        self.delivered = 0
        self.lag = _LoopHistogram(LAG_BUCKETS)

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            PREFIX + "live_events_delivered",
            "Event frames written to viewers by this process (heartbeats not counted).",
            value=self.delivered,
        )
        lag = HistogramMetricFamily(
            PREFIX + "live_delivery_lag_seconds",
            "From an event reaching this process's fan-out (publish in-process; receipt "
            "from Redis) to its frame written to a viewer, live path only; a sample: each "
            "stream's first delivery and every 8th after it.",
        )
        lag.add_metric([], self.lag.buckets(), sum_value=self.lag.total)
        yield lag


DELIVERY = _Delivery()
REGISTRY.register(DELIVERY)

# When each recent event reached the fan-out (monotonic seconds), by identity; the entry
# keeps its event alive, so an id cannot be reused while it is there. Bounded: an event
# still being written when it is pushed out is simply not observed any more.
_STAMPS_KEPT = 4096
_stamps: dict[int, tuple[Event, float]] = {}


def fanned_out(event: Event) -> None:
    """An event is being handed to local subscriptions (once per event, not per viewer)."""
    _stamps[id(event)] = (event, time.monotonic())
    if len(_stamps) > _STAMPS_KEPT:
        del _stamps[next(iter(_stamps))]


def delivered(event: Event | None = None) -> None:
    """A frame was written to a viewer; with `event` (the live path) its lag is observed."""
    DELIVERY.delivered += 1
    if event is not None:
        observe_lag(event)


# A stream's live path counts every delivery but times one in this many (its first, then
# every LAG_SAMPLE-th): a fair sample of every viewer's deliveries, at an eighth of the
# cost of timing each of the 10,000 writes an event can make.
LAG_SAMPLE = 8


def observe_lag(event: Event) -> None:
    """The time from the event reaching this process's fan-out until now."""
    entry = _stamps.get(id(event))
    if entry is not None and entry[0] is event:
        DELIVERY.lag.observe(time.monotonic() - entry[1])


def published(topic: str, kind: str) -> None:
    EVENTS_PUBLISHED.labels(topic.partition(":")[0], kind).inc()


def cut_off(reason: str, count: int = 1) -> None:
    if count:
        VIEWERS_CUT_OFF.labels(reason).inc(count)


def resynced(reason: str) -> None:
    RESYNCS.labels(reason).inc()


async def read_locks(locks: LockStore) -> None:
    """Set `locks_held` from the store (one call; NaN when it does not answer in time)."""
    try:
        held = await asyncio.wait_for(locks.holders(""), LOCKS_TIMEOUT)
    except Exception:  # Redis down: the scrape still answers, the gauge says "unknown"
        LOCKS_HELD.set(float("nan"))
    else:
        LOCKS_HELD.set(len(held))
