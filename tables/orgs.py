"""An organisation run by its own managers (SPEC §3): its people, its sites, its trail,
and what each person may do to their own account.

Who manages an organisation: a user with the role `manager` at any site of it (archived
or not), whose account is active. Such a user may do anything in that organisation and
nothing outside it. The rule every change here keeps: an organisation always has at
least one active manager, so nobody can lock everyone out of it — the last manager can
neither give up their own manager role nor deactivate themselves.

A person belongs to the organisations whose sites they work at; people are never
deleted, so their name stays on everything they did (the trails keep it as written).

`Account` is what an account needs besides piccolo's `BaseUser`: "must choose a password
on first sign-in" and the one-time set-up token (a sign-in link, or the step after a
temporary password). Only the token's SHA-256 is stored.

Every operation runs inside the caller's `write_tx()` and records its line in the
organisation's trail (`OrgActivity`); a broken rule raises `DomainError` before anything
is kept (the transaction rolls back).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import anyio.to_thread
from piccolo.apps.user.tables import BaseUser
from piccolo.columns import Boolean, ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table
from piccolo_api.session_auth.tables import SessionsBase

from tables.base import Actor, DomainError, InvalidInput
from tables.people import (
    SLUG,
    Membership,
    Organisation,
    Role,
    Site,
    SiteKind,
    display_name,
)

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,29}")
NAME_MAX = 150
SITE_NAME_MAX = 200
PASSWORD_MIN = 8
PASSWORD_MAX = 128
LINK_TTL = timedelta(days=7)  # a sign-in link handed to a new person
STEP_TTL = timedelta(minutes=30)  # choosing a password right after a temporary one
WORKSHOP_BAYS = ("Bay 1", "Bay 2", "Bay 3")


class NotHere(DomainError):
    """The person or site is not this organisation's: the route answers 404."""

    def __init__(self) -> None:
        super().__init__("There is no such page.")


class StartWith(StrEnum):
    link = "link"  # a one-time sign-in link
    password = "password"  # a temporary password, changed at first sign-in


class OrgActivity(Table):
    """The organisation's trail: who added, changed, deactivated whom; sites made."""

    id: Serial
    organisation = ForeignKey(Organisation, null=False, index=True)
    actor = ForeignKey(BaseUser, null=True)
    actor_name = Varchar(length=150)  # as written: survives a renamed or deactivated user
    verb = Varchar(length=40)
    summary = Varchar(length=300)
    created_at = Timestamptz(default=TimestamptzNow())


class Account(Table, tablename="account"):
    """One row per user who has ever been given a set-up step (unique by user)."""

    id: Serial
    user = ForeignKey(BaseUser, null=False)
    must_change_password = Boolean(default=False)
    token_hash = Varchar(length=64, null=True, default=None)
    token_expires_at = Timestamptz(null=True, default=None)


# -- who is here -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrgAccess:
    """A manager's standing in their organisation: what every /o/{org} page is given."""

    organisation_id: int
    slug: str
    name: str
    user_id: int
    display_name: str

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, self.display_name)


async def org_access(slug: str, user_id: int) -> OrgAccess | None:
    """The user's standing if they manage the organisation; None for everyone else and
    for unknown organisations alike (no existence leaks)."""
    if not SLUG.fullmatch(slug):
        return None
    row = await (
        Membership.select(
            Membership.site._.organisation._.id.as_alias("org_id"),
            Membership.site._.organisation._.name.as_alias("org_name"),
            Membership.user.username.as_alias("username"),
            Membership.user.first_name.as_alias("first"),
            Membership.user.last_name.as_alias("last"),
        )
        .where(
            (Membership.site._.organisation._.slug == slug)
            & (Membership.user.id == user_id)
            & (Membership.user.active == True)  # noqa: E712  (SQL, not Python)
            & (Membership.role == Role.manager.value)
        )
        .first()
    )
    if row is None:
        return None
    name = display_name(row["first"], row["last"], row["username"])
    return OrgAccess(row["org_id"], slug, row["org_name"], user_id, name)


async def managed_by(user_id: int) -> list[dict[str, str]]:
    """The organisations a user manages (slug, name), for their navigation."""
    rows = await (
        Membership.select(
            Membership.site._.organisation._.slug.as_alias("slug"),
            Membership.site._.organisation._.name.as_alias("name"),
        )
        .where(
            (Membership.user.id == user_id)
            & (Membership.role == Role.manager.value)
            & Membership.site._.organisation._.slug.is_not_null()
        )
        .order_by(Membership.site._.organisation._.name)
    )
    return list({r["slug"]: r for r in rows}.values())


