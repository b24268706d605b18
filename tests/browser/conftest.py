"""Real-browser tests: a real `python main.py` server and Debian's headless Chromium.

Fixtures and helpers (sync Playwright API; never mark these tests `async`):

- `live_server` (session): a `LiveServer` running `main.py` on a free port with a fresh SQLite
  file and the in-process broker. `.url` ("http://127.0.0.1:PORT"), `.port`, `.db_path`,
  `.log_path`, `.logs()`, `.restart()` (same port, same database), `.stop()`.
- `base_url` (session): `live_server.url`, so pytest-playwright's contexts (and `page`) take
  relative URLs: `page.goto("/login")`.
- `browser_type_launch_args` (session): Debian Chromium (`CHROMIUM_PATH`, default
  /usr/bin/chromium) with offline-friendly flags. A missing binary FAILS the tests.
- `new_user_page` (factory): `new_user_page("alice", password="demo", **context_kwargs)` gives
  a Page, signed in, in its own BrowserContext (`page.context`); several users side by side.
- `no_js_page`: a Page (not signed in) in a context with JavaScript disabled.
- `users` (factory, pages.UserPages): `users("alice")` -> a DraftsPage signed in on
  /s/nairobi/drafts in its own 1024x768 touch context, streaming, watched for problems.
- `scratch`: unique towns and parcel codes for one test, set up over plain HTTP (`SiteClient`,
  no browser: receive, add, vehicle and driver), and tidied away after the test — its
  parcels are added to their drafts and those drafts finalised (or cleared), so nothing it
  made is left for the next test.
- `sign_in(page, base_url, username, password="demo", next_path=None)` and `SignIn(page,
  base_url)`: the sign-in page object.
- `PageProblems.watch(page, ignore=…, allow_csp=…)`: collects console errors, uncaught page
  errors and CSP violations (from the console and from `securitypolicyviolation` events);
  `.assert_clean()`, `.assert_no_csp_violations()`. `describe(page)`: what the user sees.

Every test collected under this folder gets the `browser` marker and runs after all other
tests (see pytest_collection_modifyitems). The in-process `database` and `fresh_throttle`
fixtures of tests/conftest.py are replaced by no-ops here.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from bs4 import BeautifulSoup
from playwright.sync_api import ConsoleMessage, Error, Page

from tests.servers import free_port, port_is_taken

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]  # tests/browser/conftest.py -> project root
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# --- markers -------------------------------------------------------------------------------


def _is_browser_test(item: pytest.Item) -> bool:
    return Path(item.path).resolve().is_relative_to(HERE)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    """Mark the tests under this folder `browser`, and run them after all the others.

    The marker goes on before the other implementations run, so `-m browser` and
    `-m "not browser"` select on it. The reordering comes after them: once sync Playwright
    has started (a session fixture), its event loop stays marked as running in this thread,
    and pytest-asyncio can run no async test or fixture after that.
    """
    for item in items:
        if _is_browser_test(item):
            item.add_marker(pytest.mark.browser)
    result = yield
    items[:] = [i for i in items if not _is_browser_test(i)] + [
        i for i in items if _is_browser_test(i)
    ]
    return result


# --- the in-process fixtures of tests/conftest.py, switched off here ------------------------
# Sync Playwright keeps its own event loop marked as running in this thread, so no async
# fixture can run once a browser is up ("Runner.run() cannot be called from a running event
# loop"). Browser tests talk to their own server process and need neither fixture.


@pytest.fixture(scope="session", autouse=True)
def database() -> None:
    """Overrides tests/conftest.py's: the live server migrates and loads its own database."""


@pytest.fixture(autouse=True)
def fresh_throttle() -> None:
    """Overrides tests/conftest.py's: the sign-in throttle lives in the server process."""


# --- the server ----------------------------------------------------------------------------


class ServerDidNotStart(RuntimeError):
    pass


