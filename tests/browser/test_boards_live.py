"""Ticket boards in real browsers (seed 002's manual test script, SPEC §5.2), two users side
by side on 1024x768 touch tablets, and the same moves and edits with JavaScript off.

Seed 002 asks: open two windows, sign in as different users, go to the same board; a move
in one appears in the other (within 1 s), both see who is there, "X is editing" shows while
one edits a card, and closing one window lowers the count the other sees. Its conflict rule
("see if someone else is editing", "no silent jump back") is tested with a move made from
a screen that had not caught up.

Every test works on a board of its own (`board`: made by alice over plain HTTP, its cards
put in place before any page opens), archived afterwards, so no test depends on another's
moves and nothing here changes the demo's "Ops tickets".
"""

from __future__ import annotations

import random
import re
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.conftest import PageProblems, SiteClient, is_missing_favicon, sign_in
from tests.browser.pages import (
    ALICE,
    BOB,
    LIVE,
    BoardPage,
    BoardUsers,
)

SITE = "nairobi"
TO_DO, DOING, REVIEW, DONE = "To do", "In progress", "Review", "Done"
MOVE_SEEN = 1000  # ms: seed 002, "ticket movements appear within 1 second"
# A closed window's stream ends at once; presence keeps its user for a 1.5 s grace (a
# reload is not a leave), then the next sweep reports the leave. SPEC: within 2 s; the
# deadline leaves room for a loaded machine, and stays well under the 15 s heartbeat TTL
# that a window which vanished without closing would need.
LEFT_WITHIN = 5.0  # s
NOT_MOVED = re.compile(r"^Not moved: .*The board now shows where it is\.$")


# --- a board of the test's own, over plain HTTP --------------------------------------------


@dataclass
class ScratchBoard:
    """A board made for one test: its path, columns (title -> id), cards (title -> id)."""

    path: str
    columns: dict[str, int]
    cards: dict[str, int]
    labels: dict[int, str] = field(default_factory=dict)  # card id -> "#3"

    def ticket_path(self, card: int) -> str:
        return f"{self.path}/tickets/{card}"


class Boards:
    """`board({TO_DO: ["Gate sensor", …], DOING: […]})` -> a fresh ticket board at Nairobi with
    those cards (top to bottom), made by alice; `tidy()` archives every board it made."""

    def __init__(self, base_url: str) -> None:
        self.client = SiteClient(base_url, "alice")
        self.made: list[str] = []

    def __call__(self, cards: dict[str, list[str]]) -> ScratchBoard:
        name = "Live " + "".join(random.choices(string.ascii_lowercase, k=8))
        made = self.client.post(f"/s/{SITE}/boards", {"name": name, "kind": "tickets"})
        assert made.status_code == 303, f"creating the board: {made.status_code}"
        path = urlsplit(made.headers["location"]).path.rstrip("/")
        self.made.append(path)
        page = self.client.get(path)
        columns = {}
        for section in page.select("section.column[id^=column-]"):
            heading = section.select_one("h2")
            assert heading is not None
            title = str(heading.contents[0]).strip()
            columns[title] = int(str(section["id"]).removeprefix("column-"))
        assert set(columns) == {TO_DO, DOING, REVIEW, DONE}, columns
        ids = {}
        for column, titles in cards.items():
            for title in titles:
                answer = self.client.post(
                    f"{path}/tickets", {"title": title, "column": columns[column]}
                )
                assert answer.status_code == 303, f"creating {title!r}: {answer.status_code}"
                ids[title] = int(answer.headers["location"].rsplit("#ticket-", 1)[1])
        labels = {
            int(str(li["id"]).removeprefix("ticket-")): f"#{li['data-number']}"
            for li in self.client.get(path).select("li[id^=ticket-]")
        }
        return ScratchBoard(path, columns, ids, labels)

    def tidy(self) -> None:
        for path in self.made:
            self.client.post(f"{path}/archive", {"archived": "yes"})
        self.client.close()


@pytest.fixture
def board(base_url: str) -> Iterator[Boards]:
    boards = Boards(base_url)
    try:
        yield boards
    finally:
        boards.tidy()


@pytest.fixture
def viewers(new_context: Callable[..., Any], base_url: str) -> BoardUsers:
    return BoardUsers(new_context, base_url)


