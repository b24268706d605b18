"""An organisation's people and sites, run by its own managers; /me; first sign-in.

Runs on both engines (SQLite + memory broker, PostgreSQL + Redis). Every test that adds
people uses usernames of its own, so tests never share a person.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from piccolo.apps.user.tables import BaseUser
from piccolo_api.session_auth.tables import SessionsBase

from live.hub import user_topic
from live.stream import ENDED_KIND
from tables.activity import Activity
from tables.appointments import Bay
from tables.boards import Board, BoardColumn
from tables.notices import SiteNotice
from tables.orgs import Account, OrgActivity
from tables.people import Membership, Organisation, Site
from tests.conftest import soup, texts
from tests.factories import site_id

ORG = "/o/demo-logistics"
OTHER = "/o/other-co"


async def last_id(table) -> int:
    row = await table.select(table.id).order_by(table.id, ascending=False).first()
    return row["id"] if row else 0


@pytest.fixture(autouse=True)
async def tidy():
    """What a test adds — people, sites and what a new site starts with, their trail — is
    taken away after it, so the demo's documented people and sites hold for later tests."""
    marks = {t: await last_id(t) for t in (BaseUser, Site, Activity, OrgActivity)}
    yield
    users = [
        r["id"] for r in await BaseUser.select(BaseUser.id).where(BaseUser.id > marks[BaseUser])
    ]
    sites = [r["id"] for r in await Site.select(Site.id).where(Site.id > marks[Site])]
    boards = [r["id"] for r in await Board.select(Board.id).where(Board.site.is_in(sites or [-1]))]
    await Activity.delete().where(Activity.id > marks[Activity])
    await OrgActivity.delete().where(OrgActivity.id > marks[OrgActivity])
    await Account.delete().where(Account.user.is_in(users or [-1]))
    await SessionsBase.delete().where(SessionsBase.user_id.is_in(users or [-1]))
    await BoardColumn.delete().where(BoardColumn.board.is_in(boards or [-1]))
    await Board.delete().where(Board.id.is_in(boards or [-1]))
    await Bay.delete().where(Bay.site.is_in(sites or [-1]))
    await SiteNotice.delete().where(SiteNotice.site.is_in(sites or [-1]))
    await Membership.delete().where(
        Membership.site.is_in(sites or [-1]) | Membership.user.is_in(users or [-1])
    )
    await Site.delete().where(Site.id.is_in(sites or [-1]))
    await BaseUser.delete().where(BaseUser.id.is_in(users or [-1]))


def unique(prefix: str = "p") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def uid(username: str) -> int:
    return (await BaseUser.select(BaseUser.id).where(BaseUser.username == username).first())["id"]


async def add_person(manager, username, *, site="nakuru", role="dispatcher", start="password"):
    return await manager.post(
        f"{ORG}/people",
        {
            "username": username,
            "full_name": f"Gina {username.title()}",
            "site": str(await site_id(site)),
            "role": role,
            "start_with": start,
        },
    )


async def new_person(manager, **options) -> tuple[str, str]:
    """Add someone and take them through their first sign-in: (username, password)."""
    username = unique("g")
    added = await add_person(manager, username, **options)
    assert added.status_code == 201, added.text
    return username, texts(added, ".added__password")[0]


async def first_sign_in(client, username: str, temporary: str, chosen: str = "gina-pass-1"):
    """Sign in with the temporary password, choose one's own: the answer of that choice."""
    step = await client.post("/login", {"username": username, "password": temporary})
    assert step.status_code == 303
    assert "/welcome/" in step.headers["location"]
    assert "id" not in client.http.cookies  # no session before the password is chosen
    return await client.post(step.headers["location"], {"password": chosen, "repeat": chosen})


async def org_trail(slug: str = "demo-logistics") -> list[str]:
    org = await Organisation.select(Organisation.id).where(Organisation.slug == slug).first()
    rows = await (
        OrgActivity.select(OrgActivity.actor_name, OrgActivity.summary)
        .where(OrgActivity.organisation == org["id"])
        .order_by(OrgActivity.id, ascending=False)
    )
    return [f"{r['actor_name']} {r['summary']}" for r in rows]


