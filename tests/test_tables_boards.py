"""Board rules on the tables alone: server-assigned positions that stay dense under
concurrent moves, moves that carry what the mover saw, versioned edits, numbering, input
checks and isolation between sites — on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from piccolo.apps.user.tables import BaseUser

from tables.activity import Activity
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, write_tx
from tables.boards import (
    WAITING_PARTS,
    Board,
    BoardColumn,
    ColumnView,
    MoveResult,
    Ticket,
    add_comment,
    age_state,
    archive_board,
    board_view,
    boards_of,
    comments_of,
    create_board,
    create_ticket,
    delete_ticket,
    move_ticket,
    place,
    rename_board,
    tickets_by_id,
    update_ticket,
)
from tables.people import Site, assignable_people
from tests.conftest import count_queries
from tests.factories import site_id

# -- factories ------------------------------------------------------------------------------


async def actor(username: str) -> Actor:
    user = await BaseUser.select().where(BaseUser.username == username).first()
    return Actor(user["id"], f"{user['first_name']} {user['last_name']}")


async def make_board(slug: str = "nairobi", kind: str = "tickets") -> dict:
    """A board of the test's own at a site, made by the site's first demo user."""
    who = await actor("alice" if slug == "nairobi" else "frank")
    async with write_tx():
        return await create_board(await site_id(slug), f"Board {uuid.uuid4().hex[:6]}", kind, who)


async def columns_of(board: dict) -> dict[str, int]:
    """The board's column ids by key."""
    rows = await BoardColumn.select(BoardColumn.key, BoardColumn.id).where(
        BoardColumn.board == board["id"]
    )
    return {row["key"]: row["id"] for row in rows}


async def make_tickets(board: dict, count: int, column: str | None = None) -> list[dict]:
    """`count` cards at the bottom of a column (the first when None), in one transaction."""
    column_id = (await columns_of(board))[column] if column else None
    who = await actor("alice" if board["site"] == await site_id("nairobi") else "frank")
    async with write_tx():
        return [
            await create_ticket(board["site"], board["id"], column_id, {"title": f"Card {i}"}, who)
            for i in range(count)
        ]


async def order_of(column_id: int) -> list[tuple[int, int]]:
    """(ticket id, position) of a column's cards as the database holds them."""
    rows = await (
        Ticket.select(Ticket.id, Ticket.position)
        .where(Ticket.column == column_id)
        .order_by(Ticket.position)
        .order_by(Ticket.id)
    )
    return [(row["id"], row["position"]) for row in rows]


async def ticket(ticket_id: int) -> dict:
    return await Ticket.select().where(Ticket.id == ticket_id).first()


async def move(board: dict, ticket_id: int, version: int, to: int, after: int | None, who, **kw):
    async with write_tx():
        return await move_ticket(board["site"], ticket_id, version, to, after, who, **kw)


# -- positions under concurrency ----------------------------------------------------------


async def test_twenty_concurrent_moves_by_four_people_end_in_one_dense_order():
    board = await make_board()
    todo = (await columns_of(board))["todo"]
    cards = await make_tickets(board, 12)
    ids = [c["id"] for c in cards]
    people = [await actor(name) for name in ("alice", "bob", "charlie", "admin")]
    shuffle = random.Random(8)
    # Cards 0..7 are moved twice from the version everyone saw: of each pair, one loses
    # (unless the first was dropped where the card already was, which changes nothing).
    moves = [(ids[i % 12], shuffle.choice([None, *ids])) for i in range(20)]

    async def one(i: int, ticket_id: int, after: int | None) -> MoveResult | StaleVersion:
        try:
            return await move(board, ticket_id, 1, todo, after, people[i % 4])
        except StaleVersion as stale:
            return stale

    outcomes = await asyncio.gather(*(one(i, t, a) for i, (t, a) in enumerate(moves)))

    done = [o for o in outcomes if isinstance(o, MoveResult)]
    refused = [o for o in outcomes if isinstance(o, StaleVersion)]
    assert len(done) + len(refused) == 20
    changing = [r.ticket_id for r in done if r.changed]
    assert len(changing) == len(set(changing))  # no card moved twice from one version
    assert all(s.current["version"] == 2 and s.current["id"] in changing for s in refused)
    assert {r.ticket_id for r in done} == set(ids)
    final = await order_of(todo)
    assert [p for _, p in final] == list(range(12))  # dense, no duplicates
    assert sorted(i for i, _ in final) == sorted(ids)  # nothing lost
    # The moves were applied one after another, in revision order; replaying each one's
    # redraw (only the cards it says changed) over the previous screen gives the database.
    done.sort(key=lambda r: r.revision)
    first = done[0].revision
    assert [r.revision for r in done] == list(range(first, first + len(done)))
    screen = list(ids)
    for result in done:
        positions = {t: i for i, t in enumerate(screen)}
        positions.update({t: result.order[todo].index(t) for t in result.changed})
        screen = sorted(screen, key=positions.__getitem__)
        assert screen == result.order[todo]
    assert screen == [i for i, _ in final]


