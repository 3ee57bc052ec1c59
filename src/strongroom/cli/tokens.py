"""`token`: recorded tokens (create, list, lookup, renew, revoke) and stateless JWTs (`--jwt`).

Recorded tokens live in the database (`core.token_records`): they can be revoked, and renewed
up to their max TTL. These commands work on the database directly, or in remote mode
(`--addr`) through the server's `/api/vault/tokens` endpoints. A token is printed once, at
creation; afterwards it is named by its accessor.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from strongroom import errors
from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.session import global_options, session_of
from strongroom.clock import parse_duration
from strongroom.core.roles import canonical_role

if TYPE_CHECKING:
    from strongroom.core.token_records import TokenInfo

__all__ = ["COMMANDS", "token_dict"]

ROLES_HELP = (
    "Role: SuperAdmin or Admin (any letter case: admin is stored as Admin), or any other name "
    "(granted only what its policies allow)."
)


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except errors.InvalidInput as exc:
        raise click.BadParameter(exc.message) from exc


def token_dict(info: TokenInfo) -> dict[str, Any]:
    """A token record as JSON (never the token)."""
    return info.as_dict()


@click.group()
def token() -> None:
    """Issue, list, renew and revoke tokens for the server.

    \b
    Example:
      vaultctl token create --user-id 42 --role App --policy billing --ttl 24h
      vaultctl token list --user-id 42
      vaultctl token revoke --accessor 9sQ...
    """


@token.command("create")
@click.option(
    "--user-id",
    "subject",
    type=click.IntRange(0),
    required=True,
    help="The token's subject: the user id recorded in the audit log.",
)
@click.option("--role", required=True, help=ROLES_HELP)
@click.option(
    "--ttl", default="1h", show_default=True, callback=_duration, help="Lifetime: 30s, 15m, 24h..."
)
@click.option("--max-ttl", callback=_duration, help="Latest a renewal may reach (default: --ttl).")
@click.option("--policy", "policies", multiple=True, help="Policy name (repeatable).")
@click.option("--jwt", "as_jwt", is_flag=True, help="A stateless HS256 JWT (VAULT_JWT_SECRET).")
@format_option
@click.pass_context
def token_create(
    ctx: click.Context,
    subject: int,
    role: str,
    ttl: timedelta,
    max_ttl: timedelta | None,
    policies: tuple[str, ...],
    as_jwt: bool,
    fmt: str,
) -> None:
    """Print a new token for --user-id with --role (and policies).

    By default the token is recorded (revocable, renewable up to --max-ttl); --jwt prints a
    stateless JWT signed with VAULT_JWT_SECRET instead, valid until it expires.

    \b
    Example:
      vaultctl token create --user-id 42 --role App --policy billing --ttl 24h
    """
    s = session_of(ctx)
    role = canonical_role(role)  # `admin` is `Admin` (core.roles); verification stays exact
    if as_jwt:
        from strongroom.core.tokens import JWTAuth

        secret = s.settings.jwt_secret
        if secret is None:
            raise errors.InvalidInput("VAULT_JWT_SECRET is not set (the server's token key)")
        text, expires_at = JWTAuth(secret.reveal()).issue(subject, role, ttl=ttl, policies=policies)
        render.emit(fmt, text, {"token": text, "expires_at": render.iso(expires_at)})
        return
    if s.settings.is_remote:
        body = {"user_id": subject, "role": role, "policies": list(policies)}
        body["ttl"] = f"{int(ttl.total_seconds())}s"
        if max_ttl is not None:
            body["max_ttl"] = f"{int(max_ttl.total_seconds())}s"
        data = s.remote().admin("POST", "/tokens", body)
        render.emit(fmt, data["token"], data)
        return
    issued = s.local(need_keys=False).tokens.create(
        subject, role, policies=policies, ttl=ttl, max_ttl=max_ttl, actor=s.actor
    )
    render.emit(fmt, issued.token, {"token": issued.token, **token_dict(issued.info)})


@token.command("list")
@click.option("--user-id", "subject", type=click.IntRange(0), help="Only this subject's tokens.")
@format_option
@click.pass_context
def token_list(ctx: click.Context, subject: int | None, fmt: str) -> None:
    """List unexpired recorded tokens by accessor (never the tokens).

    \b
    Example:
      vaultctl token list --user-id 42 --format json
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        query = "" if subject is None else f"?user_id={subject}"
        found: list[dict[str, Any]] = s.remote().admin("GET", "/tokens" + query)["tokens"]
    else:
        found = [token_dict(t) for t in s.local(need_keys=False).tokens.list_tokens(subject)]
    lines = [f"Found {len(found)} token(s):"] + [
        f"  {t['accessor']}  user {t['user_id']}  {t['role']}  expires {t['expires_at']}"
        f"{'  policies: ' + ', '.join(t['policies']) if t['policies'] else ''}"
        for t in found
    ]
    render.emit(fmt, "\n".join(lines), {"tokens": found, "count": len(found)})