# -- who gets in ------------------------------------------------------------------------------


async def test_demo_organisations_have_slugs():
    rows = await Organisation.select(Organisation.name, Organisation.slug).order_by(
        Organisation.name
    )
    slugs = {r["name"]: r["slug"] for r in rows}
    assert slugs["Demo Logistics"] == "demo-logistics"
    assert slugs["Other Co"] == "other-co"


async def test_manager_sees_the_organisations_people_with_sites_and_roles(as_user):
    admin = await as_user("admin")
    page = await admin.get(f"{ORG}/people")
    assert page.status_code == 200
    rows = {r["data-username"]: r for r in soup(page).select("tr.person")}
    assert {"alice", "bob", "charlie", "dana", "erin", "frank", "admin"} <= set(rows)
    assert "oscar" not in rows and "ops" not in rows  # another organisation; no sites
    alice = " ".join(rows["alice"].get_text(" ").split())
    assert "Nairobi Branch dispatcher" in alice and "active" in alice


async def test_nav_shows_people_and_sites_to_managers_and_me_to_everyone(as_user):
    admin = await as_user("admin")
    picker = await admin.get("/")
    assert "People of Demo Logistics" in texts(picker, ".org-links a")
    oscar = await as_user("oscar")
    home = await oscar.get("/s/other/")
    links = {a.get_text(): a["href"] for a in soup(home).select(".topbar__me a")}
    assert links == {"People": f"{OTHER}/people", "Sites": f"{OTHER}/sites", "Me": "/me"}
    alice = await as_user("alice")
    home = await alice.get("/s/nairobi/")
    assert texts(home, ".topbar__me a") == ["Me"]


async def org_actions(slug_path: str) -> list[tuple[str, str, dict]]:
    alice, nairobi = await uid("alice"), await site_id("nairobi")
    return [
        ("GET", f"{slug_path}/people", {}),
        ("POST", f"{slug_path}/people", {"username": unique("x"), "full_name": "X Y"}),
        ("GET", f"{slug_path}/people/{alice}", {}),
        ("POST", f"{slug_path}/people/{alice}", {"full_name": "Hacked", f"role-{nairobi}": ""}),
        ("POST", f"{slug_path}/people/{alice}/deactivate", {}),
        ("POST", f"{slug_path}/people/{alice}/reactivate", {}),
        ("POST", f"{slug_path}/people/{alice}/reset", {"start_with": "password"}),
        ("GET", f"{slug_path}/sites", {}),
        ("POST", f"{slug_path}/sites", {"slug": unique("s"), "name": "X", "kind": "branch"}),
        ("GET", f"{slug_path}/sites/{nairobi}", {}),
        ("POST", f"{slug_path}/sites/{nairobi}", {"name": "Hacked", "timezone": "UTC"}),
        ("POST", f"{slug_path}/sites/{nairobi}/archive", {}),
        ("POST", f"{slug_path}/sites/{nairobi}/reopen", {}),
    ]


@pytest.mark.parametrize("username", ["oscar", "alice", "frank", "ops"])
async def test_everyone_but_its_managers_gets_404_on_every_org_page_and_action(as_user, username):
    """oscar manages another organisation; alice (dispatcher) and frank (staff) work in
    this one; ops is the platform operator. None of them manages Demo Logistics."""
    user = await as_user(username)
    before = (await org_trail(), await Site.select().order_by(Site.id))
    for method, path, data in await org_actions(ORG):
        answer = await (user.get(path) if method == "GET" else user.post(path, data))
        assert answer.status_code == 404, f"{username} {method} {path}: {answer.status_code}"
        assert texts(answer, "h1") == ["Page not found"]
    assert (await org_trail(), await Site.select().order_by(Site.id)) == before
    alice = await BaseUser.select(BaseUser.first_name, BaseUser.active).where(
        BaseUser.username == "alice"
    )
    assert alice == [{"first_name": "Alice", "active": True}]


