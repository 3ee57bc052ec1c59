"""Transitional: the `Vault` method names the HTTP adapter still calls, mapped onto the services.

The HTTP adapter (`strongroom.http`) is being restructured on another branch; until it calls
`vault.kv.*`, `vault.access.*` and `vault.authorizer` with an `Actor`, these names keep it
working unchanged, with its keyword form (`user_id=`, `ip=`, `request_id=`). They are not part
of the library contract, not counted as `Vault` methods, and `HTTP_NAMES` lists every one
(`Vault.get_policies` is a real method, because http/state.py needs its exact type):
delete an entry when its last caller has moved (docs/decisions.md, "Core shape").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from strongroom import errors
from strongroom.models import DEFAULT_ACTOR, Actor

__all__ = ["HTTP_NAMES", "moved_method"]

#: Old `Vault` name -> (service attribute path, method name) for calls taking the keyword form.
HTTP_NAMES: dict[str, tuple[str, str]] = {
    "kv_write": ("kv", "write"),
    "kv_read": ("kv", "read"),
    "kv_patch": ("kv", "patch"),
    "kv_subkeys": ("kv", "subkeys"),
    "kv_delete_latest": ("kv", "delete_latest"),
    "kv_delete_versions": ("kv", "delete_versions"),
    "kv_undelete": ("kv", "undelete"),
    "kv_destroy": ("kv", "destroy"),
    "kv_exists": ("kv", "exists"),
    "kv_read_metadata": ("kv.metadata", "read"),
    "kv_write_metadata": ("kv.metadata", "write"),
    "kv_patch_metadata": ("kv.metadata", "patch"),
    "kv_delete_metadata": ("kv.metadata", "delete"),
    "kv_list": ("kv.metadata", "list"),
    "kv_read_config": ("kv.metadata", "read_config"),
    "kv_write_config": ("kv.metadata", "write_config"),
    "get_user": ("access", "get_user"),
    "authenticate": ("access", "authenticate"),
    "secrets_nearing_expiry": ("secrets", "count_expiring"),
    # Positional forms, adapted below.
    "record_denied": ("access", "record_denied"),
    "record_failure": ("access", "record_failure"),
    "lock_idle": ("state", "auto_lock"),
}

_AUDIT_KEYWORDS = ("user_id", "ip", "request_id")


def _target(vault: object, where: str, method: str) -> Callable[..., Any]:
    obj: object = vault
    for part in where.split("."):
        obj = getattr(obj, part)
    fn: Callable[..., Any] = getattr(obj, method)
    return fn


def _with_actor(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Accept the old keyword form and pass one `Actor` instead."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if any(k in kwargs for k in _AUDIT_KEYWORDS):
            kwargs["actor"] = Actor(
                kwargs.pop("user_id", DEFAULT_ACTOR.user_id),
                kwargs.pop("ip", DEFAULT_ACTOR.ip),
                kwargs.pop("request_id", None),
            )
        return fn(*args, **kwargs)

    return call


def moved_method(vault: object, name: str) -> Callable[..., Any]:
    """The service method behind an old `Vault` name used by the HTTP adapter.

    Raises:
        AttributeError: `name` is not one of `HTTP_NAMES`.
    """
    if name not in HTTP_NAMES:
        raise AttributeError(f"'Vault' object has no attribute {name!r}")
    fn = _target(vault, *HTTP_NAMES[name])
    if name == "record_denied":
        return lambda action, path, user_id, ip, request_id=None: fn(
            action, path, Actor(user_id, ip, request_id)
        )
    if name == "record_failure":
        return lambda action, path, user_id, ip, error, request_id=None: fn(
            action, path, Actor(user_id, ip, request_id), _check_error(error)
        )
    if name == "authenticate":
        return lambda username, password, *, ip="cli", request_id=None: fn(
            username, password, actor=Actor(0, ip, request_id)
        )
    if name == "secrets_nearing_expiry":
        return lambda within: fn(_check_within(within))
    return _with_actor(fn)


def _check_error(error: object) -> errors.StrongroomError:
    if not isinstance(error, errors.StrongroomError):
        raise TypeError("error must be a StrongroomError")
    return error


def _check_within(within: object) -> timedelta:
    if not isinstance(within, timedelta):
        raise TypeError("within must be a timedelta")
    return within
