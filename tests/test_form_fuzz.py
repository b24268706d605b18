"""Every form, fuzzed (issue 12, item 4): each POST route under `/s/{site}`, read from the
real route table, posted by a member with form bodies hypothesis makes from the fields the
app's own pages render for it (a shared pool of names for what no page has a form for:
beats, typing, lock keepers), with values no form offers — NUL bytes, 10 kB, numbers past
2**31 and 2**63, 1e309, markup, odd unicode, empty, missing and repeated fields.

Never a 5xx; and when the answer is a refusal (4xx), nothing was written: a fingerprint of
the database (the row count of every table, and the highest version, revision and
updated_at where a table has them) is the same after as before.

It posts at a site of its own (tests.factories.site_of_its_own), so whatever it manages to
do there (archive a board, approve a stocktake) touches no other test's data. The API's
bodies are schemathesis's (tests/test_api.py); tests/test_route_sweep.py sweeps its routes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import defaultdict
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from piccolo.conf.apps import Finder
from piccolo.engine import engine_finder

from tests.conftest import Client
from tests.factories import real_ids, site_of_its_own, stock_site
from tests.test_route_sweep import PARAM, Endpoint, fill_in, route_table

EXAMPLES = 12  # per route; the first is the page's own form as rendered
TIMEOUT = 30.0

HOSTILE = [
    "",
    " ",
    "\x00",
    "before\x00after",
    "x" * 10_000,
    str(2**31),
    str(2**63),
    str(2**64 + 1),
    "-1",
    "0",
    "1e309",
    "-1e309",
    "NaN",
    "<script>alert(1)</script>",
    "\u202eevil\u202c",
    "😀" * 300,
    "\uff11\uff12",  # fullwidth digits
    "\r\n\t",
    "2026-02-30",
    "9999-12-31T23:59",
    "{{ 7 * 7 }}",
    "' OR 1=1 --",
]
VALUES = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=40),
)
# Fields no form renders but scripts post (editors' lock keepers, presence, "is typing").
SCRIPT_FIELDS = ["token", "state", "version", "viewer", "column", "position", "ids", "id"]
# Routes whose success makes the site's entity go away (or its page read-only): last.
ENDINGS = ("delete", "archive", "approve", "finalise", "clear", "check-in", "step", "break")


def fields_of(form) -> list[tuple[str, str]]:
    """A form's fields as the browser would send them untouched (name, value)."""
    out: list[tuple[str, str]] = []
    for el in form.select("input[name], select[name], textarea[name], button[name]"):
        name = el.get("name")
        if el.name == "select":
            chosen = el.select_one("option[selected]") or el.select_one("option")
            value = (chosen.get("value", chosen.get_text()) if chosen else "") or ""
        elif el.name == "textarea":
            value = el.get_text()
        elif el.name == "button":
            if el.get("type", "submit") != "submit" or any(n == name for n, _ in out):
                continue
            value = el.get("value", "")
        elif el.get("type") in ("checkbox", "radio") and not el.has_attr("checked"):
            if any(n == name for n, _ in out):
                continue
            value = el.get("value", "on")
        elif el.get("type") in ("submit", "image", "file"):
            continue
        else:
            value = el.get("value", "")
        out.append((name, str(value)))
    return out


