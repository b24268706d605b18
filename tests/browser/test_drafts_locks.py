"""The soft-locked vehicle & driver editor of a draft in real browsers (SPEC §4 soft locks).

Opening the editor takes the lock by a form post ("Vehicle & driver" is a button when
nobody edits the draft, a link to the read-only editor when someone does); everyone on the
drafts page sees "Being edited by X", and the badge goes away everywhere as soon as the lock
is released, lapses or is broken. The editor page (`#editor`, `data-lock-state` mine | held |
free | lost) is a live page of the drafts: its lock line changes under it without a reload.

Each test works on a draft of its own (a town made up for it, `scratch`), on 1024x768 touch
tablets side by side; what it made is finalised away afterwards.
"""

from __future__ import annotations

import re
import time

from bs4 import BeautifulSoup
from playwright.sync_api import ConsoleMessage, expect

from tests.browser.conftest import Scratch, is_missing_favicon
from tests.browser.pages import (
    ADA,
    ALICE,
    BOB,
    CHARLIE,
    DRAFTS,
    LIVE,
    DraftsPage,
    SiteHome,
    UserPages,
    back_to_drafts,
    look_at_transport,
    open_transport,
)

UNTIL = r"until \d{1,2}:\d{2}:\d{2}$"
LEAVE = 3000  # ms: a released lock's badge goes within this (SPEC: "as soon as")
LAPSE = 36000  # ms: the lock's 30 s lifetime, then the watcher (every 2 s) clears its badge


def own_draft(scratch: Scratch, name: str, parcels: int = 2) -> str:
    """A draft of this test's own (received and added over HTTP before any page opens)."""
    town = scratch.town(name)
    scratch.add(*scratch.receive(town, parcels))
    return town


# --- a. a manager takes over ---------------------------------------------------------------


def test_a_manager_takes_over_and_the_holder_is_told_at_once(
    users: UserPages, scratch: Scratch
) -> None:
    town = own_draft(scratch, "Takeover")
    bob, alice, admin = users("bob"), users("alice"), users("admin")

    transport = open_transport(bob, town)
    bob.mark()
    for viewer in (alice, admin):
        expect(viewer.draft(town).lock).to_have_text(f"Being edited by {BOB}", timeout=LIVE)
    # the manager looks first: a link (a GET), which takes nothing
    item = admin.draft(town).expand()
    expect(item.transport_button).to_have_count(0)
    held = look_at_transport(admin, town)
    held.expect_state("held")
    expect(held.lock_state).to_have_text(re.compile(rf"^Being edited by {BOB} {UNTIL}"))
    expect(held.driver).to_be_disabled()
    expect(held.save_button).to_be_disabled()
    expect(held.start_button).to_be_hidden()
    bobs_form = transport.form_fields()  # what bob's page would post: his token, the version

    held.take_over_button(BOB).tap()
    held.expect_state("mine")
    expect(held.driver).to_be_editable()
    # bob's editor says so at once, without a reload, and can no longer save
    transport.expect_state("lost", timeout=LIVE)
    expect(transport.lost_alert).to_be_visible()
    expect(transport.lost_alert).to_contain_text("You no longer hold this editor")
    expect(transport.lock_state).to_have_text(re.compile(rf"^Being edited by {ADA} {UNTIL}"))
    expect(transport.driver).to_be_disabled()
    expect(transport.save_button).to_be_disabled()
    expect(transport.keeper).to_have_count(0)  # it stopped renewing a lock it lost
    assert bob.still_marked(), "bob's page was reloaded"
    expect(alice.draft(town).lock).to_have_text(f"Being edited by {ADA}", timeout=LIVE)

    # his save, posted anyway as a plain form, is refused: 423, naming who edits it now
    action = transport.root.locator("form.editor__form").get_attribute("action")
    assert action
    refused = bob.page.request.post(
        action, form={**bobs_form, "driver": "Too Late"}, max_redirects=0
    )
    assert refused.status == 423, f"bob's save answered {refused.status}"
    page = BeautifulSoup(refused.text(), "html.parser")
    editor = page.select_one("#editor")
    assert editor is not None and editor["data-lock-state"] == "lost", editor
    lock_line = page.select_one("#editor .lock-state")
    assert lock_line is not None
    assert re.match(rf"Being edited by {ADA} {UNTIL}", lock_line.get_text().strip())
    assert page.select_one("#editor .editor__fields[disabled]") is not None
    expect(alice.draft(town).driver).to_have_text("not named")  # nothing was saved

    # the manager lets go: the badge goes for everyone
    held.cancel_button.tap()
    back_to_drafts(admin)
    expect(alice.draft(town).lock).to_have_count(0, timeout=LEAVE)
    expect(alice.draft(town).expand().transport_button).to_be_visible()  # free to take

    # the take-over is in the site's trail
    alice.page.locator("nav.areas").get_by_role("link", name="Home").click()
    home = SiteHome(alice.page)
    line = home.line(f"took over editing the {town} draft's vehicle and driver from {BOB}")
    expect(line).to_have_count(1)
    expect(line.locator(".activity__who")).to_have_text(ADA)
    users.assert_clean()


# --- b. the badge goes when its holder goes -------------------------------------------------


def offline_noise(message: ConsoleMessage) -> bool:
    """charlie's tablet loses its network on purpose: its failed requests are logged."""
    return is_missing_favicon(message) or "net::ERR_INTERNET_DISCONNECTED" in message.text


