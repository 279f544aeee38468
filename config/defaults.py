"""Every configuration key with its default value.

Names and values are the original Afanasy's (CGRU ``config_default.json`` and
``afanasy/config_default.json``, Unix flavour), so that an administrator's knowledge and
existing ``config.json`` files carry over. Where the original's compiled fallback differs
from its shipped config, the shipped config value is used: that is what a farm ran with.

The type of each default is the type the loader enforces for that key, so a key whose
original value is unset still gets an empty value of the right type here.
"""

from __future__ import annotations

_MD5_IDKFA = "1832116180fdc61b64fd978401e462e9"
_MD5_IDDQD = "73bcaaa458bff0d27989ed331b68b64d"

DEFAULTS: dict[str, object] = {
    # --- Network -------------------------------------------------------------------------
    "af_servername": "127.0.0.1",  # server host for clients
    "af_serverport": 51000,  # compiled fallback 50000
    "af_ipv6_disable": 1,
    # IP masks that need no authentication (authentication itself is inactive).
    "af_ip_trust": ["*.*", "127.0.0.1", "192.168.*", "*:*", "0:0:0:0:0:0:0:1", "FC00:*", "FD00:*"],
    "af_digest_file": ".htdigest",
    "af_http_serve_dir": "",  # empty = CGRU root (here: the web package's own files)
    "af_http_site_index": "/afanasy/browser/index.html",
    "af_http_directory_index": "index.html",
    "af_server_sockets_processing_threads_num": 10,
    "af_server_sockets_readwrite_threads_num": 10,
    # Unset in the original; zero or negative means the system default stack size.
    "af_server_sockets_processing_threads_stack": 0,
    "af_server_sockets_readwrite_threads_stack": 0,
    "af_server_linux_epoll": 0,
    "af_server_http_wait_close": 1,  # compiled fallback 0
    # Socket options; -1 means "do not set".
    "af_so_server_RCVTIMEO_sec": 12,
    "af_so_server_SNDTIMEO_sec": 12,
    "af_so_server_TCP_NODELAY": -1,
    "af_so_server_REUSEADDR": -1,
    "af_so_server_TCP_CORK": -1,
    "af_so_server_LINGER": -1,
    "af_so_client_RCVTIMEO_sec": 12,
    "af_so_client_SNDTIMEO_sec": 12,
    "af_so_client_TCP_NODELAY": -1,
    "af_so_client_REUSEADDR": -1,
    "af_so_client_TCP_CORK": -1,
    "af_so_client_LINGER": -1,
    "af_server_profiling_sec": 1024,  # period of network statistics print
    # --- General -------------------------------------------------------------------------
    "af_store_folder": "/var/tmp/afanasy",  # Windows: c:/temp/afanasy
    # The farm's store: empty = SQLite in af_store_folder; a PostgreSQL connection string
    # ("host=db1 dbname=afanasy user=afserver") lets several afservers share it, one active.
    "af_store_db": "",
    "af_node_log_lines_max": 100,
    "af_priority": 99,
    "af_max_running_tasks": -1,
    "af_perm_user_mod_his_priority": True,
    "af_perm_user_mod_job_priority": True,
    "af_cmdprefix": "",  # prepended to block commands (or env AF_CMD_PREFIX)
    # --- Tasks ---------------------------------------------------------------------------
    "af_task_default_capacity": 1000,
    "af_task_default_service": "generic",
    "af_task_progress_change_timeout": -1,
    "af_task_log_linesmax": 100,
    "af_task_reconnect_timeout": 30,
    "af_task_post_limit_sec": 16,
    "af_thumbnail_extensions": ["exr", "dpx", "jpg", "jpeg", "png", "tif", "tiff", "tga"],
    "af_thumbnail_cmd": (
        'convert -identify "%(image)s" %(pre_args)s -alpha Opaque -thumbnail x100'
        ' -gravity center -colorspace sRGB "%(thumbnail)s"'
    ),
    # --- User defaults -------------------------------------------------------------------
    "af_errors_avoid_host": 3,
    "af_task_error_retries": 3,
    "af_task_errors_same_host": 3,
    "af_errors_forgivetime": 18000,
    "af_max_run_tasks_per_host": -1,
    "af_jobs_life_time": 0,  # compiled fallback -1
    "af_user_cut_domain_name": True,
    # --- Render --------------------------------------------------------------------------
    "af_render_cmd_reboot": "reboot",  # Windows: shutdown /r
    "af_render_cmd_shutdown": "shutdown -P 1 afrequest",  # Windows: shutdown /s
    "af_render_cmd_wolsleep": "wolsleep",
    "af_render_cmd_wolwake": "wolwake",
    "af_render_launch_cmds": ["Free Mem|sudo free_mem.sh"],  # "label|command" for GUI menus
    "af_render_launch_cmds_exit": ["Update|sudo update.sh"],
    "af_rendercmds": [
        "vncviewer @ARG@",
        'xterm -e "ping @ARG@; read -s -n 1"',
        'xterm -e "ping @IP@; read -s -n 1"',
    ],
    "af_rendercmds_admin": [
        'xterm -e "ssh @ARG@; read -s -n 1"',
        'xterm -e "ssh @ARG@ \\"@ASK@\\"; read -s -n 1"',
    ],
    "af_render_gpuinfo_nvidia_cmd": (
        "nvidia-smi --id=0 --query-gpu=utilization.gpu,temperature.gpu,memory.total,"
        "memory.used,name --format=csv,noheader,nounits 2>&1"
    ),
    "af_render_get_cpu_temperature_mod": "getCPUTemperature",
    "af_render_get_hw_info_mod": "getHWInfo",
    "af_render_networkif": "",  # empty = every interface except loopback
    "af_render_hddspace_path": "/",
    "af_render_iostat_device": "*",
    "af_render_resclasses": [],  # custom resource meters; none by default
    "af_render_nice": 10,
    "af_render_overflow_mem": -1,  # free percent thresholds; -1 disables the check
    "af_render_overflow_swap": -1,
    "af_render_overflow_hdd": -1,
    "af_render_task_read_buffer_size": 1000000,
    "af_render_cut_domain_name": True,
    "af_render_windowsmustdie": [],  # window titles to close; Windows only, empty on Unix
    # --- GUI / monitor -------------------------------------------------------------------
    "af_monitor_zombietime": 16,  # compiled fallback 40
    "af_monitor_render_idle_bar_max": 3600,
    "af_monitor_render_cpu_hot_min": 80,
    "af_monitor_render_cpu_hot_max": 100,
    "af_watch_get_events_sec": 1,
    "af_watch_refresh_gui_sec": 5,
    "af_watch_connection_lost_time": 20,  # compiled fallback 30
    "af_watch_render_idle_bar_max": 3600,
    "af_watch_work_user_visible": True,
    "pswd_visor": _MD5_IDKFA,  # GUI-side mode passwords, MD5 hashes
    "pswd_god": _MD5_IDDQD,
    # --- Statistics database -------------------------------------------------------------
    # Empty: statistics go to the embedded SQLite file in the store folder (DESIGN.md);
    # "off": no statistics are kept.
    # The original's default was "host=localhost dbname=afanasy user=afadmin password=AfPassword".
    "af_db_conninfo": "",
    "af_db_stringquotes": "$$",
    "af_db_stringnamelen": 512,
    "af_db_stringexprlen": 4096,
    # --- System job ----------------------------------------------------------------------
    "af_sysjob_tasklife": 1800,
    "af_sysjob_tasksmax": 1000,  # compiled fallback 10000
    "af_sysjob_wol_service": "wakeonlan",
    "af_sysjob_postcmd_service": "postcmd",
    "af_sysjob_events_service": "events",
    "af_wolwake_interval": 10,  # cycles between automatic wakes
    # --- Root CGRU config ----------------------------------------------------------------
    "cmd_shell": "/bin/sh -c",  # Windows: cmd.exe /c
    "email_smtp_server": "localhost",
    "email_send_cmd": "emailsend",
    "email_sender_address_host": "cgru.info",
    # Client path prefix -> server path prefix. The original keeps a list of pairs (and
    # ships it disabled); a mapping says the same with unique prefixes.
    "pathsmap": {},
    # --- Ours: keys of this rebuild, not in the original ----------------------------------
    "af_server_bind_address": "",  # empty = all interfaces
    "af_message_size_max": 67108864,  # 64 MiB, bytes of one message body
    "af_broker_request_timeout": 10.0,  # seconds a request may wait for its worker
    "af_broker_queue_max": 10000,  # requests queued while a worker is away
    "af_worker_heartbeat_sec": 1.0,  # broker <-> worker heartbeat interval
    "af_worker_liveness": 3,  # missed heartbeats before a peer is considered dead
    # afserver kills and restarts a child whose loop gave no sign of life for this long
    # (seconds; 0: never)
    "af_watchdog_sec": 30.0,
    "af_client_timeout": 4.0,  # seconds afcmd waits for an answer
    # The gateway serves the original's clients (AFANASY framing and HTTP POST) on this TCP
    # port, so their submit scripts and plugins work unchanged; 0 = no gateway.
    "af_gateway_port": 51001,
    # The original's clients cannot ask for the admin role: those of af_admins connecting
    # from these hosts (names or addresses, as the gateway sees the connection's source)
    # act with it through the gateway. Empty: nobody does.
    "af_gateway_admin_hosts": [],
    # The original's web GUI files the gateway serves on GET: an original install's root
    # (its af_http_serve_dir, holding afanasy/browser and lib; "/" is
    # afanasy/browser/index.html); empty = $CGRU_LOCATION when set, else none (404).
    "af_gateway_gui_folder": "",
    "af_render_name": "",  # render name override; empty = host name
    "af_render_task_kill_wait": 10.0,  # SIGTERM to a task's process group, SIGKILL this much later
    "af_wolwake_timeout": 120.0,  # seconds a woken render has to register before the wake is retried
    "af_wolwake_retries": 2,  # wakes retried before the render's log says the wake failed
    "af_web_port": 51080,  # the statistics pages and web API (HTTP); 0 = no web process
    "af_web_bind_address": "127.0.0.1",  # loopback unless a site opens it ("" = all interfaces)
    # Origins (scheme://host[:port]) besides the web's own whose pages may change the farm
    # through the web API (POST with JSON); any other site's requests are refused.
    "af_web_trusted_origins": [],
    # Permissions and authentication (SPEC A 8). Admins may ask for the admin role (afcmd
    # --admin); afadmin and the OS user running afserver are admins as well.
    "af_admins": [],
    "af_auth": "",  # "" = trusted (names as claimed), "curve" = ZeroMQ CURVE keys
    "af_auth_keys_folder": "",  # server side; empty = <af_store_folder>/keys
    "af_auth_key_file": "",  # a client's secret certificate; empty = ~/.afanasy/client.key_secret
    "af_auth_server_key_file": "",  # the server's public certificate; empty = ~/.afanasy/server.key
    # Built-ins a render uses when its whole pool chain leaves a parameter <= 0. These were
    # config keys before v3.2.0 moved them to pools; we keep the names as the site defaults.
    "af_render_heartbeat_sec": 1.0,
    "af_render_up_resources_period": 5,
    "af_render_zombietime": 16.0,
    "af_render_exit_no_task_time": 0.0,
}


def env_name(key: str) -> str:
    """Environment variable for ``key``: AF_ plus the key without its ``af_`` prefix."""
    bare = key[3:] if key.startswith("af_") else key
    return "AF_" + bare.upper()
