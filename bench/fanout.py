"""Fan-out benchmark: latency from a real POST to every viewer's SSE stream (SPEC §6).

    .venv/bin/python bench/fanout.py --viewers 100 1000 5000 10000 --workers 1 2 \
        --posts 20 --rate 5 [--quick] [--clients 2] [--profile DIR] [--json FILE]

For each (workers, viewers) pair it creates a throwaway PostgreSQL database and Redis
namespace, starts `python main.py --workers W`, signs alice in, posts 3 warm-up notes, reads
the site home's stream URL (its cursor), opens N viewers of /s/nairobi/live from `--clients`
client processes (bench/viewers.py: raw asyncio protocols), waits until every stream is open,
then sends `--posts` real note POSTs at `--rate` per second (open loop: post k leaves at
start + k/rate whether or not the earlier ones have been answered) and measures, for every
post and every viewer, the time from just before the POST leaves to the first message
carrying that post's note arriving at that viewer. A viewer that has not received a post
30 s after it was sent counts as lost. Then it stops the server, drops the database and
deletes the namespace's keys. Every phase has a timeout; `--budget` bounds the whole run.

Reported per run: p50 / p99 / max latency, lost deliveries, posts/s achieved (the rate at
which the POSTs were answered: posts - 1 over first answer to last answer), server RSS per idle
stream (VmRSS of the worker processes with N streams open minus before, over N), server CPU
per delivered message (CPU time of all server processes over the posting phase — first
POST sent to last delivery — divided by the SSE messages the viewers received, normally
posts x N), and the client processes' CPU.

`--floor`: right after each app run, the same viewers and the same post schedule against
the floor (bench/floor.py: a bare ASGI app on the same uvicorn, same workers, uvloop +
httptools, forwarding pre-formatted frames of the app's event size from Redis pub/sub), and
the app's p99 and CPU per delivery as ratios to the floor's; a size given more than once
(`--viewers 1000 1000 1000`) is also summarised as the medians of its pairs.

`--pages P`: the viewers and posts spread over P pages — P ticket boards made through the
app, viewer i on board i % P, post k a new ticket on board k % P (the floor: P channels) —
each post expected only by its page's viewers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    SITE,
    FloorStack,
    Stack,
    code_version,
    install_signal_handlers,
    machine_description,
    percentile,
    post_form,
    signed_in_client,
    stream_path_of,
)
from viewers import client_main, marker

LOST_AFTER = 30.0  # s: a post not at a viewer by then is lost
WARMUP_POSTS = 3


@dataclass
class Result:
    workers: int
    viewers: int
    clients: int
    posts: int
    rate: float
    server: str = "app"  # or "floor" (bench/floor.py)
    pages: int = 1
    event_bytes: float = 0.0  # mean size of an event's frame as the viewers got it
    connected: int = 0
    connect_s: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    lost: int = 0
    lost_connections: int = 0
    posts_per_s: float = 0.0
    post_p50_ms: float = float("nan")
    post_max_ms: float = float("nan")
    rss_kib_per_stream: float = float("nan")
    rss_mib_before: float = 0.0
    rss_mib_after: float = 0.0
    cpu_us_per_delivery: float = float("nan")
    messages: int = 0  # SSE messages with an id that reached the viewers
    events: int = 0  # distinct events published (fewer than posts if some publishes failed)
    post_errors: int = 0
    server_cpu_s: float = 0.0
    phase_s: float = 0.0
    client_cpu_s: float = 0.0
    streams_by_worker: list[int] = field(default_factory=list)
    loadavg_before: float = 0.0
    first_post_p99_ms: float = float("nan")
    last_post_p99_ms: float = float("nan")
    note: str = ""


# -- one run ------------------------------------------------------------------------------------


@dataclass
class Target:
    """What the viewers watch and how post k is made: the app's pages or the floor's topics."""

    cookie: str
    paths: list[str]  # one per page; viewer i watches page i % len(paths)
    post: Callable[[Any, int], Awaitable[Any]]  # (httpx.AsyncClient, k) -> response
    cookies: dict[str, str] = field(default_factory=dict)


def run_one(
    viewers: int, workers: int, args: argparse.Namespace, floor_bytes: int | None = None
) -> Result:
    """One measurement of the app, or with `floor_bytes` of the floor (bench/floor.py,
    frames of that size), by the same viewers and the same post schedule."""
    result = Result(workers, viewers, min(args.clients, viewers), args.posts, args.rate)
    result.server = "app" if floor_bytes is None else "floor"
    result.pages = args.pages
    result.loadavg_before = os.getloadavg()[0]
    post_pages = [k % args.pages for k in range(args.posts)]
    ctx = mp.get_context("spawn")
    procs: list = []
    pipes: list = []
    stack_class = Stack if floor_bytes is None else FloorStack
    with stack_class(workers=workers, extra_env=args.server_env) as stack:
        if floor_bytes is not None:
            target = _floor_target(args.pages, floor_bytes)
        elif args.pages > 1:
            target = asyncio.run(_prepare_pages(stack, args.pages))
        else:
            target = asyncio.run(_prepare(stack))
        time.sleep(0.5)
        before = stack.rss_kib()

        # -- open the viewers ---------------------------------------------------------------
        shares = _split(viewers, result.clients)
        firsts = [sum(shares[:i]) for i in range(len(shares))]
        connect_timeout = 30 + viewers / 100
        t_connect = time.monotonic()
        for share, first in zip(shares, firsts, strict=True):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=client_main, args=(child_end,), daemon=True)
            proc.start()
            child_end.close()
            parent_end.send(
                {
                    "host": "127.0.0.1",
                    "port": stack.port,
                    "paths": target.paths,
                    "first": first,
                    "post_pages": post_pages,
                    "cookie": target.cookie,
                    "viewers": share,
                    "posts": args.posts,
                    "concurrency": args.connect_concurrency,
                    "connect_timeout": connect_timeout,
                    "lifetime": connect_timeout + args.posts / args.rate + LOST_AFTER + 120,
                    "uvloop": args.client_uvloop,
                    "trace": args.trace_ids,
                }
            )
            procs.append(proc)
            pipes.append(parent_end)
        try:
            connected = [_expect(p, "connected", connect_timeout + 30) for p in pipes]
            result.connect_s = time.monotonic() - t_connect
            result.connected = sum(c[1] for c in connected)
            errors = [c[3] for c in connected if c[2]]
            if result.connected < viewers:
                result.note = f"only {result.connected}/{viewers} streams opened: {errors[:1]}"
                print(f"  ! {result.note}", file=sys.stderr)
                if result.connected == 0:
                    return result
            time.sleep(args.settle)
            after = stack.rss_kib()
            result.streams_by_worker = list(stack.connections_by_worker().values())
            result.rss_mib_before = sum(before.values()) / 1024
            result.rss_mib_after = sum(after.values()) / 1024
            result.rss_kib_per_stream = (
                sum(after.values()) - sum(before.values())
            ) / result.connected

            # -- post and measure -----------------------------------------------------------
            profilers = _start_profilers(stack, args) if args.profile else []
            cpu0 = stack.cpu_seconds()
            t_phase = time.monotonic()
            sent, answered, post_status = asyncio.run(
                _post_all(stack, target, args.posts, args.rate)
            )
            deadline = sent[-1] + LOST_AFTER
            done_at = _wait_done(pipes, deadline)
            result.phase_s = (done_at or time.monotonic()) - t_phase
            result.server_cpu_s = stack.cpu_seconds() - cpu0
            for prof in profilers:
                _stop_profiler(prof)

            # -- collect --------------------------------------------------------------------
            per_client = []
            for p in pipes:
                p.send(("stop",))
            for p in pipes:
                per_client.append(_expect(p, "results", 60))
            if any(s != 303 for s in post_status) or any(
                c[4]["viewers_incomplete"] or c[4]["lost_connections"] or c[4]["ended_by_server"]
                for c in per_client
            ):
                stack.keep_log = True
                result.note += _server_errors(stack)
        finally:
            for p in pipes:
                with contextlib.suppress(OSError):
                    p.close()
            for proc in procs:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)

    bad = [s for s in post_status if s != 303]
    result.post_errors = len(bad)
    if bad:
        result.note += f" {len(bad)} POSTs not 303: {sorted(set(bad))}"
    _summarise(result, sent, answered, per_client, firsts, post_pages, args)
    return result


def _floor_target(pages: int, frame_bytes: int) -> Target:
    """The floor's topics p0…p{pages-1}; post k publishes a frame of `frame_bytes`."""

    async def post(client: Any, k: int) -> Any:
        query = f"topic=p{k % pages}&marker={marker(k)}&bytes={frame_bytes}"
        return await client.post(f"/publish?{query}")

    return Target("x=1", [f"/live?topic=p{i}" for i in range(pages)], post)