async def test_an_unknown_organisation_looks_like_a_forbidden_one(as_user):
    oscar = await as_user("oscar")
    real = await oscar.get(f"{ORG}/people")
    fake = await oscar.get("/o/atlantis/people")
    odd = await oscar.get("/o/" + "x" * 300 + "/people")
    assert (real.status_code, real.text) == (fake.status_code, fake.text)
    assert odd.status_code == 404


async def test_a_manager_of_one_organisation_manages_only_that_one(as_user):
    admin = await as_user("admin")
    assert (await admin.get(f"{OTHER}/people")).status_code == 404
    oscar = await as_user("oscar")
    assert (await oscar.get(f"{OTHER}/people")).status_code == 200


async def test_signed_out_visitors_are_sent_to_sign_in_and_posts_refused(client):
    page = await client.get(f"{ORG}/people")
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next={ORG}/people"
    post = await client.post(f"{ORG}/people", {"username": "x"})
    assert post.status_code == 401


async def test_a_live_stream_without_a_session_is_401_not_a_redirect(client):
    """So the page's reconnect after a sign-out elsewhere fails, and app.js reloads."""
    answer = await client.get(
        "/s/nakuru/drafts/live", headers={"accept": "text/html, text/event-stream"}
    )
    assert answer.status_code == 401


# -- adding people ----------------------------------------------------------------------------


async def test_added_with_a_temporary_password_they_must_choose_their_own(as_user, client):
    admin = await as_user("admin")
    username = unique("gina")
    added = await add_person(admin, username)
    assert added.status_code == 201
    temporary = texts(added, ".added__password")[0]
    assert len(temporary) == 12
    person = await uid(username)
    roles = await Membership.select(Membership.role).where(Membership.user == person)
    assert roles == [{"role": "dispatcher"}]

    chosen = await first_sign_in(client, username, temporary)
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/s/nakuru/drafts"  # a branch dispatcher's start
    assert (await client.get("/s/nakuru/drafts")).status_code == 200

    # From now on: their own password, straight in; the temporary one is gone.
    again = await client.post("/login", {"username": username, "password": "gina-pass-1"})
    assert again.status_code == 303 and again.headers["location"] == "/"
    old = await client.post("/login", {"username": username, "password": temporary})
    assert old.status_code == 401
    assert any(
        f"added Gina {username.title()} ({username}) as dispatcher" in line
        for line in await org_trail()
    )


async def test_choosing_a_password_refuses_short_and_mismatched_ones(as_user, client):
    admin = await as_user("admin")
    username = unique("g")
    temporary = texts(await add_person(admin, username), ".added__password")[0]
    step = await client.post("/login", {"username": username, "password": temporary})
    welcome = step.headers["location"]
    short = await client.post(welcome, {"password": "short", "repeat": "short"})
    assert short.status_code == 422
    assert texts(short, ".field__error") == ["A password has at least 8 characters."]
    differ = await client.post(welcome, {"password": "long-enough", "repeat": "long-enougH"})
    assert differ.status_code == 422
    assert texts(differ, ".field__error") == ["The two passwords differ. Type the same one twice."]
    assert "id" not in client.http.cookies


async def test_added_with_a_sign_in_link_that_works_once(as_user, client):
    admin = await as_user("admin")
    username = unique("l")
    added = await add_person(admin, username, site="workshop", role="staff", start="link")
    assert added.status_code == 201
    link = texts(added, ".added__link")[0]
    path = link.split("127.0.0.1", 1)[1]
    page = await client.get(path)
    assert page.status_code == 200 and f"Welcome, Gina {username.title()}" in page.text
    done = await client.post(path, {"password": "my-own-pass", "repeat": "my-own-pass"})
    assert done.status_code == 303
    assert done.headers["location"] == "/s/workshop/"  # staff at a workshop: the site home
    assert (await client.get("/s/workshop/")).status_code == 200
    assert (await client.get(path)).status_code == 404  # spent
    spent = await client.post(path, {"password": "another-one", "repeat": "another-one"})
    assert spent.status_code == 404


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("alice", "The username “alice” is taken. Choose another."),
        ("Gina Smith", "A username has 2 to 30 lowercase letters"),
        ("", "Enter a username."),
    ],
)
async def test_bad_usernames_are_refused_with_a_message_and_nothing_written(
    as_user, username, message
):
    admin = await as_user("admin")
    users = await BaseUser.count()
    answer = await admin.post(
        f"{ORG}/people",
        {
            "username": username,
            "full_name": "Someone New",
            "site": str(await site_id("nakuru")),
            "role": "dispatcher",
            "start_with": "link",
        },
    )
    assert answer.status_code == 422
    assert texts(answer, "#f-username-error")[0].startswith(message)
    assert soup(answer).select_one("#f-full_name")["value"] == "Someone New"  # kept
    assert await BaseUser.count() == users


