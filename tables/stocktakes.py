# ruff: noqa: RUF002, RUF003  (the minus, times and en dash signs are what people read)

"""Stocktakes: a site's items, counted line by line by several people at once (seed 003;
SPEC §5.4).

A site has items (SKU unique per site, name, category, unit, sub-units per unit for
partial counts — a bottle in tenths, a keg in pints — unit cost, active). A stocktake
covers a period and goes DRAFT → APPROVED. `populate` gives it one line per active item,
opening with that item's last approved count (else 0). A line's expected quantity is
opening + purchases − waste (purchases and waste are the sums of its movements, kept on
the line); a count is full units + a partial in sub-units; variance = counted − expected,
valued at the unit cost the line took when it was made. Approving (a manager's act: the
route checks the role) creates one adjustment per line with a non-zero variance, once.

Exactness. SQLite stores Piccolo's Numeric as a float (STACK.md §1 pitfalls: Decimal in,
float out, 0.30 comes back 0.3, >15 digits rounded), so nothing here is Numeric:
* quantities are BigInt thousandths of the item's unit (12.5 bottles = 12500);
* money is BigInt ten-thousandths of the currency (a unit cost of 2.10 = 21000); a
  line's variance value is variance × unit cost, an integer in 10⁻⁷ of the currency,
  computed in Python (never multiplied in SQL, where SQLite would turn an overflowing
  product into a float); totals are sums of those integers;
* SQL only ever adds stored integers (SUM of BigInt: exact on both engines; PostgreSQL
  returns numeric, read back as an int).
Pages get `Decimal`s made from these integers by dividing by a power of ten, which is
exact: 12.5 + 0.3 × 3 − 0.1 is 13.3 on both engines. Input is decimal text with at most
3 decimals (quantities; 4 for money) below a million, read without float: "1e309", "NaN",
"-1" and "abc" are refused at their field. A partial count in sub-units that do not
divide a thousand (1 pint of an 88-pint keg = 1/88 keg) is rounded half up to the
thousandth of a unit (0.011 keg); that rounded quantity is what is stored, summed and
valued, and the full and partial numbers are kept as typed.

Rules. Every function takes the site's id first and refuses what is not that site's
with the same sentence as an id that does not exist. Each write runs in one write
transaction — its own, or the caller's when called inside `write_tx()` — and records its
own line in the site's activity list. A refusal (DomainError) leaves nothing written.

Concurrency rules, enforced by the database:
* every write to a stocktake or its lines (populate, count, movement, approval,
  deletion) first bumps the stocktake's `revision` — one UPDATE of the stocktake row,
  which holds the row lock until commit on PostgreSQL; SQLite's IMMEDIATE write
  transaction already lets one writer in at a time — and reads the lines only after
  that. So two populates make one set of lines (the second finds them there and adds
  nothing; a unique (stocktake, item) index backs it), two approvals make one set of
  adjustments (the second is told "Already approved by X."), and no count or movement
  slips in after an approval;
* a count carries the line's version as the counter saw it (one conditional UPDATE):
  of two counts from one version, one wins and the other gets StaleVersion with both
  quantities (`changes["counted"] == (yours, theirs)`). Movements do not bump a line's
  version — a count is still a count when a delivery arrives meanwhile — they flag the
  line "moved since counted" instead;
* an offline count carries a client-generated id: the ids applied to a line are kept
  (`AppliedCount`, unique per line), so a repeated send answers `applied=False` with
  the line as it is and is never counted twice, whatever it says.

Variance threshold (optional, money: the absolute variance value at cost). A count over
it sends the line back for a recount (`needs_recount`, listed on the page); the next
count of that line is the recount and stands, over or not. A purchase or waste that
puts a counted line over it sends it back again (the figures changed since the count);
one that brings it under clears the request. Approval is refused while any line needs
a recount, and while any line is uncounted (an approved count is the next opening).

Blind count is a flag on the stocktake; the views carry it, the route decides what a
counter sees.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import (
    BigInt,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.query.functions.aggregate import Count, Max, Sum
from piccolo.table import Table

from tables.activity import Activity
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, locking, write_tx
from tables.people import Site
from tables.values import UNTYPEABLE, parse_date, row_id, typeable

QTY = 1000  # stored quantities are thousandths of the item's unit
COST = 10_000  # stored money is ten-thousandths of the currency
VALUE = QTY * COST  # a variance value (quantity × cost) is in 10⁻⁷ of the currency
QTY_MAX = 1_000_000 * QTY - 1  # 999,999.999 units in one count or movement
COST_MAX = 1_000_000 * COST - 1  # 999,999.9999
CHUNK = 500  # rows per INSERT (well under SQLite's bound variables)
SKU_MAX = 40
REFERENCE_MAX = 100
CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
NUMBER = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
DASH = "\u2013"  # the en dash of "1–30 Nov 2026"


class Status(StrEnum):
    draft = "draft"
    approved = "approved"

    @property
    def word(self) -> str:
        return self.value.capitalize()


class MovementKind(StrEnum):
    purchase = "purchase"
    waste = "waste"

    @property
    def word(self) -> str:
        return self.value.capitalize()


def now() -> datetime:
    return datetime.now(UTC)


# -- tables ---------------------------------------------------------------------------------


class Item(Table):
    id: Serial
    site = ForeignKey(Site, null=False)  # indexed by the unique (site, sku), made by the migration
    sku = Varchar(length=SKU_MAX)  # upper case, unique per site
    name = Varchar(length=200)
    category = Varchar(length=60)
    unit = Varchar(length=30, default="unit")  # "bottle", "keg", "kg"
    sub_units = Integer(default=1)  # per unit, for partial counts; 1 = whole units only
    sub_unit = Varchar(length=30, default="")  # "tenth", "pint"
    unit_cost = BigInt(default=0)  # ten-thousandths of the currency
    active = Boolean(default=True)
    # The count of the last approved stocktake that counted it (the next opening).
    last_count = BigInt(null=True, default=None)  # thousandths
    last_counted_in = Integer(null=True, default=None)  # that stocktake's id
    version = Integer(default=1)  # bumped by every edit (tables/items.py): a stale save is 409


class Stocktake(Table):
    id: Serial
    site = ForeignKey(Site, null=False, index=True)
    period_start = Date()
    period_end = Date()
    status = Varchar(length=10, choices=Status, default=Status.draft)
    blind = Boolean(default=False)  # counters do not see expected quantities
    variance_threshold = BigInt(null=True, default=None)  # ten-thousandths of the currency
    # Bumped by every write to the stocktake or its lines, before anything else in that
    # transaction: the UPDATE is what serialises them; the number orders them for viewers.
    revision = Integer(default=0)
    adjustments = Integer(default=0)  # made by the approval
    created_by = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    created_by_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())
    approved_by = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    approved_by_name = Varchar(length=150, default="")
    approved_at = Timestamptz(null=True, default=None)


class StocktakeLine(Table, tablename="stocktake_line"):
    id: Serial
    stocktake = ForeignKey(Stocktake, null=False)  # indexed by the unique (stocktake, item)
    item = ForeignKey(Item, null=False, index=True)
    opening = BigInt(default=0)  # thousandths, from the item's last approved count
    purchases = BigInt(default=0)  # thousandths: the sum of its purchase movements
    waste = BigInt(default=0)  # thousandths: the sum of its waste movements
    unit_cost = BigInt(default=0)  # the item's, when the line was made (ten-thousandths)
    counted = BigInt(null=True, default=None)  # thousandths; None until counted
    counted_full = BigInt(null=True, default=None)  # thousandths of a unit, as typed
    counted_partial = BigInt(null=True, default=None)  # thousandths of a sub-unit, as typed
    counted_by = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    counted_by_name = Varchar(length=150, default="")
    counted_at = Timestamptz(null=True, default=None)
    version = Integer(default=1)  # bumped by every count
    moved_since_counted = Boolean(default=False)
    flagged = Boolean(default=False)  # was sent back for a recount at least once
    needs_recount = Boolean(default=False)


class Movement(Table, tablename="stock_movement"):
    id: Serial
    line = ForeignKey(StocktakeLine, null=False, index=True)
    kind = Varchar(length=10, choices=MovementKind)
    quantity = BigInt()  # thousandths, > 0
    reference = Varchar(length=REFERENCE_MAX, default="")
    created_by = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    created_by_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())


class Adjustment(Table, tablename="stock_adjustment"):
    id: Serial
    site = ForeignKey(Site, null=False)
    stocktake = ForeignKey(Stocktake, null=False, index=True)
    line = ForeignKey(StocktakeLine, null=False)
    item = ForeignKey(Item, null=False, index=True)
    quantity = BigInt()  # thousandths, signed: the line's variance
    unit_cost = BigInt()  # ten-thousandths
    created_by = ForeignKey(BaseUser, null=True, on_delete=OnDelete.set_null)
    created_by_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())


class AppliedCount(Table, tablename="stocktake_applied_count"):
    """The client ids of the counts applied to a line (unique per line, by the migration):
    an offline count sent twice is recognised and applied once."""

    id: Serial
    line = ForeignKey(StocktakeLine, null=False)
    client_id = Varchar(length=64)
    version = Integer()  # the line's version the count produced
    created_at = Timestamptz(default=TimestamptzNow())


# -- exact numbers --------------------------------------------------------------------------


def qty(milli: int) -> Decimal:
    """Stored thousandths as an exact Decimal (13300 -> Decimal('13.3'))."""
    return Decimal(int(milli)) / QTY


def money(e4: int) -> Decimal:
    """Stored ten-thousandths of the currency as an exact Decimal (21000 -> 2.1)."""
    return Decimal(int(e4)) / COST


def value(e7: int) -> Decimal:
    """A variance value (10⁻⁷ of the currency) as an exact Decimal."""
    return Decimal(int(e7)) / VALUE


def text(number: Decimal | None) -> str:
    """An exact decimal as plain text ('13.3', '-0.63', '100'); '' for None."""
    return "" if number is None else format(number, "f")


def cents(number: Decimal) -> str:
    """Money as a page shows it: two decimals, rounded half up ('-0.63')."""
    return format(number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "f")


def parse_decimal(raw: Any, places: int, largest: int) -> tuple[int | None, str]:
    """Decimal text as an integer of 10^-places, or (None, why not). No float involved."""
    given = raw.strip() if isinstance(raw, str) else ""
    if given.startswith("-"):
        return None, "It cannot be negative."
    match = NUMBER.fullmatch(given)
    if match is None:
        return None, "Enter a number like 12.5."
    whole, fraction = match.group(1).lstrip("0"), match.group(2) or ""
    if len(whole) > 6:
        return None, f"At most {format(Decimal(largest) / 10**places, ',f')}."
    if len(fraction) > places:
        return None, f"Use at most {places} decimals."
    return int(whole or "0") * 10**places + int(fraction.ljust(places, "0") or "0"), ""


# -- lookups every rule starts with ---------------------------------------------------------

NO_STOCKTAKE = "There is no such stocktake."
NO_LINE = "There is no such line."
NO_MOVEMENT = "There is no such movement."
APPROVED = "This stocktake is approved: it can no longer change."


def _period(start: date, end: date) -> str:
    """ "1–30 Nov 2026", "28 Nov – 3 Dec 2026", "20 Dec 2026 – 5 Jan 2027"."""
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}{DASH}{end.day} {end:%b %Y}"
    if start.year == end.year:
        return f"{start.day} {start:%b} {DASH} {end.day} {end:%b %Y}"
    return f"{start.day} {start:%b %Y} {DASH} {end.day} {end:%b %Y}"


async def _lock(site_id: int, stocktake_id: Any, writing: bool = True) -> dict[str, Any]:
    """Bump the stocktake's revision: from here to commit, this transaction is the only one
    writing it or its lines. Returns its row; refuses an unknown one, and an approved one
    when `writing`."""
    if row_id(stocktake_id) is None or row_id(site_id) is None:
        raise DomainError(NO_STOCKTAKE, field="stocktake")
    rows = await (
        Stocktake.update({Stocktake.revision: Stocktake.revision + 1})
        .where((Stocktake.id == int(stocktake_id)) & (Stocktake.site == int(site_id)))
        .returning(*Stocktake._meta.columns)
    )
    if not rows:
        raise DomainError(NO_STOCKTAKE, field="stocktake")
    if writing and rows[0]["status"] == Status.approved:
        raise DomainError(APPROVED, field="status")
    return rows[0]


async def _stocktake_of_line(site_id: int, line_id: Any) -> int:
    """The stocktake of one of the site's lines, or DomainError (a line's stocktake never
    changes, so this may be read before the lock)."""
    if row_id(line_id) is None or row_id(site_id) is None:
        raise DomainError(NO_LINE, field="line")
    row = await (
        StocktakeLine.select(StocktakeLine.stocktake)
        .where((StocktakeLine.id == int(line_id)) & (StocktakeLine.stocktake.site == site_id))
        .first()
    )
    if row is None:
        raise DomainError(NO_LINE, field="line")
    return row["stocktake"]


def _line_columns() -> tuple[Any, ...]:
    return (
        *StocktakeLine.all_columns(),
        StocktakeLine.item.sku.as_alias("sku"),
        StocktakeLine.item.name.as_alias("name"),
        StocktakeLine.item.category.as_alias("category"),
        StocktakeLine.item.unit.as_alias("unit"),
        StocktakeLine.item.sub_units.as_alias("sub_units"),
        StocktakeLine.item.sub_unit.as_alias("sub_unit"),
        StocktakeLine.stocktake.variance_threshold.as_alias("threshold"),
        StocktakeLine.stocktake.blind.as_alias("blind"),
        StocktakeLine.stocktake.status.as_alias("status"),
    )


async def _line_row(line_id: int) -> dict[str, Any]:
    row = await StocktakeLine.select(*_line_columns()).where(StocktakeLine.id == line_id).first()
    if row is None:  # deleted with its stocktake a moment ago
        raise DomainError(NO_LINE, field="line")
    return row


def _expected(row: Mapping[str, Any]) -> int:
    return int(row["opening"]) + int(row["purchases"]) - int(row["waste"])


def _variance_e7(row: Mapping[str, Any], expected: int | None = None) -> int | None:
    if row["counted"] is None:
        return None
    variance = int(row["counted"]) - (_expected(row) if expected is None else expected)
    return variance * int(row["unit_cost"])


def _over(variance_e7: int | None, threshold_e4: int | None) -> bool:
    return (
        variance_e7 is not None
        and threshold_e4 is not None
        and abs(variance_e7) > int(threshold_e4) * QTY
    )


def _label(row: Mapping[str, Any]) -> str:
    return f"{row['name']} ({row['sku']})"


def _units(milli: int, unit: str) -> str:
    return f"{text(qty(milli))} {unit}"


async def _record(site_id: int, actor: Actor, verb: str, summary: str, stocktake_id: int) -> None:
    await Activity.record(site_id, actor, verb, summary, "stocktake", stocktake_id)


# -- stocktakes -----------------------------------------------------------------------------


def _on(values: Mapping[str, Any], name: str) -> bool:
    raw = values.get(name)
    return isinstance(raw, str) and raw.strip().lower() in ("on", "true", "1", "yes")


async def create_stocktake(site_id: int, values: Mapping[str, str], actor: Actor) -> dict:
    """A draft stocktake for a period. `values`: period_start and period_end (YYYY-MM-DD),
    variance_threshold (optional decimal text, money), blind ('on' or ''). Returns its
    row; InvalidInput for every wrong field at once."""
    errors: dict[str, str] = {}
    dates: dict[str, date | None] = {}
    for name, called in (("period_start", "start"), ("period_end", "end")):
        raw = values.get(name)
        dates[name] = parse_date(raw.strip()) if isinstance(raw, str) else None
        if dates[name] is None:
            errors[name] = f"Give the period's {called} like 2026-11-30."
    start, end = dates["period_start"], dates["period_end"]
    if start and end and end < start:
        errors["period_end"] = "The period cannot end before it starts."
    threshold: int | None = None
    raw = values.get("variance_threshold")
    if isinstance(raw, str) and raw.strip():
        threshold, why = parse_decimal(raw, 4, COST_MAX)
        if threshold is None:
            errors["variance_threshold"] = f"A variance threshold is money. {why}"
    elif raw is not None and not isinstance(raw, str):
        errors["variance_threshold"] = "A variance threshold is money. Enter a number like 12.5."
    if errors:
        raise InvalidInput(errors)
    assert start and end
    async with write_tx():
        if row_id(site_id) is None or not await Site.exists().where(Site.id == site_id):
            raise DomainError("There is no such site.")
        stamp = now()
        rows = await Stocktake.insert(
            Stocktake(
                site=site_id,
                period_start=start,
                period_end=end,
                status=Status.draft,
                blind=_on(values, "blind"),
                variance_threshold=threshold,
                created_by=actor.id or None,
                created_by_name=actor.name,
                created_at=stamp,
            )
        ).returning(*Stocktake._meta.columns)
        row = rows[0]
        await _record(
            site_id, actor, "stocktake.create", f"started the stocktake {_period(start, end)}",
            row["id"],
        )  # fmt: skip
        return row


async def delete_stocktake(site_id: int, stocktake_id: int, actor: Actor) -> None:
    """Delete a draft stocktake with its lines and movements (an approved one stays)."""
    async with write_tx():
        row = await _lock(site_id, stocktake_id, writing=False)
        if row["status"] == Status.approved:
            raise DomainError("An approved stocktake cannot be deleted.", field="status")
        lines = StocktakeLine.select(StocktakeLine.id).where(StocktakeLine.stocktake == row["id"])
        await AppliedCount.delete().where(AppliedCount.line.is_in(lines))
        await Movement.delete().where(Movement.line.is_in(lines))
        await StocktakeLine.delete().where(StocktakeLine.stocktake == row["id"])
        await Stocktake.delete().where(Stocktake.id == row["id"])
        summary = f"deleted the stocktake {_period(row['period_start'], row['period_end'])}"
        await _record(site_id, actor, "stocktake.delete", summary, row["id"])


Progress = Callable[[int, int], Awaitable[None]]


async def populate(
    site_id: int, stocktake_id: int, actor: Actor, progress: Progress | None = None
) -> int:
    """Give the stocktake one line per active item of the site it has no line for yet
    (opening = the item's last approved count, else 0; unit cost = the item's now).
    Returns how many lines it added: a second call adds nothing. All in one transaction,
    inserted in chunks; `progress(done, total)` is awaited after each chunk (it runs
    inside the transaction: it must not start other queries concurrently)."""
    async with write_tx():
        row = await _lock(site_id, stocktake_id)
        have = StocktakeLine.select(StocktakeLine.item).where(StocktakeLine.stocktake == row["id"])
        # Held until commit (FOR SHARE): an item's measure or cost cannot change under
        # lines made from it (update_item locks the item before it looks for drafts).
        items = await locking(
            Item.select(Item.id, Item.unit_cost, Item.last_count)
            .where((Item.site == site_id) & Item.active.eq(True) & Item.id.not_in(have))
            .order_by(Item.id),
            "SHARE",
        )
        total = len(items)
        for done in range(0, total, CHUNK):
            await StocktakeLine.insert(
                *(
                    StocktakeLine(
                        stocktake=row["id"],
                        item=item["id"],
                        opening=item["last_count"] or 0,
                        unit_cost=item["unit_cost"],
                    )
                    for item in items[done : done + CHUNK]
                )
            )
            if progress is not None:
                await progress(min(done + CHUNK, total), total)
        if total:
            period = _period(row["period_start"], row["period_end"])
            summary = f"added {total} line{'s' if total != 1 else ''} to the stocktake {period}"
            await _record(site_id, actor, "stocktake.populate", summary, row["id"])
        return total


# -- counting ---------------------------------------------------------------------------------


@dataclass
class CountResult:
    """The line after a count, and whether this call applied it (False: a count with this
    client id was applied already; the line is returned as it is)."""

    line: dict
    applied: bool


def _read_count(row: Mapping[str, Any], full: Any, partial: Any) -> tuple[int, int, int]:
    """(counted, full, partial) in thousandths (of a unit; of a sub-unit for the partial),
    or InvalidInput naming each wrong field."""
    errors: dict[str, str] = {}
    sub_units, unit, sub_unit = int(row["sub_units"]), row["unit"], row["sub_unit"] or "part"
    whole, why = parse_decimal(full, 3, QTY_MAX)
    if whole is None:
        errors["full"] = f"A count: {why}" if why != "Enter a number like 12.5." else why
    elif sub_units > 1 and whole % QTY:
        errors["full"] = f"Count whole {unit}s here and the rest in {sub_unit}s."
    part: int | None = 0
    if isinstance(partial, str) and partial.strip():
        part, why = parse_decimal(partial, 3, QTY_MAX)
        if part is None:
            errors["partial"] = f"A partial count: {why}"
        elif sub_units <= 1 and part:
            errors["partial"] = f"This item is counted in {unit}s only: leave the partial empty."
        elif part >= sub_units * QTY:
            most = sub_units - 1
            errors["partial"] = (
                f"A {unit} has {sub_units} {sub_unit}s: a partial is at most {most}"
                f" (more is a whole {unit})."
            )
    elif partial is not None and not isinstance(partial, str):
        errors["partial"] = "Enter a number like 12.5."
    if errors:
        raise InvalidInput(errors)
    assert whole is not None and part is not None
    # part thousandths of a sub-unit = part / sub_units thousandths of a unit, half up
    counted = whole + (2 * part + sub_units) // (2 * sub_units) if sub_units > 1 else whole
    if counted > QTY_MAX:
        raise InvalidInput({"full": f"At most {format(qty(QTY_MAX), ',f')}."})
    return counted, whole, part


def _count_text(counted: int | None, unit: str) -> str:
    return "not counted" if counted is None else _units(counted, unit)


async def count_line(
    site_id: int,
    line_id: int,
    expected_version: int,
    full: str,
    partial: str,
    actor: Actor,
    client_id: str = "",
) -> CountResult:
    """Save a count (full units + a partial in sub-units) if the line is still at
    `expected_version`, else StaleVersion with both quantities in `changes["counted"]`
    (yours, theirs). `client_id` (an offline count's own id, optional): a count with an
    id already applied to the line is not applied again (`applied=False`). Refused on an
    approved stocktake; InvalidInput for wrong numbers (full, partial, client_id)."""
    if not isinstance(client_id, str) or (client_id and not CLIENT_ID.fullmatch(client_id)):
        raise InvalidInput({"client_id": "A count's client id is 1 to 64 letters and digits."})
    seen_version = row_id(expected_version)  # a form may send it as text
    if seen_version is None:
        raise InvalidInput({"version": "Reload the line: this count says no version."})
    expected_version = seen_version
    async with write_tx():
        stocktake_id = await _stocktake_of_line(site_id, line_id)
        stocktake = await _lock(site_id, stocktake_id, writing=False)
        if client_id:
            done = await AppliedCount.exists().where(
                (AppliedCount.line == int(line_id)) & (AppliedCount.client_id == client_id)
            )
            if done:
                return CountResult(await _line_row(int(line_id)), applied=False)
        if stocktake["status"] == Status.approved:
            raise DomainError(APPROVED, field="status")
        row = await _line_row(int(line_id))
        counted, whole, part = _read_count(row, full, partial)
        if row["version"] != expected_version:
            unit = row["unit"]
            current = {**row, "updated_by_name": row["counted_by_name"]}
            yours, theirs = _count_text(counted, unit), _count_text(row["counted"], unit)
            raise StaleVersion(current, {"counted": (yours, theirs)})
        over = _over(_variance_e7({**row, "counted": counted}), stocktake["variance_threshold"])
        flagged, needs = bool(row["flagged"]), bool(row["needs_recount"])
        if over and not flagged:
            flagged, needs = True, True  # sent back for a recount
        else:
            needs = False  # under the threshold, or this is the recount: it stands
        saved = await (
            StocktakeLine.update(
                {
                    StocktakeLine.counted: counted,
                    StocktakeLine.counted_full: whole,
                    StocktakeLine.counted_partial: part,
                    StocktakeLine.counted_by: actor.id or None,
                    StocktakeLine.counted_by_name: actor.name,
                    StocktakeLine.counted_at: now(),
                    StocktakeLine.moved_since_counted: False,
                    StocktakeLine.flagged: flagged,
                    StocktakeLine.needs_recount: needs,
                    StocktakeLine.version: StocktakeLine.version + 1,
                }
            )
            .where((StocktakeLine.id == row["id"]) & (StocktakeLine.version == expected_version))
            .returning(StocktakeLine.id)
        )
        assert saved  # the stocktake lock serialises counts: the version cannot move now
        if client_id:
            await AppliedCount.insert(
                AppliedCount(line=row["id"], client_id=client_id, version=expected_version + 1)
            )
        summary = f"counted {_label(row)}: {_units(counted, row['unit'])}"
        if needs:
            summary += " (over the variance threshold: sent back for a recount)"
        await _record(site_id, actor, "stocktake.count", summary, stocktake_id)
        return CountResult(await _line_row(row["id"]), applied=True)


# -- movements --------------------------------------------------------------------------------


def _moved(row: Mapping[str, Any], expected: int, threshold: int | None) -> dict[Any, Any]:
    """What a movement changes besides the totals: the flags of a counted line."""
    if row["counted"] is None:
        return {}
    over = _over(_variance_e7(row, expected), threshold)
    return {
        StocktakeLine.moved_since_counted: True,
        StocktakeLine.flagged: bool(row["flagged"]) or over,
        StocktakeLine.needs_recount: over,
    }


async def add_movement(
    site_id: int, line_id: int, kind: str, quantity: str, reference: str, actor: Actor
) -> dict:
    """Record a purchase or waste on a line (its expected quantity moves with it; a
    counted line is flagged "moved since counted"). Returns the movement's row.
    InvalidInput for kind, quantity (above 0; waste no more than expected) and
    reference; refused on an approved stocktake."""
    errors: dict[str, str] = {}
    chosen = kind.strip().lower() if isinstance(kind, str) else ""
    if chosen not in MovementKind.__members__:
        errors["kind"] = "Choose purchase or waste."
    amount, why = parse_decimal(quantity, 3, QTY_MAX)
    if amount is None:
        errors["quantity"] = f"A quantity: {why}" if "number" not in why else why
    elif amount == 0:
        errors["quantity"] = "Give a quantity above 0."
    note = reference if isinstance(reference, str) else ""
    if not typeable(note):
        errors["reference"] = UNTYPEABLE
    elif len(note := " ".join(note.split())) > REFERENCE_MAX:
        errors["reference"] = f"A reference has at most {REFERENCE_MAX} characters."
    async with write_tx():
        stocktake_id = await _stocktake_of_line(site_id, line_id)
        if errors:
            raise InvalidInput(errors)
        assert amount is not None
        stocktake = await _lock(site_id, stocktake_id)
        row = await _line_row(int(line_id))
        expected = _expected(row)
        is_purchase = chosen == MovementKind.purchase
        if not is_purchase and amount > expected:
            have = _units(expected, row["unit"])
            raise InvalidInput({"quantity": f"Only {have} expected: waste cannot be more."})
        expected += amount if is_purchase else -amount
        column = StocktakeLine.purchases if is_purchase else StocktakeLine.waste
        changes: dict[Any, Any] = {column: int(row[column._meta.name]) + amount}
        changes.update(_moved(row, expected, stocktake["variance_threshold"]))
        await StocktakeLine.update(changes).where(StocktakeLine.id == row["id"])
        made = await Movement.insert(
            Movement(
                line=row["id"],
                kind=chosen,
                quantity=amount,
                reference=note,
                created_by=actor.id or None,
                created_by_name=actor.name,
                created_at=now(),
            )
        ).returning(*Movement._meta.columns)
        what = "a purchase" if is_purchase else "waste"
        summary = f"added {what} of {_units(amount, row['unit'])} to {_label(row)}"
        await _record(site_id, actor, "stocktake.movement", summary, stocktake_id)
        return made[0]


async def delete_movement(site_id: int, movement_id: int, actor: Actor) -> None:
    """Delete a movement (its line's expected quantity moves back; a counted line is
    flagged "moved since counted"). Refused on an approved stocktake, and when it would
    leave the line expecting less than nothing."""
    if row_id(movement_id) is None or row_id(site_id) is None:
        raise DomainError(NO_MOVEMENT, field="movement")
    async with write_tx():
        found = await (
            Movement.select(Movement.line, Movement.line.stocktake.as_alias("stocktake"))
            .where((Movement.id == movement_id) & (Movement.line._.stocktake._.site == site_id))
            .first()
        )
        if found is None:
            raise DomainError(NO_MOVEMENT, field="movement")
        stocktake = await _lock(site_id, found["stocktake"])
        movement = await Movement.select().where(Movement.id == movement_id).first()
        if movement is None:  # deleted by someone else a moment ago
            raise DomainError(NO_MOVEMENT, field="movement")
        row = await _line_row(movement["line"])
        is_purchase = movement["kind"] == MovementKind.purchase
        amount = int(movement["quantity"])
        expected = _expected(row) + (-amount if is_purchase else amount)
        if expected < 0:
            raise DomainError(
                "Deleting this purchase would leave less than nothing expected: delete the"
                " waste first.",
                field="movement",
            )
        column = StocktakeLine.purchases if is_purchase else StocktakeLine.waste
        changes: dict[Any, Any] = {column: int(row[column._meta.name]) - amount}
        changes.update(_moved(row, expected, stocktake["variance_threshold"]))
        await StocktakeLine.update(changes).where(StocktakeLine.id == row["id"])
        await Movement.delete().where(Movement.id == movement_id)
        what = "a purchase" if is_purchase else "waste"
        summary = f"deleted {what} of {_units(amount, row['unit'])} from {_label(row)}"
        await _record(site_id, actor, "stocktake.movement_delete", summary, found["stocktake"])


# -- approval ---------------------------------------------------------------------------------


@dataclass
class ApproveResult:
    """The approved stocktake's row and how many adjustments the approval made."""

    stocktake: dict
    adjustments: int


def _listed(rows: Sequence[Mapping[str, Any]], most: int = 5) -> str:
    names = [_label(r) for r in rows[:most]]
    more = len(rows) - most
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


async def approve(site_id: int, stocktake_id: int, actor: Actor) -> ApproveResult:
    """Approve a draft (the route lets managers only): one adjustment per line with a
    non-zero variance, each item's count becomes its next opening, the stocktake is
    read-only from then on. Exactly once: a second approval — at the same moment or
    later — gets DomainError "Already approved by X." and makes nothing. Refused while
    a line is uncounted or needs a recount (the message names them)."""
    async with write_tx():
        row = await _lock(site_id, stocktake_id, writing=False)
        if row["status"] == Status.approved:
            raise DomainError(f"Already approved by {row['approved_by_name']}.", field="status")
        lines = await (
            StocktakeLine.select(*_line_columns())
            .where(StocktakeLine.stocktake == row["id"])
            .order_by(StocktakeLine.id)
        )
        lines.sort(key=_order)
        if not lines:
            raise DomainError("This stocktake has no lines: populate it first.", field="status")
        uncounted = [r for r in lines if r["counted"] is None]
        if uncounted:
            n = len(uncounted)
            raise DomainError(
                f"{n} line{'s are' if n != 1 else ' is'} not counted yet ({_listed(uncounted)}):"
                " count them (0 when there is none) before approving.",
                field="status",
            )
        threshold = row["variance_threshold"]
        recount = [
            r
            for r in lines
            if r["needs_recount"] or (_over(_variance_e7(r), threshold) and not r["flagged"])
        ]
        if recount:
            n = len(recount)
            raise DomainError(
                f"{n} line{'s are' if n != 1 else ' is'} over the variance threshold and must be"
                f" recounted first: {_listed(recount)}.",
                field="status",
            )
        stamp = now()
        adjustments = [
            Adjustment(
                site=site_id,
                stocktake=row["id"],
                line=r["id"],
                item=r["item"],
                quantity=int(r["counted"]) - _expected(r),
                unit_cost=r["unit_cost"],
                created_by=actor.id or None,
                created_by_name=actor.name,
                created_at=stamp,
            )
            for r in lines
            if int(r["counted"]) != _expected(r)
        ]
        for start in range(0, len(adjustments), CHUNK):
            await Adjustment.insert(*adjustments[start : start + CHUNK])
        await Item.raw(
            "UPDATE item SET last_count = (SELECT l.counted FROM stocktake_line l"
            " WHERE l.item = item.id AND l.stocktake = {}), last_counted_in = {}"
            " WHERE id IN (SELECT l.item FROM stocktake_line l"
            " WHERE l.stocktake = {} AND l.counted IS NOT NULL)",
            row["id"],
            row["id"],
            row["id"],
        )
        saved = await (
            Stocktake.update(
                {
                    Stocktake.status: Status.approved.value,
                    Stocktake.approved_by: actor.id or None,
                    Stocktake.approved_by_name: actor.name,
                    Stocktake.approved_at: stamp,
                    Stocktake.adjustments: len(adjustments),
                }
            )
            .where(Stocktake.id == row["id"])
            .returning(*Stocktake._meta.columns)
        )
        n = len(adjustments)
        period = _period(row["period_start"], row["period_end"])
        summary = f"approved the stocktake {period}: {n} adjustment{'s' if n != 1 else ''}"
        await _record(site_id, actor, "stocktake.approve", summary, row["id"])
        return ApproveResult(saved[0], n)


# -- reading: each in a fixed number of queries, whatever the counts -----------------------


@dataclass
class LineView:
    id: int
    stocktake_id: int
    item_id: int
    sku: str
    name: str
    category: str
    unit: str
    sub_units: int
    sub_unit: str
    unit_cost: Decimal
    opening: Decimal
    purchases: Decimal
    waste: Decimal
    expected: Decimal
    counted: Decimal | None
    counted_full: Decimal | None
    counted_partial: Decimal | None  # in sub-units
    variance: Decimal | None
    variance_value: Decimal | None
    counted_by_name: str
    counted_at: datetime | None
    version: int
    moved_since_counted: bool
    over_threshold: bool
    needs_recount: bool
    flagged: bool
    blind: bool  # the stocktake's blind-count flag (the route decides who sees expected)
    approved: bool

    @property
    def label(self) -> str:
        """ "Guinness Keg 50L (BK001)"."""
        return f"{self.name} ({self.sku})"

    @property
    def is_counted(self) -> bool:
        return self.counted is not None

    @property
    def has_sub_units(self) -> bool:
        return self.sub_units > 1

    @property
    def count_label(self) -> str:
        """ "3 keg + 12 pint", "2.35 kg", or "" when not counted."""
        if self.counted_full is None:
            return ""
        if self.has_sub_units and self.counted_partial:
            return f"{self.counted_full} {self.unit} + {self.counted_partial} {self.sub_unit}"
        return f"{self.counted_full} {self.unit}"

    @property
    def recounted(self) -> bool:
        """Sent back for a recount, and counted again since."""
        return self.flagged and not self.needs_recount


def _line_view(row: Mapping[str, Any]) -> LineView:
    expected = _expected(row)
    counted = row["counted"]
    variance_e7 = _variance_e7(row)
    partial = row["counted_partial"]
    return LineView(
        id=row["id"],
        stocktake_id=row["stocktake"],
        item_id=row["item"],
        sku=row["sku"],
        name=row["name"],
        category=row["category"],
        unit=row["unit"],
        sub_units=row["sub_units"],
        sub_unit=row["sub_unit"],
        unit_cost=money(row["unit_cost"]),
        opening=qty(row["opening"]),
        purchases=qty(row["purchases"]),
        waste=qty(row["waste"]),
        expected=qty(expected),
        counted=None if counted is None else qty(counted),
        counted_full=None if row["counted_full"] is None else qty(row["counted_full"]),
        counted_partial=None if partial is None else qty(partial),
        variance=None if counted is None else qty(int(counted) - expected),
        variance_value=None if variance_e7 is None else value(variance_e7),
        counted_by_name=row["counted_by_name"],
        counted_at=row["counted_at"],
        version=row["version"],
        moved_since_counted=bool(row["moved_since_counted"]),
        over_threshold=_over(variance_e7, row["threshold"]),
        needs_recount=bool(row["needs_recount"]),
        flagged=bool(row["flagged"]),
        blind=bool(row["blind"]),
        approved=row["status"] == Status.approved,
    )


def _order(row: Mapping[str, Any]) -> tuple[str, str, str, int]:
    """Lines by category, then name, then SKU (sorted here: collations differ by engine)."""
    return (row["category"].casefold(), row["name"].casefold(), row["sku"], row["id"])


@dataclass
class StocktakeFilters:
    q: str = ""  # in the name or SKU, any case
    category: str = ""
    uncounted: bool = False
    over: bool = False  # over the threshold or waiting for a recount

    @classmethod
    def of(cls, values: Mapping[str, Any] | StocktakeFilters | None) -> StocktakeFilters:
        if isinstance(values, StocktakeFilters):
            return values
        values = values or {}
        q = values.get("q")
        category = values.get("category")
        return cls(
            q=" ".join(q.split())[:100] if isinstance(q, str) and typeable(q) else "",
            category=category.strip()[:60] if isinstance(category, str) else "",
            uncounted=_on(values, "uncounted"),
            over=_on(values, "over"),
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.category or self.uncounted or self.over)

    def keeps(self, line: LineView) -> bool:
        if self.q:
            needle = self.q.casefold()
            if needle not in line.name.casefold() and needle not in line.sku.casefold():
                return False
        if self.category and line.category != self.category:
            return False
        if self.uncounted and line.is_counted:
            return False
        return not (self.over and not (line.over_threshold or line.needs_recount))


@dataclass
class CategoryView:
    name: str
    total: int = 0  # lines in the category (whatever the filters)
    counted: int = 0
    variance_value: Decimal = Decimal(0)  # of its counted lines
    lines: list[LineView] = field(default_factory=list)  # those the filters keep

    @property
    def progress(self) -> str:
        return f"{self.counted} of {self.total}"


@dataclass
class StocktakeView:
    id: int
    site_id: int
    period_start: date
    period_end: date
    status: str
    blind: bool
    variance_threshold: Decimal | None
    revision: int
    adjustments: int
    created_by_name: str
    created_at: datetime
    approved_by_name: str
    approved_at: datetime | None
    categories: list[CategoryView]  # every category with lines, in order
    total: int
    counted: int
    variance_value: Decimal
    recount: list[LineView]  # lines waiting for a recount (whatever the filters)
    filters: StocktakeFilters

    @property
    def label(self) -> str:
        return _period(self.period_start, self.period_end)

    @property
    def approved(self) -> bool:
        return self.status == Status.approved

    @property
    def status_word(self) -> str:
        return Status(self.status).word

    @property
    def lines(self) -> list[LineView]:
        """The lines the filters keep, by category."""
        return [line for c in self.categories for line in c.lines]

    @property
    def shown(self) -> list[CategoryView]:
        return [c for c in self.categories if c.lines]

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]

    @property
    def progress(self) -> str:
        return f"{self.counted} of {self.total}"


