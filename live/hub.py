"""The live hub: one per process, between the routes and the broker (SPEC §4).

It owns the process-wide loops, so that no stream needs a timer of its own (on these
machines every wake-up of an idle process costs ~0.1 ms of CPU):

* the **ticker** offers a heartbeat to every open stream every `ping_every` seconds (proxies
  keep idle streams open; a viewer whose socket stopped draining is cut off when the write
  times out), a slice of them at a time (`ping_slices`): a round of 10,000 heartbeats at
  once held a process's loop for ~100 ms, and every event due meanwhile waited for it;
  once a round it closes streams whose page connection stopped heartbeating (a tablet that
  vanished leaves a half-open socket behind: it is evicted within `evict_after` seconds);
* the **sweeper** turns presence changes into one rendered update per page and interval
  (joins and leaves are coalesced: 200 tablets arriving at once make a handful of updates,
  not 200), published as an ephemeral event on the page's presence topic;
* and when the server is told to stop (uvicorn's SIGTERM/SIGINT handler), every stream
  ends at once rather than holding the shutdown for its grace period.

Presence is tied to the page connection a tab opens (`conn_id`, chosen at render time and
kept across reconnects), refreshed by the stream opening and by the page's heartbeat
requests, so an SSE reconnect within the grace period shows no leave/join flap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from live.broker import Broker, Subscription
from live.events import Event
from live.presence import PresenceStore, Viewer
from live.stream import ENDED_KIND, PING_KIND, LiveStream, Renderer, cut_off_stalled

log = logging.getLogger("floorboard.live")

PING_EVENT = Event(topic="", seq=0, position="", kind=PING_KIND, actor="", html="", ephemeral=True)
PING_SLICES = 30  # a heartbeat round is sent in this many slices, evenly over its interval

# (page, viewers now, joined, left) -> the <hx-partial>s for #presence and #toasts
PresenceRenderer = Callable[[str, list[Viewer], list[Viewer], list[Viewer]], str]


def presence_topic(page: str) -> str:
    return f"presence:{page}"


def user_topic(user_id: int) -> str:
    """Where a viewer's streams hear that their user was signed out everywhere."""
    return f"user:{user_id}"


@dataclass
class _PageState:
    streams: dict[str, Subscription] = field(default_factory=dict)  # conn_id -> subscription
    joined: list[Viewer] = field(default_factory=list)
    dirty: bool = False
    departing_until: float = 0.0  # keep sweeping this page until then


