"""Page objects for the live pages (sync Playwright).

- `SiteHome` (/s/{site}/) and `NoticeEditor` (/s/{site}/notice);
- `DraftsPage`, `DraftItem` (one draft in the accordion), `TransportPage` (a draft's vehicle
  and driver), `FinalisePage` (the confirmation page) on /s/nairobi/drafts;
- `LockEditorPage`: what every soft-locked editor has (`#editor.editor`, its
  `data-lock-state` mine | held | free | lost, the live `.lock-state` line, Save, Cancel/Back,
  "Start editing", "Take over from X");
- `UserPages`: several signed-in users side by side, each on the drafts page;
- `BoardPage` (one ticket board: columns, cards, "Move to…", Edit, Delete…, Add),
  `TicketEditor` (a card's editor), `TicketView` (a card's page with its comments) and
  `BoardUsers` (several users side by side on one board) on /s/{site}/boards/{board};
- `AppointmentsPage` (one day's dashboard: "New appointment", the bookings and their
  buttons, the schedule grid) and `AppointmentUsers` (several users side by side on one
  day) on /s/{site}/appointments?day=….
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Error, Locator, Page, expect

from tests.browser.conftest import PageProblems, describe, is_missing_favicon, sign_in

LIVE = 2000  # ms: SPEC §4/§5.1, a change reaches every viewer within 2 s
DRAFTS = "/s/nairobi/drafts"
DRAFTS_URL = re.compile(r"/s/nairobi/drafts/?(#.*)?$")
TABLET: dict[str, Any] = {"viewport": {"width": 1024, "height": 768}, "has_touch": True}
ALICE, BOB, CHARLIE, ADA = "Alice Wanjiru", "Bob Wilson", "Charlie Smith", "Ada Manager"

# Every state change of #live-status, recorded in the page itself: a Python call that blocks
# (a server restart) cannot watch the pill, but can read what it showed afterwards.
RECORD_PILL_JS = """() => {
  const pill = document.getElementById("live-status");
  window.__pill = [pill.dataset.state];
  new MutationObserver(() => {
    const s = pill.dataset.state;
    if (window.__pill[window.__pill.length - 1] !== s) window.__pill.push(s);
  }).observe(pill, { attributes: true, attributeFilter: ["data-state"] });
}"""

# Every toast ever shown in #toasts (they remove themselves after 6 s).
RECORD_TOASTS_JS = """() => {
  const box = document.getElementById("toasts");
  window.__toasts = [];
  new MutationObserver((changes) => {
    for (const c of changes) for (const n of c.addedNodes)
      if (n.nodeType === 1) window.__toasts.push(n.textContent.trim());
  }).observe(box, { childList: true });
}"""


def location(page: Page) -> str:
    """Where the page is. Not `page.url`: Playwright misses a history.pushState to a URL with
    a #fragment (htmx's boosted answers land on `/s/nairobi/drafts#draft-7`)."""
    return page.evaluate("location.href")


def expect_location(page: Page, pattern: re.Pattern[str], timeout: float = 5000) -> None:
    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            href = location(page)
        except Error:  # between two documents
            href = ""
        if pattern.search(href):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"expected the page at {pattern.pattern}, it is at {href}")
        page.wait_for_timeout(100)


# --- the site home -----------------------------------------------------------------------


class SiteHome:
    """The live site home, /s/{site}/: status pill, presence, toasts, notice, notes, activity."""

    def __init__(self, page: Page, site: str = "nairobi") -> None:
        self.page = page
        self.path = f"/s/{site}/"
        self.status = page.locator("#live-status")
        self.presence = page.locator("#presence")
        self.presence_count = page.locator("#presence .presence__count")
        self.toasts = page.locator("#toasts")
        self.activity = page.locator("#activity")
        self.activity_lines = page.locator("#activity .activity__line")
        self.note_form = page.locator("#note-form")
        self.note_field = page.locator("#note-form").get_by_role("textbox")
        self.post_button = page.get_by_role("button", name="Post note")
        self.notice = page.locator("#notice")
        self.lock_badge = page.locator("#notice .notice__lock")
        self.edit_notice_button = self.notice.get_by_role("button", name="Edit notice")
        self.open_notice_link = self.notice.get_by_role("link", name="Open notice")
        self.live_frame = page.locator("iframe.live-frame")

    def open(self) -> SiteHome:
        self.page.goto(self.path)
        return self

    def avatar(self, full_name: str) -> Locator:
        """A viewer's avatar in #presence (its title is the full name)."""
        return self.presence.locator(f'.avatar[title="{full_name}"]')

    def toast(self, text: str) -> Locator:
        return self.toasts.locator(".toast", has_text=text)

    def line(self, text: str | re.Pattern[str]) -> Locator:
        """Activity lines containing `text`."""
        return self.activity_lines.filter(has_text=text)

    def post_note(self, text: str) -> None:
        """Fill the note form and submit it (an htmx post with JS, a plain post without)."""
        self.note_field.fill(text)
        self.post_button.click()

    def record_pill(self) -> None:
        self.page.evaluate(RECORD_PILL_JS)

    def pill_history(self) -> list[str]:
        return self.page.evaluate("window.__pill")