async def _stocktake(site_id: int, stocktake_id: Any) -> dict[str, Any]:
    if row_id(stocktake_id) is None or row_id(site_id) is None:
        raise DomainError(NO_STOCKTAKE, field="stocktake")
    row = await (
        Stocktake.select()
        .where((Stocktake.id == int(stocktake_id)) & (Stocktake.site == int(site_id)))
        .first()
    )
    if row is None:
        raise DomainError(NO_STOCKTAKE, field="stocktake")
    return row


async def _lines_of(stocktake_id: int) -> list[LineView]:
    rows = await StocktakeLine.select(*_line_columns()).where(
        StocktakeLine.stocktake == stocktake_id
    )
    return [_line_view(r) for r in sorted(rows, key=_order)]


async def stocktake_view(
    site_id: int,
    stocktake_id: int,
    filters: Mapping[str, Any] | StocktakeFilters | None = None,
) -> StocktakeView:
    """A stocktake as its page shows it: lines grouped by category (those the filters
    keep), progress per category and overall, variance values, the lines waiting for a
    recount. 2 queries for any number of lines."""
    chosen = StocktakeFilters.of(filters)
    row = await _stocktake(site_id, stocktake_id)
    lines = await _lines_of(row["id"])
    categories: dict[str, CategoryView] = {}
    for line in lines:
        category = categories.setdefault(line.category, CategoryView(line.category))
        category.total += 1
        if line.variance_value is not None:
            category.counted += 1
            category.variance_value += line.variance_value
        if chosen.keeps(line):
            category.lines.append(line)
    recount = [line for line in lines if line.needs_recount]
    return _view(row, list(categories.values()), recount, chosen)


