"""The workshop's wall screen (`…/wall`): the board in large type with no controls, live
for days on its one stream, and honest when it is not: "Offline since 10:42" while the
server cannot be reached, then current again without a reload."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import ConsoleMessage, expect

from tests.browser.conftest import LiveServer, is_missing_favicon
from tests.browser.test_boards_drag import TABLET, Board
from tests.browser.test_live_site_home import RESTART_NOISE


@pytest.fixture
def board(base_url: str) -> Iterator[Board]:
    made = Board(base_url, cards=3)
    yield made
    made.http.post(f"{made.url}/archive", {"archived": "yes"})
    made.http.close()


def test_the_wall_says_since_when_it_is_offline_and_catches_up(
    new_user_page, board: Board, live_server: LiveServer
) -> None:
    server_down = {"now": False}
    problems: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        noise = is_missing_favicon(message) or (
            server_down["now"] and message.text.startswith(RESTART_NOISE)
        )
        if message.type == "error" and not noise:
            problems.append(message.text)

    wall = new_user_page("bob", viewport={"width": 1920, "height": 1080})
    wall.on("console", listen)
    wall.goto(f"{board.url}/wall")
    status = wall.locator("#live-status")
    expect(status).to_have_text("Live")
    # Large type and no controls: nothing to tap on a TV.
    size = wall.locator(".ticket__title").first.evaluate("e => getComputedStyle(e).fontSize")
    assert float(size.removesuffix("px")) >= 28, size
    expect(wall.locator(".ticket__actions").first).to_be_hidden()
    expect(wall.locator(".ticket__handle").first).to_be_hidden()
    expect(wall.get_by_role("button")).to_have_count(0)
    wall.evaluate("window.__sameDocument = 'wall'")

    server_down["now"] = True
    live_server.stop()
    expect(status).to_have_text(re.compile(r"^Offline since \d\d:\d\d"), timeout=15000)
    expect(status).to_have_attribute("data-state", "reconnecting")
    live_server.start()
    expect(status).to_have_text("Live", timeout=20000)
    server_down["now"] = False

    # A change made now reaches the wall on its new stream, with no reload.
    mover = Board.__new__(Board)  # the same board, a fresh HTTP session (the server restarted)
    mover.http, mover.url = type(board.http)(live_server.url, "admin"), board.url
    card = board.cards[0]
    version = mover.http.get(board.url).select_one(f"#ticket-{card}")["data-version"]
    moved = mover.http.post(
        f"{board.url}/tickets/{card}/move",
        {"column": board.columns[3], "position": "top", "version": version},
    )
    assert moved.status_code == 303, moved.text
    expect(wall.locator(f"#cards-{board.columns[3]} #ticket-{card}")).to_be_visible(timeout=2000)
    assert wall.evaluate("window.__sameDocument") == "wall", "the wall reloaded"
    mover.http.close()
    assert not problems, problems


def test_a_tablet_shows_the_wall_link_and_the_wall_follows_moves(new_user_page, board: Board):
    tablet = new_user_page("alice", **TABLET)
    tablet.goto(board.url)
    tablet.get_by_role("link", name="Wall screen").click()
    expect(tablet).to_have_url(re.compile(r"/wall$"))
    expect(tablet.locator("#live-status")).to_have_text("Live")
    expect(tablet.locator(".ticket")).to_have_count(3)
