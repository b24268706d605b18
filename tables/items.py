# ruff: noqa: RUF002, RUF003  (the en dash and the arrow are what people read)

"""Items: what a stock site counts, kept by its managers (/s/{site}/items; the table is
`tables.stocktakes.Item`).

A manager adds an item, edits it (from the version their form showed: a stale save is
StaleVersion with what changed), and takes it out of use or back. Every write records its
line in the site's activity list, inside the caller's `write_tx()`.

What an edit means for stocktakes. A stocktake's line refers to its item for what the item
is called and how it is counted (SKU, name, category, unit, sub-units), and copies what it
is worth and where it starts (the unit cost and the opening, when the line is made). So:
* SKU, name, category and the sub-unit's name are labels: an edit shows at once on every
  stocktake, draft or approved (their quantities and values do not change);
* the unit cost is a valuation: it values the stocktakes populated from now on; a draft's
  lines keep the cost they were made with, and an approved stocktake its figures;
* the unit and the sub-units per unit are the measure every quantity of the item is in
  (its last count, a line's opening, counts and movements — a partial count as typed is in
  sub-units). They cannot change while a draft stocktake has a line for the item (finish or
  delete it first); afterwards a change renames the measure, it converts nothing: the last
  count of 12 keg opens the next stocktake as 12 of the new unit. To count something in
  another measure, take the item out of use and add a new one.
Out of use: a later populate leaves the item out (`populate` takes active items only); a
draft stocktake's existing line for it stays, and is counted and approved like any other.
Back in use: the next populate adds it, a draft's too (populating again adds the lines it
lacks). Taking out of use and back is not an edit of the item's fields: it does not bump
the version (an open edit form stays valid) and says what it wants, so repeating it
changes nothing.

Input is text as a form sends it. Text fields are one line of typeable characters, trimmed;
the SKU is upper-cased (a scanner's `line_by_sku` compares upper case). Money is read as
decimal text without float and stored in ten-thousandths (`parse_decimal`), as everywhere
in stocktakes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tables.activity import Activity
from tables.base import Actor, DomainError, InvalidInput, StaleVersion, locking, update_versioned
from tables.stocktakes import (
    COST_MAX,
    SKU_MAX,
    Item,
    Status,
    StocktakeLine,
    _period,  # a period's one label ("1–30 Nov 2026"), wherever it is shown
    money,
    parse_decimal,
    qty,
    text,
)
from tables.values import row_id, typeable

NAME_MAX = 200
CATEGORY_MAX = 60
UNIT_MAX = 30
SUB_UNITS_MAX = 10_000  # a keg is 88 pints; nothing is counted in finer parts than this
SKU = re.compile(r"[A-Za-z0-9._-]+")
WHOLE = re.compile(r"[0-9]{1,6}")
NO_ITEM = "There is no such item."
# The fields a manager edits, in the order forms show them, as messages name them.
FIELDS = {
    "sku": "SKU",
    "name": "name",
    "category": "category",
    "unit": "unit",
    "sub_units": "sub-units per unit",
    "sub_unit": "sub-unit",
    "unit_cost": "unit cost",
}
MEASURE = ("unit", "sub_units")


def plural(word: str) -> str:
    """ "pint" -> "pints", "glass" -> "glasses": enough for the units people count in."""
    return word + ("es" if word.endswith(("s", "sh", "ch", "x", "z")) else "s")


# -- reading a form ---------------------------------------------------------------------------


def _line(values: Mapping[str, Any], name: str, what: str, most: int, errors: dict) -> str:
    """One line of text, trimmed; '' with a message in `errors` when it is not one."""
    raw = values.get(name)
    given = raw.strip() if isinstance(raw, str) else ""
    if not given:
        errors[name] = f"Enter {what}."
    elif len(given) > most:
        errors[name] = f"{what[0].upper()}{what[1:]} has at most {most:,} characters."
    elif not typeable(given) or "\n" in given or "\r" in given:
        errors[name] = f"{what[0].upper()}{what[1:]} has characters that cannot be typed."
    else:
        return given
    return ""


def read_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """An item's fields as form text -> its column values, or InvalidInput naming every
    wrong field at once."""
    errors: dict[str, str] = {}
    raw_sku = values.get("sku")
    sku = raw_sku.strip() if isinstance(raw_sku, str) else ""
    if not sku:
        errors["sku"] = "Enter the SKU."
    elif len(sku) > SKU_MAX:
        errors["sku"] = f"A SKU has at most {SKU_MAX} characters."
    elif not SKU.fullmatch(sku):
        errors["sku"] = "A SKU is letters, digits, dashes (-), dots (.) and underscores (_) only."
    name = _line(values, "name", "the item's name", NAME_MAX, errors)
    category = _line(values, "category", "a category", CATEGORY_MAX, errors)
    unit = _line(values, "unit", "the unit it is counted in (bottle, keg, kg)", UNIT_MAX, errors)
    raw = values.get("sub_units")
    given = raw.strip() if isinstance(raw, str) else ""
    sub_units = int(given) if WHOLE.fullmatch(given) else 0
    if not 1 <= sub_units <= SUB_UNITS_MAX:
        errors["sub_units"] = (
            f"Sub-units per unit is a whole number from 1 to {SUB_UNITS_MAX:,}"
            " (1: counted in whole units only; a keg of 88 pints: 88)."
        )
    sub_unit = ""
    if sub_units > 1:
        sub_unit = _line(values, "sub_unit", "the sub-unit's name (pint, tenth)", UNIT_MAX, errors)
    raw = values.get("unit_cost")
    cost: int | None = None
    if not (isinstance(raw, str) and raw.strip()):
        errors["unit_cost"] = "Enter the unit cost (0 if it has none)."
    else:
        cost, why = parse_decimal(raw, 4, COST_MAX)
        if cost is None:
            errors["unit_cost"] = f"A unit cost is money. {why}"
    if errors:
        raise InvalidInput(errors)
    return {
        "sku": sku.upper(),
        "name": name,
        "category": category,
        "unit": unit,
        "sub_units": sub_units,
        "sub_unit": sub_unit,
        "unit_cost": cost,
    }


def form_values(row: Mapping[str, Any]) -> dict[str, str]:
    """An item's fields as its edit form shows them."""
    return {
        "sku": row["sku"],
        "name": row["name"],
        "category": row["category"],
        "unit": row["unit"],
        "sub_units": str(row["sub_units"]),
        "sub_unit": row["sub_unit"],
        "unit_cost": text(money(row["unit_cost"])),
    }