async def organisations_of(user_id: int) -> list[int]:
    rows = await Membership.select(Membership.site._.organisation._.id.as_alias("org")).where(
        Membership.user == user_id
    )
    return sorted({r["org"] for r in rows})


# -- the trail -------------------------------------------------------------------------------


async def record(org_id: int, actor: Actor, verb: str, summary: str) -> None:
    await OrgActivity(
        organisation=org_id,
        actor=actor.id or None,
        actor_name=actor.name,
        verb=verb,
        summary=summary[:300],
    ).save()


async def trail(org_id: int, limit: int = 30) -> list[dict[str, Any]]:
    return await (
        OrgActivity.select(
            OrgActivity.id, OrgActivity.actor_name, OrgActivity.summary, OrgActivity.created_at
        )
        .where(OrgActivity.organisation == org_id)
        .order_by(OrgActivity.id, ascending=False)
        .limit(limit)
    )


# -- people ----------------------------------------------------------------------------------


@dataclass
class Person:
    id: int
    username: str
    name: str
    first_name: str
    last_name: str
    active: bool
    pending: bool = False  # has not chosen their own password yet
    roles: dict[int, str] = field(default_factory=dict)  # site id -> role
    sites: list[tuple[str, str]] = field(default_factory=list)  # (site name, role)


async def org_sites(org_id: int, *, archived: bool = True) -> list[dict[str, Any]]:
    where: Any = Site.organisation == org_id
    if not archived:
        where &= Site.archived_at.is_null()
    return await (
        Site.select(Site.id, Site.slug, Site.name, Site.kind, Site.timezone, Site.archived_at)
        .where(where)
        .order_by(Site.name)
    )


async def people_of(org_id: int, user_id: int | None = None) -> list[Person]:
    """The organisation's people (or the one `user_id`), with their roles by site."""
    where: Any = Membership.site._.organisation._.id == org_id
    if user_id is not None:
        where &= Membership.user.id == user_id
    rows = await (
        Membership.select(
            Membership.user.id.as_alias("uid"),
            Membership.user.username.as_alias("username"),
            Membership.user.first_name.as_alias("first"),
            Membership.user.last_name.as_alias("last"),
            Membership.user.active.as_alias("active"),
            Membership.site.id.as_alias("site_id"),
            Membership.site.name.as_alias("site_name"),
            Membership.role,
        )
        .where(where)
        .order_by(Membership.user.username)
        .order_by(Membership.site.name)
    )
    people: dict[int, Person] = {}
    for r in rows:
        person = people.get(r["uid"])
        if person is None:
            person = people[r["uid"]] = Person(
                r["uid"],
                r["username"],
                display_name(r["first"], r["last"], r["username"]),
                r["first"] or "",
                r["last"] or "",
                bool(r["active"]),
            )
        person.roles[r["site_id"]] = r["role"]
        person.sites.append((r["site_name"], r["role"]))
    if people:
        pending = await Account.select(Account.user).where(
            Account.user.is_in(list(people)) & (Account.must_change_password == True)  # noqa: E712
        )
        for row in pending:
            people[row["user"]].pending = True
    return list(people.values())


async def person_of(org_id: int, user_id: int) -> Person:
    found = await people_of(org_id, user_id)
    if not found:
        raise NotHere()
    return found[0]


def split_name(full_name: str) -> tuple[str, str]:
    first, _, last = full_name.strip().partition(" ")
    return first, " ".join(last.split())


async def hash_password(password: str) -> str:
    """PBKDF2 (600,000 rounds, ~0.15 s) in a thread: on the event loop it would stall every
    live stream of the worker."""
    return await anyio.to_thread.run_sync(BaseUser.hash_password, password)


async def password_matches(user_id: int, password: str) -> bool:
    row = await BaseUser.select(BaseUser.password).where(BaseUser.id == user_id).first()
    if row is None or len(password) > PASSWORD_MAX:
        return False
    stored = row["password"]
    _, iterations, salt, _ = BaseUser.split_stored_password(stored)
    attempt = await anyio.to_thread.run_sync(
        BaseUser.hash_password, password, salt, int(iterations)
    )
    return hmac.compare_digest(attempt, stored)


