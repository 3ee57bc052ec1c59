"""`approle`: AppRole machine logins (roles, role_id, secret ids), on the database directly or
in remote mode (`--addr`) through `/api/vault/approles`. A secret id is printed once, when
generated; afterwards it is named by its accessor. Machines log in with
`POST /v1/auth/approle/login` (hvac `auth.approle.login`, `bao write auth/approle/login`).
"""

from __future__ import annotations

from typing import Any

import click

from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.session import Session, global_options, session_of
from strongroom.clock import parse_duration

__all__ = ["COMMANDS"]


def _remote_body(s: Session, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return s.remote().admin(method, "/approles" + path, body)


@click.group()
def approle() -> None:
    """Manage AppRoles: machine logins that exchange a role_id and a secret id for a token.

    \b
    Example:
      vaultctl approle write deploy --policy deploy --token-ttl 1h --secret-id-uses 1
      vaultctl approle read deploy            # shows the role_id
      vaultctl approle secret-id deploy       # prints a new secret id once
    """


@approle.command("write")
@click.argument("name")
@click.option("--policy", "policies", multiple=True, help="Policy name (repeatable).")
@click.option("--token-ttl", default="", help="Token lifetime (default 1h), e.g. 30m.")
@click.option("--token-max-ttl", default="", help="Latest a token may be renewed to.")
@click.option("--secret-id-ttl", default="", help="Secret ids expire after this (default never).")
@click.option(
    "--secret-id-uses", type=click.IntRange(0), default=0, help="Logins per secret id (0: any)."
)
@click.option("--cidr", "cidrs", multiple=True, help="Logins only from this CIDR (repeatable).")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def approle_write(
    ctx: click.Context,
    name: str,
    policies: tuple[str, ...],
    token_ttl: str,
    token_max_ttl: str,
    secret_id_ttl: str,
    secret_id_uses: int,
    cidrs: tuple[str, ...],
    fmt: str,
) -> None:
    """Create or update AppRole NAME (its role_id stays the same).

    \b
    Example:
      vaultctl approle write deploy --policy deploy --secret-id-ttl 10m --cidr 10.0.0.0/8
    """
    s = session_of(ctx)
    body: dict[str, Any] = {
        "policies": list(policies), "token_ttl": token_ttl, "token_max_ttl": token_max_ttl,
        "secret_id_ttl": secret_id_ttl, "secret_id_num_uses": secret_id_uses,
        "bound_cidrs": list(cidrs),
    }  # fmt: skip
    if s.settings.is_remote:
        data = _remote_body(s, "PUT", f"/{name}", body)
    else:
        from strongroom.core.approle import RoleSettings, role_dict

        def secs(text: str) -> int:
            return int(parse_duration(text).total_seconds()) if text else 0

        settings = RoleSettings(
            policies, secs(token_ttl), secs(token_max_ttl), secs(secret_id_ttl),
            secret_id_uses, cidrs,
        )  # fmt: skip
        data = role_dict(s.local(need_keys=False).approle.write_role(name, settings, actor=s.actor))
    render.emit(fmt, f"AppRole written: {name} (role_id {data['role_id']})", data, quiet=s.quiet)


@approle.command("read")
@click.argument("name")
@global_options()
@format_option
@click.pass_context
def approle_read(ctx: click.Context, name: str, fmt: str) -> None:
    """Show AppRole NAME and its role_id.

    \b
    Example:
      vaultctl approle read deploy --format json
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        data = _remote_body(s, "GET", f"/{name}")
    else:
        from strongroom.core.approle import role_dict

        data = role_dict(s.local(need_keys=False).approle.read_role(name))
    render.emit(fmt, "\n".join(f"{k}: {v}" for k, v in sorted(data.items())), data)


@approle.command("list")
@global_options()
@format_option
@click.pass_context
def approle_list(ctx: click.Context, fmt: str) -> None:
    """List AppRole names.

    \b
    Example:
      vaultctl approle list
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        names: list[str] = _remote_body(s, "GET", "")["approles"]
    else:
        names = s.local(need_keys=False).approle.list_roles()
    text = "\n".join([f"Found {len(names)} AppRole(s):", *(f"  {n}" for n in names)])
    render.emit(fmt, text, {"approles": names, "count": len(names)})


@approle.command("delete")
@click.argument("name")
@global_options(show=("user_id",))
@click.pass_context
def approle_delete(ctx: click.Context, name: str) -> None:
    """Delete AppRole NAME and its secret ids.

    \b
    Example:
      vaultctl approle delete deploy
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        _remote_body(s, "DELETE", f"/{name}")
    else:
        s.local(need_keys=False).approle.delete_role(name, actor=s.actor)
    if not s.quiet:
        click.echo(f"AppRole deleted: {name}")


@approle.command("secret-id")
@click.argument("name")
@click.option("--cidr", "cidrs", multiple=True, help="This secret id only from this CIDR.")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def approle_secret_id(ctx: click.Context, name: str, cidrs: tuple[str, ...], fmt: str) -> None:
    """Generate a secret id for AppRole NAME and print it (once).

    \b
    Example:
      vaultctl approle secret-id deploy --format json
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        data = _remote_body(s, "POST", f"/{name}/secret-ids", {"bound_cidrs": list(cidrs)})
    else:
        made = s.local(need_keys=False).approle.new_secret_id(
            name, bound_cidrs=cidrs, actor=s.actor
        )
        data = {"secret_id": made.secret_id, "accessor": made.accessor, "ttl": made.ttl,
                "num_uses": made.num_uses}  # fmt: skip
    render.emit(fmt, data["secret_id"], data)


@approle.command("secret-ids")
@click.argument("name")
@global_options()
@format_option
@click.pass_context
def approle_secret_ids(ctx: click.Context, name: str, fmt: str) -> None:
    """List AppRole NAME's unexpired secret ids by accessor (never the ids).

    \b
    Example:
      vaultctl approle secret-ids deploy
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        found: list[dict[str, Any]] = _remote_body(s, "GET", f"/{name}/secret-ids")["secret_ids"]
    else:
        from strongroom.core.approle import secret_dict

        found = [secret_dict(r) for r in s.local(need_keys=False).approle.list_secret_ids(name)]
    lines = [f"Found {len(found)} secret id(s):"] + [
        f"  {r['accessor']}  uses left {r['uses_left'] or 'any'}"
        f"  expires {r['expires_at'] or 'never'}"
        for r in found
    ]
    render.emit(fmt, "\n".join(lines), {"secret_ids": found, "count": len(found)})


@approle.command("revoke-secret-id")
@click.argument("name")
@click.option("--accessor", required=True, help="The secret id's accessor.")
@global_options(show=("user_id",))
@click.pass_context
def approle_revoke_secret_id(ctx: click.Context, name: str, accessor: str) -> None:
    """Destroy one secret id of AppRole NAME by its accessor.

    \b
    Example:
      vaultctl approle revoke-secret-id deploy --accessor 3f2a...
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        _remote_body(s, "POST", f"/{name}/secret-ids/revoke", {"accessor": accessor})
    else:
        s.local(need_keys=False).approle.destroy_secret_id(name, accessor, actor=s.actor)
    if not s.quiet:
        click.echo(f"Secret id revoked: {accessor}")


COMMANDS = [approle]
