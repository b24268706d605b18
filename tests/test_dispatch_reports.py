"""Dispatch reports (SPEC §5.5; seed 004): counts by status and average time to complete
by asset type and by priority over a period of days in the site's time zone, a chart
that needs no script, and the CSV — checked against dispatches with known times and
against the demo; hostile periods never give a 500."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from piccolo.apps.user.tables import BaseUser

from routes.reports import read_period, span
from tables.dispatches import Dispatch, DispatchStatus, create_dispatch, transition
from tests.conftest import soup, texts
from tests.factories import actor, site_id
from tests.test_assets_pages import (  # noqa: F401 - the fixture cleans up after each test
    demo_org,
    own_asset,
    own_site,
    own_type,
    remove_what_tests_made,
)

NAIROBI = ZoneInfo("Africa/Nairobi")


def local(day: str, hour: int, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=NAIROBI)


async def dispatched(
    site: int, asset: dict, priority: str, created: datetime, status: str, seconds: int = 0
) -> int:
    """A dispatch moved through the graph to `status`, then dated as if it had been
    created at `created` (and completed `seconds` later)."""
    ada = await actor("admin")
    admin = await BaseUser.select(BaseUser.id).where(BaseUser.username == "admin").first()
    made = await create_dispatch(
        site,
        {"title": f"{priority} run", "asset": asset["id"], "priority": priority,
         "assignee": str(admin["id"])},
        ada,
    )  # fmt: skip
    version = made["version"]
    steps = {"created": [], "cancelled": ["cancelled"],
             "completed": ["assigned", "in_progress", "completed"]}[status]  # fmt: skip
    for step in steps:
        reason = "Postponed." if step == "cancelled" else ""
        version = (await transition(site, made["id"], step, ada, version, reason))["version"]
    stamps = {Dispatch.created_at: created.astimezone(UTC)}
    if status == "completed":
        stamps[Dispatch.completed_at] = (created + timedelta(seconds=seconds)).astimezone(UTC)
    await Dispatch.update(stamps).where(Dispatch.id == made["id"])
    return made["id"]


def table_of(page, key: str) -> list[list[str]]:
    rows = soup(page).select(f"#report-{key} table tbody tr")
    return [[" ".join(c.get_text(" ").split()) for c in r.select("th, td")] for r in rows]


def csv_rows(response) -> list[dict[str, str]]:
    assert response.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_report_figures_match_dispatches_with_known_times(as_user):
    depot = await own_site("Africa/Nairobi")
    org = await demo_org()
    lorry_type, _ = await own_type(org, "Lorry")
    van_type, _ = await own_type(org, "=Van")  # a name a spreadsheet would run
    lorry = await own_asset(depot.site.id, lorry_type)
    van = await own_asset(depot.site.id, van_type)
    sid = depot.site.id
    await dispatched(sid, lorry, "high", local("2026-03-10", 8), "completed", 8100)
    await dispatched(sid, lorry, "normal", local("2026-03-11", 9), "completed", 4500)
    await dispatched(sid, van, "high", local("2026-03-12", 10), "completed", 2700)
    await dispatched(sid, van, "normal", local("2026-03-12", 11), "cancelled")
    await dispatched(sid, van, "low", local("2026-03-31", 23, 30), "created")  # the last evening
    await dispatched(sid, van, "low", local("2026-04-01", 0, 10), "created")  # 21:10 UTC, after
    # Created before the period, completed in it: in the averages, not in the counts.
    await dispatched(sid, lorry, "critical", local("2026-02-27", 10), "completed", 138_600)
    admin = await as_user("admin")
    period = {"from": "2026-03-01", "to": "2026-03-31"}
    page = await admin.get(f"{depot.url}/dispatches/reports", params=period)
    assert page.status_code == 200, page.text
    assert table_of(page, "status") == [
        ["Created", "1"], ["Assigned", "0"], ["In Progress", "0"], ["Completed", "3"],
        ["Cancelled", "1"],
    ]  # fmt: skip
    assert table_of(page, "asset-type") == [["=Van", "45 min (1)"], ["Lorry", "14 h 0 min (3)"]]
    assert table_of(page, "priority") == [
        ["Normal", "1 h 15 min (1)"],
        ["High", "1 h 30 min (2)"],
        ["Critical", "1 d 14 h 30 min (1)"],
    ]
    assert "5 dispatches created, 4 completed" in texts(page, ".report-period")[0]
    # The chart: drawn on the server, named and described for screen readers.
    svg = soup(page).select_one("#report-priority svg")
    assert svg["role"] == "img" and not soup(page).select("#report-priority script")
    assert svg.select_one("title").get_text().startswith("Average time to complete by priority")
    assert "High: 1 h 30 min (2)." in svg.select_one("desc").get_text()
    assert len(svg.select("rect")) == 3
    widths = [int(r["width"]) for r in soup(page).select("#report-status rect")]
    assert widths[3] == max(widths) and widths[1] == 0  # Completed the longest bar
    # The CSV: the same figures, exactly.
    link = soup(page).select_one("a.report-csv")["href"]
    exported = await admin.get(link)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = csv_rows(exported)
    assert [(r["section"], r["name"], r["dispatches"], r["average_seconds"]) for r in rows] == [
        ("status", "Created", "1", ""),
        ("status", "Assigned", "0", ""),
        ("status", "In Progress", "0", ""),
        ("status", "Completed", "3", ""),
        ("status", "Cancelled", "1", ""),
        ("asset_type", "'=Van", "1", "2700"),  # formula-guarded
        ("asset_type", "Lorry", "3", "50400"),
        ("priority", "Normal", "1", "4500"),
        ("priority", "High", "2", "5400"),
        ("priority", "Critical", "1", "138600"),
    ]
    assert [r["average"] for r in rows if r["average"]] == [
        row[1].rsplit(" (", 1)[0]
        for key in ("asset-type", "priority")
        for row in table_of(page, key)
    ]
    # One day, in the site's time zone: the last evening is in it, the night after not.
    day = await admin.get(
        f"{depot.url}/dispatches/reports", params={"from": "2026-03-31", "to": "2026-03-31"}
    )
    assert table_of(day, "status")[0] == ["Created", "1"]
    assert "No dispatch was completed in this period." in day.text


async def test_the_default_period_is_the_last_30_days_in_the_sites_time_zone(as_user):
    depot = await own_site("Pacific/Kiritimati")  # UTC+14: its today is often not UTC's
    admin = await as_user("admin")
    page = await admin.get(f"{depot.url}/dispatches/reports")
    assert page.status_code == 200
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    assert soup(page).select_one("#f-to")["value"] == today.isoformat()
    assert soup(page).select_one("#f-from")["value"] == (today - timedelta(days=29)).isoformat()
    assert "(30 days," in texts(page, ".report-period")[0]


async def test_the_demo_report_counts_what_the_database_holds(as_user):
    alice = await as_user("alice")  # a dispatcher: reports are for everyone at the site
    page = await alice.get("/s/nairobi/dispatches/reports")
    assert page.status_code == 200
    today = datetime.now(NAIROBI).date()
    start = datetime.combine(today - timedelta(days=29), datetime.min.time(), NAIROBI)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), NAIROBI)
    rows = await Dispatch.select(Dispatch.status).where(
        (Dispatch.site == await site_id("nairobi"))
        & (Dispatch.created_at >= start.astimezone(UTC))
        & (Dispatch.created_at < end.astimezone(UTC))
    )
    expected = [[s.word, str(sum(1 for r in rows if r["status"] == s))] for s in DispatchStatus]
    assert table_of(page, "status") == expected
    assert sum(int(n) for _, n in expected) >= 30  # the demo's, at least
    assert table_of(page, "asset-type") and table_of(page, "priority")
    exported = csv_rows(await alice.get("/s/nairobi/dispatches/reports.csv"))
    assert [[r["name"], r["dispatches"]] for r in exported if r["section"] == "status"] == expected
    assert [r["name"] for r in exported if r["section"] == "asset_type"] == [
        row[0] for row in table_of(page, "asset-type")
    ]


async def test_the_reports_address_is_not_taken_for_a_dispatch(as_user):
    admin = await as_user("admin")
    for path in ("/s/nairobi/dispatches/reports", "/s/nakuru/dispatches/reports"):
        page = await admin.get(path)
        assert page.status_code == 200 and texts(page, "h1") == ["Dispatch reports"]


@pytest.mark.parametrize("username", ["oscar", "dana", "erin"])
async def test_outsiders_get_404_for_the_reports(as_user, username):
    outsider = await as_user(username)
    for path in ("/s/nairobi/dispatches/reports", "/s/nairobi/dispatches/reports.csv"):
        assert (await outsider.get(path, params={"from": "2026-03-01"})).status_code == 404


HOSTILE_DAYS = [
    "2026-02-30",
    "1850-01-01",
    "abc",
    "x" * 10_000,
    "2026-1-5",
    "20260105",
    "2026-W01-1",
    "2026-01-05T10:00",
    "9999-12-31",
    "0000-01-01",
    "\uff12\uff10\uff12\uff16-\uff10\uff11-\uff10\uff15",  # full-width digits
    "2026-01-05\x00",
    "<script>alert(1)</script>",
    str(2**63),
]


@pytest.mark.parametrize("value", HOSTILE_DAYS, ids=[repr(v)[:20] for v in HOSTILE_DAYS])
@pytest.mark.parametrize("name", ["from", "to"])
async def test_a_hostile_day_gets_a_message_at_its_field_never_a_500(as_user, name, value):
    admin = await as_user("admin")
    page = await admin.get("/s/nairobi/dispatches/reports", params={name: value})
    assert page.status_code == 422
    message = texts(page, f"#f-{name}-error")
    assert message and message[0], page.text[:500]
    assert "showing the last 30 days instead" in page.text
    assert table_of(page, "status")  # the default period's report, still useful
    assert "<script>alert(1)</script>" not in page.text
    exported = await admin.get("/s/nairobi/dispatches/reports.csv", params={name: value})
    assert exported.status_code == 422 and not exported.content.startswith(b"\xef\xbb\xbf")


async def test_a_reversed_period_is_refused_with_a_message(as_user):
    admin = await as_user("admin")
    period = {"from": "2026-03-31", "to": "2026-03-01"}
    page = await admin.get("/s/nairobi/dispatches/reports", params=period)
    assert page.status_code == 422
    assert "ends before it starts" in texts(page, "#f-to-error")[0]
    assert soup(page).select_one("#f-from")["value"] == "2026-03-31"  # what was typed, kept
    assert (await admin.get("/s/nairobi/dispatches/reports.csv", params=period)).status_code == 422


def test_read_period_fills_a_missing_end_and_a_missing_start():
    today = date(2026, 12, 5)
    period, form = read_period({"from": "2026-11-01"}, today)
    assert (period.first, period.last, form.errors) == (date(2026, 11, 1), today, {})
    period, form = read_period({"to": "2026-03-31"}, today)
    assert (period.first, period.last) == (date(2026, 3, 2), date(2026, 3, 31))
    period, form = read_period({"from": "2026-03-01", "to": "2026-03-01"}, today)
    assert period.days == 1 and not form.errors


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (8100, "2 h 15 min"), (8129, "2 h 15 min"),
     (8130, "2 h 16 min"), (86_400, "1 d 0 h 0 min"), (138_600, "1 d 14 h 30 min")],
)  # fmt: skip
def test_an_average_is_said_in_days_hours_and_minutes(seconds, said):
    assert span(seconds) == said
