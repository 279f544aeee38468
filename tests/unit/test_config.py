"""Config defaults and loader: layers, types, errors, masking. No real home, no /etc."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from config import DEFAULTS, Config, ConfigError, format_config, load_config
from config import loader as loader_module
from config.defaults import env_name
from config.logs import setup_logging

# Every key SPEC.md part B section 14 names (plus the root config keys).
_SPEC_TEXT = """
af_servername af_serverport af_ipv6_disable af_ip_trust af_digest_file af_http_serve_dir
af_http_site_index af_http_directory_index af_server_sockets_processing_threads_num
af_server_sockets_readwrite_threads_num af_server_sockets_processing_threads_stack
af_server_sockets_readwrite_threads_stack af_server_linux_epoll af_server_http_wait_close
af_so_server_RCVTIMEO_sec af_so_server_SNDTIMEO_sec af_so_server_TCP_NODELAY
af_so_server_REUSEADDR af_so_server_TCP_CORK af_so_server_LINGER af_so_client_RCVTIMEO_sec
af_so_client_SNDTIMEO_sec af_so_client_TCP_NODELAY af_so_client_REUSEADDR
af_so_client_TCP_CORK af_so_client_LINGER af_server_profiling_sec af_store_folder
af_node_log_lines_max af_priority af_max_running_tasks af_perm_user_mod_his_priority
af_perm_user_mod_job_priority af_cmdprefix af_task_default_capacity af_task_default_service
af_task_progress_change_timeout af_task_log_linesmax af_task_reconnect_timeout
af_task_post_limit_sec af_thumbnail_extensions af_thumbnail_cmd af_errors_avoid_host
af_task_error_retries af_task_errors_same_host af_errors_forgivetime af_max_run_tasks_per_host
af_jobs_life_time af_user_cut_domain_name af_render_cmd_reboot af_render_cmd_shutdown
af_render_cmd_wolsleep af_render_cmd_wolwake af_render_launch_cmds af_render_launch_cmds_exit
af_rendercmds af_rendercmds_admin af_render_gpuinfo_nvidia_cmd
af_render_get_cpu_temperature_mod af_render_get_hw_info_mod af_render_networkif
af_render_hddspace_path af_render_iostat_device af_render_resclasses af_render_nice
af_render_overflow_mem af_render_overflow_swap af_render_overflow_hdd
af_render_task_read_buffer_size af_render_cut_domain_name af_render_windowsmustdie
af_monitor_zombietime af_monitor_render_idle_bar_max af_monitor_render_cpu_hot_min
af_monitor_render_cpu_hot_max af_watch_get_events_sec af_watch_refresh_gui_sec
af_watch_connection_lost_time af_watch_work_user_visible pswd_visor pswd_god af_db_conninfo
af_db_stringquotes af_db_stringnamelen af_db_stringexprlen af_sysjob_tasklife
af_sysjob_tasksmax af_sysjob_wol_service af_sysjob_postcmd_service af_sysjob_events_service
af_wolwake_interval cmd_shell email_smtp_server email_send_cmd email_sender_address_host
pathsmap
"""
SPEC_KEYS = _SPEC_TEXT.split()


@pytest.fixture(autouse=True)
def no_etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the machine's /etc/afanasy/config.json."""
    monkeypatch.setattr(loader_module, "SITE_CONFIG", str(tmp_path / "no-site.json"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def write_json(path: Path, data: object) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def user_file(home: Path, data: object) -> str:
    return write_json(home / ".afanasy" / "config.json", data)


def test_every_spec_key_has_a_default() -> None:
    missing = [key for key in SPEC_KEYS if key not in DEFAULTS]
    assert missing == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("af_serverport", 51000),
        ("af_servername", "127.0.0.1"),
        ("af_sysjob_tasksmax", 1000),
        ("af_sysjob_tasklife", 1800),
        ("af_task_reconnect_timeout", 30),
        ("af_errors_forgivetime", 18000),
        ("af_render_nice", 10),
        ("af_priority", 99),
        ("af_monitor_zombietime", 16),
        ("af_jobs_life_time", 0),
        ("af_server_http_wait_close", 1),
        ("af_watch_connection_lost_time", 20),
        ("af_task_default_capacity", 1000),
        ("af_task_post_limit_sec", 16),
        ("af_errors_avoid_host", 3),
        ("af_render_task_read_buffer_size", 1000000),
        ("af_store_folder", "/var/tmp/afanasy"),
        ("af_render_cmd_shutdown", "shutdown -P 1 afrequest"),
        ("af_db_stringquotes", "$$"),
        ("af_sysjob_wol_service", "wakeonlan"),
        ("af_user_cut_domain_name", True),
        ("cmd_shell", "/bin/sh -c"),
        ("email_sender_address_host", "cgru.info"),
        ("pathsmap", {}),
        ("af_db_conninfo", ""),  # empty = embedded SQLite statistics (DESIGN.md)
        ("af_message_size_max", 64 * 1024 * 1024),
        ("af_broker_request_timeout", 10.0),
        ("af_client_timeout", 4.0),
        ("af_server_bind_address", ""),
    ],
)
def test_default_values(key: str, value: object, home: Path) -> None:
    assert DEFAULTS[key] == value
    assert type(DEFAULTS[key]) is type(value)
    cfg = load_config(environ={}, home=str(home))
    assert cfg[key] == value
    assert cfg.sources[key] == "default"


