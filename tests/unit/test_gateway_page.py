"""The original web page's get config and get files: its shapes, and no secret in them."""

from __future__ import annotations

import json
from pathlib import Path

from gateway import page


def test_config_joins_the_installs_defaults_and_ours_without_secrets(tmp_path: Path) -> None:
    (tmp_path / "config_default.json").write_text(
        json.dumps({"cgru_config": {"docs_url": "https://docs", "af_servername": "old"}})
    )
    values = {
        "af_servername": "farm",
        "af_db_conninfo": "postgresql://u:secret@db/af",
        "af_auth_key_file": "/k",
        "af_admins": ["boss"],
        "af_web_port": 51080,
        "odd": object(),
    }
    reply = page.config_reply(str(tmp_path), values)
    installed, ours, env = reply["cgru_config"]
    assert installed == {"cgru_config": {"docs_url": "https://docs", "af_servername": "old"}}
    assert ours == {"cgru_config": {"af_servername": "farm", "af_web_port": 51080}}
    assert env["cgru_environment"]["version"] and env["cgru_environment"]["servedir"] == str(
        tmp_path
    )
    assert "secret" not in json.dumps(reply)
    # without an install, ours and the environment
    assert len(page.config_reply("", values)["cgru_config"]) == 2
    (tmp_path / "config_default.json").write_text("not json")
    assert len(page.config_reply(str(tmp_path), values)["cgru_config"]) == 2


def test_files_lists_one_folder_inside_and_nothing_outside(tmp_path: Path) -> None:
    icons = tmp_path / "gui" / "icons" / "software"
    icons.mkdir(parents=True)
    for name in ("maya.png", "blender.png", ".hidden"):
        (icons / name).write_text("x")
    (icons / "sub").mkdir()
    (tmp_path / "outside.png").write_text("x")
    gui = str(tmp_path / "gui")
    assert page.files_reply(gui, "icons/software") == {
        "path": "icons/software",
        "files": ["blender.png", "maya.png"],
    }
    for path in ("../", "icons/../..", "%2e%2e", "", None, 5, "nothing"):
        assert page.files_reply(gui, path)["files"] == [], path
    assert page.files_reply("", "icons/software")["files"] == []
