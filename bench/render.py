"""Page-render benchmark: GET /s/nairobi/ (the live site home) as a signed-in user.

    .venv/bin/python bench/render.py [--requests 200] [--workers 1] [--json FILE]

A throwaway database and Redis namespace, one server, alice signed in; 20 notes are posted
first so the activity list is full (its realistic size), then `--requests` sequential GETs
over one keep-alive connection, each timed from the client (request out to body in). The
server's own time is all of it but the loopback round trip (~0.1 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    SITE,
    Stack,
    code_version,
    install_signal_handlers,
    machine_description,
    percentile,
    post_form,
    signed_in_client,
)


async def measure(stack: Stack, requests: int) -> dict:
    client = await signed_in_client(stack.url, "alice")
    try:
        for i in range(20):
            r = await post_form(client, f"/s/{SITE}/notes", {"note": f"a realistic note {i:02d}"})
            assert r.status_code == 303, r.status_code
        for _ in range(20):  # warm-up: templates compiled, pools filled
            r = await client.get(f"/s/{SITE}/")
            assert r.status_code == 200, r.status_code
        times = []
        size = 0
        for _ in range(requests):
            t = time.perf_counter()
            r = await client.get(f"/s/{SITE}/")
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.status_code
            size = len(r.content)
        times.sort()
        return {
            "requests": requests,
            "bytes": size,
            "p50_ms": percentile(times, 50),
            "p99_ms": percentile(times, 99),
            "max_ms": times[-1],
            "mean_ms": sum(times) / len(times),
        }
    finally:
        await client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--budget", type=float, default=300, help="seconds for the whole run")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    install_signal_handlers(args.budget)
    extra = dict(kv.split("=", 1) for kv in args.server_env)
    print(f"machine: {machine_description()}", file=sys.stderr)
    print(f"code: {code_version()}", file=sys.stderr)
    with Stack(workers=args.workers, extra_env=extra) as stack:
        result = asyncio.run(measure(stack, args.requests))
    print(
        f"GET /s/{SITE}/ ({result['bytes']:,} bytes, 20-line activity list), "
        f"{result['requests']} sequential keep-alive requests: p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms, "
        f"mean {result['mean_ms']:.1f} ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
