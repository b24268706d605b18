"""Boards over HTTP (slice 1: plain forms first, no drag and drop): create, move between
and within columns, stale moves, the htmx answer of a move, edits under the lock, delete,
comments, bad input, isolation, and the "waiting parts" step without JavaScript."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest

from routes.boards import BOARD, TICKET
from tables.activity import Activity
from tables.boards import Board, BoardColumn, Ticket
from tables.people import SiteRef
from tests.conftest import soup, texts
from tests.factories import site_id

BOARDS = "/s/nairobi/boards"


def htmx(client) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Request-Type": "partial", "X-CSRFToken": client.csrftoken}


async def new_board(client, kind: str = "tickets", slug: str = "nairobi") -> dict:
    """A board of the test's own, made through the page's form."""
    name = f"Board {uuid.uuid4().hex[:6]}"
    made = await client.post(f"/s/{slug}/boards", {"name": name, "kind": kind})
    assert made.status_code == 303, made.text
    board = await Board.select().where(Board.name == name).first()
    columns = await BoardColumn.select(BoardColumn.key, BoardColumn.id).where(
        BoardColumn.board == board["id"]
    )
    return {
        **board,
        "url": made.headers["location"],
        "columns": {c["key"]: c["id"] for c in columns},
    }


async def new_ticket(client, board: dict, title: str, column: str = "", **fields) -> dict:
    form = {"title": title, **fields}
    if column:
        form["column"] = board["columns"][column]
    made = await client.post(f"{board['url']}/tickets", form)
    assert made.status_code == 303, made.text
    ticket_id = int(made.headers["location"].rsplit("#ticket-", 1)[1])
    return await Ticket.select().where(Ticket.id == ticket_id).first()


async def order_of(column_id: int) -> list[int]:
    rows = await (
        Ticket.select(Ticket.id).where(Ticket.column == column_id).order_by(Ticket.position)
    )
    return [r["id"] for r in rows]


async def move(client, board, ticket, column: str, position: str, headers=None):
    form = {"column": board["columns"][column], "position": position, "version": ticket["version"]}
    url = f"{board['url']}/tickets/{ticket['id']}/move"
    if headers:
        return await client.http.post(url, data=form, headers=headers)
    return await client.post(url, form)


async def fresh(ticket: dict) -> dict:
    return await Ticket.select().where(Ticket.id == ticket["id"]).first()


# -- creating ---------------------------------------------------------------------------------


async def test_creating_a_board_and_a_ticket_redirects_with_a_message(as_user):
    alice = await as_user("alice")
    name = f"Board {uuid.uuid4().hex[:6]}"
    made = await alice.post(BOARDS, {"name": name, "kind": "tickets"})
    assert made.status_code == 303
    page = await alice.get(made.headers["location"])
    assert texts(page, ".messages .alert") == [f"Created the board {name}."]
    assert texts(page, ".column__title") == ["To do 0", "In progress 0", "Review 0", "Done 0"]
    assert name in texts(await alice.get(BOARDS), ".board-tile__name")

    created = await alice.post(
        f"{made.headers['location']}/tickets",
        {"title": "Fix the printer", "priority": "high", "due_date": "2030-01-31"},
    )
    assert created.status_code == 303
    page = await alice.get(created.headers["location"])
    assert texts(page, ".messages .alert") == ["Created #1 Fix the printer."]
    card = soup(page).select_one(".column .ticket")
    assert card.select_one(".ticket__title").get_text(" ", strip=True) == "#1 Fix the printer"
    assert card.select_one(".ticket__priority").get_text() == "High"
    assert "Due 2030-01-31" in card.get_text()


async def test_the_demo_boards_show_their_columns_counts_and_wip(as_user):
    alice, frank = await as_user("alice"), await as_user("frank")
    ops = await Board.select().where(Board.name == "Ops tickets").first()
    page = await alice.get(f"{BOARDS}/{ops['id']}")
    assert page.status_code == 200
    counts = [int(c) for c in texts(page, ".column__count")]
    assert (
        sum(counts)
        == len(soup(page).select(".ticket"))
        == await Ticket.count().where(Ticket.board == ops["id"])
    )
    workshop = await site_id("workshop")  # other tests make workshops of their own
    workflow = await (
        Board.select().where((Board.site == workshop) & (Board.name == "Workflow")).first()
    )
    page = await frank.get(f"/s/workshop/boards/{workflow['id']}")
    assert texts(page, ".column__title")[2].startswith("Waiting parts")
    assert soup(page).select(".column--wip-over .column__wip")  # one column is over
    assert soup(page).select(".ticket__age--red") and soup(page).select(".ticket__parts")


# -- moving ---------------------------------------------------------------------------------


async def test_a_plain_form_moves_a_card_to_another_column_and_within_one(as_user):
    alice = await as_user("alice")
    board = await new_board(alice)
    one, two, three = [await new_ticket(alice, board, f"Card {i}") for i in (1, 2, 3)]
    todo, doing = board["columns"]["todo"], board["columns"]["in_progress"]

    moved = await move(alice, board, one, "in_progress", "bottom")
    assert moved.status_code == 303
    assert moved.headers["location"].endswith(f"#ticket-{one['id']}")
    page = await alice.get(moved.headers["location"])
    assert texts(page, ".messages .alert") == ["Moved #1 to In progress."]
    assert await order_of(todo) == [two["id"], three["id"]]
    assert await order_of(doing) == [one["id"]]
    assert texts(page, f"#column-{doing} .ticket__number") == ["#1"]

    assert (await move(alice, board, three, "todo", "top")).status_code == 303
    assert await order_of(todo) == [three["id"], two["id"]]
    three = await fresh(three)
    assert (await move(alice, board, three, "todo", f"after:{two['id']}")).status_code == 303
    assert await order_of(todo) == [two["id"], three["id"]]
    assert (await move(alice, board, two, "in_progress", "top")).status_code == 303
    assert await order_of(doing) == [two["id"], one["id"]]


async def test_every_card_links_to_a_move_page_that_works_without_javascript(as_user):
    alice = await as_user("alice")
    board = await new_board(alice)
    one, two = [await new_ticket(alice, board, f"Card {i}") for i in (1, 2)]
    todo, done = board["columns"]["todo"], board["columns"]["done"]
    page = await alice.get(board["url"])
    link = soup(page).select_one(f"#ticket-{two['id']} a[href$='/move']")
    assert link.get_text(" ", strip=True).startswith("Move to…")
    # One list of every place on the board (the card's own page: the board page does not
    # carry a list per card, which would grow with the square of a column).
    move_page = await alice.get(link["href"])
    form = soup(move_page).select_one("form.move-page")
    assert form["method"] == "post" and form["action"].endswith(f"/{two['id']}/move")
    assert form.select_one("input[name=version]")["value"] == str(two["version"])
    assert form.select_one("input[name=csrftoken]")["value"]
    places = [o["value"] for o in form.select("select[name=to] option")]
    assert places[:3] == [f"{todo}:top", f"{todo}:after:{one['id']}", f"{todo}:bottom"]
    assert f"{done}:top" in places and len(places) == 3 + 3
    chosen = form.select_one("option[selected]")["value"]
    assert chosen == f"{todo}:after:{one['id']}"  # where it is now
    moved = await alice.post(form["action"], {"version": two["version"], "to": f"{done}:top"})
    assert moved.status_code == 303
    assert await order_of(done) == [two["id"]]
    bad = await alice.post(form["action"], {"version": two["version"] + 1, "to": "x:top"})
    assert bad.status_code == 422 and await order_of(done) == [two["id"]]


async def test_a_stale_move_is_refused_with_409_and_the_board_as_it_is(as_user):
    alice, bob = await as_user("alice"), await as_user("bob")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Shared card")
    assert (await move(bob, board, card, "review", "top")).status_code == 303  # bob first
    refused = await move(alice, board, card, "done", "top")  # alice's old version
    assert refused.status_code == 409
    message = texts(refused, ".board__message")[0]
    assert "Bob Wilson moved or changed #1 just before you did." in message
    review = board["columns"]["review"]
    assert texts(refused, f"#column-{review} .ticket__number") == ["#1"]  # where it is now
    assert (await fresh(card))["column"] == review


async def test_the_htmx_answer_of_a_move_is_the_card_and_the_orders_it_changed(as_user):
    alice = await as_user("alice")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Card")
    await new_ticket(alice, board, "Other", column="done")
    todo, doing = board["columns"]["todo"], board["columns"]["in_progress"]
    answer = await move(alice, board, card, "in_progress", "top", headers=htmx(alice))
    assert answer.status_code == 200
    targets = [p["hx-target"] for p in soup(answer).select("hx-partial")]
    # The moved card, then the heads (counts) and orders of the two columns: not the
    # columns' cards, however many there are.
    assert targets == [
        f"#ticket-{card['id']}",
        f"#column-head-{todo}",
        f"#column-head-{doing}",
        "#toasts",
    ]
    assert soup(answer).select_one(f"#order-{doing}")["data-order"] == str(card["id"])
    assert soup(answer).select_one(f"#order-{todo}")["data-order"] == ""
    assert texts(answer, f"#column-head-{doing} .column__count") == ["1"]
    assert f"column-{board['columns']['done']}" not in answer.text
    assert alice.csrftoken not in answer.text  # broadcast: nothing per user

    stale = await move(alice, board, card, "done", "top", headers=htmx(alice))
    assert stale.status_code == 409
    targets = [p["hx-target"] for p in soup(stale).select("hx-partial")]
    # The whole board: the mover's screen may show the card in a third, stale place.
    assert targets == ["#columns", "#toasts"]
    assert soup(stale).select_one(f"#column-{doing} #ticket-{card['id']}") is not None
    assert "just before you did" in soup(stale).select_one(".toast--error").get_text()


async def test_moving_into_waiting_parts_asks_for_a_reason_and_eta_without_javascript(as_user):
    frank = await as_user("frank")
    board = await new_board(frank, kind="workflow", slug="workshop")
    job = await new_ticket(frank, board, "Brake pads", vehicle_registration="kdd 111x")
    asked = await move(frank, board, job, "waiting_parts", "top")
    assert asked.status_code == 303
    step = await frank.get(asked.headers["location"])
    assert step.status_code == 200
    form = soup(step).select_one("main form")
    assert urlparse(form["action"]).path.endswith(f"/tickets/{job['id']}/move")
    fields = {i["name"]: i.get("value", "") for i in form.select("input")}
    assert fields["version"] == str(job["version"])
    assert {"parts_reason", "parts_eta", "column", "position"} <= set(fields)
    assert (await fresh(job))["column"] == board["columns"]["estimates"]  # not moved yet

    fields.pop("csrftoken")
    bad = await frank.post(form["action"], {**fields, "parts_reason": "Pads", "parts_eta": "soon"})
    assert bad.status_code == 422
    assert texts(bad, "#f-parts_eta-error")
    eta = (datetime.now(ZoneInfo("Africa/Nairobi")) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    done = await frank.post(form["action"], {**fields, "parts_reason": "Pads", "parts_eta": eta})
    assert done.status_code == 303
    job = await fresh(job)
    assert job["column"] == board["columns"]["waiting_parts"]
    assert job["parts_reason"] == "Pads"


# -- editing under the lock -----------------------------------------------------------------


def editor_fields(response) -> dict[str, str]:
    form = soup(response).select_one("#editor form.editor__form")
    return {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}


async def open_editor(client, board, ticket):
    opened = await client.post(f"{board['url']}/tickets/{ticket['id']}/edit/open")
    assert opened.status_code == 303
    return await client.get(opened.headers["location"])


async def test_the_editor_shows_is_editing_on_the_card_and_refuses_others_with_423(as_user):
    alice, bob = await as_user("alice"), await as_user("bob")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Locked card")
    await open_editor(alice, board, card)
    page = await bob.get(board["url"])
    assert texts(page, f"#ticket-{card['id']} .ticket__lock") == ["Alice Wanjiru is editing #1"]
    bobs = editor_fields(await open_editor(bob, board, card))
    refused = await bob.post(
        f"{board['url']}/tickets/{card['id']}/edit", {**bobs, "title": "Bob's title"}
    )
    assert refused.status_code == 423
    assert "Alice Wanjiru" in texts(refused, ".lock-state")[0]
    assert (await fresh(card))["title"] == "Locked card"


async def test_a_stale_edit_gets_409_with_what_changed(as_user, app):
    alice, bob = await as_user("alice"), await as_user("bob")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Original")
    alices = editor_fields(await open_editor(alice, board, card))
    site = await SiteRef.load(board["site"])
    key = TICKET.key(site, {"board": board["id"], "ticket": card["id"]})
    await app.state.services.locks.break_lock(key)
    bobs = editor_fields(await open_editor(bob, board, card))
    saved = await bob.post(
        f"{board['url']}/tickets/{card['id']}/edit", {**bobs, "title": "Bob's", "priority": "high"}
    )
    assert saved.status_code == 303
    stale = await alice.post(
        f"{board['url']}/tickets/{card['id']}/edit",
        {**alices, "title": "Alice's", "priority": "normal"},
    )
    assert stale.status_code == 409
    assert texts(stale, ".conflict li") == [
        "Title is now Bob's (you chose Alice's)",
        "Priority is now High (you chose Normal)",
    ]
    assert soup(stale).select_one("#f-title")["value"] == "Alice's"  # hers kept
    assert (await fresh(card))["title"] == "Bob's"


# -- delete, comments -----------------------------------------------------------------------


async def test_delete_asks_first_then_removes_the_card_and_keeps_the_trail(as_user):
    alice = await as_user("alice")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Doomed")
    confirm = await alice.get(f"{board['url']}/tickets/{card['id']}/delete")
    assert texts(confirm, "h1") == ["Delete #1 Doomed?"]
    assert (await fresh(card)) is not None
    deleted = await alice.post(
        f"{board['url']}/tickets/{card['id']}/delete", {"version": card["version"]}
    )
    assert deleted.status_code == 303
    page = await alice.get(deleted.headers["location"])
    assert texts(page, ".messages .alert") == ["Deleted #1 Doomed."]
    assert not soup(page).select(".ticket")
    assert await fresh(card) is None
    assert await Activity.exists().where(Activity.summary == "deleted #1 Doomed")


async def test_a_comment_shows_on_the_ticket_page_as_text(as_user):
    alice, bob = await as_user("alice"), await as_user("bob")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Discuss")
    url = f"{board['url']}/tickets/{card['id']}"
    posted = await bob.post(f"{url}/comments", {"body": "<b>Done</b> by noon"})
    assert posted.status_code == 303
    assert posted.headers["location"] == f"{url}#comments"
    page = await alice.get(url)
    assert texts(page, ".comment__body") == ["<b>Done</b> by noon"]
    assert "<b>Done</b>" not in page.text
    assert texts(page, ".comment__who strong") == ["Bob Wilson"]
    assert texts(page, f"#ticket-{card['id']} .ticket__comments") == ["1 comment"]
    empty = await bob.post(f"{url}/comments", {"body": "   "})
    assert empty.status_code == 422
    assert texts(empty, "#f-body-error") == ["Write something first."]


# -- bad input, isolation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"title": ""}, "title", "Give the ticket a title."),
        ({"title": "x" * 5000}, "title", "at most 200 characters"),
        ({"title": "Ok", "due_date": "tomorrowish"}, "due_date", "like 2026-12-31"),
        ({"title": "Ok", "priority": "whenever"}, "priority", "Choose a priority"),
    ],
)
async def test_bad_ticket_input_is_422_at_the_field_and_writes_nothing(
    as_user, form, field, message
):
    alice = await as_user("alice")
    board = await new_board(alice)
    before = await Ticket.count()
    response = await alice.post(f"{board['url']}/tickets", form)
    assert response.status_code == 422
    assert message in texts(response, f"#f-{field}-error")[0]
    assert soup(response).select_one("details.new-ticket").has_attr("open")
    assert await Ticket.count() == before


async def test_markup_in_a_title_is_shown_as_text_everywhere(as_user):
    alice = await as_user("alice")
    board = await new_board(alice)
    card = await new_ticket(alice, board, '<img src=x onerror="alert(1)">')
    for url in (board["url"], f"{board['url']}/tickets/{card['id']}"):
        page = await alice.get(url)
        assert "<img src=x" not in page.text and "&lt;img src=x" in page.text
    answer = await move(alice, board, card, "done", "top", headers=htmx(alice))
    assert "<img src=x" not in answer.text


async def test_a_bad_move_is_refused_without_moving(as_user):
    alice = await as_user("alice")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Card")
    other = await new_board(alice)
    for form in (
        {"column": other["columns"]["done"], "position": "top", "version": card["version"]},
        {"column": board["columns"]["done"], "position": "-1", "version": card["version"]},
        {"column": board["columns"]["done"], "position": "top", "version": "x"},
    ):
        refused = await alice.post(f"{board['url']}/tickets/{card['id']}/move", form)
        assert refused.status_code == 422
    assert (await fresh(card))["column"] == board["columns"]["todo"]


async def test_another_sites_ticket_is_refused(as_user):
    alice, frank = await as_user("alice"), await as_user("frank")
    nairobi_board = await new_board(alice)
    workshop_board = await new_board(frank, kind="workflow", slug="workshop")
    job = await new_ticket(frank, workshop_board, "Frank's job")
    for method, path in (
        ("GET", f"{nairobi_board['url']}/tickets/{job['id']}"),
        ("POST", f"{nairobi_board['url']}/tickets/{job['id']}/move"),
        ("POST", f"{nairobi_board['url']}/tickets/{job['id']}/delete"),
        ("POST", f"{nairobi_board['url']}/tickets/{job['id']}/edit/open"),
        ("GET", f"{BOARDS}/{workshop_board['id']}"),
    ):
        form = {"column": nairobi_board["columns"]["done"], "position": "top", "version": 1}
        response = await (alice.get(path) if method == "GET" else alice.post(path, form))
        assert response.status_code == 404, path
    assert (await fresh(job))["column"] == workshop_board["columns"]["estimates"]


@pytest.mark.parametrize("username", ["dana", "oscar"])
async def test_outsiders_get_404_on_every_board_page_action_and_stream(as_user, username):
    ops = await Board.select().where(Board.name == "Ops tickets").first()
    card = await Ticket.select().where(Ticket.board == ops["id"]).first()
    board, ticket = f"{BOARDS}/{ops['id']}", f"{BOARDS}/{ops['id']}/tickets/{card['id']}"
    user = await as_user(username)
    for method, path in [
        ("GET", BOARDS),
        ("POST", BOARDS),
        ("GET", f"{BOARDS}/live"),
        ("GET", board),
        ("GET", f"{board}/live"),
        ("GET", f"{board}/live/status"),
        ("GET", f"{board}/live/poll"),
        ("POST", f"{board}/live/beat"),
        ("POST", f"{board}/tickets"),
        ("GET", ticket),
        ("POST", f"{ticket}/move"),
        ("GET", f"{ticket}/waiting-parts"),
        ("GET", f"{ticket}/delete"),
        ("POST", f"{ticket}/delete"),
        ("POST", f"{ticket}/comments"),
        ("GET", f"{ticket}/edit"),
        ("POST", f"{ticket}/edit/open"),
        ("POST", f"{ticket}/edit"),
        ("POST", f"{ticket}/moving"),
        ("POST", f"{ticket}/typing"),
        ("GET", f"{board}/wall"),
        ("POST", f"{board}/rename"),
        ("POST", f"{board}/archive"),
    ]:
        response = await (user.get(path) if method == "GET" else user.post(path, {"title": "x"}))
        assert response.status_code == 404, (method, path)
    assert (await fresh(card))["version"] == card["version"]


async def test_members_of_another_site_see_only_their_boards(as_user):
    dana = await as_user("dana")
    page = await dana.get("/s/nakuru/boards")
    assert page.status_code == 200
    assert "Ops tickets" not in texts(page, ".board-tile__name")
    assert await site_id("nakuru")


# -- what is broadcast ------------------------------------------------------------------------


async def render_change(app, board: dict, change) -> str:
    from routes.live import Render

    site = await SiteRef.load(board["site"])
    locks = app.state.services.locks
    return await BOARD.render(Render(site, {"board": board["id"]}, change, locks))


async def test_an_edit_or_a_lock_redraws_just_that_card_with_its_badge(as_user, app):
    from routes.live import Change

    alice = await as_user("alice")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Card")
    await new_ticket(alice, board, "Neighbour")
    await open_editor(alice, board, card)
    html = await render_change(app, board, Change(items={"ticket": {card["id"]}}))
    parts = soup_of(html).select("hx-partial")
    assert [p["hx-target"] for p in parts] == [
        f"#ticket-{card['id']}",  # the card, on the board and on its page
        f"#ticket-title-{card['id']}",  # its page's heading and description
        f"#ticket-about-{card['id']}",
    ]
    assert parts[0].select_one(".ticket__lock").get_text() == "Alice Wanjiru is editing #1"
    assert alice.csrftoken not in html  # nothing per viewer


async def test_an_edit_refreshes_the_heading_and_description_of_the_ticket_page(as_user, app):
    """Bob's save reaches alice's open ticket page whole: the card beside it, and the
    heading and description above it (they once kept the old title next to the new card)."""
    from tests.conftest import events_of

    alice, bob = await as_user("alice"), await as_user("bob")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Printer jams")
    page = await alice.get(f"{board['url']}/tickets/{card['id']}")
    assert texts(page, f"#ticket-title-{card['id']}") == ["#1 Printer jams"]
    assert texts(page, f"#ticket-about-{card['id']} .empty") == ["No description."]
    fields = editor_fields(await open_editor(bob, board, card))
    site = await SiteRef.load(board["site"])

    async def save():
        saved = await bob.post(
            f"{board['url']}/tickets/{card['id']}/edit",
            {**fields, "title": "Label printer jams", "description": "Since the <b>update</b>"},
        )
        assert saved.status_code == 303

    events = await events_of(app, BOARD.topic(site, {"board": board["id"]}), save)
    parts = {p["hx-target"]: p for e in events for p in soup_of(e.html).select("hx-partial")}
    heading = parts[f"#ticket-title-{card['id']}"]
    assert heading.get_text(" ", strip=True) == "#1 Label printer jams"
    about = parts[f"#ticket-about-{card['id']}"]
    assert about.select_one(".ticket__description").get_text() == "Since the <b>update</b>"
    assert about.select_one("b") is None  # text, never markup
    assert "last changed by Bob Wilson" in about.get_text()


async def test_a_comment_is_upserted_on_the_ticket_page_and_a_delete_removes_the_card(as_user, app):
    from routes.live import Change

    alice = await as_user("alice")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Card")
    await alice.post(f"{board['url']}/tickets/{card['id']}/comments", {"body": "On it"})
    comment = (await alice.get(f"{board['url']}/tickets/{card['id']}")).text
    comment_id = int(soup_of(comment).select_one(".comment")["id"].split("-")[1])
    html = await render_change(
        app, board, Change(items={"ticket": {card["id"]}}, added={"comment": {comment_id}})
    )
    assert f'hx-target="#comments-{card["id"]}"' in html and "On it" in html
    assert f'hx-target="#ticket-{card["id"]}"' in html

    gone = Change(gone={"ticket": {card["id"]}}, whole={f"column-{board['columns']['todo']}"})
    html = await render_change(app, board, gone)
    parts = soup_of(html).select("hx-partial")
    assert [p["hx-target"] for p in parts] == [
        f"#column-{board['columns']['todo']}",
        f"#ticket-{card['id']}",
        f"#ticket-about-{card['id']}",  # its open page says so, and takes the comment form
        f"#ticket-reply-{card['id']}",
    ]
    assert parts[2].get_text(" ", strip=True) == "This ticket was deleted. Back to the board"
    assert parts[2].select_one("a")["href"] == board["url"]
    assert parts[3]["hx-swap"] == "delete"
    page = await alice.get(f"{board['url']}/tickets/{card['id']}")
    assert soup(page).select_one(f"#ticket-reply-{card['id']} #comment-form") is not None


async def test_an_archived_board_is_shown_read_only(as_user):
    alice = await as_user("alice")
    board = await new_board(alice)
    card = await new_ticket(alice, board, "Card")
    archived = await alice.post(f"{board['url']}/archive")
    assert archived.status_code == 303
    page = await alice.get(board["url"])
    assert page.status_code == 200
    assert texts(page, ".board__archived")
    assert not soup(page).select("a[href$='/move'], #new-ticket-form, .ticket__handle")
    refused = await move(alice, board, card, "done", "top")
    assert refused.status_code == 422
    assert "archived" in texts(refused, ".board__message")[0]
    assert (await fresh(card))["column"] == board["columns"]["todo"]
    assert "· archived" in " ".join(texts(await alice.get(BOARDS), ".board-tile span"))


def soup_of(html: str):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "html.parser")