async def stocktake_figures(site_id: int, stocktake_id: int) -> StocktakeView:
    """A stocktake's progress and variance figures, overall and per category, without
    its lines (the categories' `lines` are empty): what a saved count redraws besides
    its line. 2 queries, the second over a few narrow columns, summed in integers (a
    1,000-line stocktake's figures without building 1,000 line views); 3 while lines
    wait for a recount."""
    row = await _stocktake(site_id, stocktake_id)
    rows = await StocktakeLine.select(
        StocktakeLine.id,
        StocktakeLine.opening,
        StocktakeLine.purchases,
        StocktakeLine.waste,
        StocktakeLine.counted,
        StocktakeLine.unit_cost,
        StocktakeLine.needs_recount,
        StocktakeLine.item.category.as_alias("category"),
    ).where(StocktakeLine.stocktake == row["id"])
    totals: dict[str, list[int]] = {}  # category: [lines, counted, variance value e7]
    for line in rows:
        figures = totals.setdefault(line["category"], [0, 0, 0])
        figures[0] += 1
        variance_e7 = _variance_e7(line)
        if variance_e7 is not None:
            figures[1] += 1
            figures[2] += variance_e7
    order = sorted(totals, key=str.casefold)
    categories = [
        CategoryView(name, total=n, counted=counted, variance_value=value(e7))
        for name in order
        for n, counted, e7 in [totals[name]]
    ]
    waiting = [line["id"] for line in rows if line["needs_recount"]]
    recount = list((await lines_by_id(site_id, waiting)).values()) if waiting else []
    return _view(
        row, categories, sorted(recount, key=lambda v: _order(vars(v))), StocktakeFilters()
    )


