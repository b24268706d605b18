"""The JSON API (/api/v1) and the API tokens on /me.

Runs on both engines. Tokens are made through /me as a person would; the dispatches the
API lists are made here, at their own test sites' demo branches, and removed afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Annotated, Any

import httpx
import pytest
from piccolo.apps.user.tables import BaseUser

import demo_tokens
from routes import api
from routes.api.kit import Endpoints, openapi_document, routes_of
from tables.apitokens import ApiToken
from tables.dispatches import Dispatch, DispatchStatus
from tables.orgs import OrgActivity
from tests.conftest import texts
from tests.factories import site_id

LIST = "/api/v1/s/{site}/dispatches"


async def last_id(table) -> int:
    row = await table.select(table.id).order_by(table.id, ascending=False).first()
    return row["id"] if row else 0


@pytest.fixture(autouse=True)
async def tidy():
    """Tokens, dispatches and trail lines a test makes are gone after it."""
    marks = {t: await last_id(t) for t in (ApiToken, Dispatch, OrgActivity)}
    yield
    for table, mark in marks.items():
        await table.delete().where(table.id > mark)


@pytest.fixture
async def http(app):
    """A client with no cookies: what a program calling the API is."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_token(me, name: str = "ci") -> str:
    """Make a token on /me, as its owner would; the page shows its secret this once."""
    response = await me.post("/me/tokens", {"name": name})
    assert response.status_code == 201, response.text
    [secret] = texts(response, ".api-tokens__secret")
    return secret


async def token_of(as_user, username: str) -> str:
    return await make_token(await as_user(username), f"{username}'s script")


async def add_dispatches(slug: str, *statuses: DispatchStatus) -> list[int]:
    sid = await site_id(slug)
    ids = []
    for status in statuses:
        row = Dispatch(
            number=f"T-{uuid.uuid4().hex[:10]}",
            title=f"Test run to {slug}",
            status=status.value,
            site=sid,
            created_by_name="Test",
        )
        await row.save()
        ids.append(row.id)
    return ids


# -- tokens on /me ---------------------------------------------------------------------------


async def test_token_made_on_me_is_shown_once_then_only_its_name_and_prefix(as_user, http):
    alice = await as_user("alice")
    secret = await make_token(alice, "night shift script")

    page = await alice.get("/me")
    assert secret not in page.text
    assert texts(page, ".api-tokens__name") == ["night shift script"]
    assert texts(page, ".api-tokens__prefix") == [secret[:9] + "…"]
    answer = await http.get(LIST.format(site="nairobi"), headers=bearer(secret))
    assert answer.status_code == 200


