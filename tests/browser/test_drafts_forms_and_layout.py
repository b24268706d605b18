"""The drafts page's forms without JavaScript, its tablet layout, and finalising with a
confirmation page — in real browsers (SPEC §4 "without JavaScript", §5.1, seed 000).

- Without JavaScript every action is a plain form post (Post/Redirect/Get) with a message on
  the page it lands on; a refused form shows its own message and values only; the page is
  never reloaded under its user: a small self-refreshing frame says it is behind.
- On a 1024x768 tablet long town names wrap, tick boxes are 44 x 44, and the "Add ticked
  parcels" bar stays on screen however long the table.
- "Finalise…" leads to a page that shows what will go; the others are told at once who
  finalised it into which dispatch, and the draft leaves their screens.

Each test works on towns and parcels of its own (`scratch`), tidied away afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Scratch, sign_in
from tests.browser.pages import (
    CHARLIE,
    DRAFTS,
    DRAFTS_URL,
    LIVE,
    TABLET,
    DraftsPage,
    SiteHome,
    UserPages,
    back_to_drafts,
    open_finalise,
)

MANIFEST = re.compile(r"/s/nairobi/dispatches/\d+/manifest$")


# --- e. without JavaScript -------------------------------------------------------------------


def test_without_javascript_every_form_answers_on_the_page_and_nothing_reloads(
    users: UserPages, new_context: Callable[..., Any], base_url: str, scratch: Scratch
) -> None:
    town = scratch.town("Nojs")
    first, second, third, fourth = [*scratch.receive(town, 3), scratch.code()]
    bob = users("bob")  # with JavaScript: he changes things while alice is typing
    page = new_context(**TABLET, java_script_enabled=False).new_page()
    sign_in(page, base_url, "alice", next_path=DRAFTS)
    expect(page).to_have_url(DRAFTS_URL)
    alice = DraftsPage(page)
    # Nothing of an earlier test is still locked (a lapse would be a change on this page).
    expect(page.locator("#drafts .draft__lock")).to_have_count(0, timeout=40000)

    # receive a parcel: back on the page, with a message
    alice.receive_parcel(fourth.lower(), town.lower(), "Crate", "3,5")
    expect(page).to_have_url(DRAFTS_URL)
    expect(alice.messages).to_have_text(f"Received {fourth}.")
    expect(alice.badge(fourth)).to_have_text("available")
    expect(alice.receive).not_to_have_attribute("open", "")
    expect(page.locator("#r-code")).to_have_value("")

    # tick two and add them: a message, and the draft
    alice.tick(first, second)
    alice.add_ticked()
    expect(page).to_have_url(DRAFTS_URL)
    expect(alice.messages).to_have_text("Added 2 parcels.")
    expect(alice.draft(town).count).to_have_text("2 parcels")
    expect(alice.badge(first)).to_have_text(f"in the {town} draft")

    # a bad scan: its message at the scan box only; the box empty and focused for the next
    # scan; the receive form closed and empty
    alice.scan("NOPE-9999")
    expect(alice.scan_error).to_have_text("No parcel NOPE-9999 at this branch.")
    expect(page.locator(".field__error")).to_have_count(1)
    expect(page.locator("main .alert")).to_have_count(0)
    expect(alice.scan_field).to_have_value("")
    expect(alice.scan_field).to_be_focused()
    expect(alice.receive).not_to_have_attribute("open", "")
    for field in ("code", "destination", "description", "weight"):
        expect(page.locator(f"#r-{field}")).to_have_value("")
    expect(alice.receive_form.locator(".field__error")).to_have_count(0)

    # alice starts again from the page, types and ticks; bob adds a parcel meanwhile
    page.locator("nav.areas").get_by_role("link", name="Dispatch drafts").click()
    expect(page).to_have_url(DRAFTS_URL)
    frame = page.frame_locator("iframe.live-frame").locator("body")
    expect(frame).to_have_text("Up to date")
    alice.scan_field.fill("NBO-00")
    alice.tick(third)
    bob.scan(fourth)
    expect(bob.draft(town).count).to_have_text("3 parcels", timeout=LIVE)
    # within a refresh of the frame (15 s) alice is told; her page itself stays as it is
    expect(frame).to_have_text("1 change since you loaded this page. Refresh", timeout=20000)
    expect(alice.scan_field).to_have_value("NBO-00")
    expect(alice.tick_box(third)).to_be_checked()
    expect(alice.draft(town).count).to_have_text("2 parcels")  # not reloaded: still behind

    # the frame's Refresh brings the whole page current
    with page.expect_navigation():
        page.frame_locator("iframe.live-frame").get_by_role("link", name="Refresh").click()
    expect(page).to_have_url(DRAFTS_URL)
    expect(alice.draft(town).count).to_have_text("3 parcels")
    expect(frame).to_have_text("Up to date")
    users.assert_clean()


# --- f. a tablet: long names, tap targets, the pick bar ----------------------------------------

LAYOUT_JS = """() => {
  const out = { scrollWidth: document.documentElement.scrollWidth, cut: [], boxes: [] };
  // nothing in the two columns is wider than its box (no sideways scroll inside either)
  for (const el of document.querySelectorAll("#drafts *, #parcels *")) {
    const s = getComputedStyle(el);
    if (s.overflowX !== "visible" && el.scrollWidth > el.clientWidth + 1
        && !el.classList.contains("visually-hidden"))
      out.cut.push(`${el.tagName}.${el.className} ${el.scrollWidth}/${el.clientWidth}`);
  }
  for (const box of document.querySelectorAll("#parcels input[type=checkbox]")) {
    const r = box.getBoundingClientRect();
    out.boxes.push([Math.round(r.width * 10) / 10, Math.round(r.height * 10) / 10]);
  }
  return out;
}"""


def test_a_tablet_keeps_long_names_tap_targets_and_the_pick_bar_in_reach(
    users: UserPages, scratch: Scratch
) -> None:
    spaced, solid = scratch.long_town(57, spaces=True), scratch.long_town(60, spaces=False)
    (spaced_code,), (solid_code,) = scratch.receive(spaced), scratch.receive(solid)
    filler = scratch.town("Filler")
    alice = users("alice")  # a 1024x768 touch tablet
    before = alice.rows.count()
    fillers = scratch.receive(filler, max(40 - before, 0) + 3)  # a table of 40 rows or more
    expect(alice.rows).to_have_count(before + len(fillers), timeout=LIVE)  # arrived live

    # the long ones go into their drafts: one scanned, one ticked
    alice.scan(spaced_code)
    expect(alice.draft(spaced).count).to_have_text("1 parcel", timeout=LIVE)
    alice.tick_box(solid_code).tap()
    expect(alice.ticked_count).to_have_text("1 ticked")
    alice.add_button.tap()
    expect(alice.draft(solid).count).to_have_text("1 parcel", timeout=LIVE)
    expect(alice.ticked_count).to_have_text("")  # nothing is ticked any more
    for town in (spaced, solid):
        item = alice.draft(town).expand()
        expect(item.title).to_have_text(town)
    alice.page.evaluate("window.scrollTo(0, 0)")

    layout = alice.page.evaluate(LAYOUT_JS)
    assert layout["scrollWidth"] <= 1024, f"the page scrolls sideways: {layout['scrollWidth']}"
    assert not layout["cut"], f"cut off or scrolling sideways: {layout['cut']}"
    assert layout["boxes"], "no tick boxes"
    small = [b for b in layout["boxes"] if b[0] < 44 or b[1] < 44]
    assert not small, f"tick boxes under 44 x 44 px: {small}"
    expect(alice.add_button).to_be_in_viewport()  # at the top of the page already
    for code, town in ((spaced_code, spaced), (solid_code, solid)):
        expect(alice.badge(code)).to_have_text(f"in the {town} draft")
        expect(alice.badge(code)).to_be_visible()

    # down the 40-row table, the bar stays on screen, and counts the ticks
    table = alice.parcels.locator("table")
    assert (table.bounding_box() or {"height": 0})["height"] > 2 * 768, "the table is short"
    alice.row(fillers[1]).scroll_into_view_if_needed()
    alice.page.mouse.wheel(0, 600)
    for code in fillers[:3]:
        alice.row(code).scroll_into_view_if_needed()
        alice.tick_box(code).tap()
    expect(alice.ticked_count).to_have_text("3 ticked")
    expect(alice.pick_bar).to_be_in_viewport(ratio=1)
    expect(alice.add_button).to_be_in_viewport(ratio=1)
    assert alice.page.evaluate("window.scrollY") > 400, "the page did not scroll"
    bar = alice.pick_bar.bounding_box()
    assert bar and bar["y"] + bar["height"] <= 768 + 1, bar
    alice.add_button.tap()
    expect(alice.toast("Added 3 parcels.")).to_be_visible(timeout=LIVE)
    expect(alice.draft(filler).count).to_have_text("3 parcels", timeout=LIVE)
    expect(alice.ticked_count).to_have_text("")
    users.assert_clean()


# --- g. finalise, with a confirmation page -------------------------------------------------

DOUBLE_SUBMIT_JS = """async () => {
  const form = document.querySelector("main form[action$='/finalise']");
  const post = () => fetch(form.action, { method: "POST", body: new FormData(form) })
    .then(async (r) => ({ status: r.status, text: await r.text() }));
  return Promise.all([post(), post()]);
}"""


def test_finalising_from_the_confirmation_page_reaches_everyone_once(
    users: UserPages, scratch: Scratch
) -> None:
    town = scratch.town("Finalton")
    codes = scratch.receive(town, 2, kg="12.5")
    scratch.add(*codes)
    scratch.set_transport(town, vehicle="KCC 789C", driver="Grace Njeri")
    alice, bob, charlie = users("alice"), users("bob"), users("charlie")

    confirm = open_finalise(charlie, town)
    expect(confirm.fact("Load")).to_have_text("2 parcels, 25.0 kg of 3500 kg")
    expect(confirm.fact("Vehicle")).to_contain_text("KCC 789C")
    expect(confirm.fact("Driver")).to_have_text("Grace Njeri")
    expect(confirm.not_yet_link).to_be_visible()
    # The form goes twice at once (a double tap, a retry on a bad network): both answers
    # are charlie's own finalise, of one dispatch.
    answers = charlie.page.evaluate(DOUBLE_SUBMIT_JS)
    assert [a["status"] for a in answers] == [200, 200], answers
    numbers = {n for a in answers for n in re.findall(r"Finalised → (D-\d+)</h1>", a["text"])}
    assert len(numbers) == 1, f"two posts, dispatches {numbers}"
    (number,) = numbers
    # a third, late press of the button on the page still open: the same news, no error
    confirm.finalise_button.tap()
    expect(confirm.heading).to_have_text(f"Finalised → {number}")
    expect(confirm.manifest_link).to_have_attribute("href", MANIFEST)

    news = f"{CHARLIE} finalised {town} → {number}"
    for viewer in (alice, bob):
        expect(viewer.toast(news)).to_be_visible(timeout=LIVE)
        expect(viewer.toast(news).get_by_role("link", name="manifest")).to_have_attribute(
            "href", MANIFEST
        )
        expect(viewer.draft(town).root).to_have_count(0, timeout=LIVE)
        for code in codes:
            expect(viewer.row(code)).to_have_count(0)
    alice.page.wait_for_timeout(1000)  # a second dispatch would be announced by now
    for viewer in (alice, bob):
        expect(viewer.toasts.locator(".toast", has_text=f"finalised {town}")).to_have_count(1)

    # one dispatch: one line in the site's activity, linking to its manifest
    alice.page.locator("nav.areas").get_by_role("link", name="Home").click()
    home = SiteHome(alice.page)
    line = home.line(f"finalised the {town} draft")
    expect(line).to_have_count(1)
    expect(line).to_contain_text(f"→ {number} (2 parcels)")
    expect(line.locator(".activity__who")).to_have_text(CHARLIE)
    expect(line.get_by_role("link")).to_have_attribute("href", MANIFEST)

    # the finaliser prints it
    confirm.manifest_link.click()
    expect(charlie.page.get_by_role("heading", level=1)).to_have_text(f"Manifest {number}")
    listed = charlie.page.locator(".sheet__table .code")
    expect(listed).to_have_count(2)
    assert sorted(listed.all_inner_texts()) == sorted(codes)
    # and back on the drafts page it has gone
    charlie.page.goto(DRAFTS)
    back_to_drafts(charlie)
    expect(charlie.draft(town).root).to_have_count(0)
    users.assert_clean()
