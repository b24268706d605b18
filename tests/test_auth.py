"""Signing in and out, throttling, CSRF: what a user at the sign-in page experiences."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from piccolo_api.session_auth.tables import SessionsBase

from tests.conftest import soup, texts


async def test_sign_in_page_shows_the_form(client):
    response = await client.get("/login")
    assert response.status_code == 200
    form = soup(response).select_one("form[action$='/login']")
    assert form is not None and form["method"] == "post"
    names = {i["name"] for i in form.select("input")}
    assert {"username", "password", "csrftoken"} <= names


async def test_alice_lands_on_her_site_after_signing_in(client):
    response = await client.sign_in("alice")
    assert response.headers["location"] == "/"
    home = await client.get("/")
    assert home.status_code == 303
    assert home.headers["location"].endswith("/s/nairobi/")
    page = await client.get("/s/nairobi/")
    assert page.status_code == 200
    assert texts(page, "h1") == ["Nairobi Branch"]


async def test_session_cookie_is_httponly_and_lax(client):
    response = await client.post("/login", {"username": "alice", "password": "demo"})
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("id="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_sign_in_returns_to_the_page_asked_for(client):
    response = await client.post(
        "/login", {"username": "bob", "password": "demo", "next": "/s/nairobi/"}
    )
    assert response.headers["location"] == "/s/nairobi/"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
async def test_sign_in_never_redirects_off_site(client, target):
    response = await client.post("/login", {"username": "bob", "password": "demo", "next": target})
    assert response.headers["location"] == "/"


async def test_wrong_password_shows_a_message_and_keeps_the_username(client):
    response = await client.post("/login", {"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert texts(response, ".field__error") == ["The username or password is incorrect."]
    assert soup(response).select_one("input[name=username]")["value"] == "alice"
    assert "id" not in client.http.cookies


async def test_unknown_user_gets_the_same_message_as_a_wrong_password(client):
    response = await client.post("/login", {"username": "mallory", "password": "demo"})
    assert response.status_code == 401
    assert texts(response, ".field__error") == ["The username or password is incorrect."]


async def test_empty_fields_are_sent_back_with_a_message_each(client):
    response = await client.post("/login", {"username": "  ", "password": ""})
    assert response.status_code == 422
    assert texts(response, ".field__error") == ["Enter your username.", "Enter your password."]


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("a" * 10_000, "demo", "A username has at most 100 characters."),
        ("alice", "p" * 10_000, "A password has at most 128 characters."),
        ("ali\x00ce", "demo", "A username has only letters, digits and punctuation."),
    ],
)
async def test_oversized_or_odd_input_gets_422_not_500(client, username, password, message):
    response = await client.post("/login", {"username": username, "password": password})
    assert response.status_code == 422
    assert message in texts(response, ".field__error")


@pytest.mark.parametrize("username", ["' OR 1=1 --", "ålice 🚚", "<script>x</script>"])
async def test_odd_but_printable_usernames_are_just_wrong(client, username):
    response = await client.post("/login", {"username": username, "password": "demo"})
    assert response.status_code == 401
    assert "<script>x</script>" not in response.text  # escaped, never markup


async def test_repeated_failures_are_throttled_with_429(client):
    statuses = []
    for _ in range(30):
        response = await client.post("/login", {"username": "alice", "password": "guess"})
        statuses.append(response.status_code)
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    assert response.headers["retry-after"] == "300"
    assert "Too many failed attempts" in " ".join(texts(response, ".field__error"))
    # Even the right password waits out the block: a guesser cannot tell it was right.
    blocked = await client.post("/login", {"username": "alice", "password": "demo"})
    assert blocked.status_code == 429


async def test_throttling_one_name_leaves_others_alone(client):
    for _ in range(6):
        await client.post("/login", {"username": "alice", "password": "guess"})
    assert (await client.post("/login", {"username": "bob", "password": "demo"})).status_code == 303


async def test_sign_out_ends_the_session_on_the_server(client):
    await client.sign_in("alice")
    token = client.http.cookies["id"]
    response = await client.post("/logout")
    assert response.status_code == 303
    client.http.cookies.set("id", token)  # a stolen copy of the cookie is now worthless
    again = await client.get("/s/nairobi/")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login")


async def _session_of(client):
    token = client.http.cookies["id"]
    return await SessionsBase.objects().where(SessionsBase.token == token).first()


async def _is_signed_in(client) -> bool:
    page = await client.get("/s/nairobi/")
    assert page.status_code in (200, 303)
    return page.status_code == 200


async def test_a_session_in_use_slides_its_expiry_until_its_hard_limit(client):
    await client.sign_in("alice")
    session = await _session_of(client)
    soon = datetime.now() + timedelta(minutes=5)  # about to lapse: a request moves it on
    await SessionsBase.update({SessionsBase.expiry_date: soon}).where(SessionsBase.id == session.id)
    assert await _is_signed_in(client)
    slid = (await _session_of(client)).expiry_date
    assert timedelta(minutes=34) < slid - datetime.now() < timedelta(minutes=36)

    far = datetime.now() + timedelta(hours=3)  # not close to lapsing: left alone
    await SessionsBase.update({SessionsBase.expiry_date: far}).where(SessionsBase.id == session.id)
    assert await _is_signed_in(client)
    assert (await _session_of(client)).expiry_date == far

    past_limit = datetime.now() - timedelta(seconds=1)  # a week on: sign in again
    await SessionsBase.update({SessionsBase.max_expiry_date: past_limit}).where(
        SessionsBase.id == session.id
    )
    assert not await _is_signed_in(client)


async def test_a_lapsed_session_signs_its_user_out(client):
    await client.sign_in("bob")
    session = await _session_of(client)
    lapsed = datetime.now() - timedelta(minutes=1)
    await SessionsBase.update({SessionsBase.expiry_date: lapsed}).where(
        SessionsBase.id == session.id
    )
    page = await client.get("/s/nairobi/")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert (await _session_of(client)).expiry_date == lapsed  # not revived by asking


async def test_the_session_carries_its_user_into_the_page(client):
    """The session and its user come from one query: the page greets the right person."""
    await client.sign_in("bob")
    me = await client.get("/me")
    assert me.status_code == 200
    assert texts(me, "h1") == ["Bob"]
    assert soup(me).select_one("input[name=full_name]")["value"].startswith("Bob ")


async def test_post_without_csrf_token_is_refused_with_a_readable_403(as_user):
    alice = await as_user("alice")
    response = await alice.post("/logout", csrf=False)
    assert response.status_code == 403
    assert texts(response, "h1") == ["Not allowed"]
    assert "Reload the page" in response.text
    assert (await alice.get("/s/nairobi/")).status_code == 200  # still signed in


async def test_post_with_a_forged_csrf_token_is_refused(as_user):
    alice = await as_user("alice")
    response = await alice.post("/logout", {"csrftoken": "forged"})
    assert response.status_code == 403


async def test_csrf_header_is_accepted_for_htmx_requests(as_user):
    alice = await as_user("alice")
    response = await alice.http.post(
        "/logout", headers={"X-CSRFToken": alice.csrftoken, "HX-Request": "true"}
    )
    assert response.status_code == 303


async def test_rendered_forms_carry_the_token_the_cookie_holds(client):
    """A browser posts what the page rendered, not the cookie: the two must agree."""
    first = await client.get("/login")
    token = soup(first).select_one("input[name=csrftoken]")["value"]
    assert token and token == client.csrftoken
    form = {"username": "alice", "password": "demo", "csrftoken": token}
    assert (await client.http.post("/login", data=form)).status_code == 303
    home = await client.get("/s/nairobi/")
    tokens = {i["value"] for i in soup(home).select("input[name=csrftoken]")}
    assert tokens == {client.csrftoken}  # sign-out and note forms alike
