"""Hardening seen from outside (issue 12, item 7; item 6's CSP report endpoint).

- Host: only ALLOWED_HOSTS are answered; no redirect carries a host someone sent.
- Forwarded headers: believed from TRUSTED_PROXIES only, so the sign-in throttle counts the
  real client; a client's own X-Forwarded-For changes nothing.
- CSRF: a token is bound to the session it was made for (signed with SECRET_KEY), so a
  cookie planted with the same value in the form is refused.
- CSP violation reports: POST /csp-report, kept for operators.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from unittest import mock

import httpx
import pytest
from starlette.requests import Request

import settings as settings_module
from routes.common import redirect, templates
from routes.security import CSP_REPORT_PATH, CsrfTokens, csrf_tokens
from tests.conftest import Client, texts

SIGN_IN = {"username": "alice", "password": "wrong"}


def client_for(app, **kwargs) -> Client:
    kwargs.setdefault("base_url", "http://127.0.0.1")
    return Client(httpx.AsyncClient(transport=httpx.ASGITransport(app=app), **kwargs))


@pytest.fixture
async def stranger(app) -> AsyncIterator[Client]:
    """A second browser, signed out, with cookies of its own."""
    c = client_for(app)
    yield c
    await c.http.aclose()


# -- Host ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/login", "/s/nairobi/", "/api/v1/openapi.json"])
async def test_an_unknown_host_gets_a_plain_400_and_no_redirect(as_user, path):
    alice = await as_user("alice")
    response = await alice.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.text == "Invalid host header"
    assert "location" not in response.headers
    assert "evil.example" not in response.text


async def test_an_unknown_host_cannot_post_either(as_user):
    alice = await as_user("alice")
    response = await alice.post("/logout", headers={"Host": "evil.example:443"})
    assert response.status_code == 400
    assert (await alice.get("/s/nairobi/")).status_code == 200  # still signed in


async def test_allowed_hosts_are_answered_with_or_without_a_port(app):
    for base in ("http://127.0.0.1:8000", "http://localhost", "http://LOCALHOST:9"):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as c:
            assert (await c.get("/login")).status_code == 200, base


async def test_health_is_answered_whatever_the_host(client):
    """Load balancers probe by address; /healthz builds no URL from the Host."""
    response = await client.get("/healthz", headers={"Host": "10.1.2.3:8000"})
    assert response.status_code == 200


async def test_sign_in_and_out_redirect_to_paths_not_hosts(client):
    signed_in = await client.sign_in("alice")
    assert signed_in.headers["location"] == "/"
    signed_out = await client.post("/logout")
    assert signed_out.headers["location"] == "/login"


@pytest.mark.parametrize("htmx", [False, True])
def test_redirect_sends_this_sites_absolute_urls_as_paths(htmx):
    headers = [(b"host", b"127.0.0.1:8000")] + ([(b"hx-request", b"true")] if htmx else [])
    request = Request(
        {"type": "http", "method": "POST", "path": "/x", "headers": headers, "scheme": "http"}
    )
    response = redirect(request, "http://127.0.0.1:8000/s/nairobi/drafts?x=1")
    where = response.headers["hx-location" if htmx else "location"]
    assert where == "/s/nairobi/drafts?x=1"


def test_allowed_hosts_setting(monkeypatch):
    for name in ("ALLOWED_HOSTS", "HOST", "TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    assert settings_module.load().allowed_hosts == ("127.0.0.1", "localhost")
    monkeypatch.setenv("HOST", "10.0.0.5")  # `python main.py --host 10.0.0.5` answers there
    assert settings_module.load().allowed_hosts == ("127.0.0.1", "localhost", "10.0.0.5")
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert settings_module.load().allowed_hosts == ("127.0.0.1", "localhost")
    monkeypatch.setenv("ALLOWED_HOSTS", "floor.example.com, *.floor.example.com,")
    loaded = settings_module.load()
    assert loaded.allowed_hosts == ("floor.example.com", "*.floor.example.com")
    assert loaded.problems() == []
    monkeypatch.setenv("ALLOWED_HOSTS", "floor.*.com")
    assert any("ALLOWED_HOSTS" in p for p in settings_module.load().problems())


# -- forwarded headers -----------------------------------------------------------------------


def test_trusted_proxies_setting(monkeypatch):
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert settings_module.load().trusted_proxies == ()
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.5, 10.1.0.0/16")
    loaded = settings_module.load()
    assert loaded.trusted_proxies == ("10.0.0.5", "10.1.0.0/16")
    assert loaded.problems() == []
    monkeypatch.setenv("TRUSTED_PROXIES", "nginx")
    assert any("TRUSTED_PROXIES" in p for p in settings_module.load().problems())


def test_uvicorn_is_not_told_to_trust_forwarded_headers(monkeypatch):
    """main.py leaves forwarded headers to the app (TRUSTED_PROXIES); uvicorn's own
    proxy_headers would believe FORWARDED_ALLOW_IPS (127.0.0.1 unless set) — so a client on
    the same machine, or a proxy's loopback leg, could name any address."""
    import uvicorn

    import main

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with mock.patch.dict(os.environ):  # main() writes its options into the environment
        main.main(["--no-migrate"])
        assert os.environ["SECRET_KEY"]  # handed on to every worker
    assert seen["proxy_headers"] is False


