"""Shared dispatch drafts over HTTP: seed 000's scenario, the concurrency rules, bad input,
and isolation between branches."""

from __future__ import annotations

import asyncio

import pytest

from routes.drafts import TRANSPORT
from tables.dispatches import Dispatch, DispatchParcel
from tables.drafts import Parcel, ParcelStatus, board, parcel_rows
from tables.people import SiteRef
from tests.conftest import count_queries, soup, texts
from tests.factories import draft_of, make_parcels, site_id, vehicle_id

DRAFTS = "/s/nairobi/drafts"


def draft_section(response, destination: str):
    return soup(response).select_one(f'details.draft[data-destination="{destination}"]')


def transport_fields(response) -> dict[str, str]:
    form = soup(response).select_one("#editor form.editor__form")
    return {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}


async def open_transport(client, draft_id: int):
    """What "Vehicle & driver" does: post to take the lock, then land on the editor."""
    opened = await client.post(f"{DRAFTS}/{draft_id}/transport/open")
    assert opened.status_code == 303
    return await client.get(opened.headers["location"])


async def test_seed_scenario_alice_bob_charlie_build_and_finalise_one_dispatch(as_user, town):
    parcels = await make_parcels("nairobi", town, 5)
    alice, bob, charlie = await as_user("alice"), await as_user("bob"), await as_user("charlie")

    # Alice starts the draft with 3 parcels, KCC 789C and Bob Wilson.
    added = await alice.post(f"{DRAFTS}/add", {"parcel": [p["id"] for p in parcels[:3]]})
    assert added.status_code == 303
    draft = await draft_of(town)
    edit = await open_transport(alice, draft["id"])
    fields = transport_fields(edit)
    saved = await alice.post(
        f"{DRAFTS}/{draft['id']}/transport",
        {**fields, "vehicle": await vehicle_id("KCC 789C"), "driver": "Bob Wilson"},
    )
    assert saved.status_code == 303

    # Bob sees it, adds 2 parcels by scanning, changes the driver to Charlie Smith.
    page = await bob.get(DRAFTS)
    section = draft_section(page, town)
    assert (
        section.select_one(".draft__created").get_text(" ", strip=True).startswith("Alice Wanjiru")
    )
    for p in parcels[3:]:
        assert (await bob.post(f"{DRAFTS}/scan", {"code": p["code"]})).status_code == 303
    fields = transport_fields(await open_transport(bob, draft["id"]))
    await bob.post(
        f"{DRAFTS}/{draft['id']}/transport",
        {**fields, "vehicle": await vehicle_id("KCC 789C"), "driver": "Charlie Smith"},
    )

    # Charlie sees 5 parcels, contributors alice and bob, last updated by bob; finalises.
    page = await charlie.get(DRAFTS)
    section = draft_section(page, town)
    assert len(section.select(".draft__parcels li")) == 5
    assert [b.get_text() for b in section.select(".draft__contributors .badge")] == [
        "Alice Wanjiru",
        "Bob Wilson",
    ]
    assert section.select_one(".draft__updated").get_text(" ", strip=True).startswith("Bob Wilson")
    assert section.select_one(".draft__driver").get_text() == "Charlie Smith"
    done = await charlie.post(f"{DRAFTS}/{draft['id']}/finalise")
    assert done.status_code == 200
    number = texts(done, "h1")[0].split("→ ")[1]
    assert texts(done, "h1") == [f"Finalised → {number}"]  # the finaliser's own news

    # The draft is gone for all three, and one dispatch carries the 5 parcels.
    for user in (alice, bob, charlie):
        assert draft_section(await user.get(DRAFTS), town) is None
    dispatch = await Dispatch.select().where(Dispatch.number == number).first()
    assert dispatch["driver_name"] == "Charlie Smith"
    carried = await DispatchParcel.count().where(DispatchParcel.dispatch == dispatch["id"])
    assert carried == 5
    statuses = await Parcel.select(Parcel.status).where(Parcel.id.is_in([p["id"] for p in parcels]))
    assert {s["status"] for s in statuses} == {ParcelStatus.dispatched}


