"""The console's administration pages (Admins and SuperAdmins): built-in users (create, change
role or policies, reset password, disable/enable, delete), recorded tokens (list, revoke by
accessor, revoke all of a subject's) and path policies (view, create or replace, delete).

Every decision is the core's Authorizer: `require_admin` for the pages, `require_manage` for a
change to a user or token whose current or new role is given (only a SuperAdmin manages Admin
or SuperAdmin). Every change is audited by the core service that makes it; refusals by the
Authorizer. A refused or invalid form re-renders its page with the error and changes nothing.
Must never: show a password, token or hash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

from strongroom import errors
from strongroom.core.access import UserInfo
from strongroom.core.password_rules import check_new_password
from strongroom.core.policy import check_policy_name, rules_to_json
from strongroom.core.roles import canonical_role
from strongroom.core.token_records import TokenInfo
from strongroom.http.api_admin import user_named
from strongroom.http.ui.web import Page, url_path

__all__ = ["policies", "policy_delete", "tokens", "user", "user_delete", "users"]

#: Errors a form answers with its own page (the message shown next to the form).
_FORM_ERRORS = (errors.InvalidInput, errors.PermissionDenied, errors.NotFound, errors.Conflict)
_DONE = {
    "created": "User created.",
    "role": "Role changed; the user's tokens were revoked.",
    "policies": "Policies changed; the user's tokens were revoked.",
    "password": "Password reset; the user's tokens were revoked.",
    "disable": "User disabled; their tokens were revoked.",
    "enable": "User enabled.",
    "deleted": "User deleted.",
    "revoked": "Token revoked.",
    "revoked_user": "Tokens revoked.",
    "policy": "Policy saved.",
    "policy_deleted": "Policy deleted.",
}


def _names(text: str) -> list[str]:
    """Policy names from a comma- or space-separated field."""
    return [n for n in text.replace(",", " ").split() if n]


def _done(page: Page) -> str | None:
    return _DONE.get(page.request.query_params.get("done", ""))


async def _attempt(
    page: Page,
    change: Callable[[], Awaitable[Response]],
    again: Callable[[Any], Awaitable[Response]],
) -> Response:
    """Run a form's change; on a refusal or bad input, `again(error)` (its page, with the
    error and the matching status)."""
    try:
        return await change()
    except _FORM_ERRORS as exc:
        return await again(exc)


# -- users ----------------------------------------------------------------------------------------
async def users(page: Page) -> Response:
    """Users (GET), and creating one (POST: username, password, role, policies)."""
    caller = page.who()
    await page.st.require_admin(caller, "users")
    access = page.st.vault.access
    form = await page.form() if page.request.method == "POST" else {}

    async def listing(error: Any = None) -> Response:
        found = await page.st.run(access.list_users)
        kept = {k: form.get(k, "") for k in ("username", "role", "policies")}
        code = error.http_status if error is not None else 200
        return page.render(
            "users.html", code, users=found, error=error, form=kept, done=_done(page)
        )

    if page.request.method == "GET":
        return await listing()

    async def create() -> Response:
        username, role = (
            form.get("username", "").strip(),
            canonical_role(form.get("role", "").strip()),
        )
        if not role:
            raise errors.InvalidInput("choose a role")
        await page.st.require_manage(caller, [role], "user_create", f"user:{username}")
        await page.st.run(
            access.create_user,
            username,
            form.get("password", ""),
            role,
            policies=_names(form.get("policies", "")),
            actor=caller.actor,
        )
        return page.redirect(f"/ui/admin/users/{url_path(username)}?done=created")

    return await _attempt(page, create, listing)


async def user(page: Page) -> Response:
    """One user (GET): details, their recorded tokens and the forms that change them; POST one
    change: `action` = role | policies | password | disable | enable | delete."""
    caller = page.who()
    await page.st.require_admin(caller, "users")
    username = page.request.path_params["username"]
    current = await user_named(page.st, username)
    form = await page.form() if page.request.method == "POST" else {}

    async def show(error: Any = None) -> Response:
        now = await user_named(page.st, username)
        found = await page.st.run(page.st.vault.tokens.list_tokens, now.id)
        code = error.http_status if error is not None else 200
        return page.render("user.html", code, u=now, tokens=found, error=error, done=_done(page))

    if page.request.method == "GET":
        return await show()
    action = form.get("action", "")
    if action not in ("role", "policies", "password", "disable", "enable", "delete"):
        return await show(errors.InvalidInput("unknown action"))

    async def change() -> Response:
        return await _change_user(page, current, action, form)

    return await _attempt(page, change, show)


async def _change_user(
    page: Page, current: UserInfo, action: str, form: dict[str, str]
) -> Response:
    caller, access, name = page.who(), page.st.vault.access, current.username
    roles = [current.role]
    new_role = canonical_role(form.get("role", "").strip())
    if action == "role":
        if not new_role:
            raise errors.InvalidInput("choose a role")
        roles.append(new_role)
    await page.st.require_manage(caller, roles, f"user_{action}", f"user:{name}")
    actor = caller.actor
    if action == "role":
        await page.st.run(access.set_user_role, name, new_role, actor=actor)
    elif action == "policies":
        names = _names(form.get("policies", ""))
        for policy in names:
            check_policy_name(policy)
        await page.st.run(access.set_user_policies, name, names, actor=actor)
    elif action == "password":
        password = form.get("password", "")
        if password != form.get("confirm", ""):
            raise errors.InvalidInput("the two passwords differ")
        check_new_password(password)
        await page.st.run(access.reset_password, name, password, actor=actor)
    elif action in ("disable", "enable"):
        await page.st.run(access.set_user_disabled, name, action == "disable", actor=actor)
    else:
        if form.get("confirm") != name:
            raise errors.InvalidInput(f"type the username ({name}) to confirm")
        await page.st.run(access.delete_user, name, actor=actor)
        return page.redirect("/ui/admin/users?done=deleted")
    return page.redirect(f"/ui/admin/users/{url_path(name)}?done={action}")


async def user_delete(page: Page) -> Response:
    """The confirmation page for deleting a user (the POST goes to the user's page)."""
    caller = page.who()
    await page.st.require_admin(caller, "users")
    found = await user_named(page.st, page.request.path_params["username"])
    return page.render("user_delete.html", u=found, error=None)


# -- tokens ---------------------------------------------------------------------------------------
async def tokens(page: Page) -> Response:
    """Recorded tokens (GET, `?user_id=` for one subject's); POST `action` = revoke (by
    `accessor`) | revoke_user (every token of `user_id`)."""
    caller = page.who()
    await page.st.require_admin(caller, "tokens")
    store = page.st.vault.tokens
    raw = page.request.query_params.get("user_id", "").strip()
    form = await page.form() if page.request.method == "POST" else {}

    async def listing(error: Any = None) -> Response:
        subject = _user_id(raw) if raw else None
        found = await page.st.run(store.list_tokens, subject)
        code = error.http_status if error is not None else 200
        return page.render(
            "tokens.html",
            code,
            tokens=found,
            user_id=raw,
            error=error,
            done=_done(page),
            mine=caller.principal.accessor,
        )

    if page.request.method == "GET":
        try:
            return await listing()
        except errors.InvalidInput as exc:
            raw = ""
            return await listing(exc)

    async def revoke() -> Response:
        back = form.get("back", "")
        back = back if back.startswith("/ui/admin/") and "//" not in back else "/ui/admin/tokens"
        sep = "&" if "?" in back else "?"
        if form.get("action") == "revoke_user":
            subject = _user_id(form.get("user_id", ""))
            found: list[TokenInfo] = await page.st.run(store.list_tokens, subject)
            roles = [t.role for t in found]
            person = await page.st.run(page.st.vault.access.get_user, subject)
            roles += [person.role] if person is not None else []
            await page.st.require_manage(caller, roles, "token_revoke_user", f"user-id:{subject}")
            await page.st.run(store.revoke_user, subject, actor=caller.actor)
            return page.redirect(f"{back}{sep}done=revoked_user")
        accessor = form.get("accessor", "")
        info = await page.st.run(store.lookup, accessor)
        await page.st.require_manage(caller, [info.role], "token_revoke", f"token:{accessor}")
        await page.st.run(store.revoke, accessor, actor=caller.actor)
        return page.redirect(f"{back}{sep}done=revoked")

    return await _attempt(page, revoke, listing)


def _user_id(text: str) -> int:
    if not text.strip().isdigit() or len(text.strip()) > 18:
        raise errors.InvalidInput("user id must be a non-negative integer")
    return int(text.strip())


# -- policies -------------------------------------------------------------------------------------
async def policies(page: Page) -> Response:
    """Path policies (GET; `?edit=NAME` fills the form), writing one from JSON or line rules
    (POST `action=write`), or deleting one (POST `action=delete`, after its confirmation)."""
    caller = page.who()
    await page.st.require_admin(caller, "policies")
    access = page.st.vault.access
    form = await page.form() if page.request.method == "POST" else {}

    async def listing(error: Any = None) -> Response:
        found = await page.st.run(access.list_policies)
        shown = {p.name: rules_to_json(p.rules) for p in found}
        editing = page.request.query_params.get("edit", "")
        name = form.get("name", editing if editing in shown else "")
        rules = form.get("rules", shown.get(editing, ""))
        code = error.http_status if error is not None else 200
        return page.render(
            "policies.html",
            code,
            policies=found,
            name=name,
            rules=rules,
            error=error,
            done=_done(page),
        )

    if page.request.method == "GET":
        return await listing()

    async def change() -> Response:
        name = form.get("name", "").strip()
        if form.get("action") == "delete":
            if form.get("confirm") != name:
                raise errors.InvalidInput(f"type the policy name ({name}) to confirm")
            await page.st.run(access.delete_policy, name, actor=caller.actor)
            return page.redirect("/ui/admin/policies?done=policy_deleted")
        await page.st.run(access.write_policy, name, form.get("rules", ""), actor=caller.actor)
        return page.redirect("/ui/admin/policies?done=policy")

    return await _attempt(page, change, listing)


async def policy_delete(page: Page) -> Response:
    """The confirmation page for deleting a policy, naming it and the users who hold it."""
    caller = page.who()
    await page.st.require_admin(caller, "policies")
    name = page.request.path_params["name"]
    if not await page.st.run(page.st.vault.access.get_policies, [name]):
        raise errors.NotFound("policy not found")
    holders = [
        u.username for u in await page.st.run(page.st.vault.access.list_users) if name in u.policies
    ]
    return page.render("policy_delete.html", name=name, holders=holders)
