"""Assets (seed 004; SPEC §5.5): what a site dispatches — vehicles, trucks, forklifts.

An organisation has asset types (Vehicle, Truck, Forklift, … each with a short key) and
the makes/models of each type. A site's asset has a type, a make/model or none, a
registration (or an asset tag, for what carries no plate) unique everywhere, a name,
where it stands (location), its last meter reading in km and a capacity where it carries
loads (0: not a load carrier). Which detail records a dispatch of an asset gets is
configured per type and per make/model in tables/dispatches.py.

`Asset.make` and `Asset.model` keep the make/model's names as text: the drafts page, its
load sheet and the manifest read them, and an asset without a catalogued make/model can
still say what it is. `create_asset` keeps them in step with `make_model`.

`Asset.type` is nullable in the database only because the column was added to a
table with rows in it (SQLite cannot add a NOT NULL foreign key); every rule here sets it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from piccolo.columns import ForeignKey, Integer, Serial, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from tables.base import DomainError, InvalidInput
from tables.people import Organisation, Site
from tables.values import UNTYPEABLE, row_id, typeable

REGISTRATION = re.compile(r"[A-Z0-9][A-Z0-9 -]{1,19}")
METER_MAX = 9_999_999  # km: more than any odometer shows
CAPACITY_MAX = 100_000  # kg


class AssetType(Table, tablename="asset_type"):
    """Vehicle, Truck, Forklift … of one organisation; `key` is unique within it (an
    index made by the migration) and is what configuration and code refer to."""

    id: Serial
    organisation = ForeignKey(Organisation, null=False)
    key = Varchar(length=30)  # "vehicle", "truck", "forklift"
    name = Varchar(length=60)  # "Vehicle"


class MakeModel(Table, tablename="make_model"):
    """A make and model of one asset type ("Isuzu FRR Reefer", a Truck); unique per type
    (an index made by the migration)."""

    id: Serial
    asset_type = ForeignKey(AssetType, null=False, on_delete=OnDelete.restrict)
    make = Varchar(length=60)
    model = Varchar(length=60)

    @staticmethod
    def label_of(make: str, model: str) -> str:
        return f"{make} {model}".strip()


class Asset(Table):
    id: Serial
    site = ForeignKey(Site, null=False, index=True)  # where the asset is now
    name = Varchar(length=100)
    type = ForeignKey(AssetType, null=True, on_delete=OnDelete.restrict)
    make_model = ForeignKey(MakeModel, null=True, on_delete=OnDelete.set_null)
    make = Varchar(length=60, default="")  # the make/model's, as text (see the docstring)
    model = Varchar(length=60, default="")
    registration = Varchar(length=20, unique=True)  # "KCC 789C", or a tag "FL-07"
    location = Varchar(length=100, default="")  # "Yard B", "Loading bay 3"
    meter_reading = Integer(null=True, default=None)  # km; None until first known
    capacity_kg = Integer(default=0)  # 0: not a load carrier


# -- input -----------------------------------------------------------------------------


def whole_number(raw: Any, least: int, most: int, called: str) -> tuple[int | None, str]:
    """An integer from a form (text) or JSON (int) within [least, most], or (None, why).
    Long text is refused before int() reads it: "9" * 5000 is not worth converting."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return None, f"{called} is a whole number."
    if isinstance(raw, str):
        text = raw.strip().replace(",", "")
        if not re.fullmatch(r"-?[0-9]{1,20}", text):
            return None, f"{called} is a whole number, like {max(least, 0) + 12}."
        raw = int(text)
    if not least <= raw <= most:
        return None, f"{called} is between {least:,} and {most:,}."
    return raw, ""


def line_of_text(raw: Any, most: int, called: str, required: bool = False) -> tuple[str, str]:
    """One line of text, spaces tidied, or ("", why not)."""
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        return "", f"{called} is text."
    if not typeable(raw):
        return "", UNTYPEABLE
    text = " ".join(raw.split())
    if required and not text:
        return "", f"{called} is needed."
    if len(text) > most:
        return "", f"{called} has at most {most:,} characters."
    return text, ""


# -- rules -----------------------------------------------------------------------------


async def organisation_of(site_id: int) -> int:
    row = await Site.select(Site.organisation).where(Site.id == site_id).first()
    if row is None:
        raise DomainError("There is no such site.")
    return row["organisation"]


async def ensure_asset_type(organisation_id: int, key: str, name: str) -> int:
    """The organisation's asset type with this key, created if missing: its id."""
    found = await (
        AssetType.select(AssetType.id)
        .where((AssetType.organisation == organisation_id) & (AssetType.key == key))
        .first()
    )
    if found:
        return found["id"]
    rows = await AssetType.insert(
        AssetType(organisation=organisation_id, key=key, name=name)
    ).returning(AssetType.id)
    return rows[0]["id"]


async def ensure_make_model(asset_type_id: int, make: str, model: str) -> int:
    """The type's make/model, created if missing: its id."""
    found = await (
        MakeModel.select(MakeModel.id)
        .where(
            (MakeModel.asset_type == asset_type_id)
            & (MakeModel.make == make)
            & (MakeModel.model == model)
        )
        .first()
    )
    if found:
        return found["id"]
    rows = await MakeModel.insert(
        MakeModel(asset_type=asset_type_id, make=make, model=model)
    ).returning(MakeModel.id)
    return rows[0]["id"]


