"""Shared dispatch drafts in real browsers (SPEC §5.1, seed 000), several users side by side.

alice, bob and charlie (dispatchers at Nairobi) each get their own browser context on
/s/nairobi/drafts, a live page with one SSE stream; what one does reaches the others' #drafts
and #parcels without a reload, within the SPEC's 2 s. The same flow also runs with JavaScript
off (plain forms, Post/Redirect/Get).

The database lives for the whole session, so each test works on its own destination:
Eldoret (side by side), Mombasa (no JavaScript), Nakuru (second finaliser), Kisumu (the demo's
draft: live updates against typing). Demo parcels cycle Eldoret, Kisumu, Mombasa, Nakuru:
NBO-0001 is for Eldoret, NBO-0002 Kisumu, NBO-0003 Mombasa, NBO-0004 Nakuru, and so on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import PageProblems, describe, is_missing_favicon, sign_in

DRAFTS = "/s/nairobi/drafts"
DRAFTS_URL = re.compile(r"/s/nairobi/drafts/?(#.*)?$")
LIVE = 2000  # ms: SPEC §4/§5.1, a change reaches every viewer within 2 s
ALICE, BOB, CHARLIE = "Alice Wanjiru", "Bob Wilson", "Charlie Smith"
FINALISED = re.compile(r"^Finalised → D-\d+")  # the finaliser's toast (then a manifest link)
TABLET: dict[str, Any] = {"viewport": {"width": 1024, "height": 768}, "has_touch": True}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 2,
}


# --- page objects --------------------------------------------------------------------------


class DraftItem:
    """One draft in the #drafts accordion: `<details class="draft" data-destination=…>`."""

    def __init__(self, page: Page, destination: str) -> None:
        self.page = page
        self.destination = destination
        self.root = page.locator(f'#drafts details.draft[data-destination="{destination}"]')
        self.summary = self.root.locator("summary")
        self.count = self.summary.locator(".badge--info")
        self.lock = self.root.locator(".draft__lock")
        self.vehicle = self.root.locator(".draft__vehicle")
        self.driver = self.root.locator(".draft__driver")
        self.created = self.root.locator(".draft__created")
        self.updated = self.root.locator(".draft__updated")
        self.contributors = self.root.locator(".draft__contributors .badge")
        self.parcels = self.root.locator(".draft__parcels li")
        self.codes = self.root.locator(".draft__parcels li .code")
        self.transport_link = self.root.get_by_role("link", name="Vehicle & driver")
        self.load_sheet_link = self.root.get_by_role("link", name="Load sheet")
        self.clear_link = self.root.get_by_role("link", name="Clear…")
        self.finalise_button = self.root.get_by_role("button", name="Finalise dispatch")

    def expand(self) -> DraftItem:
        """Open the accordion item (a native <details>: works without JavaScript too)."""
        expect(self.root).to_be_attached()
        if self.root.get_attribute("open") is None:
            self.summary.click()
        expect(self.root).to_have_attribute("open", "")
        return self

    def is_open(self) -> bool:
        return self.root.evaluate("(el) => el.open")


class DraftsPage:
    """/s/nairobi/drafts: scan box, #drafts (accordion), #parcels (table with tick boxes)."""

    def __init__(self, page: Page, problems: PageProblems | None = None) -> None:
        self.page = page
        self.problems = problems
        self.status = page.locator("#live-status")
        self.drafts = page.locator("#drafts")
        self.parcels = page.locator("#parcels")
        self.scan_field = page.locator("#scan-code")
        self.scan_button = page.get_by_role("button", name="Add to its draft")
        self.add_button = page.get_by_role("button", name="Add ticked parcels to their drafts")
        self.toasts = page.locator("#toasts")

    def open(self) -> DraftsPage:
        self.page.goto(DRAFTS)
        return self

    def wait_live(self) -> DraftsPage:
        expect(self.status).to_have_attribute("data-state", "live", timeout=5000)
        return self

    def draft(self, destination: str) -> DraftItem:
        return DraftItem(self.page, destination)

    def row(self, code: str) -> Locator:
        """The #parcels table row of a parcel, found by its code."""
        exact = re.compile(rf"^\s*{re.escape(code)}\s*$")
        return self.parcels.locator("tr.parcel").filter(
            has=self.page.locator(".code", has_text=exact)
        )

    def badge(self, code: str) -> Locator:
        return self.row(code).locator(".badge")

    def tick(self, *codes: str) -> None:
        for code in codes:
            self.row(code).locator('input[type=checkbox][name="parcel"]').check()

    def add_ticked(self) -> None:
        self.add_button.click()

    def scan(self, code: str) -> None:
        self.scan_field.fill(code)
        self.scan_button.click()

    def toast(self, text: str | re.Pattern[str]) -> Locator:
        return self.toasts.locator(".toast", has_text=text)

    # "no reload": a mark on window survives swaps and morphs, not a reload or a navigation
    def mark(self) -> None:
        self.page.evaluate("window.__notReloaded = true")

    def still_marked(self) -> bool:
        return self.page.evaluate("window.__notReloaded === true")


