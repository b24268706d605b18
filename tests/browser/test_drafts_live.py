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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.browser.pages import (
    ALICE,
    BOB,
    CHARLIE,
    DRAFTS,
    DRAFTS_URL,
    FINALISED,
    LIVE,
    TABLET,
    DraftsPage,
    UserPages,
    back_to_drafts,
    open_finalise,
    open_transport,
)

PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 2,
}


def number_in(heading_text: str) -> str:
    match = FINALISED.match(heading_text.strip())
    assert match, f"not the finaliser's heading: {heading_text!r}"
    return match.group(1)


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

    # charlie finalises from the confirmation page, which shows what is about to go.
    confirm = open_finalise(charlie, "Eldoret")
    expect(confirm.fact("Load")).to_contain_text("5 parcels")
    expect(confirm.fact("Vehicle")).to_contain_text("KCC 789C")
    expect(confirm.fact("Driver")).to_have_text(CHARLIE)
    confirm.finalise_button.click()
    expect(confirm.heading).to_have_text(FINALISED)
    number = number_in(confirm.heading.inner_text())
    # the draft and its parcels leave the other two screens, and they are told by whom
    eldoret_codes = ("NBO-0001", "NBO-0005", "NBO-0009", "NBO-0013", "NBO-0017")
    for viewer in (alice, bob):
        expect(viewer.toast(f"{CHARLIE} finalised Eldoret → {number}")).to_be_visible(timeout=LIVE)
        expect(viewer.draft("Eldoret").root).to_have_count(0, timeout=LIVE)
        for code in eldoret_codes:
            expect(viewer.row(code)).to_have_count(0)
        expect(viewer.badge("NBO-0021")).to_have_text("available")  # not dispatched
    confirm.back_link.click()
    back_to_drafts(charlie)
    expect(charlie.draft("Eldoret").root).to_have_count(0)
    for code in eldoret_codes:
        expect(charlie.row(code)).to_have_count(0)
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
    expect(alice.messages).to_have_text("Cleared: 2 parcels are available again.")
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
    # no stream without JavaScript: the small status frame says when the page is behind
    expect(drafts.live_frame).to_have_count(1)
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
    expect(alice.messages).to_have_text("Added 3 parcels.")
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
    confirm = open_finalise(charlie, "Mombasa")
    expect(confirm.fact("Load")).to_contain_text("5 parcels")
    expect(confirm.fact("Driver")).to_have_text(CHARLIE)
    confirm.finalise_button.click()
    expect(confirm.heading).to_have_text(FINALISED)  # the finaliser's own: no "by"
    expect(confirm.manifest_link).to_be_visible()
    confirm.back_link.click()
    expect(page).to_have_url(DRAFTS_URL)
    expect(charlie.draft("Mombasa").root).to_have_count(0)
    for code in mombasa:
        expect(charlie.row(code)).to_have_count(0)


# --- 3. the second finaliser gets news, not an error ----------------------------------------


def test_the_second_finaliser_is_told_who_was_first(users: UserPages) -> None:
    alice, bob = users("alice"), users("bob")
    alice.tick("NBO-0004", "NBO-0008")
    alice.add_ticked()
    expect(alice.draft("Nakuru").count).to_have_text("2 parcels", timeout=LIVE)
    open_transport(alice, "Nakuru").save(vehicle="KBZ 123A", driver="Grace Njeri")
    back_to_drafts(alice)
    expect(bob.draft("Nakuru").driver).to_have_text("Grace Njeri", timeout=LIVE)

    # both have the confirmation page open; alice is first
    theirs, mine = open_finalise(alice, "Nakuru"), open_finalise(bob, "Nakuru")
    bob.wait_live()  # the confirmation page is a live page of the drafts too
    with alice.page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/finalise")
    ) as first:
        theirs.finalise_button.click()
    assert first.value.status == 200
    expect(theirs.heading).to_have_text(FINALISED)
    number = number_in(theirs.heading.inner_text())
    # bob is told while he looks at the page …
    expect(bob.toast(f"{ALICE} finalised Nakuru → {number}")).to_be_visible(timeout=LIVE)

    # … and pressing the button anyway is news, not an error
    with bob.page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/finalise")
    ) as second:
        mine.finalise_button.click()
    assert second.value.status == 200, f"the second finalise answered {second.value.status}"
    expect(mine.heading).to_have_text(f"Finalised by {ALICE} → {number}")
    expect(bob.toasts.locator(".toast--error")).to_have_count(0)
    expect(bob.page.locator(".error-page")).to_have_count(0)

    theirs.back_link.click()
    back_to_drafts(alice)
    bob.page.locator("nav.areas").get_by_role("link", name="Dispatch drafts").click()
    back_to_drafts(bob)
    for viewer in (alice, bob):
        expect(viewer.draft("Nakuru").root).to_have_count(0)
        expect(viewer.row("NBO-0004")).to_have_count(0)
    # no console errors or CSP violations in either page
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
    mine = open_finalise(bob, "Nakuru")  # a plain page: it will not hear of alice's finalise
    number = number_in_finalise(alice, "Nakuru")
    mine.finalise_button.click()
    expect(mine.heading).to_have_text(f"Finalised by {ALICE} → {number}")
    expect(bob_page.locator(".error-page")).to_have_count(0)


def number_in_finalise(drafts: DraftsPage, destination: str) -> str:
    confirm = open_finalise(drafts, destination)
    confirm.finalise_button.click()
    expect(confirm.heading).to_have_text(FINALISED)
    return number_in(confirm.heading.inner_text())


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
    # the tick boxes themselves are 44 x 44 (or a larger label takes the tap)
    boxes = [t for t in targets if t["region"] == "#parcels" and t["what"] != "a"]
    boxes = [t for t in boxes if t["what"] in ("input", "checkbox label")]
    assert boxes, f"no tick boxes among {targets}"
    narrow = [t for t in boxes if t["width"] < 44 or t["height"] < 44]
    assert not narrow, f"tick boxes under 44 x 44 px: {narrow}"
    assert any(t["name"] == "Finalise…" for t in targets)
    assert any(t["name"] == "Vehicle & driver" for t in targets)
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