async def test_htmx_add_answers_with_just_what_changed(as_user, town):
    """The answer is the partials everyone else got: the changed draft and rows, not the
    whole page (which with hundreds of parcels would go to every viewer on every add)."""
    first, second = await make_parcels("nairobi", town, 2)
    alice = await as_user("alice")
    headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": alice.csrftoken}
    opened = await alice.http.post(f"{DRAFTS}/add", data={"parcel": [first["id"]]}, headers=headers)
    assert opened.status_code == 200
    targets = [p["hx-target"] for p in soup(opened).select("hx-partial")]
    # A new draft: the list of drafts changes; one table row changes.
    assert targets == ["#drafts", f"#parcel-{first['id']}", "#toasts"]
    draft = await draft_of(town)
    added = await alice.http.post(f"{DRAFTS}/add", data={"parcel": [second["id"]]}, headers=headers)
    targets = [p["hx-target"] for p in soup(added).select("hx-partial")]
    assert targets == [f"#draft-{draft['id']}", f"#parcel-{second['id']}", "#toasts"]
    assert len(added.text) < 10_000
    assert "in the " + town + " draft" in added.text
    assert alice.csrftoken not in opened.text + added.text  # nothing per user in broadcasts


async def test_two_concurrent_finalises_make_exactly_one_dispatch(as_user, town):
    parcels = await make_parcels("nairobi", town, 2)
    alice, bob = await as_user("alice"), await as_user("bob")
    await alice.post(f"{DRAFTS}/add", {"parcel": [p["id"] for p in parcels]})
    draft = await draft_of(town)
    fields = transport_fields(await open_transport(alice, draft["id"]))
    await alice.post(
        f"{DRAFTS}/{draft['id']}/transport",
        {**fields, "vehicle": await vehicle_id("KDA 456B"), "driver": "Peter Otieno"},
    )
    before = await Dispatch.count()
    first, second = await asyncio.gather(
        alice.post(f"{DRAFTS}/{draft['id']}/finalise"),
        bob.post(f"{DRAFTS}/{draft['id']}/finalise"),
    )
    assert await Dispatch.count() == before + 1
    assert {first.status_code, second.status_code} == {200}
    headings = texts(first, "h1") + texts(second, "h1")
    number = (
        await Dispatch.select(Dispatch.number).order_by(Dispatch.id, ascending=False).first()
    )["number"]
    # The winner reads "Finalised → D-…"; the loser is told who was quicker, no error.
    winner = (await Dispatch.select().where(Dispatch.number == number).first())["created_by_name"]
    assert sorted(headings) == [f"Finalised by {winner} → {number}", f"Finalised → {number}"]


async def test_htmx_second_finaliser_gets_news_not_an_error(as_user, town):
    parcels = await make_parcels("nairobi", town, 1)
    alice, bob = await as_user("alice"), await as_user("bob")
    await alice.post(f"{DRAFTS}/add", {"parcel": [parcels[0]["id"]]})
    draft = await draft_of(town)
    fields = transport_fields(await open_transport(alice, draft["id"]))
    await alice.post(
        f"{DRAFTS}/{draft['id']}/transport",
        {**fields, "vehicle": await vehicle_id("KBZ 123A"), "driver": "Peter Otieno"},
    )
    await alice.post(f"{DRAFTS}/{draft['id']}/finalise")
    late = await bob.http.post(
        f"{DRAFTS}/{draft['id']}/finalise",
        headers={"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": bob.csrftoken},
    )
    assert late.status_code == 200
    assert "Finalised by Alice Wanjiru → D-" in late.text