class LiveServer:
    """`python main.py --port N` in a subprocess, its output appended to `log_path`.

    Output goes to a file rather than a pipe: uvicorn logs every request, and a pipe nobody
    reads would eventually block the server.
    """

    def __init__(self, *, port: int, db_path: Path, log_path: Path, root: Path = PROJECT_ROOT):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.db_path = db_path
        self.log_path = log_path
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(SQLITE_PATH=str(db_path), PYTHONUNBUFFERED="1")
        for name in ("HOST", "PORT", "WORKERS", "PRODUCTION"):
            self.env.pop(name, None)

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if port_is_taken(self.port):  # /healthz would be answered by someone else
            raise ServerDidNotStart(f"port {self.port} is already in use")
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n===== starting on port {self.port} =====\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "main.py", "--port", str(self.port)],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self.wait_until_ready(timeout)
        except ServerDidNotStart:
            self.stop()
            raise

    def wait_until_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll GET /healthz until it answers 200; raise with the server's output if not."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if (code := self.proc.poll()) is not None:
                raise ServerDidNotStart(
                    f"main.py exited with status {code} before /healthz answered.\n"
                    f"--- server output ---\n{self.logs()}"
                )
            try:
                response = httpx.get(self.url + "/healthz", timeout=1.0)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        raise ServerDidNotStart(
            f"GET {self.url}/healthz did not answer 200 within {timeout:.0f} s "
            f"(last: {last}).\n--- server output ---\n{self.logs()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL after `timeout` seconds."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, timeout: float = READY_TIMEOUT) -> None:
        """Stop gracefully and start again on the same port with the same database file."""
        self.stop()
        self.start(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self, tail: int = 8000) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            text = self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return text[-tail:] if len(text) > tail else text


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("live_server")
    server = LiveServer(
        port=free_port(), db_path=folder / "floorboard.sqlite", log_path=folder / "server.log"
    )
    try:
        server.start()
    except ServerDidNotStart as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    """Overrides pytest-playwright's: contexts made by `new_context`/`page` resolve "/login"."""
    return live_server.url


@pytest.fixture(scope="session")
def operator(base_url: str) -> Iterator[SiteClient]:
    """The platform operator over plain HTTP: reads what the server kept (CSP reports)."""
    ops = SiteClient(base_url, "ops")
    yield ops
    ops.close()


@pytest.fixture(autouse=True)
def no_csp_violation_reported(operator: SiteClient) -> Iterator[None]:
    """Every page a browser test opens runs under the app's CSP with `report-uri
    /csp-report`: a violation any of them reported to the server fails the test (the pages'
    own console watch, PageProblems, sees only the pages that ask it to)."""
    operator.http.get("/csp-report", params={"clear": "1"})
    yield
    reports = operator.http.get("/csp-report", params={"clear": "1"}).json()["reports"]
    reports = [r for r in reports if not is_admin_eval_probe(r)]
    assert not reports, f"CSP violations reported to the server: {reports}"


def is_admin_eval_probe(report: dict[str, Any]) -> bool:
    """piccolo_admin's bundle tries `eval` once and works without it (the operator's admin
    test passes under the same strict CSP, no 'unsafe-eval'): known, and not ours."""
    return (
        report.get("blocked") == "eval"
        and "/admin/" in str(report.get("document", ""))
        and "/admin/assets/" in str(report.get("source", ""))
    )


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    wanted = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    executable = shutil.which(wanted)
    if executable is None:
        pytest.fail(
            f"Chromium not found at {wanted!r}. Install Debian's browser "
            "(apt-get install -y --no-install-recommends chromium) or set CHROMIUM_PATH. "
            "Do not run `playwright install`; browser tests are never skipped.",
            pytrace=False,
        )
    flags = list(CHROMIUM_FLAGS)
    if browser_type_launch_args.get("headless") is False:  # --headed
        flags.remove("--headless")
    return {**browser_type_launch_args, "executable_path": executable, "args": flags}


# --- page objects and helpers --------------------------------------------------------------