def _measure(row: Mapping[str, Any]) -> str:
    """ "keg of 88 pints", "kg"."""
    if row["sub_units"] <= 1:
        return row["unit"]
    return f"{row['unit']} of {row['sub_units']:,} {plural(row['sub_unit'] or 'part')}"


def _shown(name: str, value: Any) -> str:
    return text(money(value)) if name == "unit_cost" else str(value)


# -- views ------------------------------------------------------------------------------------


@dataclass
class ItemRow:
    id: int
    sku: str
    name: str
    category: str
    unit: str
    sub_units: int
    sub_unit: str
    unit_cost: Decimal
    active: bool
    version: int
    last_count: Decimal | None  # the next stocktake's opening

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> ItemRow:
        last = row["last_count"]
        return cls(
            id=row["id"],
            sku=row["sku"],
            name=row["name"],
            category=row["category"],
            unit=row["unit"],
            sub_units=row["sub_units"],
            sub_unit=row["sub_unit"],
            unit_cost=money(row["unit_cost"]),
            active=row["active"],
            version=row["version"],
            last_count=None if last is None else qty(last),
        )

    @property
    def label(self) -> str:
        return f"{self.name} ({self.sku})"

    @property
    def cost(self) -> str:
        """The unit cost as a list shows it: two decimals, or all four when it has them."""
        exact = text(self.unit_cost)
        whole, _, fraction = exact.partition(".")
        return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"

    @property
    def parts(self) -> str:
        """What a unit is counted in, for partial counts: "88 pints"; "" for whole units."""
        if self.sub_units <= 1:
            return ""
        return f"{self.sub_units:,} {plural(self.sub_unit)}"