async def test_a_stale_vehicle_and_driver_save_gets_409_with_current_values(as_user, app, town):
    parcels = await make_parcels("nairobi", town, 1)
    alice, bob = await as_user("alice"), await as_user("bob")
    await alice.post(f"{DRAFTS}/add", {"parcel": [parcels[0]["id"]]})
    draft = await draft_of(town)
    alices = transport_fields(await open_transport(alice, draft["id"]))
    site = await SiteRef.load(draft["site"])
    await app.state.services.locks.break_lock(TRANSPORT.key(site, {"draft": draft["id"]}))
    bobs = transport_fields(await open_transport(bob, draft["id"]))
    await bob.post(
        f"{DRAFTS}/{draft['id']}/transport",
        {**bobs, "vehicle": await vehicle_id("KCC 789C"), "driver": "Charlie Smith"},
    )
    stale = await alice.post(
        f"{DRAFTS}/{draft['id']}/transport",
        {**alices, "vehicle": await vehicle_id("KBZ 123A"), "driver": "Peter Otieno"},
    )
    assert stale.status_code == 409
    assert texts(stale, ".conflict li") == [
        "Vehicle is now KCC 789C (you chose KBZ 123A)",
        "Driver is now Charlie Smith (you chose Peter Otieno)",
    ]
    assert soup(stale).select_one("#t-driver")["value"] == "Peter Otieno"  # hers kept
    assert (await draft_of(town))["driver_name"] == "Charlie Smith"


async def test_a_save_while_someone_else_edits_gets_423_naming_them(as_user, town):
    parcels = await make_parcels("nairobi", town, 1)
    alice, bob = await as_user("alice"), await as_user("bob")
    await alice.post(f"{DRAFTS}/add", {"parcel": [parcels[0]["id"]]})
    draft = await draft_of(town)
    await open_transport(alice, draft["id"])
    page = await bob.get(DRAFTS)
    assert draft_section(page, town).select_one(".draft__lock").get_text() == (
        "Being edited by Alice Wanjiru"
    )
    bobs = transport_fields(await open_transport(bob, draft["id"]))
    refused = await bob.post(
        f"{DRAFTS}/{draft['id']}/transport", {**bobs, "vehicle": "", "driver": "Someone"}
    )
    assert refused.status_code == 423
    assert "Being edited by Alice Wanjiru until" in texts(refused, ".lock-state")[0]
    assert (await draft_of(town))["driver_name"] == ""


async def test_clearing_warns_about_other_contributors_and_releases_parcels(as_user, town):
    parcels = await make_parcels("nairobi", town, 2)
    alice, bob = await as_user("alice"), await as_user("bob")
    await alice.post(f"{DRAFTS}/add", {"parcel": [parcels[0]["id"]]})
    await bob.post(f"{DRAFTS}/add", {"parcel": [parcels[1]["id"]]})
    draft = await draft_of(town)
    confirm = await bob.get(f"{DRAFTS}/{draft['id']}/clear")
    assert "Alice Wanjiru has worked on it too" in " ".join(texts(confirm, ".alert"))
    assert (await bob.post(f"{DRAFTS}/{draft['id']}/clear")).status_code == 303
    assert await draft_of(town) is None
    statuses = await Parcel.select(Parcel.status).where(Parcel.id.is_in([p["id"] for p in parcels]))
    assert {s["status"] for s in statuses} == {ParcelStatus.available}


async def test_removing_a_parcel_makes_it_available_again(as_user, town):
    parcels = await make_parcels("nairobi", town, 2)
    alice = await as_user("alice")
    await alice.post(f"{DRAFTS}/add", {"parcel": [p["id"] for p in parcels]})
    draft = await draft_of(town)
    removed = await alice.post(f"{DRAFTS}/{draft['id']}/remove", {"parcel": parcels[0]["id"]})
    assert removed.status_code == 303
    page = await alice.get(DRAFTS)
    row = soup(page).select_one(f"#parcel-{parcels[0]['id']}")
    assert row.select_one(".badge").get_text() == "available"
    assert len(draft_section(page, town).select(".draft__parcels li")) == 1


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"code": "", "destination": "Eldoret", "weight": "2"}, "code", "A code is 3 to 20"),
        (
            {"code": "NEW-1", "destination": "", "weight": "2"},
            "destination",
            "Enter the destination",
        ),
        ({"code": "NEW-1", "destination": "x" * 500, "weight": "2"}, "destination", "at most 60"),
        ({"code": "NEW-1", "destination": "Eldoret", "weight": "-3"}, "weight", "at least 0.001"),
        (
            {"code": "NEW-1", "destination": "Eldoret", "weight": "heavy"},
            "weight",
            "at least 0.001",
        ),
        (
            {"code": "NEW-1", "destination": "Eldoret", "weight": "0.0004"},
            "weight",
            "at least 0.001",
        ),
        (
            {"code": "NEW-1", "destination": "Eldoret", "weight": "1e999999"},  # overflowed
            "weight",
            "at most 30,000",
        ),
        (
            {"code": "NBO-0001", "destination": "Eldoret", "weight": "2"},
            "code",
            "already registered",
        ),
    ],
)
async def test_bad_parcel_input_is_sent_back_at_the_field_with_422(as_user, form, field, message):
    alice = await as_user("alice")
    before = await Parcel.count()
    response = await alice.post(f"{DRAFTS}/parcels", {"description": "Box", **form})
    assert response.status_code == 422
    assert message in soup(response).select_one(f"#r-{field}-error").get_text()
    assert soup(response).select_one("#r-destination")["value"] == form["destination"]
    assert await Parcel.count() == before


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("NOPE-9999", "No parcel NOPE-9999 at this branch."),
        ("NKR-0002", "No parcel NKR-0002 at this branch."),  # nakuru's parcel
        ("%%", "“%%” is not a parcel code"),
        ("x" * 5000, "A parcel code is too long"),
    ],
)
async def test_scanning_a_wrong_code_says_why_with_422(as_user, code, message):
    alice = await as_user("alice")
    response = await alice.post(f"{DRAFTS}/scan", {"code": code})
    assert response.status_code == 422
    assert message in texts(response, "#scan-error")[0]