async def rendered_forms(member: Client, pages: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Every POST form (plain or htmx) of the given pages: action path → its fields."""
    forms: dict[str, list[tuple[str, str]]] = {}
    for page in pages:
        answer = await member.get(page)
        if answer.status_code != 200 or "html" not in answer.headers.get("content-type", ""):
            continue
        doc = BeautifulSoup(answer.text, "html.parser")
        for form in doc.select("form"):
            action = form.get("hx-post") or (
                form.get("action", "") if form.get("method", "get").lower() == "post" else None
            )
            if action is None:
                continue
            path = urlsplit(urljoin(page, action)).path
            if path not in forms:
                forms[path] = fields_of(form)
    return forms


def path_regex(endpoint: Endpoint) -> re.Pattern[str]:
    """Matches the paths the endpoint answers (any value in each parameter)."""
    out, last = "", 0
    for match in PARAM.finditer(endpoint.path):
        out += re.escape(endpoint.path[last : match.start()]) + "[^/]+"
        last = match.end()
    return re.compile(out + re.escape(endpoint.path[last:]) + "$")


def bodies(fields: list[tuple[str, str]], pool: list[str]):
    """Form bodies: the rendered form's fields, each kept, made hostile, left out or sent
    twice, plus a couple of fields it does not have; the first example is the form as is."""
    how = st.sampled_from(["keep", "hostile", "drop", "twice"])
    per_field = [st.tuples(st.just(n), st.just(v), how, VALUES) for n, v in fields]
    extra = st.lists(st.tuples(st.sampled_from(pool), VALUES), max_size=4 if not fields else 2)

    def build(parts) -> tuple[list[tuple[str, str]], bool]:
        chosen, more, htmx = parts
        body: list[tuple[str, str]] = []
        for name, value, how, hostile in chosen:
            if how == "keep":
                body.append((name, value))
            elif how == "hostile":
                body.append((name, hostile))
            elif how == "twice":
                body += [(name, hostile), (name, value)]
        return body + list(more), htmx

    return st.tuples(st.tuples(*per_field), extra, st.booleans()).map(build)


def fuzz_with(strategy, check) -> None:
    """Hypothesis, small and reproducible: the same examples every run, no example database,
    no shrinking (a failure is reported with its body as it was sent)."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case) -> None:
        check(case)

    run()


async def fingerprint_query() -> str:
    """One query: every table's row count, and its highest version/revision/updated_at."""
    parts = []
    for table in Finder().get_table_classes():
        columns = {c._meta.db_column_name for c in table._meta.columns}
        name = table._meta.tablename
        extras = [
            f"CAST(MAX({c}) AS TEXT)" if c in columns else "''"
            for c in ("version", "revision", "updated_at")
        ]
        parts.append(f"SELECT '{name}' AS t, COUNT(*) AS n, {', '.join(extras)} FROM \"{name}\"")
    return " UNION ALL ".join(parts)


async def fingerprint(sql: str) -> tuple:
    from piccolo.querystring import QueryString

    rows = await engine_finder().run_querystring(QueryString(sql))
    return tuple(sorted(tuple(str(v) for v in row.values()) for row in rows))


async def test_no_form_body_gets_a_500_and_a_refusal_writes_nothing(app, caplog, figures):
    caplog.set_level(logging.WARNING)
    started = time.perf_counter()
    own = await site_of_its_own()
    slug = own["slug"]
    endpoints, _, _ = route_table(app)
    site_routes = [e for e in endpoints if e.scope == "site" and not e.is_api]
    posts = [e for e in site_routes if "POST" in e.methods]
    # Those that end their entity last, a ticket's before its board's.
    posts.sort(key=lambda e: (e.path.rsplit("/", 1)[-1] in ENDINGS, -len(e.params)))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        member = Client(http)
        await member.sign_in(own["username"])
        ids = own["ids"]
        pages = [
            e.fill(values)
            for e in site_routes
            if "GET" in e.methods
            and not e.path.endswith("/live")
            and (values := fill_in(e, slug, ids))
        ]
        forms = await rendered_forms(member, pages)
        names = {n for fs in forms.values() for n, _ in fs} | set(SCRIPT_FIELDS)
        pool = sorted(names - {"csrftoken"})
        by_route: dict[str, list[tuple[str, str]]] = {}
        for e in posts:
            regex, values = path_regex(e), fill_in(e, slug, ids)
            own_url = e.fill(values) if values else ""
            matched = sorted(
                (path != own_url, path) for path in forms if regex.match(path)
            )  # this entity's own form first
            if matched:
                by_route[e.key] = forms[matched[0][1]]
        sql = await fingerprint_query()
        unchanged = await fingerprint(sql)
        assert await fingerprint(sql) == unchanged
        await stock_site(slug)  # the control: a write shows
        assert await fingerprint(sql) != unchanged
        loop = asyncio.get_running_loop()
        fuzzed: set[str] = set()
        problems: list[str] = []
        counts: dict[str, int] = defaultdict(int)

        async def post_once(url: str, body: list[tuple[str, str]], htmx: bool) -> None:
            form = [(n, v) for n, v in body if n != "csrftoken"]
            form.insert(0, ("csrftoken", member.csrftoken))
            headers = {"content-type": "application/x-www-form-urlencoded"}
            if htmx:
                headers |= {"HX-Request": "true", "X-CSRFToken": member.csrftoken}
            before = await fingerprint(sql)
            try:
                answer = await asyncio.wait_for(
                    http.post(url, content=urlencode(form).encode(), headers=headers), TIMEOUT
                )
            except Exception as error:  # a failure of any kind is what we look for
                counts["error"] += 1
                problems.append(f"POST {url} {_short(form)}: {type(error).__name__}: {error}")
                return
            counts["requests"] += 1
            status = answer.status_code
            if status >= 500:
                counts["5xx"] += 1
                problems.append(f"POST {url} {_short(form)}: {status}")
            elif status >= 400:
                counts["4xx"] += 1
                if await fingerprint(sql) != before:
                    problems.append(f"POST {url} {_short(form)}: {status} but wrote")
            else:
                counts["ok"] += 1

        for endpoint in posts:
            ids = await real_ids(slug, newest=True)
            values = fill_in(endpoint, slug, ids)
            if values is None:  # earlier routes deleted, archived or finalised it: more
                await stock_site(slug)
                values = fill_in(endpoint, slug, await real_ids(slug, newest=True))
            if values is None:
                continue
            url = endpoint.fill(values)
            fields = by_route.get(endpoint.key, [])

            def check(case, url=url) -> None:  # in hypothesis' thread; posts on the loop
                body, htmx = case
                asyncio.run_coroutine_threadsafe(post_once(url, body, htmx), loop).result()

            await asyncio.to_thread(fuzz_with, bodies(fields, pool), check)
            fuzzed.add(endpoint.key)

    found = {e.key for e in posts}
    elapsed = time.perf_counter() - started
    figures(
        f"form fuzz: {len(found)} POST routes found, {len(fuzzed)} fuzzed "
        f"({len(by_route)} with a rendered form, the rest from a pool of {len(pool)} names); "
        f"{counts['requests']} requests: {counts['ok']} accepted, {counts['4xx']} refused, "
        f"{counts['5xx']} x 5xx, {counts['error']} errors; {elapsed:.1f}s"
    )
    assert sorted(found - fuzzed) == [], "POST routes the fuzz has no ids for"
    assert not problems, "\n".join(problems[:40])
    assert "Traceback" not in caplog.text


def _short(form: list[tuple[str, str]]) -> str:
    return repr([(n, v if len(v) <= 40 else v[:20] + f"…({len(v)})") for n, v in form[1:]])
