"""The live site home in real browsers, several users side by side (SPEC §4).

alice and bob (both at Nairobi) each get their own browser context; what one does shows up
in the other's page through the page's one SSE stream, without a reload. The timings are
the SPEC's: joins and leaves within 2 s (3 s allowed here), changes within 2 s.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, Response, Route, expect

from tests.browser.conftest import LiveServer, PageProblems, is_missing_favicon, sign_in
from tests.browser.pages import NoticeEditor, SiteHome, expect_location

NAIROBI_HOME = re.compile(r"/s/nairobi/?$")
STREAM_URL = re.compile(r"/s/nairobi/live\?")  # the stream only: not /live/poll, /live/beat
POLL_PATH = "/s/nairobi/live/poll"
POLL_EVERY = 5000  # ms, app.js
TABLET: dict[str, Any] = {"viewport": {"width": 1024, "height": 768}}
ALICE, BOB = "Alice Wanjiru", "Bob Wilson"


def unique(text: str) -> str:
    """Notes persist for the whole session: tag each so a test finds its own."""
    return f"{text} [{uuid.uuid4().hex[:6]}]"


class HomeFactory:
    """`homes("alice")` -> a SiteHome, signed in, in its own context, watched for problems
    (console errors, page errors, CSP violations) from the sign-in page on."""

    def __init__(self, new_context: Callable[..., Any], base_url: str) -> None:
        self.new_context = new_context
        self.base_url = base_url
        self.watched: list[tuple[str, PageProblems]] = []

    def __call__(
        self,
        username: str,
        *,
        ignore: Callable[[ConsoleMessage], bool] = is_missing_favicon,
        before: Callable[[Page], None] | None = None,
        **context_args: Any,
    ) -> SiteHome:
        page = self.new_context(**context_args).new_page()
        problems = PageProblems.watch(page, ignore=ignore)
        self.watched.append((username, problems))
        if before is not None:
            before(page)
        sign_in(page, self.base_url, username)
        expect(page).to_have_url(NAIROBI_HOME)
        return SiteHome(page)

    def assert_clean(self) -> None:
        """Test 8: no console errors, uncaught errors or CSP violations in any page."""
        for username, problems in self.watched:
            try:
                problems.assert_clean()
            except AssertionError as exc:
                raise AssertionError(f"{username}'s page: {exc}") from None


@pytest.fixture
def homes(new_context: Callable[..., Any], base_url: str) -> HomeFactory:
    return HomeFactory(new_context, base_url)


def wait_until_alone(home: SiteHome) -> None:
    """Start from a clean slate: viewers of the previous test have gone (a clean leave
    takes ~2 s), and no toast of theirs is still on screen."""
    expect(home.presence_count).to_have_text("1 here", timeout=5000)
    home.page.evaluate("document.getElementById('toasts').replaceChildren()")


# --- 1. presence -----------------------------------------------------------------------------


@pytest.mark.parametrize("how_bob_leaves", ["close", "navigate"])
def test_two_users_see_each_other_arrive_and_leave(homes: HomeFactory, how_bob_leaves: str) -> None:
    alice = homes("alice")
    wait_until_alone(alice)
    expect(alice.avatar(ALICE)).to_be_visible()

    bob = homes("bob")
    # Within 3 s of bob's page loading, alice sees him and is told he joined.
    expect(alice.presence_count).to_have_text("2 here", timeout=3000)
    expect(alice.avatar(BOB)).to_be_visible(timeout=3000)
    expect(alice.avatar(BOB)).to_have_text("BW")
    expect(alice.toast("Bob Wilson joined")).to_have_count(1, timeout=3000)
    # bob sees both of them, and is not told that he himself joined.
    expect(bob.presence_count).to_have_text("2 here", timeout=3000)
    expect(bob.avatar(ALICE)).to_be_visible()
    expect(bob.avatar(BOB)).to_be_visible()
    expect(bob.toast("joined")).to_have_count(0)

    if how_bob_leaves == "close":
        bob.page.close()
    else:
        bob.page.goto("/healthz")  # a full navigation away from the live page
    expect(alice.avatar(BOB)).to_have_count(0, timeout=3000)
    expect(alice.presence_count).to_have_text("1 here")
    expect(alice.toast("Bob Wilson left")).to_have_count(1, timeout=3000)
    # A clean leave is no flap: bob does not come back a heartbeat later.
    alice.page.wait_for_timeout(1000)
    expect(alice.avatar(BOB)).to_have_count(0)
    assert alice.toast("Bob Wilson joined").count() <= 1  # (it goes away after 6 s)

    homes.assert_clean()


# --- 2. an action shows in every viewer's list, once --------------------------------------


def test_a_note_reaches_the_other_viewer_without_reload_and_is_not_doubled(
    homes: HomeFactory,
) -> None:
    alice = homes("alice")
    bob = homes("bob")
    expect(alice.status).to_have_text("Live", timeout=5000)
    expect(bob.status).to_have_text("Live", timeout=5000)
    alice.page.evaluate("window.__sameDocument = 'alice'")
    note = unique("Truck KCC 789C is back")

    with bob.page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/s/nairobi/notes")
    ) as posted:
        bob.post_note(note)
    assert posted.value.request.headers.get("hx-request") == "true", "not an htmx post"
    assert posted.value.status == 200

    expect(alice.line(note)).to_have_count(1, timeout=2000)
    expect(alice.line(note)).to_contain_text("Bob Wilson")
    expect(bob.line(note)).to_have_count(1, timeout=2000)
    expect(bob.note_field).to_have_value("")
    # The echo of bob's own action has arrived by now; nothing doubles after it either.
    bob.page.wait_for_timeout(1000)
    expect(bob.line(note)).to_have_count(1)
    expect(alice.line(note)).to_have_count(1)
    ids = bob.activity_lines.evaluate_all("(lines) => lines.map((l) => l.id)")
    assert len(ids) == len(set(ids)), f"duplicate activity lines in bob's page: {ids}"
    assert alice.page.evaluate("window.__sameDocument") == "alice", "alice's page reloaded"

    homes.assert_clean()


# --- 3. what someone is typing survives an update -------------------------------------------


def test_an_update_does_not_wipe_the_field_being_typed_in(homes: HomeFactory) -> None:
    alice = homes("alice")
    bob = homes("bob")
    expect(alice.status).to_have_text("Live", timeout=5000)
    expect(bob.status).to_have_text("Live", timeout=5000)

    alice.note_field.click()
    alice.note_field.press_sequentially("half a sentence")
    note = unique("Gate 2 is open")
    bob.post_note(note)

    expect(alice.line(note)).to_have_count(1, timeout=2000)
    expect(alice.note_field).to_have_value("half a sentence")
    expect(alice.note_field).to_be_focused()
    # and she can go on typing where she was
    alice.page.keyboard.type(" more")
    expect(alice.note_field).to_have_value("half a sentence more")

    homes.assert_clean()


# --- 4. the status pill across a server restart ----------------------------------------------

RESTART_NOISE = (
    "Failed to load resource: net::ERR_CONNECTION_REFUSED",  # reconnects, beats, polls
    "htmx: htmx:sse:error",  # htmx logs each failed reconnect
    "htmx: htmx:error: Failed to fetch",  # a poll while the server is away
    # A stream the exiting server ended as its socket closed; the page reconnects.
    "Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING",
)


def test_the_status_pill_follows_a_server_restart_and_the_stream_resumes(
    homes: HomeFactory, live_server: LiveServer
) -> None:
    server_down = {"now": False}

    def restart_noise(message: ConsoleMessage) -> bool:
        """While the server is away, failed reconnects and heartbeats are logged by Chromium
        and htmx. Only then, and only those."""
        return is_missing_favicon(message) or (
            server_down["now"] and message.text.startswith(RESTART_NOISE)
        )

    alice = homes("alice", ignore=restart_noise)
    bob = homes("bob", ignore=restart_noise)
    expect(alice.status).to_have_text("Live", timeout=5000)
    expect(alice.status).to_have_attribute("data-state", "live")
    expect(bob.status).to_have_text("Live", timeout=5000)
    alice.page.evaluate("window.__sameDocument = 'alice'")
    alice.record_pill()

    server_down["now"] = True
    started = time.monotonic()
    live_server.restart()
    restarted_in = time.monotonic() - started

    expect(alice.status).to_have_text("Live", timeout=15000)
    history = alice.pill_history()
    assert "reconnecting" in history, f"pill went {history} (restart took {restarted_in:.1f} s)"
    assert history[0] == "live" and history[-1] == "live", history
    expect(bob.status).to_have_text("Live", timeout=15000)

    # The stream resumed (a resync: the in-process broker restarted with the server).
    note = unique("After the restart")
    bob.post_note(note)
    expect(alice.line(note)).to_have_count(1, timeout=2000)
    expect(bob.line(note)).to_have_count(1, timeout=2000)
    assert alice.page.evaluate("window.__sameDocument") == "alice", "alice's page reloaded"
    server_down["now"] = False

    homes.assert_clean()


def test_the_page_goes_live_even_when_the_sse_extension_arrives_late(
    homes: HomeFactory,
) -> None:
    """Scripts load in any order over a slow network: htmx must not start before its
    hx-sse extension is registered, or the page never opens its stream."""

    def slow_extension(page: Page) -> None:
        def late(route: Route) -> None:
            time.sleep(0.3)
            route.continue_()

        page.route(re.compile(r"/static/vendor/ext/hx-sse-[\d.]+\.js$"), late)

    alice = homes("alice", before=slow_extension)
    expect(alice.status).to_have_text("Live", timeout=5000)
    expect(alice.avatar(ALICE)).to_be_visible(timeout=3000)  # she joined through the stream
    homes.assert_clean()


def test_a_boosted_navigation_rewires_the_live_page(homes: HomeFactory) -> None:
    """A boosted link swaps in a new body (new #live, pill, #toasts) with no page load:
    the new stream's state must show, and heartbeats must move to the new connection."""
    alice = homes("alice")
    expect(alice.status).to_have_text("Live", timeout=5000)
    alice.page.evaluate("window.__sameDocument = 'alice'")
    old_beat = alice.page.locator("#live").get_attribute("data-beat-url")

    with alice.page.expect_response(lambda r: r.request.headers.get("hx-boosted") == "true"):
        alice.page.locator("nav.areas").get_by_role("link", name="Home").click()
    # The response arrives before htmx has swapped the body in: wait for the new #live.
    expect(alice.page.locator("#live")).not_to_have_attribute("data-beat-url", old_beat or "")
    new_beat = alice.page.locator("#live").get_attribute("data-beat-url")
    assert new_beat and new_beat != old_beat
    expect(alice.status).to_have_text("Live", timeout=5000)
    assert alice.page.evaluate("window.__sameDocument") == "alice", "not a boosted swap"
    # The swapped-in page's <noscript> status frame (for pages without JavaScript) is not
    # loaded into a page that has it: it would refresh itself, hidden, every 15 s.
    expect(alice.live_frame).to_have_count(0)
    assert len(alice.page.frames) == 1, [f.url for f in alice.page.frames]

    # The next heartbeat is for the connection on screen, not the one swapped out.
    with alice.page.expect_request(lambda r: "/live/beat" in r.url, timeout=7000) as beat:
        pass
    assert beat.value.url.endswith(new_beat), f"beat {beat.value.url}, page has {new_beat}"
    homes.assert_clean()


# --- 5. the edit lock, live ----------------------------------------------------------------


def test_the_notice_lock_shows_live_and_blocks_a_second_editor(homes: HomeFactory) -> None:
    alice = homes("alice")
    bob = homes("bob")
    expect(bob.status).to_have_text("Live", timeout=5000)
    expect(bob.lock_badge).to_have_count(0)
    bob.page.evaluate("window.__sameDocument = 'bob'")

    # "Edit notice" is a form post: it takes the lock, and the editor is alice's.
    editor = NoticeEditor(alice.page).open_from(alice)
    expect(editor.save_button).to_be_enabled()
    expect(editor.text).to_be_editable()
    expect(bob.lock_badge).to_have_text("Being edited by Alice Wanjiru", timeout=2000)
    expect(bob.edit_notice_button).to_have_count(0)
    expect(bob.open_notice_link).to_be_visible()

    editor.cancel_button.click()
    expect(alice.notice).to_be_visible()
    expect_location(alice.page, NAIROBI_HOME)
    expect(bob.lock_badge).to_have_count(0, timeout=2000)
    expect(bob.edit_notice_button).to_be_visible()
    assert bob.page.evaluate("window.__sameDocument") == "bob", "bob's page reloaded"

    # While alice holds the lock, bob can read the notice but not save it.
    editor.open_from(alice)
    expect(bob.lock_badge).to_have_text("Being edited by Alice Wanjiru", timeout=2000)
    bob.open_notice_link.click()  # a GET: looking never takes the lock
    expect_location(bob.page, re.compile(r"/s/nairobi/notice$"))
    bobs_view = NoticeEditor(bob.page)
    bobs_view.expect_state("held")
    expect(bobs_view.lock_state).to_have_text(
        re.compile(r"^Being edited by Alice Wanjiru until \d{1,2}:\d{2}:\d{2}$")
    )
    expect(bobs_view.held_note).to_be_visible()
    expect(bobs_view.save_button).to_be_disabled()
    expect(bobs_view.text).to_be_disabled()
    expect(bobs_view.take_over_button(ALICE)).to_have_count(0)  # bob is no manager
    expect(alice.page.locator("#editor")).to_have_attribute("data-lock-state", "mine")

    # Tidy up: bob goes back, alice lets go.
    bobs_view.back_button.click()
    expect(bob.notice).to_be_visible()
    expect_location(bob.page, NAIROBI_HOME)
    expect(bob.lock_badge).to_have_text("Being edited by Alice Wanjiru")
    editor.cancel_button.click()
    expect(bob.lock_badge).to_have_count(0, timeout=2000)

    homes.assert_clean()


# --- 6. without JavaScript -------------------------------------------------------------------


def test_without_javascript_the_home_renders_refreshes_and_takes_plain_posts(
    homes: HomeFactory, no_js_page: Page, base_url: str
) -> None:
    bob = homes("bob")  # with JS: a viewer alice should see, and who sees her changes
    expect(bob.status).to_have_text("Live", timeout=5000)

    page = no_js_page
    sign_in(page, base_url, "alice")
    expect(page).to_have_url(NAIROBI_HOME)
    home = SiteHome(page)

    # Presence and activity are in the HTML. The page never reloads itself (that would
    # lose what its user types): a small self-refreshing frame says whether it is behind.
    expect(home.avatar(BOB)).to_have_count(1)
    expect(home.presence_count).to_contain_text("here")
    expect(home.activity).to_be_visible()
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    expect(home.live_frame).to_have_count(1)
    assert "/s/nairobi/live/status?" in (home.live_frame.get_attribute("src") or "")
    expect(page.frame_locator("iframe.live-frame").locator("body")).to_have_text("Up to date")
    # The pill's words are for pages with scripts: without them it is not shown at all
    # (no empty grey blob beside the frame that speaks instead).
    expect(home.status).to_be_hidden()

    # A plain form post: Post/Redirect/Get back to the home page, with the note in the list.
    note = unique("Posted without JavaScript")
    with (
        page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/s/nairobi/notes")
        ) as posted,
        page.expect_navigation(),
    ):
        home.post_note(note)
    assert posted.value.status == 303
    assert posted.value.request.headers.get("hx-request") is None
    expect(page).to_have_url(NAIROBI_HOME)
    expect(home.line(note)).to_have_count(1)
    expect(home.line(note)).to_contain_text("Alice Wanjiru")
    expect(home.note_field).to_have_value("")
    expect(bob.line(note)).to_have_count(1, timeout=2000)  # and it went live for others

    # Edit and save the notice with plain form posts ("Edit notice" takes the lock).
    with page.expect_navigation():
        home.edit_notice_button.click()
    expect(page).to_have_url(re.compile(r"/s/nairobi/notice$"))
    editor = NoticeEditor(page)
    editor.expect_state("mine")
    expect(editor.save_button).to_be_enabled()
    expect(bob.lock_badge).to_have_text("Being edited by Alice Wanjiru", timeout=2000)
    text = unique("Forklift 3 is out of service")
    editor.text.fill(text)
    with page.expect_navigation():
        editor.save_button.click()
    expect(page).to_have_url(NAIROBI_HOME)
    expect(page.locator(".messages .alert")).to_have_text("Notice saved.")
    expect(home.notice.locator(".notice__text")).to_have_text(text)
    expect(home.notice).to_contain_text("Updated by Alice Wanjiru")
    expect(home.lock_badge).to_have_count(0)  # saving let go of the lock
    expect(bob.notice.locator(".notice__text")).to_have_text(text, timeout=2000)
    expect(bob.lock_badge).to_have_count(0, timeout=2000)

    homes.assert_clean()


