"""The demo's API token for `admin`, printed by `make run` next to the demo sign-ins.

A token's secret exists only when it is made (the database keeps its SHA-256), so the
demo's is a fixed, documented one, like the demo's password "demo": the same on every fresh
start, so `make run` can print it on every start (not only the first), the README can show
a working `curl`, and it stays revocable on admin's /me like any other token. It is demo
data: a deployment that loads the demo is a demo.

demo.py calls `load_api_tokens()` from `load()`, once the users exist; `main.py` prints
`admin_token_line()` under the sign-ins.
"""

from __future__ import annotations

from piccolo.apps.user.tables import BaseUser

from tables.apitokens import PREFIX_LENGTH, ApiToken, digest

ADMIN_TOKEN = "fb_demo-admin-api-token-0000000000000000000000"
ADMIN_TOKEN_NAME = "demo (printed by make run)"


async def admin_id() -> int | None:
    row = await BaseUser.select(BaseUser.id).where(BaseUser.username == "admin").first()
    return row["id"] if row else None


async def load_api_tokens() -> None:
    """Give `admin` the demo token, unless it has it; running it twice changes nothing."""
    uid = await admin_id()
    if uid is None:
        return
    hashed = digest(ADMIN_TOKEN)
    if await ApiToken.exists().where((ApiToken.token == hashed) & (ApiToken.user == uid)):
        return
    await ApiToken.delete().where(ApiToken.token == hashed)  # left by an earlier admin row
    await ApiToken(
        user=uid, token=hashed, name=ADMIN_TOKEN_NAME, prefix=ADMIN_TOKEN[:PREFIX_LENGTH]
    ).save()


async def admin_token_line() -> str:
    """What `make run` prints: the token while it works (admin may have revoked it)."""
    if await ApiToken.get_user_id(ADMIN_TOKEN) is None:
        return ""
    return f"API token of admin (for /api/v1): {ADMIN_TOKEN}\n"