@dataclass(frozen=True)
class ItemFilters:
    """The list's GET form: a search in names and SKUs, a category, and whether items out
    of use are listed too."""

    q: str = ""
    category: str = ""
    inactive: bool = False

    @classmethod
    def of(cls, values: Mapping[str, Any] | None) -> ItemFilters:
        values = values or {}
        q, category, inactive = values.get("q"), values.get("category"), values.get("inactive")
        return cls(
            q=" ".join(q.split())[:100] if isinstance(q, str) and typeable(q) else "",
            category=(
                category.strip()[:CATEGORY_MAX]
                if isinstance(category, str) and typeable(category)
                else ""
            ),
            inactive=isinstance(inactive, str) and inactive.strip().lower() in ("on", "yes", "1"),
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.category or self.inactive)

    def keeps(self, item: ItemRow) -> bool:
        if not (item.active or self.inactive):
            return False
        if self.category and item.category != self.category:
            return False
        needle = self.q.casefold()
        return not needle or needle in item.name.casefold() or needle in item.sku.casefold()


@dataclass
class ItemList:
    items: list[ItemRow]  # those the filters keep: in use first, by category, then name
    categories: list[str]  # every category of the site's items, for the filter and the form
    units: list[str]  # every unit in use, offered when typing one
    in_use: int
    out_of_use: int
    filters: ItemFilters = field(default_factory=ItemFilters)


def _order(item: ItemRow) -> tuple:
    return (not item.active, item.category.casefold(), item.name.casefold(), item.id)


async def items_of(
    site_id: int, filters: Mapping[str, Any] | ItemFilters | None = None
) -> ItemList:
    """The site's items as its list shows them, filtered and ordered in Python (the same
    order and case-insensitive search on both engines, "Jägermeister" too): 1 query. A site
    has hundreds of items, a large one a few thousand."""
    chosen = filters if isinstance(filters, ItemFilters) else ItemFilters.of(filters)
    rows = await Item.select().where(Item.site == site_id)
    every = sorted((ItemRow.of(row) for row in rows), key=_order)
    in_use = sum(1 for item in every if item.active)
    return ItemList(
        items=[item for item in every if chosen.keeps(item)],
        categories=sorted({item.category for item in every}, key=str.casefold),
        units=sorted({item.unit for item in every}, key=str.casefold),
        in_use=in_use,
        out_of_use=len(every) - in_use,
        filters=chosen,
    )


async def site_item(site_id: int, item_id: Any, *, lock: bool = False) -> dict[str, Any]:
    """One of the site's items, or DomainError (another site's reads as one that does not
    exist). `lock`: held until the caller's write_tx ends (what is checked on it holds)."""
    if (number := row_id(item_id)) is None:
        raise DomainError(NO_ITEM)
    query = Item.select().where((Item.id == number) & (Item.site == site_id))
    row = await (locking(query) if lock else query).first()
    if row is None:
        raise DomainError(NO_ITEM)
    return row


async def drafts_counting(item_id: int) -> list[str]:
    """The draft stocktakes with a line for the item, as their labels ("1–30 Nov 2026")."""
    rows = await StocktakeLine.select(
        StocktakeLine.stocktake.period_start.as_alias("start"),
        StocktakeLine.stocktake.period_end.as_alias("end"),
    ).where((StocktakeLine.item == item_id) & (StocktakeLine.stocktake.status == Status.draft))
    return [_period(row["start"], row["end"]) for row in sorted(rows, key=lambda r: r["start"])]


# -- writes (inside the caller's write_tx()) --------------------------------------------------


async def _sku_holder(site_id: int, sku: str, other_than: int = 0) -> dict[str, Any] | None:
    return await (
        Item.select(Item.id, Item.name, Item.active)
        .where((Item.site == site_id) & (Item.sku == sku) & (Item.id != other_than))
        .first()
    )


def _sku_taken(sku: str, holder: Mapping[str, Any]) -> InvalidInput:
    also = "" if holder["active"] else " (out of use: put it back in use instead)"
    return InvalidInput({"sku": f"{sku} is already the SKU of {holder['name']}{also}."})


def _clash(error: Exception, sku: str) -> InvalidInput | None:
    """Two managers saving one new SKU at the same moment on PostgreSQL: both found it free,
    the unique index (site, sku) refuses the second. Its transaction is spoilt, so no
    query can name the holder."""
    words = str(error)
    if "item_site_sku" in words or "item.site, item.sku" in words:
        return InvalidInput({"sku": f"{sku} was given to another item a moment ago."})
    return None


