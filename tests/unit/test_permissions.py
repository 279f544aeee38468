"""Who may do what: the pure decisions of workers/scheduler/permissions.py."""

from __future__ import annotations

from dataclasses import dataclass

from workers.scheduler import permissions as perms

ADMINS = perms.admins(["boss"], "root")


@dataclass
class J:
    id: int
    name: str
    user_name: str


def caller(user: str, host: str = "ws1", admin: bool = False, proven: bool = False) -> perms.Caller:
    return perms.Caller(user, host, admin, proven)


def test_admins_are_the_list_afadmin_and_the_server_user() -> None:
    assert perms.admins(["boss", ""], "root") == {"boss", "afadmin", "root"}
    assert perms.admins([], "") == {"afadmin"}


def test_the_admin_role_is_granted_to_admins_only() -> None:
    who, refusal = perms.identify("boss", "ws1", None, True, ADMINS)
    assert who.admin and refusal is None
    who, refusal = perms.identify("alice", "ws1", None, True, ADMINS)
    assert not who.admin and refusal is not None
    assert "alice" in refusal and "not an admin" in refusal
    who, refusal = perms.identify("boss", "ws1", None, False, ADMINS)
    assert not who.admin and refusal is None  # an admin acts as a user unless asking


def test_a_proven_name_wins_over_the_claimed_one() -> None:
    who, _ = perms.identify("boss", "ws1", "alice", True, ADMINS)
    assert who.user == "alice" and who.proven and not who.admin
    # the server's own key acts for the user it names (web API after a token check)
    who, _ = perms.identify("bob", "web", "afadmin", False, ADMINS)
    assert who.user == "bob" and who.proven
    who, _ = perms.identify("", "web", "afadmin", False, ADMINS)
    assert who.user == "afadmin"


def test_a_user_acts_on_own_jobs_only() -> None:
    mine, theirs = J(2, "a", "alice"), J(3, "b", "bob")
    assert perms.job_action(caller("alice"), "pause", [mine], None) is None
    refusal = perms.job_action(caller("alice"), "delete", [mine, theirs], None)
    assert refusal is not None
    assert "acting on other users' jobs needs the admin role" in refusal
    assert "3 'b' of bob" in refusal and "delete" in refusal
    assert perms.job_action(caller("alice", admin=True), "delete", [theirs], None) is None


def test_the_system_job_needs_admin_even_for_its_owner() -> None:
    system = J(1, "afanasy", "afadmin")
    refusal = perms.job_action(caller("afadmin"), "pause", [system], system)
    assert refusal is not None and "changing the system job" in refusal
    assert perms.job_action(caller("afadmin", admin=True), "pause", [system], system) is None


def test_job_priority_follows_af_perm_user_mod_job_priority() -> None:
    mine = J(2, "a", "alice")
    assert perms.job_action(caller("alice"), "change", [mine], None, {"priority": 5}) is None
    refusal = perms.job_action(caller("alice"), "change", [mine], None, {"priority": 5}, False)
    assert refusal is not None and "af_perm_user_mod_job_priority" in refusal


def test_renders_need_admin_except_nimby_on_your_own_workstation() -> None:
    alice = caller("alice", host="ws1.studio.lan")
    own = [("ws1", "alice")]
    assert perms.render_action(alice, None, {"nimby": True}, own) is None
    assert perms.render_action(alice, None, {"nimby": False, "NIMBY": False}, own) is None
    refusal = perms.render_action(alice, None, {"nimby": True}, [("farm01", "render")])
    assert refusal is not None and "your own workstation" in refusal and "farm01" in refusal
    # the workstation's render run by someone else is not hers
    assert perms.render_action(alice, None, {"nimby": True}, [("ws1", "bob")]) is not None
    refusal = perms.render_action(alice, None, {"paused": True}, own)
    assert refusal is not None and "acting on renders" in refusal
    refusal = perms.render_action(alice, None, {"paused": True, "nimby": False}, own)
    assert refusal is not None and "acting on renders" in refusal
    assert perms.render_action(alice, "exit", None, own) is not None
    assert perms.render_action(caller("boss", admin=True), "exit", None, [("farm01", "")]) is None


def test_pools_users_and_server_administration_need_admin() -> None:
    alice = caller("alice")
    assert "changing pools" in (perms.pool_action(alice, "add_pool", ["/"]) or "")
    assert perms.pool_action(caller("x", admin=True), "add_pool", ["/"]) is None
    assert "changing users" in (perms.user_action(alice, ["bob"], {"priority": 1}) or "")
    assert perms.user_action(alice, ["alice"], {"priority": 1}) is None
    assert perms.user_action(alice, ["alice"], {"priority": 1}, False) is not None
    assert perms.user_action(alice, ["alice"], {"max_running_tasks": 9}) is not None
    assert perms.request_kind(alice, "reload_config") is not None
    assert perms.request_kind(alice, "get") is None


def test_submitting_in_another_name_needs_admin_only_when_proven() -> None:
    assert perms.submission(caller("alice"), "bob") is None  # trusted: a claim like any other
    assert perms.submission(caller("alice", proven=True), "alice") is None
    assert perms.submission(caller("alice", proven=True), "") is None
    refusal = perms.submission(caller("alice", proven=True), "bob")
    assert refusal is not None and "submitting for others" in refusal
    assert perms.submission(caller("boss", proven=True, admin=True), "bob") is None


def test_a_render_registers_under_its_own_key() -> None:
    assert perms.render_registration(None, "farm01", ADMINS) is None
    assert perms.render_registration("farm01", "farm01", ADMINS) is None
    assert perms.render_registration("afadmin", "postcmd@srv", ADMINS) is None
    refusal = perms.render_registration("alice", "farm01", ADMINS)
    assert refusal is not None and "farm01" in refusal


def test_the_subject_marks_the_admin_role() -> None:
    assert caller("alice").subject == "alice@ws1"
    assert caller("boss", admin=True).subject == "boss@ws1 (admin)"
    assert perms.Caller("", "").subject == "?@?"


def test_the_tray_tool_may_unpause_free_and_eject_its_own_workstation() -> None:
    alice = caller("alice", host="ws1")
    own = [("ws1.studio.lan", "alice")]
    assert perms.render_action(alice, None, {"paused": False}, own) is None
    assert perms.render_action(alice, None, {"nimby": False, "NIMBY": False}, own) is None
    assert perms.render_action(alice, "eject_tasks", None, own) is None
    assert perms.render_action(alice, "eject_tasks_keep_my", None, own) is None
    refusal = perms.render_action(alice, "eject_tasks", None, [("ws2", "alice")])
    assert refusal is not None and "your own workstation" in refusal and "ws2" in refusal
    assert perms.render_action(alice, None, {"paused": False}, [("farm01", "render")])
    assert perms.render_action(alice, "eject_tasks", {"nimby": True}, own) is not None
    assert perms.render_action(alice, "tickets", None, own) is not None