class SignIn:
    """The sign-in page: /login."""

    def __init__(self, page: Page, base_url: str = "") -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.username = page.locator("#f-username")
        self.password = page.locator("#f-password")
        self.submit_button = page.get_by_role("button", name="Sign in")

    def open(self, next_path: str | None = None) -> SignIn:
        url = f"{self.base_url}/login"
        if next_path:
            url += "?next=" + next_path
        self.page.goto(url)
        return self

    def error_for(self, name: str):
        """The message shown at a field (`.field__error` inside that field's `.field`)."""
        return self.page.locator(f".field:has(#f-{name}) .field__error")

    def submit(self, username: str, password: str = "demo") -> None:
        """Fill the form and post it; returns once the answer page has loaded."""
        self.username.fill(username)
        self.password.fill(password)
        with self.page.expect_navigation():
            self.submit_button.click()


def describe(page: Page) -> str:
    """What the user sees: URL, title, main heading and message, field errors."""
    main = page.locator("main")
    text = " ".join(main.inner_text().split())[:300] if main.count() else ""
    return f"{page.url} — title {page.title()!r} — {text!r}"


def sign_in(
    page: Page,
    base_url: str,
    username: str,
    password: str = "demo",
    next_path: str | None = None,
) -> Page:
    """Open /login, sign in, and wait for the page the sign-in leads to."""
    SignIn(page, base_url).open(next_path).submit(username, password)
    return page


