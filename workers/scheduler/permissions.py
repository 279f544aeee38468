"""Who may do what (SPEC A 8): pure decisions over the caller and the objects acted on.

Two roles. A user submits jobs and acts on their own jobs, and may set nimby/NIMBY on their
own workstation's render. Everything else that changes the farm (other users' jobs, the
system job, renders, pools, users) needs the admin role, which a caller asks for
(``"admin": true``, afcmd ``--admin``) and which is granted only to admins: the ``af_admins``
list, the ``afadmin`` system user and the OS user running afserver. Asking is explicit, as
with sudo, so that an admin's everyday command cannot slip onto another user's jobs.

Each check returns None (allowed) or a refusal text that names the missing right; the caller
raises it before anything changes, so a refused request never leaves state half changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from workers.scheduler.systemjob import SYSTEM_USER

ADMIN_ROLE = "the admin role (afcmd --admin, granted to af_admins)"
# A user's own workstation: these render params and operations and nothing else (afcmd
# rnimby/rNIMBY/rfree; the original's tray tool: set free, unpause, eject its tasks).
OWN_RENDER_PARAMS = frozenset({"nimby", "NIMBY", "paused"})
OWN_RENDER_OPERATIONS = frozenset({"eject_tasks", "eject_tasks_keep_my"})


class Owned(Protocol):
    id: int
    name: str
    user_name: str


@dataclass(frozen=True, slots=True)
class Policy:
    """The site's permission settings, read from the configuration at start."""

    admins: frozenset[str] = frozenset({SYSTEM_USER})
    authenticated: bool = False  # af_auth set: every request carries a proven name
    user_mod_job_priority: bool = True  # af_perm_user_mod_job_priority
    user_mod_his_priority: bool = True  # af_perm_user_mod_his_priority


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the user (proven by a key, or as claimed in the trusted mode), the host
    they claim, and whether the admin role was asked for and granted."""

    user: str
    host: str = ""
    admin: bool = False
    proven: bool = False

    @property
    def subject(self) -> str:
        """The `logs` table's who: user@host, marked when acting with the admin role."""
        return f"{self.user or '?'}@{self.host or '?'}" + (" (admin)" if self.admin else "")


def admins(configured: Iterable[str], server_user: str = "") -> frozenset[str]:
    """The af_admins list, the afadmin system user, and whoever runs afserver."""
    return frozenset({SYSTEM_USER, server_user, *configured}) - {""}


def identify(
    claimed_user: str,
    claimed_host: str,
    proven: str | None,
    ask_admin: bool,
    admin_names: frozenset[str],
) -> tuple[Caller, str | None]:
    """The caller of a request, and a refusal when the admin role asked for is not theirs.

    With authentication, the name a key proves wins over the claimed one, except for the
    server's own key (``afadmin``): the server's processes (the web API after checking a
    token) act on behalf of the user they name."""
    if proven is not None and proven != SYSTEM_USER:
        user = proven
    else:
        user = claimed_user or (proven or "")
    caller = Caller(user, claimed_host, admin=False, proven=proven is not None)
    if not ask_admin:
        return caller, None
    if user in admin_names:
        return Caller(user, claimed_host, admin=True, proven=caller.proven), None
    return caller, f"{_who(user)} asked for the admin role but is not an admin (af_admins)"


def _who(user: str) -> str:
    return f"user '{user}'" if user else "an unnamed user"


def _needs_admin(caller: Caller, what: str, right: str) -> str | None:
    if caller.admin:
        return None
    return f"{_who(caller.user)} may not {what}: {right} needs {ADMIN_ROLE}"


def _listed(items: list[Owned]) -> str:
    shown = ", ".join(f"{o.id} '{o.name}' of {o.user_name or '?'}" for o in items[:5])
    return shown + (" …" if len(items) > 5 else "")