async def test_the_database_holds_only_the_tokens_hash(as_user):
    secret = await token_of(as_user, "alice")

    rows = await ApiToken.select().where(ApiToken.prefix == secret[:9])
    assert len(rows) == 1
    assert rows[0]["token"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not [v for row in rows for v in row.values() if secret in str(v)]


async def test_a_token_needs_a_name_and_the_csrf_field(as_user):
    alice = await as_user("alice")
    before = await ApiToken.count()

    nameless = await alice.post("/me/tokens", {"name": "  "})
    forged = await alice.post("/me/tokens", {"name": "x"}, csrf=False)

    assert nameless.status_code == 422
    assert texts(nameless, "#f-name-error") == ["Enter a name for the token."]
    assert forged.status_code == 403
    assert await ApiToken.count() == before


async def test_revoked_token_gets_401_at_once(as_user, http):
    alice = await as_user("alice")
    secret = await make_token(alice)
    [row] = await ApiToken.select(ApiToken.id).where(ApiToken.prefix == secret[:9])

    revoked = await alice.post(f"/me/tokens/{row['id']}/revoke")
    answer = await http.get(LIST.format(site="nairobi"), headers=bearer(secret))

    assert revoked.status_code == 303
    assert answer.status_code == 401
    assert answer.json()["message"]
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert texts(await alice.get("/me"), ".api-tokens__name") == []


async def test_nobody_else_can_revoke_my_token(as_user, http):
    secret = await token_of(as_user, "alice")
    [row] = await ApiToken.select(ApiToken.id).where(ApiToken.prefix == secret[:9])
    bob = await as_user("bob")

    await bob.post(f"/me/tokens/{row['id']}/revoke")

    answer = await http.get(LIST.format(site="nairobi"), headers=bearer(secret))
    assert answer.status_code == 200


async def test_deactivated_users_token_gets_401(as_user, http):
    secret = await token_of(as_user, "charlie")
    await BaseUser.update({BaseUser.active: False}).where(BaseUser.username == "charlie")
    try:
        answer = await http.get(LIST.format(site="nairobi"), headers=bearer(secret))
    finally:
        await BaseUser.update({BaseUser.active: True}).where(BaseUser.username == "charlie")
    assert answer.status_code == 401


# -- who gets in ------------------------------------------------------------------------------


async def test_a_signed_in_browser_gets_401_on_the_api(as_user):
    alice = await as_user("alice")

    answer = await alice.get(LIST.format(site="nairobi"))

    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    assert "csrftoken" not in answer.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "header",
    [None, "Basic YWxpY2U6ZGVtbw==", "Bearer ", "Bearer fb_nope", "Bearer " + "x" * 5000],
)
async def test_missing_or_unknown_token_gets_401_json(http, header):
    headers = {"Authorization": header} if header is not None else {}

    answer = await http.get(LIST.format(site="nairobi"), headers=headers)

    assert answer.status_code == 401
    assert set(answer.json()) == {"message", "fields"}


async def test_a_token_request_needs_no_csrf_token(as_user, http):
    """An unsafe method with a token reaches the API (405: no such operation), not the CSRF
    check's 403 page."""
    secret = await token_of(as_user, "alice")

    answer = await http.post(LIST.format(site="nairobi"), headers=bearer(secret), json={})

    assert answer.status_code == 405
    assert answer.json()["message"]


async def test_nakuru_token_gets_404_for_nairobi_dispatches(as_user, http):
    [nairobi_dispatch] = await add_dispatches("nairobi", DispatchStatus.created)
    dana = bearer(await token_of(as_user, "dana"))

    foreign_list = await http.get(LIST.format(site="nairobi"), headers=dana)
    foreign_one = await http.get(f"/api/v1/s/nairobi/dispatches/{nairobi_dispatch}", headers=dana)
    via_own_site = await http.get(f"/api/v1/s/nakuru/dispatches/{nairobi_dispatch}", headers=dana)
    unknown_site = await http.get(LIST.format(site="atlantis"), headers=dana)

    assert [r.status_code for r in (foreign_list, foreign_one, via_own_site)] == [404] * 3
    assert foreign_list.json() == foreign_one.json() == unknown_site.json()
    assert via_own_site.json()["message"] == "There is no such dispatch at this site."


# -- dispatches ------------------------------------------------------------------------------


async def test_list_filters_by_status_and_pages_with_the_cursor(as_user, http):
    S = DispatchStatus
    made = await add_dispatches("nakuru", S.created, S.assigned, S.created, S.created, S.completed)
    dana = bearer(await token_of(as_user, "dana"))

    seen: list[int] = []
    query: dict[str, Any] = {"status": "created", "limit": 2}
    while True:
        page = (await http.get(LIST.format(site="nakuru"), params=query, headers=dana)).json()
        seen += [item["id"] for item in page["items"]]
        assert {item["status"] for item in page["items"]} <= {"created"}
        if page["next"] is None:
            break
        query["cursor"] = page["next"]

    mine = [i for i in seen if i in made]
    assert mine == sorted([made[0], made[2], made[3]], reverse=True)
    assert len(seen) == len(set(seen))


async def test_get_one_dispatch(as_user, http):
    [made] = await add_dispatches("nakuru", DispatchStatus.assigned)
    dana = bearer(await token_of(as_user, "dana"))

    answer = await http.get(f"/api/v1/s/nakuru/dispatches/{made}", headers=dana)

    body = answer.json()
    assert answer.status_code == 200
    assert body["id"] == made and body["status"] == "assigned" and body["site"] == "nakuru"
    assert set(body) == {"id", "number", "title", "status", "site", "created_at"}