@dataclass
class PageProblems:
    """What went wrong in a page as the browser saw it.

    CSP violations are caught twice: Chromium logs each as a console error ("Refused to …
    because it violates the following Content Security Policy directive: …"), and a
    `securitypolicyviolation` listener installed before any page script reports the
    violated directive itself.
    """

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    BINDING = "__floorboardCspViolation"
    LISTENER = """
      document.addEventListener("securitypolicyviolation", (e) => {
        try {
          window.__floorboardCspViolation({
            directive: e.effectiveDirective || e.violatedDirective,
            blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber,
            sample: e.sample, disposition: e.disposition, page: location.href,
          });
        } catch (_) {}
      }, true);
    """

    @classmethod
    def watch(
        cls,
        page: Page,
        *,
        ignore: Callable[[ConsoleMessage], bool] | None = None,
        allow_csp: Callable[[dict[str, Any]], bool] | None = None,
    ) -> PageProblems:
        """Start watching `page` (call before `goto`).

        `ignore` drops known console noise; `allow_csp` accepts a known, harmless violation
        report (a dict: directive, blocked, source, line, sample, disposition, page).
        Whatever is dropped lands in `.ignored`, so a failure message can still show it.
        """
        problems = cls()

        def on_violation(_source: Any, report: dict[str, Any]) -> None:
            if allow_csp is not None and allow_csp(report):
                problems.ignored.append(f"allowed CSP violation: {report!r}")
            else:
                problems.csp_violations.append(report)

        def on_console(message: ConsoleMessage) -> None:
            if message.type != "error":
                return
            where = message.location.get("url", "") if message.location else ""
            text = f"{message.text} (at {where})" if where else message.text
            if ignore is not None and ignore(message):
                problems.ignored.append(text)
            else:
                problems.console_errors.append(text)

        def on_page_error(error: Error) -> None:
            problems.page_errors.append(f"{error.name}: {error.message}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.expose_binding(cls.BINDING, on_violation)
        page.add_init_script(cls.LISTENER)
        return problems

    @property
    def csp_console_errors(self) -> list[str]:
        return [e for e in self.console_errors if "Content Security Policy" in e]

    def assert_no_csp_violations(self) -> None:
        assert not self.csp_violations and not self.csp_console_errors, (
            f"CSP violations: {self.csp_violations!r}; console: {self.csp_console_errors!r}"
        )

    def assert_clean(self) -> None:
        self.assert_no_csp_violations()
        assert not self.page_errors, f"uncaught errors in the page: {self.page_errors!r}"
        assert not self.console_errors, f"console errors: {self.console_errors!r}"


def is_missing_favicon(message: ConsoleMessage) -> bool:
    """Chromium asks every origin for /favicon.ico; floorboard serves none (yet)."""
    where = message.location.get("url", "") if message.location else ""
    return where.endswith("/favicon.ico")


@pytest.fixture
def new_user_page(new_context: Callable[..., Any], base_url: str) -> Callable[..., Page]:
    """Factory: `alice = new_user_page("alice")` -> a signed-in Page in its own context.

    Built on pytest-playwright's `new_context`, so the contexts close after the test and
    `--screenshot/--tracing/--video` apply. Extra keyword arguments go to the context
    (viewport=…, is_mobile=…, …).
    """

    def make(username: str, password: str = "demo", **context_args: Any) -> Page:
        page = new_context(**context_args).new_page()
        sign_in(page, base_url, username, password)
        if "/login" in page.url or page.locator(".error-page").count():
            pytest.fail(f"{username} could not sign in: {describe(page)}", pytrace=False)
        return page

    return make


@pytest.fixture
def no_js_page(new_context: Callable[..., Any]) -> Page:
    """A Page (not signed in) whose context runs no JavaScript: plain links and form posts."""
    return new_context(java_script_enabled=False).new_page()


@pytest.fixture
def users(new_context: Callable[..., Any], base_url: str) -> Any:
    from tests.browser.pages import UserPages  # pages.py imports this module

    return UserPages(new_context, base_url)


# --- set-up and tidying over plain HTTP ------------------------------------------------------


class SiteClient:
    """A user signed in over plain HTTP (no browser, no JavaScript): plain form posts with
    the CSRF field, answered 303 (Post/Redirect/Get) or 4xx with the page."""

    def __init__(self, base_url: str, username: str, password: str = "demo") -> None:
        self.username = username
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=20)
        self.http.get("/login")
        answer = self.post("/login", {"username": username, "password": password, "next": "/"})
        assert answer.status_code == 303, f"{username} could not sign in: {answer.status_code}"

    @property
    def token(self) -> str:
        return self.http.cookies.get("csrftoken") or ""

    def post(self, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(path, data={**(data or {}), "csrftoken": self.token})

    def get(self, path: str) -> BeautifulSoup:
        answer = self.http.get(path)
        assert answer.status_code == 200, f"GET {path}: {answer.status_code}"
        return BeautifulSoup(answer.text, "html.parser")

    def close(self) -> None:
        self.http.close()


class Scratch:
    """What one test makes at Nairobi: towns and parcel codes nobody else uses, so a test
    works on drafts of its own; everything is tidied away by `tidy` after the test."""

    DRAFTS = "/s/nairobi/drafts"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.towns: list[str] = []
        self.codes: list[str] = []
        self._clients: dict[str, SiteClient] = {}

    def client(self, username: str = "admin") -> SiteClient:
        if username not in self._clients:
            self._clients[username] = SiteClient(self.base_url, username)
        return self._clients[username]

    @staticmethod
    def letters(n: int) -> str:
        return "".join(random.choices(string.ascii_lowercase, k=n))

    def town(self, name: str = "Testtown") -> str:
        """A destination of this test's own, spelled as the app stores it (title case)."""
        town = " ".join(f"{name} {self.letters(6)}".split()).title()
        self.towns.append(town)
        return town

    def long_town(self, length: int, *, spaces: bool) -> str:
        """A destination exactly `length` characters long: words of 7 letters, or one word."""
        if spaces:
            text = ""
            while len(text) < length:
                text += self.letters(7) + " "
            text = text[:length]
            text = text[:-1] + self.letters(1) if text.endswith(" ") else text
        else:
            text = self.letters(length)
        town = " ".join(text.split()).title()
        assert len(town) == length, town
        self.towns.append(town)
        return town

    def code(self) -> str:
        code = "T-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=8))
        self.codes.append(code)
        return code

    def receive(self, town: str, n: int = 1, kg: str = "2.5", by: str = "admin") -> list[str]:
        """Receive `n` parcels for `town`; their codes."""
        codes = []
        for i in range(n):
            code = self.code()
            answer = self.client(by).post(
                f"{self.DRAFTS}/parcels",
                {"code": code, "destination": town, "description": f"box {i + 1}", "weight": kg},
            )
            assert answer.status_code == 303, f"receiving {code}: {answer.status_code}"
            codes.append(code)
        return codes

    def add(self, *codes: str, by: str = "admin") -> None:
        """Add parcels by code (the scan box), each to its destination's draft."""
        for code in codes:
            answer = self.client(by).post(f"{self.DRAFTS}/scan", {"code": code})
            assert answer.status_code == 303, f"adding {code}: {answer.status_code}"

    def draft_id(self, town: str, by: str = "admin") -> int | None:
        page = self.client(by).get(self.DRAFTS)
        for item in page.select("#drafts details.draft"):
            if item.get("data-destination") == town:
                return int(str(item["id"]).removeprefix("draft-"))
        return None

    def set_transport(
        self, town: str, vehicle: str = "KCC 789C", driver: str = "Grace Njeri", by: str = "admin"
    ) -> None:
        """Vehicle and driver through the editor: take the lock, save (which lets it go)."""
        client, draft = self.client(by), self.draft_id(town, by)
        assert draft is not None, f"no {town} draft"
        editor = f"{self.DRAFTS}/{draft}/transport"
        assert client.post(f"{editor}/open").status_code == 303
        form = client.get(editor).select_one("#editor form.editor__form")
        assert form is not None
        fields = {
            str(i["name"]): str(i.get("value", "")) for i in form.select("input[type=hidden]")
        }
        option = next(
            o for o in form.select("#t-vehicle option") if o.get_text().strip().startswith(vehicle)
        )
        fields.update(vehicle=str(option["value"]), driver=driver)
        fields.pop("csrftoken", None)
        answer = client.post(editor, fields)
        assert answer.status_code == 303, f"saving {town}'s vehicle: {answer.status_code}"

    def tidy(self) -> None:
        """Parcels this test received go into their drafts, and this test's drafts are
        finalised (their parcels leave the table), or cleared if that is refused."""
        if not self.towns and not self.codes:
            return
        admin = self.client("admin")
        page = admin.get(self.DRAFTS)
        for row in page.select("#parcel-rows tr.parcel"):
            code = row.select_one(".code")
            if code and code.get_text().strip() in self.codes and row.select_one("input"):
                admin.post(f"{self.DRAFTS}/scan", {"code": code.get_text().strip()})
        for town in self.towns:
            draft = self.draft_id(town)
            if draft is None:
                continue
            admin.post(f"{self.DRAFTS}/{draft}/transport/break")  # whoever still holds it
            try:
                self.set_transport(town, driver="Tidy Up")  # saving lets the lock go
                finalised = admin.post(f"{self.DRAFTS}/{draft}/finalise").status_code == 200
            except AssertionError:
                finalised = False
                self.release(draft)
            if not finalised or self.draft_id(town) is not None:
                admin.post(f"{self.DRAFTS}/{draft}/clear")

    def release(self, draft: int) -> None:
        """Let go of the admin's lock on a draft's editor (the token is on its page)."""
        editor = f"{self.DRAFTS}/{draft}/transport"
        try:
            token = self.client("admin").get(editor).select_one("input[name=token]")
        except AssertionError:
            return
        if token is not None and token.get("value"):
            self.client("admin").post(f"{editor}/cancel", {"token": token["value"]})

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


@pytest.fixture
def scratch(base_url: str) -> Iterator[Scratch]:
    made = Scratch(base_url)
    try:
        yield made
        made.tidy()
    finally:
        made.close()


__all__ = [
    "LiveServer",
    "PageProblems",
    "Scratch",
    "SignIn",
    "SiteClient",
    "describe",
    "free_port",
    "is_missing_favicon",
    "sign_in",
]
