"""The dispatch status board in real browsers (seed 004) on 1024x768 touch tablets: a bulk
change by one dispatcher moves the cards on another's board within a second; a bulk change
with one item that may not move changes nothing and says which item and why; and the
same board without JavaScript (plain form posts, the results on the page).

Every test makes dispatches of its own at Nairobi over plain HTTP as admin (titles with a
token of their own), assigned to bob, and cancels what is still open afterwards.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PageProblems, SiteClient, describe, is_missing_favicon, sign_in
from tests.browser.pages import TABLET

BOARD = "/s/nairobi/dispatches"
SEEN = 1000  # ms: a change appears on the other screens within 1 s


def refusal_noise(message) -> bool:
    """Chromium logs a 409 answer to a fetch: a refused bulk change is the point."""
    return is_missing_favicon(message) or bool(re.search(r"status of 409 ", message.text))


class Dispatches:
    """Dispatches of the test's own, made and tidied by admin over plain HTTP."""

    def __init__(self, base_url: str) -> None:
        self.admin = SiteClient(base_url, "admin")
        self.token = uuid.uuid4().hex[:6]
        form = self.admin.get(f"{BOARD}/new")
        self.assets = {
            o.get_text(strip=True): o["value"] for o in form.select("#f-asset option") if o["value"]
        }
        self.people = {
            o.get_text(strip=True): o["value"]
            for o in form.select("#f-assignee option")
            if o["value"]
        }
        self.ids: list[int] = []

    def make(self, title: str, asset: str) -> int:
        value = next(v for label, v in self.assets.items() if label.startswith(asset))
        made = self.admin.post(
            BOARD,
            {"title": f"{title} {self.token}", "asset": value, "priority": "normal",
             "assignee": self.people["Bob Wilson"]},
        )  # fmt: skip
        assert made.status_code == 303, made.text[:2000]
        dispatch_id = int(made.headers["location"].rsplit("/", 1)[1])
        self.ids.append(dispatch_id)
        step = self.admin.post(f"{BOARD}/{dispatch_id}/step", {"to": "assigned", "version": "1"})
        assert step.status_code == 303, step.text[:2000]
        return dispatch_id

    def tidy(self) -> None:
        try:
            for dispatch_id in self.ids:
                page = self.admin.get(f"{BOARD}/{dispatch_id}")
                version = page.select_one("form.step--cancelled input[name=version]")
                if version is not None:
                    self.admin.post(
                        f"{BOARD}/{dispatch_id}/step",
                        {"to": "cancelled", "version": version["value"], "reason": "Test over"},
                    )
        finally:
            self.admin.close()


@pytest.fixture
def dispatches(base_url: str) -> Iterator[Dispatches]:
    made = Dispatches(base_url)
    yield made
    made.tidy()


class Tablets:
    def __init__(self, new_context: Callable[..., Any], base_url: str) -> None:
        self.new_context, self.base_url = new_context, base_url
        self.watched: list[tuple[str, PageProblems]] = []

    def board(self, username: str, **context: Any) -> Page:
        page = self.new_context(**{**TABLET, **context}).new_page()
        if context.get("java_script_enabled", True):
            self.watched.append((username, PageProblems.watch(page, ignore=refusal_noise)))
        sign_in(page, self.base_url, username, next_path=BOARD)
        if BOARD not in page.url:
            pytest.fail(f"{username} did not land on {BOARD}: {describe(page)}")
        if context.get("java_script_enabled", True):
            expect(page.locator("#live-status")).to_have_attribute(
                "data-state", "live", timeout=5000
            )
        return page

    def assert_clean(self) -> None:
        for username, problems in self.watched:
            try:
                problems.assert_clean()
            except AssertionError as exc:
                raise AssertionError(f"{username}'s page: {exc}") from None


@pytest.fixture
def tablets(new_context: Callable[..., Any], base_url: str) -> Tablets:
    return Tablets(new_context, base_url)


def tick(page: Page, *ids: int) -> None:
    for dispatch_id in ids:
        page.locator(f"#dispatch-{dispatch_id} .dcard__tick").tap()
        expect(page.locator(f"#dispatch-{dispatch_id} input[type=checkbox]")).to_be_checked()