async def test_bad_query_values_get_422_with_a_message_per_field(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    query = {"limit": "0", "status": "flying", "cursor": "99999999999"}

    answer = await http.get(LIST.format(site="nairobi"), params=query, headers=alice)

    assert answer.status_code == 422
    body = answer.json()
    assert set(body["fields"]) == {"limit", "status", "cursor"}
    assert all(message.endswith(".") for message in body["fields"].values())


@pytest.mark.parametrize("value", ["abc", "0", "99999999999", "1%00", "-1"])
async def test_a_dispatch_id_that_can_name_nothing_gets_422(as_user, http, value):
    alice = bearer(await token_of(as_user, "alice"))

    answer = await http.get(f"/api/v1/s/nairobi/dispatches/{value}", headers=alice)

    assert answer.status_code == 422
    assert list(answer.json()["fields"]) == ["id"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/s/nairobi/nothing-here",
        "/api/v1/nothing-here",
        "/api/v1/s/na%0Airobi/dispatches/1",  # paths Starlette's router cannot match at all
        "/api/v1/s/nairobi/dispatches/%0A",
        "/api/v1/%0A",
    ],
)
async def test_unknown_api_path_is_a_json_404(as_user, http, path):
    alice = bearer(await token_of(as_user, "alice"))

    answer = await http.get(path, headers=alice)
    anonymous = await http.get(path)

    assert (answer.status_code, anonymous.status_code) == (404, 401)
    assert answer.json() == {"message": "Not found.", "fields": {}}
    assert anonymous.headers["content-type"] == "application/json"


# -- the OpenAPI document ---------------------------------------------------------------------


async def test_openapi_document_is_valid_and_lists_every_route(http, app):
    from jsonschema_rs import meta
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    answer = await http.get("/api/v1/openapi.json")  # no token: it holds no data
    doc = answer.json()

    assert answer.status_code == 200
    OPENAPI_31_VALIDATOR.validate(doc)
    for schema in doc["components"]["schemas"].values():
        meta.validate(schema)  # each a valid JSON Schema (2020-12, OpenAPI 3.1's dialect)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    declared = {(e.method, api.PREFIX + e.path) for e in api.ENDPOINTS}
    assert documented == declared and declared
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearer": []}]
    for ops in doc["paths"].values():
        for op in ops.values():
            assert {"401", "404", "422"} <= set(op["responses"])


async def test_every_endpoint_route_is_mounted(http, as_user):
    """Each declared endpoint answers at its documented path (none only documented)."""
    admin = bearer(await token_of(as_user, "admin"))
    for endpoint in api.ENDPOINTS:
        path = (api.PREFIX + endpoint.path).format(site="nairobi", id=1)
        answer = await http.request(endpoint.method, path, headers=admin)
        assert answer.status_code in (200, 404), (path, answer.status_code)
        assert answer.headers["content-type"] == "application/json"


