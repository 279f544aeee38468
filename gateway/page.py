"""The original web page's own requests besides the farm's: ``get config`` and ``get files``.

The page starts with ``{"get": {"type": "config"}}`` and registers only once the answer,
``{"cgru_config": [{"cgru_config": {…}}, …, {"cgru_environment": {…}}]}`` (the config
files joined in order, then the server's environment), has come. It then lists icon
folders with ``{"get": {"type": "files", "path": "icons/software"}}`` and gets ``{"path",
"files": [names]}``, whose files it loads by GET. Both read the folder the GUI is served
from (gateway.files) and our configuration, never secrets: keys that could hold one
(connection strings, keys, tokens, passwords) are left out.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway import files

CONFIG_FILE = "config_default.json"  # an original install's own defaults, at its root
CONFIG_FILE_MAX = 1024 * 1024
FILES_MAX = 2000  # names listed from one folder
_SECRET = re.compile(r"conninfo|key|secret|passw|token|auth|admins|trusted", re.IGNORECASE)
VERSION = "afanasy-py"


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def our_values(values: Mapping[str, object]) -> dict[str, Any]:
    """Our configuration as the page may see it: no key that could hold a secret."""
    return {k: v for k, v in values.items() if not _SECRET.search(k) and _jsonable(v)}


def install_config(folder: str) -> dict[str, Any] | None:
    """The original install's config_default.json at the GUI folder's root, if any."""
    if not folder:
        return None
    path = Path(folder) / CONFIG_FILE
    try:
        if not path.is_file() or path.stat().st_size > CONFIG_FILE_MAX:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    inner = data.get("cgru_config") if isinstance(data, dict) else None
    return (
        {k: v for k, v in inner.items() if not _SECRET.search(k)}
        if isinstance(inner, dict)
        else None
    )


def environment(folder: str) -> dict[str, str]:
    return {
        "version": VERSION,
        "builddate": "",
        "buildrevision": "",
        "platform": ",".join(p for p in ("unix", platform.system().lower()) if p),
        "hostname": socket.gethostname().lower(),
        "username": getpass.getuser(),
        "location": folder,
        "servedir": folder,
    }


def config_reply(folder: str, values: Mapping[str, object]) -> dict[str, Any]:
    """The original's answer to ``get config``: the install's defaults, ours over them."""
    parts: list[dict[str, Any]] = []
    installed = install_config(folder)
    if installed is not None:
        parts.append({"cgru_config": installed})
    parts.append({"cgru_config": our_values(values)})
    parts.append({"cgru_environment": environment(folder)})
    return {"cgru_config": parts}


def files_reply(folder: str, path: Any) -> dict[str, Any]:
    """The original's answer to ``get files``: the regular files' names of one folder
    inside the GUI folder (none for a path that would leave it, or is no folder)."""
    shown = path if isinstance(path, str) else ""
    names = files.relative("/" + shown) if shown else None
    listed: list[str] = []
    if folder and names is not None:
        root = Path(folder).resolve()
        try:
            where = root.joinpath(*names).resolve(strict=True)
            if where == root or root in where.parents:
                with os.scandir(where) as entries:
                    for entry in entries:
                        if entry.is_file() and not entry.name.startswith("."):
                            listed.append(entry.name)
                        if len(listed) >= FILES_MAX:
                            break
        except (OSError, RuntimeError, ValueError):
            listed = []
    return {"path": shown, "files": sorted(listed)}
