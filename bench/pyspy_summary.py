"""Summarise `py-spy record --format raw` files (collapsed stacks): where the CPU went.

    .venv/bin/python bench/pyspy_summary.py /tmp/fbprof/*.txt [--top 25]

Prints the share of samples per category (first matching rule, checked leaf-first along
each stack), the top functions by self time, and the top functions by inclusive time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (category, regex on one frame "func (file:line)"); a stack goes to the category of the
# innermost frame that matches any rule.
RULES: list[tuple[str, str]] = [
    ("h11 (HTTP/1.1 framing of each chunk)", r"\(h11/"),
    ("uvicorn h11 protocol (send/receive)", r"uvicorn/protocols/http/h11_impl"),
    ("uvicorn httptools protocol", r"uvicorn/protocols/http/httptools_impl"),
    ("anyio memory stream / task group (BaseHTTPMiddleware)", r"\(anyio/"),
    ("BaseHTTPMiddleware glue (CSRF middleware)", r"starlette/middleware/base\.py"),
    ("SecurityHeadersMiddleware send wrapper", r"routes/security\.py"),
    ("asyncio.timeout per write", r"asyncio/timeouts\.py"),
    ("cursor encode/advance per viewer", r"live/events\.py"),
    ("live/stream.py loop (position_key, frame, write)", r"live/stream\.py"),
    ("Subscription/Fanout (broker.py)", r"live/broker\.py"),
    ("redis broker reader (json decode)", r"live/redis_broker\.py|\(redis/|json/"),
    (
        "POST handling: DB, templates, sessions",
        r"\(piccolo|asyncpg/|jinja2/|piccolo_api/|routes/sites\.py",
    ),
    (
        "socket writes (transport)",
        r"selector_events\.py.*(write|send)|_SelectorSocketTransport\.write",
    ),
    ("asyncio event loop (scheduling, select)", r"\(asyncio/"),
]


def load(paths: list[str]) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in paths:
        for line in Path(path).read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def categorise(stack: tuple[str, ...], rules) -> str:
    for frame in reversed(stack):
        for name, rx in rules:
            if rx.search(frame):
                return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    stacks = load(args.files)
    total = sum(stacks.values()) or 1
    rules = [(name, re.compile(rx)) for name, rx in RULES]

    cats: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, n in stacks.items():
        cats[categorise(stack, rules)] += n
        self_time[stack[-1]] += n
        for frame in set(stack):
            inclusive[frame] += n

    print(f"{total} samples (on-CPU only) from {len(args.files)} file(s)\n")
    print("| where (innermost matching frame) | share |\n|---|---:|")
    for name, n in cats.most_common():
        print(f"| {name} | {100 * n / total:.1f} % |")
    print(f"\ntop {args.top} by self time:")
    for frame, n in self_time.most_common(args.top):
        print(f"  {100 * n / total:5.1f} %  {frame}")
    print(f"\ntop {args.top} by inclusive time (below the event loop):")
    shown = 0
    for frame, n in inclusive.most_common():
        if re.search(
            r"\(asyncio/(base_events|runners|events)\.py|<module>|spawn|process\.py|"
            r"uvicorn/(server|_compat|_subprocess|supervisors)",
            frame,
        ):
            continue
        print(f"  {100 * n / total:5.1f} %  {frame}")
        shown += 1
        if shown >= args.top:
            break


if __name__ == "__main__":
    main()