def conflict_noise(message: ConsoleMessage) -> bool:
    """Chromium logs every 4xx answer to a fetch; a refused (409) stale move is expected."""
    return is_missing_favicon(message) or "status of 409" in message.text


# --- 1. two users side by side: moves, presence, "is editing", leaving -------------------


def test_two_users_see_each_others_moves_presence_and_editing(
    viewers: BoardUsers, board: Boards
) -> None:
    b = board({TO_DO: ["Gate sensor", "Forklift battery", "Dock light"], DOING: ["Scanner cable"]})
    gate, battery, dock, scanner = (
        b.cards[t] for t in ("Gate sensor", "Forklift battery", "Dock light", "Scanner cable")
    )
    todo, doing, done = b.columns[TO_DO], b.columns[DOING], b.columns[DONE]
    alice, bob = viewers("alice", b.path), viewers("bob", b.path)

    # both are there, and both see it
    for me in (alice, bob):
        expect(me.presence_count).to_have_text("2 here", timeout=LIVE)
        expect(me.avatar(ALICE)).to_have_count(1)
        expect(me.avatar(BOB)).to_have_count(1)
        me.mark()

    # alice moves "Gate sensor" to the top of In progress: on bob's screen within 1 s
    started = time.monotonic()
    assert alice.move(gate, DOING, "Top") == 204
    expect(bob.card_in(doing, gate)).to_be_visible(timeout=MOVE_SEEN)
    seen_after = time.monotonic() - started
    expect(bob.card_in(todo, gate)).to_have_count(0)
    expect(bob.cards_in(doing)).to_have_count(2)
    assert bob.order_in(doing) == [gate, scanner]
    assert bob.order_in(todo) == [battery, dock]
    expect(alice.card_in(doing, gate)).to_be_visible()
    print(f"alice's move seen by bob {seen_after * 1000:.0f} ms after her tap")

    # bob moves the same card on, from what his screen now shows (the version it came
    # with): after Scanner cable, then Forklift battery to Done; alice sees each within 1 s
    assert bob.move(gate, DOING, f"After {b.labels[scanner]}") == 204, (
        "bob's move of a card that had just arrived on his screen was refused"
    )
    expect(alice.cards_in(doing).nth(1)).to_have_id(f"ticket-{gate}", timeout=MOVE_SEEN)
    assert alice.order_in(doing) == [scanner, gate]
    assert bob.move(battery, DONE, "Top") == 204
    expect(alice.card_in(done, battery)).to_be_visible(timeout=MOVE_SEEN)
    expect(alice.card_in(todo, battery)).to_have_count(0)

    # alice opens Dock light's editor: bob sees "Alice Wanjiru is editing #3" on the card
    label = b.labels[dock]
    editor = alice.open_editor(dock)
    expect(editor.title).to_have_value("Dock light")
    expect(bob.editing_badge(dock)).to_have_text(f"{ALICE} is editing {label}", timeout=LIVE)
    expect(bob.editing_badge(gate)).to_have_count(0)  # only that card
    # bob can look, not take it: his card's "Edit" is a link to the read-only editor now
    expect(bob.card(dock).get_by_role("link", name="Edit", exact=True)).to_be_visible()
    expect(bob.card(dock).get_by_role("button", name=re.compile(r"^Edit\b"))).to_have_count(0)
    # the editor is a page of the board: alice has not left
    expect(bob.presence_count).to_have_text("2 here")
    # … and she leaves it by Cancel: the badge goes
    editor.cancel_button.click()
    alice.expect_here()
    alice.wait_live()
    expect(bob.editing_badge(dock)).to_have_count(0, timeout=LIVE)
    # again, left by its "← The board" link (the page lets go as it leaves)
    editor = alice.open_editor(dock)
    expect(bob.editing_badge(dock)).to_have_text(f"{ALICE} is editing {label}", timeout=LIVE)
    editor.board_link.click()
    alice.expect_here()
    alice.wait_live()
    expect(bob.editing_badge(dock)).to_have_count(0, timeout=LIVE)
    expect(alice.editing_badge(dock)).to_have_count(0)
    expect(bob.presence_count).to_have_text("2 here")
    assert bob.still_marked(), "bob's page was reloaded"

    # alice closes her window: bob's count goes down
    alice.page.context.close()
    started = time.monotonic()
    expect(bob.presence_count).to_have_text("1 here", timeout=20_000)
    took = time.monotonic() - started
    print(f"alice's leave reached bob's presence list after {took:.1f} s")
    assert took < LEFT_WITHIN, f"a closed window left the presence list after {took:.1f} s"
    expect(bob.avatar(ALICE)).to_have_count(0)
    expect(bob.avatar(BOB)).to_have_count(1)
    assert bob.still_marked(), "bob's page was reloaded"
    viewers.assert_clean()


