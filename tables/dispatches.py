"""Assets and dispatches (seed 004). The core the drafts area needs: vehicles with a
capacity, and the Dispatch a finalised draft becomes, with its parcels. The dispatches
issue extends this with transitions, detail records and the event log."""

from __future__ import annotations

from enum import StrEnum

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.reference import LazyTableReference
from piccolo.table import Table

from tables.people import Site


class AssetType(StrEnum):
    vehicle = "vehicle"
    truck = "truck"
    equipment = "equipment"


class DispatchStatus(StrEnum):
    created = "created"
    assigned = "assigned"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"


class Asset(Table):
    id: Serial
    site = ForeignKey(Site, null=False, index=True)  # where the asset is now
    name = Varchar(length=100)
    asset_type = Varchar(length=20, choices=AssetType, default=AssetType.vehicle)
    make = Varchar(length=60, default="")
    model = Varchar(length=60, default="")
    registration = Varchar(length=20, unique=True)  # "KCC 789C"
    capacity_kg = Integer(default=0)  # 0: not a load carrier


class Dispatch(Table):
    id: Serial
    number = Varchar(length=20, unique=True)  # "D-00042", readable over the radio
    title = Varchar(length=200)
    status = Varchar(length=20, choices=DispatchStatus, default=DispatchStatus.created)
    site = ForeignKey(Site, null=False, index=True)
    vehicle = ForeignKey(Asset, null=True)
    driver_name = Varchar(length=100, default="")
    created_by = ForeignKey(BaseUser, null=True)
    created_by_name = Varchar(length=150)
    created_at = Timestamptz(default=TimestamptzNow())

    @staticmethod
    def number_for(dispatch_id: int) -> str:
        return f"D-{dispatch_id:05d}"


class DispatchParcel(Table):
    id: Serial
    dispatch = ForeignKey(Dispatch, null=False, index=True)
    parcel: ForeignKey = ForeignKey(
        LazyTableReference("Parcel", module_path="tables.drafts"), null=False, unique=True
    )