async def test_a_person_cannot_be_added_at_another_organisations_site(as_user):
    admin = await as_user("admin")
    username = unique("x")
    answer = await add_person(admin, username, site="other")
    assert answer.status_code == 422
    assert texts(answer, "#f-site-error") == ["Choose one of your sites."]
    assert not await BaseUser.exists().where(BaseUser.username == username)


# -- sites and roles --------------------------------------------------------------------------


async def test_changing_sites_and_roles(as_user):
    admin = await as_user("admin")
    username = unique("r")
    await add_person(admin, username)
    person, nakuru, workshop = (
        await uid(username),
        await site_id("nakuru"),
        await site_id("workshop"),
    )
    saved = await admin.post(
        f"{ORG}/people/{person}",
        {"full_name": "Rita Roles", f"role-{nakuru}": "", f"role-{workshop}": "manager"},
    )
    assert saved.status_code == 303
    rows = await Membership.select(Membership.site, Membership.role).where(
        Membership.user == person
    )
    assert rows == [{"site": workshop, "role": "manager"}]
    assert (await BaseUser.select(BaseUser.first_name).where(BaseUser.id == person).first()) == {
        "first_name": "Rita"
    }
    page = await admin.get(saved.headers["location"])
    assert texts(page, ".messages") == ["Saved Rita Roles's sites and roles."]
    assert any(
        "changed Gina" in line and "manager at Westlands Auto Workshop" in line
        for line in await org_trail()
    )

    none_left = await admin.post(
        f"{ORG}/people/{person}", {"full_name": "Rita Roles", f"role-{workshop}": ""}
    )
    assert none_left.status_code == 422
    assert "deactivate them instead" in none_left.text
    assert await Membership.count().where(Membership.user == person) == 1


async def test_a_site_of_another_organisation_cannot_be_given(as_user):
    admin = await as_user("admin")
    alice, other = await uid("alice"), await site_id("other")
    answer = await admin.post(
        f"{ORG}/people/{alice}", {"full_name": "Alice Wanjiru", f"role-{other}": "manager"}
    )
    assert answer.status_code == 303  # the field names no site of this organisation: ignored
    assert not await Membership.exists().where(
        (Membership.user == alice) & (Membership.site == other)
    )


async def test_someone_of_another_organisation_is_404(as_user):
    admin = await as_user("admin")
    oscar = await uid("oscar")
    assert (await admin.get(f"{ORG}/people/{oscar}")).status_code == 404
    assert (await admin.post(f"{ORG}/people/{oscar}/deactivate")).status_code == 404
    assert (await admin.post(f"{ORG}/people/{oscar}", {"full_name": "O"})).status_code == 404
    assert (await BaseUser.select(BaseUser.active).where(BaseUser.id == oscar).first())["active"]


async def test_the_last_manager_cannot_give_up_their_manager_role(as_user):
    oscar = await as_user("oscar")
    me, other = await uid("oscar"), await site_id("other")
    trail = await org_trail("other-co")
    answer = await oscar.post(
        f"{OTHER}/people/{me}", {"full_name": "Oscar Other", f"role-{other}": "staff"}
    )
    assert answer.status_code == 422
    assert texts(answer, ".alert--bad") == [
        "You are the last manager of Other Co. Make someone else a manager first."
    ]
    assert await Membership.select(Membership.role).where(Membership.user == me) == [
        {"role": "manager"}
    ]
    assert await org_trail("other-co") == trail