# --- 2. an edit reaches the other's board -----------------------------------------------


def test_an_edited_title_appears_on_the_other_board(viewers: BoardUsers, board: Boards) -> None:
    b = board({TO_DO: ["Loading bay door"], REVIEW: ["Label printer"]})
    door = b.cards["Loading bay door"]
    alice, bob = viewers("alice", b.path), viewers("bob", b.path)
    bob.mark()

    editor = alice.open_editor(door)
    expect(bob.editing_badge(door)).to_be_visible(timeout=LIVE)
    editor.save(title="Loading bay door: new hinge")
    alice.expect_here()
    expect(alice.card_title(door)).to_have_text(f"{b.labels[door]} Loading bay door: new hinge")

    expect(bob.card_title(door)).to_have_text(
        f"{b.labels[door]} Loading bay door: new hinge", timeout=LIVE
    )
    expect(bob.editing_badge(door)).to_have_count(0, timeout=LIVE)  # the save let go
    expect(bob.card_in(b.columns[TO_DO], door)).to_be_visible()  # edited in place
    assert bob.still_marked(), "bob's page was reloaded"
    viewers.assert_clean()


# --- 3. a comment reaches the other's open ticket page -------------------------------------


def test_a_comment_appears_on_the_others_open_ticket_page(
    viewers: BoardUsers, board: Boards
) -> None:
    b = board({DOING: ["Cold room alarm"]})
    alarm = b.cards["Cold room alarm"]
    alice, bob = viewers("alice", b.path), viewers("bob", b.path)
    mine, theirs = alice.open_ticket(alarm).wait_live(), bob.open_ticket(alarm).wait_live()
    expect(theirs.comments).to_have_count(0)
    expect(theirs.comment_count).to_have_text("0 comments")
    bob.mark()

    text = "Technician booked for 14:00 — " + "".join(random.choices(string.digits, k=6))
    mine.comment(text)
    expect(mine.comments.filter(has_text=text)).to_have_count(1)

    expect(theirs.comments.filter(has_text=text)).to_have_count(1, timeout=LIVE)
    expect(theirs.comments).to_have_count(1)
    expect(theirs.comments.first).to_contain_text(ALICE)
    expect(theirs.comment_count).to_have_text("1 comment", timeout=LIVE)
    assert bob.still_marked(), "bob's page was reloaded"
    # and the one who wrote it sees it once, not twice (her answer and the broadcast)
    expect(mine.comments).to_have_count(1)
    viewers.assert_clean()


def test_someone_typing_is_shown_while_they_type_and_gone_when_they_leave(
    viewers: BoardUsers, board: Boards
) -> None:
    """Leaving the comment box, or the page by its back button or a closed tab, takes
    "Alice is typing…" away at once, not after the idle timer or the indicator's lapse."""
    b = board({DOING: ["Dock door sensor"]})
    sensor = b.cards["Dock door sensor"]
    alice, bob = viewers("alice", b.path), viewers("bob", b.path)
    mine, theirs = alice.open_ticket(sensor).wait_live(), bob.open_ticket(sensor).wait_live()
    typing = bob.page.locator(f"#typing-{sensor}")

    mine.comment_field.press_sequentially("Parts due <b>Monday</b>", delay=20)
    expect(typing).to_contain_text(f"{ALICE} is typing", timeout=LIVE)
    alice.page.go_back()
    expect(typing).not_to_contain_text("is typing", timeout=LIVE)

    mine = alice.open_ticket(sensor).wait_live()
    mine.comment_field.press_sequentially("Again", delay=20)
    expect(typing).to_contain_text(f"{ALICE} is typing", timeout=LIVE)
    alice.page.close()
    expect(typing).not_to_contain_text("is typing", timeout=LIVE)
    assert theirs.comments.count() == 0
    viewers.assert_clean()


