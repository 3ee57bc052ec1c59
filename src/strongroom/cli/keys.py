"""`vaultctl rotate`: re-encrypt one secret, or rotate the master key of the whole vault."""

from __future__ import annotations

import sys

import click

from strongroom import errors
from strongroom.api import VaultAPI
from strongroom.cli import render
from strongroom.cli.inputs import format_option
from strongroom.cli.progress import progress_bar
from strongroom.cli.session import Session, global_options, read_key_file, session_of

__all__ = ["COMMANDS", "rotate"]

VAULT_WIDE = (
    "master-key rotation is vault-wide: use 'vaultctl rotate --all --new-master-key KEY' "
    "(one secret under a different master key would be unreadable)"
)


def _new_master_key(s: Session, flag: str | None, key_file: str | None) -> str:
    """The new master key from --new-master-key, --new-master-key-file or a TTY prompt.

    Raises:
        UsageError: none given and no terminal to ask on.
        InvalidInput: unreadable key file.
    """
    if flag is not None:
        s.warn_key_on_command_line()
        return flag
    if key_file is not None:
        return read_key_file(key_file)
    if sys.stdin is not None and sys.stdin.isatty():
        key: str = click.prompt(
            "New master key", hide_input=True, confirmation_prompt=True, err=True
        )
        return key
    raise click.UsageError(
        "--all needs the new master key: --new-master-key-file FILE (or --new-master-key KEY)"
    )


@click.command()
@click.option(
    "--path", metavar="PATH", help="Re-encrypt this secret's versions under the newest data key."
)
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Rotate the master key: re-wrap the root key "
    "and re-encrypt every version of every secret.",
)
@click.option("--new-master-key", metavar="KEY", help="The new master key (with --all).")
@click.option(
    "--new-master-key-file", metavar="FILE", help="Read the new master key from FILE (with --all)."
)
@click.option(
    "--resume",
    is_flag=True,
    help="Finish an interrupted --all rotation: the vault "
    "is opened with the current or the new master key, whichever works.",
)
@global_options(show=("user_id",))
@format_option
@click.pass_context
def rotate(
    ctx: click.Context,
    path: str | None,
    all_: bool,
    new_master_key: str | None,
    new_master_key_file: str | None,
    resume: bool,
    fmt: str,
) -> None:
    """Rotate keys: one secret (--path) or the master key of the whole vault (--all).

    After `rotate --all` the old master key no longer opens the vault: set
    VAULT_MASTER_KEY to the new one. A rotation interrupted by a crash loses nothing;
    run it again with --resume to finish it.

    \b
    Example:
      vaultctl rotate --path "database/postgres/password" --user-id 1
      vaultctl rotate --all --new-master-key-file new-key.txt --user-id 1
      vaultctl rotate --all --resume --new-master-key-file new-key.txt
    """
    s = session_of(ctx)
    if resume:
        all_ = True
    if path is not None and all_:
        raise click.UsageError("use either --path PATH or --all, not both")
    if path is not None:
        if new_master_key is not None or new_master_key_file is not None:
            raise errors.InvalidInput(VAULT_WIDE)
        result = s.unlocked().rotate_secret(path, actor=s.actor)
        message = "Secret rotated successfully"
        render.emit(
            fmt,
            f"{message}: {path} ({result.reencrypted} version(s) re-encrypted under "
            f"key term {result.term})",
            {
                "message": message,
                "path": path,
                "term": result.term,
                "reencrypted": result.reencrypted,
                "secrets": result.secrets,
            },
            quiet=s.quiet,
        )
        return
    if not all_:
        raise click.UsageError("give --path PATH or --all --new-master-key-file FILE")
    new_key = _new_master_key(s, new_master_key, new_master_key_file)
    opened_with_new = False
    if resume:
        api, opened_with_new = _unlock_for_resume(s, new_key)
    else:
        api = s.unlocked()
    if opened_with_new and not s.local().rotation.is_unfinished():
        # The new key already opens the vault and nothing is unfinished: the rotation is done.
        render.emit(
            fmt,
            "Nothing to resume: the master-key rotation is complete",
            {"message": "nothing to resume", "term": None, "reencrypted": 0, "secrets": 0},
            quiet=s.quiet,
        )
        return
    with progress_bar("Re-encrypting secrets") as update:
        if opened_with_new:
            result = s.local().rotation.resume(actor=s.actor, progress=update)
        else:
            result = api.rotate_all(new_key, actor=s.actor, progress=update)
    message = "Master key rotated successfully"
    render.emit(
        fmt,
        f"{message}: {result.reencrypted} version(s) of {result.secrets} secret(s) "
        f"re-encrypted under key term {result.term}",
        {
            "message": message,
            "term": result.term,
            "reencrypted": result.reencrypted,
            "secrets": result.secrets,
        },
        quiet=s.quiet,
    )
    if fmt == "text" and not s.quiet:
        click.echo(
            "Set VAULT_MASTER_KEY to the new master key: the old one no longer opens the vault.",
            err=True,
        )


def _unlock_for_resume(s: Session, new_key: str) -> tuple[VaultAPI, bool]:
    """Unlock with the configured key or, when the interrupted rotation already re-wrapped the
    root key, with the new one; say whether the new one was used.

    Re-running `rotate_all` with the key the vault now opens with finishes the re-encryption.
    """
    api = s.api()
    if s.settings.is_remote:
        return api, False
    key = s.master_key()
    assert key is not None  # noqa: S101 - prompt=True never returns None
    try:
        api.unlock(key, actor=s.actor)
        return api, False
    except errors.InvalidMasterKey:
        api.unlock(new_key, actor=s.actor)
        return api, True


COMMANDS: list[click.Command] = [rotate]
