"""Stocktakes in real browsers (seed 003): several people counting one stocktake at once
on 1024x768 touch tablets — a count reaching the other screens within a second, a purchase
moving purchases, expected and variance on everyone's line, approval turning every open
page read-only (and the list saying so) at once — and the offline queue of
static/stocktakes.js: counts entered while the tablet has no network are kept on it, shown
as pending, and sent once each when the connection is back; one whose line was counted by
someone else meanwhile comes back as a 409 showing both values.

Every test makes a stocktake of its own over plain HTTP as admin (a period of its own,
populated with every active killarney item: 252 lines), and the pages are filtered to one
category to keep them quick. A draft is deleted afterwards; an approved one (counted at
exactly what was expected: no adjustments) stays.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from urllib.parse import quote

import pytest
from bs4 import BeautifulSoup
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.conftest import PageProblems, SiteClient, describe, is_missing_favicon, sign_in
from tests.browser.pages import TABLET, StocktakePage

SITE = "killarney"
LIST = f"/s/{SITE}/stocktakes"
SEEN = 1000  # ms: a change appears on the other screens within 1 s
OFFLINE_NOISE = (
    "Failed to load resource: net::ERR_INTERNET_DISCONNECTED",  # beats, "is editing", polls
    "Failed to load resource: net::ERR_NETWORK_CHANGED",
    "htmx: htmx:sse:error",  # each failed reconnect of the stream
    "htmx: htmx:error: Failed to fetch",  # a poll or reconnect while offline
    "htmx: htmx:error: network error",
)

MILLI = Decimal("0.001")
_periods: set[date] = set()


def a_period() -> tuple[str, str]:
    """A month-long period of the test's own, 2040-2049, not used before in this run."""
    while True:
        start = date(2040, 1, 1) + timedelta(days=random.randrange(10 * 365))
        if start not in _periods:
            _periods.add(start)
            return start.isoformat(), (start + timedelta(days=29)).isoformat()


def answer_noise(message: ConsoleMessage) -> bool:
    """Chromium logs every 4xx answer to a fetch: a 409 from a stale count is the point."""
    return is_missing_favicon(message) or bool(re.search(r"status of 409 ", message.text))


class Stocktake:
    """A populated draft of the test's own, made by admin over plain HTTP."""

    def __init__(self, base_url: str) -> None:
        self.admin = SiteClient(base_url, "admin")
        start, end = a_period()
        made = self.admin.post(LIST, {"period_start": start, "period_end": end})
        assert made.status_code == 303, made.text
        self.path = made.headers["location"].split("#")[0]
        self.id = int(self.path.rstrip("/").rsplit("/", 1)[1])
        done = self.admin.post(f"{self.path}/populate")
        assert done.status_code == 303, done.text
        page = self.admin.get(self.path)
        self.categories = {
            s.select_one("h2.category__name").contents[0].strip(): [
                int(li["id"].removeprefix("line-")) for li in s.select("li.line")
            ]
            for s in page.select("#lines section.category")
        }
        assert sum(map(len, self.categories.values())) == 252, self.categories.keys()

    def category(self, at_least: int = 4) -> tuple[str, list[int]]:
        """The smallest category with at least `at_least` lines, and its line ids."""
        name = min((n for n, ids in self.categories.items() if len(ids) >= at_least),
                   key=lambda n: len(self.categories[n]))  # fmt: skip
        return name, self.categories[name]

    def query(self, category: str) -> str:
        return f"?category={quote(category)}"

    def lines(self, query: str = "") -> dict[int, Any]:
        """The lines as admin's page shows them now, by id."""
        page: BeautifulSoup = self.admin.get(self.path + query)
        return {int(li["id"].removeprefix("line-")): li for li in page.select("#lines li.line")}

    def count(self, line_id: int, full: str, version: int, partial: str = "") -> None:
        answer = self.admin.post(
            f"{self.path}/lines/{line_id}/count",
            {"version": str(version), "full": full, "partial": partial, "client_id": ""},
        )
        assert answer.status_code == 303, answer.text[:2000]

    def count_all_as_expected(self) -> None:
        """Every line counted at exactly what was expected (whole units and the rest in
        sub-units where the item has them): approving adjusts nothing."""
        for line_id, li in self.lines().items():
            expected = Decimal(li.select_one(".line__expected").get_text(strip=True))
            full, partial = str(expected), ""
            label = li.select_one(f"label[for=partial-{line_id}]")
            if label is not None:  # "+ pints (0-87)" (an en dash): 88 to the unit
                sub_units = int(re.search(r"(\d+)\)", label.get_text()).group(1)) + 1
                whole = expected.to_integral_value(rounding=ROUND_FLOOR)
                full, partial = str(whole), str(((expected - whole) * sub_units).quantize(MILLI))
            self.count(line_id, full, int(li["data-version"]), partial)

    def tidy(self) -> None:
        try:
            if self.admin.get(self.path).select_one("#stocktake-head .status--draft"):
                self.admin.post(f"{self.path}/delete")
        finally:
            self.admin.close()