async def test_a_spoofed_forwarded_for_does_not_dodge_the_throttle(client):
    """From a peer that is no trusted proxy, each guess naming a new X-Forwarded-For is
    still counted against the peer's own address."""
    statuses = []
    for i in range(12):
        response = await client.post(
            "/login", SIGN_IN, headers={"X-Forwarded-For": f"198.51.100.{i}"}
        )
        statuses.append(response.status_code)
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}


async def test_a_spoofed_forwarded_proto_is_ignored(as_user):
    """Were it believed, the request would count as HTTPS and need an Origin."""
    alice = await as_user("alice")
    response = await alice.post("/logout", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 303


@pytest.fixture
async def behind_proxy(app) -> AsyncIterator[Client]:
    """The app as configured behind a proxy at 127.0.0.1 (the test transport's peer).

    Its lifespan is not run: it shares the test app's database pool and Redis namespace
    (so the autouse fresh_throttle clears its counters too)."""
    from main import create_app

    path_for = templates.env.globals["path_for"]
    settings = dataclasses.replace(settings_module.load(), trusted_proxies=("127.0.0.1",))
    proxied = create_app(settings)
    c = client_for(proxied)
    yield c
    await c.http.aclose()
    templates.env.globals["path_for"] = path_for
    store = proxied.state.services.login_throttle.store
    await store.clear_all()
    if getattr(store, "redis", None) is not None:
        await store.redis.aclose()


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(behind_proxy):
    proxy = behind_proxy
    one, other = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "203.0.113.8"}
    statuses = [(await proxy.post("/login", SIGN_IN, headers=one)).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    # Another client behind the same proxy is not held back by the first one's guesses.
    assert (await proxy.post("/login", SIGN_IN, headers=other)).status_code == 401
    # The proxy appends the address it saw: a client's own value before it is not believed.
    spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    assert (await proxy.post("/login", SIGN_IN, headers=spoofed)).status_code == 429


async def test_behind_a_trusted_proxy_https_is_believed(behind_proxy):
    """X-Forwarded-Proto: https from the proxy makes the request secure, which turns on the
    Origin check (piccolo_api's defence in depth for HTTPS)."""
    proxy = behind_proxy
    https = {"X-Forwarded-Proto": "https"}
    without_origin = await proxy.post(
        "/login", {"username": "alice", "password": "demo"}, headers=https
    )
    assert without_origin.status_code == 403
    with_origin = {**https, "Origin": "https://127.0.0.1"}
    answer = await proxy.post(
        "/login", {"username": "alice", "password": "demo"}, headers=with_origin
    )
    assert answer.status_code == 303


# -- CSRF bound to the session ---------------------------------------------------------------


def refused_readably(response) -> bool:
    return (
        response.status_code == 403
        and texts(response, "h1") == ["Not allowed"]
        and "Reload the page" in response.text
    )


async def plant(victim: Client, token: str, path: str = "/logout"):
    """What a page on a sibling subdomain can do: set the CSRF cookie in the victim's
    browser, then post a form carrying the same value."""
    victim.http.cookies.set("csrftoken", token, domain="127.0.0.1")
    return await victim.http.post(path, data={"csrftoken": token})


async def test_a_planted_cookie_and_form_pair_is_refused(as_user):
    alice = await as_user("alice")
    response = await plant(alice, "0123456789abcdef")
    assert refused_readably(response)
    assert (await alice.get("/s/nairobi/")).status_code == 200  # still signed in


async def test_another_sessions_token_is_refused(as_user):
    """Mallory's own good token, planted in Alice's browser, is good for Mallory only."""
    alice, bob = await as_user("alice"), await as_user("bob")
    response = await plant(alice, bob.csrftoken)
    assert refused_readably(response)
    header = await alice.http.post("/logout", headers={"X-CSRFToken": bob.csrftoken})
    assert header.status_code == 403


async def test_a_signed_out_token_is_refused_in_a_session(as_user, stranger):
    await stranger.get("/login")
    alice = await as_user("alice")
    assert refused_readably(await plant(alice, stranger.csrftoken))


@pytest.mark.parametrize("forged", ["forged", "abc.def", "a" * 22 + "." + "b" * 43, "é.é"])
async def test_a_forged_token_is_refused(as_user, forged):
    alice = await as_user("alice")
    assert (await alice.post("/logout", {"csrftoken": forged})).status_code == 403
    assert (
        await alice.http.post("/logout", headers={"X-CSRFToken": forged.encode()})
    ).status_code == 403


async def test_a_token_signed_with_another_key_is_refused(as_user):
    alice = await as_user("alice")
    other = CsrfTokens("not-this-sites-key").issue(alice.http.cookies["id"])
    assert (await alice.post("/logout", {"csrftoken": other})).status_code == 403


async def test_the_real_flow_works_and_signing_in_changes_the_token(client):
    before = (await client.get("/login"), client.csrftoken)[1]
    await client.sign_in("alice")
    after = client.csrftoken
    assert after and after != before
    page = await client.get("/s/nairobi/")
    assert after in page.text  # the forms carry the session's token
    # The token from before signing in is no longer good for anything.
    assert (await client.post("/logout", {"csrftoken": before})).status_code == 403
    assert (await client.post("/logout")).status_code == 303


async def test_every_token_made_for_the_session_is_good(as_user):
    """Pages rendered at once may carry different tokens (a cookie rotated between them):
    each is good for the session."""
    alice = await as_user("alice")
    first = alice.csrftoken
    second = csrf_tokens(settings_module.load().secret_key).issue(alice.http.cookies["id"])
    assert second != first
    # A harmless POST that passes the check: a wrong password (401), not the CSRF 403.
    response = await alice.http.post("/login", data=SIGN_IN, headers={"X-CSRFToken": second})
    assert response.status_code == 401
    assert (await alice.post("/logout", {"csrftoken": first})).status_code == 303


async def test_a_stale_cookie_is_replaced_on_the_next_page(as_user):
    """After signing in elsewhere (piccolo_admin's login writes the same session cookie),
    the next page load hands out a token for the session the browser now holds."""
    alice = await as_user("alice")
    alice.http.cookies.set("csrftoken", "stale.token", domain="127.0.0.1")
    page = await alice.get("/s/nairobi/")
    fresh = alice.csrftoken
    assert fresh != "stale.token" and fresh in page.text
    assert (await alice.post("/logout")).status_code == 303


async def test_signed_out_the_form_must_match_this_browsers_cookie(client, stranger):
    """Another site cannot sign a browser in (as itself) with a token it fetched: signed
    out, the token must also be the one in this browser's cookie."""
    await stranger.get("/login")
    await client.get("/login")
    theirs = {"username": "bob", "password": "demo", "csrftoken": stranger.csrftoken}
    assert refused_readably(await client.http.post("/login", data=theirs))
    ours = {**theirs, "csrftoken": client.csrftoken}
    assert (await client.http.post("/login", data=ours)).status_code == 303


async def test_signing_out_hands_out_a_signed_out_token(client):
    await client.sign_in("alice")
    await client.post("/logout")
    assert "id" not in client.http.cookies
    # The cookie now holds a signed-out token: signing in again needs no page load.
    assert (
        await client.post("/login", {"username": "alice", "password": "demo"})
    ).status_code == 303


async def test_the_api_with_a_bearer_token_needs_no_csrf(as_user, app):
    alice = await as_user("alice")
    made = await alice.post("/me/tokens", {"name": "hardening"})
    assert made.status_code == 201
    [secret] = texts(made, ".api-tokens__secret")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as program:
        answer = await program.post(
            "/api/v1/s/nairobi/dispatches", headers={"Authorization": f"Bearer {secret}"}, json={}
        )
    assert answer.status_code == 422  # the API's own answer, not the CSRF check's 403


# -- CSP violation reports -------------------------------------------------------------------

VIOLATION = {
    "csp-report": {
        "document-uri": "http://127.0.0.1/s/nairobi/",
        "violated-directive": "script-src 'self'",
        "effective-directive": "script-src-elem",
        "blocked-uri": "inline",
        "line-number": 12,
        "disposition": "enforce",
    }
}


@pytest.fixture
async def reports(app):
    store = app.state.csp_reports
    await store.clear()
    yield store
    await store.clear()


async def test_pages_ask_for_violation_reports(client):
    response = await client.get("/login")
    csp = response.headers["content-security-policy"]
    assert f"report-uri {CSP_REPORT_PATH}" in csp
    # No report-to: Chromium would then ignore report-uri and send reports a minute late.
    assert "report-to" not in csp


async def test_a_violation_report_is_recorded_without_cookies_or_token(stranger, reports):
    response = await stranger.http.post(
        CSP_REPORT_PATH,
        content=json.dumps(VIOLATION),
        headers={"Content-Type": "application/csp-report"},
    )
    assert response.status_code == 204
    [kept] = await reports.recent()
    assert kept["document"] == "http://127.0.0.1/s/nairobi/"
    assert (kept["directive"], kept["blocked"], kept["line"]) == ("script-src-elem", "inline", 12)


async def test_reporting_api_batches_are_recorded(stranger, reports):
    batch = [
        {
            "type": "csp-violation",
            "url": "http://127.0.0.1/login",
            "body": {
                "documentURL": "http://127.0.0.1/login",
                "effectiveDirective": "style-src-attr",
                "blockedURL": "inline",
                "disposition": "enforce",
            },
        },
        {"type": "deprecation", "body": {"id": "x"}},  # not ours: left out
    ]
    response = await stranger.http.post(
        CSP_REPORT_PATH,
        content=json.dumps(batch),
        headers={"Content-Type": "application/reports+json"},
    )
    assert response.status_code == 204
    assert [r["directive"] for r in await reports.recent()] == ["style-src-attr"]


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/csp-report", b"{" + b" " * 70_000 + b"}", 413),
        ("application/csp-report", b"not json", 400),
        ("application/csp-report", b"{}", 400),
        ("text/plain", json.dumps(VIOLATION).encode(), 415),
    ],
)
async def test_odd_reports_get_a_4xx(stranger, reports, content_type, body, status):
    response = await stranger.http.post(
        CSP_REPORT_PATH, content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    assert await reports.recent() == []


async def test_only_operators_read_the_reports(as_user, stranger, reports):
    await stranger.http.post(
        CSP_REPORT_PATH,
        content=json.dumps(VIOLATION),
        headers={"Content-Type": "application/csp-report"},
    )
    assert (await stranger.get(CSP_REPORT_PATH)).status_code == 404
    assert (await (await as_user("admin")).get(CSP_REPORT_PATH)).status_code == 404
    ops = await as_user("ops")
    read = await ops.get(f"{CSP_REPORT_PATH}?clear=1")
    assert read.status_code == 200
    assert [r["blocked"] for r in read.json()["reports"]] == ["inline"]
    assert await reports.recent() == []  # cleared after reading


async def test_the_admins_own_csrf_check_takes_the_bound_token(as_user):
    """piccolo_admin's Vue app copies the `csrftoken` cookie into X-CSRFToken, and its own
    CSRF middleware compares the two: the session-bound token passes both checks."""
    ops = await as_user("ops")
    assert (await ops.get("/admin/api/tables/")).status_code == 200
    answer = await ops.http.post(
        "/admin/api/tables/no_such_table/",  # past both CSRF checks to the admin's own 404
        json={},
        headers={"X-CSRFToken": ops.csrftoken},
    )
    assert answer.status_code == 404, answer.text
    forged = await ops.http.post(
        "/admin/api/tables/no_such_table/", json={}, headers={"X-CSRFToken": "forged"}
    )
    assert forged.status_code == 403