# --- soft-locked editors -----------------------------------------------------------------


class LockEditorPage:
    """`#editor.editor`: the kit's soft-locked editor (templates/_macros.html lock_editor)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.root = page.locator("#editor")
        self.lock_state = self.root.locator(".lock-state")  # "Being edited by X until …"
        self.fields = self.root.locator(".editor__fields")
        self.save_button = self.root.get_by_role("button", name="Save", exact=True)
        self.cancel_button = self.root.get_by_role("button", name="Cancel", exact=True)
        self.back_button = self.root.get_by_role("button", name="Back", exact=True)
        self.start_button = self.root.get_by_role("button", name="Start editing")
        self.held_note = self.root.locator(".editor__held")
        self.lost_alert = self.root.locator(".editor__lost")
        self.keeper = page.locator("#lock-keeper")

    def take_over_button(self, holder: str) -> Locator:
        return self.root.get_by_role("button", name=f"Take over from {holder}")

    def expect_state(self, state: str, timeout: float = 5000) -> None:
        expect(self.root).to_have_attribute("data-lock-state", state, timeout=timeout)

    def form_fields(self) -> dict[str, str]:
        """The editor form's fields as this page would post them (token, version, values)."""
        return self.root.locator("form.editor__form").evaluate(
            """(form) => {
              const out = {};
              for (const el of form.elements) if (el.name) out[el.name] = el.value;
              return out;
            }"""
        )


class NoticeEditor(LockEditorPage):
    """/s/{site}/notice: the site notice under a soft lock. It is opened by the site home's
    "Edit notice" button (a POST that takes the lock), or looked at by "Open notice"."""

    def __init__(self, page: Page, site: str = "nairobi") -> None:
        super().__init__(page)
        self.path = f"/s/{site}/notice"
        self.text = page.locator("#f-text")

    def open_from(self, home: SiteHome) -> NoticeEditor:
        """Press "Edit notice" on the site home: the lock is taken, the editor is mine."""
        home.edit_notice_button.click()
        self.expect_state("mine")
        return self


class TransportPage(LockEditorPage):
    """/s/nairobi/drafts/{id}/transport: a draft's vehicle and driver, under a soft lock."""

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.vehicle = page.locator("#t-vehicle")
        self.driver = page.locator("#t-driver")
        self.all_drafts_link = page.get_by_role("link", name="← All drafts")

    def choose_vehicle(self, registration: str) -> None:
        option = self.vehicle.locator("option").filter(
            has_text=re.compile(rf"^\s*{re.escape(registration)}\b")
        )
        self.vehicle.select_option(value=option.get_attribute("value"))

    def save(self, *, vehicle: str | None = None, driver: str | None = None) -> None:
        """Fill in and save; the answer is the drafts page again (at the draft's anchor)."""
        expect(self.save_button).to_be_enabled()
        if vehicle is not None:
            self.choose_vehicle(vehicle)
        if driver is not None:
            self.driver.fill(driver)
        self.save_button.click()
        expect(self.page.locator("#drafts")).to_be_visible()
        expect_location(self.page, DRAFTS_URL)


# --- the drafts page ---------------------------------------------------------------------


class DraftItem:
    """One draft in the #drafts accordion: `<details class="draft" data-destination=…>`."""

    def __init__(self, page: Page, destination: str) -> None:
        self.page = page
        self.destination = destination
        self.root = page.locator(f'#drafts details.draft[data-destination="{destination}"]')
        self.summary = self.root.locator("summary")
        self.title = self.root.locator(".draft__title")
        self.count = self.summary.locator(".badge--info")
        self.lock = self.root.locator(".draft__lock")
        self.vehicle = self.root.locator(".draft__vehicle")
        self.driver = self.root.locator(".draft__driver")
        self.created = self.root.locator(".draft__created")
        self.updated = self.root.locator(".draft__updated")
        self.contributors = self.root.locator(".draft__contributors .badge")
        self.parcels = self.root.locator(".draft__parcels li")
        self.codes = self.root.locator(".draft__parcels li .code")
        # Free: a button (a POST that takes the lock). Held by someone: a link to look.
        self.transport_button = self.root.get_by_role("button", name="Vehicle & driver")
        self.transport_link = self.root.get_by_role("link", name="Vehicle & driver")
        self.load_sheet_link = self.root.get_by_role("link", name="Load sheet")
        self.clear_link = self.root.get_by_role("link", name="Clear…")
        self.finalise_link = self.root.get_by_role("link", name="Finalise…")

    def expand(self) -> DraftItem:
        """Open the accordion item (a native <details>: works without JavaScript too)."""
        expect(self.root).to_be_attached()
        if self.root.get_attribute("open") is None:
            self.summary.click()
        expect(self.root).to_have_attribute("open", "")
        return self

    def is_open(self) -> bool:
        return self.root.evaluate("(el) => el.open")

    def id(self) -> int:
        return int((self.root.get_attribute("id") or "").removeprefix("draft-"))