async def test_ten_concurrent_creates_get_unique_consecutive_numbers():
    board = await make_board()
    people = [await actor(name) for name in ("alice", "bob", "charlie")]

    async def create(i: int) -> dict:
        async with write_tx():
            return await create_ticket(
                board["site"], board["id"], None, {"title": f"Job {i}"}, people[i % 3]
            )

    made = await asyncio.gather(*(create(i) for i in range(10)))
    assert sorted(t["number"] for t in made) == list(range(1, 11))
    todo = (await columns_of(board))["todo"]
    assert [p for _, p in await order_of(todo)] == list(range(10))
    assert (await Board.select(Board.next_number).where(Board.id == board["id"]).first()) == {
        "next_number": 11
    }


async def test_moving_between_columns_renumbers_both_and_bumps_the_version():
    board = await make_board()
    cols = await columns_of(board)
    a, b, c = await make_tickets(board, 3)
    (d,) = await make_tickets(board, 1, "review")
    result = await move(board, b["id"], 1, cols["review"], d["id"], await actor("bob"))
    assert result.order == {cols["todo"]: [a["id"], c["id"]], cols["review"]: [d["id"], b["id"]]}
    assert result.changed == [b["id"], c["id"]]  # a and d stayed where they were
    assert [i for i, _ in await order_of(cols["todo"])] == [a["id"], c["id"]]
    assert [p for _, p in await order_of(cols["review"])] == [0, 1]
    moved = await ticket(b["id"])
    assert (moved["version"], moved["updated_by_name"]) == (2, "Bob Wilson")
    assert moved["entered_column_at"] > b["entered_column_at"]
    line = (await Activity.recent(board["site"], 1))[0]
    assert line["summary"] == f"moved #{b['number']} Card 1 to Review"


async def test_a_move_from_a_stale_version_is_refused_with_the_card_as_it_is_now():
    board = await make_board()
    cols = await columns_of(board)
    a, b = await make_tickets(board, 2)
    await move(board, a["id"], 1, cols["in_progress"], None, await actor("bob"))
    with pytest.raises(StaleVersion) as refused:
        await move(board, a["id"], 1, cols["review"], None, await actor("alice"))
    assert refused.value.current["column"] == cols["in_progress"]
    assert refused.value.changes == {"column": ("Review", "In progress")}
    assert str(refused.value) == f"Bob Wilson moved or changed #{a['number']} just before you did."
    # An edit makes a move stale too: the mover saw the card before it.
    async with write_tx():
        await update_ticket(board["site"], b["id"], 1, {"title": "Renamed"}, await actor("bob"))
    with pytest.raises(StaleVersion):
        await move(board, b["id"], 1, cols["done"], None, await actor("alice"))
    assert (await ticket(b["id"]))["column"] == cols["todo"]


