"""Drag and drop on a tablet (seed 002; issue "Live boards" §3): a touch drag by the
handle moves a card for everyone, a vertical swipe on a card's body moves nothing, the
handle's arrow keys move a card, and while one person drags, the others see who is moving
which card — gone when the drag ends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageProblems, SiteClient

TABLET: dict[str, Any] = {"viewport": {"width": 1024, "height": 768}, "has_touch": True}
LIVE = 1000  # ms: a move by one appears on the others' screens within 1 s


class Board:
    """A board of the test's own with cards in its first column, made over plain HTTP."""

    def __init__(self, base_url: str, cards: int) -> None:
        self.http = SiteClient(base_url, "admin")
        self.name = f"Drag {uuid.uuid4().hex[:6]}"
        made = self.http.post("/s/nairobi/boards", {"name": self.name, "kind": "tickets"})
        assert made.status_code == 303, made.text
        self.url = made.headers["location"]
        page = self.http.get(self.url)
        self.columns = [int(el["data-column"]) for el in page.select(".column__cards")]
        self.cards: list[int] = []
        for i in range(cards):
            added = self.http.post(
                f"{self.url}/tickets", {"title": f"Card {i + 1}", "column": self.columns[0]}
            )
            assert added.status_code == 303, added.text
            self.cards.append(int(added.headers["location"].rsplit("#ticket-", 1)[1]))

    def order(self, column: int) -> list[int]:
        page = self.http.get(self.url)
        return [int(li["id"].split("-")[1]) for li in page.select(f"#cards-{column} > .ticket")]


@pytest.fixture
def board(base_url: str) -> Iterator[Board]:
    made = Board(base_url, cards=6)
    yield made
    made.http.post(f"{made.url}/archive", {"archived": "yes"})  # out of the other tests' way
    made.http.close()


def open_board(new_user_page, who: str, board: Board) -> tuple[Page, PageProblems]:
    page = new_user_page(who, **TABLET)
    problems = PageProblems.watch(page)
    page.goto(board.url)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    return page, problems


def ids_in(page: Page, column: int) -> list[int]:
    return [
        int(i.split("-")[1])
        for i in page.locator(f"#cards-{column} > .ticket").evaluate_all(
            "els => els.map(e => e.id)"
        )
    ]


def touch_drag(page: Page, start: dict, end: dict, steps: int = 12) -> None:
    """A finger down at `start`, moved in steps to `end`, lifted: real touch events."""
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, point: dict | None) -> None:
        points = [{"x": point["x"], "y": point["y"]}] if point else []
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", start)
    page.wait_for_timeout(50)
    for i in range(1, steps + 1):
        touch("touchMove", {k: start[k] + (end[k] - start[k]) * i / steps for k in ("x", "y")})
        page.wait_for_timeout(30)
    touch("touchEnd", None)
    cdp.detach()


def centre(page: Page, selector: str) -> dict:
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2}


def test_a_touch_drag_by_the_handle_moves_the_card_for_everyone(new_user_page, board):
    alice, alice_problems = open_board(new_user_page, "alice", board)
    bob, bob_problems = open_board(new_user_page, "bob", board)
    first, target = board.columns[0], board.columns[1]
    card = board.cards[2]
    handle = f"#ticket-{card} .ticket__handle"
    size = alice.locator(handle).bounding_box()
    assert size and size["width"] >= 48 and size["height"] >= 48, size

    touch_drag(alice, centre(alice, handle), centre(alice, f"#cards-{target}"))

    expect(bob.locator(f"#cards-{target} #ticket-{card}")).to_be_visible(timeout=LIVE)
    expect(alice.locator(f"#cards-{target} #ticket-{card}")).to_be_visible()
    assert board.order(target) == [card]
    assert card not in board.order(first)
    expect(alice.locator("#toasts")).to_contain_text("Moved #3 to In progress")
    alice_problems.assert_clean()
    bob_problems.assert_clean()


def test_a_swipe_on_a_cards_body_scrolls_and_moves_nothing(new_user_page, board):
    alice, problems = open_board(new_user_page, "alice", board)
    first = board.columns[0]
    before = ids_in(alice, first)
    card = board.cards[1]
    body = centre(alice, f"#ticket-{card} .ticket__facts")
    touch_drag(alice, body, {"x": body["x"], "y": body["y"] - 250})
    alice.wait_for_timeout(500)
    assert ids_in(alice, first) == before
    assert board.order(first) == before
    problems.assert_clean()


def test_the_handles_arrow_keys_move_a_card_and_keep_the_focus(new_user_page, board):
    alice, problems = open_board(new_user_page, "alice", board)
    first, second = board.columns[0], board.columns[1]
    card = board.cards[0]
    alice.locator(f"#ticket-{card} .ticket__handle").focus()
    alice.keyboard.press("ArrowDown")
    expect(alice.locator(f"#cards-{first} > .ticket").nth(1)).to_have_id(f"ticket-{card}")
    assert board.order(first)[1] == card
    expect(alice.locator(f"#ticket-{card} .ticket__handle")).to_be_focused()
    alice.keyboard.press("ArrowRight")
    expect(alice.locator(f"#cards-{second} > .ticket").first).to_have_id(f"ticket-{card}")
    assert board.order(second) == [card]
    problems.assert_clean()


def test_others_see_who_is_moving_a_card_until_the_drag_ends(new_user_page, board):
    alice, _ = open_board(new_user_page, "alice", board)
    bob, _ = open_board(new_user_page, "bob", board)
    card = board.cards[0]
    handle = alice.locator(f"#ticket-{card} .ticket__handle")
    box = handle.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    alice.mouse.move(x, y)
    alice.mouse.down()
    alice.mouse.move(x + 5, y + 40, steps=5)  # a drag in progress
    indicator = bob.locator(f"#ticket-{card} .indicator")
    expect(indicator).to_have_text("Alice Wanjiru is moving #1", timeout=LIVE)
    expect(alice.locator(f"#ticket-{card} .indicator")).to_be_hidden()  # not to herself
    alice.mouse.move(x, y, steps=5)
    alice.mouse.up()  # dropped where it was: nothing moves, and the note goes
    expect(indicator).to_have_count(0, timeout=LIVE)
    assert board.order(board.columns[0])[0] == card


def test_the_note_of_a_dragger_who_vanished_goes_by_itself(new_user_page, board, base_url):
    """Bob's tablet lost its Wi-Fi mid-drag: no "end" ever comes, no renewal either."""
    alice, problems = open_board(new_user_page, "alice", board)
    bob = SiteClient(base_url, "bob")
    card = board.cards[0]
    started = bob.post(f"{board.url}/tickets/{card}/moving", {"state": "start"})
    assert started.status_code == 204
    indicator = alice.locator(f"#ticket-{card} .indicator")
    expect(indicator).to_have_text("Bob Wilson is moving #1", timeout=LIVE)
    expect(indicator).to_have_count(0, timeout=11000)  # its 8 s lapse, checked each second
    bob.close()
    problems.assert_clean()