def job_action(
    caller: Caller,
    operation: str,
    jobs: list[Owned],
    system_job: Owned | None,
    params: Mapping[str, Any] | None = None,
    user_may_change_priority: bool = True,
) -> str | None:
    """Own jobs: anything (priority as af_perm_user_mod_job_priority says). Other users'
    jobs and the system job: admin."""
    if system_job is not None and any(j is system_job for j in jobs):
        return _needs_admin(caller, f"{operation} the system job", "changing the system job")
    others = [j for j in jobs if j.user_name != caller.user]
    if others:
        return _needs_admin(
            caller, f"{operation} job {_listed(others)}", "acting on other users' jobs"
        )
    if params and "priority" in params and not user_may_change_priority:
        return _needs_admin(
            caller,
            "change a job's priority",
            "changing job priority (af_perm_user_mod_job_priority)",
        )
    return None


def _short_host(name: str) -> str:
    return name.split(".")[0].lower()


def own_render(caller: Caller, render_name: str, render_user: str) -> bool:
    """The caller's workstation: a render on their host, run by (or assigned to) them."""
    return (
        bool(caller.host)
        and _short_host(render_name) == _short_host(caller.host)
        and render_user == caller.user
    )


def own_render_change(operation: str | None, params: Mapping[str, Any] | None) -> bool:
    """What a user may do to their own workstation: nimby/NIMBY either way, unpause (never
    pause: that is a wrangler's), and eject the tasks running there."""
    if operation is not None:
        return operation in OWN_RENDER_OPERATIONS and not params
    if not params or not set(params) <= OWN_RENDER_PARAMS:
        return False
    return params.get("paused", False) is False


def render_action(
    caller: Caller,
    operation: str | None,
    params: Mapping[str, Any] | None,
    renders: Iterable[tuple[str, str]],
) -> str | None:
    """Renders need admin, except nimby / NIMBY / free / unpause / eject tasks on the
    caller's own workstation. ``renders`` are (name, user_name) pairs."""
    if caller.admin:
        return None
    renders = list(renders)
    what = operation or "change " + ", ".join(sorted(params or {}))
    names = ", ".join(n for n, _ in renders[:5]) + (" …" if len(renders) > 5 else "")
    if own_render_change(operation, params):
        strangers = [n for n, u in renders if not own_render(caller, n, u)]
        if not strangers:
            return None
        return _needs_admin(
            caller,
            f"{what} on render(s) {', '.join(strangers[:5])}",
            "nimby, unpause or eject on a render other than your own workstation",
        )
    return _needs_admin(caller, f"{what} on render(s) {names}", "acting on renders")


def pool_action(caller: Caller, what: str, paths: list[str]) -> str | None:
    return _needs_admin(caller, f"{what} on pool(s) {', '.join(paths[:5])}", "changing pools")


def user_action(
    caller: Caller,
    names: list[str],
    params: Mapping[str, Any],
    user_may_change_own_priority: bool = True,
) -> str | None:
    """Users are admin business; a user may set their own priority where
    af_perm_user_mod_his_priority allows it (the original's permission)."""
    if (
        user_may_change_own_priority
        and names == [caller.user]
        and set(params) == {"priority"}
        and caller.user
    ):
        return None
    shown = ", ".join(names[:5])
    return _needs_admin(caller, f"change user(s) {shown}", "changing users")


def request_kind(caller: Caller, kind: str) -> str | None:
    """Request kinds that act on the server itself."""
    if kind in ("reload_config", "save", "db_reset"):
        return _needs_admin(caller, kind.replace("_", " "), "server administration")
    return None


def submission(caller: Caller, job_user: str) -> str | None:
    """Anyone may submit. With a proven identity, submitting in another user's name needs
    admin; in the trusted mode the job's user name is one more claim, taken as is."""
    if not caller.proven or not job_user or job_user == caller.user:
        return None
    return _needs_admin(caller, f"submit a job as user '{job_user}'", "submitting for others")


def render_registration(
    proven: str | None, render_name: str, admin_names: frozenset[str]
) -> str | None:
    """With keys, a render registers under its own key's name (``afcmd keys create HOST``),
    or with the server's or an admin's key; in the trusted mode anyone may."""
    if proven is None or proven == render_name or proven in admin_names:
        return None
    return (
        f"the key of '{proven}' may not register render '{render_name}': a render needs a "
        "key of its own name (afcmd keys create NAME) or an admin's"
    )