def check_new_password(password: str, repeat: str, username: str) -> dict[str, str]:
    """Messages for a password someone chose, by field ({} when it will do)."""
    if not password:
        return {"password": "Choose a password."}
    if len(password) < PASSWORD_MIN:
        return {"password": f"A password has at least {PASSWORD_MIN} characters."}
    if len(password) > PASSWORD_MAX:
        return {"password": f"A password has at most {PASSWORD_MAX} characters."}
    if password.lower() == username.lower():
        return {"password": "Choose something other than your username."}
    if password != repeat:
        return {"repeat": "The two passwords differ. Type the same one twice."}
    return {}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _set_account(user_id: int, values: dict[Any, Any]) -> None:
    """Update the user's `Account` row with these column values, making it if need be."""
    if await Account.exists().where(Account.user == user_id):
        await Account.update(values).where(Account.user == user_id)
    else:
        await Account(user=user_id, **{column._meta.name: v for column, v in values.items()}).save()


async def issue_token(user_id: int, ttl: timedelta, *, must_change: bool | None = None) -> str:
    """A fresh one-time set-up token for the user (any earlier one stops working)."""
    token = secrets.token_urlsafe(24)
    values: dict[Any, Any] = {
        Account.token_hash: _digest(token),
        Account.token_expires_at: datetime.now(UTC) + ttl,
    }
    if must_change is not None:
        values[Account.must_change_password] = must_change
    await _set_account(user_id, values)
    return token


async def must_change_password(user_id: int) -> bool:
    return await Account.exists().where(
        (Account.user == user_id) & (Account.must_change_password == True)  # noqa: E712
    )


@dataclass(frozen=True)
class SetUp:
    user_id: int
    username: str
    name: str


async def token_owner(token: str) -> SetUp | None:
    """Whose set-up token this is, if it is unused, unexpired and the account active."""
    if not (0 < len(token) <= 64) or not token.isascii():
        return None
    row = await (
        Account.select(
            Account.user.id.as_alias("uid"),
            Account.user.username.as_alias("username"),
            Account.user.first_name.as_alias("first"),
            Account.user.last_name.as_alias("last"),
            Account.user.active.as_alias("active"),
            Account.token_expires_at,
        )
        .where(Account.token_hash == _digest(token))
        .first()
    )
    if row is None or not row["active"] or row["token_expires_at"] <= datetime.now(UTC):
        return None
    name = display_name(row["first"], row["last"], row["username"])
    return SetUp(row["uid"], row["username"], name)


async def redeem_token(token: str, password_hash: str) -> SetUp:
    """Set the chosen password and spend the token (once: a second use finds nothing)."""
    owner = await token_owner(token)
    if owner is None:
        raise DomainError("This link has expired or has been used. Ask your manager for a new one.")
    spent = await (
        Account.update(
            {
                Account.token_hash: None,
                Account.token_expires_at: None,
                Account.must_change_password: False,
            }
        )
        .where(Account.token_hash == _digest(token))
        .returning(Account.id)
    )
    if not spent:
        raise DomainError("This link has expired or has been used. Ask your manager for a new one.")
    await BaseUser.update({BaseUser.password: password_hash}).where(BaseUser.id == owner.user_id)
    for org in await organisations_of(owner.user_id):
        await record(org, Actor(owner.user_id, owner.name), "me.password", "chose their password")
    return owner


@dataclass(frozen=True)
class Added:
    """A person's new way in, once added or after a reset of their sign-in."""

    user_id: int
    username: str
    name: str
    secret: str  # the sign-in link's token ("" with a temporary password)
    start_with: StartWith


HOW = {StartWith.link: "a sign-in link", StartWith.password: "a temporary password"}


async def starting_password(start_with: str) -> tuple[str, str]:
    """The password an account starts from, and its hash: with a temporary password, the
    one to hand out; with a link, "" and the hash of a random one nobody is told (they
    choose theirs through the link). Made by the caller before its transaction: hashing
    is slow."""
    temporary = temporary_password() if start_with == StartWith.password else ""
    return temporary, await hash_password(temporary or secrets.token_urlsafe(32))


async def _start_sign_in(user_id: int, start_with: StartWith) -> str:
    """Set the account up so its next sign-in is a fresh start: they must choose their own
    password, and any earlier link stops working. Returns a new link's token, or "" with a
    temporary password (already set by the caller)."""
    if start_with == StartWith.link:
        return await issue_token(user_id, LINK_TTL, must_change=True)
    await _set_account(
        user_id,
        {
            Account.must_change_password: True,
            Account.token_hash: None,
            Account.token_expires_at: None,
        },
    )
    return ""


