"""`user totp enable|disable USER`: the TOTP second factor of a built-in user's password login.

Locally on the database (the TOTP key comes from `VAULT_TOTP_KEY_FILE`, the server's file), or
in remote mode through `/api/vault/users/<user>/totp`. The seed is printed once, at `enable`;
nothing stores it in clear.
"""

from __future__ import annotations

import click

from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.session import global_options, session_of

__all__ = ["totp"]


@click.group()
def totp() -> None:
    """Turn a user's TOTP second factor on or off (logins then need a code).

    \b
    Example:
      vaultctl user totp enable alice
      vaultctl user totp disable alice
    """


@totp.command("enable")
@click.argument("username")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def totp_enable(ctx: click.Context, username: str, fmt: str) -> None:
    """Give USER a new TOTP seed (replacing any earlier one) and print it once, with the
    otpauth:// URI an authenticator app scans. Locally this needs VAULT_TOTP_KEY_FILE, the
    server's TOTP key file.

    \b
    Example:
      VAULT_TOTP_KEY_FILE=/etc/strongroom/totp.key vaultctl user totp enable alice
      vaultctl --addr https://vault:8200 user totp enable alice --format json
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        data = s.remote().admin("POST", f"/users/{username}/totp")
    else:
        made = s.local(need_keys=False).totp.enable(username, actor=s.actor)
        data = {"username": made.username, "secret": made.secret, "uri": made.uri}
    text = (
        f"TOTP enabled: {username}\n"
        f"Secret: {data['secret']}\n"
        f"URI: {data['uri']}\n"
        "Shown once: add it to an authenticator app now; logins now need a code."
    )
    render.emit(fmt, text, data)


@totp.command("disable")
@click.argument("username")
@global_options(show=("user_id",))
@format_option
@click.pass_context
def totp_disable(ctx: click.Context, username: str, fmt: str) -> None:
    """Remove USER's TOTP seed: the password alone logs in again (audited).

    \b
    Example:
      vaultctl user totp disable alice
    """
    s = session_of(ctx)
    if s.settings.is_remote:
        s.remote().admin("DELETE", f"/users/{username}/totp")
    else:
        s.local(need_keys=False).totp.disable(username, actor=s.actor)
    render.emit(fmt, f"TOTP disabled: {username}", {"username": username}, quiet=s.quiet)
