"""The JSON API (/api/v1) and the API tokens on /me.

Runs on both engines. Tokens are made through /me as a person would; the dispatches the
API lists are made here, at their own test sites' demo branches, and removed afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from piccolo.apps.user.tables import BaseUser

import demo_tokens
from routes import api
from routes.api.kit import Endpoints, openapi_document, routes_of
from routes.dispatches import DISPATCH, DISPATCHES
from tables.apitokens import ApiToken
from tables.assets import Asset
from tables.dispatches import (
    Dispatch,
    DispatchStatus,
    DispatchStatusHistory,
    TruckChecklist,
    VehicleDispatch,
    create_dispatch,
)
from tables.orgs import OrgActivity
from tables.people import Membership, Role, Site, SiteRef
from tests.conftest import events_of, texts
from tests.factories import actor, make_asset, site_id

LIST = "/api/v1/s/{site}/dispatches"
ONE = "/api/v1/s/{site}/dispatches/{id}"
BULK = "/api/v1/s/{site}/dispatches/bulk-transition"


async def last_id(table) -> int:
    row = await table.select(table.id).order_by(table.id, ascending=False).first()
    return row["id"] if row else 0


@pytest.fixture(autouse=True)
async def tidy():
    """Tokens, dispatches, assets and trail lines a test makes are gone after it."""
    marks = {t: await last_id(t) for t in (ApiToken, Dispatch, OrgActivity, Asset)}
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


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_scheme_is_read_whatever_its_case(as_user, http, scheme):
    secret = await token_of(as_user, "alice")

    answer = await http.get(
        LIST.format(site="nairobi"), headers={"Authorization": f"{scheme} {secret}"}
    )

    assert answer.status_code == 200


async def test_a_token_request_needs_no_csrf_token(as_user, http):
    """An unsafe method with a token reaches the API (its 422: the body lacks a title),
    not the CSRF check's 403 page."""
    secret = await token_of(as_user, "alice")

    answer = await http.post(LIST.format(site="nairobi"), headers=bearer(secret), json={})

    assert answer.status_code == 422
    assert "body.title" in answer.json()["fields"]


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
    assert body["asset"] is None and body["details"] == []
    assert body["next"] == ["in_progress", "cancelled"]


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
        body = {"json": {}} if endpoint.body else {}
        answer = await http.request(endpoint.method, path, headers=admin, **body)
        assert answer.status_code in (200, 404, 422), (path, answer.status_code)
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


# -- the dispatch API: create, read, change ------------------------------------------------------


async def site_ref(slug: str) -> SiteRef:
    row = await Site.select().where(Site.slug == slug).first()
    return SiteRef(row["id"], row["slug"], row["name"], row["timezone"])


async def user_id(username: str) -> int:
    return (await actor(username)).id


async def create(http, token: dict, site: str = "nairobi", **body) -> httpx.Response:
    return await http.post(LIST.format(site=site), headers=token, json=body)


async def made_by_api(http, token: dict, asset: dict, **more) -> dict:
    answer = await create(http, token, title="Run to Thika", asset=asset["id"], **more)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def move(http, token: dict, dispatch: dict, to: str, **more) -> httpx.Response:
    path = ONE.format(site=dispatch["site"], id=dispatch["id"]) + "/transition"
    body = {"to": to, "version": dispatch["version"], **more}
    return await http.post(path, headers=token, json=body)