async def test_the_last_manager_cannot_deactivate_themselves(as_user):
    oscar = await as_user("oscar")
    me = await uid("oscar")
    answer = await oscar.post(f"{OTHER}/people/{me}/deactivate")
    assert answer.status_code == 422
    assert texts(answer, ".alert--bad") == [
        "You are the last manager of Other Co. Make someone else a manager first."
    ]
    assert (await BaseUser.select(BaseUser.active).where(BaseUser.id == me).first())["active"]
    assert await SessionsBase.exists().where(SessionsBase.user_id == me)
    assert (await oscar.get("/s/other/")).status_code == 200


async def test_a_manager_who_is_not_the_last_may_step_down(as_user):
    oscar = await as_user("oscar")
    username = unique("m")
    other = await site_id("other")
    added = await oscar.post(
        f"{OTHER}/people",
        {
            "username": username,
            "full_name": "Mo Manager",
            "site": str(other),
            "role": "manager",
            "start_with": "link",
        },
    )
    assert added.status_code == 201
    second = await uid(username)
    # Now oscar is not the last one: the second manager may drop to staff, and back.
    answer = await oscar.post(
        f"{OTHER}/people/{second}", {"full_name": "Mo Manager", f"role-{other}": "staff"}
    )
    assert answer.status_code == 303
    gone = await oscar.post(f"{OTHER}/people/{second}/deactivate")
    assert gone.status_code == 303


# -- deactivation ----------------------------------------------------------------------------


async def test_deactivation_signs_out_everywhere_frees_locks_ends_streams_keeps_the_name(
    app, as_user, client
):
    admin = await as_user("admin")
    username, temporary = await new_person(admin)
    assert (await first_sign_in(client, username, temporary)).status_code == 303
    person = await uid(username)
    # Something she did, a lock she holds, an open stream of hers.
    note = await client.post("/s/nakuru/notes", {"note": f"{username} was here"})
    assert note.status_code == 303
    svc = app.state.services
    key = f"notice:{await site_id('nakuru')}:"
    await svc.locks.acquire(key, person, f"Gina {username.title()}")
    stream = svc.broker.subscribe([user_topic(person)])
    await asyncio.sleep(0.2)  # the Redis broker's subscription is process-wide; let it settle

    answer = await admin.post(f"{ORG}/people/{person}/deactivate")
    assert answer.status_code == 303
    page = await admin.get(answer.headers["location"])
    assert texts(page, ".messages") == [
        f"Deactivated Gina {username.title()}: signed out everywhere."
    ]

    assert not await SessionsBase.exists().where(SessionsBase.user_id == person)
    gone = await client.get("/s/nakuru/drafts")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert await svc.locks.holder(key) is None
    async with asyncio.timeout(5):
        event = await anext(stream)
    assert event.kind == ENDED_KIND
    stream.close()
    refused = await client.post("/login", {"username": username, "password": "gina-pass-1"})
    assert refused.status_code == 401
    # Her name stays on what she did.
    lines = await Activity.select(Activity.actor_name).where(
        Activity.summary == f"{username} was here"
    )
    assert lines == [{"actor_name": f"Gina {username.title()}"}]
    assert f"Ada Manager deactivated Gina {username.title()}" in await org_trail()
    home = await admin.get("/s/nakuru/")
    assert not any(username.title() in p for p in texts(home, ".people li"))
    listed = await admin.get(f"{ORG}/people")
    row = soup(listed).select_one(f"tr[data-username={username}]")
    assert row is not None and "deactivated" in row.get_text()

    back = await admin.post(f"{ORG}/people/{person}/reactivate")
    assert back.status_code == 303
    again = await client.post("/login", {"username": username, "password": "gina-pass-1"})
    assert again.status_code == 303


# -- resetting someone's sign-in ------------------------------------------------------------


async def reset(manager, person: int, start: str, org: str = ORG):
    return await manager.post(f"{org}/people/{person}/reset", {"start_with": start})


def link_path(answer) -> str:
    return texts(answer, ".added__link")[0].split("127.0.0.1", 1)[1]