async def test_scanning_a_parcel_already_in_a_draft_names_that_draft(as_user, town):
    (parcel,) = await make_parcels("nairobi", town, 1)
    alice, bob = await as_user("alice"), await as_user("bob")
    await alice.post(f"{DRAFTS}/scan", {"code": parcel["code"]})
    response = await bob.post(f"{DRAFTS}/scan", {"code": parcel["code"]})
    assert response.status_code == 422
    assert texts(response, "#scan-error") == [f"{parcel['code']} is already in the {town} draft."]


async def test_a_vehicle_of_another_branch_is_refused(as_user, town):
    (parcel,) = await make_parcels("nairobi", town, 1)
    alice = await as_user("alice")
    await alice.post(f"{DRAFTS}/add", {"parcel": [parcel["id"]]})
    draft = await draft_of(town)
    fields = transport_fields(await open_transport(alice, draft["id"]))
    response = await alice.post(
        f"{DRAFTS}/{draft['id']}/transport",
        {**fields, "vehicle": await vehicle_id("KCB 321D"), "driver": "X"},  # nakuru's truck
    )
    assert response.status_code == 422
    assert texts(response, "#t-vehicle-error") == ["Choose one of this branch's vehicles."]
    assert (await draft_of(town))["vehicle"] is None


async def test_another_branchs_parcel_cannot_be_added(as_user):
    alice = await as_user("alice")
    nakuru_parcel = await Parcel.select(Parcel.id).where(Parcel.code == "NKR-0003").first()
    response = await alice.post(f"{DRAFTS}/add", {"parcel": [nakuru_parcel["id"]]})
    assert response.status_code == 422
    assert "is not a parcel of this branch" in " ".join(texts(response, ".alert"))


async def test_dana_sees_none_of_nairobis_drafts(as_user):
    dana = await as_user("dana")
    page = await dana.get("/s/nakuru/drafts")
    assert page.status_code == 200
    titles = texts(page, ".draft__title")
    assert "Nairobi" in titles and "Kisumu" not in titles  # nakuru's own, not nairobi's
    assert not any(code.startswith("NBO-") for code in texts(page, ".parcel-table .code"))


@pytest.mark.parametrize("username", ["dana", "oscar"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", DRAFTS),
        ("GET", f"{DRAFTS}/live"),
        ("POST", f"{DRAFTS}/add"),
        ("POST", f"{DRAFTS}/scan"),
        ("POST", f"{DRAFTS}/parcels"),
        ("GET", f"{DRAFTS}/1/transport"),
        ("POST", f"{DRAFTS}/1/transport/open"),
        ("GET", f"{DRAFTS}/live/status"),
        ("POST", f"{DRAFTS}/1/finalise"),
        ("POST", f"{DRAFTS}/1/clear"),
    ],
)
async def test_outsiders_get_404_on_every_page_stream_and_action(as_user, username, method, path):
    user = await as_user(username)
    response = await (user.get(path) if method == "GET" else user.post(path, {"code": "NBO-0001"}))
    assert response.status_code == 404


