"""Bad input never gives a 500 (SPEC §3): bodies the CSRF check cannot or will not read,
ids past the database's integer range, what `Form` makes of what no form offers, and the
security headers on every error page, the 500 one included."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import NoMatchFound, Route, Router

import routes.convertors  # noqa: F401  registers the `id` convertor
from routes import errors
from routes.forms import INT_MAX, MAX_BODY_SIZE, MAX_FIELDS, MAX_PART_SIZE, Form
from routes.security import SecurityHeadersMiddleware
from tests.conftest import Client, soup

BOUNDARY = "fbtestboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"


def multipart(*parts: tuple[str, str | bytes] | tuple[str, str, bytes]) -> bytes:
    """A multipart body: (name, value) fields and (name, filename, content) files."""
    out = b""
    for part in parts:
        if len(part) == 3:
            name, filename, content = part
            head = f'name="{name}"; filename="{filename}"\r\nContent-Type: text/plain'
        else:
            name, content = part
            head = f'name="{name}"'
        data = content.encode() if isinstance(content, str) else content
        out += f"--{BOUNDARY}\r\nContent-Disposition: form-data; {head}\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def chunks(total: int) -> AsyncIterator[bytes]:
    """A urlencoded body of `total` bytes in 64 kB fields, never in memory at once."""
    sent = 0
    while sent < total:
        piece = (b"&n=" + b"a" * 65_533)[: total - sent]
        sent += len(piece)
        yield piece


@pytest.fixture(params=["/login", "/s/nairobi/notes"])
async def target(request, client, as_user) -> tuple[Client, str]:
    """A POST route read anonymously (sign-in) and one read by a signed-in member."""
    path = request.param
    browser = client if path == "/login" else await as_user("alice")
    if not browser.csrftoken:
        await browser.get("/login")
    return browser, path


def assert_readable_error_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    assert soup(response).select_one("h1").get_text(strip=True) == errors.TITLES[status]
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def assert_nothing_went_wrong_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def unreadable_bodies(token: str) -> dict[str, tuple[str, bytes, int]]:
    """name -> (content type, body, the status it must get)."""
    many = "&".join(f"f{i}=x" for i in range(MAX_FIELDS))
    return {
        "multipart without a boundary": (
            "multipart/form-data",
            multipart(("csrftoken", token), ("note", "hi")),
            400,
        ),
        "multipart with an empty boundary": (
            "multipart/form-data; boundary=",
            multipart(("csrftoken", token)),
            400,
        ),
        "multipart part without a name": (
            MULTIPART,
            f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
            f"--{BOUNDARY}--\r\n".encode(),
            400,
        ),
        "1,001 urlencoded fields": (URLENCODED, f"csrftoken={token}&{many}".encode(), 400),
        "1,001 multipart fields": (
            MULTIPART,
            multipart(("csrftoken", token), *[(f"f{i}", "x") for i in range(MAX_FIELDS)]),
            400,
        ),
        "a 1.1 MB multipart part": (
            MULTIPART,
            multipart(("csrftoken", token), ("note", "a" * (MAX_PART_SIZE + MAX_PART_SIZE // 10))),
            400,
        ),
        "a 1.1 MB urlencoded field": (
            URLENCODED,
            f"csrftoken={token}&note={'a' * (MAX_PART_SIZE + MAX_PART_SIZE // 10)}".encode(),
            400,
        ),
        "a body over the limit": (
            URLENCODED,
            f"csrftoken={token}&".encode() + b"&".join([b"n=" + b"a" * 9_000] * 400),
            413,
        ),
    }


CASES = list(unreadable_bodies("").keys())


@pytest.mark.parametrize("case", CASES)
async def test_a_form_that_cannot_be_read_is_a_readable_page_not_a_500(target, caplog, case):
    browser, path = target
    caplog.set_level(logging.INFO)
    content_type, body, status = unreadable_bodies(browser.csrftoken)[case]
    response = await browser.http.post(path, content=body, headers={"content-type": content_type})
    assert_readable_error_page(response, status)
    assert_nothing_went_wrong_in_the_log(caplog)


@pytest.mark.parametrize("case", CASES)
async def test_htmx_bodies_that_cannot_be_read_are_refused_too(target, caplog, case):
    """With the token in the header the CSRF check reads no body; the handler's does."""
    browser, path = target
    caplog.set_level(logging.INFO)
    content_type, body, _ = unreadable_bodies(browser.csrftoken)[case]
    response = await browser.http.post(
        path,
        content=body,
        headers={"content-type": content_type, "x-csrftoken": browser.csrftoken},
    )
    assert response.status_code in (400, 413), response.text[:300]
    assert response.headers["x-frame-options"] == "DENY"
    assert_nothing_went_wrong_in_the_log(caplog)