async def test_reset_with_a_temporary_password_signs_out_and_replaces_the_old_one(as_user, client):
    admin = await as_user("admin")
    username, temporary = await new_person(admin)
    assert (await first_sign_in(client, username, temporary)).status_code == 303
    person = await uid(username)
    page = await admin.get(f"{ORG}/people/{person}")
    form = soup(page).select_one("form.person-reset")
    assert form is not None and form.select_one("input[name=csrftoken]")

    answer = await reset(admin, person, "password")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert texts(answer, "h1") == [f"Reset the sign-in of Gina {username.title()}"]
    assert texts(answer, ".added__username") == [username]
    new = texts(answer, ".added__password")[0]
    assert len(new) == 12 and new != temporary

    assert not await SessionsBase.exists().where(SessionsBase.user_id == person)
    gone = await client.get("/s/nakuru/drafts")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    client.http.cookies.clear()
    old = await client.post("/login", {"username": username, "password": "gina-pass-1"})
    assert old.status_code == 401
    chosen = await first_sign_in(client, username, new, "gina-pass-2")
    assert chosen.status_code == 303
    assert (await client.get("/s/nakuru/drafts")).status_code == 200
    assert (
        f"Ada Manager reset the sign-in of Gina {username.title()}, with a temporary password"
        in await org_trail()
    )


async def test_reset_with_a_link_kills_the_earlier_link_and_the_new_one_works_once(as_user, client):
    admin = await as_user("admin")
    username, temporary = await new_person(admin)
    assert (await first_sign_in(client, username, temporary)).status_code == 303
    person = await uid(username)

    first = await reset(admin, person, "link")
    assert first.status_code == 200 and not texts(first, ".added__password")
    assert not await SessionsBase.exists().where(SessionsBase.user_id == person)
    earlier = link_path(first)
    second = await reset(admin, person, "link")
    latest = link_path(second)
    assert latest != earlier
    assert (await client.get(earlier)).status_code == 404  # replaced
    client.http.cookies.clear()
    old = await client.post("/login", {"username": username, "password": "gina-pass-1"})
    assert old.status_code == 401  # the old password went with the reset

    page = await client.get(latest)
    assert page.status_code == 200 and f"Welcome, Gina {username.title()}" in page.text
    done = await client.post(latest, {"password": "gina-pass-3", "repeat": "gina-pass-3"})
    assert done.status_code == 303
    assert (await client.get("/s/nakuru/drafts")).status_code == 200
    assert (await client.get(latest)).status_code == 404  # spent
    client.http.cookies.clear()
    again = await client.post("/login", {"username": username, "password": "gina-pass-3"})
    assert again.status_code == 303 and again.headers["location"] == "/"
    line = f"Ada Manager reset the sign-in of Gina {username.title()}, with a sign-in link"
    assert (await org_trail()).count(line) == 2


async def test_a_manager_cannot_reset_their_own_sign_in(as_user):
    admin = await as_user("admin")
    me = await uid("admin")
    page = await admin.get(f"{ORG}/people/{me}")
    assert soup(page).select_one("form.person-reset") is None
    assert "use your account page" in " ".join(texts(page, "#reset-h ~ p"))
    trail = await org_trail()
    answer = await reset(admin, me, "password")
    assert answer.status_code == 422
    assert texts(answer, ".alert--bad") == [
        "To change your own password, use your account page (Me)."
    ]
    assert await SessionsBase.exists().where(SessionsBase.user_id == me)
    assert (await admin.get("/me")).status_code == 200
    assert not await Account.exists().where(
        (Account.user == me) & (Account.must_change_password == True)  # noqa: E712
    )
    assert await org_trail() == trail


async def test_a_deactivated_person_is_reactivated_before_a_reset(as_user):
    admin = await as_user("admin")
    username, _ = await new_person(admin)
    person = await uid(username)
    assert (await admin.post(f"{ORG}/people/{person}/deactivate")).status_code == 303
    page = await admin.get(f"{ORG}/people/{person}")
    assert soup(page).select_one("form.person-reset") is None
    trail = await org_trail()
    answer = await reset(admin, person, "link")
    assert answer.status_code == 422
    assert texts(answer, ".alert--bad") == [
        f"Gina {username.title()} is deactivated. Reactivate them first."
    ]
    assert not await Account.exists().where(
        (Account.user == person) & Account.token_hash.is_not_null()
    )
    assert await org_trail() == trail


