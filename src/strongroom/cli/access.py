"""`user` and `policy`: built-in users and path policies for the server's auth (`token`:
`cli.tokens`).

They work on the database directly and need no master key (users and policies are not secrets;
passwords are stored as Argon2id hashes), or in remote mode (`--addr`) through the server's
`/api/vault/users` and `/api/vault/policies` endpoints. Every change is audited.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from strongroom import errors
from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.session import Session, global_options, session_of
from strongroom.cli.totp import totp

if TYPE_CHECKING:
    from strongroom.client import Client

__all__ = ["COMMANDS"]

ROLES_HELP = (
    "Role: SuperAdmin or Admin (any letter case: admin is stored as Admin), or any other name "
    "(granted only what its policies allow)."
)


def _remote(s: Session) -> Client | None:
    """The HTTP client in remote mode, else None (work on the database)."""
    return s.remote() if s.settings.is_remote else None


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
    s = session_of(ctx)
    password = _read_password(password_stdin)
    remote = _remote(s)
    if remote is not None:
        body = {"username": username, "password": password, "role": role}
        data = remote.admin("POST", "/users", {**body, "policies": list(policies)})
    else:
        access = s.local(create=True).access
        data = access.create_user(
            username, password, role, policies=policies, actor=s.actor
        ).as_dict()
    text = f"User created: {data['username']} (id {data['id']}, role {data['role']})"
    render.emit(fmt, text, data, quiet=s.quiet)


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
    s = session_of(ctx)
    remote = _remote(s)
    if remote is not None:
        users: list[dict[str, Any]] = remote.admin("GET", "/users")["users"]
    else:
        users = [u.as_dict() for u in s.local(need_keys=False).access.list_users()]
    lines = [f"Found {len(users)} user(s):"] + [
        f"  {u['id']}  {u['username']}  {u['role']}"
        f"{'  policies: ' + ', '.join(u['policies']) if u['policies'] else ''}"
        f"{'  (disabled)' if u['disabled'] else ''}"
        for u in users
    ]
    render.emit(fmt, "\n".join(lines), {"users": users, "count": len(users)})


def _change(ctx: click.Context, username: str, fmt: str, word: str, **change: Any) -> None:
    """One change of a user (role, policies, password, disabled), locally or remotely."""
    s = session_of(ctx)
    remote = _remote(s)
    if remote is not None:
        data = remote.admin("PATCH", f"/users/{username}", change)
    else:
        access, actor = s.local(need_keys=False).access, s.actor
        if "role" in change:
            info = access.set_user_role(username, change["role"], actor=actor)
        elif "policies" in change:
            info = access.set_user_policies(username, change["policies"], actor=actor)
        elif "password" in change:
            info = access.reset_password(username, change["password"], actor=actor)
        else:
            info = access.set_user_disabled(username, change["disabled"], actor=actor)
        data = info.as_dict()
    render.emit(fmt, f"User {word}: {username}", data, quiet=s.quiet)


def _set_disabled(ctx: click.Context, username: str, fmt: str, disabled: bool) -> None:
    _change(ctx, username, fmt, "disabled" if disabled else "enabled", disabled=disabled)


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


@user.command("set-role")
@click.option("--username", required=True, help="The user.")
@click.option("--role", required=True, help=ROLES_HELP)
@global_options(show=("user_id",))
@format_option
@click.pass_context
def user_set_role(ctx: click.Context, username: str, role: str, fmt: str) -> None:
    """Give a user another role (their tokens are revoked at once).

    \b
    Example:
      vaultctl user set-role --username alice --role Reader
    """
    _change(ctx, username, fmt, "updated", role=role)


@user.command("set-policies")
@click.option("--username", required=True, help="The user.")
@click.option("--policy", "policies", multiple=True, help="Policy name (repeatable; none: clear).")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def user_set_policies(
    ctx: click.Context, username: str, policies: tuple[str, ...], fmt: str
) -> None:
    """Replace a user's policies (their tokens are revoked at once).

    \b
    Example:
      vaultctl user set-policies --username alice --policy billing --policy shipping
    """
    _change(ctx, username, fmt, "updated", policies=list(policies))


@user.command("set-password")
@click.option("--username", required=True, help="The user.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin's first line.")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def user_set_password(ctx: click.Context, username: str, password_stdin: bool, fmt: str) -> None:
    """Reset a user's password: 12+ characters, not a common one (tokens revoked at once).

    \b
    Example:
      printf %s "$NEW_PASSWORD" | vaultctl user set-password --username alice --password-stdin
    """
    _change(ctx, username, fmt, "updated", password=_read_password(password_stdin))


@user.command("delete")
@click.option("--username", required=True, help="The user to delete.")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def user_delete(ctx: click.Context, username: str, fmt: str) -> None:
    """Delete a user and revoke their tokens (audit entries keep the user's id).

    \b
    Example:
      vaultctl user delete --username alice
    """
    s = session_of(ctx)
    remote = _remote(s)
    if remote is not None:
        remote.admin("DELETE", f"/users/{username}")
    else:
        s.local(need_keys=False).access.delete_user(username, actor=s.actor)
    render.emit(fmt, f"User deleted: {username}", {"username": username}, quiet=s.quiet)


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
    s = session_of(ctx)
    text = rules_file.read()
    remote = _remote(s)
    if remote is not None:
        count = len(remote.admin("PUT", f"/policies/{name}", {"rules": text})["rules"])
    else:
        count = len(s.local(create=True).access.write_policy(name, text, actor=s.actor).rules)
    if not s.quiet:
        click.echo(f"Policy written: {name} ({count} rule(s))")


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
    s = session_of(ctx)
    remote = _remote(s)
    if remote is not None:
        data: list[dict[str, Any]] = remote.admin("GET", "/policies")["policies"]
    else:
        data = [
            {
                "name": p.name,
                "rules": [f"{r.pattern}: {', '.join(sorted(r.capabilities))}" for r in p.rules],
            }
            for p in s.local(need_keys=False).access.list_policies()
        ]
    lines = [f"Found {len(data)} policy(ies):"]
    for p in data:
        lines += [f"{p['name']}:"] + [f"  {r}" for r in p["rules"]]
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
    s = session_of(ctx)
    remote = _remote(s)
    if remote is not None:
        remote.admin("DELETE", f"/policies/{name}")
    else:
        s.local(need_keys=False).access.delete_policy(name, actor=s.actor)
    if not s.quiet:
        click.echo(f"Policy deleted: {name}")


user.add_command(totp)
COMMANDS = [user, policy]
