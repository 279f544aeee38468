"""The job format reference (afcmd job keys) against the schemas and builder it describes."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from afcmd import jobs  # noqa: F401  (registers the job commands)
from afcmd.cli import cli
from tests.conftest import help_examples
from workers.scheduler import jobformat
from workers.scheduler.submit import build_job
from workers.scheduler.users import User


@pytest.mark.parametrize("level", list(jobformat.LEVELS))
def test_every_accepted_key_has_a_meaning_and_no_meaning_is_of_a_key_that_does_not_exist(
    level: str,
) -> None:
    schema, meanings, _ = jobformat.LEVELS[level]
    assert set(schema) - set(meanings) == set(), "keys the validator accepts, undocumented"
    assert set(meanings) - set(schema) == set(), "documented keys the validator refuses"
    assert all(m.strip() for m in meanings.values())
    assert [k.name for k in jobformat.keys(level)] == list(schema)


def _minimal() -> dict:
    return {"name": "j", "blocks": [{"tasks": [{"command": "true"}]}]}


def test_documented_defaults_are_what_a_job_without_the_key_is_built_with() -> None:
    job = build_job(_minimal(), job_id=1, user=User(id=1, name="u"), now=1.0)
    checked = 0
    for level, obj in (("job", job), ("block", job.blocks[0])):
        for key in jobformat.keys(level):
            value = getattr(obj, key.name, None)
            if isinstance(value, (bool, int, float, str)) and key.default not in ("required",):
                shown = jobformat._shown(value)
                if (level, key.name) not in jobformat._DEFAULTS:
                    assert key.default == shown, (level, key.name, key.default, shown)
                    checked += 1
    assert checked > 40  # the comparison ran over the reference, not over nothing


def test_types_carry_bounds_and_choices() -> None:
    rows = {k.name: k for k in jobformat.keys("job")}
    assert rows["priority"].type == "int 0..255"
    assert rows["hosts_mask_type"].type == "find | regex"
    assert rows["hosts_mask_type"].default == "find"
    assert rows["name"].default == rows["blocks"].default == "required"


def test_afcmd_job_keys_prints_every_level_or_one_and_json() -> None:
    runner = CliRunner()
    every = runner.invoke(cli, ["job", "keys"])
    assert every.exit_code == 0, every.output
    for level in ("job", "block", "task"):
        assert f"{level} keys:" in every.output
    assert "depend_mask" in every.output and "errors_retries" in every.output
    block = runner.invoke(cli, ["job", "keys", "block"])
    assert "job keys:" not in block.output and "frames_per_task" in block.output
    data = json.loads(runner.invoke(cli, ["job", "keys", "task", "--json"]).output)
    assert [k["name"] for k in data["task"]] == ["name", "command", "files", "environment"]
    assert runner.invoke(cli, ["job", "keys", "nope"]).exit_code == 2


def test_submit_help_examples_are_jobs_the_server_builds() -> None:
    result = CliRunner().invoke(cli, ["job", "submit", "--help"])
    assert result.exit_code == 0
    examples = help_examples(result.output)
    assert len(examples) == 3, result.output
    built = [build_job(e, job_id=1, user=User(id=1, name="u"), now=1.0) for e in examples]
    assert built[1].blocks[0].numeric and built[1].blocks[0].tasks_num == 10
    assert built[2].hosts_mask is not None and built[2].hosts_mask.mode == "find"
    assert built[2].hosts_mask.match("farm07") and not built[2].hosts_mask.match("desk1")
    assert re.search(r"afcmd job keys", result.output)