def test_a_bulk_change_by_admin_moves_the_cards_on_alices_board(dispatches, tablets):
    one = dispatches.make("Flowers to Naivasha", "KCX 218T")
    two = dispatches.make("Documents to the airport", "KBZ 123A")
    alice, admin = tablets.board("alice"), tablets.board("admin")
    for dispatch_id in (one, two):
        expect(alice.locator(f"#cards-assigned #dispatch-{dispatch_id}")).to_be_visible()

    tick(admin, one, two)
    admin.select_option("#bulk-to", "in_progress")
    started = time.monotonic()
    admin.get_by_role("button", name="Apply to the ticked").tap()
    for dispatch_id in (one, two):
        expect(alice.locator(f"#cards-in_progress #dispatch-{dispatch_id}")).to_be_visible(
            timeout=SEEN
        )
    took = time.monotonic() - started
    for dispatch_id in (one, two):
        expect(alice.locator(f"#cards-assigned #dispatch-{dispatch_id}")).to_have_count(0)
    assigned = alice.locator("#cards-assigned li.dcard").count()
    expect(alice.locator('[data-count-of="cards-assigned"]')).to_have_text(str(assigned))
    expect(admin.locator("#toasts")).to_contain_text("2 dispatches now In Progress")
    expect(admin.locator('input[name="dispatches"]:checked')).to_have_count(0)
    assert took < SEEN / 1000, took
    tablets.assert_clean()


def test_a_bulk_change_with_one_item_that_may_not_move_changes_nothing_and_says_why(
    dispatches, tablets
):
    van = dispatches.make("Parts to Thika", "KCX 218T")
    truck = dispatches.make("Cement to Athi River", "KCC 789C")  # its checklist is not done
    alice, admin = tablets.board("alice"), tablets.board("admin")
    number = admin.locator(f"#dispatch-{truck} .dcard__number").inner_text()

    tick(admin, van, truck)
    admin.select_option("#bulk-to", "in_progress")
    admin.get_by_role("button", name="Apply to the ticked").tap()
    results = admin.locator("#bulk-results")
    expect(results).to_contain_text("Nothing was changed")
    expect(results.locator(".bulk-results__item--refused")).to_have_text(
        re.compile(rf"^{number}: needs a completed checklist")
    )
    expect(admin.locator(f"#dispatch-{van} input[type=checkbox]")).to_be_checked()  # still ticked
    time.sleep(SEEN / 1000)
    for page in (alice, admin):
        for dispatch_id in (van, truck):
            expect(page.locator(f"#cards-assigned #dispatch-{dispatch_id}")).to_be_visible()
    tablets.assert_clean()


def test_without_javascript_the_bulk_form_posts_and_the_page_says_what_happened(
    dispatches, tablets
):
    van = dispatches.make("Books to Nyeri", "KCX 218T")
    truck = dispatches.make("Steel to Mombasa", "KCC 789C")
    admin = tablets.board("admin", java_script_enabled=False)
    admin.locator(f"#dispatch-{van} input[type=checkbox]").check()
    admin.locator(f"#dispatch-{truck} input[type=checkbox]").check()
    admin.select_option("#bulk-to", "in_progress")
    admin.get_by_role("button", name="Apply to the ticked").click()
    expect(admin.locator("#bulk-results")).to_contain_text("needs a completed checklist")
    expect(admin.locator(f"#cards-assigned #dispatch-{van}")).to_be_visible()

    admin.locator(f"#dispatch-{van} input[type=checkbox]").check()
    admin.select_option("#bulk-to", "cancelled")
    admin.fill("#bulk-reason", "The customer called it off")
    admin.get_by_role("button", name="Apply to the ticked").click()
    expect(admin.locator(".messages")).to_contain_text("1 dispatch now Cancelled")
    expect(admin.locator(f"#dispatch-{van}")).to_have_count(0)
    expect(admin.locator(f"#cards-assigned #dispatch-{truck}")).to_be_visible()


def test_after_someone_else_moves_a_dispatch_the_other_can_still_reassign_it(dispatches, tablets):
    """Every form on a dispatch's page carries the version its viewer now sees: once alice
    starts the dispatch, admin's screen shows it, and admin's reassignment goes through
    instead of "someone changed the dispatch meanwhile" on every try until a reload."""
    one = dispatches.make("Tyres to Thika", "KBZ 123A")
    alice, admin = tablets.board("alice"), tablets.board("admin")
    for page in (alice, admin):
        page.goto(f"{tablets.base_url}{BOARD}/{one}")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    alice.get_by_role("button", name="Mark In Progress").tap()
    expect(admin.locator("#dispatch-head .status")).to_have_text("In Progress", timeout=SEEN)

    admin.select_option("#f-assignee", label="Charlie Smith")
    admin.get_by_role("button", name="Assign", exact=True).tap()
    expect(admin.locator("#toasts")).to_contain_text("is assigned to Charlie Smith")
    expect(alice.locator("#dispatch-head")).to_contain_text("Charlie Smith", timeout=SEEN)
    expect(alice.locator("#f-assignee")).to_have_value(dispatches.people["Charlie Smith"])
    tablets.assert_clean()