async def test_a_reset_needs_a_way_in_and_touches_no_account_shared_or_operators(as_user):
    admin = await as_user("admin")
    username, _ = await new_person(admin)
    person = await uid(username)
    odd = await reset(admin, person, "carrier-pigeon")
    assert odd.status_code == 422
    assert texts(odd, "#f-start_with-error") == ["Choose a sign-in link or a temporary password."]
    await Membership(user=person, site=await site_id("other"), role="staff").save()
    shared = await reset(admin, person, "password")  # their account is not this org's alone
    assert shared.status_code == 422
    assert texts(shared, ".alert--bad") == [
        f"Gina {username.title()} also works for another organisation."
    ]
    await Membership.delete().where(
        (Membership.user == person) & (Membership.site == await site_id("other"))
    )
    await BaseUser.update({BaseUser.superuser: True}).where(BaseUser.id == person)
    refused = await reset(admin, person, "password")
    assert refused.status_code == 422
    assert "platform operator" in texts(refused, ".alert--bad")[0]


async def test_someone_of_another_organisation_cannot_be_reset(as_user):
    admin = await as_user("admin")
    oscar = await uid("oscar")
    trail = await org_trail("other-co")
    assert (await reset(admin, oscar, "password")).status_code == 404
    assert (await reset(admin, oscar, "link", org=OTHER)).status_code == 404
    other_manager = await as_user("oscar")
    username, _ = await new_person(admin)
    assert (await reset(other_manager, await uid(username), "link", org=OTHER)).status_code == 404
    assert (await reset(other_manager, await uid(username), "link")).status_code == 404
    assert await SessionsBase.exists().where(SessionsBase.user_id == oscar)
    assert await org_trail("other-co") == trail


# -- sites -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"slug": "new site"},
            "slug",
            "A slug has only lowercase letters, digits and dashes (no spaces)",
        ),
        ({"slug": "nairobi"}, "slug", "The slug “nairobi” is taken. Choose another."),
        (
            {"timezone": "Africa/Atlantis"},
            "timezone",
            "“Africa/Atlantis” is not a time zone we know.",
        ),
        ({"kind": "castle"}, "kind", "Choose a kind of site."),
        ({"name": ""}, "name", "Enter the site's name."),
    ],
)
async def test_bad_site_input_is_refused_and_nothing_written(as_user, values, field, message):
    admin = await as_user("admin")
    sites = await Site.count()
    form = {
        "slug": unique("s"),
        "name": "Eldoret Branch",
        "kind": "branch",
        "timezone": "Africa/Nairobi",
        **values,
    }
    answer = await admin.post(f"{ORG}/sites", form)
    assert answer.status_code == 422
    assert texts(answer, f"#f-{field}-error")[0].startswith(message)
    if field != "slug":
        assert soup(answer).select_one("#f-slug")["value"] == form["slug"]
    assert await Site.count() == sites


async def test_a_new_workshop_starts_with_its_bays_and_workflow_board(as_user):
    admin = await as_user("admin")
    slug = unique("ws")
    answer = await admin.post(
        f"{ORG}/sites",
        {"slug": slug, "name": "Kisumu Workshop", "kind": "workshop", "timezone": "Africa/Nairobi"},
    )
    assert answer.status_code == 303
    new = await site_id(slug)
    bays = await Bay.select(Bay.name).where(Bay.site == new).order_by(Bay.position)
    assert [b["name"] for b in bays] == ["Bay 1", "Bay 2", "Bay 3"]
    boards = await Board.select(Board.name, Board.kind).where(Board.site == new)
    assert boards == [{"name": "Workflow", "kind": "workflow"}]
    assert (await admin.get(f"/s/{slug}/")).status_code == 200  # its creator manages it
    assert (await admin.get(f"/s/{slug}/appointments")).status_code == 200
    assert "Ada Manager created the workshop Kisumu Workshop" in " ".join(await org_trail())