class LiveHub:
    def __init__(
        self,
        broker: Broker,
        presence: PresenceStore,
        render_presence: PresenceRenderer,
        *,
        ping_every: float = 15.0,
        sweep_every: float = 0.5,
        evict_after: float = 45.0,
        ping_slices: int = PING_SLICES,
    ) -> None:
        self.broker = broker
        self.presence = presence
        self.render_presence = render_presence
        self.ping_every = ping_every
        self.sweep_every = sweep_every
        self.evict_after = evict_after
        self.ping_slices = ping_slices
        self._ping_turn = 0  # the slice the ticker offers a heartbeat to next
        self._pages: dict[str, _PageState] = {}
        self._beats: dict[tuple[str, str], float] = {}  # (page, conn_id) -> last beat here
        self._tasks: list[asyncio.Task[None]] = []
        self._chained: dict[int, Any] = {}  # signal -> the server's handler we wrapped

    async def start(self) -> None:
        await self.broker.start()
        self._tasks = [
            asyncio.create_task(
                self._every(self.ping_every / self.ping_slices, self._tick), name="live-ticker"
            ),
            asyncio.create_task(self._every(self.sweep_every, self._sweep), name="live-sweeper"),
        ]
        self._drain_on_exit()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for signum, handler in self._chained.items():
            signal.signal(signum, handler)
        self._chained.clear()
        await self.broker.stop()  # ends every subscription, so every stream returns

    # -- what routes call -------------------------------------------------------------

    async def cursor(self, topics: list[str]) -> str:
        """The id a freshly rendered page embeds in its stream URL."""
        return (await self.broker.cursor(topics)).encode(topics)

    def stream(
        self,
        topics: list[str],
        resume_from: str | None,
        render_regions: Renderer,
        *,
        page: str | None = None,
        conn_id: str | None = None,
        viewer: Viewer | None = None,
    ) -> LiveStream:
        """The SSE response for one viewer. With `page`, `conn_id` and `viewer` the viewer
        is present on the page while the stream is open (and its heartbeats arrive)."""
        if page and conn_id and viewer:

            async def opened(sub: Subscription) -> None:
                self._pages.setdefault(page, _PageState()).streams[conn_id] = sub
                self._beats[(page, conn_id)] = time.monotonic()
                await self.beat(page, conn_id, viewer)
                # Re-send the list even without a join: the page may have been rendered
                # between an old connection's expiry and its sweep, listing nobody.
                self._page(page).dirty = True

            async def closed(sub: Subscription) -> None:
                state = self._pages.get(page)
                if state is not None and state.streams.get(conn_id) is sub:
                    del state.streams[conn_id]
                    self._beats.pop((page, conn_id), None)
                if await self.presence.leave(page, conn_id):
                    self._page(page).departing_until = (
                        time.monotonic() + self.presence.grace + 2 * self.sweep_every
                    )

            return LiveStream(
                self.broker,
                topics,
                resume_from,
                render_regions,
                opened,
                closed,
                live_only=(presence_topic(page), user_topic(viewer.user_id)),
            )
        return LiveStream(self.broker, topics, resume_from, render_regions)

    async def beat(self, page: str, conn_id: str, viewer: Viewer) -> None:
        """The page says it is still open (on stream open, and every few seconds)."""
        if (page, conn_id) in self._beats:
            self._beats[(page, conn_id)] = time.monotonic()
        if await self.presence.heartbeat(page, conn_id, viewer):
            state = self._page(page)
            state.joined.append(viewer)
            state.dirty = True

    async def publish(
        self,
        topic: str,
        kind: str,
        actor: str,
        render: Callable[[], Awaitable[str]],
        *,
        ordered: bool = True,
    ) -> str:
        """Render a topic's changed regions once and publish them; call after commit.

        Rendering and publishing hold the topic's lock (across processes), so of two
        writers the one that publishes last also rendered last: the final event on every
        screen holds everything committed. Returns the HTML (for the actor's response).
        `ordered=False` for an event whose place on the page does not depend on what came
        before it (an activity line, immutable, that finds its own place in a sorted list):
        no lock, so a busy site's actions do not queue for one another's turn.

        A broker that fails to publish (Redis not answering) does not make the committed
        action fail: it is logged, and the broker sees to it that every viewer gets a
        resync once it is back (`Broker.missed`), never a silent gap.
        """
        if not ordered:
            return await self._publish(topic, kind, actor, render)
        async with self.broker.serialised(topic):
            return await self._publish(topic, kind, actor, render)

    async def _publish(
        self, topic: str, kind: str, actor: str, render: Callable[[], Awaitable[str]]
    ) -> str:
        html = await render()
        try:
            await self.broker.publish(topic, kind, actor, html)
        except Exception as exc:
            log.warning("could not publish %s on %s (%r); viewers will resync", kind, topic, exc)
            self.broker.missed()
        return html

    async def indicate(self, topic: str, kind: str, actor: str, html: str) -> None:
        """An ephemeral indicator ("bob is moving #12"): live only, never replayed."""
        await self.broker.publish_ephemeral(topic, kind, actor, html)

    async def end_user(self, user_id: int) -> None:
        """End every open stream of this user, on every worker (an ephemeral event each
        process's broker hands to its local streams): call after their sessions are gone,
        so the browser's reconnect is refused and the page goes to the sign-in page.
        If the broker is not answering, the streams end anyway when it is back (a broker
        reconnect ends every stream), and their reconnect is refused the same way."""
        try:
            await self.broker.publish_ephemeral(user_topic(user_id), ENDED_KIND, "", "")
        except Exception as exc:
            log.warning(
                "could not end user %s's streams now (%r); they end when Redis is back",
                user_id,
                exc,
            )
            self.broker.missed()

    def viewers_here(self, page: str) -> int:
        state = self._pages.get(page)
        return len(state.streams) if state else 0

    # -- loops ---------------------------------------------------------------------------

    def _page(self, page: str) -> _PageState:
        return self._pages.setdefault(page, _PageState())

    async def _every(self, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis blip must not kill the loop
                log.exception("live hub loop %s failed", getattr(work, "__name__", work))

    def _drain_on_exit(self) -> None:
        """End every stream as soon as the server is told to shut down.

        uvicorn waits for open connections before it runs the lifespan shutdown (where
        `stop()` is), so streams left open would hold it for the whole grace period and
        then be cancelled mid-write. Its SIGTERM/SIGINT handlers (`Server.handle_exit`,
        found as sse-starlette finds them) are wrapped: theirs runs, then the streams end.
        No uvicorn handler (tests, another server): nothing to wrap.
        """
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            handler = signal.getsignal(signum)
            if not hasattr(getattr(handler, "__self__", None), "should_exit"):
                continue

            def exiting(sig: int, frame: Any, handler: Any = handler) -> None:
                handler(sig, frame)
                loop.call_soon_threadsafe(self.broker.close_subscriptions)

            try:
                signal.signal(signum, exiting)
            except ValueError:  # not the main thread: uvicorn could not have set it either
                continue
            self._chained[signum] = handler

    async def _tick(self) -> None:
        part = self._ping_turn
        self._ping_turn = (part + 1) % self.ping_slices
        self.broker.tick(PING_EVENT, part, self.ping_slices)
        if part != 0:
            return
        # Once a round: the streams stuck in a write, and the page connections gone silent.
        if cut := cut_off_stalled():
            log.info("cut off %d stalled viewers", cut)
        await self._evict_silent()

    async def _evict_silent(self) -> None:
        """Close streams whose page stopped heartbeating: the socket is likely half-open.

        A heartbeat may have reached another worker behind the load balancer, so a
        connection silent *here* is only evicted if the shared presence store agrees.
        """
        now = time.monotonic()
        silent: dict[str, list[str]] = {}
        for (page, conn_id), last in self._beats.items():
            if last < now - self.evict_after:
                silent.setdefault(page, []).append(conn_id)
        for page, conn_ids in silent.items():
            alive = await self.presence.connections(page)
            state = self._pages.get(page)
            for conn_id in conn_ids:
                sub = state.streams.get(conn_id) if state else None
                if conn_id in alive:
                    self._beats[(page, conn_id)] = now
                elif sub is not None:
                    log.info("evicting silent viewer %s on %s", conn_id, page)
                    sub.close()

    async def _sweep(self) -> None:
        now = time.monotonic()
        for page, state in list(self._pages.items()):
            if not (state.streams or state.dirty or state.departing_until > now):
                del self._pages[page]
        swept = await self.presence.sweep_all(list(self._pages))
        for page, left in swept.items():
            page_state = self._pages.get(page)  # a page may have gone meanwhile
            if page_state is None or not (left or page_state.dirty):
                continue
            joined, page_state.joined, page_state.dirty = page_state.joined, [], False
            viewers = await self.presence.viewers(page)
            html = self.render_presence(page, viewers, joined, left)
            await self.broker.publish_ephemeral(presence_topic(page), "presence", "", html)