async def test_a_50_mb_body_is_refused_by_its_length_unread(target, caplog):
    browser, path = target
    caplog.set_level(logging.INFO)
    size = 50 * 1024 * 1024
    read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        async for chunk in chunks(size):
            read += len(chunk)
            yield chunk

    response = await browser.http.post(
        path,
        content=body(),
        headers={"content-type": URLENCODED, "content-length": str(size)},
    )
    assert_readable_error_page(response, 413)
    assert read < MAX_BODY_SIZE  # the server did not read its way through 50 MB first
    assert_nothing_went_wrong_in_the_log(caplog)


async def test_a_huge_body_without_a_length_is_cut_off_at_the_limit(target, caplog):
    browser, path = target
    caplog.set_level(logging.INFO)
    read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        async for chunk in chunks(50 * 1024 * 1024):
            read += len(chunk)
            yield chunk

    response = await browser.http.post(path, content=body(), headers={"content-type": URLENCODED})
    assert "content-length" not in response.request.headers  # sent chunked
    assert_readable_error_page(response, 413)
    assert read <= MAX_BODY_SIZE + 64 * 1024
    assert_nothing_went_wrong_in_the_log(caplog)


async def test_a_file_where_the_token_goes_is_a_csrf_refusal(target, caplog):
    browser, path = target
    caplog.set_level(logging.INFO)
    body = multipart(("csrftoken", "token.txt", browser.csrftoken.encode()), ("note", "hi"))
    response = await browser.http.post(path, content=body, headers={"content-type": MULTIPART})
    assert_readable_error_page(response, 403)
    assert_nothing_went_wrong_in_the_log(caplog)


async def test_garbage_urlencoded_is_a_csrf_refusal_not_a_500(target, caplog):
    browser, path = target
    caplog.set_level(logging.INFO)
    body = b"%%%\xff\xfe\x00=&&==&%zz=%"
    response = await browser.http.post(path, content=body, headers={"content-type": URLENCODED})
    assert_readable_error_page(response, 403)
    assert_nothing_went_wrong_in_the_log(caplog)


async def test_a_multipart_sign_in_reaches_the_handler_with_its_form(client):
    """The CSRF check reads the body; the handler gets the parsed form from the scope."""
    await client.get("/login")
    body = multipart(("csrftoken", client.csrftoken), ("username", "bob"), ("password", "demo"))
    response = await client.http.post("/login", content=body, headers={"content-type": MULTIPART})
    assert response.status_code == 303
    assert (await client.get("/s/nairobi/")).status_code == 200


async def test_a_form_at_the_limits_is_read(client):
    """1,000 fields, one of them almost 1 MB: read, and answered by the handler (the bad
    sign-in is its business), not refused as unreadable."""
    await client.get("/login")
    fields = [("csrftoken", client.csrftoken), ("username", "bob"), ("password", "wrong")]
    fields += [(f"f{i}", "x") for i in range(MAX_FIELDS - len(fields) - 1)]
    fields.append(("filler", "a" * (MAX_PART_SIZE - 10)))
    response = await client.http.post("/login", data=dict(fields))
    assert response.status_code == 401


# -- the 500 page ---------------------------------------------------------------------------