def test_the_lock_badge_clears_when_the_holder_leaves_closes_or_vanishes(
    users: UserPages, scratch: Scratch
) -> None:
    town = own_draft(scratch, "Leaving")
    alice, bob = users("alice"), users("bob")
    charlie = users("charlie", ignore=offline_noise)
    watchers = (alice, bob)
    for viewer in watchers:
        viewer.draft(town).expand()  # stays open through every update (morphing keeps it)

    def badge_shows() -> None:
        for viewer in watchers:
            expect(viewer.draft(town).lock).to_have_text(f"Being edited by {CHARLIE}", timeout=LIVE)

    def badge_gone(timeout: float) -> None:
        for viewer in watchers:
            expect(viewer.draft(town).lock).to_have_count(0, timeout=timeout)
            expect(viewer.draft(town).transport_button).to_be_visible()  # free to take

    # 1. he goes back by "← All drafts" (a boosted link: the page lets go as it leaves)
    transport = open_transport(charlie, town)
    badge_shows()
    transport.all_drafts_link.tap()
    back_to_drafts(charlie)
    badge_gone(LEAVE)
    expect(charlie.draft(town).lock).to_have_count(0)

    # 2. he closes the tab
    open_transport(charlie, town)
    badge_shows()
    context = charlie.page.context
    charlie.page.close()
    badge_gone(LEAVE)

    # 3. his tablet drops off the network: nothing can be sent, the lock lapses (30 s)
    page = context.new_page()
    page.goto(DRAFTS)
    charlie = DraftsPage(page).wait_live()
    open_transport(charlie, town)
    badge_shows()
    context.set_offline(True)
    started = time.monotonic()
    badge_gone(LAPSE)
    took = time.monotonic() - started
    assert took < LAPSE / 1000, f"the lapsed lock's badge took {took:.1f} s to go"
    users.assert_clean("alice", "bob")


# --- c. a locked-out viewer sees it free up ----------------------------------------------


def test_the_locked_out_editor_notices_when_the_lock_frees(
    users: UserPages, scratch: Scratch
) -> None:
    town = own_draft(scratch, "Waiting")
    alice, bob = users("alice"), users("bob")
    mine = open_transport(alice, town)
    expect(bob.draft(town).lock).to_have_text(f"Being edited by {ALICE}", timeout=LIVE)

    theirs = look_at_transport(bob, town)
    theirs.expect_state("held")
    expect(theirs.lock_state).to_have_text(re.compile(rf"^Being edited by {ALICE} {UNTIL}"))
    expect(theirs.held_note).to_be_visible()
    expect(theirs.vehicle).to_be_disabled()
    expect(theirs.driver).to_be_disabled()
    expect(theirs.save_button).to_be_disabled()
    expect(theirs.start_button).to_be_hidden()
    expect(theirs.back_button).to_be_visible()
    expect(theirs.take_over_button(ALICE)).to_have_count(0)  # bob is no manager
    bob.mark()

    mine.cancel_button.tap()
    back_to_drafts(alice)
    # bob's editor follows, without a reload
    theirs.expect_state("free", timeout=LIVE)
    expect(theirs.lock_state).to_have_text("Nobody is editing this now.")
    expect(theirs.start_button).to_be_visible()
    expect(theirs.held_note).to_be_hidden()
    assert bob.still_marked(), "bob's page was reloaded"

    # and he can take it now
    theirs.start_button.tap()
    theirs.expect_state("mine")
    expect(alice.draft(town).lock).to_have_text(f"Being edited by {BOB}", timeout=LIVE)
    theirs.save(vehicle="KDA 456B", driver="Peter Otieno")
    back_to_drafts(bob)
    expect(alice.draft(town).driver).to_have_text("Peter Otieno", timeout=LIVE)
    expect(alice.draft(town).lock).to_have_count(0)
    users.assert_clean()


# --- d. to the editor and back is not leaving ----------------------------------------------


def test_going_to_the_editor_and_back_shows_no_left_or_joined(
    users: UserPages, scratch: Scratch
) -> None:
    town = own_draft(scratch, "Roundtrip")
    alice = users("alice")
    # Whoever the previous test left on this page is gone (and said so) before bob comes:
    # only what bob's own round trips cause is counted below.
    expect(alice.page.locator("#presence .avatar")).to_have_count(1, timeout=20000)
    alice.record_toasts()
    bob = users("bob")
    expect(alice.toast(f"{BOB} joined")).to_have_count(1, timeout=3000)
    bobs_avatar = alice.page.locator(f'#presence .avatar[title="{BOB}"]')
    expect(bobs_avatar).to_have_count(1)

    # to the editor and back by its link …
    transport = open_transport(bob, town)
    alice.page.wait_for_timeout(2500)  # a leave would show within 2 s
    expect(bobs_avatar).to_have_count(1)
    transport.all_drafts_link.click()
    back_to_drafts(bob)
    expect(alice.draft(town).lock).to_have_count(0, timeout=LEAVE)
    # … and again, back by the browser's back button
    open_transport(bob, town)
    bob.page.go_back()
    expect(bob.drafts).to_be_visible()
    bob.wait_live()
    expect(alice.draft(town).lock).to_have_count(0, timeout=LEAVE)
    alice.page.wait_for_timeout(2500)

    expect(bobs_avatar).to_have_count(1)
    about_bob = [t for t in alice.toasts_seen() if BOB in t]
    assert about_bob == [f"{BOB} joined"], f"alice was told: {about_bob}"
    users.assert_clean()
