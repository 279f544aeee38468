"""afcmd --help: every command in a section of what a wrangler does, none cut short."""

from __future__ import annotations

from click.testing import CliRunner

from afcmd import db, jobs, keys, pools, renders, tasks, users  # noqa: F401  (they register)
from afcmd.cli import SECTIONS, cli


def test_help_lists_every_command_by_section_without_truncation() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    sectioned = {name for _, _, names in SECTIONS for name in names}
    assert set(cli.commands) <= sectioned, set(cli.commands) - sectioned  # no "Other"
    assert "Other:" not in result.output
    for title, example, _ in SECTIONS:
        assert f"{title}:" in result.output and f"e.g. {example}" in result.output
    shown = " ".join(result.output.split())
    for name, command in cli.commands.items():
        whole = " ".join(command.get_short_help_str(10_000).split())
        assert f"{name} {whole}" in shown, name  # the whole first sentence, not cut


def test_jhmask_help_explains_find_and_regex_and_how_each_is_chosen() -> None:
    result = CliRunner().invoke(cli, ["jhmask", "--help"])
    text = " ".join(result.output.split())
    assert "hosts_mask_type" in text and "find (the default) a find mask" in text
    assert "starts with" in text and "regular expression over the whole name" in text