def test_env_names_are_unique() -> None:
    names = [env_name(key) for key in DEFAULTS]
    assert len(set(names)) == len(names)
    assert env_name("af_serverport") == "AF_SERVERPORT"
    assert env_name("cmd_shell") == "AF_CMD_SHELL"


def test_layer_order_and_sources(tmp_path: Path, home: Path) -> None:
    site = write_json(
        tmp_path / "site.json",
        {"af_serverport": 1, "af_priority": 1, "af_render_nice": 1, "af_sysjob_tasklife": 1},
    )
    user = user_file(home, {"af_priority": 2, "af_render_nice": 2, "af_sysjob_tasklife": 2})
    environ = {"AF_CONFIG": site, "AF_RENDER_NICE": "3", "AF_SYSJOB_TASKLIFE": "3"}
    cfg = load_config({"af_sysjob_tasklife": 4}, environ=environ, home=str(home))

    assert cfg["af_serverport"] == 1
    assert cfg.sources["af_serverport"] == site
    assert cfg["af_priority"] == 2
    assert cfg.sources["af_priority"] == user
    assert cfg["af_render_nice"] == 3
    assert cfg.sources["af_render_nice"] == "environment AF_RENDER_NICE"
    assert cfg["af_sysjob_tasklife"] == 4
    assert cfg.sources["af_sysjob_tasklife"] == "command line"
    assert cfg.sources["af_errors_forgivetime"] == "default"


def test_site_file_default_path_used_when_present(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = write_json(tmp_path / "etc.json", {"af_serverport": 52000})
    monkeypatch.setattr(loader_module, "SITE_CONFIG", etc)
    cfg = load_config(environ={}, home=str(home))
    assert cfg["af_serverport"] == 52000
    assert cfg.sources["af_serverport"] == etc


def test_af_config_replaces_default_site_file(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = write_json(tmp_path / "etc.json", {"af_serverport": 52000, "af_priority": 7})
    monkeypatch.setattr(loader_module, "SITE_CONFIG", etc)
    mine = write_json(tmp_path / "mine.json", {"af_serverport": 53000})
    cfg = load_config(environ={"AF_CONFIG": mine}, home=str(home))
    assert cfg["af_serverport"] == 53000
    assert cfg["af_priority"] == 99  # /etc file not read at all


def test_missing_af_config_file_is_an_error(tmp_path: Path, home: Path) -> None:
    missing = str(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="nope.json"):
        load_config(environ={"AF_CONFIG": missing}, home=str(home))


def test_wrong_type_in_file_names_key_path_and_type(tmp_path: Path, home: Path) -> None:
    site = write_json(tmp_path / "site.json", {"af_serverport": "abc"})
    with pytest.raises(ConfigError) as err:
        load_config(environ={"AF_CONFIG": site}, home=str(home))
    assert str(err.value) == f'af_serverport in {site}: expected int, got str ("abc")'


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("af_serverport", True),  # bool is not an int
        ("af_serverport", 1.5),
        ("af_user_cut_domain_name", 2),
        ("af_thumbnail_extensions", "exr"),
        ("pathsmap", []),
        ("cmd_shell", 1),
        ("af_client_timeout", "4"),
    ],
)
def test_wrong_types_rejected(tmp_path: Path, home: Path, key: str, value: object) -> None:
    user = user_file(home, {key: value})
    with pytest.raises(ConfigError, match=f"{key} in {user}: expected"):
        load_config(environ={}, home=str(home))


def test_type_conversions_from_files(home: Path) -> None:
    user_file(home, {"af_user_cut_domain_name": 0, "af_client_timeout": 7, "af_ip_trust": []})
    cfg = load_config(environ={}, home=str(home))
    assert cfg["af_user_cut_domain_name"] is False
    assert cfg["af_client_timeout"] == 7.0
    assert type(cfg["af_client_timeout"]) is float
    assert cfg["af_ip_trust"] == []