def _view(
    row: Mapping[str, Any],
    categories: list[CategoryView],
    recount: list[LineView],
    chosen: StocktakeFilters,
) -> StocktakeView:
    threshold = row["variance_threshold"]
    return StocktakeView(
        id=row["id"],
        site_id=row["site"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        status=row["status"],
        blind=row["blind"],
        variance_threshold=None if threshold is None else money(threshold),
        revision=row["revision"],
        adjustments=row["adjustments"],
        created_by_name=row["created_by_name"],
        created_at=row["created_at"],
        approved_by_name=row["approved_by_name"],
        approved_at=row["approved_at"],
        categories=categories,
        total=sum(c.total for c in categories),
        counted=sum(c.counted for c in categories),
        variance_value=sum((c.variance_value for c in categories), Decimal(0)),
        recount=recount,
        filters=chosen,
    )


async def lines_by_id(site_id: int, ids: list[int]) -> dict[int, LineView]:
    """Those of `ids` that are lines of the site's stocktakes, for redrawing just them:
    1 query for any number."""
    wanted = [n for i in ids if (n := row_id(i)) is not None] or [-1]
    rows = await StocktakeLine.select(*_line_columns()).where(
        StocktakeLine.id.is_in(wanted) & (StocktakeLine.stocktake.site == site_id)
    )
    return {row["id"]: _line_view(row) for row in rows}


async def line_by_sku(site_id: int, stocktake_id: int, sku: str) -> LineView | None:
    """The stocktake's line for a SKU as a scanner types it (any case, spaces around),
    or None: 1 query."""
    code = sku.strip().upper() if isinstance(sku, str) and typeable(sku) else ""  # a NUL: no
    if not code or len(code) > SKU_MAX or row_id(stocktake_id) is None:
        return None
    row = await (
        StocktakeLine.select(*_line_columns())
        .where(
            (StocktakeLine.stocktake == int(stocktake_id))
            & (StocktakeLine.stocktake.site == site_id)
            & (StocktakeLine.item.sku == code)
        )
        .first()
    )
    return None if row is None else _line_view(row)


async def movements_of(site_id: int, line_id: int) -> list[dict[str, Any]]:
    """A line's movements, oldest first (id, line, kind, quantity as Decimal, reference,
    created_by_name, created_at): 2 queries."""
    await _stocktake_of_line(site_id, line_id)
    rows = await (
        Movement.select(
            Movement.id,
            Movement.line,
            Movement.kind,
            Movement.quantity,
            Movement.reference,
            Movement.created_by_name,
            Movement.created_at,
        )
        .where(Movement.line == int(line_id))
        .order_by(Movement.id)
    )
    for row in rows:
        row["quantity"] = qty(row["quantity"])
    return rows


Stamps = Mapping[int, tuple[int, str]]  # line id: (movements, stamp)


async def movement_stamps(stocktake_id: int, line_ids: Iterable[int] | None = None) -> Stamps:
    """How many movements each line has, and a stamp that changes with any of them (their
    count and newest id): 1 query for the whole stocktake or some of its lines. A line
    shows the count; an open drawer refetches itself when its line's stamp moves."""
    where: Any = Movement.line._.stocktake == stocktake_id
    if line_ids is not None:
        where &= Movement.line.is_in(sorted(set(line_ids)) or [-1])
    rows = await (
        Movement.select(Movement.line, Count(), Max(Movement.id, alias="newest"))
        .where(where)
        .group_by(Movement.line)
    )
    return {row["line"]: (row["count"], f"{row['count']}.{row['newest']}") for row in rows}


@dataclass
class StocktakeSummary:
    id: int
    period_start: date
    period_end: date
    status: str
    blind: bool
    variance_threshold: Decimal | None
    created_by_name: str
    created_at: datetime
    approved_by_name: str
    approved_at: datetime | None
    adjustments: int
    total: int  # lines
    counted: int
    variance_value: Decimal  # of the counted lines

    @property
    def label(self) -> str:
        return _period(self.period_start, self.period_end)

    @property
    def status_word(self) -> str:
        return Status(self.status).word

    @property
    def progress(self) -> str:
        return f"{self.counted} of {self.total}"


async def stocktakes_of(site_id: int) -> list[StocktakeSummary]:
    """The site's stocktakes, newest period first, with progress and variance value:
    3 queries (the sums are integer sums per unit cost, multiplied here)."""
    rows = await (
        Stocktake.select()
        .where(Stocktake.site == site_id)
        .order_by(Stocktake.period_start, ascending=False)
        .order_by(Stocktake.id, ascending=False)
    )
    in_site: Any = StocktakeLine.stocktake.site == site_id
    totals = await (
        StocktakeLine.select(StocktakeLine.stocktake, Count())
        .where(in_site)
        .group_by(StocktakeLine.stocktake)
    )
    sums = await (
        StocktakeLine.select(
            StocktakeLine.stocktake,
            StocktakeLine.unit_cost,
            Count(alias="lines"),
            Sum(StocktakeLine.counted, alias="counted"),
            Sum(StocktakeLine.opening, alias="opening"),
            Sum(StocktakeLine.purchases, alias="purchases"),
            Sum(StocktakeLine.waste, alias="waste"),
        )
        .where(in_site & StocktakeLine.counted.is_not_null())
        .group_by(StocktakeLine.stocktake, StocktakeLine.unit_cost)
    )
    total = {r["stocktake"]: r["count"] for r in totals}
    counted: dict[int, int] = {}
    values: dict[int, int] = {}
    for r in sums:
        variance = int(r["counted"]) - int(r["opening"]) - int(r["purchases"]) + int(r["waste"])
        counted[r["stocktake"]] = counted.get(r["stocktake"], 0) + r["lines"]
        values[r["stocktake"]] = values.get(r["stocktake"], 0) + variance * int(r["unit_cost"])
    return [
        StocktakeSummary(
            id=row["id"],
            period_start=row["period_start"],
            period_end=row["period_end"],
            status=row["status"],
            blind=row["blind"],
            variance_threshold=(
                None if row["variance_threshold"] is None else money(row["variance_threshold"])
            ),
            created_by_name=row["created_by_name"],
            created_at=row["created_at"],
            approved_by_name=row["approved_by_name"],
            approved_at=row["approved_at"],
            adjustments=row["adjustments"],
            total=total.get(row["id"], 0),
            counted=counted.get(row["id"], 0),
            variance_value=value(values.get(row["id"], 0)),
        )
        for row in rows
    ]


EXPORT_COLUMNS = (
    "sku",
    "name",
    "category",
    "unit",
    "opening",
    "purchases",
    "waste",
    "expected",
    "counted",
    "variance",
    "unit_cost",
    "variance_value",
    "counted_by",
    "counted_at",
    "moved_since_counted",
    "needs_recount",
)


async def export_rows(site_id: int, stocktake_id: int) -> list[dict[str, str]]:
    """The lines for the CSV export, by category: every value as text, quantities and
    money as exact decimals ('13.3', '-0.63'), empty when not counted. 2 queries."""
    row = await _stocktake(site_id, stocktake_id)
    return [
        {
            "sku": line.sku,
            "name": line.name,
            "category": line.category,
            "unit": line.unit,
            "opening": text(line.opening),
            "purchases": text(line.purchases),
            "waste": text(line.waste),
            "expected": text(line.expected),
            "counted": text(line.counted),
            "variance": text(line.variance),
            "unit_cost": text(line.unit_cost),
            "variance_value": text(line.variance_value),
            "counted_by": line.counted_by_name,
            "counted_at": line.counted_at.isoformat() if line.counted_at else "",
            "moved_since_counted": "yes" if line.moved_since_counted else "",
            "needs_recount": "yes" if line.needs_recount else "",
        }
        for line in await _lines_of(row["id"])
    ]


async def variance_by_category(site_id: int, stocktake_id: int) -> list[tuple[str, Decimal]]:
    """The variance value of the counted lines per category, in category order (every
    category with lines, 0 when none is counted): 2 queries."""
    view = await stocktake_view(site_id, stocktake_id)
    return [(c.name, c.variance_value) for c in view.categories]