async def test_a_move_after_a_neighbour_that_left_the_column_goes_to_the_top():
    board = await make_board()
    cols = await columns_of(board)
    a, b, c = await make_tickets(board, 3)
    await move(board, b["id"], 1, cols["done"], None, await actor("bob"))
    # Alice still saw b in To do and drops c after it.
    result = await move(board, c["id"], 1, cols["todo"], b["id"], await actor("alice"))
    assert not result.as_asked
    assert result.order[cols["todo"]] == [c["id"], a["id"]]
    assert await order_of(cols["todo"]) == [(c["id"], 0), (a["id"], 1)]


async def test_a_card_dropped_where_it_was_changes_nothing():
    board = await make_board()
    todo = (await columns_of(board))["todo"]
    a, b = await make_tickets(board, 2)
    lines = await Activity.count()
    for after in (a["id"], b["id"]):  # after its neighbour above, or "after itself"
        result = await move(board, b["id"], 1, todo, after, await actor("bob"))
        assert (result.changed, result.order) == ([], {todo: [a["id"], b["id"]]})
    assert await ticket(b["id"]) == b  # same version: nobody's editor goes stale
    assert await Activity.count() == lines


def test_placing_is_deterministic():
    assert place([1, 2, 3], 3, None) == ([3, 1, 2], True)
    assert place([1, 2, 3], 1, 3) == ([2, 3, 1], True)
    assert place([1, 2], 9, 1) == ([1, 9, 2], True)  # arriving from another column
    assert place([1, 2], 9, 7) == ([9, 1, 2], False)  # the neighbour has gone


async def test_deleting_a_ticket_closes_the_gap_and_keeps_the_trail():
    board = await make_board()
    todo = (await columns_of(board))["todo"]
    a, b, c = await make_tickets(board, 3)
    async with write_tx():
        await add_comment(board["site"], b["id"], "Seen it", await actor("bob"))
        gone = await delete_ticket(board["site"], b["id"], 1, await actor("bob"))
    assert (gone.order, gone.changed) == ([a["id"], c["id"]], [c["id"]])
    assert await order_of(todo) == [(a["id"], 0), (c["id"], 1)]
    line = (await Activity.recent(board["site"], 1))[0]
    assert (line["actor_name"], line["summary"]) == ("Bob Wilson", f"deleted #{b['number']} Card 1")
    with pytest.raises(DomainError, match="no such ticket"):
        await comments_of(board["site"], b["id"])


async def test_a_stale_delete_is_refused():
    board = await make_board()
    (a,) = await make_tickets(board, 1)
    async with write_tx():
        await update_ticket(board["site"], a["id"], 1, {"priority": "high"}, await actor("bob"))
    with pytest.raises(StaleVersion):
        async with write_tx():
            await delete_ticket(board["site"], a["id"], 1, await actor("alice"))
    assert await ticket(a["id"]) is not None


# -- edits --------------------------------------------------------------------------------


async def test_two_saves_from_one_version_one_wins_the_other_reads_what_changed():
    board = await make_board()
    (card,) = await make_tickets(board, 1)
    bob = await actor("bob")
    forms = {
        "Alice Wanjiru": {"title": "Card 0", "assignee": str(bob.id), "priority": "high",
                          "due_date": "2026-12-31"},
        "Bob Wilson": {"title": "Card 0", "assignee": "", "priority": "low", "due_date": ""},
    }  # fmt: skip
    shown = {
        "Alice Wanjiru": {"assignee": "Bob Wilson", "priority": "High", "due_date": "2026-12-31"},
        "Bob Wilson": {"assignee": "nobody", "priority": "Low", "due_date": "none"},
    }

    async def save(who: Actor):
        try:
            async with write_tx():
                return await update_ticket(board["site"], card["id"], 1, forms[who.name], who)
        except StaleVersion as stale:
            return stale

    outcomes = await asyncio.gather(save(await actor("alice")), save(bob))
    (loser,) = [o for o in outcomes if isinstance(o, StaleVersion)]
    (saved,) = [o for o in outcomes if not isinstance(o, StaleVersion)]
    winner = saved["updated_by_name"]
    me = next(name for name in forms if name != winner)
    assert loser.changes == {f: (shown[me][f], shown[winner][f]) for f in shown[me]}
    assert str(loser) == f"{winner} saved a newer version while you were editing."
    assert (await ticket(card["id"]))["version"] == 2


