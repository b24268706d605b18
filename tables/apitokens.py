"""Per-user API tokens (SPEC §5.5): made and revoked by their owner on /me, sent to the
JSON API as `Authorization: Bearer <token>`.

The table is piccolo_api's `TokenAuth`, extended rather than used as it is. Its lookup
(`authenticate` → `get_user_id`) is what piccolo_api's `PiccoloTokenAuthProvider` and
`TokenAuthBackend` call, so those run unchanged on this table; what the library's own
`token_auth` table cannot do sensibly is the rest of the job:

- it keeps the token itself, in clear, with a uuid4 default (a row saved without a token
  would get a plaintext one); here `token` holds only the SHA-256 of a
  `secrets.token_urlsafe(32)` secret, and `authenticate` hashes before it looks up;
- its `token` column has no index (every API request would scan the table); here it is
  unique, so a lookup is one index probe;
- it has nothing to tell one token from another on the owner's page: here a name, the
  first characters of the token (`prefix`, the same for every copy of it) and when it was
  made.

A revoked token's row is deleted, so it stops working on the very next request; the owner's
organisations' trails keep the line saying who made and revoked which token.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import ForeignKey, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo_api.token_auth.tables import TokenAuth

from tables.base import Actor, DomainError
from tables.orgs import record_for_me

SCHEME = "fb_"  # marks a floorboard token wherever it turns up (a log, a paste, a scanner)
NAME_MAX = 60
PREFIX_LENGTH = len(SCHEME) + 6  # what the owner's page shows of a token: "fb_Xy3_9a…"
PER_USER = 20
TOKEN_MAX = 100  # a real one is 46 characters; anything longer is not worth hashing


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(TokenAuth, tablename="api_token"):
    """One API token of one user: its SHA-256, never the token itself."""

    id: Serial
    token = Varchar(length=64, unique=True)  # hex SHA-256 of the secret (the lookup key)
    user = ForeignKey(BaseUser, null=False, index=True)
    name = Varchar(length=NAME_MAX)
    prefix = Varchar(length=PREFIX_LENGTH)
    created_at = Timestamptz(default=TimestamptzNow())

    @classmethod
    async def authenticate(cls, token: str) -> dict | None:
        """piccolo_api's lookup, by the token's hash; only an active user's token counts, so
        deactivating someone ends their API access at once, as it ends their sessions."""
        if not (0 < len(token) <= TOKEN_MAX and token.isascii()):
            return None
        return await (
            cls.select(cls.user)
            .where((cls.token == digest(token)) & (cls.user._.active == True))  # noqa: E712
            .first()
        )

    @classmethod
    async def create_token(cls, user_id: int, one_per_user: bool = False, name: str = "") -> str:
        """A new token for the user: returns the secret, the only time it exists in clear."""
        if one_per_user and await cls.exists().where(cls.user == user_id):
            raise DomainError("You already have an API token.")
        secret = SCHEME + secrets.token_urlsafe(32)
        await cls(
            user=user_id, token=digest(secret), name=name, prefix=secret[:PREFIX_LENGTH]
        ).save()
        return secret


async def tokens_of(user_id: int) -> list[dict[str, Any]]:
    """The user's tokens as their page lists them (never the hash)."""
    return await (
        ApiToken.select(ApiToken.id, ApiToken.name, ApiToken.prefix, ApiToken.created_at)
        .where(ApiToken.user == user_id)
        .order_by(ApiToken.id, ascending=False)
    )


async def make_token(actor: Actor, name: str) -> str:
    """A named token for the actor; its secret is returned once and stored nowhere."""
    if await ApiToken.count().where(ApiToken.user == actor.id) >= PER_USER:
        raise DomainError(
            f"You have {PER_USER} API tokens already. Revoke one you no longer use first.",
            field="name",
        )
    secret = await ApiToken.create_token(actor.id, name=name)
    await record_for_me(actor, "me.token", f"made the API token “{name}”")
    return secret


async def revoke_token(actor: Actor, token_id: int) -> str:
    """Delete one of the actor's tokens (it stops working at once); returns its name."""
    gone = await (
        ApiToken.delete()
        .where((ApiToken.id == token_id) & (ApiToken.user == actor.id))
        .returning(ApiToken.name)
    )
    if not gone:
        raise DomainError("That API token is already revoked.")
    name = gone[0]["name"]
    await record_for_me(actor, "me.token", f"revoked the API token “{name}”")
    return name
