"""Hostile values in every field of every board form (plain and htmx): never a 500, a
refusal writes nothing, and what is accepted is shown as text on every screen."""

from __future__ import annotations

import pytest

from tables.boards import Board, Comment, Ticket
from tests.conftest import soup
from tests.test_boards import editor_fields, fresh, htmx, new_board, new_ticket, open_editor

HOSTILE = [
    "",
    "   ",
    "\x00",
    "before\x00after",
    "x" * 10_000,
    "<script>alert(1)</script>",
    str(2**31),
    str(2**63),
    "-1",
    "0",
    "1e999",
    "‮evil‬",
    "😀" * 300,
    "\r\n\t",
    "{{ 7 * 7 }}",
    "after:-5",
    "after:" + str(2**40),
    "2026-02-30",
    "2026-12-31T25:61",
]

CARD_FIELDS = ("title", "description", "column", "assignee", "priority", "due_date",
               "vehicle_registration", "customer", "service", "due_out_at")  # fmt: skip
MOVE_FIELDS = ("version", "column", "position", "to", "parts_reason", "parts_eta")


async def state_of(board: dict) -> tuple:
    """Everything a refused action must leave as it was."""
    tickets = (
        await Ticket.select(Ticket.id, Ticket.title, Ticket.column, Ticket.position, Ticket.version)
        .where(Ticket.board == board["id"])
        .order_by(Ticket.id)
    )
    comments = await Comment.count().where(Comment.ticket._.board == board["id"])
    row = await Board.select(Board.name, Board.version).where(Board.id == board["id"]).first()
    return tuple(tuple(t.values()) for t in tickets), comments, tuple(row.values())


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:24] for v in HOSTILE])
async def test_no_board_form_answers_a_hostile_value_with_a_500(as_user, value):
    alice = await as_user("alice")
    board = await new_board(alice, kind="workflow")
    card = await new_ticket(alice, board, "Steady card")
    ticket = f"{board['url']}/tickets/{card['id']}"
    valid_move = {"version": card["version"], "column": board["columns"]["estimates"],
                  "position": "top"}  # fmt: skip
    posts: list[tuple[str, dict]] = []
    for name in CARD_FIELDS:
        posts.append((f"{board['url']}/tickets", {"title": "New", name: value}))
    for name in MOVE_FIELDS:
        posts.append((f"{ticket}/move", {**valid_move, name: value}))
    posts += [
        (f"{ticket}/comments", {"body": value}),
        (f"{board['url']}/rename", {"name": value, "version": board["version"]}),
        (f"{board['url']}/rename", {"name": "Fine", "version": value}),
        (f"{ticket}/delete", {"version": value}),
        (f"{ticket}/moving", {"state": value}),
        (f"{ticket}/typing", {"state": value}),
    ]
    for url, form in posts:
        for headers in (None, htmx(alice)):
            before = await state_of(board)
            answer = await alice.post(url, form, headers=headers)
            assert answer.status_code < 500, (url, form.keys(), answer.status_code)
            if answer.status_code >= 400:
                assert await state_of(board) == before, (url, list(form))
            assert "<script>alert(1)</script>" not in answer.text

    # The editor: every field, from the version the editor shows.
    fields = editor_fields(await open_editor(alice, board, await fresh(card)))
    for name in CARD_FIELDS[:2] + CARD_FIELDS[3:]:
        before = await state_of(board)
        answer = await alice.post(f"{ticket}/edit", {**fields, "title": "Steady", name: value})
        assert answer.status_code < 500, (name, answer.status_code)
        if answer.status_code >= 400:
            assert await state_of(board) == before, name
        else:
            fields["version"] = str((await fresh(card))["version"])

    for page in (board["url"], ticket, f"{board['url']}/wall", "/s/nairobi/boards"):
        shown = await alice.get(page)
        assert shown.status_code == 200, page
        assert "<script>alert(1)</script>" not in shown.text
        if value == HOSTILE[5] and page == ticket:
            assert value in soup(shown).get_text()  # stored, and shown as text