async def _prepare(stack: Stack) -> Target:
    """Sign alice in, warm the server up, and read the stream URL off the site home; post k
    is a note on the site home."""
    client = await signed_in_client(stack.url, "alice")
    try:
        for i in range(WARMUP_POSTS):
            r = await post_form(client, f"/s/{SITE}/notes", {"note": f"warm-up note {i}"})
            assert r.status_code == 303, r.status_code
        page = await client.get(f"/s/{SITE}/")
        assert page.status_code == 200, page.status_code
        path = stream_path_of(page.text)
        cookies = dict(client.cookies.items())
    finally:
        await client.aclose()

    async def post(http: Any, k: int) -> Any:
        body = {"note": f"fan-out probe {marker(k)}", "csrftoken": cookies["csrftoken"]}
        return await http.post(f"/s/{SITE}/notes", data=body)

    return Target(_cookie_header(cookies), [path], post, cookies)


async def _prepare_pages(stack: Stack, pages: int) -> Target:
    """`pages` ticket boards at nairobi, made by alice through the app (POST /boards), each
    warmed up with one ticket; the stream URL read off each board's page. Post k creates a
    ticket on board k % pages (a plain form, answered 303 as on the site home)."""
    client = await signed_in_client(stack.url, "alice", timeout=60)
    gate = asyncio.Semaphore(4)

    async def make(i: int) -> tuple[int, str]:
        async with gate:
            r = await post_form(
                client, f"/s/{SITE}/boards", {"name": f"Bench page {i:03d}", "kind": "tickets"}
            )
            assert r.status_code == 303, r.status_code
            board = int(r.headers["location"].rsplit("/boards/", 1)[1].split("?")[0].strip("/"))
            r = await post_form(
                client, f"/s/{SITE}/boards/{board}/tickets", {"title": "warm-up", "priority": "low"}
            )
            assert r.status_code == 303, r.status_code
            page = await client.get(f"/s/{SITE}/boards/{board}")
            assert page.status_code == 200, page.status_code
            return board, stream_path_of(page.text)

    try:
        made = await asyncio.gather(*(make(i) for i in range(pages)))
        cookies = dict(client.cookies.items())
    finally:
        await client.aclose()
    boards = [board for board, _ in made]

    async def post(http: Any, k: int) -> Any:
        body = {
            "title": f"Probe {marker(k)}: the bay door sensor",
            "priority": "normal",
            "csrftoken": cookies["csrftoken"],
        }
        return await http.post(f"/s/{SITE}/boards/{boards[k % pages]}/tickets", data=body)

    return Target(_cookie_header(cookies), [path for _, path in made], post, cookies)


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