# --- 4. the same script without JavaScript ------------------------------------------------


def test_moves_edits_adds_and_deletes_without_javascript(
    no_js_page: Page, base_url: str, board: Boards
) -> None:
    b = board({TO_DO: ["Gate sensor", "Forklift battery"], DOING: ["Scanner cable"]})
    gate, battery = b.cards["Gate sensor"], b.cards["Forklift battery"]
    scanner = b.cards["Scanner cable"]
    page = no_js_page
    problems = PageProblems.watch(page, ignore=is_missing_favicon)
    sign_in(page, base_url, "alice", next_path=b.path)
    alice = BoardPage(page, b.path, problems)
    alice.expect_here()
    expect(alice.live_frame).to_have_count(1)  # the no-JS "is this page up to date?" frame

    # a move through "Move to…": back to the board with a message, the card in its column
    assert alice.move(gate, DOING, "Top") == 303
    alice.expect_here()
    expect(alice.messages).to_have_text(f"Moved {b.labels[gate]} to {DOING}.")
    expect(alice.card_in(b.columns[DOING], gate)).to_be_visible()
    assert alice.order_in(b.columns[DOING]) == [gate, scanner]
    assert alice.order_in(b.columns[TO_DO]) == [battery]
    # and within a column: after a card
    assert alice.move(gate, DOING, f"After {b.labels[scanner]}") == 303
    expect(alice.messages).to_have_text(f"Moved {b.labels[gate]} to {DOING}.")
    assert alice.order_in(b.columns[DOING]) == [scanner, gate]

    # a card's title through its editor
    editor = alice.open_editor(battery)
    expect(editor.title).to_have_value("Forklift battery")
    editor.save(title="Forklift battery (spare charger)")
    alice.expect_here()
    expect(alice.messages).to_have_text(
        f"Saved {b.labels[battery]} Forklift battery (spare charger)."
    )
    expect(alice.card_title(battery)).to_have_text(
        f"{b.labels[battery]} Forklift battery (spare charger)"
    )
    expect(alice.editing_badge(battery)).to_have_count(0)  # the save let go of the lock

    # a new ticket
    alice.add_ticket("Replace printer toner", column=REVIEW)
    alice.expect_here()
    expect(alice.messages).to_have_text(re.compile(r"^Created #\d+ Replace printer toner\.$"))
    toner = alice.cards_in(b.columns[REVIEW]).filter(has_text="Replace printer toner")
    expect(toner).to_have_count(1)
    toner_id = int((toner.get_attribute("id") or "").removeprefix("ticket-"))

    # and it goes again, through its confirmation page
    delete = alice.open_delete(toner_id)
    expect(page.get_by_role("link", name="Keep it")).to_be_visible()
    delete.click()
    alice.expect_here()
    expect(alice.messages).to_have_text(re.compile(r"^Deleted #\d+ Replace printer toner\.$"))
    expect(alice.card(toner_id)).to_have_count(0)
    expect(alice.column(b.columns[REVIEW])).to_contain_text("No cards.")
    problems.assert_clean()


# --- 5. a move from a screen that had not caught up -------------------------------------