@pytest.mark.parametrize("production", [False, True])
async def test_the_500_page_carries_the_security_headers(app, caplog, production):
    """Starlette sends the 500 page from outside every middleware. A copy of the real app
    (its middleware, its error handlers) with one route that fails shows what users see."""

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("a bug")

    settings = dataclasses.replace(app.state.services.settings, production=production)
    failing = Starlette(
        routes=[Route("/boom", boom)],
        middleware=[
            Middleware(m.cls, *m.args, **{**m.kwargs, "production": production})
            if m.cls is SecurityHeadersMiddleware
            else m
            for m in app.user_middleware
        ],
        exception_handlers=app.exception_handlers,
    )
    assert app.exception_handlers[500] is errors.server_error
    failing.state.services = dataclasses.replace(app.state.services, settings=settings)
    transport = httpx.ASGITransport(app=failing, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.get("/boom")
        page = await http.get("/no-such-page")  # a 404 from inside the middleware, to compare
    assert_readable_error_page(response, 500)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "unhandled error on GET /boom" in caplog.text  # a real bug is logged, in full
    names = ("content-security-policy", "x-content-type-options", "x-frame-options")
    names += ("referrer-policy", "strict-transport-security")
    assert {n: response.headers.get(n) for n in names} == {n: page.headers.get(n) for n in names}
    assert ("strict-transport-security" in response.headers) == production


# -- a service that is not answering --------------------------------------------------------


class FailingBeforeTheRoutes:
    """Stands for the session lookup of the authentication middleware: a failure outside
    the routes reaches the 500 handler rather than the handlers by exception class."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/session":
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        await self.app(scope, receive, send)


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/pool", "The database is not answering"),
        ("/shutting-down", "The database is not answering"),
        ("/session", "The database is not answering"),
        ("/redis", "The live service is not answering"),
    ],
)
async def test_a_service_that_does_not_answer_is_a_readable_503(app, caplog, path, says):
    """PostgreSQL or Redis down: "try again in a moment", never a 500 — a page for a
    browser, the sentence alone for htmx (app.js shows it; htmx swaps no 5xx)."""
    import asyncpg
    from redis.exceptions import ConnectionError as RedisConnectionError

    async def fails(request: Request) -> PlainTextResponse:
        raise {
            "/pool": OSError(111, "Connect call failed"),
            "/shutting-down": asyncpg.CannotConnectNowError("the database system is shutting down"),
            "/redis": RedisConnectionError("Error 111 connecting to 127.0.0.1:6379."),
        }[request.url.path]

    failing = Starlette(
        routes=[Route(p, fails) for p in ("/pool", "/shutting-down", "/redis")],
        middleware=[*app.user_middleware, Middleware(FailingBeforeTheRoutes)],
        exception_handlers=app.exception_handlers,
    )
    failing.state.services = app.state.services
    # An app error would be raised here: the session lookup's failure, answered with a 503,
    # must not go on to the server as an exception too (a traceback per request).
    transport = httpx.ASGITransport(app=failing)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        page = await http.get(path)
        htmx = await http.get(path, headers={"HX-Request": "true", "HX-Request-Type": "partial"})
    assert_readable_error_page(page, 503)
    assert f"{says} — please try again in a moment." in page.text
    assert htmx.status_code == 503 and htmx.headers["content-type"].startswith("text/plain")
    assert htmx.text == f"{says} — please try again in a moment."
    assert page.headers["retry-after"] == htmx.headers["retry-after"] == errors.RETRY_AFTER
    assert "Traceback" not in page.text + htmx.text
    assert "unhandled error" not in caplog.text  # logged as a service down, not as a bug


async def test_error_pages_carry_the_security_headers(as_user):
    alice = await as_user("alice")
    for response in (
        await alice.get("/no-such-page"),
        await alice.get("/s/not-a-site/"),
        await alice.post("/s/nairobi/notes", {"csrftoken": "forged"}),
    ):
        assert response.status_code in (403, 404)
        assert_readable_error_page(response, response.status_code)


# -- ids past the integer range -------------------------------------------------------------


def id_router() -> Router:
    async def show(request: Request) -> PlainTextResponse:
        number = request.path_params["n"]
        assert isinstance(number, int)
        return PlainTextResponse(str(number))

    return Router([Route("/d/{n:id}", show, name="show")])


async def get_from_id_router(number: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=id_router())
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        return await http.get(f"/d/{number}")


@pytest.mark.parametrize("number", ["1", "42", "999999999", "1000000000", "2147483647"])
async def test_the_id_convertor_takes_every_id_an_integer_column_holds(number):
    response = await get_from_id_router(number)
    assert (response.status_code, response.text) == (200, number)


@pytest.mark.parametrize(
    "number", ["0", "007", "-1", "2147483648", "2999999999", "9999999999", "1" * 40, "1e3"]
)
async def test_the_id_convertor_does_not_match_what_no_row_can_have(number):
    assert (await get_from_id_router(number)).status_code == 404


def test_the_id_convertor_builds_urls_only_for_ids():
    router = id_router()
    assert router.url_path_for("show", n=INT_MAX) == f"/d/{INT_MAX}"
    for bad in (0, INT_MAX + 1):
        with pytest.raises((AssertionError, NoMatchFound)):
            router.url_path_for("show", n=bad)


@pytest.mark.parametrize("number", [INT_MAX, INT_MAX + 1, 10**20])
async def test_a_draft_id_past_the_integer_range_is_a_404(as_user, number):
    """Needs the draft routes on `{draft:id}`: with `:int`, PostgreSQL (asyncpg) refuses
    2147483648 with a 500, and SQLite refuses 10**20."""
    alice = await as_user("alice")
    response = await alice.get(f"/s/nairobi/drafts/{number}/transport")
    assert_readable_error_page(response, 404)


async def test_a_draft_id_in_range_is_handled_as_usual(as_user):
    from tables.drafts import Draft, DraftStatus
    from tables.people import Site

    nairobi = await Site.select(Site.id).where(Site.slug == "nairobi").first()
    draft = await (
        Draft.select(Draft.id)
        .where((Draft.site == nairobi["id"]) & (Draft.status == DraftStatus.active))
        .first()
    )
    alice = await as_user("alice")
    response = await alice.get(f"/s/nairobi/drafts/{draft['id']}/transport")
    assert response.status_code == 200


# -- Form: what no form offers --------------------------------------------------------------


def upload(content: bytes = b"x") -> UploadFile:
    import io

    return UploadFile(io.BytesIO(content), filename="a.txt", headers=Headers())


def test_form_refuses_a_nul_byte_and_keeps_what_was_typed():
    form = Form(FormData([("note", "hello\x00world")]))
    assert form.text("note", label="a note", max_length=200) == ""
    assert "cannot be typed" in form.errors["note"]
    assert form.values["note"] == "hello\x00world"


def test_form_refuses_control_characters_and_newlines_in_one_line_text():
    form = Form(FormData([("a", "bell\x07"), ("b", "two\nlines"), ("c", "two\nlines")]))
    assert form.text("a", label="a name", max_length=50) == ""
    assert form.text("b", label="a name", max_length=50) == ""
    assert form.text("c", label="a note", max_length=50, multiline=True) == "two\nlines"
    assert set(form.errors) == {"a", "b"}


def test_form_refuses_ten_kilobytes_where_a_line_goes():
    text = "a" * 10_000
    form = Form(FormData([("note", text)]))
    assert form.text("note", label="a note", max_length=2_000) == ""
    assert "too long (at most 2,000 characters)" in form.errors["note"]
    assert form.values["note"] == text


@pytest.mark.parametrize(
    "value", [str(2**31), str(10**40), "-2147483649", "1e9", "12abc", "--5", "²", "١٢", " "]
)
def test_form_refuses_numbers_past_the_integer_range_or_not_numbers(value):
    form = Form(FormData([("count", value)]))
    assert form.integer("count", label="a count", minimum=-INT_MAX - 1) is None
    assert "count" in form.errors
    assert form.values["count"] == value


def test_form_takes_the_largest_integer_a_column_holds():
    form = Form(FormData([("count", str(INT_MAX)), ("n", "0")]))
    assert form.integer("count", label="a count") == INT_MAX
    assert form.id("n") is None and "n" in form.errors  # ids start at 1


def test_form_ids_refuse_anything_that_cannot_name_a_row():
    ok = Form(FormData([("p", "1"), ("p", str(INT_MAX))]))
    assert ok.ids("p") == [1, INT_MAX] and not ok.errors
    for bad in (str(INT_MAX + 1), "0", "-3", "x", "²", "١٢", "0" * 11 + "1"):
        form = Form(FormData([("p", "1"), ("p", bad)]))
        assert form.ids("p") == [] and "p" in form.errors, bad
    with_file = Form(FormData([("p", upload())]))
    assert with_file.ids("p") == [] and "p" in with_file.errors


def test_form_refuses_a_file_where_text_is_expected():
    form = Form(FormData([("note", upload()), ("count", upload())]))
    assert form.text("note", label="a note", max_length=200) == ""
    assert form.integer("count", label="a count") is None
    assert all("file" in form.errors[name] for name in ("note", "count"))


def test_form_keeps_good_values_as_typed():
    form = Form(FormData([("note", "  Gate 3, ask for Wanjiru  "), ("count", " 12 ")]))
    assert form.text("note", label="a note", max_length=200) == "Gate 3, ask for Wanjiru"
    assert form.integer("count", label="a count") == 12
    assert not form.errors
    assert form.values == {"note": "  Gate 3, ask for Wanjiru  ", "count": " 12 "}
