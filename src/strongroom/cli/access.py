"""`user` and `policy`: built-in users and path policies for the server's auth (`token`:
`cli.tokens`).

They work on the database directly (no --addr) and need no master key: users and policies are
not secrets (passwords are stored as Argon2id hashes), and every change is audited.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from strongroom import errors
from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.session import Session, global_options, session_of

__all__ = ["COMMANDS"]

ROLES_HELP = (
    "Role: SuperAdmin or Admin (any letter case: admin is stored as Admin), or any other name "
    "(granted only what its policies allow)."
)


def _local(ctx: click.Context, what: str) -> Session:
    s = session_of(ctx)
    s.require_local(what)
    return s


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        data = sys.stdin.readline() if sys.stdin is not None else ""
        password = data.rstrip("\r\n")
        if not password:
            raise errors.InvalidInput("no password on stdin")
        return password
    if sys.stdin is not None and sys.stdin.isatty():
        entered: str = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
        return entered
    raise errors.InvalidInput("no password: use --password-stdin, or run on a terminal")


def _user_dict(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "policies": list(user.policies),
        "disabled": user.disabled,
        "created_at": render.iso(user.created_at),
    }


@click.group()
def user() -> None:
    """Manage built-in users (they log in with POST /api/auth/login).

    \b
    Example:
      printf %s "$PASSWORD" | vaultctl user create --username alice --role Admin --password-stdin
      vaultctl user list
      vaultctl user disable --username alice
    """


@user.command("create")
@click.option("--username", required=True, help="Login name (letters, digits, . _ - @).")
@click.option("--role", required=True, help=ROLES_HELP)
@click.option("--policy", "policies", multiple=True, help="Policy name (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin's first line.")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def user_create(
    ctx: click.Context,
    username: str,
    role: str,
    policies: tuple[str, ...],
    password_stdin: bool,
    fmt: str,
) -> None:
    """Create a built-in user (password prompted, or --password-stdin).

    \b
    Example:
      vaultctl user create --username billing-app --role App --policy billing
    """
    s = _local(ctx, "user create")
    password = _read_password(password_stdin)
    info = s.local(create=True).access.create_user(
        username, password, role, policies=policies, actor=s.actor
    )
    render.emit(
        fmt,
        f"User created: {info.username} (id {info.id}, role {info.role})",
        _user_dict(info),
        quiet=s.quiet,
    )


@user.command("list")
@global_options()
@format_option
@click.pass_context
def user_list(ctx: click.Context, fmt: str) -> None:
    """List built-in users (never their password hashes).

    \b
    Example:
      vaultctl user list --format json
    """
    s = _local(ctx, "user list")
    users = s.local(need_keys=False).access.list_users()
    lines = [f"Found {len(users)} user(s):"] + [
        f"  {u.id}  {u.username}  {u.role}"
        f"{'  policies: ' + ', '.join(u.policies) if u.policies else ''}"
        f"{'  (disabled)' if u.disabled else ''}"
        for u in users
    ]
    render.emit(
        fmt, "\n".join(lines), {"users": [_user_dict(u) for u in users], "count": len(users)}
    )


def _set_disabled(ctx: click.Context, username: str, fmt: str, disabled: bool) -> None:
    s = _local(ctx, "user disable" if disabled else "user enable")
    info = s.local(need_keys=False).access.set_user_disabled(username, disabled, actor=s.actor)
    word = "disabled" if disabled else "enabled"
    render.emit(
        fmt,
        f"User {word}: {info.username}",
        {**_user_dict(info), "disabled": disabled},
        quiet=s.quiet,
    )


@user.command("disable")
@click.option("--username", required=True, help="The user to disable.")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def user_disable(ctx: click.Context, username: str, fmt: str) -> None:
    """Disable a user: no more logins, and their tokens stop working within seconds.

    \b
    Example:
      vaultctl user disable --username alice
    """
    _set_disabled(ctx, username, fmt, True)


@user.command("enable")
@click.option("--username", required=True, help="The user to enable again.")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def user_enable(ctx: click.Context, username: str, fmt: str) -> None:
    """Enable a disabled user again.

    \b
    Example:
      vaultctl user enable --username alice
    """
    _set_disabled(ctx, username, fmt, False)


@click.group()
def policy() -> None:
    """Manage path policies: which paths a non-admin role may read, list, create...

    Rules are one per line, `PATTERN: capability, capability`, with capabilities read,
    list, create, update, delete, audit. In a pattern a trailing `*` matches anything below,
    `*` elsewhere any characters within one segment, and a `+` segment exactly one segment.

    \b
    Example:
      printf 'app/billing/*: read, list\\n' | vaultctl policy write billing
      vaultctl token create --user-id 7 --role App --policy billing
    """


@policy.command("write")
@click.argument("name")
@click.option(
    "--rules-file",
    type=click.File("r"),
    default="-",
    show_default=True,
    help="File with the rules ('-' reads stdin).",
)
@global_options(show=("user_id",))
@click.pass_context
def policy_write(ctx: click.Context, name: str, rules_file: Any) -> None:
    """Create or replace policy NAME from rules on stdin (or --rules-file).

    \b
    Example:
      printf 'app/billing/*: read, list\\n' | vaultctl policy write billing
    """
    s = _local(ctx, "policy write")
    text = rules_file.read()
    written = s.local(create=True).access.write_policy(name, text, actor=s.actor)
    if not s.quiet:
        click.echo(f"Policy written: {written.name} ({len(written.rules)} rule(s))")


@policy.command("list")
@global_options()
@format_option
@click.pass_context
def policy_list(ctx: click.Context, fmt: str) -> None:
    """List policies and their rules.

    \b
    Example:
      vaultctl policy list
    """
    s = _local(ctx, "policy list")
    found = s.local(need_keys=False).access.list_policies()
    lines = [f"Found {len(found)} policy(ies):"]
    data = []
    for p in found:
        rules = [f"{r.pattern}: {', '.join(sorted(r.capabilities))}" for r in p.rules]
        lines += [f"{p.name}:"] + [f"  {r}" for r in rules]
        data.append({"name": p.name, "rules": rules})
    render.emit(fmt, "\n".join(lines), {"policies": data, "count": len(data)})


@policy.command("delete")
@click.argument("name")
@global_options(show=("user_id",))
@click.pass_context
def policy_delete(ctx: click.Context, name: str) -> None:
    """Delete policy NAME (tokens naming it lose what it granted).

    \b
    Example:
      vaultctl policy delete billing
    """
    s = _local(ctx, "policy delete")
    s.local(need_keys=False).access.delete_policy(name, actor=s.actor)
    if not s.quiet:
        click.echo(f"Policy deleted: {name}")


COMMANDS = [user, policy]