class DraftsPage:
    """/s/nairobi/drafts: scan box, receive form, #drafts (accordion), #parcels (tick boxes)."""

    def __init__(self, page: Page, problems: PageProblems | None = None) -> None:
        self.page = page
        self.problems = problems
        self.status = page.locator("#live-status")
        self.drafts = page.locator("#drafts")
        self.parcels = page.locator("#parcels")
        self.rows = page.locator("#parcel-rows tr.parcel")
        self.scan_field = page.locator("#scan-code")
        self.scan_button = page.get_by_role("button", name="Add to its draft")
        self.scan_error = page.locator("#scan-form .field__error")
        self.receive = page.locator("details.receive")
        self.receive_form = page.locator("#receive-form")
        self.receive_button = page.get_by_role("button", name="Receive parcel")
        self.pick_bar = page.locator("#parcels .pick-bar")
        self.ticked_count = page.locator("[data-ticked-count]")
        self.add_button = page.get_by_role("button", name="Add ticked parcels to their drafts")
        self.messages = page.locator(".messages .alert")
        self.toasts = page.locator("#toasts")
        self.live_frame = page.locator("iframe.live-frame")

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

    def tick_box(self, code: str) -> Locator:
        return self.row(code).locator('input[type=checkbox][name="parcel"]')

    def tick(self, *codes: str) -> None:
        for code in codes:
            self.tick_box(code).check()

    def add_ticked(self) -> None:
        self.add_button.click()

    def scan(self, code: str) -> None:
        self.scan_field.fill(code)
        self.scan_button.click()

    def receive_parcel(self, code: str, destination: str, what: str, kg: str) -> None:
        """Open "Receive a parcel", fill it in and post it."""
        if self.receive.get_attribute("open") is None:
            self.receive.locator("summary").click()
        self.page.locator("#r-code").fill(code)
        self.page.locator("#r-destination").fill(destination)
        self.page.locator("#r-description").fill(what)
        self.page.locator("#r-weight").fill(kg)
        self.receive_button.click()

    def toast(self, text: str | re.Pattern[str]) -> Locator:
        return self.toasts.locator(".toast", has_text=text)

    # "no reload": a mark on window survives swaps and morphs, not a reload or a navigation
    def mark(self) -> None:
        self.page.evaluate("window.__notReloaded = true")

    def still_marked(self) -> bool:
        return self.page.evaluate("window.__notReloaded === true")

    def record_toasts(self) -> None:
        self.page.evaluate(RECORD_TOASTS_JS)

    def toasts_seen(self) -> list[str]:
        return self.page.evaluate("window.__toasts")


class FinalisePage:
    """/s/nairobi/drafts/{id}/finalise: what is about to go (load, vehicle, driver), and the
    one button that turns the draft into a dispatch."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.heading = page.get_by_role("heading", level=1)
        self.facts = page.locator("main dl.draft__facts")
        self.finalise_button = page.get_by_role("button", name="Finalise → dispatch")
        self.not_yet_link = page.get_by_role("link", name="Not yet")
        self.manifest_link = page.get_by_role("link", name="Print the manifest")
        self.back_link = page.get_by_role("link", name="Back to the drafts")

    def fact(self, name: str) -> Locator:
        return (
            self.facts.locator("div")
            .filter(has=self.page.locator("dt", has_text=name))
            .locator("dd")
        )


FINALISED = re.compile(r"^Finalised → (D-\d+)$")  # the finaliser's own heading


def open_transport(drafts: DraftsPage, destination: str) -> TransportPage:
    """Press the draft's "Vehicle & driver" (a POST that takes the lock): the editor, mine."""
    item = drafts.draft(destination).expand()
    item.transport_button.click()
    transport = TransportPage(drafts.page)
    transport.expect_state("mine")
    expect(transport.vehicle).to_be_enabled()
    return transport


def look_at_transport(drafts: DraftsPage, destination: str) -> TransportPage:
    """Someone else edits it: follow the "Vehicle & driver" link to the read-only editor."""
    item = drafts.draft(destination).expand()
    item.transport_link.click()
    transport = TransportPage(drafts.page)
    expect(transport.root).to_be_visible()
    return transport


def back_to_drafts(drafts: DraftsPage) -> None:
    """After a boosted save the page is the drafts page again, with a new stream."""
    expect(drafts.drafts).to_be_visible()
    expect_location(drafts.page, DRAFTS_URL)
    drafts.wait_live()


def open_finalise(drafts: DraftsPage, destination: str) -> FinalisePage:
    """ "Finalise…" is a link to the confirmation page."""
    drafts.draft(destination).expand().finalise_link.click()
    confirm = FinalisePage(drafts.page)
    expect(confirm.heading).to_have_text(f"Finalise the {destination} draft?")
    return confirm


def finalise(drafts: DraftsPage, destination: str) -> str:
    """Finalise from the confirmation page; returns the dispatch number the finaliser sees."""
    confirm = open_finalise(drafts, destination)
    confirm.finalise_button.click()
    expect(confirm.heading).to_have_text(FINALISED)
    expect(confirm.manifest_link).to_be_visible()
    match = FINALISED.match(confirm.heading.inner_text().strip())
    assert match, describe(drafts.page)
    return match.group(1)