def check_username(username: str) -> str | None:
    if not username:
        return "Enter a username."
    if not USERNAME.fullmatch(username):
        return (
            "A username has 2 to 30 lowercase letters, digits, dots, dashes or underscores, "
            "and starts with a letter or digit."
        )
    return None


async def _site_of_org(org_id: int, site_id: int | None) -> dict[str, Any] | None:
    if site_id is None:
        return None
    return await (
        Site.select(Site.id, Site.name, Site.archived_at)
        .where((Site.id == site_id) & (Site.organisation == org_id))
        .first()
    )


async def add_person(
    org_id: int,
    actor: Actor,
    *,
    username: str,
    full_name: str,
    site_id: int | None,
    role: str,
    start_with: str,
    password_hash: str,
) -> Added:
    """A new person working at one site of the organisation. `password_hash` is the hash
    of a random password (never told to anyone) or of the temporary one being handed out,
    made by the caller outside the transaction (it is slow)."""
    errors: dict[str, str] = {}
    if problem := check_username(username):
        errors["username"] = problem
    elif await BaseUser.exists().where(BaseUser.username == username):
        errors["username"] = f"The username “{username}” is taken. Choose another."
    if not full_name:
        errors["full_name"] = "Enter their full name."
    site = await _site_of_org(org_id, site_id)
    if site is None or site["archived_at"] is not None:
        errors["site"] = "Choose one of your sites."
    if role not in Role.__members__:
        errors["role"] = "Choose manager, dispatcher or staff."
    if start_with not in StartWith.__members__:
        errors["start_with"] = "Choose a sign-in link or a temporary password."
    if errors:
        raise InvalidInput(errors)
    assert site is not None
    first, last = split_name(full_name)
    user = BaseUser(
        username=username,
        password=password_hash,  # already a hash: BaseUser keeps it as it is
        first_name=first,
        last_name=last,
        email=f"{username}@floorboard.invalid",  # unique in piccolo_user; nobody is mailed
        active=True,
        admin=False,
        superuser=False,
    )
    await user.save()
    await Membership(user=user.id, site=site["id"], role=role).save()
    name = display_name(first, last, username)
    how = StartWith(start_with)
    secret = await _start_sign_in(user.id, how)
    await record(
        org_id,
        actor,
        "person.add",
        f"added {name} ({username}) as {role} at {site['name']}, with {HOW[how]}",
    )
    return Added(user.id, username, name, secret, how)


async def _active_managers(org_id: int) -> set[int]:
    rows = await Membership.select(Membership.user.id.as_alias("uid")).where(
        (Membership.site._.organisation._.id == org_id)
        & (Membership.role == Role.manager.value)
        & (Membership.user.active == True)  # noqa: E712
    )
    return {r["uid"] for r in rows}


async def _keep_a_manager(org_id: int, org_name: str, actor: Actor, person: Person) -> None:
    """Called after a change, inside its transaction: refuse it if nobody manages now."""
    if await _active_managers(org_id):
        return
    if person.id == actor.id:
        raise DomainError(
            f"You are the last manager of {org_name}. Make someone else a manager first.",
            field="roles",
        )
    raise DomainError(
        f"{person.name} is the last manager of {org_name}. Make someone else a manager first.",
        field="roles",
    )


async def set_roles(
    org: OrgAccess, user_id: int, roles: dict[int, str | None], full_name: str | None = None
) -> Person:
    """Give the person exactly these roles at the organisation's sites (None: not there).

    Sites not named keep what they have; at least one site must remain."""
    person = await person_of(org.organisation_id, user_id)
    sites = {s["id"]: s for s in await org_sites(org.organisation_id)}
    if any(site_id not in sites for site_id in roles):
        raise NotHere()
    if any(role is not None and role not in Role.__members__ for role in roles.values()):
        raise DomainError("Choose manager, dispatcher, staff or “not here”.", field="roles")
    after = {**person.roles, **roles}
    if not any(role for role in after.values()):
        raise DomainError(
            "Everyone works at one site at least. To take someone off every site, "
            "deactivate them instead.",
            field="roles",
        )
    changes: list[str] = []
    for site_id, role in roles.items():
        before = person.roles.get(site_id)
        if role == before:
            continue
        where = (Membership.user == user_id) & (Membership.site == site_id)
        site_name = sites[site_id]["name"]
        if role is None:
            await Membership.delete().where(where)
            changes.append(f"no longer at {site_name}")
        elif before is None:
            await Membership(user=user_id, site=site_id, role=role).save()
            changes.append(f"{role} at {site_name}")
        else:
            await Membership.update({Membership.role: role}).where(where)
            changes.append(f"{role} at {site_name} (was {before})")
    if full_name is not None and full_name != person.name:
        first, last = split_name(full_name)
        await BaseUser.update({BaseUser.first_name: first, BaseUser.last_name: last}).where(
            BaseUser.id == user_id
        )
        changes.append(f"renamed from {person.name}")
    await _keep_a_manager(org.organisation_id, org.name, org.actor, person)
    if changes:
        await record(
            org.organisation_id,
            org.actor,
            "person.roles",
            f"changed {person.name}: " + "; ".join(changes),
        )
    return person