async def test_create_then_it_is_listed_with_its_asset_assignee_and_details(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    van = await make_asset("nairobi", "vehicle", reading=1000)
    bob = await user_id("bob")

    answer = await create(
        http, alice, title="  Pallets to Thika ", description="Two pallets.\nFragile.",
        priority="high", asset=van["id"], assignee=bob, due_at="2030-01-31T17:00:00+03:00",
    )  # fmt: skip

    made = answer.json()
    assert answer.status_code == 201, answer.text
    assert made["number"] == f"D-{made['id']:05d}" and made["title"] == "Pallets to Thika"
    assert (made["status"], made["priority"], made["version"]) == ("created", "high", 1)
    assert made["asset"] == {"id": van["id"], "registration": van["registration"]}
    assert made["assignee"] == {"id": bob, "name": "Bob Wilson"}
    assert made["due_at"].startswith("2030-01-31T14:00:00")
    assert made["description"] == "Two pallets.\nFragile."
    assert [d["kind"] for d in made["details"]] == ["vehicle_dispatch"]
    assert [(t["kind"], t["to_status"]) for t in made["timeline"]] == [("created", "created")]
    assert made["next"] == ["assigned", "cancelled"]

    query = {"asset": van["id"], "assignee": bob, "priority": "high", "status": "created"}
    listed = (await http.get(LIST.format(site="nairobi"), params=query, headers=alice)).json()
    assert [item["id"] for item in listed["items"]] == [made["id"]]
    item = listed["items"][0]
    assert set(item) < set(made) and all(item[k] == made[k] for k in item)
    none = await http.get(
        LIST.format(site="nairobi"), params={**query, "priority": "low"}, headers=alice
    )
    assert none.json()["items"] == []


async def test_the_list_is_one_query_per_page(as_user, http):
    from piccolo.query.base import Query

    alice = bearer(await token_of(as_user, "alice"))
    van = await make_asset("nairobi", "vehicle")
    for _ in range(3):
        await made_by_api(http, alice, van, assignee=await user_id("alice"))
    tables: list[str] = []
    run = Query.run

    async def counted(self, *args, **kwargs):
        tables.append(self.table.__name__)
        return await run(self, *args, **kwargs)

    Query.run = counted  # type: ignore[method-assign]
    try:
        answer = await http.get(LIST.format(site="nairobi"), params={"limit": 100}, headers=alice)
    finally:
        Query.run = run  # type: ignore[method-assign]
    assert answer.status_code == 200 and len(answer.json()["items"]) >= 3
    assert all(item["asset"] for item in answer.json()["items"][:3])
    assert tables.count("Dispatch") == 1 and len(tables) == 4  # + token, user, membership


async def test_a_transition_by_api_moves_the_card_on_every_open_board(app, as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    van = await make_asset("nairobi", "vehicle")
    made = await made_by_api(http, alice, van, assignee=await user_id("bob"))
    nairobi = await site_ref("nairobi")
    answers: list[httpx.Response] = []

    async def act():
        answers.append(await move(http, alice, made, "assigned"))

    async def watch() -> None:
        pass

    board, page = await asyncio.gather(
        events_of(app, DISPATCHES.topic(nairobi, {}), act),
        events_of(app, DISPATCH.topic(nairobi, {"dispatch": made["id"]}), watch),
    )
    moved = answers[0].json()
    assert answers[0].status_code == 200
    assert (moved["status"], moved["version"]) == ("assigned", 2)
    assert moved["assigned_at"] and moved["timeline"][-1]["to_status"] == "assigned"
    html = board[0].html
    assert f"dispatch-{made['id']}" in html and 'hx-target="#cards-assigned"' in html
    assert "hx-upsert" in html and board[0].actor == "alice"
    assert page and page[0].actor == "alice"


async def test_assigning_by_api_makes_a_created_dispatch_assigned(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    van = await make_asset("nairobi", "vehicle")
    made = await made_by_api(http, alice, van)
    path = ONE.format(site="nairobi", id=made["id"]) + "/assign"
    outsider = await http.post(
        path, headers=alice, json={"assignee": await user_id("dana"), "version": 1}
    )
    assert outsider.status_code == 422 and "body.assignee" in outsider.json()["fields"]
    done = await http.post(
        path, headers=alice, json={"assignee": await user_id("bob"), "version": 1}
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "assigned" and body["assignee"]["name"] == "Bob Wilson"
    stale = await http.post(
        path, headers=alice, json={"assignee": await user_id("bob"), "version": 1}
    )
    assert stale.status_code == 409


async def test_a_stale_version_is_409_saying_who_changed_it(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    admin = bearer(await token_of(as_user, "admin"))
    van = await make_asset("nairobi", "vehicle")
    made = await made_by_api(http, alice, van, assignee=await user_id("alice"))
    assert (await move(http, admin, made, "assigned")).status_code == 200

    stale = await move(http, alice, made, "cancelled", reason="Not needed")

    body = stale.json()
    assert stale.status_code == 409
    assert body["message"].startswith("Not saved: Ada Manager changed the dispatch meanwhile")
    assert "Assigned" in body["message"] and body["fields"] == {
        "body.version": "The current version is 2."
    }
    row = await Dispatch.select().where(Dispatch.id == made["id"]).first()
    assert (row["status"], row["version"]) == ("assigned", 2)


async def test_refused_moves_are_422_at_to_and_a_managers_override_is_recorded(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    admin = bearer(await token_of(as_user, "admin"))
    truck = await make_asset("nairobi", "truck")
    made = await made_by_api(http, alice, truck, assignee=await user_id("alice"))

    skipping = await move(http, alice, made, "completed")
    no_reason = await move(http, alice, made, "cancelled")
    assigned = (await move(http, alice, made, "assigned")).json()
    unchecked = await move(http, alice, assigned, "in_progress")
    not_a_manager = await move(
        http, alice, assigned, "in_progress", override=True, reason="Checked by phone"
    )
    overridden = await move(
        http, admin, assigned, "in_progress", override=True, reason="Checked by phone"
    )

    assert skipping.status_code == 422
    assert skipping.json()["fields"] == {
        "body.to": f"{made['number']} cannot go from Created to Completed (only to Assigned "
        "or Cancelled)."
    }
    assert no_reason.status_code == 422 and list(no_reason.json()["fields"]) == ["body.reason"]
    assert unchecked.status_code == 422
    assert "needs a completed checklist" in unchecked.json()["fields"]["body.to"]
    assert assigned["needs"] == ["needs a completed checklist"]  # for its next step
    assert not_a_manager.status_code == 422
    assert "only a manager can override" in not_a_manager.json()["message"]
    assert overridden.status_code == 200, overridden.text
    last = overridden.json()["timeline"][-1]
    assert (last["to_status"], last["override"], last["reason"]) == (
        "in_progress",
        True,
        "Checked by phone",
    )
    history = await DispatchStatusHistory.select().where(
        DispatchStatusHistory.dispatch == made["id"]
    )
    assert [h["to_status"] for h in history] == ["created", "assigned", "in_progress"]


async def test_bulk_with_one_refused_item_is_409_per_item_and_changes_nothing(app, as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    van = await make_asset("nairobi", "vehicle")
    me = await user_id("alice")
    ready = [await made_by_api(http, alice, van, assignee=me) for _ in range(2)]
    nobody = await made_by_api(http, alice, van)
    items = [{"id": d["id"], "version": d["version"]} for d in [*ready, nobody]]

    answer = await http.post(
        BULK.format(site="nairobi"), headers=alice, json={"items": items, "to": "assigned"}
    )

    body = answer.json()
    assert answer.status_code == 409
    assert set(body) == {"message", "fields", "results"} and body["fields"] == {}
    assert [(r["id"], r["ok"]) for r in body["results"]] == [
        (ready[0]["id"], True),
        (ready[1]["id"], True),
        (nobody["id"], False),
    ]
    assert body["results"][2]["message"] == "has nobody assigned: choose who does it first"
    assert nobody["number"] in body["message"]
    rows = await Dispatch.select(Dispatch.status, Dispatch.version).where(
        Dispatch.id.is_in([i["id"] for i in items])
    )
    assert rows == [{"status": "created", "version": 1}] * 3

    nairobi = await site_ref("nairobi")
    answers: list[httpx.Response] = []

    async def act():
        answers.append(
            await http.post(
                BULK.format(site="nairobi"),
                headers=alice,
                json={"items": items[:2], "to": "assigned"},
            )
        )

    async def watch() -> None:
        pass

    board, page = await asyncio.gather(
        events_of(app, DISPATCHES.topic(nairobi, {}), act),
        events_of(app, DISPATCH.topic(nairobi, {"dispatch": ready[1]["id"]}), watch),
    )
    [done] = answers
    assert done.status_code == 200, done.text
    assert all(f"dispatch-{d['id']}" in board[0].html for d in ready)  # one event, both cards
    assert board[0].html.count('hx-target="#cards-assigned"') == 2
    assert page[0].kind == "dispatch.bulk"  # its page is told to refetch itself
    assert [r["ok"] for r in done.json()["results"]] == [True, True]
    assert [d["status"] for d in done.json()["dispatches"]] == ["assigned", "assigned"]


async def test_bulk_refusal_shape_is_in_the_document(http):
    doc = (await http.get("/api/v1/openapi.json")).json()
    bulk = doc["paths"]["/api/v1/s/{site}/dispatches/bulk-transition"]["post"]
    conflict = bulk["responses"]["409"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][conflict["$ref"].rsplit("/", 1)[1]]
    assert {"message", "fields", "results"} <= set(schema["required"])
    transition = doc["paths"]["/api/v1/s/{site}/dispatches/{id}/transition"]["post"]
    assert "409" in transition["responses"]


# -- details --------------------------------------------------------------------------------------


def detail_path(dispatch: dict, kind: str) -> str:
    return ONE.format(site=dispatch["site"], id=dispatch["id"]) + f"/details/{kind}"


async def test_details_are_read_and_saved_typed_from_their_version(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    truck = await make_asset("nairobi", "truck")
    made = await made_by_api(http, alice, truck)
    path = detail_path(made, "truck_checklist")

    first = (await http.get(path, headers=alice)).json()
    saved = await http.put(
        path, headers=alice, json={"version": first["version"], "tires": True, "lights": False}
    )
    again = await http.put(path, headers=alice, json={"version": first["version"], "tires": None})
    loose = await http.put(path, headers=alice, json={"version": 2, "tires": "yes"})

    assert first["values"]["tires"] is None and first["needs"] == {
        "in_progress": "needs a completed checklist"
    }
    assert {f["kind"] for f in first["fields"]} == {"check", "text"}
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert (body["version"], body["values"]["tires"], body["values"]["lights"]) == (2, True, False)
    assert body["values"]["brakes"] is None and body["updated_by"] == "Alice Wanjiru"
    assert body["needs"]["in_progress"].startswith("failed its checklist (lights)")
    assert again.status_code == 409
    assert "Alice Wanjiru" in again.json()["message"]
    assert loose.status_code == 422 and list(loose.json()["fields"]) == ["body.tires"]
    row = await TruckChecklist.select().where(TruckChecklist.dispatch == made["id"]).first()
    assert (row["version"], row["tires"], row["lights"]) == (2, True, False)


async def test_mileage_end_below_start_and_markup_are_422_at_the_field(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    van = await make_asset("nairobi", "vehicle", reading=1000)
    made = await made_by_api(http, alice, van)
    path = detail_path(made, "vehicle_dispatch")

    backwards = await http.put(
        path, headers=alice, json={"version": 1, "mileage_start": 1200, "mileage_end": 1100}
    )
    below_reading = await http.put(path, headers=alice, json={"version": 1, "mileage_start": 900})
    markup = await http.put(
        path, headers=alice, json={"version": 1, "driver_notes": "<script>alert(1)</script>"}
    )
    unknown = await http.put(path, headers=alice, json={"version": 1, "colour": "red"})

    assert backwards.status_code == 422
    assert backwards.json()["fields"] == {
        "body.mileage_end": "The mileage at the end cannot be below the start, 1,200 km."
    }
    assert below_reading.status_code == 422
    assert list(below_reading.json()["fields"]) == ["body.mileage_start"]
    assert markup.status_code == 422 and list(markup.json()["fields"]) == ["body.driver_notes"]
    assert unknown.status_code == 422 and list(unknown.json()["fields"]) == ["body.colour"]
    row = await VehicleDispatch.select().where(VehicleDispatch.dispatch == made["id"]).first()
    assert (row["version"], row["mileage_start"], row["driver_notes"]) == (1, None, "")


async def test_a_detail_the_dispatch_lacks_or_no_one_registered_is_404(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    van = await make_asset("nairobi", "vehicle")
    made = await made_by_api(http, alice, van)

    lacking = await http.get(detail_path(made, "truck_checklist"), headers=alice)
    lacking_put = await http.put(
        detail_path(made, "truck_checklist"), headers=alice, json={"version": 1}
    )
    unknown = await http.get(detail_path(made, "horoscope"), headers=alice)

    assert [lacking.status_code, lacking_put.status_code, unknown.status_code] == [404] * 3
    assert lacking.json()["message"] == f"{made['number']} has no truck pre-trip checklist."


async def test_a_closed_dispatchs_details_are_final_409(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    van = await make_asset("nairobi", "vehicle")
    made = await made_by_api(http, alice, van)
    assert (await move(http, alice, made, "cancelled", reason="Rain")).status_code == 200

    answer = await http.put(
        detail_path(made, "vehicle_dispatch"), headers=alice, json={"version": 1}
    )

    assert answer.status_code == 409 and "final" in answer.json()["message"]


# -- who may, and bad input ---------------------------------------------------------------------


def every_operation(site: str, dispatch_id: int) -> list[tuple[str, str, dict | None]]:
    """(method, path, a body that fits) of every endpoint, about one dispatch."""
    bodies = {
        "dispatch_create": {"title": "x", "asset": 1},
        "dispatch_transition": {"to": "cancelled", "version": 1, "reason": "x"},
        "dispatch_assign": {"assignee": 1, "version": 1},
        "dispatch_bulk_transition": {
            "items": [{"id": dispatch_id, "version": 1}],
            "to": "cancelled",
            "reason": "x",
        },
    }
    found = []
    for e in api.ENDPOINTS:
        path = (api.PREFIX + e.path).format(site=site, id=dispatch_id)
        body = bodies.get(e.name, {"version": 1}) if e.body else None
        found.append((e.method, path, body))
    return found


async def test_a_nakuru_token_gets_404_for_nairobis_dispatches_everywhere(as_user, http):
    alice = bearer(await token_of(as_user, "alice"))
    dana = bearer(await token_of(as_user, "dana"))
    truck = await make_asset("nairobi", "truck")
    made = await made_by_api(http, alice, truck)

    for method, path, body in every_operation("nairobi", made["id"]):
        answer = await http.request(method, path, headers=dana, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json() == {"message": "Not found.", "fields": {}}
    for method, path, body in every_operation("nakuru", made["id"]):
        if "{id}" not in path and "bulk" not in path:
            continue  # the site's own list, create and reports: not about this dispatch
        answer = await http.request(method, path, headers=dana, json=body)
        if "bulk" in path:  # nothing moved: the dispatch is no such dispatch here
            assert answer.status_code == 409, answer.text
            assert answer.json()["results"][0]["message"] == "There is no such dispatch."
        else:
            assert answer.status_code == 404, (method, path, answer.text)
    foreign_asset = await create(http, dana, site="nakuru", title="Borrowed", asset=truck["id"])
    assert foreign_asset.status_code == 422
    assert foreign_asset.json()["fields"] == {"body.asset": "Choose one of this site's assets."}
    row = await Dispatch.select().where(Dispatch.id == made["id"]).first()
    assert (row["status"], row["version"]) == ("created", 1)


async def test_a_revoked_token_gets_401_everywhere(as_user, http):
    alice = await as_user("alice")
    secret = await make_token(alice)
    [row] = await ApiToken.select(ApiToken.id).where(ApiToken.prefix == secret[:9])
    [made] = await add_dispatches("nairobi", DispatchStatus.created)
    await alice.post(f"/me/tokens/{row['id']}/revoke")

    for method, path, body in every_operation("nairobi", made):
        answer = await http.request(method, path, headers=bearer(secret), json=body)
        assert answer.status_code == 401, (method, path)
        assert answer.json()["message"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "x" * 5000, "String should have at most 200 characters."),
        ("due_at", "1850-06-01T12:00:00Z", "A due date is in the year 2000 or later."),
        ("due_at", "2030-06-01T12:00:00", None),  # no offset: whose 12:00?
        ("description", "Load <b>carefully</b>", "Plain text only"),
        ("title", "Run to <script>", "Plain text only"),
        ("priority", "urgent", None),
        ("assignee", 999999, "Choose someone who works at this site, or nobody."),
        ("asset", "12", None),  # JSON has numbers: "12" is not one
    ],
)
async def test_bad_input_is_422_at_the_field_and_nothing_is_written(
    as_user, http, field, value, message
):
    alice = bearer(await token_of(as_user, "alice"))
    van = await make_asset("nairobi", "vehicle")
    before = await Dispatch.count()

    answer = await create(http, alice, **{"title": "Run", "asset": van["id"], field: value})

    assert answer.status_code == 422
    fields = answer.json()["fields"]
    assert list(fields) == [f"body.{field}"]
    assert message is None or fields[f"body.{field}"].startswith(message)
    assert await Dispatch.count() == before


# -- reports ------------------------------------------------------------------------------------


async def test_the_report_counts_by_status_and_averages_completions(as_user, http):
    admin = bearer(await token_of(as_user, "admin"))
    nakuru = await site_id("nakuru")
    asset = await make_asset("nakuru", "forklift")
    who = await actor("admin")
    made = await create_dispatch(nakuru, {"title": "Shift pallets", "asset": asset["id"]}, who)
    # Dated on a day of its own: the demo's dispatches are dated back from now, so on
    # some hours of some days one of them shares today with this one.
    created = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)  # noon in Nakuru
    done = {
        Dispatch.status: "completed",
        Dispatch.priority: "critical",
        Dispatch.created_at: created,
        Dispatch.completed_at: created + timedelta(seconds=90),
    }
    await Dispatch.update(done).where(Dispatch.id == made["id"])
    day = "2024-03-14"
    path = "/api/v1/s/nakuru/reports"

    answer = await http.get(path, headers=admin, params={"start": day, "end": day})
    default = await http.get(path, headers=admin)

    body = answer.json()
    assert answer.status_code == 200, answer.text
    assert (body["start"], body["end"], body["site"]) == (day, day, "nakuru")
    assert body["by_status"]["completed"] >= 1 and set(body["by_status"]) == {
        s.value for s in DispatchStatus
    }
    assert {"label": "Critical", "dispatches": 1, "seconds": 90} in body["by_priority"]
    assert default.status_code == 200 and default.json()["end"] >= day
    from routes import reports as page
    from routes.api import reports as api_reports

    assert api_reports.DEFAULT_DAYS == page.DEFAULT_DAYS  # the page's default period


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"start": "2026-02-30"}, {"start"}),
        ({"start": "yesterday", "end": "1700000000"}, {"start", "end"}),
        ({"start": "1999-12-31"}, {"start"}),
        ({"start": "2026-03-02", "end": "2026-03-01"}, {"end"}),
        ({"end": "2999-01-01"}, {"end"}),
    ],
)
async def test_bad_report_dates_are_422_at_the_field(as_user, http, query, fields):
    admin = bearer(await token_of(as_user, "admin"))

    answer = await http.get("/api/v1/s/nakuru/reports", headers=admin, params=query)

    assert answer.status_code == 422
    assert set(answer.json()["fields"]) == fields


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


@pytest.fixture
async def scratch_site():
    """A site of the test's own, in nairobi's organisation, where alice is a manager, with
    a vehicle and a truck: writes the fuzzer makes there touch no demo dispatch. Gone
    after the test, with all it holds."""
    nairobi = await Site.select().where(Site.slug == "nairobi").first()
    slug = f"fuzz-{uuid.uuid4().hex[:8]}"
    rows = await Site.insert(
        Site(organisation=nairobi["organisation"], slug=slug, name=slug, timezone="Africa/Nairobi")
    ).returning(Site.id)
    sid = rows[0]["id"]
    await Membership.insert(Membership(user=await user_id("alice"), site=sid, role=Role.manager))
    try:
        yield slug
    finally:
        await Dispatch.delete().where(Dispatch.site == sid)
        await Asset.delete().where(Asset.site == sid)
        await Membership.delete().where(Membership.site == sid)
        await Site.delete().where(Site.id == sid)


FUZZ_EXAMPLES = 400  # of all operations, both modes (and 100 creations): well under a minute


async def test_api_fuzzed_from_its_own_openapi_document(app, as_user, scratch_site, figures):
    """Every generated request, valid or not, with a valid token: never a 500, and every
    answer matches the document (status, content type, schema, auth). Valid requests may
    still be refused by the rules a schema cannot say (an asset of this site, mileage end
    ≥ start, a period that ends after it starts): those operations may answer 422 to
    schema-valid data, and nothing else is relaxed."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    slug = scratch_site
    sid = await site_id(slug)
    alice = await actor("alice")
    assets = [await make_asset(slug, kind) for kind in ("vehicle", "truck")]
    made = []
    for asset in assets * 2:
        values = {"title": "Fuzzed run", "asset": asset["id"], "assignee": alice.id}
        made.append((await create_dispatch(sid, values, alice))["id"])
    token = await token_of(as_user, "alice")
    bridge = OnLoop(app, asyncio.get_running_loop())
    ruled = {"POST", "PUT"}
    seen: dict[int, int] = {}

    def fuzz() -> None:
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", bridge)
        auth = {"Authorization": f"Bearer {token}"}
        here = {"site": slug}
        about = [
            op.as_strategy(mode, path_parameters={**here, "id": i}, headers=auth)
            for result in schema.get_all_operations()
            if "{id}" in (op := result.ok()).path
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            for i in made
        ]

        def with_asset(case):
            """A generated new dispatch, of one of the site's assets, for alice or nobody,
            due whenever: a schema cannot say those, so they are the rules' to refuse."""
            if isinstance(case.body, dict):
                body, n = case.body, len(str(case.body))
                body["asset"] = assets[n % 2]["id"]
                body["assignee"] = alice.id if n % 3 else None
                body.pop("due_at", None)
                if n % 2:  # half of them with a title and description anyone could type
                    typed = "".join(c for c in str(body.get("title")) if c.isalnum())
                    body["title"] = "Run " + typed.encode("ascii", "ignore").decode()[:100]
                    body["description"] = ""
            return case

        create = schema["/api/v1/s/{site}/dispatches"]["POST"]
        anything = st.one_of(  # at the site, or at a generated one
            *(
                schema.as_strategy(mode, path_parameters=sites, headers=auth)
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                for sites in (here, None)
            )
        )
        # Hypothesis leans to a one_of's first choices: each part gets its own run.
        parts = [
            (anything, FUZZ_EXAMPLES // 2),
            (st.one_of(*about), FUZZ_EXAMPLES // 4),  # existing dispatches: 200s and 409s
            (create.as_strategy(path_parameters=here, headers=auth).map(with_asset), 100),
        ]
        for cases, examples in parts:

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=cases)
            def check(case) -> None:
                excluded = []
                if case.method.upper() in ruled or case.path.endswith("/reports"):
                    excluded.append(positive_data_acceptance)
                response = case.call_and_validate(headers=auth, excluded_checks=excluded)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1

            check()

    await asyncio.to_thread(fuzz)
    figures(f"API fuzz (schemathesis) statuses: {dict(sorted(seen.items()))}")
    assert {200, 201, 404, 422} <= set(seen), seen