async def test_a_body_is_read_into_its_model_or_refused_per_field():
    """The kit's JSON bodies, on an endpoint of the test's own (no area posts yet)."""
    from pydantic import BaseModel
    from starlette.applications import Starlette

    from routes.api.kit import Text, exception_handlers

    class Note(BaseModel):
        title: Annotated[str, Text(20)]
        count: int

    class Saved(BaseModel):
        title: str

    notes = Endpoints("Notes")

    @notes.post("/notes", body=Note, response=Saved, status=201)
    async def note_add(request, body: Note) -> Saved:
        return Saved(title=body.title)

    app = Starlette(routes=routes_of(notes), exception_handlers=exception_handlers)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.post("/notes", json={"title": " Hi ", "count": 2})
        bad = await client.post("/notes", json={"title": "x" * 21, "count": "many"})
        untypeable = await client.post("/notes", json={"title": "a\x00b", "count": 1})
        broken = await client.post(
            "/notes", content=b"{", headers={"content-type": "application/json"}
        )
        form = await client.post("/notes", data={"title": "x"})
        huge = await client.post("/notes", json={"title": "x" * 300_000, "count": 1})
    doc = openapi_document(notes, prefix="", title="t", version="1", description="")

    assert (ok.status_code, ok.json()) == (201, {"title": "Hi"})
    assert bad.status_code == 422 and set(bad.json()["fields"]) == {"body.title", "body.count"}
    assert untypeable.json()["fields"] == {"body.title": "Has characters that cannot be typed."}
    assert [broken.status_code, form.status_code, huge.status_code] == [400, 415, 413]
    operation = doc["paths"]["/notes"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]
    title = doc["components"]["schemas"]["Note"]["properties"]["title"]
    assert (title["type"], title["minLength"], title["maxLength"]) == ("string", 1, 20)
    assert {"400", "413", "415", "422", "201"} <= set(operation["responses"])


# -- the demo's token --------------------------------------------------------------------------


async def test_demo_admin_token_is_printed_while_it_works(http):
    await demo_tokens.load_api_tokens()
    await demo_tokens.load_api_tokens()  # twice changes nothing

    line = await demo_tokens.admin_token_line()
    answers = [
        await http.get(LIST.format(site=s), headers=bearer(demo_tokens.ADMIN_TOKEN))
        for s in ("nairobi", "nakuru", "killarney", "workshop")
    ]
    assert demo_tokens.ADMIN_TOKEN in line
    assert [a.status_code for a in answers] == [200] * 4
    assert (
        await ApiToken.count().where(ApiToken.token == demo_tokens.digest(demo_tokens.ADMIN_TOKEN))
        == 1
    )

    await ApiToken.delete().where(ApiToken.name == demo_tokens.ADMIN_TOKEN_NAME)
    assert await demo_tokens.admin_token_line() == ""


# -- fuzzing from the document ------------------------------------------------------------------


class OnLoop:
    """The app, run on `loop` (the test session's: it holds the database pool) for a client
    on another thread — schemathesis calls an ASGI app from its own event-loop thread."""

    def __init__(self, app, loop: asyncio.AbstractEventLoop) -> None:
        self.app, self.loop = app, loop

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # the real app's lifespan runs in the session
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        caller = asyncio.get_running_loop()

        def on_caller(coro):
            return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, caller))

        async def receive_there():
            return await on_caller(receive())

        async def send_there(message):
            await on_caller(send(message))

        done = asyncio.run_coroutine_threadsafe(
            self.app(scope, receive_there, send_there), self.loop
        )
        await asyncio.wrap_future(done)


FUZZ_EXAMPLES = 40  # per mode and site; the whole test stays well under a minute on 2 cores


async def test_api_fuzzed_from_its_own_openapi_document(app, as_user):
    """Every generated request, valid or not, with a valid token: never a 500, and every
    answer matches the document (status, content type, schema, auth)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    S = DispatchStatus
    made = await add_dispatches("nairobi", S.created, S.assigned, S.in_progress, S.completed)
    token = await token_of(as_user, "alice")
    bridge = OnLoop(app, asyncio.get_running_loop())

    def fuzz() -> None:
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", bridge)
        auth = {"Authorization": f"Bearer {token}"}
        one = schema["/api/v1/s/{site}/dispatches/{id}"]["GET"]
        cases = st.one_of(
            *(
                schema.as_strategy(mode, path_parameters=sites, headers=auth)
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                for sites in ({"site": "nairobi"}, None)
            ),
            *(  # dispatches that exist, so their 200s are checked too
                one.as_strategy(path_parameters={"site": "nairobi", "id": i}, headers=auth)
                for i in made
            ),
        )

        @settings(
            max_examples=FUZZ_EXAMPLES * 4,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def check(case) -> None:
            case.call_and_validate(headers=auth)

        check()

    await asyncio.to_thread(fuzz)
