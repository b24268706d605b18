"""What one action costs the server: CPU and latency per POST, nobody watching.

    .venv/bin/python bench/action.py [--posts 800] [--action note|ticket] [--workers 1]

Starts a throwaway stack (PostgreSQL database, Redis namespace, `python main.py`), signs
alice in, warms up with 20 actions, then sends `--posts` of them one after the other and
reports the server's CPU per POST (CPU time of every server process over the run,
divided by the POSTs) and the latency each POST took, p50 and p99. `note` is a note on the
site home (the fan-out bench's post); `ticket` is a new ticket on one of 50 boards made
for the run (the 500-pages bench's post). With no viewers, what is left is the action
itself: session, CSRF, membership, transaction, render, publish.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SITE, Stack, percentile, post_form, signed_in_client


async def measure(stack: Stack, posts: int, action: str) -> None:
    client = await signed_in_client(stack.url, "alice")
    try:
        boards: list[int] = []
        if action == "ticket":
            for i in range(50):
                made = await post_form(
                    client, f"/s/{SITE}/boards", {"name": f"Action {i}", "kind": "tickets"}
                )
                boards.append(int(made.headers["location"].rsplit("/boards/", 1)[1].strip("/")))

        async def post(k: int) -> int:
            if action == "ticket":
                url = f"/s/{SITE}/boards/{boards[k % len(boards)]}/tickets"
                data = {"title": f"Action {k}: the bay door sensor", "priority": "normal"}
            else:
                url, data = f"/s/{SITE}/notes", {"note": f"action {k}"}
            return (await post_form(client, url, data)).status_code

        for k in range(20):
            assert await post(k) == 303
        cpu0 = stack.cpu_seconds()
        took = []
        for k in range(posts):
            t = time.perf_counter()
            status = await post(k)
            took.append(time.perf_counter() - t)
            assert status == 303, status
        cpu = stack.cpu_seconds() - cpu0
    finally:
        await client.aclose()
    took.sort()
    print(
        f"{posts} {action} POSTs, {stack.workers} worker(s): server CPU "
        f"{cpu / posts * 1000:.2f} ms per POST; latency p50 "
        f"{percentile(took, 50) * 1000:.1f} ms, p99 {percentile(took, 99) * 1000:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=800)
    parser.add_argument("--action", choices=["note", "ticket"], default="note")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with Stack(workers=args.workers) as stack:
        asyncio.run(measure(stack, args.posts, args.action))
    return 0


if __name__ == "__main__":
    sys.exit(main())