class UserPages:
    """`users("alice")` -> a DraftsPage, signed in, in its own context (a 1024x768 touch
    tablet unless told otherwise), open on the drafts page and streaming; watched for
    console errors and CSP violations from the sign-in on."""

    def __init__(self, new_context: Callable[..., Any], base_url: str) -> None:
        self.new_context = new_context
        self.base_url = base_url
        self.pages: dict[str, DraftsPage] = {}

    def __call__(
        self,
        username: str,
        *,
        ignore: Callable[[Any], bool] = is_missing_favicon,
        **context_args: Any,
    ) -> DraftsPage:
        page = self.new_context(**{**TABLET, **context_args}).new_page()
        problems = PageProblems.watch(page, ignore=ignore)
        sign_in(page, self.base_url, username, next_path=DRAFTS)
        if not DRAFTS_URL.search(page.url):
            pytest.fail(f"{username} did not land on the drafts page: {describe(page)}")
        drafts = DraftsPage(page, problems).wait_live()
        self.pages[username] = drafts
        return drafts

    def assert_clean(self, *only: str) -> None:
        for username, drafts in self.pages.items():
            if only and username not in only:
                continue
            assert drafts.problems is not None
            try:
                drafts.problems.assert_clean()
            except AssertionError as exc:
                raise AssertionError(f"{username}'s page: {exc}") from None


# --- ticket boards -------------------------------------------------------------------------

# Holds back what the page's stream brings until thawed: a screen that has not caught up
# yet (a slow link, a tab that was asleep), so a test can act on what it still shows. htmx's
# SSE extension awaits every promise given to `waitUntil` in `htmx:sse:before:message`
# before it swaps that message (and the ones after it): nothing is lost, only late.
FREEZE_JS = """() => {
  if (!window.__freeze) {
    window.__freeze = { held: null, release: null };
    document.addEventListener("htmx:sse:before:message", (e) => {
      if (window.__freeze.held) e.detail.waitUntil(window.__freeze.held);
    }, true);
  }
  window.__freeze.held = new Promise((resolve) => { window.__freeze.release = resolve; });
}"""
THAW_JS = """() => {
  const f = window.__freeze;
  if (f && f.held) { f.held = null; f.release(); }
}"""


class TicketEditor(LockEditorPage):
    """/s/{site}/boards/{board}/tickets/{id}/edit: a card's fields under a soft lock (open
    by the card's "Edit" button, a POST that takes the lock; left by Cancel, "← The board",
    or by saving)."""

    def __init__(self, page: Page) -> None:
        super().__init__(page)
        self.heading = page.get_by_role("heading", level=1)
        self.title = page.locator("#editor").get_by_label("Title", exact=True)
        self.description = page.locator("#editor").get_by_label("Description", exact=True)
        self.board_link = page.get_by_role("link", name="← The board")

    def save(self, *, title: str | None = None, description: str | None = None) -> None:
        """Fill in and press Save; the answer is the board again (at the card's anchor)."""
        expect(self.save_button).to_be_enabled()
        if title is not None:
            self.title.fill(title)
        if description is not None:
            self.description.fill(description)
        self.save_button.click()


class TicketView:
    """/s/{site}/boards/{board}/tickets/{id}: one card with its comments (a page of the
    board: the same stream and presence list)."""

    def __init__(self, page: Page, ticket_id: int) -> None:
        self.page = page
        self.ticket_id = ticket_id
        self.heading = page.get_by_role("heading", level=1)
        self.card = page.locator(f"#ticket-{ticket_id}")
        self.comments = page.locator(f"#comments-{ticket_id} > li")
        self.comment_field = page.get_by_label("Add a comment")
        self.comment_button = page.get_by_role("button", name="Comment", exact=True)
        self.comment_count = self.card.get_by_text(re.compile(r"^\d+ comments?$"))
        self.status = page.locator("#live-status")

    def comment(self, text: str) -> None:
        self.comment_field.fill(text)
        self.comment_button.click()

    def wait_live(self) -> TicketView:
        expect(self.status).to_have_attribute("data-state", "live", timeout=5000)
        return self