async def create_asset(site_id: int, values: Mapping[str, Any]) -> dict[str, Any]:
    """A site's asset. `values`: asset_type (id), make_model (id or empty), registration,
    name, location, meter_reading (km or empty), capacity_kg. Returns its row;
    InvalidInput for every wrong field at once. Call inside a write transaction."""
    errors: dict[str, str] = {}
    organisation = await organisation_of(site_id)
    type_id = row_id(values.get("asset_type"))
    kind = None
    if type_id is not None:
        kind = await (
            AssetType.select()
            .where((AssetType.id == type_id) & (AssetType.organisation == organisation))
            .first()
        )
    if kind is None:
        errors["asset_type"] = "Choose one of your asset types."
    make, model = "", ""
    make_model = None
    raw_model = values.get("make_model")
    if raw_model not in (None, ""):
        model_id = row_id(raw_model)
        row = None
        if model_id is not None and kind is not None:
            row = (
                await MakeModel.select()
                .where((MakeModel.id == model_id) & (MakeModel.asset_type == kind["id"]))
                .first()
            )
        if row is None:
            errors["make_model"] = "Choose a make and model of this asset type, or none."
        else:
            make_model, make, model = row["id"], row["make"], row["model"]
    registration, why = line_of_text(values.get("registration"), 20, "A registration", True)
    registration = registration.upper()
    if why:
        errors["registration"] = why
    elif not REGISTRATION.fullmatch(registration):
        errors["registration"] = "A registration or tag is letters, digits, spaces and dashes."
    elif await Asset.exists().where(Asset.registration == registration):
        errors["registration"] = f"{registration} is already registered."
    name, why = line_of_text(values.get("name"), 100, "A name")
    if why:
        errors["name"] = why
    location, why = line_of_text(values.get("location"), 100, "A location")
    if why:
        errors["location"] = why
    reading = None
    if values.get("meter_reading") not in (None, ""):
        reading, why = whole_number(values.get("meter_reading"), 0, METER_MAX, "A reading")
        if why:
            errors["meter_reading"] = why
    capacity, why = whole_number(values.get("capacity_kg", 0) or 0, 0, CAPACITY_MAX, "A capacity")
    if why:
        errors["capacity_kg"] = why
    if errors:
        raise InvalidInput(errors)
    rows = await Asset.insert(
        Asset(
            site=site_id,
            name=name or MakeModel.label_of(make, model) or registration,
            type=type_id,
            make_model=make_model,
            make=make,
            model=model,
            registration=registration,
            location=location,
            meter_reading=reading,
            capacity_kg=capacity or 0,
        )
    ).returning(*Asset._meta.columns)
    return rows[0]


# -- reading ---------------------------------------------------------------------------


@dataclass
class AssetView:
    id: int
    site_id: int
    name: str
    registration: str
    type_id: int | None
    type_key: str
    type_name: str
    make_model_id: int | None
    make: str
    model: str
    location: str
    meter_reading: int | None
    capacity_kg: int

    @property
    def label(self) -> str:
        """ "KCC 789C · Isuzu NQR"."""
        what = MakeModel.label_of(self.make, self.model) or self.name
        return f"{self.registration} · {what}" if what else self.registration


def _asset_columns() -> tuple[Any, ...]:
    return (
        *Asset.all_columns(),
        Asset.type.key.as_alias("type_key"),
        Asset.type.name.as_alias("type_name"),
    )


def asset_view(row: Mapping[str, Any]) -> AssetView:
    return AssetView(
        id=row["id"],
        site_id=row["site"],
        name=row["name"],
        registration=row["registration"],
        type_id=row["type"],
        type_key=row["type_key"] or "",
        type_name=row["type_name"] or "",
        make_model_id=row["make_model"],
        make=row["make"],
        model=row["model"],
        location=row["location"],
        meter_reading=row["meter_reading"],
        capacity_kg=row["capacity_kg"],
    )


async def assets_of(site_id: int) -> list[AssetView]:
    """The site's assets by registration, with their type: 1 query."""
    rows = await (
        Asset.select(*_asset_columns()).where(Asset.site == site_id).order_by(Asset.registration)
    )
    return [asset_view(r) for r in rows]


async def site_asset(site_id: int, asset_id: Any) -> AssetView:
    """One of the site's assets, or DomainError (another site's is no such asset)."""
    wanted = row_id(asset_id)
    row = None
    if wanted is not None:
        row = await (
            Asset.select(*_asset_columns())
            .where((Asset.id == wanted) & (Asset.site == site_id))
            .first()
        )
    if row is None:
        raise DomainError("Choose one of this site's assets.", field="asset")
    return asset_view(row)


async def asset_types_of(organisation_id: int) -> list[dict[str, Any]]:
    """The organisation's asset types (id, key, name) by name: 1 query."""
    return await (
        AssetType.select(AssetType.id, AssetType.key, AssetType.name)
        .where(AssetType.organisation == organisation_id)
        .order_by(AssetType.name)
    )


async def make_models_of(organisation_id: int) -> list[dict[str, Any]]:
    """The organisation's makes/models (id, asset_type, make, model, type_name): 1 query."""
    return await (
        MakeModel.select(
            MakeModel.id,
            MakeModel.asset_type,
            MakeModel.make,
            MakeModel.model,
            MakeModel.asset_type.name.as_alias("type_name"),
        )
        .where(MakeModel.asset_type.organisation == organisation_id)
        .order_by(MakeModel.make)
        .order_by(MakeModel.model)
    )