async def _post_all(
    stack: Stack, target: Target, posts: int, rate: float
) -> tuple[list[float], list[float], list[int]]:
    """Send the posts open-loop at `rate`; returns when each POST left and was answered."""
    import httpx

    sent = [0.0] * posts
    answered = [0.0] * posts
    status = [0] * posts
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(
        base_url=stack.url,
        cookies=target.cookies,
        timeout=httpx.Timeout(LOST_AFTER),
        limits=limits,
    ) as client:

        async def one(k: int) -> None:
            sent[k] = time.monotonic()
            try:
                r = await target.post(client, k)
                status[k] = r.status_code
            except httpx.HTTPError as exc:
                status[k] = -1
                print(f"  ! POST {k}: {exc!r}", file=sys.stderr)
            answered[k] = time.monotonic()

        start = time.monotonic() + 0.05
        tasks = []
        for k in range(posts):
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(k)))
        await asyncio.wait(tasks, timeout=LOST_AFTER + 5)
    return sent, answered, status


def _wait_done(pipes: list, deadline: float) -> float | None:
    """Wait until every client has every post at every viewer (or the deadline).
    Returns the monotonic time the last client got there, None on the deadline."""
    waiting = set(range(len(pipes)))
    last = 0.0
    while waiting and time.monotonic() < deadline:
        for i in list(waiting):
            if pipes[i].poll(0.005):
                message = pipes[i].recv()
                if message[0] == "done":
                    waiting.discard(i)
                    last = max(last, message[1])
                elif message[0] == "error":
                    raise RuntimeError(f"client {i}: {message[1]}")
    return None if waiting else last