class BoardPage:
    """/s/{site}/boards/{board}: columns (`#column-<id>`, their cards in `#cards-<id>`),
    cards (`#ticket-<id>`, each with Edit, "Delete…" and a "Move to…" page: one list of places,
    "Move #N"), "Add a ticket", presence, toasts and (without JavaScript) messages."""

    def __init__(self, page: Page, path: str, problems: PageProblems | None = None) -> None:
        self.page = page
        self.path = path.rstrip("/")
        self.url_pattern = re.compile(rf"{re.escape(self.path)}/?(#.*)?$")
        self.problems = problems
        self.status = page.locator("#live-status")
        self.presence = page.locator("#presence")
        self.presence_count = page.locator("#presence .presence__count")
        self.columns = page.locator("#columns")
        self.toasts = page.locator("#toasts")
        self.messages = page.locator("main .messages .alert")
        self.alerts = page.locator("main [role=alert]")  # a refusal said on the page
        self.live_frame = page.locator("iframe.live-frame")
        self.new_ticket = page.locator("details.new-ticket")
        self.new_ticket_form = page.locator("#new-ticket-form")

    # -- where --------------------------------------------------------------------------

    def open(self) -> BoardPage:
        self.page.goto(self.path)
        return self

    def wait_live(self) -> BoardPage:
        expect(self.status).to_have_attribute("data-state", "live", timeout=5000)
        return self

    def expect_here(self, timeout: float = 5000) -> None:
        expect_location(self.page, self.url_pattern, timeout)
        expect(self.columns).to_be_visible()

    # -- what is on it --------------------------------------------------------------------

    def avatar(self, full_name: str) -> Locator:
        return self.presence.locator(f'.avatar[title="{full_name}"]')

    def column(self, column_id: int) -> Locator:
        return self.page.locator(f"#column-{column_id}")

    def card(self, ticket_id: int) -> Locator:
        return self.page.locator(f"#ticket-{ticket_id}")

    def card_in(self, column_id: int, ticket_id: int) -> Locator:
        return self.page.locator(f"#column-{column_id} #ticket-{ticket_id}")

    def cards_in(self, column_id: int) -> Locator:
        return self.page.locator(f"#cards-{column_id} > li[id^='ticket-']")

    def order_in(self, column_id: int) -> list[int]:
        """The ids of a column's cards, top to bottom."""
        ids = self.cards_in(column_id).evaluate_all("(cards) => cards.map((c) => c.id)")
        return [int(i.removeprefix("ticket-")) for i in ids]

    def columns_showing(self, ticket_id: int) -> list[int]:
        """The ids of every column that shows the card now (one, unless the page is wrong)."""
        ids = self.page.locator(f"[id='ticket-{ticket_id}']").evaluate_all(
            "(cards) => cards.map((c) => c.closest('section[id^=column-]')?.id || '')"
        )
        return [int(i.removeprefix("column-")) for i in ids if i]

    def card_title(self, ticket_id: int) -> Locator:
        return self.card(ticket_id).locator(f"a[href$='/tickets/{ticket_id}']").first

    def editing_badge(self, ticket_id: int) -> Locator:
        """ "Alice Wanjiru is editing #3" on the card while her editor is open."""
        return self.card(ticket_id).get_by_text(re.compile(r" is editing #\d+"))

    def toast(self, text: str | re.Pattern[str]) -> Locator:
        return self.toasts.locator(".toast", has_text=text)

    # -- actions ----------------------------------------------------------------------------

    def choose_move(self, ticket_id: int, column: str, place: str = "Bottom") -> Locator:
        """Follow the card's "Move to…" to its page and pick the place: "Top", "Bottom" or
        "After #N" of `column` (its only place, "Top of …", when it is empty); the page's
        submit button."""
        self.card(ticket_id).get_by_role("link", name=re.compile(r"^Move to…")).click()
        expect(self.page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Move #"))
        places = self.page.get_by_label("Move to", exact=True)
        labels = places.locator("option").all_inner_texts()
        wanted = {
            "Top": lambda t: t == f"Top of {column}",
            "Bottom": lambda t: t == f"Bottom of {column}",
        }.get(place, lambda t: t.startswith(f"{column}: after {place.removeprefix('After ')} "))
        chosen = [t for t in labels if wanted(t)] or (
            [f"Top of {column}"] if place == "Bottom" else []
        )
        assert chosen, f"no place {place!r} in {column}: {labels}"
        places.select_option(label=chosen[0])
        return self.page.get_by_role("button", name=re.compile(r"^Move #\d+$"))

    def move(self, ticket_id: int, column: str, place: str = "Bottom") -> int:
        """Move a card through its "Move to…" page; returns once the answer is in (the HTTP
        status of the POST: 204 + HX-Location under htmx, 303 for a plain form, 409 for a
        stale one) and the board is shown again."""
        button = self.choose_move(ticket_id, column, place)
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith(f"/tickets/{ticket_id}/move")
        ) as answer:
            button.click()
        expect(self.page.locator("#columns")).to_be_visible()
        return answer.value.status

    def move_by_key(self, ticket_id: int, key: str) -> int:
        """The in-page move: focus the card's drag handle, press an arrow key ("ArrowRight":
        to the top of the next column); the HTTP status of the POST (200, or 409)."""
        handle = self.card(ticket_id).locator(".ticket__handle")
        handle.focus()
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith(f"/tickets/{ticket_id}/move")
        ) as answer:
            handle.press(key)
        return answer.value.status

    def open_editor(self, ticket_id: int) -> TicketEditor:
        """The card's "Edit" (a POST that takes the lock): its editor, mine."""
        self.card(ticket_id).get_by_role("button", name=re.compile(r"^Edit\b")).click()
        editor = TicketEditor(self.page)
        editor.expect_state("mine")
        return editor

    def add_ticket(self, title: str, column: str | None = None) -> None:
        """Open "Add a ticket", fill in its title (and column) and press Add."""
        if self.new_ticket.get_attribute("open") is None:
            self.new_ticket.locator("summary").click()
        form = self.new_ticket_form
        if column is not None:
            form.get_by_label("Column", exact=True).select_option(label=column)
        form.get_by_label("Title", exact=True).fill(title)
        form.get_by_role("button", name="Add", exact=True).click()

    def open_delete(self, ticket_id: int) -> Locator:
        """The card's "Delete…" link: the confirmation page; its Delete button."""
        self.card(ticket_id).get_by_role("link", name=re.compile(r"^Delete…")).click()
        expect(self.page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Delete #"))
        return self.page.get_by_role("button", name=re.compile(r"^Delete #\d+$"))

    def open_ticket(self, ticket_id: int) -> TicketView:
        self.card_title(ticket_id).click()
        view = TicketView(self.page, ticket_id)
        expect(view.comment_field).to_be_visible()
        return view

    # -- "no reload", and a screen that has not caught up ------------------------------------

    def mark(self) -> None:
        self.page.evaluate("window.__notReloaded = true")

    def still_marked(self) -> bool:
        return self.page.evaluate("window.__notReloaded === true")

    def freeze(self) -> None:
        """From now on the stream's messages wait: the screen stays as it is."""
        self.page.evaluate(FREEZE_JS)

    def thaw(self) -> None:
        """The messages held back are swapped in, in order; the stream flows again."""
        self.page.evaluate(THAW_JS)


class BoardUsers:
    """`viewers("alice", "/s/nairobi/boards/7")` -> a BoardPage, signed in, in its own
    context (a 1024x768 touch tablet unless told otherwise), open on that board and
    streaming; watched for console errors and CSP violations from the sign-in on."""

    def __init__(self, new_context: Callable[..., Any], base_url: str) -> None:
        self.new_context = new_context
        self.base_url = base_url
        self.pages: dict[str, BoardPage] = {}

    def __call__(
        self,
        username: str,
        path: str,
        *,
        ignore: Callable[[Any], bool] = is_missing_favicon,
        **context_args: Any,
    ) -> BoardPage:
        page = self.new_context(**{**TABLET, **context_args}).new_page()
        problems = PageProblems.watch(page, ignore=ignore)
        sign_in(page, self.base_url, username, next_path=path)
        board = BoardPage(page, path, problems)
        if not board.url_pattern.search(page.url):
            pytest.fail(f"{username} did not land on the board: {describe(page)}")
        self.pages[username] = board.wait_live()
        return board

    def assert_clean(self, *only: str) -> None:
        for username, board in self.pages.items():
            if only and username not in only:
                continue
            assert board.problems is not None
            try:
                board.problems.assert_clean()
            except AssertionError as exc:
                raise AssertionError(f"{username}'s page: {exc}") from None


# --- appointments ----------------------------------------------------------------------------


class AppointmentsPage:
    """/s/{site}/appointments?day=YYYY-MM-DD: one day's dashboard — the "New appointment"
    form (a native <details>, a whole-page boosted form), the day's region `#day-<date>`
    with its counts, the bookings list (`#appointment-<id>`, each with its status badge and
    buttons: "Check in", "Start", "Finish", "Edit", and "More…" hiding "No-show" and
    "Cancel the booking") and the bays' schedule grid (`.schedule a.slot`, a block per
    booking still on). Messages after a redirect (no JavaScript) and toasts (htmx)."""

    def __init__(
        self,
        page: Page,
        day: str,
        site: str = "workshop",
        problems: PageProblems | None = None,
    ) -> None:
        self.page = page
        self.day = day
        self.site = site
        self.base = f"/s/{site}/appointments"
        self.path = f"{self.base}?day={day}"
        self.url_pattern = re.compile(rf"{re.escape(self.base)}/?\?day={re.escape(day)}(#.*)?$")
        self.problems = problems
        self.status = page.locator("#live-status")
        self.presence_count = page.locator("#presence .presence__count")
        self.toasts = page.locator("#toasts")
        self.messages = page.locator("main .messages .alert")
        self.alerts = page.locator("main > [role=alert]")  # a refusal said on the page
        self.live_frame = page.locator("iframe.live-frame")
        self.region = page.locator(f"#day-{day}")
        self.counts = self.region.locator(".day__counts")
        self.bookings = self.region.locator("li.booking")
        self.slots = self.region.locator(".schedule a.slot")
        self.bay_heads = self.region.locator(".schedule .schedule__bay")
        self.hour_heads = self.region.locator(".schedule .schedule__hour")
        self.new_appointment = page.locator("details.new-appointment")
        self.form = page.locator("#new-appointment-form")
        self.book_button = self.form.get_by_role("button", name="Book", exact=True)

    # -- where --------------------------------------------------------------------------

    def open(self) -> AppointmentsPage:
        self.page.goto(self.path)
        return self

    def expect_here(self, timeout: float = 5000) -> None:
        expect_location(self.page, self.url_pattern, timeout)
        expect(self.region).to_be_visible()

    def wait_live(self) -> AppointmentsPage:
        expect(self.status).to_have_attribute("data-state", "live", timeout=5000)
        return self

    # -- what is on it --------------------------------------------------------------------

    def booking(self, customer: str) -> Locator:
        """A booking's row in the list, by its customer (unique in a test)."""
        return self.bookings.filter(
            has=self.page.locator(".booking__who strong", has_text=customer)
        )

    def booking_id(self, customer: str) -> int:
        return int((self.booking(customer).get_attribute("id") or "").removeprefix("appointment-"))

    def badge(self, customer: str) -> Locator:
        """The booking's status word ("Scheduled", "Checked in", …)."""
        return self.booking(customer).locator(".status")

    def slot(self, customer: str) -> Locator:
        """The booking's block in the schedule grid."""
        return self.slots.filter(has=self.page.locator(".slot__who", has_text=customer))

    def button(self, customer: str, label: str) -> Locator:
        """A booking's button by the word on it ("Check in", "Start", "Finish", "Edit",
        "Cancel the booking", "No-show"); its accessible name adds the customer."""
        return self.booking(customer).get_by_role(
            "button", name=re.compile(rf"^{re.escape(label)}\b")
        )

    def more(self, customer: str) -> Locator:
        """The booking's "More…" (a <summary>) that hides No-show and Cancel."""
        return self.booking(customer).locator("details.booking__more > summary")

    def job_link(self, customer: str) -> Locator:
        return self.booking(customer).get_by_role("link", name="The job on the workflow board")

    def toast(self, text: str | re.Pattern[str]) -> Locator:
        return self.toasts.locator(".toast", has_text=text)

    # -- actions ----------------------------------------------------------------------------

    def fill_booking(
        self,
        *,
        customer: str,
        service: str,
        bay: str,
        starts: str,
        ends: str,
        phone: str = "",
        registration: str = "",
        make_model: str = "",
    ) -> None:
        """Open "New appointment" and fill it in (`starts`/`ends` as "09:00" on this page's
        day, or a whole "YYYY-MM-DDTHH:MM")."""
        if self.new_appointment.get_attribute("open") is None:
            self.new_appointment.locator("summary").click()
        expect(self.form).to_be_visible()
        form = self.form
        form.get_by_label("Customer", exact=True).fill(customer)
        form.get_by_label("Phone", exact=True).fill(phone)
        form.get_by_label("Vehicle registration", exact=True).fill(registration)
        form.get_by_label("Make and model", exact=True).fill(make_model)
        form.get_by_label("Service", exact=True).fill(service)
        form.get_by_label("Bay", exact=True).select_option(label=bay)
        form.get_by_label("Starts", exact=True).fill(self.moment(starts))
        form.get_by_label("Ends", exact=True).fill(self.moment(ends))

    def moment(self, at: str) -> str:
        """ "09:00" on this page's day as a datetime-local field takes it."""
        return at if "T" in at else f"{self.day}T{at}"

    def book(self, **fields: str) -> int:
        """Fill in "New appointment" and press Book; returns the HTTP status of the POST
        once it has been answered: a booking made is 204 + HX-Location under htmx (a boosted
        form), 303 for a plain form; one refused is 422 (the page, messages at the fields)."""
        self.fill_booking(**fields)
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith(self.base)
        ) as answer:
            self.book_button.click()
        return answer.value.status

    def press(self, customer: str, label: str) -> int:
        """Press one of a booking's buttons (opening "More…" first for No-show and Cancel);
        the HTTP status of its POST once answered (200 under htmx, 303 for a plain form,
        409 from a stale screen, 422 for a step that no longer applies)."""
        if label in ("No-show", "Cancel the booking"):
            more = self.booking(customer).locator("details.booking__more")
            if more.get_attribute("open") is None:
                self.more(customer).click()
        button = self.button(customer, label)
        with self.page.expect_response(
            lambda r: (
                r.request.method == "POST"
                and re.search(r"/appointments/\d+/(status|check-in)$", r.url) is not None
            )
        ) as answer:
            button.click()
        return answer.value.status

    # -- "no reload", a screen that has not caught up, the pill ------------------------------

    def mark(self) -> None:
        self.page.evaluate("window.__notReloaded = true")

    def still_marked(self) -> bool:
        return self.page.evaluate("window.__notReloaded === true")

    def freeze(self) -> None:
        """From now on the stream's messages wait: the screen stays as it is."""
        self.page.evaluate(FREEZE_JS)

    def thaw(self) -> None:
        self.page.evaluate(THAW_JS)

    def record_pill(self) -> None:
        self.page.evaluate(RECORD_PILL_JS)

    def pill_history(self) -> list[str]:
        return self.page.evaluate("window.__pill")