async def deactivate(org: OrgAccess, user_id: int) -> Person:
    """Close the account: signed out everywhere (their sessions deleted); the caller
    frees their locks and ends their streams after commit. Nothing they did is touched."""
    person = await person_of(org.organisation_id, user_id)
    if set(await organisations_of(user_id)) != {org.organisation_id}:
        raise DomainError(
            f"{person.name} also works for another organisation; "
            "only their sites here can be changed.",
            field="roles",
        )
    if not person.active:
        raise DomainError(f"{person.name} is already deactivated.")
    await BaseUser.update({BaseUser.active: False}).where(BaseUser.id == user_id)
    await _keep_a_manager(org.organisation_id, org.name, org.actor, person)
    await end_sessions(user_id)
    await record(org.organisation_id, org.actor, "person.deactivate", f"deactivated {person.name}")
    return person


async def end_sessions(user_id: int) -> None:
    """Signed out everywhere: every session of theirs is deleted. The caller ends their
    open streams and frees their locks after commit."""
    await SessionsBase.delete().where(SessionsBase.user_id == user_id)


async def reset_sign_in(org: OrgAccess, user_id: int, start_with: str, password_hash: str) -> Added:
    """A new start for someone who cannot sign in: a fresh sign-in link or a temporary
    password (`password_hash`, from `starting_password`), which replaces their password
    either way; any earlier link stops working and they are signed out everywhere."""
    person = await person_of(org.organisation_id, user_id)
    if user_id == org.user_id:
        raise DomainError("To change your own password, use your account page (Me).")
    if set(await organisations_of(user_id)) != {org.organisation_id}:
        raise DomainError(f"{person.name} also works for another organisation.")
    if not person.active:
        raise DomainError(f"{person.name} is deactivated. Reactivate them first.")
    if await BaseUser.exists().where((BaseUser.id == user_id) & (BaseUser.superuser == True)):  # noqa: E712
        raise DomainError(f"{person.name} is a platform operator; only they can reset it.")
    if start_with not in StartWith.__members__:
        raise InvalidInput({"start_with": "Choose a sign-in link or a temporary password."})
    how = StartWith(start_with)
    await BaseUser.update({BaseUser.password: password_hash}).where(BaseUser.id == user_id)
    secret = await _start_sign_in(user_id, how)
    await end_sessions(user_id)
    await record(
        org.organisation_id,
        org.actor,
        "person.reset",
        f"reset the sign-in of {person.name}, with {HOW[how]}",
    )
    return Added(user_id, person.username, person.name, secret, how)


async def reactivate(org: OrgAccess, user_id: int) -> Person:
    person = await person_of(org.organisation_id, user_id)
    if set(await organisations_of(user_id)) != {org.organisation_id}:
        raise DomainError(f"{person.name} also works for another organisation.")
    if person.active:
        raise DomainError(f"{person.name} is already active.")
    await BaseUser.update({BaseUser.active: True}).where(BaseUser.id == user_id)
    await record(org.organisation_id, org.actor, "person.reactivate", f"reactivated {person.name}")
    return person


# -- sites -----------------------------------------------------------------------------------


def check_slug(slug: str) -> str | None:
    if not slug:
        return "Enter a slug."
    if not SLUG.fullmatch(slug):
        return (
            "A slug has only lowercase letters, digits and dashes (no spaces), "
            "starts with a letter or digit and has at most 50 characters."
        )
    return None


def check_timezone(name: str) -> str | None:
    try:
        Site.validate_timezone(name)
    except DomainError as problem:
        return str(problem)
    return None