async def test_the_last_hours_of_year_9999_west_of_greenwich_are_refused_not_a_500():
    """In UTC they would be in year 10000, which Python cannot hold: the field's message."""
    board = await make_board("workshop", "workflow")
    zone = (await Site.select(Site.timezone).where(Site.id == board["site"]).first())["timezone"]
    await Site.update({Site.timezone: "America/Chicago"}).where(Site.id == board["site"])
    try:
        with pytest.raises(InvalidInput) as refused:
            async with write_tx():
                await create_ticket(
                    board["site"],
                    board["id"],
                    None,
                    {"title": "Brake pads", "due_out_at": "9999-12-31T23:30"},
                    await actor("frank"),
                )
    finally:
        await Site.update({Site.timezone: zone}).where(Site.id == board["site"])
    assert list(refused.value.errors) == ["due_out_at"]


async def test_an_edit_changes_only_the_fields_sent_and_records_a_line():
    board = await make_board("workshop", "workflow")
    async with write_tx():
        job = await create_ticket(
            board["site"],
            board["id"],
            None,
            {"title": "Brake pads", "vehicle_registration": "kca  123x", "customer": "Jane"},
            await actor("frank"),
        )
        saved = await update_ticket(
            board["site"], job["id"], 1, {"due_out_at": "2026-12-24T17:30"}, await actor("admin")
        )
    assert (saved["vehicle_registration"], saved["customer"]) == ("KCA 123X", "Jane")
    assert saved["due_out_at"] == datetime(2026, 12, 24, 14, 30, tzinfo=UTC)  # Nairobi is +3
    line = (await Activity.recent(board["site"], 1))[0]
    assert line["summary"] == f"edited #{job['number']} Brake pads"


# -- input and isolation ------------------------------------------------------------------

BAD = [
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 5000}, "title"),
    ({"title": "Fix\x00printer"}, "title"),
    ({"title": "Ok", "description": "a\x00b"}, "description"),
    ({"title": "Ok", "description": "d" * 5001}, "description"),
    ({"title": "Ok", "due_date": "tomorrowish"}, "due_date"),
    ({"title": "Ok", "due_date": "2026-02-30"}, "due_date"),
    ({"title": "Ok", "priority": "extreme"}, "priority"),
    ({"title": "Ok", "assignee": "dana"}, "assignee"),
    ({"title": "Ok", "assignee": "99999999999"}, "assignee"),
]