@token.command("lookup")
@click.argument("accessor")
@global_options()
@format_option
@click.pass_context
def token_lookup(ctx: click.Context, accessor: str, fmt: str) -> None:
    """Show the record of the token with ACCESSOR.

    \b
    Example:
      vaultctl token lookup 9sQ2... --format json
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        data = s.remote().admin("GET", f"/tokens/{accessor}")
    else:
        data = token_dict(s.local(need_keys=False).tokens.lookup(accessor))
    text = "\n".join(f"{k}: {v}" for k, v in sorted(data.items()))
    render.emit(fmt, text, data)


@token.command("renew")
@click.argument("accessor")
@click.option("--increment", callback=_duration, help="New lifetime from now (default: its TTL).")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def token_renew(ctx: click.Context, accessor: str, increment: timedelta | None, fmt: str) -> None:
    """Extend the token with ACCESSOR (capped at its max TTL, with a warning).

    \b
    Example:
      vaultctl token renew 9sQ2... --increment 2h
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        body = {} if increment is None else {"increment": f"{int(increment.total_seconds())}s"}
        data = s.remote().admin("POST", f"/tokens/{accessor}/renew", body)
    else:
        info, warnings = s.local(need_keys=False).tokens.renew(accessor, increment, actor=s.actor)
        data = {**token_dict(info), "warnings": warnings}
    for warning in data.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    render.emit(fmt, f"Token renewed: expires {data['expires_at']}", data, quiet=s.quiet)


@token.command("revoke")
@click.option("--accessor", help="Revoke the token with this accessor.")
@click.option("--user-id", "subject", type=click.IntRange(0), help="Revoke all of a subject's.")
@click.option("--token-stdin", is_flag=True, help="Revoke the token read from stdin.")
@click.option(
    "--jwts-before",
    help="With --user-id: refuse the subject's stateless JWTs issued before this time "
    "('now' or ISO-8601 with a zone).",
)
@format_option
@click.pass_context
def token_revoke(
    ctx: click.Context,
    accessor: str | None,
    subject: int | None,
    token_stdin: bool,
    jwts_before: str | None,
    fmt: str,
) -> None:
    """Revoke one token (--accessor or --token-stdin) or all of a subject's (--user-id).

    A revoked token is refused by every server process within a second.

    \b
    Example:
      vaultctl token revoke --accessor 9sQ2...
      vaultctl token revoke --user-id 42
      vaultctl token revoke --user-id 42 --jwts-before now   # the panel's stateless JWTs
    """
    s = session_of(ctx)
    if sum((accessor is not None, subject is not None, token_stdin)) != 1:
        raise click.UsageError("give exactly one of --accessor, --user-id, --token-stdin")
    if jwts_before is not None and subject is None:
        raise click.UsageError("--jwts-before needs --user-id")
    remote = s.remote() if s.settings.is_remote else None
    tokens = None if remote is not None else s.local(need_keys=False).tokens
    if jwts_before is not None and subject is not None:
        body = {"user_id": subject, "jwt_issued_before": jwts_before}
        if remote is not None:
            remote.admin("POST", "/tokens/revoke", body)
        elif tokens is not None:
            from strongroom.core.token_records import cutoff_time

            tokens.revoke_jwts_before(subject, cutoff_time(jwts_before), actor=s.actor)
        text = f"JWTs of user {subject} issued before {jwts_before} are refused"
        render.emit(fmt, text, body, quiet=s.quiet)
        return
    if token_stdin:
        text = (sys.stdin.readline() if sys.stdin is not None else "").strip()
        if remote is not None:
            accessor = remote.admin("POST", "/tokens/lookup", {"token": text})["accessor"]
        elif tokens is not None:
            accessor = tokens.accessor_of(text)
    if subject is not None:
        if remote is not None:
            count = remote.admin("POST", "/tokens/revoke", {"user_id": subject})["revoked"]
        elif tokens is not None:
            count = tokens.revoke_user(subject, actor=s.actor)
        text = f"Revoked {count} token(s) of user {subject}"
        render.emit(fmt, text, {"revoked": count, "user_id": subject}, quiet=s.quiet)
        return
    assert accessor is not None  # noqa: S101 - exactly one option was given
    if remote is not None:
        remote.admin("POST", "/tokens/revoke", {"accessor": accessor})
    elif tokens is not None:
        tokens.revoke(accessor, actor=s.actor)
    render.emit(fmt, f"Token revoked: {accessor}", {"revoked": 1}, quiet=s.quiet)


COMMANDS = [token]