# --- 7. polling when the stream cannot be held ---------------------------------------------


def test_without_the_stream_the_page_polls_and_still_gets_updates(homes: HomeFactory) -> None:
    bob = homes("bob")
    expect(bob.status).to_have_text("Live", timeout=5000)

    polls: list[tuple[float, int]] = []

    def block_the_stream(page: Page) -> None:
        page.route(STREAM_URL, lambda route: route.abort())

        def on_response(response: Response) -> None:
            if response.url.split("?")[0].endswith(POLL_PATH):
                polls.append((time.monotonic(), response.status))

        page.on("response", on_response)

    # The stream is blocked for alice's browser only; requests failing is the point here.
    alice = homes(
        "alice",
        before=block_the_stream,
        ignore=lambda m: (
            is_missing_favicon(m)
            or m.text.startswith(("Failed to load resource: net::ERR_FAILED", "htmx: htmx:error"))
        ),
    )
    # bob posts while alice's page is still failing to open its stream: the note can only
    # reach her through a poll.
    note = unique("Seen by polling")
    posted_at = time.monotonic()
    bob.post_note(note)
    expect(bob.line(note)).to_have_count(1, timeout=2000)
    expect(alice.line(note)).to_have_count(0)

    # After repeated failures the page polls, and says so.
    expect(alice.status).to_have_text("Polling", timeout=10000)
    expect(alice.status).to_have_attribute("data-state", "polling")
    expect(alice.line(note)).to_have_count(1, timeout=10000)
    arrived_in = time.monotonic() - posted_at
    assert arrived_in < 10, f"the note took {arrived_in:.1f} s; polls: {polls}"
    assert polls and polls[0][1] == 200, f"the first poll brought the change: {polls}"
    expect(alice.toasts.locator(".toast--error")).to_have_count(0)  # the pill says it

    # Nothing changes after that: the next poll answers 204 (the page's cursor moved on).
    with alice.page.expect_response(
        lambda r: r.url.split("?")[0].endswith(POLL_PATH), timeout=POLL_EVERY + 2000
    ) as next_poll:
        pass
    assert next_poll.value.status == 204, f"polls: {polls}"
    expect(alice.line(note)).to_have_count(1)
    expect(alice.status).to_have_text("Polling")

    homes.assert_clean()