class AppointmentUsers:
    """`dashboards("frank", "2033-05-06")` -> an AppointmentsPage, signed in, in its own
    context (a 1024x768 touch tablet unless told otherwise), open on that day and streaming;
    watched for console errors and CSP violations from the sign-in on. `before(page)` runs
    before the sign-in (to route requests, say); `live=False` does not wait for the stream."""

    def __init__(self, new_context: Callable[..., Any], base_url: str) -> None:
        self.new_context = new_context
        self.base_url = base_url
        self.pages: list[tuple[str, PageProblems]] = []

    def __call__(
        self,
        username: str,
        day: str,
        *,
        ignore: Callable[[Any], bool] = is_missing_favicon,
        before: Callable[[Page], None] | None = None,
        live: bool = True,
        **context_args: Any,
    ) -> AppointmentsPage:
        page = self.new_context(**{**TABLET, **context_args}).new_page()
        problems = self.watch(username, page, ignore=ignore)
        if before is not None:
            before(page)
        dashboard = AppointmentsPage(page, day, problems=problems)
        sign_in(page, self.base_url, username, next_path=dashboard.path)
        if not dashboard.url_pattern.search(page.url):
            pytest.fail(f"{username} did not land on the appointments: {describe(page)}")
        return dashboard.wait_live() if live else dashboard

    def watch(
        self, username: str, page: Page, *, ignore: Callable[[Any], bool] = is_missing_favicon
    ) -> PageProblems:
        """Watch another page of this test (a board, a page without JavaScript) too."""
        problems = PageProblems.watch(page, ignore=ignore)
        self.pages.append((username, problems))
        return problems

    def assert_clean(self) -> None:
        for username, problems in self.pages:
            try:
                problems.assert_clean()
            except AssertionError as exc:
                raise AssertionError(f"{username}'s page: {exc}") from None