def test_bad_env_value_names_variable(home: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(environ={"AF_SERVERPORT": "abc"}, home=str(home))
    message = str(err.value)
    assert "af_serverport" in message
    assert "AF_SERVERPORT" in message
    assert "expected int" in message


@pytest.mark.parametrize(
    ("name", "text", "key", "value"),
    [
        ("AF_SERVERPORT", "51001", "af_serverport", 51001),
        ("AF_CLIENT_TIMEOUT", "2.5", "af_client_timeout", 2.5),
        ("AF_USER_CUT_DOMAIN_NAME", "No", "af_user_cut_domain_name", False),
        ("AF_RENDER_CUT_DOMAIN_NAME", "yes", "af_render_cut_domain_name", True),
        ("AF_THUMBNAIL_EXTENSIONS", '["exr"]', "af_thumbnail_extensions", ["exr"]),
        ("AF_PATHSMAP", '{"//srv/": "/mnt/"}', "pathsmap", {"//srv/": "/mnt/"}),
        ("AF_CMD_SHELL", "/bin/bash -c", "cmd_shell", "/bin/bash -c"),
    ],
)
def test_env_parsing(home: Path, name: str, text: str, key: str, value: object) -> None:
    cfg = load_config(environ={name: text}, home=str(home))
    assert cfg[key] == value
    assert cfg.sources[key] == f"environment {name}"


@pytest.mark.parametrize(
    ("name", "text"), [("AF_USER_CUT_DOMAIN_NAME", "maybe"), ("AF_PATHSMAP", "[1]")]
)
def test_bad_env_values(home: Path, name: str, text: str) -> None:
    with pytest.raises(ConfigError, match=f"environment {name}"):
        load_config(environ={name: text}, home=str(home))


def test_unrelated_af_env_ignored(home: Path) -> None:
    environ = {"AF_JOB_ID": "x", "AF_HOSTNAME": "h", "AF_NOT_A_KEY": "1", "PATH": "/bin"}
    cfg = load_config(environ=environ, home=str(home))
    assert set(cfg.sources.values()) == {"default"}


def test_invalid_json_file(home: Path) -> None:
    path = home / ".afanasy" / "config.json"
    path.parent.mkdir()
    path.write_text('{"af_serverport": ')
    with pytest.raises(ConfigError, match="not valid JSON") as err:
        load_config(environ={}, home=str(home))
    assert str(path) in str(err.value)


def test_file_must_hold_an_object(tmp_path: Path, home: Path) -> None:
    site = write_json(tmp_path / "site.json", [1, 2])
    with pytest.raises(ConfigError, match="expected a JSON object, got list"):
        load_config(environ={"AF_CONFIG": site}, home=str(home))


def test_unknown_key_warns_and_is_ignored(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    user = user_file(home, {"af_no_such_key": 1, "af_priority": 5})
    with caplog.at_level(logging.WARNING, logger="config"):
        cfg = load_config({"af_other_unknown": 2}, environ={}, home=str(home))
    assert "af_no_such_key" not in cfg
    assert cfg["af_priority"] == 5
    text = caplog.text
    assert "af_no_such_key" in text and user in text
    assert "af_other_unknown" in text


def test_original_cgru_file_layout(home: Path) -> None:
    """A CGRU config.json works as is: wrapper, comments, disabled keys, OS_ sub-objects."""
    user_file(
        home,
        {
            "cgru_config": {
                "": "a comment",
                "-af_serverport": 1,
                "af_priority": 50,
                "OS_unix": {"af_render_nice": 5},
                "OS_windows": {"af_render_nice": 6},
            }
        },
    )
    cfg = load_config(environ={}, home=str(home))
    assert cfg["af_serverport"] == 51000
    assert cfg["af_priority"] == 50
    assert cfg["af_render_nice"] == 5


def test_overrides_skip_none_and_parse_text(home: Path) -> None:
    cfg = load_config({"af_serverport": None, "af_priority": "12"}, environ={}, home=str(home))
    assert cfg.sources["af_serverport"] == "default"
    assert cfg["af_priority"] == 12
    with pytest.raises(ConfigError, match="af_priority in command line: expected int"):
        load_config({"af_priority": [1]}, environ={}, home=str(home))


def test_as_env_round_trip(tmp_path: Path, home: Path) -> None:
    site = write_json(
        tmp_path / "site.json",
        {"af_render_cut_domain_name": False, "pathsmap": {"a": "b"}, "af_serverport": 51000},
    )
    overrides = {
        "af_client_timeout": 0.1,
        "af_thumbnail_extensions": ["png", "é"],
        "cmd_shell": "/bin/bash -c",
        "af_priority": 7,
    }
    cfg = load_config(overrides, environ={"AF_CONFIG": site}, home=str(home))
    env = cfg.as_env()
    assert env["AF_RENDER_CUT_DOMAIN_NAME"] == "0"
    assert env["AF_SERVERPORT"] == "51000"  # set by a layer, even though equal to default
    assert "AF_ERRORS_FORGIVETIME" not in env
    assert "AF_CONFIG" not in env
    child = load_config(environ=env, home=str(home))
    assert dict(child.values) == dict(cfg.values)
    assert child.sources["af_priority"] == "command line"  # the parent's source, not AF_*
    assert child.sources["af_serverport"] == site
    mine = load_config(environ={**env, "AF_PRIORITY": "9"}, home=str(home))
    assert mine.sources["af_priority"] == "environment AF_PRIORITY"  # changed: its own


def test_config_is_read_only(home: Path) -> None:
    cfg = load_config(environ={}, home=str(home))
    with pytest.raises(TypeError):
        cfg.values["af_serverport"] = 1  # type: ignore[index]
    assert cfg.get("no_such_key", "x") == "x"
    with pytest.raises(KeyError):
        cfg["no_such_key"]


def test_format_config_masks_secrets(home: Path) -> None:
    cfg = load_config(
        {"af_db_conninfo": "host=db user=af password='s3 cret' dbname=afanasy"},
        environ={"AF_PSWD_GOD": "godhash"},
        home=str(home),
    )
    text = format_config(cfg)
    assert "s3 cret" not in text and "godhash" not in text
    assert DEFAULTS["pswd_visor"] not in text
    assert 'af_db_conninfo = "host=db user=af password=*** dbname=afanasy"' in text
    assert 'pswd_god = "***"    (environment AF_PSWD_GOD)' in text
    assert "af_serverport = 51000    (default)" in text
    lines = text.splitlines()
    assert len(lines) == len(DEFAULTS)
    assert lines == sorted(lines)


def test_format_config_masks_default_and_uri_conninfo(home: Path) -> None:
    assert "AfPassword" not in format_config(load_config(environ={}, home=str(home)))
    cfg = Config(
        {"af_db_conninfo": "postgresql://afadmin:hunter2@db/afanasy"}, {"af_db_conninfo": "x"}
    )
    assert "hunter2" not in format_config(cfg)


def test_error_messages_mask_secrets(home: Path) -> None:
    user_file(home, {"pswd_god": 12345})
    with pytest.raises(ConfigError) as err:
        load_config(environ={}, home=str(home))
    assert "12345" not in str(err.value)
    assert "pswd_god" in str(err.value)


def test_setup_logging_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    try:
        setup_logging(0, "afserver")
        setup_logging(1, "afserver")
        assert root.level == logging.DEBUG
        logging.getLogger("broker").debug("hello")
        err = capsys.readouterr().err
        assert err.count("hello") == 1
        assert " DEBUG afserver[" in err and "] broker: hello" in err
        setup_logging(-1, "afserver")
        assert root.level == logging.WARNING
    finally:
        for handler in list(root.handlers):
            if handler not in saved_handlers:
                root.removeHandler(handler)
        root.setLevel(saved_level)


def test_defaults_not_shared_with_config(home: Path) -> None:
    cfg = load_config(environ={}, home=str(home))
    cfg["af_ip_trust"].append("10.*")  # type: ignore[attr-defined]
    assert "10.*" not in DEFAULTS["af_ip_trust"]  # type: ignore[operator]


def test_shown_config_is_masked_data_and_names_what_was_read(home: Path) -> None:
    from config.loader import shown_config, sources_read

    site = home / "site.json"
    site.write_text(json.dumps({"af_store_db": "postgresql://af:hunter2@db/farm"}))
    cfg = load_config(environ={"AF_CONFIG": str(site), "AF_PSWD_GOD": "godhash"}, home=str(home))
    shown = shown_config(cfg)
    assert set(shown) == set(DEFAULTS)
    assert shown["pswd_god"] == {"value": "***", "source": "environment AF_PSWD_GOD"}
    assert shown["af_store_db"]["value"] == "postgresql://af:***@db/farm"
    assert "hunter2" not in json.dumps(shown) and "godhash" not in json.dumps(shown)
    assert sources_read(shown) == [str(site), "environment AF_PSWD_GOD"]