async def test_the_drafts_page_reads_in_a_fixed_number_of_queries(as_user):
    """No N+1: the same count of queries with 1 draft or 20."""
    sid = await site_id("nairobi")
    with count_queries() as counted:
        await board(sid)
        await parcel_rows(sid)
    assert len(counted) == 3 + 2


async def test_the_finaliser_can_print_the_manifest_of_the_new_dispatch(as_user, town):
    parcels = await make_parcels("nairobi", town, 2, weight="12.5")
    alice = await as_user("alice")
    await alice.post(f"{DRAFTS}/add", {"parcel": [p["id"] for p in parcels]})
    draft = await draft_of(town)
    fields = transport_fields(await open_transport(alice, draft["id"]))
    await alice.post(
        f"{DRAFTS}/{draft['id']}/transport",
        {**fields, "vehicle": await vehicle_id("KDA 456B"), "driver": "Grace Njeri"},
    )
    done = await alice.post(f"{DRAFTS}/{draft['id']}/finalise")
    link = soup(done).find("a", string="Print the manifest")["href"]
    manifest = await alice.get(link)
    assert manifest.status_code == 200
    number = texts(done, "h1")[0].split("→ ")[1]
    assert texts(manifest, "h1") == [f"Manifest {number}"]
    assert sorted(texts(manifest, ".sheet__table tbody .code")) == sorted(
        p["code"] for p in parcels
    )
    assert texts(manifest, ".sheet__table tfoot .num") == ["25.0"]
    assert (await (await as_user("dana")).get(link)).status_code == 404


async def test_the_load_sheet_lists_the_drafts_parcels_for_printing(as_user, town):
    parcels = await make_parcels("nairobi", town, 3, weight="2")
    alice = await as_user("alice")
    await alice.post(f"{DRAFTS}/add", {"parcel": [p["id"] for p in parcels]})
    draft = await draft_of(town)
    sheet = await alice.get(f"{DRAFTS}/{draft['id']}/load-sheet")
    assert texts(sheet, "h1") == [f"Load sheet — {town}"]
    assert len(soup(sheet).select(".sheet__table tbody tr")) == 3
    assert "<script" not in sheet.text.split("<main")[1]  # prints without JavaScript


async def test_what_people_typed_comes_back_as_text_never_markup(as_user):
    """A destination is typed by staff; every toast and region escapes it."""
    sneaky = '<i class="inj">x</i>'
    (parcel,) = await make_parcels("nairobi", sneaky, 1)
    alice = await as_user("alice")
    headers = {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": alice.csrftoken}
    added = await alice.http.post(f"{DRAFTS}/add", data={"parcel": [parcel["id"]]}, headers=headers)
    draft = await draft_of(sneaky.title())
    await alice.post(f"{DRAFTS}/{draft['id']}/clear")
    stale_remove = await alice.http.post(
        f"{DRAFTS}/{draft['id']}/remove", data={"parcel": parcel["id"]}, headers=headers
    )
    assert stale_remove.status_code == 422
    for response in (added, stale_remove):
        assert "<i class=" not in response.text.lower()
    assert "&lt;I Class=" in stale_remove.text  # shown, as the text it is


async def test_a_dispatched_parcel_cannot_go_into_a_draft_again(as_user, town):
    (parcel,) = await make_parcels("nairobi", town, 1)
    await Parcel.update({Parcel.status: ParcelStatus.dispatched}).where(Parcel.id == parcel["id"])
    alice = await as_user("alice")
    scanned = await alice.post(f"{DRAFTS}/scan", {"code": parcel["code"]})
    assert scanned.status_code == 422
    assert texts(scanned, "#scan-error") == [f"{parcel['code']} is already dispatched."]
    ticked = await alice.post(f"{DRAFTS}/add", {"parcel": [parcel["id"]]})
    assert ticked.status_code == 422
    assert "is already dispatched" in " ".join(texts(ticked, ".alert"))
    assert await draft_of(town) is None
