"""`vaultctl webhook add|list|remove|test`: Admins configure webhooks (local or remote mode).

Local mode calls `vault.events`; remote mode the server's `/api/vault/webhooks`. Both render the
same JSON shape (`http.api_webhooks.webhook_json`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.session import global_options, session_of
from strongroom.core.webhook_rules import EVENTS

if TYPE_CHECKING:
    from strongroom.client import Client
    from strongroom.core import Vault

__all__ = ["COMMANDS", "webhook"]


def _api(ctx: click.Context) -> Vault | Client:
    # Loaded here, not with the command group: `vaultctl get` must not pay for them.
    from strongroom.client import Client
    from strongroom.core import Vault

    api = session_of(ctx).unlocked()
    assert isinstance(api, Vault | Client)  # noqa: S101 - the session yields one of the two
    return api


def webhook_json(hook: Any) -> dict[str, Any]:
    """A stored webhook as the server's API shows it (local mode prints the same)."""
    from strongroom.http.api_webhooks import webhook_json as shape

    return shape(hook)


@click.group()
def webhook() -> None:
    """Configure webhooks: signed HTTP callbacks for secret, vault and audit events.

    \b
    Example:
      vaultctl webhook add --url https://hooks.example.com/strongroom --event secret.expiring
      vaultctl webhook list
    """


@webhook.command()
@click.option("--url", required=True, help="Where to POST events (http:// or https://).")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(EVENTS),
    help="Only this event (repeatable; default: every event).",
)
@click.option("--path-prefix", default="", help="Only events about paths starting with this.")
@click.option(
    "--allow-link-local",
    is_flag=True,
    help="Allow a link-local address (169.254.0.0/16, fe80::/10: cloud metadata services).",
)
@global_options()
@format_option
@click.pass_context
def add(
    ctx: click.Context,
    url: str,
    events: tuple[str, ...],
    path_prefix: str,
    allow_link_local: bool,
    fmt: str,
) -> None:
    """Add a webhook and print its signing secret (shown once: keep it in the receiver).

    \b
    Example:
      vaultctl webhook add --url https://hooks.example.com/s --event secret.updated \\
        --path-prefix app/
    """
    api = _api(ctx)
    from strongroom.core import Vault  # loaded on use, see _api

    data: dict[str, Any]
    if isinstance(api, Vault):
        added = api.events.add(
            url, events=list(events), path_prefix=path_prefix, allow_link_local=allow_link_local
        )
        data = {**webhook_json(added.webhook), "secret": added.secret}
    else:
        data = api.webhooks.add(
            url, events=list(events), path_prefix=path_prefix, allow_link_local=allow_link_local
        )
    text = (
        f"Webhook {data['id']} added for {data['url']}\n"
        f"Signing secret (shown once): {data['secret']}"
    )
    render.emit(fmt, text, data)


@webhook.command(name="list")
@global_options()
@format_option
@click.pass_context
def list_webhooks(ctx: click.Context, fmt: str) -> None:
    """List webhooks with their pending and failed deliveries.

    \b
    Example:
      vaultctl webhook list
    """
    api = _api(ctx)
    from strongroom.core import Vault  # loaded on use, see _api

    hooks: list[dict[str, Any]] = (
        [webhook_json(h) for h in api.events.list()]
        if isinstance(api, Vault)
        else api.webhooks.list()
    )
    lines = [f"Found {len(hooks)} webhook(s):"]
    for h in hooks:
        lines += [
            "",
            f"ID: {h['id']}",
            f"URL: {h['url']}",
            f"Events: {', '.join(h['events']) or 'all'}",
            f"Path prefix: {h['path_prefix'] or '(any)'}",
            f"Pending: {h['pending']}  Failed: {h['failed']}",
        ]
        if h["last_error"]:
            lines.append(f"Last error: {h['last_error']}")
    render.emit(fmt, "\n".join(lines), {"webhooks": hooks})


@webhook.command()
@click.option("--id", "webhook_id", type=int, required=True, help="The webhook's id.")
@global_options()
@click.pass_context
def remove(ctx: click.Context, webhook_id: int) -> None:
    """Remove a webhook (and its undelivered events).

    \b
    Example:
      vaultctl webhook remove --id 3
    """
    api = _api(ctx)
    from strongroom.core import Vault  # loaded on use, see _api

    if isinstance(api, Vault):
        api.events.remove(webhook_id)
    else:
        api.webhooks.remove(webhook_id)
    click.echo(f"Webhook {webhook_id} removed")


@webhook.command()
@click.option("--id", "webhook_id", type=int, required=True, help="The webhook's id.")
@global_options()
@click.pass_context
def test(ctx: click.Context, webhook_id: int) -> None:
    """Queue a `webhook.test` event for one webhook (a server sends it within seconds).

    \b
    Example:
      vaultctl webhook test --id 3
    """
    api = _api(ctx)
    from strongroom.core import Vault  # loaded on use, see _api

    event_id = (
        api.events.test(webhook_id) if isinstance(api, Vault) else api.webhooks.test(webhook_id)
    )
    click.echo(f"Test event {event_id} queued for webhook {webhook_id}")


COMMANDS: list[click.Command] = [webhook]