def _expect(pipe, kind: str, timeout: float) -> tuple:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pipe.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
            message = pipe.recv()
            if message[0] == kind:
                return message
            if message[0] == "error":
                raise RuntimeError(f"client process failed: {message[1]}")
    raise TimeoutError(f"no {kind!r} from a client process within {timeout:.0f} s")


def _server_errors(stack: Stack) -> str:
    """The last line of each distinct traceback in the server's log, for the notes."""
    assert stack.server is not None
    lines = stack.server.log_tail(2_000_000).splitlines()
    found: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (
                lines[j].startswith((" ", "\t", "Traceback", "During handling", "The above"))
                or not lines[j].strip()
                or lines[j].startswith(("+", "|"))  # exception groups
            ):
                j += 1
            if j < len(lines):
                found[lines[j][:160]] = found.get(lines[j][:160], 0) + 1
    return "".join(f" [server: {n}x {err}]" for err, n in found.items())


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _summarise(result: Result, sent, answered, per_client, firsts, post_pages, args) -> None:
    posts = args.posts
    latencies: list[float] = []
    per_post: list[list[float]] = [[] for _ in range(posts)]
    posts_of_page: list[list[int]] = [[] for _ in range(args.pages)]
    for k, page in enumerate(post_pages):
        posts_of_page[page].append(k)
    lost = 0
    client_cpu = 0.0
    lost_conns = 0
    sizes = []
    for i, (_, n, p, raw, stats) in enumerate(per_client):
        print(f"  client {i}: {n} viewers, {stats}", file=sys.stderr)
        arrivals = array("d")
        arrivals.frombytes(raw)
        client_cpu += stats["cpu_s_since_connected"]
        result.messages += stats["messages_in"]
        result.events = max(result.events, stats["distinct_events"])
        lost_conns += stats["lost_connections"] + stats["ended_by_server"]
        if stats["event_bytes_mean"]:
            sizes.append(stats["event_bytes_mean"])
        for v in range(n):
            base = v * p
            for k in posts_of_page[(firsts[i] + v) % args.pages]:
                at = arrivals[base + k]
                if at == 0.0 or at - sent[k] > LOST_AFTER:
                    lost += 1
                else:
                    ms = (at - sent[k]) * 1000
                    latencies.append(ms)
                    per_post[k].append(ms)
    # Viewers that never connected are not counted as lost deliveries (see `connected`).
    latencies.sort()
    result.p50_ms = percentile(latencies, 50)
    result.p99_ms = percentile(latencies, 99)
    result.max_ms = latencies[-1] if latencies else float("nan")
    result.lost = lost
    result.lost_connections = lost_conns
    result.client_cpu_s = client_cpu
    result.event_bytes = sum(sizes) / len(sizes) if sizes else 0.0
    for lst in per_post:
        lst.sort()
    per_post = [lst for lst in per_post if lst]
    result.first_post_p99_ms = percentile(per_post[0] if per_post else [], 99)
    result.last_post_p99_ms = percentile(per_post[-1] if per_post else [], 99)
    ok_answers = sorted(a for a in answered if a)
    if len(ok_answers) > 1:
        # The rate at which POSTs were answered (= --rate unless the server falls behind).
        result.posts_per_s = (len(ok_answers) - 1) / (ok_answers[-1] - ok_answers[0])
    if ok_answers:
        post_ms = sorted((a - s) * 1000 for s, a in zip(sent, answered, strict=True) if a)
        result.post_p50_ms = percentile(post_ms, 50)
        result.post_max_ms = post_ms[-1]
    if result.messages:
        result.cpu_us_per_delivery = result.server_cpu_s / result.messages * 1e6


# -- profiling ----------------------------------------------------------------------------------