@pytest.mark.parametrize(("values", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
async def test_bad_input_is_refused_at_its_field_and_nothing_is_written(values, field):
    board = await make_board()
    if values.get("assignee") == "dana":  # a member of another site
        values = {**values, "assignee": str((await actor("dana")).id)}
    lines = await Activity.count()
    with pytest.raises(InvalidInput) as refused:
        async with write_tx():
            await create_ticket(board["site"], board["id"], None, values, await actor("alice"))
    assert list(refused.value.errors) == [field]
    assert await Ticket.count().where(Ticket.board == board["id"]) == 0
    assert (await Board.select(Board.next_number).where(Board.id == board["id"]).first()) == {
        "next_number": 1
    }
    assert await Activity.count() == lines


async def test_an_unknown_column_is_refused_at_the_column_field():
    board, other = await make_board(), await make_board()
    foreign = (await columns_of(other))["todo"]
    with pytest.raises(InvalidInput) as refused:
        async with write_tx():
            await create_ticket(
                board["site"], board["id"], foreign, {"title": "x"}, await actor("alice")
            )
    assert list(refused.value.errors) == ["column"]
    (card,) = await make_tickets(board, 1)
    with pytest.raises(InvalidInput, match="one of this board's columns"):
        await move(board, card["id"], 1, foreign, None, await actor("alice"))
    assert (await ticket(card["id"]))["version"] == 1


async def test_another_sites_boards_and_tickets_are_no_such_thing():
    board = await make_board()
    (card,) = await make_tickets(board, 1)
    todo = (await columns_of(board))["todo"]
    nakuru, dana = await site_id("nakuru"), await actor("dana")
    no_board = pytest.raises(DomainError, match=r"^There is no such board\.$")
    no_ticket = pytest.raises(DomainError, match=r"^There is no such ticket\.$")
    async with write_tx():
        with no_board:
            await create_ticket(nakuru, board["id"], None, {"title": "Mine now"}, dana)
        with no_board:
            await rename_board(nakuru, board["id"], 1, "Mine now", dana)
        with no_board:
            await archive_board(nakuru, board["id"], dana)
        with no_board:
            await board_view(nakuru, board["id"])
        with no_ticket:
            await update_ticket(nakuru, card["id"], 1, {"title": "Mine now"}, dana)
        with no_ticket:
            await move_ticket(nakuru, card["id"], 1, todo, None, dana)
        with no_ticket:
            await delete_ticket(nakuru, card["id"], 1, dana)
        with no_ticket:
            await add_comment(nakuru, card["id"], "Hello", dana)
        with no_ticket:
            await comments_of(nakuru, card["id"])
        with no_board:
            await board_view(board["site"], 2**40)  # not even an integer the database has
    assert await tickets_by_id(nakuru, [card["id"]]) == {}
    assert board["id"] not in [b.id for b in await boards_of(nakuru)]
    assert await ticket(card["id"]) == card


# -- the workflow board -------------------------------------------------------------------


async def test_entering_waiting_parts_needs_a_reason_and_an_eta_in_the_future():
    board = await make_board("workshop", "workflow")
    cols = await columns_of(board)
    (job,) = await make_tickets(board, 1)
    frank = await actor("frank")
    waiting = cols[WAITING_PARTS]
    with pytest.raises(InvalidInput) as refused:
        await move(board, job["id"], 1, waiting, None, frank)
    assert list(refused.value.errors) == ["parts_reason", "parts_eta"]
    with pytest.raises(InvalidInput) as refused:
        await move(
            board,
            job["id"],
            1,
            waiting,
            None,
            frank,
            parts_reason="Pads",
            parts_eta="2020-01-01T10:00",
        )
    assert refused.value.errors == {"parts_eta": "The parts cannot be expected in the past."}
    with pytest.raises(InvalidInput) as refused:
        await move(board, job["id"], 1, waiting, None, frank, parts_reason="Pads", parts_eta="soon")
    assert list(refused.value.errors) == ["parts_eta"]
    assert (await ticket(job["id"]))["version"] == 1  # nothing written

    await move(
        board,
        job["id"],
        1,
        waiting,
        None,
        frank,
        parts_reason=" Brake  pads ",
        parts_eta="2099-01-02T09:00",
    )
    held = await ticket(job["id"])
    assert (held["parts_reason"], held["parts_eta"]) == (
        "Brake pads",
        datetime(2099, 1, 2, 6, 0, tzinfo=UTC),
    )
    line = (await Activity.recent(board["site"], 1))[0]
    assert line["summary"] == (
        f"moved #{job['number']} Card 0 to Waiting parts (Brake pads, expected 02 Jan 09:00)"
    )
    await move(board, job["id"], 2, cols["completed"], None, frank)
    assert ((await ticket(job["id"]))["parts_reason"], (await ticket(job["id"]))["parts_eta"]) == (
        "",
        None,
    )


async def test_a_job_made_in_waiting_parts_needs_its_reason_and_eta_too():
    board = await make_board("workshop", "workflow")
    waiting = (await columns_of(board))[WAITING_PARTS]
    with pytest.raises(InvalidInput) as refused:
        async with write_tx():
            await create_ticket(
                board["site"], board["id"], waiting, {"title": "Clutch"}, await actor("frank")
            )
    assert list(refused.value.errors) == ["parts_reason", "parts_eta"]


def test_age_state_follows_the_columns_thresholds():
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    ageing = {"amber_after_hours": 24, "red_after_hours": 72}
    assert age_state(at - timedelta(hours=23), ageing, at) == "fresh"
    assert age_state(at - timedelta(hours=24), ageing, at) == "amber"
    assert age_state(at - timedelta(hours=72), ageing, at) == "red"
    never = ColumnView(1, "done", "Done", 3, None, None, None)
    assert age_state(at - timedelta(days=400), never, at) == "fresh"


async def test_the_board_view_shows_wip_ageing_and_overdue():
    board = await make_board("workshop", "workflow")
    cols = await columns_of(board)
    jobs = await make_tickets(board, 5, "in_progress")
    done = (await make_tickets(board, 1, "completed"))[0]
    past = datetime.now(UTC) - timedelta(hours=1)
    await Ticket.update({Ticket.due_out_at: past}).where(
        Ticket.id.is_in([jobs[0]["id"], done["id"]])
    )
    await Ticket.update({Ticket.entered_column_at: past - timedelta(hours=30)}).where(
        Ticket.id == jobs[1]["id"]
    )
    async with write_tx():
        await add_comment(board["site"], jobs[2]["id"], "Customer called", await actor("frank"))
    view = await board_view(board["site"], board["id"])
    titles = ["Estimates", "In progress", "Waiting parts", "Completed"]
    assert [c.title for c in view.columns] == titles
    in_progress = view.column(cols["in_progress"])
    assert (in_progress.count, in_progress.wip_limit, in_progress.wip_state) == (5, 4, "over")
    assert [t.id for t in in_progress.tickets] == [j["id"] for j in jobs]
    assert [t.overdue for t in in_progress.tickets] == [True, False, False, False, False]
    assert [t.age for t in in_progress.tickets] == ["fresh", "amber", "fresh", "fresh", "fresh"]
    assert [t.comments for t in in_progress.tickets] == [0, 0, 1, 0, 0]
    assert view.column(cols["completed"]).tickets[0].overdue is False  # done is done


# -- boards, comments, people -------------------------------------------------------------


async def test_a_new_board_has_its_kinds_columns_and_can_be_renamed_once_per_version():
    board = await make_board()
    view = await board_view(board["site"], board["id"])
    assert [(c.key, c.title, c.wip_limit) for c in view.columns] == [
        ("todo", "To do", None),
        ("in_progress", "In progress", None),
        ("review", "Review", None),
        ("done", "Done", None),
    ]
    async with write_tx():
        await rename_board(board["site"], board["id"], 1, "  Ops  backlog ", await actor("bob"))
    with pytest.raises(StaleVersion) as stale:
        async with write_tx():
            await rename_board(board["site"], board["id"], 1, "Other", await actor("alice"))
    assert stale.value.changes == {"name": ("Other", "Ops backlog")}
    with pytest.raises(InvalidInput, match="at most 100"):
        await rename_board(board["site"], board["id"], 2, "n" * 101, await actor("alice"))
    with pytest.raises(InvalidInput) as bad_kind:
        await create_board(board["site"], "Kanban", "kanban", await actor("alice"))
    assert list(bad_kind.value.errors) == ["kind"]


async def test_an_archived_boards_cards_stay_put():
    board = await make_board()
    (card,) = await make_tickets(board, 1)
    async with write_tx():
        await archive_board(board["site"], board["id"], await actor("alice"))
    bob, todo = await actor("bob"), (await columns_of(board))["todo"]
    for late in (
        create_ticket(board["site"], board["id"], None, {"title": "Late"}, bob),
        update_ticket(board["site"], card["id"], 1, {"title": "Late"}, bob),
        move_ticket(board["site"], card["id"], 1, todo, None, bob),
        delete_ticket(board["site"], card["id"], 1, bob),
        add_comment(board["site"], card["id"], "Late", bob),
    ):
        with pytest.raises(DomainError, match="is archived: restore it first"):
            async with write_tx():
                await late
    listed = {b.id: b for b in await boards_of(board["site"])}
    assert (listed[board["id"]].archived, listed[board["id"]].tickets) == (True, 1)
    assert await ticket(card["id"]) == card
    async with write_tx():
        await archive_board(board["site"], board["id"], bob, archived=False)
        await update_ticket(board["site"], card["id"], 1, {"title": "Back"}, bob)


async def test_comments_are_checked_and_listed_oldest_first():
    board = await make_board()
    (card,) = await make_tickets(board, 1)
    bob, alice = await actor("bob"), await actor("alice")
    async with write_tx():
        await add_comment(board["site"], card["id"], "First\r\nline two", bob)
        await add_comment(board["site"], card["id"], "<b>Second</b>", alice)
    for body in ("", "x" * 2001, "nul\x00"):
        with pytest.raises(InvalidInput) as refused:
            await add_comment(board["site"], card["id"], body, bob)
        assert list(refused.value.errors) == ["body"]
    comments = await comments_of(board["site"], card["id"])
    assert [(c["author_name"], c["body"]) for c in comments] == [
        ("Bob Wilson", "First\nline two"),
        ("Alice Wanjiru", "<b>Second</b>"),  # kept as typed; templates escape it
    ]
    assert (await ticket(card["id"]))["version"] == 1  # a comment does not stale an editor


async def test_assignable_people_are_the_sites_members_by_name():
    people = await assignable_people(await site_id("nairobi"))
    assert [p["name"] for p in people] == [
        "Ada Manager",
        "Alice Wanjiru",
        "Bob Wilson",
        "Charlie Smith",
    ]


# -- reading in a fixed number of queries -------------------------------------------------


@pytest.mark.parametrize("cards", [5, 60])
async def test_the_board_page_reads_in_a_fixed_number_of_queries(cards):
    board = await make_board()
    made = await make_tickets(board, cards)
    async with write_tx():
        for card in made[::4]:
            await add_comment(board["site"], card["id"], "Noted", await actor("bob"))
    with count_queries() as seen:
        view = await board_view(board["site"], board["id"])
    assert len(seen) == 4
    assert len(view.tickets) == cards
    assert sum(t.comments for t in view.tickets) == len(made[::4])
    todo = (await columns_of(board))["todo"]
    with count_queries() as seen:
        narrow = await board_view(board["site"], board["id"], only=[todo])
    assert len(seen) == 4
    assert [c.id for c in narrow.columns] == [todo]
    assert [t.id for t in narrow.tickets] == [t.id for t in view.tickets]
    with count_queries() as seen:
        found = await tickets_by_id(board["site"], [c["id"] for c in made])
        await boards_of(board["site"])
    assert len(seen) == 2 + 2
    assert len(found) == cards


# -- the demo -----------------------------------------------------------------------------


async def test_the_demo_boards_show_every_state_of_the_seeds():
    nairobi, workshop = await site_id("nairobi"), await site_id("workshop")
    ops = next(b for b in await boards_of(nairobi) if b.name == "Ops tickets")
    view = await board_view(nairobi, ops.id)
    assert ops.tickets >= 55 and all(c.count for c in view.columns)
    assert sum(t.comments for t in view.tickets) >= 10
    assert {t.created_by_name for t in view.tickets} == {
        "Alice Wanjiru",
        "Bob Wilson",
        "Charlie Smith",
    }
    flow = next(b for b in await boards_of(workshop) if b.name == "Workflow")
    jobs = await board_view(workshop, flow.id)
    assert flow.tickets >= 28 and all(c.count for c in jobs.columns)
    assert any(c.over_limit for c in jobs.columns)
    assert any(t.overdue for t in jobs.tickets)
    assert {t.age for t in jobs.tickets} >= {"fresh", "amber", "red"}
    waiting = next(c for c in jobs.columns if c.key == WAITING_PARTS)
    assert all(t.parts_reason and t.parts_eta for t in waiting.tickets)
    assert all(t.vehicle_registration and t.customer and t.service for t in jobs.tickets)
