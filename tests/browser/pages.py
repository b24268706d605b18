"""Page objects for the live pages (sync Playwright)."""

from __future__ import annotations

from playwright.sync_api import Locator, Page

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

    def open(self) -> SiteHome:
        self.page.goto(self.path)
        return self

    def avatar(self, full_name: str) -> Locator:
        """A viewer's avatar in #presence (its title is the full name)."""
        return self.presence.locator(f'.avatar[title="{full_name}"]')

    def toast(self, text: str) -> Locator:
        return self.toasts.locator(".toast", has_text=text)

    def line(self, text: str) -> Locator:
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


class NoticeEditor:
    """/s/{site}/notice/edit: the notice under a soft lock."""

    def __init__(self, page: Page, site: str = "nairobi") -> None:
        self.page = page
        self.path = f"/s/{site}/notice/edit"
        self.text = page.locator("#f-text")
        self.save_button = page.get_by_role("button", name="Save notice")
        self.cancel_button = page.locator("#notice-editor").get_by_role("button", name="Cancel")
        self.back_button = page.locator("#notice-editor").get_by_role("button", name="Back")
        self.held_alert = page.locator("#notice-editor .alert--warn")

    def open(self) -> NoticeEditor:
        self.page.goto(self.path)
        return self