def test_a_stale_move_without_javascript_says_so_and_shows_the_board_as_it_is(
    viewers: BoardUsers, new_context: Callable[..., Any], base_url: str, board: Boards
) -> None:
    b = board({TO_DO: ["Gate sensor", "Dock light"]})
    gate, dock = b.cards["Gate sensor"], b.cards["Dock light"]
    alice = viewers("alice", b.path)
    page = new_context(java_script_enabled=False).new_page()
    problems = PageProblems.watch(page, ignore=conflict_noise)
    sign_in(page, base_url, "bob", next_path=b.path)
    bob = BoardPage(page, b.path, problems)
    bob.expect_here()
    expect(bob.card_in(b.columns[TO_DO], gate)).to_be_visible()  # what bob's page shows
    bob_heading = bob.page.get_by_role("heading", level=1).inner_text()

    # bob opens the card's "Move to…" page and picks Done; meanwhile alice moves it
    move_button = bob.choose_move(gate, DONE, "Top")
    assert alice.move(gate, REVIEW, "Top") == 204
    expect(alice.card_in(b.columns[REVIEW], gate)).to_be_visible()
    # bob's move, from the page he loaded before: refused, with the board as it is
    with bob.page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/tickets/{gate}/move")
    ) as answer:
        move_button.click()
    assert answer.value.status == 409
    # the answer is the board page itself (at the form's address, as a refused plain post is)
    expect(bob.page.get_by_role("heading", level=1)).to_have_text(bob_heading)
    expect(bob.columns).to_be_visible()
    expect(bob.alerts).to_have_text(NOT_MOVED)
    expect(bob.card_in(b.columns[REVIEW], gate)).to_be_visible()
    expect(bob.card_in(b.columns[DONE], gate)).to_have_count(0)
    expect(bob.card_in(b.columns[TO_DO], gate)).to_have_count(0)
    expect(bob.card(gate)).to_have_count(1)
    expect(bob.messages.filter(has_text="Moved")).to_have_count(0)
    # nothing happened on alice's screen either
    alice.page.wait_for_timeout(500)
    expect(alice.card_in(b.columns[REVIEW], gate)).to_be_visible()
    expect(alice.card_in(b.columns[DONE], gate)).to_have_count(0)

    # from the page it answered, his move goes through
    assert bob.move(gate, DONE, "Top") == 303
    expect(bob.messages).to_have_text(f"Moved {b.labels[gate]} to {DONE}.")
    expect(alice.card_in(b.columns[DONE], gate)).to_be_visible(timeout=MOVE_SEEN)
    expect(bob.card_in(b.columns[TO_DO], dock)).to_be_visible()
    viewers.assert_clean()
    problems.assert_clean()


def test_a_stale_move_from_a_screen_behind_its_stream_is_refused_not_jumped_back(
    viewers: BoardUsers, board: Boards
) -> None:
    b = board({TO_DO: ["Gate sensor"], REVIEW: ["Dock light"]})
    gate = b.cards["Gate sensor"]
    todo, doing, review, done = (b.columns[c] for c in (TO_DO, DOING, REVIEW, DONE))
    alice = viewers("alice", b.path)
    bob = viewers("bob", b.path, ignore=conflict_noise)
    bob.mark()

    # bob's stream falls behind (its messages wait): his screen still shows Gate sensor in
    # To do when alice moves it to Done
    bob.freeze()
    assert alice.move(gate, DONE, "Top") == 204
    bob.page.wait_for_timeout(500)
    expect(bob.card_in(todo, gate)).to_be_visible()  # still the old screen

    # he moves it to In progress from what he sees (the handle's arrow key, in the page):
    # refused, and told so
    assert bob.move_by_key(gate, "ArrowRight") == 409
    expect(bob.toast(NOT_MOVED)).to_be_visible()
    # the answer shows where the card is now, not where he wanted it
    expect(bob.card_in(done, gate)).to_be_visible()
    expect(bob.card_in(doing, gate)).to_have_count(0)
    bob.page.wait_for_timeout(300)  # the answer's swaps have settled
    shown = bob.columns_showing(gate)  # where his screen shows it before the stream catches up

    # once his stream catches up, the board is right and stays so
    bob.thaw()
    expect(bob.card_in(todo, gate)).to_have_count(0, timeout=LIVE)
    bob.page.wait_for_timeout(500)
    expect(bob.card_in(done, gate)).to_be_visible()
    expect(bob.card(gate)).to_have_count(1)
    expect(bob.card_in(review, b.cards["Dock light"])).to_be_visible()
    expect(alice.card_in(done, gate)).to_be_visible()
    expect(alice.card_in(doing, gate)).to_have_count(0)
    assert bob.still_marked(), "bob's page was reloaded"
    viewers.assert_clean()

    # "the board as it is now" from the refusal itself, not only once the stream catches up:
    # his screen must not show the card both where it is and where he last saw it
    names = {v: k for k, v in b.columns.items()}
    assert shown == [done], (
        "right after the refused move bob's screen showed Gate sensor in "
        f"{[names[c] for c in shown]} (the 409 answer redraws only the card's column now and "
        "the column he asked for, not the one his screen still showed it in)"
    )