# --- stocktakes ------------------------------------------------------------------------------


class StocktakePage:
    """/s/{site}/stocktakes/{id}: one stocktake being counted — its head (status word,
    the approval banner, Approve…), the progress figures, and its lines (`#line-<id>`:
    Counted, Purchases, Expected, Variance — the last three for those who may see them —,
    the count form with Save, the pending mark of a count kept offline, the movements
    drawer). `query` (the page's filters, "?category=Spirits") keeps a 252-line stocktake
    quick. Toasts (htmx)."""

    PENDING = "Pending — will be sent when the connection is back"

    def __init__(
        self, page: Page, path: str, query: str = "", problems: PageProblems | None = None
    ) -> None:
        self.page = page
        self.path = path
        self.query = query
        self.problems = problems
        self.status = page.locator("#live-status")
        self.head = page.locator("#stocktake-head")
        self.status_word = self.head.locator("h1 .status")
        self.banner = self.head.locator(".stocktake-head__banner")
        self.progress = page.locator("#progress")
        self.lines = page.locator("#lines li.line")
        self.count_forms = page.locator("#lines form.line__count")
        self.toasts = page.locator("#toasts")

    def open(self) -> StocktakePage:
        self.page.goto(self.path + self.query)
        return self

    def wait_live(self) -> StocktakePage:
        expect(self.status).to_have_attribute("data-state", "live", timeout=5000)
        return self

    def line(self, line_id: int) -> Locator:
        return self.page.locator(f"#line-{line_id}")

    def figure(self, line_id: int, name: str) -> Locator:
        """One of a line's figures: "counted", "purchases", "waste", "expected", "variance"."""
        return self.line(line_id).locator(f".line__{name}")

    def version(self, line_id: int) -> int:
        return int(self.line(line_id).get_attribute("data-version") or "0")

    def pending(self, line_id: int) -> Locator:
        return self.line(line_id).locator(".line__pending")

    def error(self, line_id: int) -> Locator:
        return self.line(line_id).locator(".field__error")

    def toast(self, text: str | re.Pattern[str]) -> Locator:
        return self.toasts.locator(".toast", has_text=text)

    def enter_count(self, line_id: int, full: str, partial: str | None = None) -> None:
        """Type a count and press Save; returns at once (it may be kept offline)."""
        line = self.line(line_id)
        line.locator(f"#full-{line_id}").fill(full)
        if partial is not None:
            line.locator(f"#partial-{line_id}").fill(partial)
        line.locator("form.line__count").get_by_role("button", name=re.compile(r"^Save")).click()

    def count(self, line_id: int, full: str, partial: str | None = None) -> int:
        """Count a line online; the HTTP status of its POST once answered."""
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith(f"/lines/{line_id}/count")
        ) as answer:
            self.enter_count(line_id, full, partial)
        return answer.value.status

    def add_movement(self, line_id: int, kind: str, quantity: str, reference: str = "") -> int:
        """Open the line's movements drawer and add a purchase or waste; the POST's status."""
        drawer = self.open_movements(line_id)
        form = drawer.locator("form.move-form")
        form.get_by_label("Kind").select_option(kind)
        form.get_by_label(re.compile(r"^Quantity")).fill(quantity)
        form.get_by_label("Reference").fill(reference)
        with self.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith(f"/lines/{line_id}/movements")
        ) as answer:
            form.get_by_role("button", name=re.compile(r"^Add")).click()
        return answer.value.status

    def open_movements(self, line_id: int):
        """Open the line's movements in the page's drawer; the drawer's panel."""
        panel = self.page.locator(f'#drawer .drawer__panel[data-line="{line_id}"]')
        if not panel.count():
            self.line(line_id).locator("a.line__moves").click()
        expect(panel).to_be_visible()
        return panel

    def queued(self) -> list[dict[str, Any]]:
        """The counts this tablet keeps for the stocktake (static/stocktakes.js's queue)."""
        return self.page.evaluate(
            "(key) => JSON.parse(localStorage.getItem(key) || '[]')",
            f"floorboard:stocktake-counts:{self.path.split('?')[0].rstrip('/')}",
        )