async def create_item(site_id: int, values: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    """A new item, in use: its row, or InvalidInput (every wrong field; a SKU the site has
    already, naming the item that has it)."""
    clean = read_item(values)
    holder = await _sku_holder(site_id, clean["sku"])
    if holder is not None:
        raise _sku_taken(clean["sku"], holder)
    try:
        [row] = await Item.insert(Item(site=site_id, **clean)).returning(*Item._meta.columns)
    except Exception as error:
        if clash := _clash(error, clean["sku"]):
            raise clash from None
        raise
    summary = f"added the item {row['name']} ({row['sku']})"
    await Activity.record(site_id, actor, "item.add", summary, "item", row["id"])
    return row


@dataclass
class ItemSaved:
    row: dict[str, Any]
    changed: list[str]  # the fields that changed, as FIELDS names them; [] when none did


async def update_item(
    site_id: int, item_id: Any, version: Any, values: Mapping[str, Any], actor: Actor
) -> ItemSaved:
    """Save an item's fields if it is still at `version` (the one the form showed), bumping
    it; a form that changes nothing writes nothing. Refused: InvalidInput (wrong fields, a
    taken SKU, a new measure while a draft stocktake counts the item), StaleVersion (someone
    saved meanwhile: `changes` maps each differing field's label to (yours, now) as text)."""
    clean = read_item(values)
    # Locked first: a populate under way holds its items (FOR SHARE) until it commits, so
    # the drafts counting this one are read after it — never a new measure under a count.
    current = await site_item(site_id, item_id, lock=True)
    if (seen := row_id(version)) is None:  # a version is a whole number from 1, as an id
        raise DomainError("This form could not be read: reload the page.", field="version")
    changed = [name for name in FIELDS if clean[name] != current[name]]
    if not changed:
        return ItemSaved(current, [])
    if current["version"] != seen:
        raise await _stale(current, clean)
    if "sku" in changed and (holder := await _sku_holder(site_id, clean["sku"], current["id"])):
        raise _sku_taken(clean["sku"], holder)
    if measure := [name for name in MEASURE if name in changed]:
        if drafts := await drafts_counting(current["id"]):
            what = " and ".join(FIELDS[name] for name in measure)
            raise InvalidInput(
                {
                    name: f"The draft stocktake {drafts[0]} counts it by the {_measure(current)}:"
                    f" its {what} can change once that stocktake is approved or deleted."
                    for name in measure
                }
            )
    try:
        row = await update_versioned(
            Item, current["id"], seen, clean, compare=tuple(FIELDS), where=Item.site == site_id
        )
    except StaleVersion as stale:  # saved between our read and our write
        raise await _stale(stale.current, clean) from None
    except Exception as error:
        if clash := _clash(error, clean["sku"]):
            raise clash from None
        raise
    was = ", ".join(
        f"{FIELDS[n]} {_shown(n, current[n]) or '(none)'} → {_shown(n, row[n]) or '(none)'}"
        for n in changed
    )
    summary = f"edited the item {row['name']} ({row['sku']}): {was}"
    await Activity.record(site_id, actor, "item.edit", summary, "item", row["id"])
    return ItemSaved(row, [FIELDS[name] for name in changed])


async def _stale(current: dict[str, Any], clean: Mapping[str, Any]) -> StaleVersion:
    """StaleVersion naming who saved last (from the trail) and what differs, as text."""
    last = await (
        Activity.select(Activity.actor_name)
        .where(
            (Activity.entity_type == "item")
            & (Activity.entity_id == current["id"])
            & Activity.verb.is_in(["item.add", "item.edit"])
        )
        .order_by(Activity.id, ascending=False)
        .first()
    )
    changes = {
        FIELDS[name]: (_shown(name, clean[name]), _shown(name, current[name]))
        for name in FIELDS
        if clean[name] != current[name]
    }
    return StaleVersion({**current, "updated_by_name": last and last["actor_name"]}, changes)


async def set_item_in_use(site_id: int, item_id: Any, in_use: bool, actor: Actor) -> dict:
    """Take an item out of use (later populates leave it out; a draft's line stays) or
    back in use. Already so: nothing written."""
    current = await site_item(site_id, item_id)
    if current["active"] == in_use:
        return current
    [row] = await (
        Item.update({Item.active: in_use})
        .where((Item.id == current["id"]) & (Item.site == site_id))
        .returning(*Item._meta.columns)
    )
    label = f"{row['name']} ({row['sku']})"
    verb, summary = (
        ("item.in_use", f"put the item {label} back in use")
        if in_use
        else ("item.out_of_use", f"took the item {label} out of use")
    )
    await Activity.record(site_id, actor, verb, summary, "item", row["id"])
    return row