@pytest.fixture
def stocktake(base_url: str) -> Iterator[Stocktake]:
    made = Stocktake(base_url)
    yield made
    made.tidy()


class Tablets:
    """Signed-in tablets (1024x768, touch), each in its own context and watched for
    console errors and CSP violations from the sign-in on."""

    def __init__(self, new_context: Callable[..., Any], base_url: str) -> None:
        self.new_context = new_context
        self.base_url = base_url
        self.watched: list[tuple[str, PageProblems]] = []

    def page(
        self, username: str, path: str, ignore: Callable[[ConsoleMessage], bool] = answer_noise
    ) -> Page:
        page = self.new_context(**TABLET).new_page()
        self.watched.append((username, PageProblems.watch(page, ignore=ignore)))
        sign_in(page, self.base_url, username, next_path=path)
        if path.split("?")[0] not in page.url:
            pytest.fail(f"{username} did not land on {path}: {describe(page)}")
        return page

    def stocktake(self, username: str, st: Stocktake, query: str = "", **kw: Any) -> StocktakePage:
        page = self.page(username, st.path + query, **kw)
        return StocktakePage(page, st.path, query).wait_live()

    def assert_clean(self) -> None:
        for username, problems in self.watched:
            try:
                problems.assert_clean()
            except AssertionError as exc:
                raise AssertionError(f"{username}'s page: {exc}") from None


@pytest.fixture
def tablets(new_context: Callable[..., Any], base_url: str) -> Tablets:
    return Tablets(new_context, base_url)


def test_a_count_by_erin_appears_on_admins_screen_within_a_second(stocktake, tablets):
    category, (first, *_) = stocktake.category()
    query = stocktake.query(category)
    erin = tablets.stocktake("erin", stocktake, query)
    admin = tablets.stocktake("admin", stocktake, query)
    expect(admin.figure(first, "counted")).to_have_text("—")
    version = admin.version(first)

    started = time.monotonic()
    assert erin.count(first, "7") == 200
    expect(admin.figure(first, "counted")).to_have_text("7", timeout=SEEN)
    took = time.monotonic() - started
    expect(admin.line(first).locator(".line__who")).to_contain_text("Counted by Erin")
    assert admin.version(first) == version + 1
    expect(erin.toast(re.compile(r"^Counted "))).to_be_visible()
    assert took < SEEN / 1000, took
    tablets.assert_clean()


def test_erin_editing_a_line_shows_on_admins_screen_and_goes_when_she_leaves_by_back(
    stocktake, tablets
):
    """The "is editing" line lapses by itself 8 s after its last renewal; leaving the page
    (the back button) ends it at once: the "end" is sent as the page goes (keepalive)."""
    category, (first, *_) = stocktake.category()
    query = stocktake.query(category)
    erin = tablets.stocktake("erin", stocktake, query)
    admin = tablets.stocktake("admin", stocktake, query)
    editing = admin.line(first).get_by_text(re.compile(r"Erin O'Sullivan is editing "))

    erin.line(first).locator("input[name=full]").focus()
    expect(editing).to_be_visible(timeout=SEEN)
    started = time.monotonic()
    erin.page.go_back()
    expect(editing).to_have_count(0, timeout=SEEN)
    assert time.monotonic() - started < 2, "left to lapse rather than ended"
    tablets.assert_clean()