# --- screenshots for a human ----------------------------------------------------------------


def test_screenshots_of_the_live_home_on_a_tablet(homes: HomeFactory, output_path: str) -> None:
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    alice = homes("alice", **TABLET)
    wait_until_alone(alice)
    bob = homes("bob", **TABLET)
    expect(alice.presence_count).to_have_text("2 here", timeout=3000)
    expect(alice.toast("Bob Wilson joined")).to_be_visible(timeout=3000)
    expect(alice.status).to_have_text("Live", timeout=5000)
    alice.page.screenshot(path=str(shots / "live-home-with-bob-tablet.png"))
    alice.page.screenshot(path=str(shots / "live-home-with-bob-tablet-full.png"), full_page=True)

    NoticeEditor(bob.page).open_from(bob)
    expect(alice.lock_badge).to_be_visible(timeout=2000)
    alice.note_field.fill(unique("Half-typed"))
    alice.page.screenshot(path=str(shots / "live-home-notice-locked-tablet.png"))
    bob.page.screenshot(path=str(shots / "notice-editor-tablet.png"))
    NoticeEditor(bob.page).cancel_button.click()
    expect(alice.lock_badge).to_have_count(0, timeout=2000)

    overflow = alice.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the live home scrolls sideways by {overflow}px on a tablet"
    homes.assert_clean()