def _start_profilers(stack: Stack, args) -> list[tuple[subprocess.Popen, Path]]:
    """py-spy record of each worker over the posting phase (raw collapsed stacks)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = []
    duration = int(args.posts / args.rate + 3)
    Path(args.profile).mkdir(parents=True, exist_ok=True)
    for pid in stack.pids():
        target = Path(args.profile) / f"w{stack.workers}-v{stack_viewers(args)}-{pid}.txt"
        proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(duration),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(target),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        out.append((proc, target))
    time.sleep(1.0)  # py-spy needs a moment to attach
    return out


def stack_viewers(args) -> int:
    return getattr(args, "_current_viewers", 0)


def _stop_profiler(prof: tuple[subprocess.Popen, Path]) -> None:
    proc, target = prof
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    print(f"  profile: {target}", file=sys.stderr)


# -- reporting ----------------------------------------------------------------------------------


def fmt_ms(ms: float) -> str:
    if ms != ms:  # nan
        return "—"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


HEADER = (
    "| server | pages | workers | viewers | p50 | p99 | max | lost | posts/s | POST p50 "
    "| POST errors | RSS/idle stream | server CPU/delivery | streams per worker | client CPU "
    "| load |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
)
RATIO_HEADER = (
    "| pages | workers | viewers | posts/s | event | app p50 | app p99 | app max | lost "
    "| app CPU/delivery | floor p50 | floor p99 | floor lost | floor CPU/delivery "
    "| p99 ratio | CPU ratio | load (app/floor) |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def row(r: Result) -> str:
    lost = f"{r.lost}" + (f" ({r.lost_connections} conns)" if r.lost_connections else "")
    if r.connected < r.viewers:
        lost += f", {r.viewers - r.connected} never opened"
    return (
        f"| {r.server} | {r.pages} | {r.workers} | {r.viewers:,} | {fmt_ms(r.p50_ms)} | "
        f"{fmt_ms(r.p99_ms)} | "
        f"{fmt_ms(r.max_ms)} | {lost} | {r.posts_per_s:.1f} | {fmt_ms(r.post_p50_ms)} | "
        f"{r.post_errors} | "
        f"{r.rss_kib_per_stream:.1f} KiB | {r.cpu_us_per_delivery:.0f} µs | "
        f"{'/'.join(map(str, r.streams_by_worker))} | {r.client_cpu_s:.1f} s | "
        f"{r.loadavg_before:.2f} |"
    )


MEDIAN_HEADER = (
    "| pages | workers | viewers | pairs | app p99 (median) | floor p99 (median) | p99 ratio "
    "| app CPU/delivery (median) | floor CPU/delivery (median) | CPU ratio | lost |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def median_rows(pairs: list[tuple[Result, Result]]) -> list[str]:
    """For every size measured more than once (`--viewers 1000 1000 1000`): the median of
    the app's runs against the median of the floor's runs, each pair run back to back. On
    a shared machine one pair can differ from the next by 1.5x either way; the medians of
    a few alternating pairs are what a single figure cannot be."""
    by_size: dict[tuple[int, int, int], list[tuple[Result, Result]]] = {}
    for app, floor in pairs:
        by_size.setdefault((app.pages, app.workers, app.viewers), []).append((app, floor))
    out = []
    for (pages, workers, viewers), runs in by_size.items():
        if len(runs) < 2:
            continue
        app_p99 = statistics.median(a.p99_ms for a, _ in runs)
        floor_p99 = statistics.median(f.p99_ms for _, f in runs)
        app_cpu = statistics.median(a.cpu_us_per_delivery for a, _ in runs)
        floor_cpu = statistics.median(f.cpu_us_per_delivery for _, f in runs)
        lost = sum(a.lost for a, _ in runs)
        out.append(
            f"| {pages} | {workers} | {viewers:,} | {len(runs)} | {fmt_ms(app_p99)} | "
            f"{fmt_ms(floor_p99)} | **{app_p99 / floor_p99:.2f}x** | {app_cpu:.0f} µs | "
            f"{floor_cpu:.0f} µs | **{app_cpu / floor_cpu:.2f}x** | {lost} |"
        )
    return out


def ratio_row(app: Result, floor: Result) -> str:
    """The app's figures beside the floor's, measured right after it with the same client."""

    def lost(r: Result) -> str:
        return f"{r.lost}" + (f" ({r.lost_connections} conns)" if r.lost_connections else "")

    return (
        f"| {app.pages} | {app.workers} | {app.viewers:,} | {app.rate:g} | "
        f"{app.event_bytes / 1024:.1f} KiB | {fmt_ms(app.p50_ms)} | **{fmt_ms(app.p99_ms)}** | "
        f"{fmt_ms(app.max_ms)} | {lost(app)} | {app.cpu_us_per_delivery:.0f} µs | "
        f"{fmt_ms(floor.p50_ms)} | {fmt_ms(floor.p99_ms)} | {lost(floor)} | "
        f"{floor.cpu_us_per_delivery:.0f} µs | **{app.p99_ms / floor.p99_ms:.2f}x** | "
        f"**{app.cpu_us_per_delivery / floor.cpu_us_per_delivery:.2f}x** | "
        f"{app.loadavg_before:.2f} / {floor.loadavg_before:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[100, 1000, 5000, 10000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5.0, help="posts per second")
    parser.add_argument("--clients", type=int, default=2, help="client processes for viewers")
    parser.add_argument(
        "--trace-ids",
        action="store_true",
        help="record every event id each viewer gets and report viewers that missed one",
    )
    parser.add_argument(
        "--client-uvloop",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the viewer processes on uvloop when it is importable (experimental)",
    )
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=128,
        help="stream handshakes in flight per client process",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="seconds between the last stream opening and the RSS reading",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 5 posts, 0.5 s settle (defaults to 100 1000 viewers, "
        "2 workers unless given)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="right after each app run, run the floor (bench/floor.py: bare ASGI, same uvicorn, "
        "frames of the app's event size) with the same viewers and posts, and report ratios",
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=1,
        help="spread the viewers and posts over this many pages (ticket boards made through "
        "the app; a post is a new ticket on board k %% pages). 1: the site home, notes",
    )
    parser.add_argument(
        "--floor-bytes",
        type=int,
        default=0,
        help="the floor's frame size (default: the app's mean event size in the same run)",
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy record each worker while posting")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--budget", type=float, default=1800, help="seconds for the whole run")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server (for experiments)",
    )
    args = parser.parse_args(argv)
    given = set(argv if argv is not None else sys.argv[1:])
    if args.quick:
        args.posts = min(args.posts, 5)
        args.settle = 0.5
        if "--viewers" not in given:
            args.viewers = [100, 1000]
        if "--workers" not in given:
            args.workers = [2]
    args.server_env = dict(kv.split("=", 1) for kv in args.server_env)

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(args.viewers) + 1024
    if hard < need:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            hard = need
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    install_signal_handlers(args.budget)

    print(f"machine: {machine_description()}", file=sys.stderr)
    print(f"code: {code_version()}", file=sys.stderr)
    print(
        f"posts {args.posts} at {args.rate}/s, {args.clients} client processes, fd limit {hard}",
        file=sys.stderr,
    )
    results: list[Result] = []
    pairs: list[tuple[Result, Result]] = []
    started = time.monotonic()
    try:
        for workers in args.workers:
            for viewers in args.viewers:
                args._current_viewers = viewers
                t = time.monotonic()
                print(f"-- {workers} worker(s), {viewers:,} viewers", file=sys.stderr, flush=True)
                try:
                    r = run_one(viewers, workers, args)
                except Exception as exc:  # report and go on with the next size
                    r = Result(workers, viewers, args.clients, args.posts, args.rate)
                    r.note = f"failed: {exc!r}"[:300]
                    print(f"  ! {r.note}", file=sys.stderr)
                results.append(r)
                print(
                    f"  {row(r)}  [{time.monotonic() - t:.0f} s, connect {r.connect_s:.1f} s, "
                    f"load {r.loadavg_before:.2f}] {r.note}",
                    file=sys.stderr,
                    flush=True,
                )
                if not args.floor:
                    continue
                size = args.floor_bytes or round(r.event_bytes) or 6144
                print(f"-- floor, {size} B frames", file=sys.stderr, flush=True)
                t = time.monotonic()
                try:
                    f = run_one(viewers, workers, args, floor_bytes=size)
                except Exception as exc:
                    f = Result(workers, viewers, args.clients, args.posts, args.rate, "floor")
                    f.note = f"failed: {exc!r}"[:300]
                    print(f"  ! {f.note}", file=sys.stderr)
                results.append(f)
                pairs.append((r, f))
                print(
                    f"  {row(f)}  [{time.monotonic() - t:.0f} s, connect {f.connect_s:.1f} s]"
                    f" {f.note}\n  {ratio_row(r, f)}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        print(f"\n{HEADER}")
        for r in results:
            print(row(r))
        if pairs:
            print(f"\n{RATIO_HEADER}")
            for app, floor in pairs:
                print(ratio_row(app, floor))
            if medians := median_rows(pairs):
                print(f"\n{MEDIAN_HEADER}")
                print("\n".join(medians))
        print(f"\n({time.monotonic() - started:.0f} s in all)")
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "machine": machine_description(),
                        "code": code_version(),
                        "results": [asdict(r) for r in results],
                    },
                    indent=1,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