def test_a_purchase_added_by_admin_moves_purchases_expected_and_variance_for_erin(
    stocktake, tablets
):
    category, (first, *_) = stocktake.category()
    query = stocktake.query(category)
    before = stocktake.lines(query)[first]
    stocktake.count(first, "10", int(before["data-version"]))
    expected = float(before.select_one(".line__expected").get_text(strip=True))
    purchases = float(before.select_one(".line__purchases").get_text(strip=True))
    erin = tablets.stocktake("erin", stocktake, query)
    admin = tablets.stocktake("admin", stocktake, query)
    expect(erin.figure(first, "counted")).to_have_text("10")
    erins_drawer = erin.open_movements(first)  # erin is looking at the same line's movements
    expect(erins_drawer.locator(".empty")).to_have_text("No purchases or waste recorded.")

    assert admin.add_movement(first, "purchase", "5", "Invoice 4411") == 200
    number = lambda x: f"{x:g}"  # noqa: E731 - as the page writes a quantity
    expect(erin.figure(first, "purchases")).to_have_text(number(purchases + 5), timeout=SEEN)
    expect(erin.figure(first, "expected")).to_have_text(number(expected + 5), timeout=SEEN)
    expect(erin.figure(first, "variance")).to_have_text(number(10 - expected - 5), timeout=SEEN)
    expect(erin.line(first).locator("a.line__moves")).to_contain_text("Movements (1)")
    expect(erins_drawer.locator(".move__reference")).to_have_text("Invoice 4411", timeout=SEEN)
    expect(admin.page.locator("#drawer .move__reference")).to_have_text("Invoice 4411")
    expect(admin.page.locator("#drawer #move-quantity")).to_have_value("")
    expect(admin.toast(re.compile(r"^Added a purchase of 5 "))).to_be_visible()
    tablets.assert_clean()


def test_approval_turns_the_counting_page_read_only_and_the_list_approved_at_once(
    stocktake, tablets
):
    stocktake.count_all_as_expected()
    category, _ = stocktake.category()
    erin = tablets.stocktake("erin", stocktake, stocktake.query(category))
    expect(erin.count_forms.first).to_be_visible()
    # the head is drawn once for everyone, but only a manager is offered Approve…
    approve = re.compile(r"^Approve…")
    expect(erin.head.get_by_role("link", name=approve)).to_be_hidden()
    manager = tablets.stocktake("admin", stocktake, stocktake.query(category))
    expect(manager.head.get_by_role("link", name=approve)).to_be_visible()
    listing = tablets.page("admin", LIST)
    row = listing.locator(f"#stocktake-{stocktake.id}")
    expect(row.locator(".status")).to_have_text("Draft")
    expect(listing.locator("#live-status")).to_have_attribute("data-state", "live", timeout=5000)
    approver = tablets.page("admin", f"{stocktake.path}/approve")
    heading = approver.get_by_role("heading", name=re.compile(r"^Approve the stocktake"))
    expect(heading).to_be_visible()

    approver.get_by_role("button", name="Approve", exact=True).click()
    started = time.monotonic()
    expect(erin.count_forms).to_have_count(0, timeout=SEEN)
    expect(row.locator(".status")).to_have_text("Approved", timeout=SEEN)
    took = time.monotonic() - started
    expect(erin.status_word).to_have_text("Approved")
    expect(erin.banner).to_contain_text("This stocktake is read-only now.")
    expect(row.locator(".stocktake-row__adjustments")).to_have_text("0 adjustments")
    expect(erin.page.locator("#lines form")).to_have_count(0)  # no movement forms either
    assert took < SEEN / 1000, took
    tablets.assert_clean()