async def create_site(
    org: OrgAccess, *, slug: str, name: str, kind: str, timezone: str
) -> dict[str, Any]:
    """A new site, managed by its creator, with what its kind starts with: a workshop its
    bays and its workflow board; a branch, hotel or depot nothing more (their pages — a
    branch's drafts — work from an empty start)."""
    errors: dict[str, str] = {}
    if problem := check_slug(slug):
        errors["slug"] = problem
    elif await Site.exists().where(Site.slug == slug):
        errors["slug"] = f"The slug “{slug}” is taken. Choose another."
    if not name:
        errors["name"] = "Enter the site's name."
    if kind not in SiteKind.__members__:
        errors["kind"] = "Choose a kind of site."
    if problem := check_timezone(timezone):
        errors["timezone"] = problem
    if errors:
        raise InvalidInput(errors)
    site = Site(
        organisation=org.organisation_id, slug=slug, name=name, kind=kind, timezone=timezone
    )
    await site.save()
    await Membership(user=org.user_id, site=site.id, role=Role.manager.value).save()
    if kind == SiteKind.workshop:
        from tables.appointments import Bay  # areas' tables: imported where they are used
        from tables.boards import create_board

        await Bay.insert(
            *(Bay(site=site.id, name=bay, position=i) for i, bay in enumerate(WORKSHOP_BAYS))
        )
        await create_board(site.id, "Workflow", "workflow", org.actor)
    await record(
        org.organisation_id,
        org.actor,
        "site.create",
        f"created the {kind} {name} ({slug}), {timezone}",
    )
    return {"id": site.id, "slug": slug, "name": name}


async def site_of_org(org: OrgAccess, site_id: int) -> dict[str, Any]:
    row = await (
        Site.select(Site.id, Site.slug, Site.name, Site.kind, Site.timezone, Site.archived_at)
        .where((Site.id == site_id) & (Site.organisation == org.organisation_id))
        .first()
    )
    if row is None:
        raise NotHere()
    return row


async def change_site(org: OrgAccess, site_id: int, *, name: str, timezone: str) -> dict[str, Any]:
    site = await site_of_org(org, site_id)
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Enter the site's name."
    if problem := check_timezone(timezone):
        errors["timezone"] = problem
    if errors:
        raise InvalidInput(errors)
    changes = []
    if name != site["name"]:
        changes.append(f"renamed {site['name']} to {name}")
    if timezone != site["timezone"]:
        changes.append(f"moved {name} from {site['timezone']} to {timezone}")
    if changes:
        await Site.update({Site.name: name, Site.timezone: timezone}).where(Site.id == site_id)
        await record(org.organisation_id, org.actor, "site.change", "; ".join(changes))
    return {**site, "name": name, "timezone": timezone}


async def archive_site(org: OrgAccess, site_id: int, archived: bool) -> dict[str, Any]:
    site = await site_of_org(org, site_id)
    if archived == (site["archived_at"] is not None):
        state = "archived" if archived else "open"
        raise DomainError(f"{site['name']} is already {state}.")
    stamp = datetime.now(UTC) if archived else None
    await Site.update({Site.archived_at: stamp}).where(Site.id == site_id)
    verb = "archived" if archived else "reopened"
    await record(org.organisation_id, org.actor, f"site.{verb}", f"{verb} {site['name']}")
    return site


# -- one's own account -----------------------------------------------------------------------


async def record_for_me(actor: Actor, verb: str, summary: str) -> None:
    for org in await organisations_of(actor.id):
        await record(org, actor, verb, summary)


async def rename_me(actor: Actor, full_name: str) -> str:
    first, last = split_name(full_name)
    await BaseUser.update({BaseUser.first_name: first, BaseUser.last_name: last}).where(
        BaseUser.id == actor.id
    )
    await record_for_me(actor, "me.name", f"changed their name to {full_name}")
    return full_name


async def set_my_password(actor: Actor, password_hash: str, keep_session: str) -> int:
    """The new password; every other session of theirs ends. Returns how many did."""
    await BaseUser.update({BaseUser.password: password_hash}).where(BaseUser.id == actor.id)
    ended = await end_other_sessions(actor.id, keep_session)
    await record_for_me(actor, "me.password", "changed their password")
    return ended


async def end_other_sessions(user_id: int, keep_session: str) -> int:
    gone = await (
        SessionsBase.delete()
        .where((SessionsBase.user_id == user_id) & (SessionsBase.token != keep_session))
        .returning(SessionsBase.id)
    )
    return len(gone)


def temporary_password() -> str:
    """Readable and typeable: 12 characters from an alphabet without look-alikes."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))
