"""An organisation's managers run its people, in Chromium: admin adds gina as a dispatcher
at Nakuru; gina signs in with the temporary password she was given, must choose her own,
and lands on Nakuru's drafts; admin deactivates her while that page is open, and her page
is on the sign-in page within seconds, her session gone. The isolation and last-manager
rules are covered in full over HTTP on both engines (tests/test_people.py); here, the
pages a manager clicks through."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from tests.browser.conftest import SignIn

ORG = "/o/demo-logistics"
LOGIN = re.compile(r"/login(\?.*)?$")
NAKURU_DRAFTS = re.compile(r"/s/nakuru/drafts/?$")
SIGNED_OUT_WITHIN = 8000  # ms: the stream ends at once; the reconnect (~1 s) is refused


def add_gina(admin: Page, username: str, start_with: str) -> str:
    admin.goto("/")
    admin.locator(".org-links").get_by_role("link", name="People of Demo Logistics").click()
    expect(admin).to_have_url(re.compile(f"{ORG}/people$"))
    form = admin.locator("form.add-person")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Full name").fill("Gina Wambui")
    form.get_by_label("Site", exact=True).select_option(label="Nakuru Branch")
    form.get_by_label("Role at that site").select_option("dispatcher")
    form.get_by_label("How they sign in the first time").select_option(start_with)
    form.get_by_role("button", name="Add").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Added Gina Wambui")
    selector = ".added__password" if start_with == "password" else ".added__link"
    return admin.locator(selector).inner_text().strip()


def choose_password(gina: Page, password: str) -> None:
    expect(gina.get_by_role("heading", level=1)).to_have_text("Welcome, Gina Wambui")
    gina.get_by_label("New password (8 characters or more)").fill(password)
    gina.get_by_label("New password again").fill(password)
    gina.get_by_role("button", name="Set password and sign in").click()


def test_gina_is_added_sets_her_password_and_is_signed_out_when_deactivated(
    new_user_page, new_context, base_url: str
) -> None:
    admin = new_user_page("admin")
    username = f"gina{uuid.uuid4().hex[:6]}"
    temporary = add_gina(admin, username, "password")
    person_link = admin.get_by_role("link", name="Gina Wambui's sites and roles")
    person_url = person_link.get_attribute("href")

    # Gina signs in with what she was given, must choose her own password, lands on drafts.
    gina = new_context(viewport={"width": 1024, "height": 768}).new_page()
    SignIn(gina, base_url).open()
    gina.get_by_label("Username", exact=True).fill(username)
    gina.get_by_label("Password", exact=True).fill(temporary)
    gina.get_by_role("button", name="Sign in").click()
    expect(gina).to_have_url(re.compile(r"/welcome/"))
    choose_password(gina, "gina-own-password")
    expect(gina).to_have_url(NAKURU_DRAFTS)
    expect(gina.locator(".messages")).to_contain_text("Welcome, Gina Wambui.")
    expect(gina.locator("#live-status")).to_have_attribute("data-state", "live", timeout=5000)

    # admin deactivates her while her drafts page is open.
    admin.goto(person_url or "")
    admin.get_by_role("button", name="Deactivate Gina Wambui").click()
    expect(admin.locator(".messages")).to_contain_text("signed out everywhere")

    expect(gina).to_have_url(LOGIN, timeout=SIGNED_OUT_WITHIN)
    expect(gina.get_by_role("heading", name="Sign in")).to_be_visible()
    # The session is gone, not just the page.
    gina.goto("/s/nakuru/drafts")
    expect(gina).to_have_url(LOGIN)
    # And she cannot sign in again.
    gina.get_by_label("Username", exact=True).fill(username)
    gina.get_by_label("Password", exact=True).fill("gina-own-password")
    gina.get_by_role("button", name="Sign in").click()
    expect(gina.locator(".field__error")).to_have_text("The username or password is incorrect.")

    admin.goto(f"{ORG}/people")
    expect(admin.locator(f"tr[data-username='{username}']")).to_contain_text("deactivated")


def test_a_sign_in_link_works_once(new_user_page, new_context, base_url: str) -> None:
    admin = new_user_page("admin")
    link = add_gina(admin, f"gina{uuid.uuid4().hex[:6]}", "link")
    gina = new_context().new_page()
    gina.goto(link)
    choose_password(gina, "gina-link-password")
    expect(gina).to_have_url(NAKURU_DRAFTS)
    second = new_context().new_page()
    response = second.goto(link)
    assert response is not None and response.status == 404
    expect(second.get_by_role("heading", level=1)).to_have_text("This link no longer works")


def test_oscar_gets_404_on_demo_logistics_pages_and_a_dispatcher_on_her_own(
    new_user_page,
) -> None:
    oscar = new_user_page("oscar")
    for path in (f"{ORG}/people", f"{ORG}/sites"):
        response = oscar.goto(path)
        assert response is not None and response.status == 404
        expect(oscar.get_by_role("heading", level=1)).to_have_text("Page not found")
    dana = new_user_page("dana")
    response = dana.goto(f"{ORG}/people")
    assert response is not None and response.status == 404


def test_the_last_manager_cannot_remove_their_own_manager_role(new_user_page) -> None:
    oscar = new_user_page("oscar")
    oscar.goto("/s/other/")
    oscar.locator(".topbar__me").get_by_role("link", name="People").click()
    oscar.get_by_role("link", name="Oscar Other").click()
    oscar.get_by_label("Other Co Depot").select_option("staff")
    oscar.get_by_role("button", name="Save").click()
    expect(oscar.locator(".alert--bad")).to_have_text(
        "You are the last manager of Other Co. Make someone else a manager first."
    )
    oscar.get_by_role("button", name="Deactivate Oscar Other").click()
    expect(oscar.locator(".alert--bad")).to_have_text(
        "You are the last manager of Other Co. Make someone else a manager first."
    )
    oscar.goto("/s/other/")
    expect(oscar.get_by_role("heading", level=1)).to_have_text("Other Co Depot")