def test_counts_entered_offline_are_sent_once_each_when_the_connection_returns(stocktake, tablets):
    category, (one, two, three, four, *_) = stocktake.category()
    query = stocktake.query(category)
    offline = {"now": False}

    def noise(message: ConsoleMessage) -> bool:
        return answer_noise(message) or (offline["now"] and message.text.startswith(OFFLINE_NOISE))

    erin = tablets.stocktake("erin", stocktake, query, ignore=noise)
    admin = tablets.stocktake("admin", stocktake, query)
    versions = {line: admin.version(line) for line in (one, two, three, four)}

    offline["now"] = True
    erin.page.context.set_offline(True)
    # (Chromium keeps a stream already open through set_offline; new requests fail.)
    assert erin.page.evaluate("navigator.onLine") is False
    for line, full in ((one, "3"), (two, "4"), (three, "5"), (four, "6")):
        erin.enter_count(line, full)
        expect(erin.pending(line)).to_have_text(StocktakePage.PENDING)
    assert [item["fields"]["full"] for item in erin.queued()] == ["3", "4", "5", "6"]
    ids = {item["fields"]["client_id"] for item in erin.queued()}
    assert len(ids) == 4 and all(re.fullmatch(r"[0-9a-f-]{32,36}", i) for i in ids)
    # Meanwhile admin (online) counts the fourth line: erin's count of it is stale now.
    assert admin.count(four, "9") == 200
    expect(admin.figure(one, "counted")).to_have_text("—")  # nothing arrived from erin

    erin.page.context.set_offline(False)
    for line, full in ((one, "3"), (two, "4"), (three, "5")):
        expect(admin.figure(line, "counted")).to_have_text(full, timeout=10000)
        expect(erin.figure(line, "counted")).to_have_text(full)
        expect(erin.pending(line)).to_have_text("")
    # The fourth comes back 409 with both values, admin's count standing.
    expect(erin.error(four)).to_contain_text("now 9", timeout=5000)
    expect(erin.error(four)).to_contain_text("yours 6")
    expect(erin.figure(four, "counted")).to_have_text("9")
    expect(erin.pending(four)).to_have_text("")
    assert erin.queued() == []
    expect(erin.status).to_have_attribute("data-state", "live", timeout=10000)
    offline["now"] = False

    # Once each: one version step per line (two for the fourth: admin's count only).
    lines = stocktake.lines(query)
    for line, full in ((one, "3"), (two, "4"), (three, "5"), (four, "9")):
        assert lines[line].select_one(".line__counted").get_text(strip=True) == full
        assert int(lines[line]["data-version"]) == versions[line] + 1, line
    erin.page.reload()
    expect(erin.figure(one, "counted")).to_have_text("3")
    expect(erin.page.locator(".line__pending .badge")).to_have_count(0)
    tablets.assert_clean()


def test_a_count_whose_request_failed_is_kept_across_a_reload_and_sent_once_later(
    stocktake, tablets
):
    """No network for the count's own request (the tablet still says it is online): the
    count is kept, its pending mark survives a reload (drawn from localStorage), and the
    retry timer sends it once the network answers again."""
    category, (one, *_) = stocktake.category()
    query = stocktake.query(category)
    failing = {"now": False}

    def noise(message: ConsoleMessage) -> bool:
        return answer_noise(message) or (failing["now"] and message.text.startswith(OFFLINE_NOISE))

    erin = tablets.stocktake("erin", stocktake, query, ignore=noise)
    version = erin.version(one)
    cut = "**/lines/*/count"
    failing["now"] = True
    erin.page.route(cut, lambda route: route.abort("internetdisconnected"))
    erin.enter_count(one, "12")
    expect(erin.pending(one)).to_have_text(StocktakePage.PENDING)
    expect(erin.toast("the count is kept on this tablet")).to_be_visible()
    erin.page.reload()
    erin.wait_live()
    expect(erin.pending(one)).to_have_text(StocktakePage.PENDING)
    assert [item["fields"]["full"] for item in erin.queued()] == ["12"]

    erin.page.unroute(cut)
    expect(erin.figure(one, "counted")).to_have_text("12", timeout=12000)
    expect(erin.pending(one)).to_have_text("")
    failing["now"] = False
    assert erin.queued() == []
    assert int(stocktake.lines(query)[one]["data-version"]) == version + 1
    tablets.assert_clean()