class TransportPage:
    """/s/nairobi/drafts/{id}/transport: vehicle and driver, under an edit lock."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.vehicle = page.locator("#t-vehicle")
        self.driver = page.locator("#t-driver")
        self.save_button = page.get_by_role("button", name="Save vehicle and driver")

    def choose_vehicle(self, registration: str) -> None:
        option = self.vehicle.locator("option").filter(
            has_text=re.compile(rf"^\s*{re.escape(registration)}\b")
        )
        self.vehicle.select_option(value=option.get_attribute("value"))

    def save(self, *, vehicle: str | None = None, driver: str | None = None) -> None:
        expect(self.save_button).to_be_enabled()
        if vehicle is not None:
            self.choose_vehicle(vehicle)
        if driver is not None:
            self.driver.fill(driver)
        self.save_button.click()
        expect(self.page).to_have_url(DRAFTS_URL)


class UserPages:
    """`users("alice")` -> a DraftsPage, signed in, in its own context, open on the drafts
    page and streaming; watched for console errors and CSP violations from the sign-in on."""

    def __init__(self, new_context: Callable[..., Any], base_url: str) -> None:
        self.new_context = new_context
        self.base_url = base_url
        self.pages: dict[str, DraftsPage] = {}

    def __call__(self, username: str, **context_args: Any) -> DraftsPage:
        page = self.new_context(**{**TABLET, **context_args}).new_page()
        problems = PageProblems.watch(page, ignore=is_missing_favicon)
        sign_in(page, self.base_url, username, next_path=DRAFTS)
        if not DRAFTS_URL.search(page.url):
            pytest.fail(f"{username} did not land on the drafts page: {describe(page)}")
        drafts = DraftsPage(page, problems).wait_live()
        self.pages[username] = drafts
        return drafts

    def assert_clean(self) -> None:
        for username, drafts in self.pages.items():
            assert drafts.problems is not None
            try:
                drafts.problems.assert_clean()
            except AssertionError as exc:
                raise AssertionError(f"{username}'s page: {exc}") from None


@pytest.fixture
def users(new_context: Callable[..., Any], base_url: str) -> UserPages:
    return UserPages(new_context, base_url)


def open_transport(drafts: DraftsPage, destination: str) -> TransportPage:
    item = drafts.draft(destination).expand()
    item.transport_link.click()
    transport = TransportPage(drafts.page)
    expect(transport.vehicle).to_be_visible()
    return transport


def back_to_drafts(drafts: DraftsPage) -> None:
    """After a boosted save the page is the drafts page again, with a new stream."""
    expect(drafts.page).to_have_url(DRAFTS_URL)
    drafts.wait_live()


# --- 1. three dispatchers side by side ------------------------------------------------------


def test_three_dispatchers_build_and_finalise_one_eldoret_draft_live(users: UserPages) -> None:
    alice, bob, charlie = users("alice"), users("bob"), users("charlie")
    for viewer in (bob, charlie):
        viewer.mark()
        expect(viewer.draft("Eldoret").root).to_have_count(0)

    # alice ticks three Eldoret parcels and adds them: the draft appears for bob and charlie.
    alice.tick("NBO-0001", "NBO-0005", "NBO-0009")
    alice.add_ticked()
    expect(alice.draft("Eldoret").count).to_have_text("3 parcels", timeout=LIVE)
    for viewer in (bob, charlie):
        expect(viewer.draft("Eldoret").count).to_have_text("3 parcels", timeout=LIVE)
        expect(viewer.badge("NBO-0005")).to_have_text("in the Eldoret draft", timeout=LIVE)
    charlie.draft("Eldoret").expand()  # charlie keeps it open through everything that follows

    # alice takes the vehicle & driver page: bob sees the lock while she is on it.
    transport = open_transport(alice, "Eldoret")
    expect(bob.draft("Eldoret").lock).to_have_text(f"Being edited by {ALICE}", timeout=LIVE)
    transport.save(vehicle="KCC 789C", driver=BOB)
    back_to_drafts(alice)
    expect(bob.draft("Eldoret").lock).to_have_count(0, timeout=LIVE)
    expect(bob.draft("Eldoret").vehicle).to_contain_text("KCC 789C", timeout=LIVE)
    expect(bob.draft("Eldoret").driver).to_have_text(BOB)

    # bob sees it with 3 parcels (live, no reload), adds one by ticking and one by scanning.
    eldoret = bob.draft("Eldoret")
    expect(eldoret.parcels).to_have_count(3)
    expect(eldoret.created).to_contain_text(ALICE)
    assert bob.still_marked(), "bob's page was reloaded"
    bob.tick("NBO-0013")
    bob.add_ticked()
    expect(eldoret.count).to_have_text("4 parcels", timeout=LIVE)
    bob.scan("NBO-0017")
    expect(eldoret.count).to_have_text("5 parcels", timeout=LIVE)
    expect(bob.scan_field).to_have_value("")  # the scan box is ready for the next code
    expect(charlie.draft("Eldoret").count).to_have_text("5 parcels", timeout=LIVE)

    # bob changes the driver to Charlie Smith.
    transport = open_transport(bob, "Eldoret")
    expect(transport.vehicle.locator("option:checked")).to_contain_text("KCC 789C")
    expect(transport.driver).to_have_value(BOB)
    expect(alice.draft("Eldoret").lock).to_have_text(f"Being edited by {BOB}", timeout=LIVE)
    transport.save(driver=CHARLIE)
    back_to_drafts(bob)

    # charlie has watched it all without a reload, his accordion item still open.
    mine = charlie.draft("Eldoret")
    expect(mine.driver).to_have_text(CHARLIE, timeout=LIVE)
    expect(mine.updated).to_contain_text(BOB)
    expect(mine.parcels).to_have_count(5)
    expect(mine.codes).to_have_text(["NBO-0001", "NBO-0005", "NBO-0009", "NBO-0013", "NBO-0017"])
    expect(mine.contributors).to_have_text([ALICE, BOB])
    expect(mine.vehicle).to_contain_text("KCC 789C")
    expect(mine.lock).to_have_count(0)
    assert mine.is_open(), "a live update closed charlie's open accordion item"
    assert charlie.still_marked(), "charlie's page was reloaded"

    # charlie finalises: the draft and its parcels leave all three screens.
    mine.finalise_button.click()
    # the broadcast removes the button's own form before its answer arrives: the toast still shows
    expect(charlie.toast(FINALISED)).to_be_visible(timeout=LIVE)
    for viewer in (alice, bob, charlie):
        expect(viewer.draft("Eldoret").root).to_have_count(0, timeout=LIVE)
        for code in ("NBO-0001", "NBO-0005", "NBO-0009", "NBO-0013", "NBO-0017"):
            expect(viewer.row(code)).to_have_count(0)
        expect(viewer.badge("NBO-0021")).to_have_text("available")  # not dispatched
    assert charlie.still_marked(), "charlie's page was reloaded"
    # 6. no console errors or CSP violations in any of the three pages
    users.assert_clean()


def test_clearing_a_shared_draft_warns_and_reaches_the_others(users: UserPages) -> None:
    alice, bob = users("alice"), users("bob")
    alice.tick("NBO-0025")
    alice.add_ticked()
    expect(bob.draft("Eldoret").count).to_have_text("1 parcel", timeout=LIVE)
    bob.scan("NBO-0029")
    expect(alice.draft("Eldoret").count).to_have_text("2 parcels", timeout=LIVE)

    alice.draft("Eldoret").expand().clear_link.click()
    warning = alice.page.locator("main .alert--warn")
    expect(warning).to_contain_text(BOB)
    expect(warning).not_to_contain_text(ALICE)  # the others, not the one clearing
    alice.page.get_by_role("button", name="Clear the draft").click()
    back_to_drafts(alice)
    for viewer in (alice, bob):
        expect(viewer.draft("Eldoret").root).to_have_count(0, timeout=LIVE)
        for code in ("NBO-0025", "NBO-0029"):
            expect(viewer.badge(code)).to_have_text("available", timeout=LIVE)
    users.assert_clean()


# --- 2. the same flow without JavaScript ----------------------------------------------------


def sign_in_no_js(page: Page, base_url: str, username: str) -> DraftsPage:
    sign_in(page, base_url, username, next_path=DRAFTS)
    expect(page).to_have_url(DRAFTS_URL)
    drafts = DraftsPage(page)
    expect(page.locator("#live-status noscript")).to_have_count(1)
    return drafts


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()


def test_the_same_flow_works_without_javascript(no_js_page: Page, base_url: str) -> None:
    page = no_js_page
    mombasa = ["NBO-0003", "NBO-0007", "NBO-0011", "NBO-0015", "NBO-0019"]

    # alice: tick three, add (PRG back to the page), then vehicle and driver.
    alice = sign_in_no_js(page, base_url, "alice")
    alice.tick(*mombasa[:3])
    alice.add_ticked()
    expect(page).to_have_url(DRAFTS_URL)
    item = alice.draft("Mombasa")
    expect(item.count).to_have_text("3 parcels")
    expect(alice.badge("NBO-0007")).to_have_text("in the Mombasa draft")
    transport = open_transport(alice, "Mombasa")
    transport.save(vehicle="KDA 456B", driver=BOB)
    expect(item.vehicle).to_contain_text("KDA 456B")
    expect(item.driver).to_have_text(BOB)
    expect(item.lock).to_have_count(0)  # the save let go of the lock
    sign_out(page)

    # bob: one by ticking, one by the scan box, then the driver.
    bob = sign_in_no_js(page, base_url, "bob")
    item = bob.draft("Mombasa")
    expect(item.parcels).to_have_count(3)
    bob.tick(mombasa[3])
    bob.add_ticked()
    expect(page).to_have_url(DRAFTS_URL)
    expect(item.count).to_have_text("4 parcels")
    bob.scan(mombasa[4])
    expect(page).to_have_url(DRAFTS_URL)
    expect(item.count).to_have_text("5 parcels")
    transport = open_transport(bob, "Mombasa")
    expect(transport.driver).to_have_value(BOB)
    transport.save(driver=CHARLIE)
    sign_out(page)

    # charlie: sees what they did, and finalises.
    charlie = sign_in_no_js(page, base_url, "charlie")
    item = charlie.draft("Mombasa").expand()
    expect(item.parcels).to_have_count(5)
    expect(item.codes).to_have_text(mombasa)
    expect(item.contributors).to_have_text([ALICE, BOB])
    expect(item.updated).to_contain_text(BOB)
    expect(item.driver).to_have_text(CHARLIE)
    expect(item.vehicle).to_contain_text("KDA 456B")
    item.finalise_button.click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(rf"^Finalised by {CHARLIE} → D-\d+$"))
    page.get_by_role("link", name="Back to the drafts").click()
    expect(page).to_have_url(DRAFTS_URL)
    expect(charlie.draft("Mombasa").root).to_have_count(0)
    for code in mombasa:
        expect(charlie.row(code)).to_have_count(0)


# --- 3. the second finaliser gets news, not an error ----------------------------------------

STASH_FINALISE_FORM = """(destination) => {
  const item = document.querySelector(`#drafts details.draft[data-destination="${destination}"]`);
  window.__staleFinalise = item.querySelector("form[hx-post$='/finalise']").cloneNode(true);
}"""

# bob's screen is behind (his button is gone by now): put the form he saw back and submit it.
SUBMIT_STALE_FINALISE = """() => {
  const form = window.__staleFinalise;
  document.getElementById("main").append(form);
  htmx.process(form);
  form.requestSubmit();
}"""


def test_the_second_finaliser_is_told_who_was_first(users: UserPages) -> None:
    alice, bob = users("alice"), users("bob")
    alice.tick("NBO-0004", "NBO-0008")
    alice.add_ticked()
    expect(alice.draft("Nakuru").count).to_have_text("2 parcels", timeout=LIVE)
    open_transport(alice, "Nakuru").save(vehicle="KBZ 123A", driver="Grace Njeri")
    back_to_drafts(alice)
    theirs, mine = alice.draft("Nakuru").expand(), bob.draft("Nakuru")
    expect(mine.driver).to_have_text("Grace Njeri", timeout=LIVE)
    mine.expand()
    bob.page.evaluate(STASH_FINALISE_FORM, "Nakuru")

    with alice.page.expect_response(re.compile(r"/finalise$")) as first:
        theirs.finalise_button.click()
    assert first.value.status == 200
    expect(alice.toast(FINALISED)).to_be_visible(timeout=LIVE)
    number = re.search(r"D-\d+", alice.toast(FINALISED).inner_text()).group()  # type: ignore[union-attr]

    with bob.page.expect_response(re.compile(r"/finalise$")) as second:
        if mine.finalise_button.is_visible():  # bob's screen has not caught up yet
            mine.finalise_button.click()
        else:
            bob.page.evaluate(SUBMIT_STALE_FINALISE)
    assert second.value.status == 200, f"the second finalise answered {second.value.status}"
    expect(bob.toast(f"Finalised by {ALICE} → {number}")).to_be_visible(timeout=LIVE)
    expect(bob.toasts.locator(".toast--error")).to_have_count(0)
    expect(bob.page).to_have_url(DRAFTS_URL)
    expect(bob.page.locator(".error-page")).to_have_count(0)
    for viewer in (alice, bob):
        expect(viewer.draft("Nakuru").root).to_have_count(0, timeout=LIVE)
        expect(viewer.row("NBO-0004")).to_have_count(0)
    # 6. no console errors or CSP violations in either page
    users.assert_clean()


def test_second_finaliser_without_javascript_sees_the_news_page(
    users: UserPages, new_context: Callable[..., Any], base_url: str
) -> None:
    """bob's no-JS page still shows the draft; alice finalises; bob's plain post -> news."""
    alice = users("alice")
    bob_page = new_context(java_script_enabled=False).new_page()
    alice.tick("NBO-0012")
    alice.add_ticked()
    expect(alice.draft("Nakuru").count).to_have_text("1 parcel", timeout=LIVE)
    open_transport(alice, "Nakuru").save(vehicle="KBZ 123A", driver="Grace Njeri")
    back_to_drafts(alice)
    bob = sign_in_no_js(bob_page, base_url, "bob")
    mine = bob.draft("Nakuru").expand()
    alice.draft("Nakuru").expand().finalise_button.click()
    expect(alice.draft("Nakuru").root).to_have_count(0, timeout=LIVE)
    mine.finalise_button.click()
    expect(bob_page.get_by_role("heading", level=1)).to_have_text(
        re.compile(rf"^Finalised by {ALICE} → D-\d+$")
    )


# --- 4. live updates leave the local user's work alone --------------------------------------


def test_typing_ticks_and_open_items_survive_someone_elses_change(users: UserPages) -> None:
    alice, bob = users("alice"), users("bob")
    kisumu = alice.draft("Kisumu").expand()  # the demo's draft
    before = kisumu.parcels.count()
    alice.tick("NBO-0014")  # ticked, not added yet
    alice.scan_field.click()
    alice.scan_field.press_sequentially("NBO-00")

    bob.tick("NBO-0010")
    bob.add_ticked()
    expect(kisumu.parcels).to_have_count(before + 1, timeout=LIVE)
    expect(alice.badge("NBO-0010")).to_have_text("in the Kisumu draft", timeout=LIVE)

    expect(alice.scan_field).to_have_value("NBO-00")
    expect(alice.scan_field).to_be_focused()
    assert kisumu.is_open(), "bob's change closed alice's open accordion item"
    tick = alice.row("NBO-0014").locator("input[type=checkbox]")
    expect(tick).to_be_checked()  # a tick in the refreshed #parcels region is kept too
    # and she carries on typing where she was
    alice.page.keyboard.type("22")
    expect(alice.scan_field).to_have_value("NBO-0022")
    tick.uncheck()

    # alice takes NBO-0010 out again: her row goes at once for both, and she is told
    kisumu.root.get_by_role("button", name="Remove NBO-0010 from the Kisumu draft").click()
    expect(alice.toast("Removed NBO-0010.")).to_be_visible(timeout=LIVE)
    for viewer in (alice, bob):
        expect(viewer.badge("NBO-0010")).to_have_text("available", timeout=LIVE)
        expect(viewer.draft("Kisumu").parcels).to_have_count(before, timeout=LIVE)


# --- 5. touch targets ----------------------------------------------------------------------

TARGETS_JS = """() => {
  const out = [];
  const box = (el) => el.getBoundingClientRect();
  const name = (el) => (el.getAttribute("aria-label") || el.textContent || el.value || "").trim()
    .replace(/\\s+/g, " ").slice(0, 40);
  for (const region of ["#drafts", "#parcels", "#scan-form"]) {
    const kinds = ["button", "a[href]", "summary", "input[type=checkbox]"];
    for (const el of document.querySelectorAll(kinds.map((k) => `${region} ${k}`).join(", "))) {
      let r = box(el), what = el.tagName.toLowerCase();
      if (el.matches("input[type=checkbox]")) {
        // the tap area of a tick box: the box itself or its label, whichever is larger
        const label = el.id && document.querySelector(`label[for="${el.id}"]`);
        const l = label ? box(label) : r;
        if (l.height > r.height) { r = l; what = "checkbox label"; }
      }
      if (!r.width && !r.height) continue;  // not rendered
      out.push({ region, what, name: name(el), height: Math.round(r.height * 10) / 10,
                 width: Math.round(r.width * 10) / 10,
                 primary: el.classList.contains("button--primary") });
    }
  }
  return out;
}"""


def test_touch_targets_on_a_tablet(users: UserPages) -> None:
    drafts = users("charlie", **TABLET)
    for i in range(drafts.drafts.locator("details.draft").count()):
        drafts.drafts.locator("details.draft").nth(i).evaluate("(d) => { d.open = true; }")
    targets = drafts.page.evaluate(TARGETS_JS)
    assert any(t["what"] == "checkbox label" for t in targets)
    assert any(t["name"] == "Finalise dispatch" for t in targets)
    small = [t for t in targets if t["height"] < 44]
    assert not small, f"tap targets under 44 px: {small}"
    small_primary = [t for t in targets if t["primary"] and t["height"] < 48]
    assert not small_primary, f"primary buttons under 48 px: {small_primary}"


# --- screenshots (looked at by people; the test only makes them) ----------------------------


@pytest.mark.parametrize("screen", ["tablet", "phone"])
def test_screenshots_of_the_drafts_page_and_load_sheet(
    users: UserPages, screen: str, tmp_path: Path
) -> None:
    """Set FLOORBOARD_SCREENSHOTS=/some/dir to keep them; otherwise they go to tmp_path."""
    shots = Path(os.environ.get("FLOORBOARD_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    drafts = users("alice", **(TABLET if screen == "tablet" else PHONE))
    item = drafts.draft("Kisumu").expand()
    item.root.scroll_into_view_if_needed()
    drafts.page.screenshot(path=shots / f"drafts-{screen}.png", full_page=True)
    if screen == "tablet":
        href = item.load_sheet_link.get_attribute("href")
        assert href
        drafts.page.goto(href)
        expect(drafts.page.get_by_role("heading", level=1)).to_have_text("Load sheet — Kisumu")
        drafts.page.emulate_media(media="print")
        drafts.page.screenshot(path=shots / "load-sheet-print.png", full_page=True)