async def test_a_new_branch_has_its_drafts_page(as_user):
    admin = await as_user("admin")
    slug = unique("br")
    answer = await admin.post(
        f"{ORG}/sites",
        {"slug": slug, "name": "Eldoret Branch", "kind": "branch", "timezone": "Africa/Nairobi"},
    )
    assert answer.status_code == 303
    assert (await admin.get(f"/s/{slug}/drafts")).status_code == 200
    listed = await admin.get(f"{ORG}/sites")
    assert slug in [r["data-slug"] for r in soup(listed).select("tr.org-site")]


async def test_rename_change_time_zone_archive_and_reopen_a_site(as_user):
    admin = await as_user("admin")
    slug = unique("st")
    await admin.post(
        f"{ORG}/sites", {"slug": slug, "name": "Temp Depot", "kind": "depot", "timezone": "UTC"}
    )
    sid = await site_id(slug)
    bad = await admin.post(f"{ORG}/sites/{sid}", {"name": "Temp Depot", "timezone": "Mars/Olympus"})
    assert bad.status_code == 422
    saved = await admin.post(
        f"{ORG}/sites/{sid}", {"name": "Thika Depot", "timezone": "Africa/Nairobi"}
    )
    assert saved.status_code == 303
    row = await Site.select(Site.name, Site.timezone).where(Site.id == sid).first()
    assert row == {"name": "Thika Depot", "timezone": "Africa/Nairobi"}
    assert (await admin.post(f"{ORG}/sites/{sid}/archive")).status_code == 303
    assert (await admin.get(f"/s/{slug}/")).status_code == 404
    assert slug not in (await admin.get("/")).text
    again = await admin.post(f"{ORG}/sites/{sid}/archive")
    assert again.status_code == 422
    assert (await admin.post(f"{ORG}/sites/{sid}/reopen")).status_code == 303
    assert (await admin.get(f"/s/{slug}/")).status_code == 200
    trail = " | ".join(await org_trail())
    assert "renamed Temp Depot to Thika Depot" in trail and "archived Thika Depot" in trail
    assert "reopened Thika Depot" in trail


# -- /me -------------------------------------------------------------------------------------


async def test_me_changes_name_and_password(as_user, client):
    admin = await as_user("admin")
    username, temporary = await new_person(admin)
    await first_sign_in(client, username, temporary)
    page = await client.get("/me")
    assert page.status_code == 200
    assert soup(page).select_one("#f-full_name")["value"] == f"Gina {username.title()}"
    assert "API tokens" in texts(page, "h2")  # made and revoked by the user (tests/test_api.py)

    renamed = await client.post("/me/name", {"full_name": "Gina  Wambui"})
    assert renamed.status_code == 303
    assert (
        await BaseUser.select(BaseUser.first_name, BaseUser.last_name)
        .where(BaseUser.username == username)
        .first()
    ) == {"first_name": "Gina", "last_name": "Wambui"}

    wrong = await client.post(
        "/me/password", {"current": "nope", "password": "new-pass-22", "repeat": "new-pass-22"}
    )
    assert wrong.status_code == 422
    assert texts(wrong, "#f-current-error") == ["That is not your current password."]
    ok = await client.post(
        "/me/password",
        {"current": "gina-pass-1", "password": "new-pass-22", "repeat": "new-pass-22"},
    )
    assert ok.status_code == 303
    assert (await client.get("/me")).status_code == 200  # this session carries on
    assert "Gina Wambui changed their password" in await org_trail()


async def test_sign_out_of_every_other_session(as_user):
    first = await as_user("bob")
    second = await as_user("bob")
    ended = await first.post("/me/sessions/end")
    assert ended.status_code == 303
    assert (await first.get("/me")).status_code == 200
    gone = await second.get("/me")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")


async def test_me_without_a_session_goes_to_sign_in(client):
    answer = await client.get("/me")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/me"
    assert (await client.post("/me/name", {"full_name": "X"})).status_code == 401


async def test_a_person_needs_a_site(as_user):
    admin = await as_user("admin")
    answer = await admin.post(
        f"{ORG}/people",
        {"username": unique("n"), "full_name": "No Site", "role": "staff", "start_with": "link"},
    )
    assert answer.status_code == 422
    assert texts(answer, "#f-site-error") == ["Choose one of your sites."]
