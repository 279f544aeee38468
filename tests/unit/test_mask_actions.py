"""Actions that carry masks: refused whole, with the field named, before anything changes."""

from __future__ import annotations

import pytest

from broker.validate import Invalid
from workers.scheduler import permissions as perms
from workers.scheduler import requests
from workers.scheduler.farm import Farm
from workers.scheduler.pools import Builtins

NOW = 1000.0
ALICE = perms.Caller("alice", "ws1", False, False)


def job(name: str, **extra: object) -> dict[str, object]:
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 2, "command": "true"}
    return {"name": name, "blocks": [block], **extra}


def test_a_bad_mask_in_params_changes_no_job() -> None:
    """Job 1 takes regex masks, job 2 find masks: `farm.*` is fine for the first only, and
    the action is refused before the first job changes."""
    farm = Farm(Builtins(), NOW)
    first = farm.add_job(job("shot_a", hosts_mask_type="regex"), "alice", "ws1", NOW)
    second = farm.add_job(job("shot_b"), "alice", "ws1", NOW)
    action = {
        "type": "jobs",
        "mask": "shot_.*",
        "operation": {"type": "pause"},
        "params": {"priority": 7, "hosts_mask": "farm.*"},
    }
    with pytest.raises(Invalid) as err:
        requests.action(farm, action, ALICE, NOW)
    assert err.value.path == "params.hosts_mask" and "hosts_mask_type" in str(err.value)
    for j in (first, second):
        assert (j.priority, j.paused, j.hosts_mask) == (99, False, None)


def test_a_catastrophic_action_mask_is_answered_at_once() -> None:
    farm = Farm(Builtins(), NOW)
    farm.add_job(job("a" * 40 + "!"), "alice", "ws1", NOW)
    action = {"type": "jobs", "mask": "(a+)+$", "operation": {"type": "pause"}}
    with pytest.raises(Exception, match="no job matches"):
        requests.action(farm, action, ALICE, NOW)


@pytest.mark.parametrize(
    ("mask", "words"),
    [("(", "missing )"), ("(?<=x)y", "lookbehind"), ("x" * 2000, "at most 1024")],
)
def test_list_masks_are_refused_with_the_field(mask: str, words: str) -> None:
    farm = Farm(Builtins(), NOW)
    for kind in ("jobs", "renders"):
        with pytest.raises(Invalid) as err:
            requests.get(farm, None, {"type": kind, "mask": mask}, NOW, {})
        assert err.value.path == "mask" and words in str(err.value)


def test_a_mask_matching_the_system_job_alone_says_so_not_an_admin_refusal() -> None:
    from workers.scheduler.farm import NotFound

    farm = Farm(Builtins(), NOW)
    farm.create_system_job(("postcmd", "wakeonlan", "events"), 2, 1800, 1000, NOW)
    delete = {"type": "jobs", "mask": ".*", "operation": {"type": "delete"}}
    with pytest.raises(NotFound) as err:
        requests.action(farm, delete, ALICE, NOW)
    assert str(err.value) == (
        "no job matches '.*' but the system job 'afanasy', which is never deleted"
    )
    pause = {"type": "jobs", "mask": "a.*", "operation": {"type": "pause"}}
    with pytest.raises(NotFound) as err:
        requests.action(farm, pause, ALICE, NOW)
    assert "but the system job 'afanasy'" in str(err.value) and "--admin" in str(err.value)
    admin = perms.Caller("root", "ws1", True, False)
    requests.action(farm, pause, admin, NOW)  # an admin naming it alone acts on it
    assert farm.sysjob is not None and farm.sysjob.job.paused
